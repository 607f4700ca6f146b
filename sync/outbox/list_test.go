package outbox_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
)

// appendN appends n records of c and returns their seqs.
func appendN(t *testing.T, ob *outbox.Outbox, c *chain, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := 0; i < n; i++ {
		r := c.next(t)
		seq, err := ob.Append(r)
		require.NoError(t, err)
		c.appended(r)
		seqs = append(seqs, seq)
	}
	return seqs
}

func seqsOf(items []outbox.ListItem) []uint64 {
	var out []uint64
	for _, it := range items {
		out = append(out, it.Seq)
	}
	return out
}

func TestList(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	ob := open(t, filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{Now: clk.Now})
	c := newChain()
	seqs := appendN(t, ob, c, 6)
	clk.Add(time.Minute)
	items, err := ob.Claim(3, 1<<20) // 1, 2, 3 sending
	require.NoError(t, err)
	require.Len(t, items, 3)
	clk.Add(time.Minute)
	require.NoError(t, ob.Settle([]outbox.Result{
		{Seq: seqs[0], Outcome: outbox.Accepted},
		{Seq: seqs[1], Outcome: outbox.Rejected, Reason: "unknown terminal"},
	}))

	all, err := ob.List(0, 0)
	require.NoError(t, err)
	assert.Equal(t, []uint64{seqs[0], seqs[2], seqs[3], seqs[4], seqs[5]}, seqsOf(all), "dead records are not listed")
	assert.Equal(t, outbox.Acknowledged, all[0].State)
	assert.Equal(t, clk.Now(), all[0].Acked.UTC())
	assert.Equal(t, uint32(1), all[0].Attempts)
	assert.Equal(t, outbox.Sending, all[1].State)
	assert.True(t, all[1].Acked.IsZero())
	assert.Equal(t, outbox.Pending, all[2].State)
	assert.Equal(t, time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), all[2].Enqueued.UTC())
	assert.Equal(t, uint32(0), all[2].Attempts)
	r, err := record.Decode(all[2].Encoded)
	require.NoError(t, err)
	assert.Equal(t, uint32(4), r.Counter)

	for _, tc := range []struct {
		state outbox.State
		limit int
		want  []uint64
	}{
		{outbox.Pending, 0, seqs[3:]},
		{outbox.Pending, 2, seqs[3:5]},
		{outbox.Sending, 0, seqs[2:3]},
		{outbox.Acknowledged, 0, seqs[:1]},
		{0, 2, []uint64{seqs[0], seqs[2]}},
	} {
		got, err := ob.List(tc.state, tc.limit)
		require.NoError(t, err)
		assert.Equal(t, tc.want, seqsOf(got), "%v limit %d", tc.state, tc.limit)
	}
	_, err = ob.List(7, 0)
	assert.ErrorContains(t, err, "no state 7")
}

func TestRequeue(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "outbox.db")
	o := outbox.Options{Now: clk.Now}
	ob, err := outbox.Open(path, o)
	require.NoError(t, err)
	defer func() { ob.Close() }()
	c := newChain()
	seqs := appendN(t, ob, c, 5)
	_, err = ob.Claim(3, 1<<20)
	require.NoError(t, err)
	require.NoError(t, ob.Settle([]outbox.Result{
		{Seq: seqs[0], Outcome: outbox.Rejected, Reason: "unknown terminal"},
		{Seq: seqs[1], Outcome: outbox.Rejected, Reason: "unknown terminal"},
		{Seq: seqs[2], Outcome: outbox.Accepted},
	}))
	clk.Add(time.Hour)
	before, err := ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, outbox.Stats{Pending: 2, Acknowledged: 1, Dead: 2, Unsynced: 2, OldestUnsynced: time.Hour,
		CountUsed: 2.0 / 100000, AgeUsed: float64(time.Hour) / float64(30*24*time.Hour), FileBytes: before.FileBytes,
		DataBytes: before.DataBytes, FreeBytes: before.FreeBytes}, before)
	n, oldest, err := ob.Backlog()
	require.NoError(t, err)
	assert.Equal(t, [2]any{before.Unsynced, before.OldestUnsynced}, [2]any{n, oldest}, "Backlog is Stats' backlog")

	// an unknown seq moves nothing
	_, err = ob.Requeue([]uint64{seqs[0], 999})
	require.ErrorIs(t, err, outbox.ErrNotDead)
	assert.ErrorContains(t, err, "999")
	_, err = ob.Requeue([]uint64{seqs[3]})
	require.ErrorIs(t, err, outbox.ErrNotDead, "a pending record is not dead")
	st, err := ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, before, st)

	n, err = ob.Requeue([]uint64{seqs[0], seqs[0]})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	after, err := ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, 3, after.Pending)
	assert.Equal(t, 3, after.Unsynced)
	assert.Equal(t, 1, after.Dead)
	assert.Equal(t, 1, after.Acknowledged)
	assert.Equal(t, time.Hour, after.OldestUnsynced, "the record keeps its enqueue time")
	assert.Equal(t, 3.0/100000, after.CountUsed)
	dead, err := ob.Dead()
	require.NoError(t, err)
	require.Len(t, dead, 1)
	assert.Equal(t, seqs[1], dead[0].Seq)

	pending, err := ob.List(outbox.Pending, 0)
	require.NoError(t, err)
	assert.Equal(t, []uint64{seqs[0], seqs[3], seqs[4]}, seqsOf(pending), "back in enqueue order")
	assert.Equal(t, uint32(1), pending[0].Attempts, "attempts are kept")

	// the counters are on disk, and the record goes out again
	require.NoError(t, ob.Close())
	ob, err = outbox.Open(path, o)
	require.NoError(t, err)
	st, err = ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, after.Pending, st.Pending)
	assert.Equal(t, after.Dead, st.Dead)
	items, err := ob.Claim(1, 1<<20)
	require.NoError(t, err)
	require.Len(t, items, 1)
	assert.Equal(t, seqs[0], items[0].Seq)
	require.NoError(t, ob.Settle([]outbox.Result{{Seq: seqs[0], Outcome: outbox.Accepted}}))
	n, err = ob.Requeue([]uint64{seqs[1]})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	st, err = ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, 3, st.Pending)
	assert.Equal(t, 3, st.Unsynced)
	assert.Equal(t, 2, st.Acknowledged)
	assert.Zero(t, st.Dead)
}

