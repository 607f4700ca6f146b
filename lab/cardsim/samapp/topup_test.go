package samapp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
	"kpe-agent/internal/topup"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/cardsim/samapp"
	"kpe-agent/lab/labset"
	"kpe-agent/lab/pcsctest"
)

var (
	topupCard  = [8]byte{0x4B, 0x50, 0x45, 0, 0, 0, 0, 0x11}
	topupOrder = kpe.PurseOrder{Kind: kpe.PurseCredit, CardSerial: topupCard, PTC: 3, Amount: 50_000,
		Time: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC).UnixMilli()}
)

// topupSAM is an activated lab SAM with both purse masters and roots
// (the issuer's root, or none), and its card for SELECT and reset.
func topupSAM(t *testing.T, roots ...*x509.Certificate) (*sam.SAM, *cardsim.MemReader) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	a, err := samapp.New(samapp.Config{Name: "sam", Serial: serial, ActivationCode: []byte(code), Key: key,
		StatePath: filepath.Join(t.TempDir(), "sam.json"), DebitMaster: make([]byte, 16), CreditMaster: make([]byte, 16), TopUpRoots: roots})
	require.NoError(t, err)
	r := cardsim.NewMemReader("mem")
	r.Insert(a)
	card, err := r.Connect(context.Background())
	require.NoError(t, err)
	s, err := sam.Open(context.Background(), card)
	require.NoError(t, err)
	require.NoError(t, s.Activate(context.Background(), []byte(code)))
	return s, r
}

func authorise(t *testing.T, iss *samapp.TopUpIssuer, o kpe.PurseOrder) *topup.Authorisation {
	t.Helper()
	a, err := iss.Authorise(o)
	require.NoError(t, err)
	return a
}

// txnOf is the SAM's purse transaction number now: a debit MAC's, less one.
func txnOf(t *testing.T, s *sam.SAM) uint32 {
	t.Helper()
	_, txn, _, err := s.PurseMAC(context.Background(), kpe.PurseOrder{Kind: kpe.PurseDebit, CardSerial: topupCard, Amount: 1, Time: 1})
	require.NoError(t, err, "a debit needs no authorisation")
	return txn - 1
}

// The SAM answers a CREDIT MAC only for the order it holds a verified
// authorisation for, once; every refusal consumes no transaction number.
func TestCreditNeedsAuthorisation(t *testing.T) {
	ctx := context.Background()
	iss, err := samapp.NewTopUpIssuer("test")
	require.NoError(t, err)
	s, _ := topupSAM(t, iss.Root)

	// authorised: the MAC, with the next number
	before := txnOf(t, s)
	require.NoError(t, s.PurseAuthorise(ctx, authorise(t, iss, topupOrder)))
	_, txn, _, err := s.PurseMAC(ctx, topupOrder)
	require.NoError(t, err)
	require.Equal(t, before+2, txn, "the debit probe took one, the credit the next")

	refused := func(name string, o kpe.PurseOrder) {
		t.Helper()
		n := txnOf(t, s)
		_, _, _, err := s.PurseMAC(ctx, o)
		require.ErrorIs(t, err, sam.ErrCreditNotAuthorised, name)
		require.ErrorIs(t, err, apdu.ErrReferenceDataNotUsable, name)
		require.Equal(t, n, txnOf(t, s)-1, "%s: a refused credit consumes no number", name)
	}
	refused("a second MAC after one use", topupOrder)
	refused("no authorisation", topupOrder)
	for _, c := range []struct {
		name string
		edit func(o *kpe.PurseOrder)
	}{
		{"another serial", func(o *kpe.PurseOrder) { o.CardSerial[7]++ }},
		{"another PTC", func(o *kpe.PurseOrder) { o.PTC++ }},
		{"a bigger amount", func(o *kpe.PurseOrder) { o.Amount++ }},
		{"a smaller amount", func(o *kpe.PurseOrder) { o.Amount-- }},
		{"after expiry by the order's time", func(o *kpe.PurseOrder) { o.Time += (10 * time.Minute).Milliseconds() }},
	} {
		require.NoError(t, s.PurseAuthorise(ctx, authorise(t, iss, topupOrder)))
		o := topupOrder
		c.edit(&o)
		refused(c.name, o)
	}
	// the last millisecond of its validity is still good
	require.NoError(t, s.PurseAuthorise(ctx, authorise(t, iss, topupOrder)))
	late := topupOrder
	late.Time += (10*time.Minute - time.Millisecond).Milliseconds()
	_, _, _, err = s.PurseMAC(ctx, late)
	require.NoError(t, err)
}

