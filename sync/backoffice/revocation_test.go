package backoffice_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/lab/labpki"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/wire"
)

func writeCRL(t *testing.T, path string, ders ...[]byte) {
	var b []byte
	for _, d := range ders {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: d})...)
	}
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// A revoked SAM's records signed at or after the revocation time are
// refused as revoked-sam; earlier ones are taken. The list is an X.509
// CRL file of the SAM CA that the back office reloads when it changes.
func TestSAMRevocation(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		other, err := l.ca.NewSAM([8]byte{0x53, 0x41, 0x4d, 0, 0, 0, 0, 8})
		require.NoError(t, err)
		revokedAt := time.Now().Add(-time.Hour).Truncate(time.Second)
		path := filepath.Join(t.TempDir(), "sam.crl")
		empty, err := l.ca.CRL(1)
		require.NoError(t, err)
		writeCRL(t, path, empty)
		f, err := l.svc.LoadCRLFile(path, []*x509.Certificate{l.ca.Cert})
		require.NoError(t, err)

		before := l.sealAt("t-01", revokedAt.Add(-time.Minute), l.sam)
		after := l.sealAt("t-01", revokedAt.Add(time.Minute), l.sam)
		at := l.sealAt("t-01", revokedAt, l.sam)
		assert.Equal(t, wire.Accepted, l.ingest(before)[0].Status)

		// the CA revokes the SAM; the file changes and is reloaded
		entry, err := labpki.Revoked(l.sam, revokedAt)
		require.NoError(t, err)
		crl, err := l.ca.CRL(2, entry)
		require.NoError(t, err)
		writeCRL(t, path, crl)
		future := time.Now().Add(time.Minute) // a new mtime even on coarse clocks
		require.NoError(t, os.Chtimes(path, future, future))
		changed, err := f.Reload(false)
		require.NoError(t, err)
		require.True(t, changed)
		changed, err = f.Reload(false)
		require.NoError(t, err)
		assert.False(t, changed, "an unchanged file is not read again")

		res := l.ingest(after, at)
		assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonRevoked}, res[0])
		assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonRevoked}, res[1])
		// a record signed before the revocation, arriving after it, is taken
		late := l.sealAt("t-01", revokedAt.Add(-30*time.Second), l.sam)
		assert.Equal(t, wire.Accepted, l.ingest(late)[0].Status)
		// another SAM of the CA is not affected
		lo := &lab{t: t, prev: map[string][32]byte{}}
		res = ingestAs(t, l.svc, &wire.Batch{Certificates: [][]byte{other.Cert}, Records: [][]byte{lo.sealAt("t-03", time.Now(), other)}, SentAt: time.Now()}, "t-03")
		assert.Equal(t, wire.Accepted, res[0].Status, "%+v", res[0])

		// a list not signed by the SAM CA is refused, and the one in force stays
		rogue, err := labpki.NewCA(l.ca.Cert.Subject.CommonName) // the same name, another key
		require.NoError(t, err)
		forged, err := rogue.CRL(3)
		require.NoError(t, err)
		writeCRL(t, path, forged)
		_, err = f.Reload(true)
		assert.ErrorIs(t, err, backoffice.ErrRevocationList)
		res = l.ingest(l.sealAt("t-01", time.Now(), l.sam))
		assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonRevoked}, res[0])
	})
}

func TestParseRevocationList(t *testing.T) {
	ca, err := labpki.NewCA("test SAM CA")
	require.NoError(t, err)
	sam, err := ca.NewSAM(samSerial)
	require.NoError(t, err)
	e, err := labpki.Revoked(sam, time.Now())
	require.NoError(t, err)
	crl, err := ca.CRL(1, e)
	require.NoError(t, err)
	issuers := []*x509.Certificate{ca.Cert}

	rl, err := backoffice.ParseRevocationList(crl, issuers) // DER
	require.NoError(t, err)
	assert.Equal(t, 1, rl.Revoked())
	assert.False(t, rl.NextUpdate().IsZero())
	rl, err = backoffice.ParseRevocationList(nil, issuers)
	require.NoError(t, err)
	assert.Equal(t, 0, rl.Revoked())
	for name, data := range map[string][]byte{
		"garbage":         []byte("not a CRL"),
		"a certificate":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sam.Cert}),
		"PEM of no block": []byte("-----BEGIN nothing"),
	} {
		_, err := backoffice.ParseRevocationList(data, issuers)
		assert.ErrorIs(t, err, backoffice.ErrRevocationList, name)
	}
	_, err = backoffice.ParseRevocationList(crl, nil)
	assert.ErrorIs(t, err, backoffice.ErrRevocationList, "no issuer to check it against")
}
