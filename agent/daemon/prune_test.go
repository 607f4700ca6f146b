package daemon

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/config"
	"kpe-agent/apdu"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
	"kpe-agent/sync/uploader"
	"kpe-agent/sync/wire"
)

// noReaders is a PC/SC transport with no reader: the prune test needs no
// card.
type noReaders struct{}

func (noReaders) Readers(context.Context) ([]apdu.ReaderInfo, error) { return nil, nil }
func (noReaders) Connect(context.Context, string) (apdu.Card, error) { return nil, apdu.ErrNoReader }

type pruneClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *pruneClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *pruneClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestAgentPrunesAcknowledgedRecords: the running agent deletes the
// acknowledged records older than the retention (outbox.retention), after
// an acknowledged batch of its upload loop, at start, and on its timer;
// it keeps the records not yet acknowledged, the dead letters and the
// last record (the SAM counter check at start reads it).
func TestAgentPrunesAcknowledgedRecords(t *testing.T) {
	clk := &pruneClock{t: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
	const retention = 48 * time.Hour
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{Now: clk.Now, Retention: retention})
	require.NoError(t, err)
	t.Cleanup(func() { ob.Close() })
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{0x43}, 32))
	require.NoError(t, err)
	signer := record.NewSoftwareSigner(key, [8]byte{'S', 'W', 0, 0, 0, 0, 0, 7}, 0)
	var prev [32]byte
	add := func() uint64 {
		t.Helper()
		id, err := record.NewID()
		require.NoError(t, err)
		r := &record.Record{ID: id, TerminalID: "pkm-01", SiteID: "pkm", OperatorID: "clerk", Service: "askes",
			CardType: record.CardKPE, CardSerial: []byte{1, 2, 3, 4}, SubjectKind: record.SubjectNIP, Subject: "197208172000031002",
			CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
			Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Pass},
			Time: clk.Now(), Clock: record.ClockSynced, PrevHash: prev}
		require.NoError(t, record.Seal(context.Background(), r, signer))
		seq, err := ob.Append(r)
		require.NoError(t, err)
		prev, _ = r.Hash()
		return seq
	}
	settle := func(outcome outbox.Outcome, seqs ...uint64) {
		t.Helper()
		_, err := ob.Claim(100, 1<<20)
		require.NoError(t, err)
		var rs []outbox.Result
		for _, s := range seqs {
			rs = append(rs, outbox.Result{Seq: s, Outcome: outcome, Reason: "bad-signature"})
		}
		require.NoError(t, ob.Settle(rs))
	}
	stats := func() outbox.Stats {
		st, err := ob.Stats()
		require.NoError(t, err)
		return st
	}

	// five records acknowledged three days ago, one the back office
	// rejected (a dead letter), one that stays pending (the back office
	// answers "retry" for it)
	var old []uint64
	for range 5 {
		old = append(old, add())
	}
	dead := add()
	settle(outbox.Accepted, old...)
	settle(outbox.Rejected, dead)
	clk.Add(72 * time.Hour)
	stuck := add()
	_, err = ob.Claim(100, 1<<20)
	require.NoError(t, err)
	require.NoError(t, ob.Settle([]outbox.Result{{Seq: stuck, Outcome: outbox.Retry}}))
	fresh := []uint64{add(), add()}

	var mu sync.Mutex
	retry := map[string]bool{}
	bo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
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
		mu.Lock()
		for i, enc := range b.Records {
			res.Results[i].Status = wire.Accepted
			if retry[string(enc)] {
				res.Results[i].Status = wire.Retry
			}
		}
		mu.Unlock()
		json.NewEncoder(w).Encode(&res)
	}))
	t.Cleanup(bo.Close)
	items, err := ob.List(outbox.Pending, 0)
	require.NoError(t, err)
	for _, it := range items {
		if it.Seq == stuck {
			retry[string(it.Encoded)] = true
		}
	}
	every := pruneEvery
	pruneEvery = 20 * time.Millisecond
	t.Cleanup(func() { pruneEvery = every })
	up, err := uploader.New(ob, uploader.Config{URL: bo.URL, Interval: time.Hour})
	require.NoError(t, err)
	cfg := &config.Config{Terminal: config.Terminal{ID: "pkm-01"}, Session: config.Session{ShutdownGrace: time.Second, SignTimeout: time.Second}}
	d, err := New(Options{Config: func() *config.Config { return cfg }, Transport: noReaders{},
		Watch: func(ctx context.Context) <-chan apdu.Event {
			ch := make(chan apdu.Event)
			go func() { <-ctx.Done(); close(ch) }()
			return ch
		},
		Outbox: ob, Uploader: up})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// the upload loop sends the two fresh records; the old ones go
	require.Eventually(t, func() bool { st := stats(); return st.Acknowledged == len(fresh) }, 10*time.Second, 10*time.Millisecond,
		"the old acknowledged records are pruned once the retention has passed")
	st := stats()
	require.Equal(t, 1, st.Unsynced, "a record not acknowledged is kept")
	require.Equal(t, 1, st.Dead, "a dead letter is kept")
	all, err := ob.List(0, 0)
	require.NoError(t, err)
	var seqs []uint64
	for _, it := range all {
		seqs = append(seqs, it.Seq)
	}
	require.Equal(t, append([]uint64{stuck}, fresh...), seqs)

	// the timer: once the fresh records are past the retention too, they
	// go without another batch, but for the last one
	clk.Add(72 * time.Hour)
	require.Eventually(t, func() bool { return stats().Acknowledged == 1 }, 10*time.Second, 10*time.Millisecond,
		"the timer prunes the records past the retention")
	last, err := ob.Last()
	require.NoError(t, err)
	items, err = ob.List(0, 0)
	require.NoError(t, err)
	require.Len(t, items, 2)
	require.Equal(t, []uint64{stuck, fresh[1]}, []uint64{items[0].Seq, items[1].Seq})
	lastEnc, err := last.Encode()
	require.NoError(t, err)
	require.Equal(t, items[1].Encoded, lastEnc, "the last record is kept for the SAM counter check")
	st = stats()
	require.Equal(t, 1, st.Unsynced)
	require.Equal(t, 1, st.Dead)
}

