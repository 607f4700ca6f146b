package backoffice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/pgtest"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/wire"
)

// gateStore holds every Ingest until the gate opens: batches in flight
// that stay in flight.
type gateStore struct {
	backoffice.Store
	in   chan struct{} // one send per Ingest entered
	gate chan struct{}
}

func (g *gateStore) Ingest(ctx context.Context, e []backoffice.Entry, m backoffice.Meta) ([]wire.Result, error) {
	g.in <- struct{}{}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Store.Ingest(ctx, e, m)
}

// A node taking its limit of batches answers the next one 503 busy with a
// Retry-After in its window at once (it does not wait for a slot), and
// takes batches again when a slot is free; the admission metrics count
// both.
func TestAdmissionFullNodeAnswersBusyAtOnce(t *testing.T) {
	bolt, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer bolt.Close()
	l := newLab(t, bolt)
	st := &gateStore{Store: bolt, in: make(chan struct{}, 8), gate: make(chan struct{})}
	svc, err := backoffice.New(st, backoffice.Config{CA: l.ca.Pool(), PlaintextTerminals: true})
	require.NoError(t, err)
	// a long QueueWait: were the batch queued after all, it would wait
	// that long, far beyond the bound below
	srv := httptest.NewServer(svc.TerminalHandlerWith(nil, backoffice.TerminalOptions{MaxIngest: 2, MaxQueue: -1, QueueWait: 20 * time.Second,
		BusyRetry: 3 * time.Second}))
	defer srv.Close()
	client := &http.Client{Timeout: 30 * time.Second}
	post := func(recs [][]byte) (*http.Response, []byte) {
		body, _ := json.Marshal(wire.Batch{Certificates: [][]byte{l.sam.Cert}, Records: recs})
		resp, err := client.Post(srv.URL+wire.PathRecords, "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp, buf.Bytes()
	}
	recs := l.records(4, "t-01")
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := post(recs[i : i+1])
			codes[i] = resp.StatusCode
		}()
	}
	<-st.in
	<-st.in // both slots taken, held in the store
	t0 := time.Now()
	resp, body := post(recs[2:3])
	took := time.Since(t0)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", body)
	assert.Less(t, took, 5*time.Second, "a full node answers at once")
	var p wire.Problem
	require.NoError(t, json.Unmarshal(body, &p))
	assert.Equal(t, "busy", p.Error)
	after, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After in seconds")
	assert.True(t, after >= 1 && after <= 3, "Retry-After %d within 1…3 s", after)

	m := scrape(t, svc)
	assert.Equal(t, 1.0, m["kpe_backoffice_ingest_busy_total"])
	assert.Equal(t, 2.0, m["kpe_backoffice_ingest_inflight"])
	assert.Equal(t, 2.0, m["kpe_backoffice_ingest_limit"])

	close(st.gate)
	wg.Wait()
	assert.Equal(t, []int{200, 200}, codes)
	resp, body = post(recs[2:4]) // slots free again: taken
	require.Equal(t, 200, resp.StatusCode, "%s", body)
	res, err := wire.DecodeBatchResult(body, 2)
	require.NoError(t, err)
	assert.Equal(t, []wire.Status{wire.Accepted, wire.Accepted}, statuses(res.Results))
	m = scrape(t, svc)
	assert.Equal(t, 3.0, m["kpe_backoffice_ingest_admitted_total"])
	assert.Equal(t, 0.0, m["kpe_backoffice_ingest_inflight"])
}

