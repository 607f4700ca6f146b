package uploader_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/buildinfo"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/uploader"
	"kpe-agent/sync/wire"
)

// Each batch says what the terminal still holds after it (backlog), when
// the oldest unacknowledged record was queued, and the agent's version;
// the back office keeps the last of them per terminal.
func TestBatchCarriesBacklogAndVersion(t *testing.T) {
	r := newRig(t, false)
	var mu sync.Mutex
	var batches []wire.Batch
	r.wrap = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			raw, err := io.ReadAll(req.Body)
			require.NoError(t, err)
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			require.NoError(t, err)
			var b wire.Batch
			require.NoError(t, json.NewDecoder(zr).Decode(&b))
			mu.Lock()
			batches = append(batches, b)
			mu.Unlock()
			req.Body = io.NopCloser(bytes.NewReader(raw))
			next.ServeHTTP(w, req)
		})
	}
	r.start("")
	r.add(120, nil)
	u := r.uploader(func(c *uploader.Config) { c.MaxRecords = 50 })
	_, err := u.Drain(context.Background())
	require.NoError(t, err)

	require.Len(t, batches, 3)
	for i, want := range []int64{70, 20, 0} {
		b := batches[i]
		require.NotNil(t, b.Backlog, "batch %d", i)
		assert.Equal(t, want, *b.Backlog, "batch %d", i)
		assert.NotEmpty(t, b.Agent)
		assert.Equal(t, buildinfo.Read().Version, b.Agent)
		assert.False(t, b.OldestQueued.IsZero(), "batch %d: its own records are queued", i)
		assert.False(t, b.OldestQueued.After(b.SentAt), "batch %d", i)
	}
	rows, err := r.svc.Terminals(context.Background(), backoffice.TerminalQuery{})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.NotNil(t, rows[0].Backlog)
	assert.Equal(t, int64(0), *rows[0].Backlog)
	assert.Equal(t, int64(120), rows[0].Records)
}
