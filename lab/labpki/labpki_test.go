package labpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A document signer is certified from a CSR (DER or PEM) under the CA:
// P-256 key, digitalSignature only, not a CA, within the CA's validity,
// chaining to it. Other curves, a broken CSR signature and another PEM
// type are refused; LoadCA reads back what WriteCert and WriteKey wrote.
func TestDocumentSigner(t *testing.T) {
	ca, err := NewCA("Lab BKN Root CA")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "DS"}}, key)
	for _, in := range [][]byte{csr, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})} {
		cert, err := ca.DocumentSignerFromCSR(in)
		if err != nil {
			t.Fatal(err)
		}
		if cert.Subject.CommonName != "DS" || !key.PublicKey.Equal(cert.PublicKey) || cert.KeyUsage != x509.KeyUsageDigitalSignature || cert.IsCA ||
			cert.NotBefore.Before(ca.Cert.NotBefore) || cert.NotAfter.After(ca.Cert.NotAfter) || !cert.NotBefore.Before(time.Now()) {
			t.Errorf("document signer: %v key usage %v CA %v valid %v..%v", cert.Subject, cert.KeyUsage, cert.IsCA, cert.NotBefore, cert.NotAfter)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Error(err)
		}
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	csr384, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "DS"}}, p384)
	broken := append([]byte(nil), csr...)
	broken[len(broken)-3] ^= 1
	for name, c := range map[string]struct {
		in   []byte
		want string
	}{
		"P-384":       {csr384, "want an ECDSA P-256 public key"},
		"broken":      {broken, "certificate request"},
		"certificate": {pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), "want CERTIFICATE REQUEST"},
	} {
		if _, err := ca.DocumentSignerFromCSR(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if err := WriteCert(certPath, ca.Cert); err != nil {
		t.Fatal(err)
	}
	if err := WriteKey(keyPath, ca.Key); err != nil {
		t.Fatal(err)
	}
	back, err := LoadCA(certPath, keyPath)
	if err != nil || !back.Cert.Equal(ca.Cert) || !back.Key.Equal(ca.Key) {
		t.Errorf("LoadCA: %v", err)
	}
	otherKey := filepath.Join(dir, "other-key.pem")
	WriteKey(otherKey, key)
	if _, err := LoadCA(certPath, otherKey); err == nil || !strings.Contains(err.Error(), "is not the key of") {
		t.Errorf("LoadCA with another key: %v", err)
	}
}
