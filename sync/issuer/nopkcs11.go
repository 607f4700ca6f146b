//go:build !cgo

package issuer

import "crypto/x509/pkix"

// OpenPKCS11 answers ErrNoPKCS11: this build has no cgo, so it cannot load
// a PKCS#11 module.
func OpenPKCS11(PKCS11Config) (IssuerSigner, error) { return nil, ErrNoPKCS11 }

// GenerateInToken answers ErrNoPKCS11: this build has no cgo, so it cannot
// load a PKCS#11 module.
func GenerateInToken(PKCS11Config, pkix.Name) ([]byte, error) { return nil, ErrNoPKCS11 }