// TestAgentPrunesPurseRequests: the agent's retention sweep forgets the
// e-wallet request book's settled outcomes older than the retention
// (outbox.retention), at start and on its timer; pending ones and younger
// ones stay.
func TestAgentPrunesPurseRequests(t *testing.T) {
	clk := &pruneClock{t: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
	const retention = 48 * time.Hour
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{Now: clk.Now, Retention: retention})
	require.NoError(t, err)
	t.Cleanup(func() { ob.Close() })
	start := func(serial byte, req [16]byte) {
		t.Helper()
		require.NoError(t, ob.StartPurse(outbox.PurseJournal{Serial: [8]byte{serial}, Request: req, Kind: record.PurseDebit,
			Step: outbox.PurseStarted, Amount: 1_000, Merchant: "m-1"}))
	}
	settled := func(serial byte, req [16]byte) {
		t.Helper()
		start(serial, req)
		require.NoError(t, ob.SettlePurseNotDone([8]byte{serial}, req, "not-sent"))
	}
	oldDone, oldPending, young, later := [16]byte{1}, [16]byte{2}, [16]byte{3}, [16]byte{4}
	settled(1, oldDone)
	start(2, oldPending)
	clk.Add(72 * time.Hour)
	settled(3, young)
	clk.Add(time.Hour)
	settled(4, later)
	known := func(req [16]byte) bool {
		b, err := ob.PurseRequest(req)
		require.NoError(t, err)
		return b != nil
	}

	every := pruneEvery
	pruneEvery = 20 * time.Millisecond
	t.Cleanup(func() { pruneEvery = every })
	cfg := &config.Config{Terminal: config.Terminal{ID: "pkm-01"}, Session: config.Session{ShutdownGrace: time.Second, SignTimeout: time.Second}}
	d, err := New(Options{Config: func() *config.Config { return cfg }, Transport: noReaders{},
		Watch: func(ctx context.Context) <-chan apdu.Event {
			ch := make(chan apdu.Event)
			go func() { <-ctx.Done(); close(ch) }()
			return ch
		},
		Outbox: ob})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	require.Eventually(t, func() bool { return !known(oldDone) }, 10*time.Second, 10*time.Millisecond, "a settled outcome past the retention goes")
	require.True(t, known(oldPending), "a pending request stays, however old")
	require.True(t, known(young) && known(later), "younger outcomes stay")
	// the timer: once the retention has passed for the young one too
	clk.Add(retention - 30*time.Minute)
	require.Eventually(t, func() bool { return !known(young) }, 10*time.Second, 10*time.Millisecond, "the timer prunes the book")
	require.True(t, known(later), "not yet past the retention")
	require.True(t, known(oldPending))
}

