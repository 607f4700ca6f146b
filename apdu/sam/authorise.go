package sam

import (
	"context"
	"errors"
	"fmt"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/internal/tlv"
	"kpe-agent/internal/topup"
)

// PURSE AUTHORISE (docs/card-profiles.md §4, "PURSE AUTHORISE"): the
// terminal hands the SAM the back office's signed top-up authorisation
// before it asks for a CREDIT MAC. The SAM checks it against its issuer
// roots (topup.VerifySignature) and keeps it in one volatile slot; PURSE
// MAC P1 02 answers only for an order the slot authorises
// (topup.Verify at the order's time, and the same amount), and empties
// the slot.
//
// Command: 80 48 00 00, data (chained: longer than 255 bytes)
//
//	80 { the signed encoding, topup.Authorisation.Encode() }
//	81 { the signature, ECDSA ASN.1 DER }
//	82 { the issuer certificate, X.509 DER }
//
// exactly these three objects in this order. Status words: 9000 kept;
// 6A80 malformed; 6300 not signed by a trusted issuer key (the chain at
// the authorisation's last second of validity, the key usage, the
// signature); 6985 the SAM holds no issuer roots; 6A88 the SAM holds no
// credit master; 6A86 P1-P2 not 00 00.
const InsPurseAuthorise byte = 0x48

// Limits of PURSE AUTHORISE's data.
const (
	// MaxPurseAuthoriseData bounds the whole command data.
	MaxPurseAuthoriseData = 4096
	// MaxAuthSignatureLen is the longest ECDSA P-256 ASN.1 signature.
	MaxAuthSignatureLen = 72
	// MaxAuthCertLen bounds the issuer certificate.
	MaxAuthCertLen = 3072
)

// Tags of PURSE AUTHORISE's data.
const (
	tagAuthSigned tlv.Tag = 0x80
	tagAuthSig    tlv.Tag = 0x81
	tagAuthCert   tlv.Tag = 0x82
)

var (
	// ErrTopUpRefused: the SAM refused a top-up authorisation (PURSE
	// AUTHORISE answered 6A80 malformed, 6300 not signed by a trusted
	// issuer key, or 6985 no issuer roots). It wraps the status error.
	ErrTopUpRefused = errors.New("sam: the top-up authorisation is refused")
	// ErrCreditNotAuthorised: PURSE MAC P1 02 answered 6984: the SAM's
	// slot holds no authorisation for this order (none, another card,
	// PTC or amount, expired at the order's time, or used already). No
	// SAM transaction number was consumed. It wraps the status error.
	ErrCreditNotAuthorised = errors.New("sam: the SAM holds no top-up authorisation for this credit")
)

// EncodePurseAuthorise is PURSE AUTHORISE's data for a.
func EncodePurseAuthorise(a *topup.Authorisation) []byte {
	return tlv.Encode(tlv.New(tagAuthSigned, a.Encode()), tlv.New(tagAuthSig, a.Signature), tlv.New(tagAuthCert, a.Cert))
}

// ParsePurseAuthorise parses PURSE AUTHORISE's data strictly: at most
// MaxPurseAuthoriseData bytes, the three objects in order and nothing
// else, the signed encoding in its canonical form (topup.DecodeSigned), a
// signature of 8..MaxAuthSignatureLen bytes and a certificate of
// 1..MaxAuthCertLen bytes. It checks the form only; the certificate is
// not parsed here. Errors wrap ErrFormat.
func ParsePurseAuthorise(b []byte) (topup.Authorisation, error) {
	if len(b) > MaxPurseAuthoriseData {
		return topup.Authorisation{}, fmt.Errorf("%w: PURSE AUTHORISE of %d bytes, at most %d", ErrFormat, len(b), MaxPurseAuthoriseData)
	}
	dos, err := tlv.Parse(b)
	if err != nil {
		return topup.Authorisation{}, fmt.Errorf("%w: PURSE AUTHORISE: %w", ErrFormat, err)
	}
	if len(dos) != 3 || dos[0].Tag != tagAuthSigned || dos[1].Tag != tagAuthSig || dos[2].Tag != tagAuthCert {
		return topup.Authorisation{}, fmt.Errorf("%w: PURSE AUTHORISE: want exactly 80, 81, 82", ErrFormat)
	}
	a, err := topup.DecodeSigned(dos[0].Value)
	if err != nil {
		return topup.Authorisation{}, fmt.Errorf("%w: PURSE AUTHORISE: %w", ErrFormat, err)
	}
	sig, cert := dos[1].Value, dos[2].Value
	if len(sig) < 8 || len(sig) > MaxAuthSignatureLen {
		return topup.Authorisation{}, fmt.Errorf("%w: PURSE AUTHORISE: signature of %d bytes", ErrFormat, len(sig))
	}
	if len(cert) == 0 || len(cert) > MaxAuthCertLen {
		return topup.Authorisation{}, fmt.Errorf("%w: PURSE AUTHORISE: certificate of %d bytes", ErrFormat, len(cert))
	}
	a.Signature, a.Cert = append([]byte{}, sig...), append([]byte{}, cert...)
	return a, nil
}

func purseAuthoriseCommand(a *topup.Authorisation) apdu.Command {
	return apdu.Command{CLA: CLA, INS: InsPurseAuthorise, Data: EncodePurseAuthorise(a)}
}

// PurseAuthorise hands a to the SAM (PURSE AUTHORISE) for the next CREDIT
// MAC. A refusal wraps ErrTopUpRefused; a SAM without a credit master or
// without the command wraps kpe.ErrNoPurseKey.
func (s *SAM) PurseAuthorise(ctx context.Context, a *topup.Authorisation) error {
	if a == nil || len(a.Signature) == 0 || len(a.Cert) == 0 || a.Amount == 0 {
		return fmt.Errorf("%w: an incomplete top-up authorisation", apdu.ErrInvalidCommand)
	}
	_, err := s.c.Send(ctx, purseAuthoriseCommand(a))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, apdu.ErrWrongData) || errors.Is(err, apdu.ErrVerificationFailed) || errors.Is(err, apdu.ErrConditionsNotSatisfied):
		return fmt.Errorf("sam: purse authorise: %w: %w", ErrTopUpRefused, err)
	}
	return fmt.Errorf("sam: purse authorise: %w", noPurseKey(err))
}

// purseMACError maps PURSE MAC's refusals: 6984 to a credit is
// ErrCreditNotAuthorised; the rest as noPurseKey.
func purseMACError(kind kpe.PurseKind, err error) error {
	if kind == kpe.PurseCredit && errors.Is(err, apdu.ErrReferenceDataNotUsable) {
		return fmt.Errorf("%w: %w", ErrCreditNotAuthorised, err)
	}
	return noPurseKey(err)
}
