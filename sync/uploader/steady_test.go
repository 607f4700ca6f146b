package uploader_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/lab/labpki"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
	"kpe-agent/sync/uploader"
	"kpe-agent/sync/wire"
)

// fakeClock is the outbox's clock in the steady-state test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// acceptAll is a back office that accepts every record of every batch.
func acceptAll(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var b wire.Batch
		if err := json.NewDecoder(zr).Decode(&b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res := wire.BatchResult{Results: make([]wire.Result, len(b.Records)), ServerTime: time.Now()}
		for i := range res.Results {
			res.Results[i].Status = wire.Accepted
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(&res)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// soakRecords is how many records the steady-state test appends: 5,000 in
// make test, KPE_SOAK_RECORDS (100,000) in make soak.
func soakRecords(t *testing.T) int {
	if s := os.Getenv("KPE_SOAK_RECORDS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "KPE_SOAK_RECORDS")
		return n
	}
	return 5000
}

// TestSteadyStateOutboxSize: under a steady load whose records the back
// office acknowledges, the outbox file stops growing once the retention
// has passed. A simulated clock (the outbox's Options.Now) runs four
// retention periods of two days, one step per hour: each hour appends
// its records and the uploader sends them; the uploader prunes after each
// acknowledged batch. After each hour the outbox holds exactly the
// records acknowledged within the retention, and after the first
// retention period the file's data (bbolt's high-water mark) and the file
// itself stay within the size they had at its end plus a small slack.
func TestSteadyStateOutboxSize(t *testing.T) {
	total := soakRecords(t)
	const (
		retention = 48 * time.Hour
		windows   = 4
		steps     = windows * 48 // one per simulated hour
	)
	perStep := max(total/steps, 1)
	ca, err := labpki.NewCA("soak SAM CA")
	require.NoError(t, err)
	sam, err := ca.NewSAM(samSerial)
	require.NoError(t, err)

	clk := &fakeClock{t: time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "outbox.db")
	ob, err := outbox.Open(path, outbox.Options{Now: clk.Now, Retention: retention, MaxRecords: total + 1})
	require.NoError(t, err)
	defer ob.Close()
	u, err := uploader.New(ob, uploader.Config{URL: acceptAll(t).URL, Timeout: 10 * time.Second})
	require.NoError(t, err)

	var (
		prev       [32]byte
		ackedAt    []time.Time // per step, when its records were acknowledged
		windowData int64       // at the end of the first retention period
		windowFile int64
		// the largest sizes in the second retention period (the first
		// with pruning), and in the third and fourth
		secondData, secondFile, lateData, lateFile int64
		firstLen, kept                             int
	)
	for step := range steps {
		for range perStep {
			rec := sampleRec(prev)
			rec.Time = clk.Now()
			require.NoError(t, record.Seal(context.Background(), rec, sam))
			_, err := ob.Append(rec)
			require.NoError(t, err)
			prev, _ = rec.Hash()
			if firstLen == 0 {
				enc, _ := rec.Encode()
				firstLen = len(enc)
			}
		}
		rep, err := u.Drain(context.Background())
		require.NoError(t, err)
		require.Equal(t, perStep, rep.Accepted, "step %d", step)
		ackedAt = append(ackedAt, clk.Now())

		// exactly the records acknowledged within the retention are kept
		want := 0
		for _, at := range ackedAt {
			if at.After(clk.Now().Add(-retention)) {
				want += perStep
			}
		}
		st, err := ob.Stats()
		require.NoError(t, err)
		require.Zero(t, st.Unsynced, "step %d", step)
		require.Equal(t, want, st.Acknowledged, "step %d: acknowledged records kept", step)
		fi, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, fi.Size(), st.FileBytes, "Stats.FileBytes is the file's size")

		switch {
		case step == 48-1:
			windowData, windowFile, kept = st.DataBytes, st.FileBytes, st.Acknowledged
		case step < 2*48:
			secondData, secondFile = max(secondData, st.DataBytes), max(secondFile, st.FileBytes)
		case step >= 2*48:
			lateData, lateFile = max(lateData, st.DataBytes), max(lateFile, st.FileBytes)
		}
		clk.Add(time.Hour)
	}
	perRecord := windowData / int64(kept) // in the file, bbolt's overhead included
	t.Logf("%d records of %d bytes, %d per hour, retention %s, %d records kept: data %d bytes (%d per record) after the first retention period, "+
		"at most %d in the second, %d after; file %d, at most %d in the second, %d after",
		steps*perStep, firstLen, perStep, retention, kept, windowData, perRecord, secondData, lateData, windowFile, secondFile, lateFile)
	// Once pruning starts, pages freed by the oldest records are reused
	// by the new ones; the first deletions leave pages part-filled, which
	// costs about two hours' records once (slack) and no more after that.
	slack := 2*int64(perStep)*perRecord + 16*4096
	require.LessOrEqual(t, secondData, windowData+slack, "the data grows by no more than the slack once pruning starts")
	require.LessOrEqual(t, lateData, secondData+16*4096, "then it stays flat")
	require.LessOrEqual(t, lateFile, secondFile, "and so does the file")
	require.LessOrEqual(t, secondFile, 2*windowFile, "the file grows by at most one bbolt growth step once pruning starts")
}
