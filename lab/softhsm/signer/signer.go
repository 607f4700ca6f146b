//go:build unix

// Package signer gives tests the issuer's document signer as a back
// office has it in production: its key generated in a SoftHSM2 token of
// the test's own (lab/softhsm), certified by a lab CA, and used through
// PKCS#11 (sync/issuer).
package signer

import (
	"crypto/x509/pkix"
	"path/filepath"
	"testing"

	"kpe-agent/lab/labpki"
	"kpe-agent/lab/softhsm"
	"kpe-agent/sync/issuer"
)

// New makes a token, generates the document signer's key in it (never
// extractable), has ca certify the key's CSR, and opens the signer
// through PKCS#11, as a back office does in production. It is closed at
// the end of the test.
func New(t testing.TB, ca *labpki.CA) issuer.IssuerSigner {
	t.Helper()
	const label, pin = "kpe-issuer", "246810"
	module, dir := softhsm.Token(t, label, pin)
	cfg := issuer.PKCS11Config{Module: module, TokenLabel: label, PIN: pin, KeyLabel: "document-signer", CertPath: filepath.Join(dir, "ds.pem")}
	csr, err := issuer.GenerateInToken(cfg, pkix.Name{CommonName: "Lab BKN Renewal Signer"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.DocumentSignerFromCSR(csr)
	if err != nil {
		t.Fatal(err)
	}
	if err := labpki.WriteCert(cfg.CertPath, cert); err != nil {
		t.Fatal(err)
	}
	s, err := issuer.OpenPKCS11(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
