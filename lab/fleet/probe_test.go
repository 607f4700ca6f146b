package fleet_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/lab/fleet"
)

// A staff listener that holds every verification and then answers 500:
// the ticks beyond the 256 held are counted as not sent, apart from the
// errors, and each error is counted under its reason.
func TestProbeUnsentAndReasons(t *testing.T) {
	release := make(chan struct{})
	var held atomic.Int32
	full := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if held.Add(1) == 256 {
			close(full)
		}
		<-release
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer srv.Close()

	// the run ends a while after the 256th is held (or after 30 s: a
	// machine too slow to send 256 fails the counts below, not hangs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		select {
		case <-full:
			time.Sleep(200 * time.Millisecond)
		case <-ctx.Done():
		}
		cancel()
		close(release)
	}()
	rep, err := fleet.Probe(ctx, fleet.ProbeConfig{
		StaffURLs: []string{srv.URL},
		Client:    &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 300}},
		Rate:      2000,
		Code:      func() string { return "ABCD-EFGH" },
	})
	require.NoError(t, err)
	t.Logf("%s", rep)
	assert.Equal(t, 256, rep.Errors, "every verification in flight answered 500")
	assert.Equal(t, map[string]int{"status 500": 256}, rep.ErrReasons)
	assert.Positive(t, rep.Unsent, "the ticks with 256 in flight")
	assert.Zero(t, rep.Verifies)
	assert.True(t, strings.Contains(rep.String(), "errors 256 (status 500 ×256)"), rep.String())
}
