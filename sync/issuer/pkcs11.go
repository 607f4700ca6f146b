//go:build cgo

package issuer

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// OpenPKCS11 opens the issuer key in a PKCS#11 token: it logs in to the
// token cfg.TokenLabel of cfg.Module with cfg.PIN, finds the one key pair
// labelled cfg.KeyLabel, and checks that it is ECDSA P-256, that it was
// made in the token and has never been able to leave it (checkKey) and
// that the certificate in cfg.CertPath is its certificate. Signing happens in
// the token; only digests go in and signatures come out.
func OpenPKCS11(cfg PKCS11Config) (IssuerSigner, error) {
	if cfg.Module == "" || cfg.TokenLabel == "" || cfg.KeyLabel == "" || cfg.CertPath == "" {
		return nil, fmt.Errorf("%w: PKCS#11 needs a module, a token label, a key label and a certificate file", ErrConfig)
	}
	cert, err := LoadCertificate(cfg.CertPath)
	if err != nil {
		return nil, err
	}
	ctx, err := configure(cfg)
	if err != nil {
		return nil, err
	}
	key, err := findKey(ctx, cfg)
	if err == nil {
		err = checkKey(ctx, key, cfg)
	}
	if err == nil {
		if err = matches(key.Public(), cert); err != nil {
			err = fmt.Errorf("key %q and %s: %w", cfg.KeyLabel, cfg.CertPath, err)
		}
	}
	if err != nil {
		ctx.Close()
		return nil, err
	}
	return &tokenSigner{ctx: ctx, key: key, cert: cert}, nil
}

// GenerateInToken makes an ECDSA P-256 key pair inside the token, labelled
// cfg.KeyLabel (with a random CKA_ID), whose private half is sensitive and
// not extractable, and answers a certificate signing request (DER) for
// subject signed by that key, for the issuer CA. It refuses a label that
// is taken (ErrKeyExists). The new key must pass the same checks as
// OpenPKCS11's (checkKey; a token that ignores the template fails them):
// a key that fails them, or whose request cannot be signed, is destroyed
// before the error is returned, so the label is free again and no key
// without a certificate request is left behind. cfg.CertPath is not used.
func GenerateInToken(cfg PKCS11Config, subject pkix.Name) (csrDER []byte, err error) {
	if cfg.Module == "" || cfg.TokenLabel == "" || cfg.KeyLabel == "" {
		return nil, fmt.Errorf("%w: PKCS#11 needs a module, a token label and a key label", ErrConfig)
	}
	ctx, err := configure(cfg)
	if err != nil {
		return nil, err
	}
	defer ctx.Close()
	existing, err := ctx.FindKeyPairs(nil, []byte(cfg.KeyLabel))
	if err != nil {
		return nil, fmt.Errorf("issuer: token %q: looking for key %q: %w", cfg.TokenLabel, cfg.KeyLabel, err)
	}
	if len(existing) > 0 {
		return nil, fmt.Errorf("%w: %q in token %q", ErrKeyExists, cfg.KeyLabel, cfg.TokenLabel)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	pub, err := crypto11.NewAttributeSetWithIDAndLabel(id, []byte(cfg.KeyLabel))
	if err != nil {
		return nil, err
	}
	priv := pub.Copy()
	for _, a := range privateKeyTemplate() {
		priv[a.Type] = a
	}
	key, err := ctx.GenerateECDSAKeyPairWithAttributes(pub, priv, elliptic.P256())
	if err != nil {
		return nil, fmt.Errorf("issuer: token %q: generating key %q: %w", cfg.TokenLabel, cfg.KeyLabel, err)
	}
	err = checkKey(ctx, key, cfg)
	if err == nil {
		csr, cerr := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject,
			SignatureAlgorithm: x509.ECDSAWithSHA256}, key)
		if cerr == nil {
			return csr, nil
		}
		err = fmt.Errorf("issuer: certificate request signed in token %q: %w", cfg.TokenLabel, cerr)
	}
	if derr := key.Delete(); derr != nil {
		return nil, errors.Join(err, fmt.Errorf("issuer: token %q: destroying the refused key %q: %w", cfg.TokenLabel, cfg.KeyLabel, derr))
	}
	return nil, err
}

// privateKeyTemplate is what GenerateInToken asks of the private half: a
// token object, private, sensitive, not extractable, for signing. A
// variable so that the tests can ask a token for a key checkKey refuses.
var privateKeyTemplate = func() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
	}
}

