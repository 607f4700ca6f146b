package issuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"sync"
)

// OpenFile is the lab's issuer signer: an ECDSA P-256 private key in a PEM
// file (PKCS#8 "PRIVATE KEY" or SEC1 "EC PRIVATE KEY") and its
// document-signer certificate. The key must match the certificate. The
// key sits in memory: never for a real issuer (OpenPKCS11).
func OpenFile(keyPEMPath, certPEMPath string) (IssuerSigner, error) {
	if keyPEMPath == "" || certPEMPath == "" {
		return nil, fmt.Errorf("%w: a key file and a certificate file are needed", ErrConfig)
	}
	cert, err := LoadCertificate(certPEMPath)
	if err != nil {
		return nil, err
	}
	key, err := loadKey(keyPEMPath)
	if err != nil {
		return nil, err
	}
	if err := matches(key.Public(), cert); err != nil {
		return nil, fmt.Errorf("%s and %s: %w", keyPEMPath, certPEMPath, err)
	}
	return &fileSigner{key: key, cert: cert}, nil
}

func loadKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("issuer: key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%w: %s holds no PEM key", ErrBadKey, path)
	}
	var k any
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("%w: %s: PEM %q, want PRIVATE KEY or EC PRIVATE KEY", ErrBadKey, path, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadKey, path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s: a %T", ErrBadKey, path, k)
	}
	if _, err := p256(ek.Public()); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ek, nil
}

type fileSigner struct {
	mu     sync.RWMutex
	key    *ecdsa.PrivateKey
	cert   *x509.Certificate
	closed bool
}

func (s *fileSigner) Public() crypto.PublicKey       { return s.cert.PublicKey }
func (s *fileSigner) Certificate() *x509.Certificate { return s.cert }

func (s *fileSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if err := checkDigest(digest, opts); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	return ecdsa.SignASN1(rand.Reader, s.key, digest)
}

// Close forgets the key.
func (s *fileSigner) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed, s.key = true, nil
	return nil
}
