package cards_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/cards"
	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/biometric"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/cardsim/kpeapp"
	"kpe-agent/lab/synth"
)

var fingerMaster = bytes.Repeat([]byte{0x4B}, 16)

// fingerCard is a KPE whose holder enrolled synthetic finger (seed 5, id 1).
func fingerCard(t *testing.T, tries, maxN int) *kpeapp.Applet {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)
	enrol := synth.NewFinger(5, 1).Impression(synth.ParamsFor(synth.Easy), 5, 0, 7)
	c, _, err := biometric.ToCompact(enrol)
	require.NoError(t, err)
	ref, err := biometric.EncodeCompact(c.Minutiae())
	require.NoError(t, err)
	bit := biometric.BIT{Reference: 0x81, Type: 8, Subtype: 0x0A, FormatOwner: 0x0101, FormatType: 0x0006, MinMinutiae: 12, MaxMinutiae: maxN, Order: biometric.OrderAscending | biometric.OrderXY}
	cfg, err := kpeapp.Personalise(kpeapp.Profile{
		Info:     kpe.CardInfo{Serial: [8]byte{0, 0, 0, 0, 0, 0, 0, 9}, Type: kpe.CardKPE, ProfileVersion: 1, MaxResponse: 256},
		Identity: kpe.Identity{NIP: "197208172000031002", Name: "Finger Test"},
		BIT:      biometric.EncodeBITGroup([]biometric.BIT{bit}),
	}, fingerMaster, key, cert)
	require.NoError(t, err)
	cfg.Bio = &kpeapp.BioConfig{Reference: ref, MinN: 12, MaxN: maxN, MaxTries: 3, Tries: tries, Finger: kpeapp.FingerRef{Seed: 5, ID: 1, Code: 7}}
	a, err := kpeapp.New(cfg)
	require.NoError(t, err)
	return a
}

// counter counts the VERIFY commands that carry data.
type counter struct {
	t     apdu.Transmitter
	sends int
}

func (c *counter) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if len(cmd) > 5 && cmd[1] == 0x21 {
		c.sends++
	}
	return c.t.Transmit(ctx, cmd)
}

func openFinger(t *testing.T, a *kpeapp.Applet) (*kpe.Card, *counter) {
	r := cardsim.NewMemReader("kpe")
	r.Insert(a)
	c, err := r.Connect(context.Background())
	require.NoError(t, err)
	card, sm, err := kpe.ReadSession(context.Background(), c, kpe.SoftwareSAM{Master: fingerMaster}, kpe.ReadOptions{})
	require.NoError(t, err)
	require.NotNil(t, sm)
	return card, &counter{t: sm}
}

func live(id, n int) *biometric.Record {
	return synth.NewFinger(5, id).Impression(synth.ParamsFor(synth.Easy), 5, n, 7)
}

func TestMatchOnCard(t *testing.T) {
	ctx := context.Background()
	a := fingerCard(t, 0, 60)
	card, sm := openFinger(t, a)

	out, err := cards.VerifyOnCard(ctx, sm, card.BIT, live(1, 1), cards.FingerOptions{})
	require.NoError(t, err)
	require.True(t, out.Match, "the enrolled finger verifies")
	require.Equal(t, "7F2E", a.LastVerifyForm())

	out, err = cards.VerifyOnCard(ctx, sm, card.BIT, live(2, 1), cards.FingerOptions{})
	require.NoError(t, err)
	require.False(t, out.Match, "another person's finger")
	require.Equal(t, 2, out.TriesLeft, "63C2")

	out, err = cards.VerifyOnCard(ctx, sm, card.BIT, live(1, 2), cards.FingerOptions{})
	require.NoError(t, err)
	require.True(t, out.Match)
	tries, _, err := cards.TriesLeft(ctx, sm, mustBIT(t, card.BIT))
	require.NoError(t, err)
	require.Equal(t, -1, tries, "verified in this session: 9000")
}

func mustBIT(t *testing.T, b []byte) biometric.BIT {
	bits, err := biometric.ParseBITGroup(b)
	require.NoError(t, err)
	return bits[0]
}

// A burst of bad captures cannot block a card: they never reach it.
func TestRetryCounterProtection(t *testing.T) {
	ctx := context.Background()
	a := fingerCard(t, 2, 60)
	card, sm := openFinger(t, a)
	poor := live(1, 1)
	poor.Views[0].Minutiae = poor.Views[0].Minutiae[:5]
	for i := 0; i < 50; i++ {
		_, err := cards.VerifyOnCard(ctx, sm, card.BIT, poor, cards.FingerOptions{})
		require.ErrorIs(t, err, biometric.ErrPlaceAgain)
	}
	lowQ := live(1, 1)
	for i := range lowQ.Views[0].Minutiae {
		lowQ.Views[0].Minutiae[i].Quality = 5
	}
	_, err := cards.VerifyOnCard(ctx, sm, card.BIT, lowQ, cards.FingerOptions{MinQuality: 30})
	require.ErrorIs(t, err, biometric.ErrPlaceAgain)
	require.Zero(t, sm.sends, "no poor capture was sent")
	tries, _, err := cards.TriesLeft(ctx, sm, mustBIT(t, card.BIT))
	require.NoError(t, err)
	require.Equal(t, 2, tries, "the counter is untouched")

	// An impostor uses one try; with one left, nothing is sent without the
	// operator's confirmation.
	out, err := cards.VerifyOnCard(ctx, sm, card.BIT, live(3, 1), cards.FingerOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, out.TriesLeft)
	before := sm.sends
	_, err = cards.VerifyOnCard(ctx, sm, card.BIT, live(3, 2), cards.FingerOptions{})
	require.ErrorIs(t, err, cards.ErrLastTry)
	require.Equal(t, before, sm.sends)
	// Confirmed: the genuine finger resets the counter.
	out, err = cards.VerifyOnCard(ctx, sm, card.BIT, live(1, 3), cards.FingerOptions{ConfirmLastTry: true})
	require.NoError(t, err)
	require.True(t, out.Match)
	tries, verified, err := cards.TriesLeft(ctx, sm, mustBIT(t, card.BIT))
	require.NoError(t, err)
	require.True(t, verified)
	_ = tries
}

func TestBlockedCard(t *testing.T) {
	a := fingerCard(t, -1, 60)
	card, sm := openFinger(t, a)
	_, err := cards.VerifyOnCard(context.Background(), sm, card.BIT, live(1, 1), cards.FingerOptions{})
	require.ErrorIs(t, err, cards.ErrFingerBlocked)
	require.Zero(t, sm.sends, "a blocked card is not sent the finger")
}

// Over 82 minutiae the VERIFY data no longer fits one short APDU: it goes
// with command chaining under secure messaging, and the card takes it.
func TestVerifyChaining(t *testing.T) {
	a := fingerCard(t, 0, 120)
	card, sm := openFinger(t, a)
	big := live(1, 1)
	extra := live(1, 2).Minutiae()
	for _, m := range extra {
		m.X = (m.X + 400) % 490
		big.Views[0].Minutiae = append(big.Views[0].Minutiae, m)
	}
	big.Width = 500
	require.Greater(t, len(big.Minutiae()), 82)
	out, err := cards.VerifyOnCard(context.Background(), sm, card.BIT, big, cards.FingerOptions{})
	require.NoError(t, err)
	_ = out // the decision is the matcher's; the transport is what is tested
	require.Equal(t, "7F2E", a.LastVerifyForm())
}
