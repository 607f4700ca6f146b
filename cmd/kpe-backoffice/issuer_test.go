package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kpe-agent/internal/clikit"
	"kpe-agent/internal/sod"
	"kpe-agent/lab/labpki"
	"kpe-agent/lab/softhsm"
)

// softHSMToken initialises a SoftHSM2 token of the test's own
// (lab/softhsm) and answers the module and the directory.
func softHSMToken(t *testing.T, label, pin string) (module, dir string) {
	return softhsm.Token(t, label, pin)
}

func runBO(args ...string) (int, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String() + errOut.String()
}

// issuer init makes the key in the token and writes a CSR the lab issuer
// CA certifies; issuer show then says the key matches the certificate and
// chains to the issuer roots (the PIN from a file, then from
// $KPE_PKCS11_PIN, never printed), and that another certificate does
// not match (exit 1). A wrong PIN, a taken label and missing flags are
// refused.
func TestIssuerInitAndShow(t *testing.T) {
	const pin = "PinS3cret4321"
	module, dir := softHSMToken(t, "kpe-issuer", pin)
	pinFile := filepath.Join(dir, "pin")
	os.WriteFile(pinFile, []byte(pin+"\n"), 0o600)
	csrPath := filepath.Join(dir, "ds.csr")
	tok := []string{"--pkcs11-module", module, "--pkcs11-token", "kpe-issuer", "--pkcs11-key-label", "bkn-ds-1"}
	code, out := runBO(append([]string{"issuer", "init", "--pkcs11-pin-file", pinFile, "--out", csrPath, "--common-name", "Lab BKN Document Signer (HSM)"}, tok...)...)
	if code != 0 || !strings.Contains(out, `key "bkn-ds-1" generated in token "kpe-issuer"`) {
		t.Fatalf("issuer init = %d\n%s", code, out)
	}
	csr, err := os.ReadFile(csrPath)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := labpki.NewCA("Lab BKN Root CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.DocumentSignerFromCSR(csr)
	if err != nil {
		t.Fatal(err)
	}
	certPath, rootsPath := filepath.Join(dir, "ds.pem"), filepath.Join(dir, "bkn-ca.pem")
	labpki.WriteCert(certPath, cert)
	labpki.WriteCert(rootsPath, ca.Cert)

	show := append([]string{"issuer", "show", "--issuer-signer", "pkcs11", "--issuer-cert", certPath, "--issuer-roots", rootsPath}, tok...)
	code, out = runBO(append(show, "--pkcs11-pin-file", pinFile)...)
	for _, want := range []string{`PKCS#11 token "kpe-issuer"`, `key:          "bkn-ds-1"`, "CN=Lab BKN Document Signer (HSM),O=Badan Kepegawaian Negara",
		"valid:        " + cert.NotBefore.UTC().Format(time.RFC3339), "key matches:  yes", "chains:       yes"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("issuer show = %d, want %q:\n%s", code, want, out)
		}
	}
	t.Setenv("KPE_PKCS11_PIN", pin)
	if code, out = runBO(show...); code != 0 || !strings.Contains(out, "key matches:  yes") || strings.Contains(out, "S3cret") {
		t.Errorf("issuer show with $KPE_PKCS11_PIN = %d:\n%s", code, out)
	}
	// a certificate of another key
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherCert, _ := ca.DocumentSigner(other.Public(), pkix.Name{CommonName: "another signer"})
	otherPath := filepath.Join(dir, "other.pem")
	labpki.WriteCert(otherPath, otherCert)
	code, out = runBO(append([]string{"issuer", "show", "--issuer-cert", otherPath}, tok...)...)
	if code != 1 || !strings.Contains(out, "key matches:  no") || !strings.Contains(out, "the key is not the certificate's") {
		t.Errorf("issuer show with another key's certificate = %d:\n%s", code, out)
	}
	// a certificate under another root
	rogue, _ := labpki.NewCA("Rogue CA")
	rogueRoots := filepath.Join(dir, "rogue.pem")
	labpki.WriteCert(rogueRoots, rogue.Cert)
	if code, out = runBO(append([]string{"issuer", "show", "--issuer-cert", certPath, "--issuer-roots", rogueRoots}, tok...)...); code != 1 || !strings.Contains(out, "chains:       no") {
		t.Errorf("issuer show against another root = %d:\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{append([]string{"issuer", "show", "--issuer-cert", certPath, "--pkcs11-pin", "000000"}, tok...), 1, "wrong PIN"},
		{append([]string{"issuer", "show", "--issuer-cert", certPath, "--pkcs11-pin", "1", "--pkcs11-pin-file", pinFile}, tok...), 2, "--pkcs11-pin and --pkcs11-pin-file: give one"},
		{append([]string{"issuer", "init", "--out", filepath.Join(dir, "again.csr")}, tok...), 1, "a key with this label exists already"},
		{append([]string{"issuer", "init", "--out", csrPath}, tok[:4]...), 2, "the PKCS#11 signer needs --pkcs11-key-label"},
		{append([]string{"issuer", "init"}, tok...), 2, "--out: where to write"},
		{append([]string{"issuer", "show", "--issuer-cert", certPath, "--pkcs11-token", "none"}, tok[:2]...), 2, "needs --pkcs11-key-label"},
		{[]string{"issuer", "show", "--issuer-cert", certPath, "--pkcs11-module", module, "--pkcs11-token", "none", "--pkcs11-key-label", "k"}, 1, "no such token"},
	} {
		if code, out := runBO(c.args...); code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("kpe-backoffice %q = %d, want %d and %q:\n%s", c.args, code, c.code, c.want, out)
		}
	}
}

