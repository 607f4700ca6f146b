package kpe

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"kpe-agent/apdu"
)

var (
	labMaster = bytes.Repeat([]byte{0x4B}, 16)
	serial1   = [8]byte{0, 0, 0, 0, 0, 0, 0, 1}
)

func challenge(t *testing.T) []byte {
	c := make([]byte, RndLen)
	_, err := rand.Read(c)
	require.NoError(t, err)
	return c
}

func TestMutualAuthentication(t *testing.T) {
	samKeys, err := DeriveCardKeys(labMaster, serial1)
	require.NoError(t, err)
	cardKeys, err := DeriveCardKeys(labMaster, serial1) // personalised from the same master
	require.NoError(t, err)

	rndIC := challenge(t)
	auth, ext, err := StartAuth(samKeys, rndIC, rand.Reader)
	require.NoError(t, err)
	require.Len(t, ext, AuthDataLen)
	resp, cardSM, err := CardRespond(cardKeys, rndIC, ext, rand.Reader)
	require.NoError(t, err)
	termSM, err := auth.Finish(resp)
	require.NoError(t, err)

	// Both ends now share a working secure-messaging session.
	p, err := termSM.Wrap(apdu.Command{INS: 0xB0, Ne: 256})
	require.NoError(t, err)
	cmd, err := cardSM.UnwrapCommand(p)
	require.NoError(t, err)
	require.Equal(t, 256, cmd.Ne)
	r, err := cardSM.WrapResponse(apdu.Response{Data: []byte("DG1"), SW: 0x9000})
	require.NoError(t, err)
	plain, err := termSM.Unwrap(r)
	require.NoError(t, err)
	require.Equal(t, []byte("DG1"), plain.Data)
}

// A clone carries the right data and serial but a key that was not derived
// from the master: the card rejects the SAM's cryptogram, and the SAM
// rejects anything the clone could answer.
func TestCloneIsNeverGenuine(t *testing.T) {
	samKeys, _ := DeriveCardKeys(labMaster, serial1)
	cloneKeys, _ := DeriveCardKeys(bytes.Repeat([]byte{0x99}, 16), serial1)

	rndIC := challenge(t)
	auth, ext, err := StartAuth(samKeys, rndIC, rand.Reader)
	require.NoError(t, err)
	_, _, err = CardRespond(cloneKeys, rndIC, ext, rand.Reader)
	require.ErrorIs(t, err, ErrAuthFailed)

	// A clone that ignores the check and answers with its own key.
	// (a well-formed cryptogram under the clone's key)
	_, forged, err := StartAuth(cloneKeys, rndIC, rand.Reader)
	require.NoError(t, err)
	_, err = auth.Finish(forged)
	require.ErrorIs(t, err, ErrAuthFailed)
}

func TestWrongChallengeAndReplay(t *testing.T) {
	keys, _ := DeriveCardKeys(labMaster, serial1)
	rndIC := challenge(t)
	_, ext, err := StartAuth(keys, rndIC, rand.Reader)
	require.NoError(t, err)
	// The card issued another challenge since: the old cryptogram fails.
	_, _, err = CardRespond(keys, challenge(t), ext, rand.Reader)
	require.ErrorIs(t, err, ErrAuthFailed)

	// A recorded card answer replayed to a new authentication fails.
	auth1, ext1, _ := StartAuth(keys, rndIC, rand.Reader)
	resp1, _, err := CardRespond(keys, rndIC, ext1, rand.Reader)
	require.NoError(t, err)
	_, err = auth1.Finish(resp1)
	require.NoError(t, err)
	auth2, _, _ := StartAuth(keys, rndIC, rand.Reader)
	_, err = auth2.Finish(resp1)
	require.ErrorIs(t, err, ErrAuthFailed)

	_, _, err = CardRespond(keys, rndIC, ext[:10], rand.Reader)
	require.ErrorIs(t, err, ErrAuthFormat)
	_, _, err = StartAuth(keys, rndIC[:8], rand.Reader)
	require.ErrorIs(t, err, ErrAuthFormat)
}

func TestKeysDifferPerCard(t *testing.T) {
	a, _ := DeriveCardKeys(labMaster, serial1)
	b, _ := DeriveCardKeys(labMaster, [8]byte{0, 0, 0, 0, 0, 0, 0, 2})
	require.NotEqual(t, a.Enc, b.Enc)
	require.NotEqual(t, a.Enc, a.MAC)
}
