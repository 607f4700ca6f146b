package kpe_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/biometric"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/cardsim/kpeapp"
	"kpe-agent/lab/synth"
)

// recorder keeps the commands sent and can answer in the card's place.
type recorder struct {
	t      apdu.Transmitter
	cmds   []string
	answer func(cmd []byte) []byte // nil: pass on to t
}

func (r *recorder) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	r.cmds = append(r.cmds, strings.ToUpper(hex.EncodeToString(cmd)))
	if r.answer != nil {
		return r.answer(cmd), nil
	}
	return r.t.Transmit(ctx, cmd)
}

var master = bytes.Repeat([]byte{0x4B}, 16)

// labKPE is a personalised lab KPE whose holder enrolled synthetic finger
// (seed 5, id 1), with the profile's default BIT; tries 0 means the
// default counter.
func labKPE(t *testing.T, tries int) *kpeapp.Applet {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ds"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	c, _, err := biometric.ToCompact(synth.NewFinger(5, 1).Impression(synth.ParamsFor(synth.Easy), 5, 0, 7))
	require.NoError(t, err)
	ref, err := biometric.EncodeCompact(c.Minutiae())
	require.NoError(t, err)
	bit := biometric.BIT{Reference: kpe.DefaultFingerReference, Type: 8, Subtype: 0x0A, FormatOwner: 0x0101, FormatType: 0x0006,
		MinMinutiae: kpe.DefaultMinMinutiae, MaxMinutiae: kpe.DefaultMaxMinutiae, Order: biometric.OrderAscending | biometric.OrderXY}
	cfg, err := kpeapp.Personalise(kpeapp.Profile{
		Info:     kpe.CardInfo{Serial: [8]byte{0, 0, 0, 0, 0, 0, 0, 3}, Type: kpe.CardKPE, ProfileVersion: 1, MaxResponse: 256},
		Identity: kpe.Identity{NIP: "197208172000031002", Name: "Commands Test"},
		BIT:      biometric.EncodeBITGroup([]biometric.BIT{bit}),
	}, master, key, cert)
	require.NoError(t, err)
	cfg.Bio = &kpeapp.BioConfig{Reference: ref, Tries: tries}
	a, err := kpeapp.New(cfg)
	require.NoError(t, err)
	return a
}

func connect(t *testing.T, c cardsim.Card) apdu.Card {
	t.Helper()
	r := cardsim.NewMemReader("kpe")
	r.Insert(c)
	card, err := r.Connect(context.Background())
	require.NoError(t, err)
	return card
}

// Select is recognition's probe: 00 A4 04 0C with the AID, 9000 on a KPE,
// the card's 6A82 for another AID.
func TestSelect(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{t: connect(t, labKPE(t, 0))}
	c := apdu.NewClient(rec, apdu.Limits{})
	require.NoError(t, kpe.Select(ctx, c, nil))
	require.NoError(t, kpe.Select(ctx, c, kpe.DefaultAID))
	require.Equal(t, []string{"00A4040C05F04B504501", "00A4040C05F04B504501"}, rec.cmds)
	err := kpe.Select(ctx, c, []byte{0xF0, 0x4B, 0x50, 0x45, 0x02})
	require.ErrorIs(t, err, apdu.ErrFileNotFound)
	var se *apdu.StatusError
	require.ErrorAs(t, err, &se)
	require.ErrorIs(t, kpe.Select(ctx, c, make([]byte, 17)), apdu.ErrInvalidCommand)
}

