// Package ktpel holds the KTP-el profile of docs/card-profiles.md §3: the
// file identifiers and the data read from the chip as typed Go structs with
// strict parsers.
//
// KTP-el population data must never be stored (docs/background.md §4): the
// structs here live in memory for one transaction. To make an accidental
// log line or dump harmless, Biodata and Fingerprint render as "[redacted]"
// for fmt, log/slog and encoding/json, also when nested in other structs.
// Code that must show the data (the clerk's screen through the local API)
// copies the fields into its own response type on purpose.
package ktpel

import (
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"kpe-agent/internal/tlv"
)

// File identifiers (profile parameters with these defaults).
const (
	FIDDF        uint16 = 0x7F0A
	FIDHeader    uint16 = 0x6FF0
	FIDBiodata   uint16 = 0x6FF1
	FIDPhoto     uint16 = 0x6FF2
	FIDSignature uint16 = 0x6FF3
	FIDFinger1   uint16 = 0x6FF4 // first fingerprint template
	FIDFinger2   uint16 = 0x6FF5
	FIDSOD       uint16 = 0x6FF6
)

// Data-group numbers in the 6FF6 security object.
const (
	DGBiodata   = 1
	DGPhoto     = 2
	DGSignature = 3
	DGFinger1   = 4
	DGFinger2   = 5
)

// GroupFID returns the EF under the DF that holds data group dg, and false
// for a number the profile does not define.
func GroupFID(dg int) (uint16, bool) {
	switch dg {
	case DGBiodata:
		return FIDBiodata, true
	case DGPhoto:
		return FIDPhoto, true
	case DGSignature:
		return FIDSignature, true
	case DGFinger1:
		return FIDFinger1, true
	case DGFinger2:
		return FIDFinger2, true
	}
	return 0, false
}

// PlainEFs returns the EFs readable without secure messaging (§3): the
// header.
func PlainEFs() []uint16 { return []uint16{FIDHeader} }

// Lengths of a chip's UID (ISO/IEC 14443-3: 4, 7 or 10 bytes), answered
// by the reader to the PC/SC GET DATA pseudo-APDU (apdu.GetUIDCommand).
const (
	MinUIDLen = 4
	MaxUIDLen = 10
)

// DateLayout is the layout of the biodata's dates as printed on the card
// (DD-MM-YYYY), for time.Parse.
const DateLayout = "02-01-2006"

// ErrFormat is matched by every parse error.
var ErrFormat = errors.New("ktpel: malformed data")

func formatErr(what, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrFormat, what, fmt.Sprintf(format, args...))
}

// Header is EF 6FF0: 70 { 80 chip serial, 81 version }.
type Header struct {
	ChipSerial []byte
	Version    int
}

// ParseHeader parses EF 6FF0.
func ParseHeader(b []byte) (Header, error) {
	t, err := one(b, 0x70, "header")
	if err != nil {
		return Header{}, err
	}
	var h Header
	for _, c := range t.Children {
		switch c.Tag {
		case 0x80:
			if len(c.Value) == 0 || len(c.Value) > 16 {
				return Header{}, formatErr("header", "chip serial of %d bytes", len(c.Value))
			}
			h.ChipSerial = append([]byte(nil), c.Value...)
		case 0x81:
			if len(c.Value) != 1 || c.Value[0] == 0 {
				return Header{}, formatErr("header", "version")
			}
			h.Version = int(c.Value[0])
		default:
			return Header{}, formatErr("header", "unexpected %s", c.Tag)
		}
	}
	if h.ChipSerial == nil || h.Version == 0 {
		return Header{}, formatErr("header", "missing serial or version")
	}
	return h, nil
}

// Encode returns EF 6FF0.
func (h Header) Encode() []byte {
	return tlv.NewConstructed(0x70, tlv.New(0x80, h.ChipSerial), tlv.New(0x81, []byte{byte(h.Version)})).Bytes()
}

// Biodata is EF 6FF1 (fields of docs/background.md §2): 71 { 80 NIK, 81 name, ... }.
type Biodata struct {
	NIK, Name, BirthPlace, BirthDate, Gender, BloodType          string
	Address, RT, RW, Village, District, Regency, Province        string
	Religion, MaritalStatus, Occupation, Nationality, ValidUntil string
}

func (d *Biodata) fields() []*string {
	// Order = context tag number 80, 81, ...; never reorder.
	return []*string{&d.NIK, &d.Name, &d.BirthPlace, &d.BirthDate, &d.Gender, &d.BloodType,
		&d.Address, &d.RT, &d.RW, &d.Village, &d.District, &d.Regency, &d.Province,
		&d.Religion, &d.MaritalStatus, &d.Occupation, &d.Nationality, &d.ValidUntil}
}

const maxText = 1024

