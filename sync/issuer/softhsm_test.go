//go:build cgo && unix

package issuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"

	"kpe-agent/lab/labpki"
	"kpe-agent/lab/softhsm"
)

const (
	testToken = "kpe-issuer-test"
	testPIN   = "246810"
)

// newToken initialises a SoftHSM2 token of the test's own (lab/softhsm)
// and answers the configuration of a key labelled label in it.
func newToken(t *testing.T, label string) PKCS11Config {
	t.Helper()
	mod, dir := softhsm.Token(t, testToken, testPIN)
	return PKCS11Config{Module: mod, TokenLabel: testToken, PIN: testPIN, KeyLabel: label, CertPath: filepath.Join(dir, "ds.pem")}
}

// certify has the lab issuer CA certify a CSR as a document signer and
// writes the certificate to path.
func certify(t *testing.T, ca *labpki.CA, csr []byte, path string) *x509.Certificate {
	t.Helper()
	cert, err := ca.DocumentSignerFromCSR(csr)
	if err != nil {
		t.Fatal(err)
	}
	if err := labpki.WriteCert(path, cert); err != nil {
		t.Fatal(err)
	}
	return cert
}

// The issuer's key made in a SoftHSM2 token: the lab issuer CA certifies
// its CSR as a document signer, the token signs a security object, and a
// reader's checks (sod.Parse, VerifySignature against the lab root, every
// group's hash) pass. The key stays in the token: a second opening finds
// it again, and signing stops at Close.
func TestTokenSignerIssuesVerifiableSOD(t *testing.T) {
	cfg := newToken(t, "issuer-ds-1")
	subject := pkix.Name{CommonName: "Lab BKN Document Signer (HSM)", Organization: []string{"kpe-agent lab"}}
	csr, err := GenerateInToken(cfg, subject)
	if err != nil {
		t.Fatal(err)
	}
	req, err := x509.ParseCertificateRequest(csr)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.CheckSignature(); err != nil || req.Subject.CommonName != subject.CommonName {
		t.Fatalf("CSR: signature %v, subject %v", err, req.Subject)
	}
	ca := labIssuer(t)
	cert := certify(t, ca, csr, cfg.CertPath)
	if cert.KeyUsage != x509.KeyUsageDigitalSignature || cert.IsCA {
		t.Errorf("document signer certificate: key usage %v, CA %v", cert.KeyUsage, cert.IsCA)
	}
	for i := range 2 { // the key is a token object: found again by a new session
		s, err := OpenPKCS11(cfg)
		if err != nil {
			t.Fatalf("opening %d: %v", i, err)
		}
		if !cert.Equal(s.Certificate()) || !req.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(s.Public()) {
			t.Error("the signer's certificate or public key is not the CSR's")
		}
		signAndVerify(t, s, ca.Pool())
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		d := sha256.Sum256([]byte("after close"))
		if _, err := s.Sign(rand.Reader, d[:], crypto.SHA256); !errors.Is(err, ErrClosed) {
			t.Errorf("sign after Close: %v, want ErrClosed", err)
		}
	}
}

// The private key generated in the token cannot leave it: CKA_SENSITIVE
// true, CKA_EXTRACTABLE false, and C_GetAttributeValue of CKA_VALUE is
// refused (CKR_ATTRIBUTE_SENSITIVE).
func TestTokenKeyNotExtractable(t *testing.T) {
	cfg := newToken(t, "issuer-ds-1")
	if _, err := GenerateInToken(cfg, pkix.Name{CommonName: "x"}); err != nil {
		t.Fatal(err)
	}
	ctx, err := crypto11.Configure(&crypto11.Config{Path: cfg.Module, TokenLabel: cfg.TokenLabel, Pin: cfg.PIN})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	key, err := ctx.FindKeyPair(nil, []byte(cfg.KeyLabel))
	if err != nil || key == nil {
		t.Fatalf("key pair %q: %v, %v", cfg.KeyLabel, key, err)
	}
	attrs, err := ctx.GetAttributes(key, []crypto11.AttributeType{crypto11.CkaSensitive, crypto11.CkaExtractable, crypto11.CkaPrivate, crypto11.CkaToken})
	if err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[crypto11.AttributeType]bool{crypto11.CkaSensitive: true, crypto11.CkaExtractable: false, crypto11.CkaPrivate: true, crypto11.CkaToken: true} {
		if got := isTrue(attrs[typ]); got != want {
			t.Errorf("attribute %#x = %v, want %v", typ, got, want)
		}
	}
	v, err := ctx.GetAttribute(key, crypto11.CkaValue)
	var p11 pkcs11.Error
	if !errors.As(err, &p11) || p11 != pkcs11.CKR_ATTRIBUTE_SENSITIVE {
		t.Errorf("reading the private value: %v, %v; want CKR_ATTRIBUTE_SENSITIVE", v, err)
	}
}