// The VERIFY commands byte for byte, and how the card's status words are
// read (a fake card: no secure messaging).
func TestVerifyFingerCommands(t *testing.T) {
	ctx := context.Background()
	var sw []byte
	rec := &recorder{answer: func(cmd []byte) []byte {
		if cmd[0]&0x10 != 0 {
			return []byte{0x90, 0x00} // a chained segment taken
		}
		return sw
	}}

	sw = []byte{0x63, 0xC3}
	a, err := kpe.FingerTriesLeft(ctx, rec, 0x81)
	require.NoError(t, err)
	require.Equal(t, kpe.FingerAnswer{TriesLeft: 3}, a)
	sw = []byte{0x90, 0x00}
	a, err = kpe.FingerTriesLeft(ctx, rec, 0x82)
	require.NoError(t, err)
	require.Equal(t, kpe.FingerAnswer{Verified: true, TriesLeft: -1}, a)
	require.Equal(t, []string{"00210081", "00210082"}, rec.cmds)

	rec.cmds = nil
	a, err = kpe.VerifyFinger(ctx, rec, 0x81, []byte{0x7F, 0x2E, 0x03, 0x81, 0x01, 0xAA})
	require.NoError(t, err)
	require.True(t, a.Verified)
	require.Equal(t, []string{"00210081067F2E038101AA"}, rec.cmds)

	for _, tc := range []struct {
		sw     []byte
		target error
	}{
		{[]byte{0x69, 0x83}, apdu.ErrAuthenticationBlocked},
		{[]byte{0x6A, 0x80}, apdu.ErrWrongData},
		{[]byte{0x69, 0x82}, apdu.ErrSecurityStatusNotSatisfied},
	} {
		sw = tc.sw
		a, err = kpe.VerifyFinger(ctx, rec, 0x81, []byte{1, 2, 3})
		require.ErrorIs(t, err, tc.target)
		require.Equal(t, kpe.FingerAnswer{TriesLeft: -1}, a)
	}

	// Data beyond SMMaxCommandData is chained (CLA 10, then 00).
	rec.cmds = nil
	sw = []byte{0x63, 0xC1}
	long := bytes.Repeat([]byte{0x55}, kpe.SMMaxCommandData+10)
	a, err = kpe.VerifyFinger(ctx, rec, 0x81, long)
	require.NoError(t, err)
	require.Equal(t, kpe.FingerAnswer{TriesLeft: 1}, a)
	require.Len(t, rec.cmds, 2)
	require.True(t, strings.HasPrefix(rec.cmds[0], "10210081DF"), rec.cmds[0]) // 223 bytes
	require.True(t, strings.HasPrefix(rec.cmds[1], "002100810A"), rec.cmds[1])

	rec.cmds = nil
	_, err = kpe.VerifyFinger(ctx, rec, 0x81, nil)
	require.ErrorIs(t, err, apdu.ErrInvalidCommand)
	require.Empty(t, rec.cmds, "no empty VERIFY by mistake: that is FingerTriesLeft")
}

// VERIFY on the lab card inside its secure-messaging session: the counter,
// a probe outside the BIT limits (6A80, counter unchanged), and the
// enrolled finger (match, then 9000 to the empty VERIFY).
func TestVerifyFingerOnCard(t *testing.T) {
	ctx := context.Background()
	card, ch, err := kpe.ReadSession(ctx, connect(t, labKPE(t, 0)), kpe.SoftwareSAM{Master: master}, kpe.ReadOptions{})
	require.NoError(t, err)
	require.NotNil(t, ch)
	bits, err := biometric.ParseBITGroup(card.BIT)
	require.NoError(t, err)
	ref := bits[0].Reference
	require.Equal(t, kpe.DefaultFingerReference, ref)

	a, err := kpe.FingerTriesLeft(ctx, ch, ref)
	require.NoError(t, err)
	require.Equal(t, kpe.FingerAnswer{TriesLeft: kpe.DefaultFingerTries}, a)

	_, err = kpe.VerifyFinger(ctx, ch, ref, biometric.VerifyCommandData(make([]byte, 3*(kpe.DefaultMinMinutiae-1))))
	require.ErrorIs(t, err, apdu.ErrWrongData)
	a, err = kpe.FingerTriesLeft(ctx, ch, ref)
	require.NoError(t, err)
	require.Equal(t, kpe.DefaultFingerTries, a.TriesLeft)

	data, err := biometric.VerifyData(bits[0], synth.NewFinger(5, 1).Impression(synth.ParamsFor(synth.Easy), 5, 1, 7))
	require.NoError(t, err)
	a, err = kpe.VerifyFinger(ctx, ch, ref, biometric.VerifyCommandData(data))
	require.NoError(t, err)
	require.True(t, a.Verified)
	a, err = kpe.FingerTriesLeft(ctx, ch, ref)
	require.NoError(t, err)
	require.True(t, a.Verified)

	_, err = kpe.FingerTriesLeft(ctx, ch, ref+1)
	require.ErrorIs(t, err, apdu.ErrReferenceNotFound)
}

func TestGroupsAndPlainEFs(t *testing.T) {
	want := map[int]uint16{kpe.DGIdentity: kpe.FIDIdentity, kpe.DGEmployment: kpe.FIDEmployment, kpe.DGFamily: kpe.FIDFamily,
		kpe.DGBenefits: kpe.FIDBenefits, kpe.DGPhoto: kpe.FIDPhoto, kpe.DGBIT: kpe.FIDBIT}
	for dg, fid := range want {
		got, ok := kpe.GroupFID(dg)
		require.True(t, ok)
		require.Equal(t, fid, got, "DG%d", dg)
	}
	for _, dg := range []int{0, 7, -1} {
		_, ok := kpe.GroupFID(dg)
		require.False(t, ok, dg)
	}
	require.ElementsMatch(t, []uint16{kpe.FIDCardInfo, kpe.FIDBIT, kpe.FIDSOD}, kpe.PlainEFs())
	require.Equal(t, 223, kpe.SMMaxResponseData)
	require.Equal(t, 223, kpe.SMMaxCommandData)
}
