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
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// OpenPKCS11 opens the issuer key in a PKCS#11 token: it logs in to the
// token cfg.TokenLabel of cfg.Module with cfg.PIN, finds the one key pair
// labelled cfg.KeyLabel, and checks that it is ECDSA P-256, that it cannot
// leave the token (CKA_SENSITIVE true, CKA_EXTRACTABLE false) and that
// the certificate in cfg.CertPath is its certificate. Signing happens in
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
// is taken (ErrKeyExists). cfg.CertPath is not used.
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
	for _, a := range []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
	} {
		priv[a.Type] = a
	}
	key, err := ctx.GenerateECDSAKeyPairWithAttributes(pub, priv, elliptic.P256())
	if err != nil {
		return nil, fmt.Errorf("issuer: token %q: generating key %q: %w", cfg.TokenLabel, cfg.KeyLabel, err)
	}
	if err := checkKey(ctx, key, cfg); err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject,
		SignatureAlgorithm: x509.ECDSAWithSHA256}, key)
	if err != nil {
		return nil, fmt.Errorf("issuer: certificate request signed in token %q: %w", cfg.TokenLabel, err)
	}
	return csr, nil
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

// checkKey refuses a key that is not P-256 or that may leave the token.
func checkKey(ctx *crypto11.Context, key crypto11.Signer, cfg PKCS11Config) error {
	if _, err := p256(key.Public()); err != nil {
		return fmt.Errorf("key %q in token %q: %w", cfg.KeyLabel, cfg.TokenLabel, err)
	}
	attrs, err := ctx.GetAttributes(key, []crypto11.AttributeType{crypto11.CkaSensitive, crypto11.CkaExtractable})
	if err != nil {
		return fmt.Errorf("issuer: key %q in token %q: reading its attributes: %w", cfg.KeyLabel, cfg.TokenLabel, err)
	}
	if !isTrue(attrs[crypto11.CkaSensitive]) || isTrue(attrs[crypto11.CkaExtractable]) {
		return fmt.Errorf("%w: key %q in token %q", ErrKeyExportable, cfg.KeyLabel, cfg.TokenLabel)
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
