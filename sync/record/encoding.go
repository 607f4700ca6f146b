package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// The canonical encoding, version 2 (docs/records.md):
//
//	"KPR" 02, then every field once, in increasing tag order, each as
//	tag (1 byte) ‖ length (1 byte) ‖ value.
//
// Integers are big-endian and fixed-width, text is UTF-8 as given, time is
// milliseconds since 1970 (UTC). Tags 01–12 are the body (what Digest
// covers); 20 (counter) and 21 (signature) complete a sealed record. There
// is exactly one encoding of a record, and Decode accepts only that one:
// in version 2 that includes the signature, whose s must be low (at most
// n/2), so a record has one signature too.
//
// Version 1 is the same layout under "KPR" 01, with any s. Terminals
// wrote it before version 2; Decode still reads it, and Encode writes a
// decoded version-1 record back as it was. Seal writes version 2 only.

// magic is the encoding's first three bytes; the fourth is the version.
var magic = [3]byte{'K', 'P', 'R'}

// Encoding versions. Version is the one Seal writes.
const (
	VersionLegacy = 1
	Version       = 2
	// VersionRenewal is version 2 with the renewal field (tag 13) after
	// the previous hash: the encoding of a record of ServiceRenewal, and
	// of no other. Every other record stays version 2, so a back office
	// that predates renewals reads them all.
	VersionRenewal = 3
	// VersionPurse is version 2 with the purse field (tag 14) after the
	// previous hash: the encoding of a record of ServicePayment or
	// ServiceTopUp, and of no other.
	VersionPurse = 4
)

// Field tags.
const (
	tagID          = 0x01
	tagTerminal    = 0x02
	tagSite        = 0x03
	tagOperator    = 0x04
	tagService     = 0x05
	tagCardType    = 0x06
	tagCardSerial  = 0x07
	tagSubjectKind = 0x08
	tagSubject     = 0x09
	tagCardAuth    = 0x0A
	tagIssuerSig   = 0x0B
	tagIdentifiers = 0x0C
	tagFingerprint = 0x0D
	tagTime        = 0x0E
	tagClock       = 0x0F
	tagSigner      = 0x10
	tagSAMSerial   = 0x11
	tagPrevHash    = 0x12
	tagRenewal     = 0x13
	tagPurse       = 0x14
	tagCounter     = 0x20
	tagSignature   = 0x21
)

// MaxEncoded bounds an encoded record.
const MaxEncoded = 4 + 20*(2+255)

// signatureField is the length of the encoding's last field, the
// signature: tag, length and 64 bytes.
const signatureField = 2 + 64

// What encode writes: the body (what Digest covers), the body and the
// counter (what Hash covers in version 2), or the sealed record.
type part int

const (
	partBody part = iota
	partContent
	partSealed
)

func put(b []byte, tag byte, v []byte) []byte {
	return append(append(b, tag, byte(len(v))), v...)
}

func putCheck(b []byte, tag byte, c Check) []byte {
	return put(b, tag, append([]byte{byte(c.Outcome)}, c.Reason...))
}

// Encode returns the canonical encoding of a sealed record, in the
// record's version. A version-2 record whose signature has the high s is
// not encoded (ErrInvalid and ErrHighS): Decode would refuse it.
func (r *Record) Encode() ([]byte, error) { return r.encode(partSealed) }

func (r *Record) encode(p part) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if p == partSealed && r.version() >= Version && !lowS(r.Signature) {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, ErrHighS)
	}
	b := make([]byte, 0, 512)
	b = append(b, magic[:]...)
	b = append(b, r.version())
	b = put(b, tagID, r.ID[:])
	b = put(b, tagTerminal, []byte(r.TerminalID))
	b = put(b, tagSite, []byte(r.SiteID))
	b = put(b, tagOperator, []byte(r.OperatorID))
	b = put(b, tagService, []byte(r.Service))
	b = put(b, tagCardType, []byte{byte(r.CardType)})
	b = put(b, tagCardSerial, r.CardSerial)
	b = put(b, tagSubjectKind, []byte{byte(r.SubjectKind)})
	b = put(b, tagSubject, []byte(r.Subject))
	b = putCheck(b, tagCardAuth, r.CardAuth)
	b = putCheck(b, tagIssuerSig, r.IssuerSig)
	b = putCheck(b, tagIdentifiers, r.Identifiers)
	b = putCheck(b, tagFingerprint, r.Fingerprint)
	b = put(b, tagTime, binary.BigEndian.AppendUint64(nil, uint64(r.Time.UnixMilli())))
	b = put(b, tagClock, []byte{byte(r.Clock)})
	b = put(b, tagSigner, []byte{byte(r.Signer)})
	b = put(b, tagSAMSerial, r.SAMSerial[:])
	b = put(b, tagPrevHash, r.PrevHash[:])
	switch r.version() {
	case VersionRenewal:
		b = put(b, tagRenewal, r.Renewal.bytes())
	case VersionPurse:
		b = put(b, tagPurse, r.Purse.bytes())
	}
	if p >= partContent {
		b = put(b, tagCounter, binary.BigEndian.AppendUint32(nil, r.Counter))
	}
	if p >= partSealed {
		b = put(b, tagSignature, r.Signature[:])
	}
	return b, nil
}

func knownVersion(v byte) bool { return v >= VersionLegacy && v <= VersionPurse }

// FormatError says where an encoding went wrong. It unwraps to ErrFormat,
// and to Err where that says more (ErrHighS).
type FormatError struct {
	Offset int
	What   string
	Err    error
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("record: malformed at byte %d: %s", e.Offset, e.What)
}

