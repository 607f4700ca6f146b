package outbox_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testKey is fixed so that the crash child (another process) signs with it.
var testKey, _ = ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{0x5a}, 32))

// chain makes sealed records that follow each other.
type chain struct {
	s    *record.SoftwareSigner
	prev [32]byte
}

func newChain() *chain {
	return &chain{s: record.NewSoftwareSigner(testKey, [8]byte{'S', 'W', 0, 0, 0, 0, 0, 1}, 0)}
}

func (c *chain) next(t testing.TB) *record.Record {
	if t == nil {
		t = panicT{}
	}
	id, err := record.NewID()
	require.NoError(t, err)
	r := &record.Record{
		ID: id, TerminalID: "t-01", SiteID: "s-01", OperatorID: "op", Service: "askes",
		CardType: record.CardKPE, CardSerial: []byte{1, 2, 3, 4}, SubjectKind: record.SubjectNIP, Subject: "196608011988031001",
		CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
		Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Pass},
		Time: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), Clock: record.ClockSynced, PrevHash: c.prev,
	}
	require.NoError(t, record.Seal(context.Background(), r, c.s))
	return r
}

func (c *chain) appended(r *record.Record) {
	c.prev, _ = r.Hash()
}

func open(t testing.TB, path string, o outbox.Options) *outbox.Outbox {
	ob, err := outbox.Open(path, o)
	require.NoError(t, err)
	t.Cleanup(func() { ob.Close() })
	return ob
}

func TestLifecycle(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "outbox.db")
	ob := open(t, path, outbox.Options{Now: clk.Now, Retention: time.Hour})
	c := newChain()
	var seqs []uint64
	for i := 0; i < 5; i++ {
		r := c.next(t)
		seq, err := ob.Append(r)
		require.NoError(t, err)
		c.appended(r)
		seqs = append(seqs, seq)
	}
	last, err := ob.LastHash()
	require.NoError(t, err)
	assert.Equal(t, c.prev, last)

	items, err := ob.Claim(3, 1<<20)
	require.NoError(t, err)
	require.Len(t, items, 3)
	assert.Equal(t, seqs[:3], []uint64{items[0].Seq, items[1].Seq, items[2].Seq})
	st, err := ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, 2, st.Pending)
	assert.Equal(t, 3, st.Sending)

	require.NoError(t, ob.Settle([]outbox.Result{
		{Seq: items[0].Seq, Outcome: outbox.Accepted},
		{Seq: items[1].Seq, Outcome: outbox.Duplicate},
		{Seq: items[2].Seq, Outcome: outbox.Rejected, Reason: "signature does not verify"},
	}))
	st, err = ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, outbox.Stats{Pending: 2, Acknowledged: 2, Dead: 1, Unsynced: 2, CountUsed: 2.0 / 100000,
		FileBytes: st.FileBytes, DataBytes: st.DataBytes, FreeBytes: st.FreeBytes}, st)
	dead, err := ob.Dead()
	require.NoError(t, err)
	require.Len(t, dead, 1)
	assert.Equal(t, "signature does not verify", dead[0].Reason)
	assert.Equal(t, items[2].Encoded, dead[0].Encoded)

	// a byte budget still claims one record; retry puts it back
	items, err = ob.Claim(10, 1)
	require.NoError(t, err)
	require.Len(t, items, 1)
	assert.Equal(t, uint32(0), items[0].Attempts)
	require.NoError(t, ob.Settle([]outbox.Result{{Seq: items[0].Seq, Outcome: outbox.Retry}}))
	items, err = ob.Claim(10, 1<<20)
	require.NoError(t, err)
	require.Len(t, items, 2)
	assert.Equal(t, uint32(1), items[0].Attempts)

	// nothing acknowledged is pruned before the retention; nothing
	// unacknowledged ever
	n, err := ob.Prune()
	require.NoError(t, err)
	assert.Zero(t, n)
	clk.Add(2 * time.Hour)
	n, err = ob.Prune()
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	st, err = ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, 2, st.Sending)
	assert.Zero(t, st.Acknowledged)

	// a record that does not follow the last one is refused
	r := c.next(t)
	r2 := *r
	r2.PrevHash[0] ^= 1
	_, err = ob.Append(&r2)
	assert.ErrorIs(t, err, outbox.ErrChain)
	assert.ErrorIs(t, err, outbox.ErrNotRecorded)
}

