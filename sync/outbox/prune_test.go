package outbox_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/outbox"
)

// Prune deletes only acknowledged records older than the retention: the
// records not yet acknowledged and the dead letters stay whatever their
// age, and so does the last record appended (the agent checks the SAM's
// counter against it at start), so the chain and the counter check go on
// after everything else was pruned.
func TestPruneKeepsWhatIsStillNeeded(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	ob := open(t, filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{Now: clk.Now, Retention: 48 * time.Hour})
	c := newChain()
	var seqs []uint64
	for range 6 {
		r := c.next(t)
		seq, err := ob.Append(r)
		require.NoError(t, err)
		c.appended(r)
		seqs = append(seqs, seq)
	}
	_, err := ob.Claim(10, 1<<20)
	require.NoError(t, err)
	require.NoError(t, ob.Settle([]outbox.Result{
		{Seq: seqs[0], Outcome: outbox.Accepted},
		{Seq: seqs[1], Outcome: outbox.Duplicate},
		{Seq: seqs[2], Outcome: outbox.Rejected, Reason: "bad-signature"},
		{Seq: seqs[3], Outcome: outbox.Retry},
		{Seq: seqs[4], Outcome: outbox.Accepted},
		{Seq: seqs[5], Outcome: outbox.Accepted},
	}))
	lastHash, err := ob.LastHash()
	require.NoError(t, err)

	clk.Add(47 * time.Hour)
	n, err := ob.Prune()
	require.NoError(t, err)
	assert.Zero(t, n, "nothing before the retention has passed")

	clk.Add(2 * time.Hour)
	n, err = ob.Prune()
	require.NoError(t, err)
	assert.Equal(t, 3, n, "the acknowledged records but the last")
	st, err := ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, 1, st.Pending, "an unacknowledged record is never pruned")
	assert.Equal(t, 1, st.Dead, "a dead letter is never pruned")
	assert.Equal(t, 1, st.Acknowledged, "the last record is kept")
	items, err := ob.List(0, 0)
	require.NoError(t, err)
	require.Len(t, items, 2)
	assert.Equal(t, []uint64{seqs[3], seqs[5]}, []uint64{items[0].Seq, items[1].Seq})
	last, err := ob.Last()
	require.NoError(t, err)
	require.NotNil(t, last, "Last still has the last record for the SAM counter check")
	assert.Equal(t, c.prev, mustHash(t, last))
	h, err := ob.LastHash()
	require.NoError(t, err)
	assert.Equal(t, lastHash, h)

	// the chain goes on; the new last record lets the old one go
	r := c.next(t)
	seq, err := ob.Append(r)
	require.NoError(t, err)
	c.appended(r)
	_, err = ob.Claim(10, 1<<20)
	require.NoError(t, err)
	require.NoError(t, ob.Settle([]outbox.Result{{Seq: seq, Outcome: outbox.Accepted}, {Seq: seqs[3], Outcome: outbox.Retry}}))
	n, err = ob.Prune()
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	st, err = ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, 1, st.Acknowledged)
	assert.Equal(t, 1, st.Pending)
}

// While another process holds the outbox, a new Open waits for the lock;
// if that process replaces the file meanwhile (kpectl queue compact renames
// the compacted copy over it, then lets go), the Open must end up with the
// new file, not the old one it was waiting on: records written to a
// replaced file are lost.
func TestOpenWaitingForTheLockFollowsAReplacedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "outbox.db")
	holder, err := outbox.Open(path, outbox.Options{})
	require.NoError(t, err)
	c := newChain()
	r := c.next(t)
	_, err = holder.Append(r)
	require.NoError(t, err)
	c.appended(r)

	// the replacement: the same record and one more
	repl := filepath.Join(dir, "replacement.db")
	other, err := outbox.Open(repl, outbox.Options{})
	require.NoError(t, err)
	c2 := newChain()
	for range 2 {
		r := c2.next(t)
		_, err := other.Append(r)
		require.NoError(t, err)
		c2.appended(r)
	}
	require.NoError(t, other.Close())

	opened := make(chan *outbox.Outbox, 1)
	go func() {
		ob, err := outbox.Open(path, outbox.Options{OpenTimeout: 10 * time.Second})
		if err != nil {
			t.Errorf("open: %v", err)
		}
		opened <- ob
	}()
	time.Sleep(200 * time.Millisecond) // the Open is waiting for the lock
	require.NoError(t, os.Rename(repl, path))
	require.NoError(t, holder.Close())
	ob := <-opened
	require.NotNil(t, ob)
	defer ob.Close()
	st, err := ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, 2, st.Pending, "the Open has the file now at the path")
	h, err := ob.LastHash()
	require.NoError(t, err)
	assert.Equal(t, c2.prev, h)
}

func mustHash(t *testing.T, r interface{ Hash() ([32]byte, error) }) [32]byte {
	t.Helper()
	h, err := r.Hash()
	require.NoError(t, err)
	return h
}
