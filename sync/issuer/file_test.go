package issuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"kpe-agent/internal/sod"
	"kpe-agent/lab/labpki"
)

// testGroups are data-group contents a security object covers.
var testGroups = map[int][]byte{1: []byte("identity"), 2: []byte("employment"), 3: []byte("family"), 4: []byte("benefits")}

// signAndVerify has s sign a security object over testGroups' hashes and
// checks it as a reader does: parsed, its signature chained to roots, and
// every group's hash.
func signAndVerify(t *testing.T, s IssuerSigner, roots *x509.CertPool) {
	t.Helper()
	hashes := map[int][]byte{}
	for dg, c := range testGroups {
		h := sha256.Sum256(c)
		hashes[dg] = h[:]
	}
	b, err := sod.SignHashes(hashes, s, s.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	o, err := sod.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.VerifySignature(roots, time.Now()); err != nil {
		t.Fatalf("the security object does not verify against the lab issuer root: %v", err)
	}
	for dg, c := range testGroups {
		if err := o.CheckGroup(dg, c); err != nil {
			t.Errorf("DG%d: %v", dg, err)
		}
	}
	if err := o.CheckGroup(2, []byte("changed")); err == nil {
		t.Error("an altered group passes the security object's check")
	}
}

// labIssuer is a lab issuer CA, as the BKN root of the lab cards.
func labIssuer(t *testing.T) *labpki.CA {
	t.Helper()
	ca, err := labpki.NewCA("Lab BKN Root CA")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// writeFileSigner writes a P-256 key (PKCS#8 or SEC1) and its
// document-signer certificate under ca.
func writeFileSigner(t *testing.T, ca *labpki.CA, sec1 bool) (keyPath, certPath string, key *ecdsa.PrivateKey) {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.DocumentSigner(key.Public(), pkix.Name{CommonName: "Lab BKN Document Signer (file)"})
	if err != nil {
		t.Fatal(err)
	}
	keyPath, certPath = filepath.Join(dir, "ds-key.pem"), filepath.Join(dir, "ds.pem")
	if sec1 {
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	} else if err := labpki.WriteKey(keyPath, key); err != nil {
		t.Fatal(err)
	}
	if err := labpki.WriteCert(certPath, cert); err != nil {
		t.Fatal(err)
	}
	return keyPath, certPath, key
}

// The lab's file signer does the HSM's job: its security objects verify
// against the lab issuer root, from a PKCS#8 or a SEC1 key file; it signs
// SHA-256 digests only, and nothing once closed.
func TestFileSigner(t *testing.T) {
	ca := labIssuer(t)
	for _, sec1 := range []bool{false, true} {
		keyPath, certPath, key := writeFileSigner(t, ca, sec1)
		s, err := OpenFile(keyPath, certPath)
		if err != nil {
			t.Fatal(err)
		}
		if !key.PublicKey.Equal(s.Public()) || s.Certificate().Subject.CommonName != "Lab BKN Document Signer (file)" {
			t.Errorf("signer's public key or certificate is not the file's: %v", s.Certificate().Subject)
		}
		signAndVerify(t, s, ca.Pool())
		d := sha256.Sum256([]byte("x"))
		if _, err := s.Sign(rand.Reader, d[:20], crypto.SHA1); !errors.Is(err, ErrDigest) {
			t.Errorf("SHA-1 digest: %v, want ErrDigest", err)
		}
		if _, err := s.Sign(rand.Reader, d[:], nil); !errors.Is(err, ErrDigest) {
			t.Errorf("no hash function: %v, want ErrDigest", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Sign(rand.Reader, d[:], crypto.SHA256); !errors.Is(err, ErrClosed) {
			t.Errorf("sign after Close: %v, want ErrClosed", err)
		}
	}
}

// A key file is refused unless it is a P-256 key matching the
// certificate, with a typed error.
func TestFileSignerRefuses(t *testing.T) {
	ca := labIssuer(t)
	keyPath, certPath, _ := writeFileSigner(t, ca, false)
	otherKey, otherCert, _ := writeFileSigner(t, ca, false)
	dir := t.TempDir()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384Path := filepath.Join(dir, "p384.pem")
	if err := labpki.WriteKey(p384Path, p384); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not PEM"), 0o600)
	for _, c := range []struct {
		key, cert string
		want      error
	}{
		{keyPath, otherCert, ErrKeyMismatch},
		{otherKey, certPath, ErrKeyMismatch},
		{p384Path, certPath, ErrBadKey},
		{garbage, certPath, ErrBadKey},
		{keyPath, garbage, ErrBadKey},
		{keyPath, keyPath, ErrBadKey}, // a key is no certificate
		{"", certPath, ErrConfig},
		{filepath.Join(dir, "none.pem"), certPath, os.ErrNotExist},
	} {
		s, err := OpenFile(c.key, c.cert)
		if !errors.Is(err, c.want) {
			t.Errorf("OpenFile(%s, %s) = %v, want %v", filepath.Base(c.key), filepath.Base(c.cert), err, c.want)
		}
		if s != nil {
			t.Errorf("OpenFile(%s, %s) answered a signer with its error", c.key, c.cert)
		}
	}
}
