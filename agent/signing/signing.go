// Package signing connects the terminal SAM to the record package: SIGN
// RECORD seals authentication records.
package signing

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"

	"kpe-agent/apdu/sam"
	"kpe-agent/sync/record"
)

// SAMSigner is a record.Signer backed by the SAM's SIGN RECORD. Like the SAM
// it belongs to the goroutine that owns the SAM's reader.
type SAMSigner struct {
	sam    *sam.SAM
	serial [8]byte
	cert   *x509.Certificate
}

var _ record.Signer = (*SAMSigner)(nil)

// ErrCertificate: the SAM's terminal certificate is unreadable or does not
// hold a P-256 key.
var ErrCertificate = errors.New("signing: SAM terminal certificate not usable")

// New reads the SAM's serial and terminal certificate.
func New(ctx context.Context, s *sam.SAM) (*SAMSigner, error) {
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	der, err := s.Certificate(ctx)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCertificate, err)
	}
	if _, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("%w: key is %T, want ECDSA P-256", ErrCertificate, cert.PublicKey)
	}
	return &SAMSigner{sam: s, serial: info.Serial, cert: cert}, nil
}

// Kind is record.SignerSAM.
func (s *SAMSigner) Kind() record.SignerKind { return record.SignerSAM }

// Serial is the SAM's serial.
func (s *SAMSigner) Serial() [8]byte { return s.serial }

// Certificate is the SAM's terminal certificate.
func (s *SAMSigner) Certificate() *x509.Certificate { return s.cert }

// PublicKey is the key that verifies the SAM's signatures.
func (s *SAMSigner) PublicKey() *ecdsa.PublicKey { return s.cert.PublicKey.(*ecdsa.PublicKey) }

// Sign runs SIGN RECORD. The SAM persists its counter before it answers, so
// a value is never issued twice; an answer lost on the way (card pulled,
// power cut) leaves a gap in the counter sequence, never a repeat. A SAM
// may answer either s of its ECDSA signature; Sign returns the low one
// (record.LowS), the only one a version-2 record takes.
func (s *SAMSigner) Sign(ctx context.Context, digest [32]byte) (uint32, [64]byte, error) {
	sig, err := s.sam.SignRecord(ctx, digest)
	if err != nil {
		return 0, [64]byte{}, err
	}
	var out [64]byte
	if sig.R.BitLen() > 256 || sig.S.BitLen() > 256 {
		return 0, [64]byte{}, fmt.Errorf("%w: signature values out of range", sam.ErrFormat)
	}
	sig.R.FillBytes(out[:32])
	sig.S.FillBytes(out[32:])
	return sig.Counter, record.LowS(out), nil
}
