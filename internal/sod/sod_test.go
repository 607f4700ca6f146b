package sod

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type pki struct {
	caCert, dsCert *x509.Certificate
	dsKey          *ecdsa.PrivateKey
	roots          *x509.CertPool
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newPKI(t testing.TB, notAfter time.Time) pki {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Lab BKN Issuer CA"},
		NotBefore: t0.AddDate(-1, 0, 0), NotAfter: t0.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, _ := x509.ParseCertificate(caDER)
	dsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	dsTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Lab BKN Document Signer"},
		NotBefore: t0.AddDate(0, -1, 0), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	dsDER, err := x509.CreateCertificate(rand.Reader, dsTmpl, caCert, &dsKey.PublicKey, caKey)
	require.NoError(t, err)
	dsCert, _ := x509.ParseCertificate(dsDER)
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	return pki{caCert, dsCert, dsKey, roots}
}

func groups() map[int][]byte {
	return map[int][]byte{1: []byte("identity"), 2: []byte("employment"), 5: make([]byte, 20000)}
}

func TestSignParseVerify(t *testing.T) {
	p := newPKI(t, t0.AddDate(2, 0, 0))
	b, err := Sign(groups(), p.dsKey, p.dsCert)
	require.NoError(t, err)
	o, err := Parse(append(b, 0x00, 0xFF)) // padded EF
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 5}, o.Groups())
	require.NoError(t, o.VerifySignature(p.roots, t0))
	for dg, content := range groups() {
		require.NoError(t, o.CheckGroup(dg, content))
	}
}

func TestTamperedGroupIsNamed(t *testing.T) {
	p := newPKI(t, t0.AddDate(2, 0, 0))
	b, err := Sign(groups(), p.dsKey, p.dsCert)
	require.NoError(t, err)
	o, err := Parse(b)
	require.NoError(t, err)
	err = o.CheckGroup(2, []byte("employment, promoted by hand"))
	require.ErrorIs(t, err, ErrHashMismatch)
	var ge *GroupError
	require.True(t, errors.As(err, &ge))
	require.Equal(t, 2, ge.DG)
	require.ErrorIs(t, o.CheckGroup(3, []byte("x")), ErrNotCovered)
}

func TestUntrustedAndExpired(t *testing.T) {
	p := newPKI(t, t0.AddDate(0, 6, 0))
	b, err := Sign(groups(), p.dsKey, p.dsCert)
	require.NoError(t, err)
	o, err := Parse(b)
	require.NoError(t, err)
	// Another issuer CA is configured: untrusted.
	other := newPKI(t, t0.AddDate(2, 0, 0))
	require.ErrorIs(t, o.VerifySignature(other.roots, t0), ErrUntrusted)
	// Read after the signer certificate expired.
	require.ErrorIs(t, o.VerifySignature(p.roots, t0.AddDate(1, 0, 0)), ErrUntrusted)
	// No trust list at all.
	require.ErrorIs(t, o.VerifySignature(nil, t0), ErrUntrusted)
	require.NoError(t, o.VerifySignature(p.roots, t0))
}

func TestForgedSignature(t *testing.T) {
	p := newPKI(t, t0.AddDate(2, 0, 0))
	b, err := Sign(groups(), p.dsKey, p.dsCert)
	require.NoError(t, err)
	o, err := Parse(b)
	require.NoError(t, err)
	// A forger edits a hash entry (to match tampered data) but cannot re-sign.
	o.signed[len(o.signed)-1] ^= 1
	require.ErrorIs(t, o.VerifySignature(p.roots, t0), ErrSignature)

	// Signed by a key that does not belong to the certificate.
	forger := newPKI(t, t0.AddDate(2, 0, 0))
	b, err = Sign(groups(), forger.dsKey, p.dsCert)
	require.NoError(t, err)
	o, err = Parse(b)
	require.NoError(t, err)
	require.ErrorIs(t, o.VerifySignature(p.roots, t0), ErrSignature)
}

func TestParseErrors(t *testing.T) {
	p := newPKI(t, t0.AddDate(2, 0, 0))
	good, err := Sign(groups(), p.dsKey, p.dsCert)
	require.NoError(t, err)
	for name, b := range map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)-5],
		"not 77":    {0x70, 0x00},
		"trailing":  append(append([]byte{}, good...), 0x80, 0x00),
		"no fields": {0x77, 0x00},
	} {
		_, err := Parse(b)
		require.ErrorIs(t, err, ErrFormat, name)
	}
}

// The chain cache never widens trust: a chain verified once is still
// refused after it expires, before it starts, and under another trust list.
func TestChainCacheKeepsTimeAndTrust(t *testing.T) {
	p := newPKI(t, t0.AddDate(0, 6, 0))
	b, err := Sign(groups(), p.dsKey, p.dsCert)
	require.NoError(t, err)
	o, err := Parse(b)
	require.NoError(t, err)
	require.NoError(t, o.VerifySignature(p.roots, t0)) // now cached
	o2, err := Parse(b)
	require.NoError(t, err)
	require.Same(t, o.Signer, o2.Signer, "the parsed certificate is shared")
	require.NoError(t, o2.VerifySignature(p.roots, t0))
	require.ErrorIs(t, o2.VerifySignature(p.roots, t0.AddDate(1, 0, 0)), ErrUntrusted, "expired")
	require.ErrorIs(t, o2.VerifySignature(p.roots, t0.AddDate(-2, 0, 0)), ErrUntrusted, "not yet valid")
	other := newPKI(t, t0.AddDate(2, 0, 0))
	require.ErrorIs(t, o2.VerifySignature(other.roots, t0), ErrUntrusted, "another trust list")
	// A forged signature is caught although the chain is cached.
	o2.Signature[len(o2.Signature)-1] ^= 1
	require.Error(t, o2.VerifySignature(p.roots, t0))
}
