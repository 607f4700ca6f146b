// Package topup is the e-wallet's top-up authorisation (docs/ewallet.md,
// "Top-up authorisation"): what the back office answers a terminal that
// asks, for a card present at the kiosk, whether a top-up is staged for
// its holder, and the checks the terminal runs on it before its SAM
// computes a CREDIT MAC.
//
// An authorisation binds one staged top-up (its id) to one card (its
// serial) in one state (its purse transaction counter, PTC), for one
// amount, until an expiry. It is signed with the back office's issuer key,
// the one that signs card data renewals (sync/issuer), whose certificate
// it carries; the terminal checks that certificate against the same BKN
// issuer roots it uses for renewals. Because every purse transaction moves
// the card's PTC, an authorisation can be used at most once on that card:
// after a credit (or any other transaction) the card is at another PTC and
// the authorisation no longer verifies. Both sides use this package, so
// the back office issues exactly what the terminal verifies.
package topup

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"kpe-agent/internal/tlv"
)

// Errors. Every refusal of Verify and Sign matches one of them.
var (
	// ErrFormat: a malformed authorisation (missing or bad fields, a
	// certificate that does not parse, a zero amount).
	ErrFormat = errors.New("topup: malformed authorisation")
	// ErrIssuer: not signed by a trusted issuer key: the certificate does
	// not chain to the roots at the time, is not for signatures, or its
	// key did not make the signature.
	ErrIssuer = errors.New("topup: not signed by a trusted issuer key")
	// ErrMismatch: the authorisation is for another card.
	ErrMismatch = errors.New("topup: authorisation is for another card")
	// ErrReplayed: the authorisation is for another state of the card
	// (its PTC moved since the authorisation was issued): it was used, or
	// the card took another transaction.
	ErrReplayed = errors.New("topup: authorisation is for another state of the card")
	// ErrExpired: the authorisation's validity has passed.
	ErrExpired = errors.New("topup: authorisation expired")
)

// Authorisation is one top-up for one card in one state.
type Authorisation struct {
	// ID is the staged top-up's id; the terminal's top-up record carries
	// it as its purse request (record.Purse.Request), so the back office
	// applies the top-up once.
	ID       [16]byte
	Serial   [8]byte // the card's serial
	PTC      uint32  // the card's PTC the authorisation was issued for
	Amount   uint32  // rupiah, at least 1
	NotAfter time.Time
	// Cert is the DER of the signing key's certificate.
	Cert []byte
	// Signature is ECDSA (ASN.1 DER) over SHA-256 of Encode().
	Signature []byte
}

// The signed encoding: 7E { 80 format, 81 id, 82 serial, 83 PTC, 84
// amount, 85 not-after (Unix seconds) }, every integer big-endian and of
// fixed width.
const (
	tagAuth     tlv.Tag = 0x7E
	tagFormat   tlv.Tag = 0x80
	tagID       tlv.Tag = 0x81
	tagSerial   tlv.Tag = 0x82
	tagPTC      tlv.Tag = 0x83
	tagAmount   tlv.Tag = 0x84
	tagNotAfter tlv.Tag = 0x85
	format1             = 1
)

// Encode is the TLV encoding the issuer signs (docs/ewallet.md).
func (a *Authorisation) Encode() []byte {
	return tlv.NewConstructed(tagAuth,
		tlv.New(tagFormat, []byte{format1}),
		tlv.New(tagID, a.ID[:]),
		tlv.New(tagSerial, a.Serial[:]),
		tlv.New(tagPTC, binary.BigEndian.AppendUint32(nil, a.PTC)),
		tlv.New(tagAmount, binary.BigEndian.AppendUint32(nil, a.Amount)),
		tlv.New(tagNotAfter, binary.BigEndian.AppendUint64(nil, uint64(a.NotAfter.Unix()))),
	).Bytes()
}