// The metrics say how big the outbox file is and how much of it is free
// pages (docs/outbox.md bounds the size).
func TestOutboxSizeMetrics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	ob, err := outbox.Open(path, outbox.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { ob.Close() })
	cfg := &config.Config{}
	d, err := New(Options{Config: func() *config.Config { return cfg }, Transport: noReaders{},
		Watch: func(context.Context) <-chan apdu.Event { return nil }, Outbox: ob})
	require.NoError(t, err)
	srv := httptest.NewServer(d.Metrics().Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	st, err := ob.Stats()
	require.NoError(t, err)
	gauge := func(name string) float64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^# TYPE ` + name + ` gauge\n` + name + ` (\S+)$`).FindStringSubmatch(string(b))
		require.NotNil(t, m, "no gauge %s", name)
		v, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		return v
	}
	require.Equal(t, float64(fi.Size()), gauge("kpe_outbox_file_bytes"))
	require.Equal(t, float64(st.FreeBytes), gauge("kpe_outbox_free_bytes"))
}

// The counter screen's list of today's codes reads the outbox: with the
// least retention outbox.retention allows, pruning at the end of the day
// keeps every record of the day, acknowledged ones too (a retention of
// half a day would lose the morning's).
func TestPruneKeepsTodaysCodes(t *testing.T) {
	wib := time.FixedZone("WIB", 7*3600)
	for _, tc := range []struct {
		retention time.Duration
		want      int
	}{{config.MinOutboxRetention, 4}, {12 * time.Hour, 2}} {
		clk := &pruneClock{t: time.Date(2026, 3, 2, 0, 5, 0, 0, wib)}
		ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{Now: clk.Now, Retention: tc.retention})
		require.NoError(t, err)
		key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{0x44}, 32))
		require.NoError(t, err)
		signer := record.NewSoftwareSigner(key, [8]byte{'S', 'W', 0, 0, 0, 0, 0, 8}, 0)
		var prev [32]byte
		// records at 00:05, 08:00, 15:00 and 23:00, each acknowledged
		// when it was made
		for _, step := range []time.Duration{0, 7*time.Hour + 55*time.Minute, 7 * time.Hour, 8 * time.Hour} {
			clk.Add(step)
			id, err := record.NewID()
			require.NoError(t, err)
			r := &record.Record{ID: id, TerminalID: "pkm-01", SiteID: "pkm", OperatorID: "clerk", Service: "askes",
				CardType: record.CardKPE, CardSerial: []byte{1, 2, 3, 4}, SubjectKind: record.SubjectNIP, Subject: "197208172000031002",
				CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
				Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Pass},
				Time: clk.Now(), Clock: record.ClockSynced, PrevHash: prev}
			require.NoError(t, record.Seal(context.Background(), r, signer))
			seq, err := ob.Append(r)
			require.NoError(t, err)
			prev, _ = r.Hash()
			_, err = ob.Claim(10, 1<<20)
			require.NoError(t, err)
			require.NoError(t, ob.Settle([]outbox.Result{{Seq: seq, Outcome: outbox.Accepted}}))
		}
		clk.Add(59 * time.Minute) // 23:59
		_, err = ob.Prune()
		require.NoError(t, err)
		got, err := codesOn(ob, clk.Now())
		require.NoError(t, err)
		require.Len(t, got.Codes, tc.want, "retention %s", tc.retention)
		require.NoError(t, ob.Close())
	}
}
