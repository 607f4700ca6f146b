package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kpe-agent/lab/labpki"
)

// issuer-cert certifies a CSR's key as a document signer under the lab CA
// it is given; the certificate chains to that CA and carries the CSR's
// key and subject. A CSR whose signature is broken, a key that is not the
// CA's and missing flags are refused.
func TestIssuerCert(t *testing.T) {
	dir := t.TempDir()
	ca, err := labpki.NewCA("Lab BKN Root CA")
	if err != nil {
		t.Fatal(err)
	}
	caCert, caKey := filepath.Join(dir, "bkn-ca.pem"), filepath.Join(dir, "bkn-ca-key.pem")
	labpki.WriteCert(caCert, ca.Cert)
	labpki.WriteKey(caKey, ca.Key)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Lab BKN Document Signer (HSM)"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csrPath, out := filepath.Join(dir, "ds.csr"), filepath.Join(dir, "ds.pem")
	os.WriteFile(csrPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0o644)
	stdout, errOut, code := runCardsim(t, "issuer-cert", "--ca-cert", caCert, "--ca-key", caKey, "--csr", csrPath, "--out", out)
	if code != 0 || !strings.Contains(stdout, `document signer "CN=Lab BKN Document Signer (HSM)"`) {
		t.Fatalf("issuer-cert = %d\nstdout %q\nstderr %q", code, stdout, errOut)
	}
	b, _ := os.ReadFile(out)
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM", out)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the document signer does not chain to the lab CA: %v", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) || cert.KeyUsage != x509.KeyUsageDigitalSignature || cert.IsCA {
		t.Errorf("certificate: key %v, key usage %v, CA %v", key.PublicKey.Equal(cert.PublicKey), cert.KeyUsage, cert.IsCA)
	}

	broken := append([]byte(nil), csr...)
	broken[len(broken)-3] ^= 1 // the signature
	brokenPath := filepath.Join(dir, "broken.csr")
	os.WriteFile(brokenPath, broken, 0o644)
	other, _ := labpki.NewCA("Other CA")
	otherKey := filepath.Join(dir, "other-key.pem")
	labpki.WriteKey(otherKey, other.Key)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--ca-cert", caCert, "--ca-key", caKey, "--csr", brokenPath, "--out", out}, 1, "--csr " + brokenPath},
		{[]string{"--ca-cert", caCert, "--ca-key", otherKey, "--csr", csrPath, "--out", out}, 1, "is not the key of"},
		{[]string{"--ca-cert", caCert, "--ca-key", caKey, "--out", out}, 2, `required flag(s) "csr" not set`},
	} {
		if _, errOut, code := runCardsim(t, append([]string{"issuer-cert"}, c.args...)...); code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("issuer-cert %q = %d, want %d and %q: %s", c.args, code, c.code, c.want, errOut)
		}
	}
}