// Beyond the slots a batch waits in a short queue: it is taken when a
// slot frees within the queue wait, answered busy when none does (never
// held longer), and a batch finding the queue full is answered busy at
// once.
func TestAdmissionQueue(t *testing.T) {
	bolt, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer bolt.Close()
	l := newLab(t, bolt)
	client := &http.Client{Timeout: 30 * time.Second}
	recs := l.records(5, "t-01")
	type answer struct {
		status int
		took   time.Duration
	}
	// serve is a node taking one batch at a time with a queue of one,
	// each batch held in the store until its gate opens.
	serve := func(wait time.Duration) (*gateStore, *backoffice.Service, func([][]byte) answer) {
		st := &gateStore{Store: bolt, in: make(chan struct{}, 8), gate: make(chan struct{})}
		svc, err := backoffice.New(st, backoffice.Config{CA: l.ca.Pool(), PlaintextTerminals: true})
		require.NoError(t, err)
		srv := httptest.NewServer(svc.TerminalHandlerWith(nil, backoffice.TerminalOptions{MaxIngest: 1, MaxQueue: 1, QueueWait: wait}))
		t.Cleanup(srv.Close)
		post := func(recs [][]byte) answer {
			body, _ := json.Marshal(wire.Batch{Certificates: [][]byte{l.sam.Cert}, Records: recs})
			t0 := time.Now()
			resp, err := client.Post(srv.URL+wire.PathRecords, "application/json", bytes.NewReader(body))
			if err != nil { // also from the goroutines below: no require there
				t.Error(err)
				return answer{}
			}
			resp.Body.Close()
			return answer{resp.StatusCode, time.Since(t0)}
		}
		return st, svc, post
	}
	waiting := func(svc *backoffice.Service) func() bool {
		return func() bool { return scrape(t, svc)["kpe_backoffice_ingest_waiting"] == 1 }
	}

	// A long queue wait, so that neither the full-queue answer nor the
	// slot freeing races the queued batch's expiry on a loaded machine:
	// a full queue answers far sooner than the wait, and the queued
	// batch is taken when the slot frees.
	const long = 10 * time.Second
	st, svc, post := serve(long)
	first := make(chan answer, 1)
	go func() { first <- post(recs[0:1]) }()
	<-st.in // the slot is taken
	queued := make(chan answer, 1)
	go func() { queued <- post(recs[1:2]) }()
	require.Eventually(t, waiting(svc), 10*time.Second, 5*time.Millisecond)
	full := post(recs[2:3]) // the queue is full: at once
	assert.Equal(t, 503, full.status)
	assert.Less(t, full.took, long/5, "a full queue answers at once, not after the queue wait")
	close(st.gate) // the slot frees while it waits: taken
	assert.Equal(t, 200, (<-first).status)
	assert.Equal(t, 200, (<-queued).status)
	m := scrape(t, svc)
	assert.Equal(t, 2.0, m["kpe_backoffice_ingest_admitted_total"])
	assert.Equal(t, 1.0, m["kpe_backoffice_ingest_busy_total"])
	assert.Equal(t, 0.0, m["kpe_backoffice_ingest_waiting"])

	// A short queue wait with the slot held for good: the queued batch
	// is answered busy after the wait, not before and not held until the
	// slot frees (it never would here).
	const wait = 400 * time.Millisecond
	st, svc, post = serve(wait)
	go func() { first <- post(recs[2:3]) }()
	<-st.in
	q := post(recs[3:5])
	assert.Equal(t, 503, q.status)
	assert.GreaterOrEqual(t, q.took, wait-50*time.Millisecond, "it waited in the queue")
	assert.Less(t, q.took, wait+10*time.Second, "held no longer than the queue wait")
	m = scrape(t, svc)
	assert.Equal(t, 1.0, m["kpe_backoffice_ingest_admitted_total"])
	assert.Equal(t, 1.0, m["kpe_backoffice_ingest_busy_total"])
	assert.Equal(t, 0.0, m["kpe_backoffice_ingest_waiting"])
	close(st.gate)
	assert.Equal(t, 200, (<-first).status)
}