// salvaged makes an outbox of n records, wrecks it and returns what
// Salvage recovers from the moved-aside file.
func salvaged(t *testing.T, n int) []*record.Record {
	path := filepath.Join(t.TempDir(), "old.db")
	ob, err := outbox.Open(path, outbox.Options{})
	require.NoError(t, err)
	appendN(t, ob, newChain(), n)
	require.NoError(t, ob.Close())
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(make([]byte, 8192), 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	recs, err := outbox.Salvage(path)
	require.NoError(t, err)
	require.Len(t, recs, n)
	return recs
}

func TestImport(t *testing.T) {
	recs := salvaged(t, 20)
	ob := open(t, filepath.Join(t.TempDir(), "new.db"), outbox.Options{})

	_, err := ob.Import([]*record.Record{recs[0], nil})
	require.ErrorContains(t, err, "record 1 is nil")
	n, err := ob.Import(recs)
	require.NoError(t, err)
	assert.Equal(t, 20, n)
	n, err = ob.Import(recs[5:10])
	require.NoError(t, err)
	assert.Zero(t, n, "records already there are skipped")
	st, err := ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, 20, st.Pending)
	assert.Equal(t, 20, st.Unsynced)

	// the file's own chain is untouched: its first record still starts
	// from zero
	last, err := ob.LastHash()
	require.NoError(t, err)
	assert.Zero(t, last)
	c := newChain()
	c.s = record.NewSoftwareSigner(testKey, [8]byte{'S', 'W', 0, 0, 0, 0, 0, 2}, 0)
	appendN(t, ob, c, 1)

	items, err := ob.Claim(100, 1<<20)
	require.NoError(t, err)
	require.Len(t, items, 21)
	for i, r := range recs {
		enc, err := r.Encode()
		require.NoError(t, err)
		assert.Equal(t, enc, items[i].Encoded)
	}
	// a record that went dead is there too: not imported again
	require.NoError(t, ob.Settle([]outbox.Result{{Seq: items[0].Seq, Outcome: outbox.Rejected, Reason: "x"}}))
	n, err = ob.Import(recs[:1])
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestReadOnlyOpen(t *testing.T) {
	dir := t.TempDir()
	ro := outbox.Options{ReadOnly: true, OpenTimeout: 200 * time.Millisecond}

	missing := filepath.Join(dir, "missing.db")
	_, err := outbox.Open(missing, ro)
	require.ErrorIs(t, err, outbox.ErrNoOutbox)
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(missing)
	require.ErrorIs(t, err, os.ErrNotExist, "a read-only open creates nothing")

	garbage := filepath.Join(dir, "garbage.db")
	require.NoError(t, os.WriteFile(garbage, []byte("this is not a database, not even a short one"), 0o600))
	_, err = outbox.Open(garbage, ro)
	require.ErrorIs(t, err, outbox.ErrDamaged)
	b, err := os.ReadFile(garbage)
	require.NoError(t, err)
	assert.Equal(t, "this is not a database, not even a short one", string(b), "not moved aside, not changed")
	names, err := filepath.Glob(filepath.Join(dir, "*corrupt*"))
	require.NoError(t, err)
	assert.Empty(t, names)

	// a bbolt file that is not an outbox
	other := filepath.Join(dir, "other.db")
	db, err := bolt.Open(other, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = outbox.Open(other, ro)
	require.ErrorIs(t, err, outbox.ErrDamaged)
	assert.ErrorContains(t, err, "not an outbox")

	// a sound outbox with a record being sent, while the agent has it open
	path := filepath.Join(dir, "outbox.db")
	ob, err := outbox.Open(path, outbox.Options{})
	require.NoError(t, err)
	c := newChain()
	appendN(t, ob, c, 3)
	_, err = ob.Claim(1, 1<<20)
	require.NoError(t, err)
	_, err = outbox.Open(path, ro)
	require.ErrorIs(t, err, outbox.ErrLocked)
	require.NoError(t, ob.Close())
	info, err := os.Stat(path)
	require.NoError(t, err)

	r1, err := outbox.Open(path, ro)
	require.NoError(t, err)
	defer r1.Close()
	r2, err := outbox.Open(path, ro)
	require.NoError(t, err, "readers share the file")
	defer r2.Close()
	st, err := r1.Stats()
	require.NoError(t, err)
	assert.Equal(t, 1, st.Sending, "sending stays sending")
	assert.Equal(t, 2, st.Pending)
	items, err := r2.List(0, 0)
	require.NoError(t, err)
	assert.Len(t, items, 3)
	_, err = r1.Append(c.next(t))
	assert.ErrorIs(t, err, outbox.ErrNotRecorded)
	_, err = r1.Claim(1, 1<<20)
	assert.Error(t, err)
	_, err = outbox.Open(path, outbox.Options{OpenTimeout: 200 * time.Millisecond})
	assert.ErrorIs(t, err, outbox.ErrLocked, "a writer waits for the readers")
	after, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, info.ModTime(), after.ModTime())
	assert.Equal(t, info.Size(), after.Size())
}
