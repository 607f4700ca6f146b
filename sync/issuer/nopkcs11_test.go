//go:build !cgo

package issuer

import (
	"crypto/x509/pkix"
	"errors"
	"testing"
)

// Without cgo (CGO_ENABLED=0, the Windows cross-build) there is no
// PKCS#11: both entry points say so with ErrNoPKCS11.
func TestNoPKCS11WithoutCgo(t *testing.T) {
	cfg := PKCS11Config{Module: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "t", PIN: "1234", KeyLabel: "k", CertPath: "c.pem"}
	if s, err := OpenPKCS11(cfg); s != nil || !errors.Is(err, ErrNoPKCS11) {
		t.Errorf("OpenPKCS11 = %v, %v; want ErrNoPKCS11", s, err)
	}
	if csr, err := GenerateInToken(cfg, pkix.Name{CommonName: "x"}); csr != nil || !errors.Is(err, ErrNoPKCS11) {
		t.Errorf("GenerateInToken = %d bytes, %v; want ErrNoPKCS11", len(csr), err)
	}
}