// Busy answers spread their Retry-After over the window (not every
// refused terminal back in the same second), and the default limit
// follows the store: at least GOMAXPROCS.
func TestAdmissionRetryAfterSpread(t *testing.T) {
	bolt, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer bolt.Close()
	assert.GreaterOrEqual(t, backoffice.DefaultMaxIngest(bolt), 1)
	l := newLab(t, bolt)
	st := &gateStore{Store: bolt, in: make(chan struct{}, 8), gate: make(chan struct{})}
	defer close(st.gate)
	for _, c := range []struct {
		rand float64
		want string
	}{{0, "1"}, {0.24, "1"}, {0.26, "2"}, {0.5, "3"}, {0.9999, "4"}} {
		svc, err := backoffice.New(st, backoffice.Config{CA: l.ca.Pool(), PlaintextTerminals: true})
		require.NoError(t, err)
		h := svc.TerminalHandlerWith(nil, backoffice.TerminalOptions{MaxIngest: 1, MaxQueue: -1, Rand: func() float64 { return c.rand }})
		srv := httptest.NewServer(h)
		body, _ := json.Marshal(wire.Batch{Certificates: [][]byte{l.sam.Cert}, Records: l.records(1, "t-01")})
		go http.Post(srv.URL+wire.PathRecords, "application/json", bytes.NewReader(body)) // holds the slot
		<-st.in
		resp, err := http.Post(srv.URL+wire.PathRecords, "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 503, resp.StatusCode)
		assert.Equal(t, c.want, resp.Header.Get("Retry-After"), "rand %v over the default 4 s window", c.rand)
		srv.CloseClientConnections()
		srv.Close()
	}
}

// On PostgreSQL, verification has connections of its own: with every
// ingest connection held (a storm's batches storing), a code is still
// verified at once.
func TestVerifyDoesNotQueueBehindIngest(t *testing.T) {
	ctx := context.Background()
	st, err := backoffice.OpenPostgresWith(ctx, pgtest.DB(t), backoffice.PGOptions{Conns: 2, StaffConns: 1})
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	recs := l.records(1, "t-01")
	require.Equal(t, wire.Accepted, l.ingest(recs...)[0].Status)
	assert.GreaterOrEqual(t, backoffice.DefaultMaxIngest(st), 2, "the default limit covers the ingest pool")

	var held []*pgxpool.Conn
	for range 2 { // the whole ingest pool
		c, err := st.Pool().Acquire(ctx)
		require.NoError(t, err)
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()
	// The ingest connections are held until the test ends: had Verify
	// queued for one it would never get it and would end with its
	// context. So the deadline only has to be finite; a generous one
	// leaves room for a new staff-pool connection on a loaded machine.
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	t0 := time.Now()
	v, err := l.svc.Verify(vctx, codeOf(t, recs[0]))
	require.NoError(t, err, "verification waited for an ingest connection")
	assert.True(t, v.Valid)
	assert.Less(t, time.Since(t0), 5*time.Second)

	// and ingest does wait for its pool (the admission limit is what keeps
	// that queue short)
	ictx, icancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer icancel()
	_, err = l.svc.Ingest(ictx, &wire.Batch{Certificates: [][]byte{l.sam.Cert}, Records: l.records(1, "t-01"), SentAt: time.Now()},
		backoffice.Identity{Terminal: "t-01"})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// A batch's body is read before it takes an ingest slot: a terminal on a
// slow uplink, still sending, holds no slot, and another batch is taken
// meanwhile. The body budget bounds the bodies read at once: beyond it a
// batch is answered busy at once.
func TestAdmissionSlowBodyHoldsNoSlot(t *testing.T) {
	bolt, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer bolt.Close()
	l := newLab(t, bolt)
	svc, err := backoffice.New(bolt, backoffice.Config{CA: l.ca.Pool(), PlaintextTerminals: true})
	require.NoError(t, err)
	srv := httptest.NewServer(svc.TerminalHandlerWith(nil, backoffice.TerminalOptions{MaxIngest: 1, MaxQueue: -1, MaxBodies: 2}))
	defer srv.Close()
	client := &http.Client{Timeout: 10 * time.Second}
	recs := l.records(3, "t-01")
	batch := func(recs [][]byte) []byte {
		body, _ := json.Marshal(wire.Batch{Certificates: [][]byte{l.sam.Cert}, Records: recs})
		return body
	}

	// the slow terminal: half its body sent, the rest later
	slowBody := batch(recs[2:3])
	pr, pw := io.Pipe()
	slow := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", srv.URL+wire.PathRecords, pr)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	_, err = pw.Write(slowBody[:len(slowBody)/2])
	require.NoError(t, err)

	resp, err := client.Post(srv.URL+wire.PathRecords, "application/json", bytes.NewReader(batch(recs[0:2])))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the slow body holds the only ingest slot")

	// a second slow body fills the budget of two: the next batch is busy
	pr2, pw2 := io.Pipe()
	go func() {
		req, _ := http.NewRequest("POST", srv.URL+wire.PathRecords, pr2)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	pw2.Write([]byte(`{"records":`))
	require.Eventually(t, func() bool {
		resp, err := client.Post(srv.URL+wire.PathRecords, "application/json", bytes.NewReader(batch(recs[0:1])))
		if err != nil { // the condition runs in a goroutine of its own: no require here
			t.Error(err)
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	}, 10*time.Second, 10*time.Millisecond, "beyond the body budget: busy")
	pw2.CloseWithError(io.ErrUnexpectedEOF)

	_, err = pw.Write(slowBody[len(slowBody)/2:])
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	assert.Equal(t, http.StatusOK, <-slow)
}
