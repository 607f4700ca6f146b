package samapp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"time"

	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
	"kpe-agent/internal/topup"
	"kpe-agent/lab/labpki"
)

// TopUpIssuer is a lab issuer of top-up authorisations: a root (what a
// lab SAM's TopUpRoots hold) and a document signer under it. Lab keys
// only.
type TopUpIssuer struct {
	Root *x509.Certificate
	Key  *ecdsa.PrivateKey
	Cert *x509.Certificate
}

// NewTopUpIssuer makes a fresh root (labpki.NewCA, valid from
// labpki.LabEpoch) and a document signer under it valid as long as the
// root: lab tests sign at fixed dates.
func NewTopUpIssuer(name string) (*TopUpIssuer, error) {
	ca, err := labpki.NewCA(name + " Root CA")
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	cert, err := ca.DocumentSignerFor(&key.PublicKey, pkix.Name{CommonName: name + " Document Signer"}, ca.Cert.NotBefore, ca.Cert.NotAfter)
	if err != nil {
		return nil, err
	}
	return &TopUpIssuer{Root: ca.Cert, Key: key, Cert: cert}, nil
}

// Authorise signs an authorisation for exactly the CREDIT order o, valid
// until ten minutes after the order's time.
func (i *TopUpIssuer) Authorise(o kpe.PurseOrder) (*topup.Authorisation, error) {
	a := &topup.Authorisation{ID: [16]byte{0x4C, 0x41, 0x42}, Serial: o.CardSerial, PTC: o.PTC, Amount: o.Amount,
		NotAfter: time.UnixMilli(o.Time).Add(10 * time.Minute)}
	if err := a.Sign(i.Key, i.Cert); err != nil {
		return nil, err
	}
	return a, nil
}

// AuthorisingSAM is a lab SAM client that hands the SAM an authorisation
// of Issuer for each CREDIT order just before its PURSE MAC: what the
// terminal does with the back office's authorisation, for tests of the
// card's purse that are not about the authorisation itself.
type AuthorisingSAM struct {
	*sam.SAM
	Issuer *TopUpIssuer
}

// PurseMAC implements kpe.PurseSAM.
func (s AuthorisingSAM) PurseMAC(ctx context.Context, o kpe.PurseOrder) ([sam.SerialLen]byte, uint32, [kpe.PurseMACLen]byte, error) {
	if o.Kind == kpe.PurseCredit {
		a, err := s.Issuer.Authorise(o)
		if err != nil {
			return [8]byte{}, 0, [kpe.PurseMACLen]byte{}, fmt.Errorf("lab top-up issuer: %w", err)
		}
		if err := s.SAM.PurseAuthorise(ctx, a); err != nil {
			return [8]byte{}, 0, [kpe.PurseMACLen]byte{}, err
		}
	}
	return s.SAM.PurseMAC(ctx, o)
}