// DecodeSigned parses the signed encoding (Encode's output) strictly:
// one 7E object holding exactly 80..85 in that order, each of its fixed
// length, format 1, an amount of at least 1, and nothing else (the bytes
// must be what Encode gives for the fields read). Cert and Signature of
// the answer are empty: they travel beside the encoding. Errors wrap
// ErrFormat. The SAM reads the encoding of PURSE AUTHORISE with it.
func DecodeSigned(b []byte) (Authorisation, error) {
	t, err := tlv.ParseOne(b)
	if err != nil {
		return Authorisation{}, fmt.Errorf("%w: signed encoding: %w", ErrFormat, err)
	}
	want := []struct {
		tag tlv.Tag
		n   int
	}{{tagFormat, 1}, {tagID, 16}, {tagSerial, 8}, {tagPTC, 4}, {tagAmount, 4}, {tagNotAfter, 8}}
	if t.Tag != tagAuth || len(t.Children) != len(want) {
		return Authorisation{}, fmt.Errorf("%w: signed encoding: want 7E with %d data objects", ErrFormat, len(want))
	}
	for i, w := range want {
		if c := t.Children[i]; c.Tag != w.tag || len(c.Value) != w.n {
			return Authorisation{}, fmt.Errorf("%w: signed encoding: data object %d is %s of %d bytes, want %s of %d", ErrFormat, i, c.Tag, len(c.Value), w.tag, w.n)
		}
	}
	v := func(i int) []byte { return t.Children[i].Value }
	if v(0)[0] != format1 {
		return Authorisation{}, fmt.Errorf("%w: signed encoding: format %d", ErrFormat, v(0)[0])
	}
	secs := binary.BigEndian.Uint64(v(5))
	if secs > math.MaxInt64 {
		return Authorisation{}, fmt.Errorf("%w: signed encoding: not-after out of range", ErrFormat)
	}
	a := Authorisation{ID: [16]byte(v(1)), Serial: [8]byte(v(2)), PTC: binary.BigEndian.Uint32(v(3)), Amount: binary.BigEndian.Uint32(v(4)),
		NotAfter: time.Unix(int64(secs), 0).UTC()}
	if a.Amount == 0 {
		return Authorisation{}, fmt.Errorf("%w: signed encoding: amount 0", ErrFormat)
	}
	if !bytes.Equal(a.Encode(), b) {
		return Authorisation{}, fmt.Errorf("%w: signed encoding: not in its canonical form", ErrFormat)
	}
	return a, nil
}

// Sign signs the authorisation with signer, whose certificate is cert (a
// P-256 key: the issuer's document signer). NotAfter is kept to the
// second, as the encoding has it.
func (a *Authorisation) Sign(signer crypto.Signer, cert *x509.Certificate) error {
	if signer == nil || cert == nil {
		return fmt.Errorf("%w: no issuer signer", ErrIssuer)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() || !pub.Equal(signer.Public()) {
		return fmt.Errorf("%w: the signer's key is not the certificate's P-256 key", ErrIssuer)
	}
	if a.Amount == 0 {
		return fmt.Errorf("%w: amount 0", ErrFormat)
	}
	if a.NotAfter.IsZero() {
		return fmt.Errorf("%w: no not-after", ErrFormat)
	}
	a.NotAfter = time.Unix(a.NotAfter.Unix(), 0).UTC()
	digest := sha256.Sum256(a.Encode())
	sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return fmt.Errorf("%w: signing: %w", ErrIssuer, err)
	}
	a.Cert, a.Signature = cert.Raw, sig
	return nil
}

// Verify checks an authorisation for the card with serial at ptc before
// anything is written to it, in this order: its form (ErrFormat); its
// certificate's chain to roots at now and use for signatures, and the
// signature by the certificate's key (ErrIssuer) (VerifySignature); the
// card's serial (ErrMismatch); the card's PTC (ErrReplayed); the expiry
// (ErrExpired). The terminal runs it against the card's purse state and
// its clock; the SAM runs it against the order it is asked to MAC, at the
// order's time (docs/card-profiles.md, PURSE AUTHORISE).
func Verify(a *Authorisation, serial [8]byte, ptc uint32, roots *x509.CertPool, now time.Time) error {
	if err := VerifySignature(a, roots, now); err != nil {
		return err
	}
	if a.Serial != serial {
		return fmt.Errorf("%w: the authorisation is for card %X, this is %X", ErrMismatch, a.Serial, serial)
	}
	if a.PTC != ptc {
		return fmt.Errorf("%w: issued at PTC %d, the card is at %d", ErrReplayed, a.PTC, ptc)
	}
	if !now.Before(a.NotAfter) {
		return fmt.Errorf("%w: valid until %s", ErrExpired, a.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// VerifySignature checks an authorisation without a card: its form
// (ErrFormat), its certificate's chain to roots at the time at and use
// for signatures, and the signature by the certificate's P-256 key over
// SHA-256 of Encode() (ErrIssuer). It does not look at the serial, the
// PTC or the expiry: Verify does, on top of it.
func VerifySignature(a *Authorisation, roots *x509.CertPool, at time.Time) error {
	if a == nil || len(a.Cert) == 0 || len(a.Signature) == 0 {
		return fmt.Errorf("%w: incomplete", ErrFormat)
	}
	if a.Amount == 0 {
		return fmt.Errorf("%w: amount 0", ErrFormat)
	}
	cert, err := x509.ParseCertificate(a.Cert)
	if err != nil {
		return fmt.Errorf("%w: certificate: %w", ErrFormat, err)
	}
	if roots == nil {
		return fmt.Errorf("%w: no issuer roots configured", ErrIssuer)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("%w: %w", ErrIssuer, err)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return fmt.Errorf("%w: certificate not for digital signatures", ErrIssuer)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return fmt.Errorf("%w: the certificate's key is not ECDSA P-256", ErrIssuer)
	}
	digest := sha256.Sum256(a.Encode())
	if !ecdsa.VerifyASN1(pub, digest[:], a.Signature) {
		return fmt.Errorf("%w: the signature is not the certificate's key's", ErrIssuer)
	}
	return nil
}
