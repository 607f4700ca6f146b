package signing_test

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/signing"
	"kpe-agent/apdu/pcsc"
	"kpe-agent/apdu/sam"
	"kpe-agent/lab/cardsim"
	_ "kpe-agent/lab/cardsim/samapp"
	"kpe-agent/lab/labset"
	"kpe-agent/lab/pcsctest"
	"kpe-agent/sync/record"
)

// Records sealed by the lab SAM through real pcscd verify with the SAM's
// certificate, which chains to the back-office CA; counters strictly
// increase; a changed record no longer verifies.
func TestIntegrationSAMSealsRecords(t *testing.T) {
	pcsctest.Require(t)
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	dir := pcsctest.RepoPath("testdata/cards/lab")
	m, err := labset.LoadManifest(dir)
	require.NoError(t, err)
	card, err := cardsim.LoadCard(filepath.Join(dir, "cards", "sam.json"))
	require.NoError(t, err)
	lab := pcsctest.Lab(t)
	require.NoError(t, lab.Insert(1, card))
	pcsctest.WaitCard(t, pcsctest.Slot1, true, 15*time.Second)

	tr := pcsc.New(pcsc.Options{})
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := tr.Connect(ctx, pcsctest.Slot1)
	require.NoError(t, err)
	defer c.Close()
	s, err := sam.Open(ctx, c)
	require.NoError(t, err)

	// before activation the SAM refuses to sign
	sg, err := signing.New(ctx, s)
	require.NoError(t, err)
	r := sampleRecord()
	require.ErrorIs(t, record.Seal(ctx, r, sg), sam.ErrNotActivated)
	require.ErrorIs(t, record.Seal(ctx, r, sg), record.ErrSign)
	require.NoError(t, s.Activate(ctx, []byte(m.SAM.ActivationCode)))

	// the certificate chains to the back-office CA
	roots, err := m.Roots(dir, "backoffice")
	require.NoError(t, err)
	_, err = sg.Certificate().Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	require.NoError(t, err)
	assert.Equal(t, record.SignerSAM, sg.Kind())

	// the lab SAM, like a real one, answers either s: Sign gives the low one
	for i := 0; i < 16; i++ {
		_, sig, err := sg.Sign(ctx, [32]byte{byte(i)})
		require.NoError(t, err)
		require.Equal(t, record.LowS(sig), sig, "signature %d has the high s", i)
	}

	var prev [32]byte
	var last uint32
	for i := 0; i < 5; i++ {
		r := sampleRecord()
		r.ID[15] = byte(i)
		r.PrevHash = prev
		require.NoError(t, record.Seal(ctx, r, sg))
		assert.Equal(t, record.SignerSAM, r.Signer)
		assert.Equal(t, sg.Serial(), r.SAMSerial)
		require.NoError(t, r.Verify(sg.PublicKey()))
		if i > 0 {
			assert.Greater(t, r.Counter, last)
		}
		last = r.Counter
		prev, err = r.Hash()
		require.NoError(t, err)

		b, err := r.Encode()
		require.NoError(t, err)
		back, err := record.Decode(b)
		require.NoError(t, err)
		require.NoError(t, back.Verify(sg.PublicKey()))
		back.Service = "taspen"
		assert.ErrorIs(t, back.Verify(sg.PublicKey()), record.ErrSignature)
	}
	got, err := s.Counter(ctx)
	require.NoError(t, err)
	assert.Equal(t, last, got)
}

func sampleRecord() *record.Record {
	return &record.Record{
		ID: [16]byte{9, 9}, TerminalID: "lab-01", SiteID: "lab", OperatorID: "trainer", Service: "askes",
		CardType: record.CardKPE, CardSerial: []byte{1, 2, 3, 4}, SubjectKind: record.SubjectNIP, Subject: "196608011988031001",
		CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
		Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Pass},
		Time: time.Now(), Clock: record.ClockSynced,
	}
}
