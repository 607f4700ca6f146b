package outbox_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
)

// TestForgetPurseNotDone: a request settled not done is dropped from the
// book and can be started again; unknown, pending and done ones are kept.
func TestForgetPurseNotDone(t *testing.T) {
	ob := open(t, filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
	s, req := serialOf(9), [16]byte{0xC0, 1}
	assert.ErrorIs(t, ob.ForgetPurseNotDone(req), outbox.ErrNotNotDone, "unknown")

	j := outbox.PurseJournal{Serial: s, Request: req, Kind: record.PurseCredit, Step: outbox.PurseStarted, Amount: 5_000, PTC: 2, Balance: 10_000}
	require.NoError(t, ob.StartPurse(j))
	assert.ErrorIs(t, ob.ForgetPurseNotDone(req), outbox.ErrNotNotDone, "pending, in the journal")
	require.NoError(t, ob.SettlePurseNotDone(s, req, "not-sent"))
	o, err := ob.PurseRequest(req)
	require.NoError(t, err)
	require.NotNil(t, o)
	require.Equal(t, outbox.PurseRequestNotDone, o.Status)

	require.NoError(t, ob.ForgetPurseNotDone(req))
	o, err = ob.PurseRequest(req)
	require.NoError(t, err)
	assert.Nil(t, o, "forgotten")
	require.NoError(t, ob.StartPurse(j), "the same request id starts again")
	assert.ErrorIs(t, ob.ForgetPurseNotDone(req), outbox.ErrNotNotDone, "pending again")
}
