package kpeapp_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"kpe-agent/apdu"
	"kpe-agent/apdu/ktpel"
	"kpe-agent/apdu/sam"
	"kpe-agent/apdu/sm"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/cardsim/kpeapp"
	"kpe-agent/lab/cardsim/samapp"
)

var (
	ktpMaster = bytes.Repeat([]byte{0x44}, 24)
	ktpUID    = []byte{0x04, 0x52, 0x8A, 0x1C, 0x6D, 0x31, 0x80}
	ktpNIK    = "3174055203870002"
	ktpName   = "SITI NURHALIZA"
)

func sampleKTP(t testing.TB, is issuer, keyMaster []byte) *kpeapp.Applet {
	cfg, err := kpeapp.PersonaliseKTPel(kpeapp.KTPProfile{
		UID:    ktpUID,
		Header: ktpel.Header{ChipSerial: []byte{0x12, 0x34, 0x56, 0x78}, Version: 1},
		Biodata: ktpel.Biodata{NIK: ktpNIK, Name: ktpName, BirthPlace: "JAKARTA", BirthDate: "12-03-1987",
			Gender: "PEREMPUAN", Province: "DKI JAKARTA"},
		Photo:     bytes.Repeat([]byte{0xFF, 0xD8, 0x17}, 3000),
		Signature: bytes.Repeat([]byte{0x42}, 900),
		Fingerprints: [2]ktpel.Fingerprint{
			{Finger: 2, Template: bytes.Repeat([]byte{0x11}, 400)},
			{Finger: 7, Template: bytes.Repeat([]byte{0x22}, 380)},
		},
	}, keyMaster, is.key, is.cert)
	require.NoError(t, err)
	a, err := kpeapp.New(cfg)
	require.NoError(t, err)
	return a
}

// newKTPSAM is a SAM with the KTP-el master, activated for the terminal
// and, with the two installation secrets, for KTP-el.
func newKTPSAM(t testing.TB, activateKTP bool) *sam.SAM {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	a, err := samapp.New(samapp.Config{Name: "lab-sam", ActivationCode: []byte("123456"), Key: key,
		StatePath: filepath.Join(t.TempDir(), "sam.json"), KTPMaster: ktpMaster,
		KTPSecret1: []byte("rahasia-satu"), KTPSecret2: []byte("rahasia-dua")})
	require.NoError(t, err)
	r := cardsim.NewMemReader("sam")
	r.Insert(a)
	c, err := r.Connect(context.Background())
	require.NoError(t, err)
	s, err := sam.Open(context.Background(), c)
	require.NoError(t, err)
	require.NoError(t, s.Activate(context.Background(), []byte("123456")))
	if activateKTP {
		var ae *sam.ActivationError
		require.ErrorAs(t, s.ActivateKTP(context.Background(), []byte("rahasia-satu"), []byte("salah")), &ae)
		require.Equal(t, 2, ae.TriesLeft)
		require.NoError(t, s.ActivateKTP(context.Background(), []byte("rahasia-satu"), []byte("rahasia-dua")))
	}
	return s
}

func connect(t testing.TB, c cardsim.Card) apdu.Card {
	r := cardsim.NewMemReader("card")
	r.Insert(c)
	card, err := r.Connect(context.Background())
	require.NoError(t, err)
	return card
}

func TestKTPelReadThroughSAM(t *testing.T) {
	ctx := context.Background()
	is := newIssuer(t)
	s := newKTPSAM(t, true)

	got, err := ktpel.Read(ctx, connect(t, sampleKTP(t, is, ktpMaster)), s, ktpel.ReadOptions{Photo: true, Roots: is.roots, Now: now})
	require.NoError(t, err)
	require.True(t, got.Verification.CardAuthentic.OK, got.Verification.CardAuthentic.Reason)
	require.True(t, got.Verification.DataAuthentic.OK, got.Verification.DataAuthentic.Reason)
	require.Equal(t, ktpNIK, got.Biodata.NIK)
	require.Len(t, got.Fingerprints, 2)
	require.Equal(t, 7, got.Fingerprints[1].Finger)
	require.Len(t, got.Photo, 9000)

	// The same through the software SAM gives the same data.
	soft, err := ktpel.Read(ctx, connect(t, sampleKTP(t, is, ktpMaster)), ktpel.SoftwareSAM{Master: ktpMaster}, ktpel.ReadOptions{Roots: is.roots, Now: now})
	require.NoError(t, err)
	require.Equal(t, got.Biodata, soft.Biodata)
	require.Nil(t, soft.Photo, "the photo is read only when asked")

	// A clone: right data, chip key from another master.
	clone, err := ktpel.Read(ctx, connect(t, sampleKTP(t, is, bytes.Repeat([]byte{0x99}, 24))), s, ktpel.ReadOptions{Roots: is.roots, Now: now})
	require.NoError(t, err)
	require.False(t, clone.Verification.CardAuthentic.OK)
	require.Empty(t, clone.Biodata.NIK)

	// The card renders redacted everywhere.
	require.NotContains(t, got.String(), ktpNIK)
	j, err := got.MarshalJSON()
	require.NoError(t, err)
	require.NotContains(t, string(j), ktpName)
}

func TestKTPelNeedsSAMActivation(t *testing.T) {
	is := newIssuer(t)
	s := newKTPSAM(t, false)
	_, err := ktpel.Read(context.Background(), connect(t, sampleKTP(t, is, ktpMaster)), s, ktpel.ReadOptions{Roots: is.roots, Now: now})
	require.ErrorIs(t, err, sam.ErrNotActivated)
}

// A plain READ BINARY of a protected EF is refused; a tampered protected
// answer is refused by the SAM's UNWRAP, and the reader says why.
func TestKTPelProtection(t *testing.T) {
	ctx := context.Background()
	is := newIssuer(t)
	card := connect(t, sampleKTP(t, is, ktpMaster))
	c := apdu.NewClient(card, apdu.Limits{})
	_, err := c.Send(ctx, apdu.Command{INS: 0xA4, P1: 0x00, P2: 0x0C, Data: []byte{0x7F, 0x0A}})
	require.NoError(t, err)
	_, err = c.ReadEF(ctx, ktpel.FIDBiodata)
	require.ErrorIs(t, err, apdu.ErrSecurityStatusNotSatisfied)

	s := newKTPSAM(t, true)
	tamper := &flipper{t: card}
	_, err = ktpel.Read(ctx, tamper, s, ktpel.ReadOptions{Roots: is.roots, Now: now})
	require.ErrorIs(t, err, sm.ErrSecureMessaging)
	require.ErrorContains(t, err, "6FF6", "the reader names the EF whose answer failed")
}

// flipper flips a bit in the first protected answer (CLA 0C).
type flipper struct {
	t    apdu.Transmitter
	done bool
}

func (f *flipper) Transmit(ctx context.Context, raw []byte) ([]byte, error) {
	r, err := f.t.Transmit(ctx, raw)
	if err == nil && !f.done && raw[0] == 0x0C && len(r) > 8 {
		f.done = true
		r[3] ^= 1
	}
	return r, err
}