// ParseBiodata parses EF 6FF1. Every field at most once; NIK and name are
// required; unknown tags are an error (the structure is fixed by the
// issuer).
func ParseBiodata(b []byte) (Biodata, error) {
	t, err := one(b, 0x71, "biodata")
	if err != nil {
		return Biodata{}, err
	}
	var d Biodata
	fs := d.fields()
	seen := make([]bool, len(fs))
	for _, c := range t.Children {
		i := int(c.Tag) - 0x80
		if c.Tag < 0x80 || i >= len(fs) {
			return Biodata{}, formatErr("biodata", "unexpected %s", c.Tag)
		}
		if seen[i] {
			return Biodata{}, formatErr("biodata", "duplicate %s", c.Tag)
		}
		seen[i] = true
		if len(c.Value) > maxText || !utf8.Valid(c.Value) {
			return Biodata{}, formatErr("biodata", "field %s is not short UTF-8 text", c.Tag)
		}
		*fs[i] = string(c.Value)
	}
	if d.NIK == "" || d.Name == "" {
		return Biodata{}, formatErr("biodata", "NIK and name are required")
	}
	return d, nil
}

// Encode returns EF 6FF1 (for lab personalisation).
func (d Biodata) Encode() []byte {
	var kids []tlv.TLV
	for i, f := range d.fields() {
		if *f != "" {
			kids = append(kids, tlv.New(tlv.Tag(0x80+i), []byte(*f)))
		}
	}
	return tlv.NewConstructed(0x71, kids...).Bytes()
}

// String keeps population data out of logs.
func (Biodata) String() string { return "[KTP-el biodata redacted]" }

// GoString keeps population data out of %#v.
func (Biodata) GoString() string { return "ktpel.Biodata{[redacted]}" }

// LogValue keeps population data out of log/slog.
func (Biodata) LogValue() slog.Value { return slog.StringValue("[KTP-el biodata redacted]") }

// MarshalJSON keeps population data out of JSON dumps (slog's JSON handler
// marshals structs that contain a Biodata).
func (Biodata) MarshalJSON() ([]byte, error) { return []byte(`"[KTP-el biodata redacted]"`), nil }

// Fingerprint is EF 6FF4 or 6FF5: 72 { 80 finger position, 81 template }.
// The finger position is the ISO/IEC 19794-2 code (1 right thumb ... 10 left
// little finger); which fingers a KTP-el holds is read, never assumed.
type Fingerprint struct {
	Finger   int
	Template []byte // ISO/IEC 19794-2 record; parsed by package biometric
}

// ParseFingerprint parses EF 6FF4/6FF5.
func ParseFingerprint(b []byte) (Fingerprint, error) {
	t, err := one(b, 0x72, "fingerprint")
	if err != nil {
		return Fingerprint{}, err
	}
	var f Fingerprint
	for _, c := range t.Children {
		switch c.Tag {
		case 0x80:
			if len(c.Value) != 1 || c.Value[0] > 10 {
				return Fingerprint{}, formatErr("fingerprint", "finger position")
			}
			f.Finger = int(c.Value[0])
		case 0x81:
			if len(c.Value) == 0 {
				return Fingerprint{}, formatErr("fingerprint", "empty template")
			}
			f.Template = append([]byte(nil), c.Value...)
		default:
			return Fingerprint{}, formatErr("fingerprint", "unexpected %s", c.Tag)
		}
	}
	if f.Template == nil {
		return Fingerprint{}, formatErr("fingerprint", "missing template")
	}
	return f, nil
}

// Encode returns EF 6FF4/6FF5.
func (f Fingerprint) Encode() []byte {
	return tlv.NewConstructed(0x72, tlv.New(0x80, []byte{byte(f.Finger)}), tlv.New(0x81, f.Template)).Bytes()
}

// String keeps templates out of logs.
func (f Fingerprint) String() string {
	return fmt.Sprintf("[fingerprint template redacted, finger %d]", f.Finger)
}

// GoString keeps templates out of %#v.
func (f Fingerprint) GoString() string { return f.String() }

// LogValue keeps templates out of log/slog.
func (f Fingerprint) LogValue() slog.Value { return slog.StringValue(f.String()) }

// MarshalJSON keeps templates out of JSON dumps.
func (f Fingerprint) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("%q", f.String())), nil
}

// Wipe overwrites the template bytes; call it when the transaction ends.
func (f *Fingerprint) Wipe() {
	clear(f.Template)
	f.Template = nil
}

func one(b []byte, tag tlv.Tag, what string) (tlv.TLV, error) {
	list, err := tlv.ParseWith(b, tlv.Options{AllowPadding: true})
	if err != nil {
		return tlv.TLV{}, fmt.Errorf("%w: %s: %w", ErrFormat, what, err)
	}
	if len(list) != 1 || list[0].Tag != tag {
		return tlv.TLV{}, formatErr(what, "want one %s template", tag)
	}
	return list[0], nil
}