func (e *FormatError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrFormat, e.Err}
	}
	return []error{ErrFormat}
}

// Decode parses a sealed record's canonical encoding strictly: magic and
// version (1 or 2), every field once in order with its exact length, valid
// values (Validate), in version 2 a low s (a *FormatError that is also
// ErrHighS otherwise), nothing after the signature. It does not verify the
// signature.
func Decode(b []byte) (*Record, error) {
	if len(b) > MaxEncoded {
		return nil, &FormatError{Offset: 0, What: fmt.Sprintf("%d bytes, more than a record can have", len(b))}
	}
	r, n, err := DecodePrefix(b)
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, &FormatError{Offset: n, What: fmt.Sprintf("%d bytes after the signature", len(b)-n)}
	}
	return r, nil
}

// DecodePrefix decodes the record at the start of b and returns the number
// of bytes it took; what follows is not looked at. Salvage uses it to pick
// records out of a damaged file.
func DecodePrefix(b []byte) (*Record, int, error) {
	if len(b) < 4 || [3]byte(b[:3]) != magic {
		return nil, 0, &FormatError{Offset: 0, What: "not a record (magic)"}
	}
	if !knownVersion(b[3]) {
		return nil, 0, &FormatError{Offset: 3, What: fmt.Sprintf("version %d, this software reads %d to %d", b[3], VersionLegacy, VersionPurse)}
	}
	d := &decoder{b: b, off: 4}
	r := &Record{Version: b[3]}
	copy(r.ID[:], d.field(tagID, 16, 16))
	r.TerminalID = string(d.field(tagTerminal, 0, 255))
	r.SiteID = string(d.field(tagSite, 0, 255))
	r.OperatorID = string(d.field(tagOperator, 0, 255))
	r.Service = string(d.field(tagService, 0, 255))
	r.CardType = CardType(d.byte(tagCardType))
	r.CardSerial = bytes.Clone(d.field(tagCardSerial, 0, 255))
	r.SubjectKind = SubjectKind(d.byte(tagSubjectKind))
	r.Subject = string(d.field(tagSubject, 0, 255))
	r.CardAuth = d.check(tagCardAuth)
	r.IssuerSig = d.check(tagIssuerSig)
	r.Identifiers = d.check(tagIdentifiers)
	r.Fingerprint = d.check(tagFingerprint)
	if v := d.field(tagTime, 8, 8); v != nil {
		r.Time = time.UnixMilli(int64(binary.BigEndian.Uint64(v))).UTC()
	}
	r.Clock = ClockQuality(d.byte(tagClock))
	r.Signer = SignerKind(d.byte(tagSigner))
	copy(r.SAMSerial[:], d.field(tagSAMSerial, 8, 8))
	copy(r.PrevHash[:], d.field(tagPrevHash, 32, 32))
	switch r.Version {
	case VersionRenewal:
		if v := d.field(tagRenewal, renewalLen, renewalLen); v != nil {
			r.Renewal = parseRenewal(v)
		}
	case VersionPurse:
		at := d.off
		if v := d.field(tagPurse, purseFixedLen+2, 255); v != nil {
			if r.Purse = parsePurse(v); r.Purse == nil {
				d.err = &FormatError{Offset: at, What: "purse field is malformed"}
			}
		}
	}
	if v := d.field(tagCounter, 4, 4); v != nil {
		r.Counter = binary.BigEndian.Uint32(v)
	}
	sigAt := d.off
	copy(r.Signature[:], d.field(tagSignature, 64, 64))
	if d.err != nil {
		return nil, 0, d.err
	}
	if r.Version >= Version && !lowS(r.Signature) {
		return nil, 0, &FormatError{Offset: sigAt, What: "signature s is above n/2 (version 2 takes the low s only)", Err: ErrHighS}
	}
	if err := r.Validate(); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return r, d.off, nil
}

// decoder reads tag ‖ length ‖ value fields in order; after the first
// error it reads nothing more and every field is nil.
type decoder struct {
	b   []byte
	off int
	err error
}

// field reads the next field, which must carry tag and min..max bytes.
func (d *decoder) field(tag byte, min, max int) []byte {
	if d.err != nil {
		return nil
	}
	at := d.off
	switch {
	case at+2 > len(d.b):
		d.err = &FormatError{Offset: at, What: fmt.Sprintf("ends before field %02X", tag)}
	case d.b[at] != tag:
		d.err = &FormatError{Offset: at, What: fmt.Sprintf("field %02X where %02X belongs", d.b[at], tag)}
	case at+2+int(d.b[at+1]) > len(d.b):
		d.err = &FormatError{Offset: at, What: fmt.Sprintf("field %02X runs past the end", tag)}
	case int(d.b[at+1]) < min || int(d.b[at+1]) > max:
		d.err = &FormatError{Offset: at, What: fmt.Sprintf("field %02X has %d bytes, want %d to %d", tag, d.b[at+1], min, max)}
	}
	if d.err != nil {
		return nil
	}
	d.off = at + 2 + int(d.b[at+1])
	return d.b[at+2 : d.off]
}

// byte reads a one-byte field (0 after an error).
func (d *decoder) byte(tag byte) byte {
	if v := d.field(tag, 1, 1); v != nil {
		return v[0]
	}
	return 0
}

// check reads an outcome ‖ reason field.
func (d *decoder) check(tag byte) Check {
	v := d.field(tag, 1, 255)
	if v == nil {
		return Check{}
	}
	return Check{Outcome: Outcome(v[0]), Reason: string(v[1:])}
}
