// Package issuer holds the issuer's document signer: the key that signs the
// security objects (EF.SOD, docs/card-profiles.md §2.4) and the renewal
// authorisations the back office issues (docs/renewal.md). In production
// the key lives in an HSM and is used through PKCS#11 (OpenPKCS11; the key
// is made in the token by GenerateInToken and never leaves it); a key file
// (OpenFile) is for the card lab only.
//
// PKCS#11 needs cgo (the module is a C library): a build with
// CGO_ENABLED=0, such as the Windows cross-build, answers ErrNoPKCS11.
package issuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// IssuerSigner is the issuer's document signer. Sign takes a SHA-256
// digest (opts crypto.SHA256) and answers an ASN.1 DER ECDSA P-256
// signature; the private key never leaves the signer. Certificate is the
// document-signer certificate whose public key is Public(); the security
// object carries it.
type IssuerSigner interface {
	crypto.Signer
	Certificate() *x509.Certificate
	// Close releases the signer (the PKCS#11 session); signing after
	// Close fails.
	Close() error
}

// PKCS11Config says where the issuer key is: the PKCS#11 module (a shared
// library path), the token by label and its user PIN, the key pair by
// label (CKA_LABEL), and the PEM file of the document-signer certificate
// the issuer CA made for that key (CertPath; GenerateInToken does not use
// it).
type PKCS11Config struct {
	Module, TokenLabel, PIN, KeyLabel, CertPath string
}

// The signer's errors. Every error the package returns wraps one of these
// (or a file system error for a missing file).
var (
	// ErrNoPKCS11: this build has no PKCS#11 support (CGO_ENABLED=0).
	ErrNoPKCS11 = errors.New("issuer: this build has no PKCS#11 support (built without cgo)")
	// ErrConfig: a required setting is empty.
	ErrConfig = errors.New("issuer: incomplete configuration")
	// ErrModule: the PKCS#11 module could not be loaded or initialised.
	ErrModule = errors.New("issuer: the PKCS#11 module could not be loaded")
	// ErrNoToken: no token with the configured label.
	ErrNoToken = errors.New("issuer: no such token")
	// ErrWrongPIN: the token refused the PIN.
	ErrWrongPIN = errors.New("issuer: wrong PIN")
	// ErrPINLocked: the token's user PIN is locked (too many wrong PINs).
	ErrPINLocked = errors.New("issuer: the token's PIN is locked")
	// ErrNoKey: no key pair with the configured label in the token.
	ErrNoKey = errors.New("issuer: no such key")
	// ErrAmbiguousKey: more than one key pair has the configured label.
	ErrAmbiguousKey = errors.New("issuer: more than one key with this label")
	// ErrKeyExists: GenerateInToken found a key with the label already; it
	// never replaces one.
	ErrKeyExists = errors.New("issuer: a key with this label exists already")
	// ErrKeyExportable: the token key was not generated in the token or
	// may have left it (CKA_LOCAL, CKA_SENSITIVE, CKA_ALWAYS_SENSITIVE,
	// CKA_NEVER_EXTRACTABLE or CKA_PRIVATE false, or CKA_EXTRACTABLE
	// true); an issuer key must be made in the token and never leave it.
	// The message names the attributes that are wrong.
	ErrKeyExportable = errors.New("issuer: the key may leave the token")
	// ErrBadKey: the key or the certificate is not ECDSA P-256, or the
	// file is not a PEM key or certificate.
	ErrBadKey = errors.New("issuer: not an ECDSA P-256 key or certificate")
	// ErrKeyMismatch: the certificate's public key is not the key's.
	ErrKeyMismatch = errors.New("issuer: the key does not match the certificate")
	// ErrClosed: the signer is closed.
	ErrClosed = errors.New("issuer: signer closed")
	// ErrDigest: Sign was given something other than a SHA-256 digest.
	ErrDigest = errors.New("issuer: want a SHA-256 digest")
)

// LoadCertificate reads a PEM file whose first certificate is an ECDSA
// P-256 document-signer certificate.
func LoadCertificate(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("issuer: certificate: %w", err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%w: %s holds no PEM CERTIFICATE", ErrBadKey, path)
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadKey, path, err)
		}
		if _, err := p256(cert.PublicKey); err != nil {
			return nil, fmt.Errorf("%s: certificate: %w", path, err)
		}
		return cert, nil
	}
}

// p256 answers pub as an ECDSA P-256 key.
func p256(pub crypto.PublicKey) (*ecdsa.PublicKey, error) {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w (a %T)", ErrBadKey, pub)
	}
	return k, nil
}

// matches checks that pub is the certificate's key.
func matches(pub crypto.PublicKey, cert *x509.Certificate) error {
	k, err := p256(pub)
	if err != nil {
		return err
	}
	if !k.Equal(cert.PublicKey) {
		return fmt.Errorf("%w (certificate %q, serial %X)", ErrKeyMismatch, cert.Subject.String(), cert.SerialNumber)
	}
	return nil
}

// checkDigest refuses anything but a SHA-256 digest.
func checkDigest(digest []byte, opts crypto.SignerOpts) error {
	if opts == nil || opts.HashFunc() != crypto.SHA256 || len(digest) != sha256.Size {
		return fmt.Errorf("%w (%d bytes)", ErrDigest, len(digest))
	}
	return nil
}