// configure opens the module and logs in to the token, mapping the
// failures to the package's errors.
func configure(cfg PKCS11Config) (*crypto11.Context, error) {
	ctx, err := crypto11.Configure(&crypto11.Config{Path: cfg.Module, TokenLabel: cfg.TokenLabel, Pin: cfg.PIN})
	if err == nil {
		return ctx, nil
	}
	var p11 pkcs11.Error
	switch {
	case errors.As(err, &p11) && (p11 == pkcs11.CKR_PIN_INCORRECT || p11 == pkcs11.CKR_PIN_INVALID || p11 == pkcs11.CKR_PIN_LEN_RANGE):
		return nil, fmt.Errorf("%w for token %q", ErrWrongPIN, cfg.TokenLabel)
	case errors.As(err, &p11) && p11 == pkcs11.CKR_PIN_LOCKED:
		return nil, fmt.Errorf("%w: token %q", ErrPINLocked, cfg.TokenLabel)
	// crypto11 v1.6.2's own sentinels are unexported: these are their
	// texts (go.mod pins the version; the tests cover both).
	case err.Error() == "could not find PKCS#11 token":
		return nil, fmt.Errorf("%w: %q in %s", ErrNoToken, cfg.TokenLabel, cfg.Module)
	case err.Error() == "failed to create module context: failed to open module":
		return nil, fmt.Errorf("%w: %s", ErrModule, cfg.Module)
	}
	return nil, fmt.Errorf("issuer: PKCS#11 token %q in %s: %w", cfg.TokenLabel, cfg.Module, err)
}

// findKey finds the one key pair labelled cfg.KeyLabel.
func findKey(ctx *crypto11.Context, cfg PKCS11Config) (crypto11.Signer, error) {
	keys, err := ctx.FindKeyPairs(nil, []byte(cfg.KeyLabel))
	if err != nil {
		return nil, fmt.Errorf("issuer: token %q: looking for key %q: %w", cfg.TokenLabel, cfg.KeyLabel, err)
	}
	switch len(keys) {
	case 0:
		return nil, fmt.Errorf("%w: %q in token %q", ErrNoKey, cfg.KeyLabel, cfg.TokenLabel)
	case 1:
		return keys[0], nil
	}
	return nil, fmt.Errorf("%w: %d keys labelled %q in token %q", ErrAmbiguousKey, len(keys), cfg.KeyLabel, cfg.TokenLabel)
}

// keyPolicy is what checkKey requires of the private half of an issuer
// key: each attribute and the value it must have. CKA_LOCAL true: the key
// was generated in the token (not imported, not unwrapped);
// CKA_ALWAYS_SENSITIVE true and CKA_NEVER_EXTRACTABLE true: it has never
// been readable or exportable since; CKA_SENSITIVE true and
// CKA_EXTRACTABLE false: it is not now; CKA_PRIVATE true: it is usable
// only after login.
var keyPolicy = []struct {
	typ  crypto11.AttributeType
	name string
	want bool
}{
	{crypto11.CkaLocal, "CKA_LOCAL", true},
	{crypto11.CkaSensitive, "CKA_SENSITIVE", true},
	{crypto11.CkaAlwaysSensitive, "CKA_ALWAYS_SENSITIVE", true},
	{crypto11.CkaExtractable, "CKA_EXTRACTABLE", false},
	{crypto11.CkaNeverExtractable, "CKA_NEVER_EXTRACTABLE", true},
	{crypto11.CkaPrivate, "CKA_PRIVATE", true},
}

// checkKey refuses a key that is not P-256, or that was not generated in
// the token or may have left it (keyPolicy): ErrKeyExportable naming every
// attribute that is wrong.
func checkKey(ctx *crypto11.Context, key crypto11.Signer, cfg PKCS11Config) error {
	if _, err := p256(key.Public()); err != nil {
		return fmt.Errorf("key %q in token %q: %w", cfg.KeyLabel, cfg.TokenLabel, err)
	}
	types := make([]crypto11.AttributeType, len(keyPolicy))
	for i, a := range keyPolicy {
		types[i] = a.typ
	}
	attrs, err := ctx.GetAttributes(key, types)
	if err != nil {
		return fmt.Errorf("issuer: key %q in token %q: reading its attributes: %w", cfg.KeyLabel, cfg.TokenLabel, err)
	}
	var wrong []string
	for _, a := range keyPolicy {
		if isTrue(attrs[a.typ]) != a.want {
			wrong = append(wrong, fmt.Sprintf("%s %v, want %v", a.name, !a.want, a.want))
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("%w: key %q in token %q: %s", ErrKeyExportable, cfg.KeyLabel, cfg.TokenLabel, strings.Join(wrong, "; "))
	}
	return nil
}

// isTrue reads a CK_BBOOL attribute (absent: false).
func isTrue(a *crypto11.Attribute) bool { return a != nil && len(a.Value) == 1 && a.Value[0] != 0 }

type tokenSigner struct {
	mu     sync.RWMutex
	ctx    *crypto11.Context
	key    crypto11.Signer
	cert   *x509.Certificate
	closed bool
}

func (s *tokenSigner) Public() crypto.PublicKey       { return s.cert.PublicKey }
func (s *tokenSigner) Certificate() *x509.Certificate { return s.cert }

// Sign signs a SHA-256 digest in the token (CKM_ECDSA) and answers the
// ASN.1 DER signature.
func (s *tokenSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if err := checkDigest(digest, opts); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	sig, err := s.key.Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("issuer: signing in the token: %w", err)
	}
	return sig, nil
}

// Close logs out and closes the PKCS#11 sessions.
func (s *tokenSigner) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.ctx.Close()
}
