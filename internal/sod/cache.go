package sod

import (
	"crypto/sha256"
	"crypto/x509"
	"sync"
	"time"
)

// Document-signer certificates repeat: one signer covers many thousands of
// cards. Parsing the certificate and verifying its chain cost two thirds
// of a security-object check, so both are cached, bounded, per process.
// The cache holds only public certificates. The time check is never
// cached: a cached chain records the window in which all its certificates
// are valid, and every verification compares the reading time with it.

const certCacheSize = 64

type chainKey struct {
	cert  [32]byte
	roots *x509.CertPool
}

type chainEntry struct {
	notBefore, notAfter time.Time
}

var cache = struct {
	sync.Mutex
	certs  map[[32]byte]*x509.Certificate
	chains map[chainKey]chainEntry
}{certs: map[[32]byte]*x509.Certificate{}, chains: map[chainKey]chainEntry{}}

// parseCert parses der, from the cache when it was seen before. The
// returned certificate is shared and must not be modified.
func parseCert(der []byte) (*x509.Certificate, error) {
	h := sha256.Sum256(der)
	cache.Lock()
	c, ok := cache.certs[h]
	cache.Unlock()
	if ok {
		return c, nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	cache.Lock()
	if len(cache.certs) >= certCacheSize {
		clear(cache.certs) // bounded: start over rather than track recency
	}
	cache.certs[h] = c
	cache.Unlock()
	return c, nil
}

// verifiedChain reports whether cert was verified against roots before and
// at is inside the chain's validity window.
func verifiedChain(cert *x509.Certificate, roots *x509.CertPool, at time.Time) bool {
	cache.Lock()
	e, ok := cache.chains[chainKey{sha256.Sum256(cert.Raw), roots}]
	cache.Unlock()
	return ok && !at.Before(e.notBefore) && !at.After(e.notAfter)
}

func rememberChain(cert *x509.Certificate, roots *x509.CertPool, chain []*x509.Certificate) {
	e := chainEntry{notBefore: cert.NotBefore, notAfter: cert.NotAfter}
	for _, c := range chain {
		if c.NotBefore.After(e.notBefore) {
			e.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(e.notAfter) {
			e.notAfter = c.NotAfter
		}
	}
	cache.Lock()
	if len(cache.chains) >= certCacheSize {
		clear(cache.chains)
	}
	cache.chains[chainKey{sha256.Sum256(cert.Raw), roots}] = e
	cache.Unlock()
}
