// Package issuer holds the issuer's document signer: the key that signs the
// security objects (EF.SOD, docs/card-profiles.md §2.4) and the renewal
// authorisations the back office issues (docs/renewal.md). In production
// the key lives in an HSM and is used through PKCS#11; a key file is for
// the card lab only.
package issuer

import (
	"crypto"
	"crypto/x509"
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