// serve's issuer flags: a signer needs the issuer roots and the flags of
// its kind, and its certificate must chain to the roots; what they open
// is the Config.Issuer that signs security objects the roots verify.
func TestServeIssuerFlags(t *testing.T) {
	dir := t.TempDir()
	ca, _ := labpki.NewCA("Lab BKN Root CA")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert, _ := ca.DocumentSigner(key.Public(), pkix.Name{CommonName: "Lab BKN Document Signer"})
	keyPath, certPath, rootsPath := filepath.Join(dir, "ds-key.pem"), filepath.Join(dir, "ds.pem"), filepath.Join(dir, "bkn-ca.pem")
	labpki.WriteKey(keyPath, key)
	labpki.WriteCert(certPath, cert)
	labpki.WriteCert(rootsPath, ca.Cert)
	rogue, _ := labpki.NewCA("Rogue CA")
	roguePath := filepath.Join(dir, "rogue.pem")
	labpki.WriteCert(roguePath, rogue.Cert)

	s, roots, err := issuerSetup(&issuerFlags{kind: "file", key: keyPath, cert: certPath}, rootsPath, time.Now())
	if err != nil || s == nil || roots == nil {
		t.Fatalf("file signer: %v, %v, %v", s, roots, err)
	}
	h := sha256.Sum256([]byte("group"))
	b, err := sod.SignHashes(map[int][]byte{2: h[:]}, s, s.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	if o, err := sod.Parse(b); err != nil || o.VerifySignature(roots, time.Now()) != nil {
		t.Errorf("the configured signer's security object does not verify with the configured roots: %v", err)
	}
	s.Close()
	if s, roots, err := issuerSetup(&issuerFlags{}, "", time.Now()); s != nil || roots != nil || err != nil {
		t.Errorf("no issuer flags: %v, %v, %v; want no signer", s, roots, err)
	}
	if _, _, err := issuerSetup(&issuerFlags{kind: "file", key: keyPath, cert: certPath}, rootsPath, cert.NotAfter.Add(time.Hour)); err == nil ||
		!strings.Contains(err.Error(), "does not verify with --issuer-roots") {
		t.Errorf("expired certificate: %v", err)
	}

	pems := []string{"serve", "--sam-ca", rootsPath, "--tls-cert", "c", "--tls-key", "k", "--client-ca", rootsPath, "--listen", "127.0.0.1:0", "--staff-listen", "127.0.0.1:0"}
	tls, err := labpki.Write(t.TempDir(), "lab-01")
	if err != nil {
		t.Fatal(err)
	}
	good := []string{"serve", "--sam-ca", tls.TLSCA, "--tls-cert", tls.ServerCert, "--tls-key", tls.ServerKey, "--client-ca", tls.TLSCA, "--listen", "127.0.0.1:0", "--staff-listen", "127.0.0.1:0"}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{append(pems, "--issuer-signer", "file", "--issuer-key", keyPath, "--issuer-cert", certPath), 2, "--issuer-signer needs --issuer-roots"},
		{append(pems, "--issuer-signer", "hsm", "--issuer-roots", rootsPath), 2, `--issuer-signer "hsm": want file or pkcs11`},
		{append(pems, "--issuer-signer", "file", "--issuer-roots", rootsPath), 2, "--issuer-signer file needs --issuer-key and --issuer-cert"},
		{append(pems, "--issuer-key", keyPath), 2, "give --issuer-signer file or pkcs11 too"},
		{append(pems, "--issuer-signer", "file", "--issuer-key", keyPath, "--issuer-cert", certPath, "--issuer-roots", rootsPath, "--pkcs11-token", "t"), 2, "--pkcs11-* flags go with --issuer-signer pkcs11"},
		{append(pems, "--issuer-signer", "pkcs11", "--issuer-key", keyPath, "--issuer-roots", rootsPath), 2, "with pkcs11 the key stays in the token"},
		{append(pems, "--issuer-signer", "pkcs11", "--issuer-cert", certPath, "--issuer-roots", rootsPath), 2, "the PKCS#11 signer needs --pkcs11-module, --pkcs11-token, --pkcs11-key-label"},
		{append(good, "--issuer-signer", "file", "--issuer-key", keyPath, "--issuer-cert", certPath, "--issuer-roots", roguePath), 1, "does not verify with --issuer-roots"},
		{append(good, "--issuer-signer", "file", "--issuer-key", keyPath, "--issuer-cert", rootsPath, "--issuer-roots", rootsPath), 1, "the key does not match the certificate"},
	} {
		if code, out := runBO(c.args...); code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("kpe-backoffice %q = %d, want %d and %q:\n%s", c.args[len(pems):], code, c.code, c.want, out)
		}
	}
	var ue clikit.UsageError
	if _, _, err := issuerSetup(&issuerFlags{kind: "pkcs11", cert: certPath, module: "m", token: "t", keyLabel: "k"}, rootsPath, time.Now()); !errors.As(err, &ue) ||
		!strings.Contains(err.Error(), "$KPE_PKCS11_PIN") {
		t.Errorf("pkcs11 without a PIN: %v", err)
	}
}