// Every failure has its typed error: wrong PIN, no such token, no such
// key, a taken label, a certificate of another key, a key that may leave
// the token, a module that does not load, an incomplete configuration.
func TestTokenErrors(t *testing.T) {
	cfg := newToken(t, "issuer-ds-1")
	ca := labIssuer(t)
	csr, err := GenerateInToken(cfg, pkix.Name{CommonName: "ds 1"})
	if err != nil {
		t.Fatal(err)
	}
	certify(t, ca, csr, cfg.CertPath)
	// a second key and its certificate
	other := cfg
	other.KeyLabel, other.CertPath = "issuer-ds-2", filepath.Join(filepath.Dir(cfg.CertPath), "ds2.pem")
	csr2, err := GenerateInToken(other, pkix.Name{CommonName: "ds 2"})
	if err != nil {
		t.Fatal(err)
	}
	certify(t, ca, csr2, other.CertPath)
	// a key that may be exported, made as a careless set-up would
	ctx, err := crypto11.Configure(&crypto11.Config{Path: cfg.Module, TokenLabel: cfg.TokenLabel, Pin: cfg.PIN})
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := crypto11.NewAttributeSetWithIDAndLabel([]byte("exportable"), []byte("exportable"))
	priv := pub.Copy()
	priv.Set(crypto11.CkaExtractable, true)
	priv.Set(crypto11.CkaSensitive, false)
	weak, err := ctx.GenerateECDSAKeyPairWithAttributes(pub, priv, elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	weakCert, err := ca.DocumentSigner(weak.Public(), pkix.Name{CommonName: "exportable"})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Close()
	exportable := cfg
	exportable.KeyLabel, exportable.CertPath = "exportable", filepath.Join(filepath.Dir(cfg.CertPath), "weak.pem")
	if err := labpki.WriteCert(exportable.CertPath, weakCert); err != nil {
		t.Fatal(err)
	}

	with := func(f func(*PKCS11Config)) PKCS11Config { c := cfg; f(&c); return c }
	for name, c := range map[string]struct {
		cfg  PKCS11Config
		want error
	}{
		"wrong PIN":    {with(func(c *PKCS11Config) { c.PIN = "999999" }), ErrWrongPIN},
		"no token":     {with(func(c *PKCS11Config) { c.TokenLabel = "no-such-token" }), ErrNoToken},
		"no key":       {with(func(c *PKCS11Config) { c.KeyLabel = "no-such-key" }), ErrNoKey},
		"mismatch":     {with(func(c *PKCS11Config) { c.CertPath = other.CertPath }), ErrKeyMismatch},
		"exportable":   {exportable, ErrKeyExportable},
		"no module":    {with(func(c *PKCS11Config) { c.Module = filepath.Join(t.TempDir(), "none.so") }), ErrModule},
		"no key label": {with(func(c *PKCS11Config) { c.KeyLabel = "" }), ErrConfig},
		"no cert file": {with(func(c *PKCS11Config) { c.CertPath = filepath.Join(t.TempDir(), "none.pem") }), os.ErrNotExist},
	} {
		s, err := OpenPKCS11(c.cfg)
		if !errors.Is(err, c.want) || s != nil {
			t.Errorf("%s: OpenPKCS11 = %v, %v; want %v", name, s, err, c.want)
		}
		if s != nil {
			s.Close()
		}
	}
	if _, err := GenerateInToken(cfg, pkix.Name{CommonName: "again"}); !errors.Is(err, ErrKeyExists) {
		t.Errorf("GenerateInToken over an existing label: %v, want ErrKeyExists", err)
	}
	if _, err := GenerateInToken(with(func(c *PKCS11Config) { c.PIN = "1" }), pkix.Name{CommonName: "x"}); !errors.Is(err, ErrWrongPIN) {
		t.Errorf("GenerateInToken with a wrong PIN: %v, want ErrWrongPIN", err)
	}
	// the right key still opens after all that
	s, err := OpenPKCS11(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// withRawSession runs f in a logged-in read-write session of cfg's token,
// through the PKCS#11 module directly (what crypto11 does not offer: the
// import of a private key, a search over every object class).
func withRawSession(t *testing.T, cfg PKCS11Config, f func(p *pkcs11.Ctx, s pkcs11.SessionHandle)) {
	t.Helper()
	p := pkcs11.New(cfg.Module)
	if p == nil {
		t.Fatalf("loading %s", cfg.Module)
	}
	defer p.Destroy()
	if err := p.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer p.Finalize()
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, slot := range slots {
		info, err := p.GetTokenInfo(slot)
		if err != nil || strings.TrimRight(info.Label, " ") != cfg.TokenLabel {
			continue
		}
		s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		defer p.CloseSession(s)
		if err := p.Login(s, pkcs11.CKU_USER, cfg.PIN); err != nil {
			t.Fatal(err)
		}
		defer p.Logout(s)
		f(p, s)
		return
	}
	t.Fatalf("no token %q", cfg.TokenLabel)
}

// importKey puts key into the token as a key pair labelled label with
// C_CreateObject, its private half marked sensitive and not extractable
// from now on: the way a key made outside the token gets in.
func importKey(t *testing.T, cfg PKCS11Config, label string, key *ecdsa.PrivateKey) {
	t.Helper()
	params, err := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}) // prime256v1
	if err != nil {
		t.Fatal(err)
	}
	ecdh, err := key.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	point, err := asn1.Marshal(ecdh.Bytes()) // an OCTET STRING of the uncompressed point
	if err != nil {
		t.Fatal(err)
	}
	scalar, err := key.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	id := []byte("imported-" + label)
	withRawSession(t, cfg, func(p *pkcs11.Ctx, s pkcs11.SessionHandle) {
		if _, err := p.CreateObject(s, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, scalar),
		}); err != nil {
			t.Fatalf("importing the private key: %v", err)
		}
		if _, err := p.CreateObject(s, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, point),
		}); err != nil {
			t.Fatalf("importing the public key: %v", err)
		}
	})
}

