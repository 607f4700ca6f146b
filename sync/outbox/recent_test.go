package outbox_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/outbox"
)

func TestRecent(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	ob := open(t, filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{Now: clk.Now})

	none, err := ob.Recent(time.Time{}, 0)
	require.NoError(t, err)
	assert.Empty(t, none, "an empty outbox")

	c := newChain()
	early := appendN(t, ob, c, 2)
	clk.Add(time.Hour)
	since := clk.Now()
	late := appendN(t, ob, c, 3)
	clk.Add(time.Minute)
	_, err = ob.Claim(10, 1<<20)
	require.NoError(t, err)
	require.NoError(t, ob.Settle([]outbox.Result{
		{Seq: late[0], Outcome: outbox.Accepted},
		{Seq: late[1], Outcome: outbox.Rejected, Reason: "bad signature"},
	}))

	got, err := ob.Recent(since, 0)
	require.NoError(t, err)
	assert.Equal(t, []uint64{late[2], late[0]}, seqsOf(got), "newest first, the dead one aside, the older ones not read")
	assert.Equal(t, outbox.Sending, got[0].State)
	assert.Equal(t, outbox.Acknowledged, got[1].State)
	assert.Equal(t, since, got[1].Enqueued.UTC())
	assert.Equal(t, clk.Now(), got[1].Acked.UTC())
	assert.NotEmpty(t, got[0].Encoded)

	got, err = ob.Recent(since, 1)
	require.NoError(t, err)
	assert.Equal(t, []uint64{late[2]}, seqsOf(got), "at most limit")

	got, err = ob.Recent(time.Time{}, 0)
	require.NoError(t, err)
	assert.Equal(t, []uint64{late[2], late[0], early[1], early[0]}, seqsOf(got))

	got, err = ob.Recent(clk.Now().Add(time.Second), 0)
	require.NoError(t, err)
	assert.Empty(t, got, "nothing enqueued since")
}