// SELECT and a reset empty the slot; a new PURSE AUTHORISE replaces it.
func TestTopUpSlotCleared(t *testing.T) {
	ctx := context.Background()
	iss, err := samapp.NewTopUpIssuer("test")
	require.NoError(t, err)
	s, r := topupSAM(t, iss.Root)
	require.NoError(t, s.PurseAuthorise(ctx, authorise(t, iss, topupOrder)))
	card, err := r.Connect(ctx)
	require.NoError(t, err)
	require.NoError(t, sam.Select(ctx, apdu.NewClient(card, apdu.Limits{}), nil))
	_, _, _, err = s.PurseMAC(ctx, topupOrder)
	require.ErrorIs(t, err, sam.ErrCreditNotAuthorised, "SELECT empties the slot")

	other := topupOrder
	other.Amount = 7
	require.NoError(t, s.PurseAuthorise(ctx, authorise(t, iss, topupOrder)))
	require.NoError(t, s.PurseAuthorise(ctx, authorise(t, iss, other)))
	_, _, _, err = s.PurseMAC(ctx, topupOrder)
	require.ErrorIs(t, err, sam.ErrCreditNotAuthorised, "the second authorisation replaced the first")
	require.NoError(t, s.PurseAuthorise(ctx, authorise(t, iss, other)))
	_, _, _, err = s.PurseMAC(ctx, other)
	require.NoError(t, err)
}

// Forged, untrusted and malformed authorisations are refused with their
// status words; a SAM without roots refuses every credit.
func TestPurseAuthoriseRefusals(t *testing.T) {
	ctx := context.Background()
	iss, err := samapp.NewTopUpIssuer("test")
	require.NoError(t, err)
	rogue, err := samapp.NewTopUpIssuer("rogue")
	require.NoError(t, err)
	s, r := topupSAM(t, iss.Root)

	raised := authorise(t, iss, topupOrder)
	raised.Amount *= 10 // the signature no longer covers it
	err = s.PurseAuthorise(ctx, raised)
	require.ErrorIs(t, err, sam.ErrTopUpRefused)
	require.ErrorIs(t, err, apdu.ErrVerificationFailed, "6300: not signed by a trusted issuer key")
	_, _, _, err = s.PurseMAC(ctx, topupOrder)
	require.ErrorIs(t, err, sam.ErrCreditNotAuthorised, "a refused authorisation leaves the slot empty")

	err = s.PurseAuthorise(ctx, authorise(t, rogue, topupOrder))
	require.ErrorIs(t, err, sam.ErrTopUpRefused)
	require.ErrorIs(t, err, apdu.ErrVerificationFailed, "6300: another root")

	bad := authorise(t, iss, topupOrder)
	bad.Cert = []byte{0x30, 0x03, 0x02, 0x01, 0x01}
	err = s.PurseAuthorise(ctx, bad)
	require.ErrorIs(t, err, sam.ErrTopUpRefused)
	require.ErrorIs(t, err, apdu.ErrWrongData, "6A80: a certificate that does not parse")

	// a malformed TLV, sent raw (chained: the client chains long data)
	raw, err := r.Connect(ctx)
	require.NoError(t, err)
	resp, err := apdu.NewClient(raw, apdu.Limits{}).Do(ctx, apdu.Command{CLA: sam.CLA, INS: sam.InsPurseAuthorise, Data: append(sam.EncodePurseAuthorise(authorise(t, iss, topupOrder)), 0x90, 0x00)})
	require.NoError(t, err)
	require.Equal(t, uint16(0x6A80), resp.SW)

	// no roots: every credit refused, debits unaffected
	none, _ := topupSAM(t)
	err = none.PurseAuthorise(ctx, authorise(t, iss, topupOrder))
	require.ErrorIs(t, err, sam.ErrTopUpRefused)
	require.ErrorIs(t, err, apdu.ErrConditionsNotSatisfied, "6985: no roots")
	_, _, _, err = none.PurseMAC(ctx, topupOrder)
	require.ErrorIs(t, err, sam.ErrCreditNotAuthorised)
	require.Equal(t, uint32(0), txnOf(t, none))
}

// PURSE AUTHORISE through pcscd: the chained command reaches the lab
// set's SAM (testdata/cards/lab/cards/sam.json), which trusts the set's
// BKN roots; an authorisation under the renewal root allows one CREDIT
// MAC.
func TestIntegrationPurseAuthoriseThroughPCSC(t *testing.T) {
	pcsctest.Require(t)
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	lab := pcsctest.Lab(t)
	pcsctest.Insert(t, lab, 1, "lab/cards/sam.json")
	dir := pcsctest.RepoPath("testdata/cards/lab")
	m, err := labset.LoadManifest(dir)
	require.NoError(t, err)
	iss, err := m.TopUpIssuer(dir, "Lab top-up signer (test)")
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := sam.Open(ctx, pcsctest.Connect(t, pcsctest.Slot1))
	require.NoError(t, err)
	require.NoError(t, s.Activate(ctx, []byte(m.SAM.ActivationCode)))
	o := topupOrder
	o.Time = time.Now().UnixMilli()
	a := authorise(t, iss, o)
	require.Greater(t, len(sam.EncodePurseAuthorise(a)), 255, "chained")
	require.NoError(t, s.PurseAuthorise(ctx, a))
	_, _, _, err = s.PurseMAC(ctx, o)
	require.NoError(t, err)
	_, _, _, err = s.PurseMAC(ctx, o)
	require.ErrorIs(t, err, sam.ErrCreditNotAuthorised)

	rogue, err := samapp.NewTopUpIssuer("rogue")
	require.NoError(t, err)
	require.ErrorIs(t, s.PurseAuthorise(ctx, authorise(t, rogue, o)), sam.ErrTopUpRefused)
}
