package daemon_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/agent/daemon"
	"kpe-agent/lab/pcsctest"
)

// POST /v1/cancel names what it cancels: a reader, or "all": true. An
// empty body, an empty object, an empty reader or "all": false is 400
// bad-request, and the workflow that runs goes on: a page or program that
// sends a cancel without saying what does not end every counter's
// workflow.
func TestCancelNeedsReaderOrAll(t *testing.T) {
	r := newRig(t)
	r.insert(1, "sam.json")
	r.waitHealth(samReady)
	r.insert(0, "kpe-budi.json")

	got := r.waitingForFinger(t, api.AuthRequest{Service: "askes", Operator: "clerk-01"})
	for _, body := range []any{
		nil, // no body at all
		map[string]any{},
		map[string]any{"reader": ""},
		map[string]any{"all": false},
		map[string]any{"reader": "", "all": false},
		map[string]any{"reader": pcsctest.Slot0, "all": true}, // both: which one is meant?
	} {
		status, e := r.call("POST", api.PathCancel, body, nil)
		assert.Equal(t, http.StatusBadRequest, status, "cancel %v: %+v", body, e)
		assert.Equal(t, api.CodeBadRequest, e.Code, "cancel %v", body)
	}
	select {
	case e := <-got:
		t.Fatalf("a cancel that named nothing ended the workflow: %+v", e)
	case <-time.After(300 * time.Millisecond):
	}
	var readers []api.Reader
	status, _ := r.call("GET", api.PathReaders, nil, &readers)
	require.Equal(t, http.StatusOK, status)
	for _, rd := range readers {
		if rd.Name == pcsctest.Slot0 {
			assert.True(t, rd.Busy, "the workflow still runs")
			assert.Equal(t, api.StateFingerprint, rd.State)
		}
	}

	// "all": true says so: every workflow ends
	status, e := r.call("POST", api.PathCancel, map[string]any{"all": true}, nil)
	require.Equal(t, http.StatusNoContent, status, "%+v", e)
	select {
	case e := <-got:
		assert.Equal(t, daemon.CodeCancelled, e.Code)
	case <-time.After(5 * time.Second):
		t.Fatal("the cancelled workflow did not end")
	}
	// and nothing runs now: 404, as for a named reader
	status, e = r.call("POST", api.PathCancel, map[string]any{"all": true}, nil)
	assert.Equal(t, http.StatusNotFound, status, "%+v", e)
}
