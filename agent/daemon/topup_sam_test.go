package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
	"kpe-agent/internal/topup"
	"kpe-agent/lab/labset"
	"kpe-agent/lab/pcsctest"
)

// TestTopUpCompromisedTerminal: a terminal whose software skips the
// agent's check of the top-up authorisation, with the lab SAM the agent
// activated, talks to the SAM directly. The SAM refuses a CREDIT MAC
// without an authorisation and one for more than the authorisation it
// verified, and the card's balance does not move; with a genuine
// authorisation (the back office's issuer key under the lab's BKN
// renewal root) it credits exactly the authorised amount, once.
func TestTopUpCompromisedTerminal(t *testing.T) {
	r := newRigWith(t, rigOptions{})
	samCard := pcsctest.Insert(t, r.lab, 1, "lab/cards/sam.json")
	r.waitHealth(samReady) // the agent activated it
	card := freshBudi(t)
	r.insertCard(t, card)
	ctx := context.Background()
	s, err := sam.Open(ctx, direct{samCard})
	require.NoError(t, err)
	before, log := purseOf(t, card)

	unmoved := func(name string) {
		t.Helper()
		after, log2 := purseOf(t, card)
		assert.Equal(t, before, after, "%s: the card did not move", name)
		assert.Equal(t, log, log2, name)
	}
	_, err = kpe.Credit(ctx, direct{card}, s, budiSerial, 1_000_000, time.Now())
	require.ErrorIs(t, err, sam.ErrCreditNotAuthorised, "no authorisation")
	unmoved("no authorisation")

	// a genuine authorisation of Rp 100.000 for the card in its state
	dir := pcsctest.RepoPath(labDir)
	m, err := labset.LoadManifest(dir)
	require.NoError(t, err)
	iss, err := m.TopUpIssuer(dir, "Lab BKN top-up signer (test)")
	require.NoError(t, err)
	a := &topup.Authorisation{ID: [16]byte{0xC0, 0x4B}, Serial: budiSerial, PTC: before.PTC, Amount: 100_000, NotAfter: time.Now().Add(5 * time.Minute)}
	require.NoError(t, a.Sign(iss.Key, iss.Cert))

	require.NoError(t, s.PurseAuthorise(ctx, a))
	_, err = kpe.Credit(ctx, direct{card}, s, budiSerial, 1_000_000, time.Now())
	require.ErrorIs(t, err, sam.ErrCreditNotAuthorised, "more than authorised")
	unmoved("more than authorised")

	// its amount raised by the terminal: the SAM finds the signature false
	raised := *a
	raised.Amount = 1_000_000
	require.ErrorIs(t, s.PurseAuthorise(ctx, &raised), sam.ErrTopUpRefused)
	_, err = kpe.Credit(ctx, direct{card}, s, budiSerial, 1_000_000, time.Now())
	require.ErrorIs(t, err, sam.ErrCreditNotAuthorised, "a refused authorisation authorises nothing")
	unmoved("raised amount")

	// the authorised amount goes through once
	require.NoError(t, s.PurseAuthorise(ctx, a))
	res, err := kpe.Credit(ctx, direct{card}, s, budiSerial, 100_000, time.Now())
	require.NoError(t, err)
	assert.Equal(t, before.Balance+100_000, res.Proof.Balance)
	_, err = kpe.Credit(ctx, direct{card}, s, budiSerial, 100_000, time.Now())
	require.ErrorIs(t, err, sam.ErrCreditNotAuthorised, "one credit per authorisation")
	after, _ := purseOf(t, card)
	assert.Equal(t, before.Balance+100_000, after.Balance)
}
