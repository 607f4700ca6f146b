package record

import (
	"encoding/binary"
	"fmt"
	"time"
)

// The canonical encoding, version 1 (docs/records.md):
//
//	"KPR" 01, then every field once, in increasing tag order, each as
//	tag (1 byte) ‖ length (1 byte) ‖ value.
//
// Integers are big-endian and fixed-width, text is UTF-8 as given, time is
// milliseconds since 1970 (UTC). Tags 01–12 are the body (what Digest
// covers); 20 (counter) and 21 (signature) complete a sealed record. There
// is exactly one encoding of a record, and Decode accepts only that one.

var magic = [4]byte{'K', 'P', 'R', 1}

// Version is the encoding version this package writes and reads.
const Version = 1

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
	tagCounter     = 0x20
	tagSignature   = 0x21
)

// MaxEncoded bounds an encoded record.
const MaxEncoded = 4 + 20*(2+255)

func put(b []byte, tag byte, v []byte) []byte {
	return append(append(b, tag, byte(len(v))), v...)
}

func putCheck(b []byte, tag byte, c Check) []byte {
	return put(b, tag, append([]byte{byte(c.Outcome)}, c.Reason...))
}

// Encode returns the canonical encoding of a sealed record.
func (r *Record) Encode() ([]byte, error) { return r.encode(true) }

func (r *Record) encode(sealed bool) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 512)
	b = append(b, magic[:]...)
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
	if sealed {
		b = put(b, tagCounter, binary.BigEndian.AppendUint32(nil, r.Counter))
		b = put(b, tagSignature, r.Signature[:])
	}
	return b, nil
}

// FormatError says where an encoding went wrong.
type FormatError struct {
	Offset int
	What   string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("record: malformed at byte %d: %s", e.Offset, e.What)
}

func (e *FormatError) Unwrap() error { return ErrFormat }

// Decode parses a sealed record's canonical encoding strictly: magic and
// version, every field once in order with its exact length, valid values
// (Validate), nothing after the signature. It does not verify the
// signature.
func Decode(b []byte) (*Record, error) {
	if len(b) > MaxEncoded {
		return nil, &FormatError{0, fmt.Sprintf("%d bytes, more than a record can have", len(b))}
	}
	r, n, err := DecodePrefix(b)
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, &FormatError{n, fmt.Sprintf("%d bytes after the signature", len(b)-n)}
	}
	return r, nil
}

// DecodePrefix decodes the record at the start of b and returns the number
// of bytes it took; what follows is not looked at. Salvage uses it to pick
// records out of a damaged file.
func DecodePrefix(b []byte) (*Record, int, error) {
	if len(b) < 4 || [3]byte(b[:3]) != [3]byte(magic[:3]) {
		return nil, 0, &FormatError{0, "not a record (magic)"}
	}
	if b[3] != Version {
		return nil, 0, &FormatError{3, fmt.Sprintf("version %d, this software reads %d", b[3], Version)}
	}
	r := &Record{}
	off := 4
	next := func(tag byte) ([]byte, error) {
		if off+2 > len(b) {
			return nil, &FormatError{off, fmt.Sprintf("ends before field %02X", tag)}
		}
		if b[off] != tag {
			return nil, &FormatError{off, fmt.Sprintf("field %02X where %02X belongs", b[off], tag)}
		}
		n := int(b[off+1])
		if off+2+n > len(b) {
			return nil, &FormatError{off, fmt.Sprintf("field %02X runs past the end", tag)}
		}
		v := b[off+2 : off+2+n]
		off += 2 + n
		return v, nil
	}
	fixed := func(tag byte, n int) ([]byte, error) {
		at := off
		v, err := next(tag)
		if err == nil && len(v) != n {
			err = &FormatError{at, fmt.Sprintf("field %02X has %d bytes, want %d", tag, len(v), n)}
		}
		return v, err
	}
	check := func(tag byte) (Check, error) {
		at := off
		v, err := next(tag)
		if err != nil {
			return Check{}, err
		}
		if len(v) < 1 {
			return Check{}, &FormatError{at, fmt.Sprintf("field %02X has no outcome", tag)}
		}
		return Check{Outcome: Outcome(v[0]), Reason: string(v[1:])}, nil
	}
	var err error
	var v []byte
	step := func(f func() error) {
		if err == nil {
			err = f()
		}
	}
	step(func() error { v, err = fixed(tagID, 16); copy(r.ID[:], v); return err })
	step(func() error { v, err = next(tagTerminal); r.TerminalID = string(v); return err })
	step(func() error { v, err = next(tagSite); r.SiteID = string(v); return err })
	step(func() error { v, err = next(tagOperator); r.OperatorID = string(v); return err })
	step(func() error { v, err = next(tagService); r.Service = string(v); return err })
	step(func() error {
		v, err = fixed(tagCardType, 1)
		if err == nil {
			r.CardType = CardType(v[0])
		}
		return err
	})
	step(func() error { v, err = next(tagCardSerial); r.CardSerial = append([]byte(nil), v...); return err })
	step(func() error {
		v, err = fixed(tagSubjectKind, 1)
		if err == nil {
			r.SubjectKind = SubjectKind(v[0])
		}
		return err
	})
	step(func() error { v, err = next(tagSubject); r.Subject = string(v); return err })
	step(func() error { r.CardAuth, err = check(tagCardAuth); return err })
	step(func() error { r.IssuerSig, err = check(tagIssuerSig); return err })
	step(func() error { r.Identifiers, err = check(tagIdentifiers); return err })
	step(func() error { r.Fingerprint, err = check(tagFingerprint); return err })
	step(func() error {
		v, err = fixed(tagTime, 8)
		if err == nil {
			r.Time = time.UnixMilli(int64(binary.BigEndian.Uint64(v))).UTC()
		}
		return err
	})
	step(func() error {
		v, err = fixed(tagClock, 1)
		if err == nil {
			r.Clock = ClockQuality(v[0])
		}
		return err
	})
	step(func() error {
		v, err = fixed(tagSigner, 1)
		if err == nil {
			r.Signer = SignerKind(v[0])
		}
		return err
	})
	step(func() error { v, err = fixed(tagSAMSerial, 8); copy(r.SAMSerial[:], v); return err })
	step(func() error { v, err = fixed(tagPrevHash, 32); copy(r.PrevHash[:], v); return err })
	step(func() error {
		v, err = fixed(tagCounter, 4)
		if err == nil {
			r.Counter = binary.BigEndian.Uint32(v)
		}
		return err
	})
	step(func() error { v, err = fixed(tagSignature, 64); copy(r.Signature[:], v); return err })
	if err != nil {
		return nil, 0, err
	}
	if err := r.Validate(); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return r, off, nil
}