func TestReopenReturnsSendingToPending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	ob, err := outbox.Open(path, outbox.Options{})
	require.NoError(t, err)
	c := newChain()
	for i := 0; i < 3; i++ {
		r := c.next(t)
		_, err := ob.Append(r)
		require.NoError(t, err)
		c.appended(r)
	}
	_, err = ob.Claim(2, 1<<20)
	require.NoError(t, err)
	require.NoError(t, ob.Close())
	ob = open(t, path, outbox.Options{})
	st, err := ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, 3, st.Pending)
	assert.Zero(t, st.Sending)
	last, err := ob.LastHash()
	require.NoError(t, err)
	assert.Equal(t, c.prev, last, "the chain continues across restarts")
}

func TestLimitsAlarmAndRefuse(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	ob := open(t, filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{MaxRecords: 20, MaxAge: 100 * time.Hour, Now: clk.Now})
	c := newChain()
	var alarms []float64
	for i := 0; i < 20; i++ {
		r := c.next(t)
		_, err := ob.Append(r)
		require.NoError(t, err)
		c.appended(r)
		st, err := ob.Stats()
		require.NoError(t, err)
		alarms = append(alarms, st.Alarm)
	}
	assert.Equal(t, 0.0, alarms[8])   // 9/20
	assert.Equal(t, 0.5, alarms[9])   // 10/20
	assert.Equal(t, 0.8, alarms[15])  // 16/20
	assert.Equal(t, 0.95, alarms[18]) // 19/20
	assert.Equal(t, 1.0, alarms[19])
	_, err := ob.Append(c.next(t))
	var le *outbox.LimitError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "count", le.Limit)
	assert.ErrorIs(t, err, outbox.ErrFull)
	assert.ErrorIs(t, err, outbox.ErrNotRecorded)
	st, err := ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, 20, st.Unsynced, "nothing old was deleted")

	// the back office takes half: room again; then age fills it
	items, err := ob.Claim(10, 1<<20)
	require.NoError(t, err)
	var res []outbox.Result
	for _, it := range items {
		res = append(res, outbox.Result{Seq: it.Seq, Outcome: outbox.Accepted})
	}
	require.NoError(t, ob.Settle(res))
	clk.Add(96 * time.Hour)
	st, err = ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, 0.95, st.Alarm)
	clk.Add(4 * time.Hour)
	_, err = ob.Append(c.next(t))
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "age", le.Limit)
}

func TestCorruptFileMovedAsideAndSalvaged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "outbox.db")
	ob, err := outbox.Open(path, outbox.Options{})
	require.NoError(t, err)
	c := newChain()
	var want []*record.Record
	for i := 0; i < 50; i++ {
		r := c.next(t)
		_, err := ob.Append(r)
		require.NoError(t, err)
		c.appended(r)
		want = append(want, r)
	}
	require.NoError(t, ob.Close())

	// wreck both meta pages
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(make([]byte, 8192), 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	ob = open(t, path, outbox.Options{})
	require.NotEmpty(t, ob.MovedAside)
	st, err := ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Base(ob.MovedAside)}, st.MovedAside)
	assert.Zero(t, st.Unsynced)
	_, err = os.Stat(ob.MovedAside)
	require.NoError(t, err, "the damaged file is kept")

	got, err := outbox.Salvage(ob.MovedAside)
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for i := range want {
		assert.Equal(t, want[i].ID, got[i].ID)
		require.NoError(t, got[i].Verify(&testKey.PublicKey))
	}
	require.NoError(t, ob.ClearMovedAside())
	st, err = ob.Stats()
	require.NoError(t, err)
	assert.Empty(t, st.MovedAside)
}

func TestGarbageFileMovedAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	require.NoError(t, os.WriteFile(path, []byte("this is not a database"), 0o600))
	ob := open(t, path, outbox.Options{})
	assert.NotEmpty(t, ob.MovedAside)
	got, err := outbox.Salvage(ob.MovedAside)
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestLockedByAnotherOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	open(t, path, outbox.Options{})
	_, err := outbox.Open(path, outbox.Options{OpenTimeout: 200 * time.Millisecond})
	assert.ErrorIs(t, err, outbox.ErrLocked)
	_, err = os.Stat(path)
	require.NoError(t, err, "a locked file is never moved aside")
}

// panicT lets the crash child use the test helpers outside a test.
type panicT struct{ testing.TB }

func (panicT) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (panicT) FailNow()                          { panic("FailNow") }
func (panicT) Helper()                           {}

// The counters Stats reports (kept with every change) agree with a model
// of the outbox over a long random sequence of operations, across
// reopens.
func TestCountersFollowTheRecords(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "outbox.db")
	o := outbox.Options{Now: clk.Now, Retention: time.Hour}
	ob, err := outbox.Open(path, o)
	require.NoError(t, err)
	defer func() { ob.Close() }()
	c := newChain()
	type rec struct {
		state string // pending, sending, acked
		acked time.Time
	}
	model := map[uint64]*rec{}
	dead := 0
	rng := mrand.New(mrand.NewPCG(1, 2))
	for step := 0; step < 400; step++ {
		switch rng.IntN(6) {
		case 0, 1:
			r := c.next(t)
			seq, err := ob.Append(r)
			require.NoError(t, err)
			c.appended(r)
			model[seq] = &rec{state: "pending"}
		case 2:
			items, err := ob.Claim(1+rng.IntN(5), 1<<20)
			require.NoError(t, err)
			for _, it := range items {
				require.Equal(t, "pending", model[it.Seq].state)
				model[it.Seq].state = "sending"
			}
		case 3:
			var res []outbox.Result
			for _, seq := range slices.Sorted(maps.Keys(model)) { // map order would make the run unrepeatable
				m := model[seq]
				if len(res) == 3 || rng.IntN(3) == 0 {
					continue
				}
				out := outbox.Outcome(1 + rng.IntN(4))
				res = append(res, outbox.Result{Seq: seq, Outcome: out, Reason: "test"})
				switch {
				case (out == outbox.Accepted || out == outbox.Duplicate) && m.state != "acked":
					m.state, m.acked = "acked", clk.Now()
				case out == outbox.Rejected:
					delete(model, seq)
					dead++
				case out == outbox.Retry && m.state == "sending":
					m.state = "pending"
				}
			}
			require.NoError(t, ob.Settle(res))
		case 4:
			clk.Add(20 * time.Minute)
			n, err := ob.Prune()
			require.NoError(t, err)
			want := 0
			var last uint64 // the last record is kept (Last)
			for seq := range model {
				last = max(last, seq)
			}
			for seq, m := range model {
				if seq != last && m.state == "acked" && !m.acked.After(clk.Now().Add(-time.Hour)) {
					delete(model, seq)
					want++
				}
			}
			require.Equal(t, want, n, "step %d", step)
		case 5:
			require.NoError(t, ob.Close())
			ob, err = outbox.Open(path, o)
			require.NoError(t, err)
			for _, m := range model {
				if m.state == "sending" {
					m.state = "pending"
				}
			}
		}
		st, err := ob.Stats()
		require.NoError(t, err)
		want := map[string]int{}
		for _, m := range model {
			want[m.state]++
		}
		require.Equal(t, want["pending"], st.Pending, "step %d", step)
		require.Equal(t, want["sending"], st.Sending, "step %d", step)
		require.Equal(t, want["pending"]+want["sending"], st.Unsynced, "step %d", step)
		require.Equal(t, want["acked"], st.Acknowledged, "step %d", step)
		require.Equal(t, dead, st.Dead, "step %d", step)
	}
}