// objectsLabelled counts the token's objects of any class labelled label.
func objectsLabelled(t *testing.T, cfg PKCS11Config, label string) int {
	t.Helper()
	n := 0
	withRawSession(t, cfg, func(p *pkcs11.Ctx, s pkcs11.SessionHandle) {
		if err := p.FindObjectsInit(s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}); err != nil {
			t.Fatal(err)
		}
		defer p.FindObjectsFinal(s)
		objs, _, err := p.FindObjects(s, 100)
		if err != nil {
			t.Fatal(err)
		}
		n = len(objs)
	})
	return n
}

// A key made outside the token and imported into it, even marked
// sensitive and not extractable from then on, is not an issuer key: its
// private value has been outside. OpenPKCS11 refuses it, naming the
// attributes that give it away; the same key generated in the token opens.
func TestTokenRefusesImportedKey(t *testing.T) {
	cfg := newToken(t, "imported")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	importKey(t, cfg, cfg.KeyLabel, key)
	ca := labIssuer(t)
	cert, err := ca.DocumentSigner(&key.PublicKey, pkix.Name{CommonName: "imported"})
	if err != nil {
		t.Fatal(err)
	}
	if err := labpki.WriteCert(cfg.CertPath, cert); err != nil {
		t.Fatal(err)
	}
	s, err := OpenPKCS11(cfg)
	if s != nil {
		s.Close()
	}
	if !errors.Is(err, ErrKeyExportable) || s != nil {
		t.Fatalf("OpenPKCS11 of an imported key = %v, %v; want ErrKeyExportable", s, err)
	}
	for _, attr := range []string{"CKA_LOCAL false", "CKA_ALWAYS_SENSITIVE false", "CKA_NEVER_EXTRACTABLE false"} {
		if !strings.Contains(err.Error(), attr) {
			t.Errorf("the refusal %q does not name %s", err, attr)
		}
	}
	if strings.Contains(err.Error(), "CKA_SENSITIVE") || strings.Contains(err.Error(), "CKA_EXTRACTABLE") || strings.Contains(err.Error(), "CKA_PRIVATE") {
		t.Errorf("the refusal %q names an attribute that is right", err)
	}

	good := cfg
	good.KeyLabel, good.CertPath = "generated", filepath.Join(filepath.Dir(cfg.CertPath), "generated.pem")
	csr, err := GenerateInToken(good, pkix.Name{CommonName: "generated"})
	if err != nil {
		t.Fatal(err)
	}
	certify(t, ca, csr, good.CertPath)
	s, err = OpenPKCS11(good)
	if err != nil {
		t.Fatalf("a key generated in the token: %v", err)
	}
	s.Close()
}

// A token that makes a key GenerateInToken's checks refuse (here it is
// asked for an extractable one, as a token that ignored the template
// would give): the error names the attribute, and the key pair is
// destroyed, so the label is free and nothing of it stays in the token.
func TestGenerateInTokenDestroysRefusedKey(t *testing.T) {
	cfg := newToken(t, "issuer-ds-1")
	keep := privateKeyTemplate
	t.Cleanup(func() { privateKeyTemplate = keep })
	privateKeyTemplate = func() []*pkcs11.Attribute {
		return []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		}
	}
	csr, err := GenerateInToken(cfg, pkix.Name{CommonName: "x"})
	if !errors.Is(err, ErrKeyExportable) || csr != nil {
		t.Fatalf("GenerateInToken of an extractable key = %x, %v; want ErrKeyExportable", csr, err)
	}
	if !strings.Contains(err.Error(), "CKA_EXTRACTABLE true") || !strings.Contains(err.Error(), "CKA_NEVER_EXTRACTABLE false") {
		t.Errorf("the refusal %q does not name the attributes", err)
	}
	if n := objectsLabelled(t, cfg, cfg.KeyLabel); n != 0 {
		t.Errorf("%d objects labelled %q left in the token after the refusal", n, cfg.KeyLabel)
	}
	privateKeyTemplate = keep
	// the label is free again: with the right template the key is made
	if _, err := GenerateInToken(cfg, pkix.Name{CommonName: "x"}); err != nil {
		t.Fatalf("GenerateInToken after the refusal: %v", err)
	}
	if n := objectsLabelled(t, cfg, cfg.KeyLabel); n != 2 {
		t.Errorf("%d objects labelled %q, want the key pair", n, cfg.KeyLabel)
	}
}
