// Package biometric holds finger minutiae templates (ISO/IEC 19794-2:2005,
// ANSI INCITS 378-2004 and the ISO compact card format), the biometric
// information template (BIT) of ISO/IEC 7816-11, the VERIFY data a card
// asks for, and the minutiae matcher.
//
// Templates are biometric data: they live in memory for one transaction,
// never go to disk or logs (Record and Minutia render as "[redacted]"), and
// Wipe overwrites them when the transaction ends.
package biometric

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
)

// Format of a minutiae template.
type Format int

// Formats.
const (
	FormatISO     Format = iota + 1 // ISO/IEC 19794-2:2005 finger minutiae record
	FormatANSI                      // ANSI INCITS 378-2004
	FormatCompact                   // ISO/IEC 19794-2 compact card format, 3 bytes per minutia
)

func (f Format) String() string {
	switch f {
	case FormatISO:
		return "ISO/IEC 19794-2"
	case FormatANSI:
		return "ANSI INCITS 378"
	case FormatCompact:
		return "ISO/IEC 19794-2 compact card"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// MinutiaType is the 2-bit type code shared by the three formats.
type MinutiaType uint8

// Minutia types.
const (
	TypeOther       MinutiaType = 0
	TypeEnding      MinutiaType = 1
	TypeBifurcation MinutiaType = 2
)

// Minutia is one minutia in the record's pixel grid. Angle is in degrees,
// counter-clockwise from the x axis, in [0, 360). Quality is 0..100 (0:
// not reported).
type Minutia struct {
	Type    MinutiaType
	X, Y    int
	Angle   float64
	Quality int
}

// View is one finger view of a record.
type View struct {
	Finger     int // finger position code, 0 unknown, 1 right thumb ... 10 left little
	ViewNumber int
	Impression int // impression type (0 live-scan plain)
	Quality    int // finger quality 0..100
	Minutiae   []Minutia
	Extended   []byte // extended data block, kept as is
}

// Record is a parsed template. Coordinates are pixels at ResX, ResY pixels
// per centimetre; a compact-card template uses 100 px/cm, that is 0.1 mm
// units.
type Record struct {
	Format           Format
	CaptureEquipment uint16 // certification flags (4 bits) and device type (12 bits)
	CBEFFOwner       uint16 // ANSI only
	CBEFFType        uint16 // ANSI only
	Width, Height    int
	ResX, ResY       int
	Views            []View
}

// ErrFormat is matched by every template parse error.
var ErrFormat = errors.New("biometric: malformed template")

// FormatError says where a template is malformed.
type FormatError struct {
	Format Format
	Offset int
	Reason string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("biometric: malformed %v template at byte %d: %s", e.Format, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrFormat) work.
func (e *FormatError) Unwrap() error { return ErrFormat }

func ferr(f Format, off int, format string, args ...any) error {
	return &FormatError{Format: f, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// Limits that keep a hostile template from costing memory or time.
const (
	maxViews    = 16
	maxMinutiae = 255 // one byte in every format
	coordMask   = 0x3FFF
)

// String keeps templates out of logs.
func (r *Record) String() string {
	n := 0
	for _, v := range r.Views {
		n += len(v.Minutiae)
	}
	return fmt.Sprintf("[%v template redacted: %d views, %d minutiae]", r.Format, len(r.Views), n)
}

// GoString keeps templates out of %#v.
func (r *Record) GoString() string { return r.String() }

// LogValue keeps templates out of log/slog.
func (r *Record) LogValue() slog.Value { return slog.StringValue(r.String()) }

// MarshalJSON keeps templates out of JSON dumps.
func (r *Record) MarshalJSON() ([]byte, error) { return fmt.Appendf(nil, "%q", r.String()), nil }

// String keeps minutiae out of logs.
func (Minutia) String() string { return "[minutia redacted]" }

// GoString keeps minutiae out of %#v.
func (Minutia) GoString() string { return "[minutia redacted]" }

// Wipe overwrites the minutiae and extended data.
func (r *Record) Wipe() {
	for i := range r.Views {
		clear(r.Views[i].Minutiae)
		clear(r.Views[i].Extended)
		r.Views[i].Minutiae, r.Views[i].Extended = nil, nil
	}
	r.Views = nil
}

// Minutiae returns the first view's minutiae (nil without views).
func (r *Record) Minutiae() []Minutia {
	if len(r.Views) == 0 {
		return nil
	}
	return r.Views[0].Minutiae
}

// Parse parses an ISO or ANSI record, telling them apart by the length
// field (ISO: 4 bytes at offset 8; ANSI: 2 bytes, or 0000 and 4 bytes).
func Parse(b []byte) (*Record, error) {
	if len(b) < 26 || string(b[:8]) != "FMR\x00 20\x00" {
		return nil, ferr(FormatISO, 0, `want the "FMR\0 20\0" header`)
	}
	if int(binary.BigEndian.Uint32(b[8:12])) == len(b) {
		return ParseISO(b)
	}
	return ParseANSI(b)
}

// ParseISO parses an ISO/IEC 19794-2:2005 finger minutiae record.
func ParseISO(b []byte) (*Record, error) {
	const f = FormatISO
	if len(b) < 24 {
		return nil, ferr(f, 0, "%d bytes, header needs 24", len(b))
	}
	if string(b[:8]) != "FMR\x00 20\x00" {
		return nil, ferr(f, 0, `want the "FMR\0 20\0" header`)
	}
	if n := binary.BigEndian.Uint32(b[8:12]); int64(n) != int64(len(b)) {
		return nil, ferr(f, 8, "record length %d, have %d bytes", n, len(b))
	}
	r := &Record{Format: f, CaptureEquipment: binary.BigEndian.Uint16(b[12:14]),
		Width: int(binary.BigEndian.Uint16(b[14:16])), Height: int(binary.BigEndian.Uint16(b[16:18])),
		ResX: int(binary.BigEndian.Uint16(b[18:20])), ResY: int(binary.BigEndian.Uint16(b[20:22]))}
	if err := r.parseViews(b, 22, 2.0*180/256); err != nil {
		return nil, err
	}
	return r, nil
}

// ParseANSI parses an ANSI INCITS 378-2004 record.
func ParseANSI(b []byte) (*Record, error) {
	const f = FormatANSI
	if len(b) < 26 {
		return nil, ferr(f, 0, "%d bytes, header needs 26", len(b))
	}
	if string(b[:8]) != "FMR\x00 20\x00" {
		return nil, ferr(f, 0, `want the "FMR\0 20\0" header`)
	}
	off := 10
	n := int(binary.BigEndian.Uint16(b[8:10]))
	if n == 0 {
		if len(b) < 30 {
			return nil, ferr(f, 8, "%d bytes, a 6-byte length header needs 30", len(b))
		}
		n, off = int(binary.BigEndian.Uint32(b[10:14])), 14
	}
	if n != len(b) {
		return nil, ferr(f, 8, "record length %d, have %d bytes", n, len(b))
	}
	r := &Record{Format: f, CBEFFOwner: binary.BigEndian.Uint16(b[off:]), CBEFFType: binary.BigEndian.Uint16(b[off+2:]),
		CaptureEquipment: binary.BigEndian.Uint16(b[off+4:]),
		Width:            int(binary.BigEndian.Uint16(b[off+6:])), Height: int(binary.BigEndian.Uint16(b[off+8:])),
		ResX: int(binary.BigEndian.Uint16(b[off+10:])), ResY: int(binary.BigEndian.Uint16(b[off+12:]))}
	if err := r.parseViews(b, off+14, 2); err != nil {
		return nil, err
	}
	return r, nil
}

// parseViews parses "number of views, reserved" at off and the views.
func (r *Record) parseViews(b []byte, off int, angleUnit float64) error {
	f := r.Format
	if r.ResX == 0 || r.ResY == 0 {
		return ferr(f, off-4, "resolution is zero")
	}
	nViews := int(b[off])
	if b[off+1] != 0 {
		return ferr(f, off+1, "reserved byte is %02X", b[off+1])
	}
	if nViews == 0 || nViews > maxViews {
		return ferr(f, off, "%d finger views", nViews)
	}
	off += 2
	for v := 0; v < nViews; v++ {
		if len(b) < off+4 {
			return ferr(f, off, "view %d header truncated", v)
		}
		view := View{Finger: int(b[off]), ViewNumber: int(b[off+1] >> 4), Impression: int(b[off+1] & 0x0F), Quality: int(b[off+2])}
		if view.Finger > 10 || view.Quality > 100 {
			return ferr(f, off, "view %d: finger %d, quality %d", v, view.Finger, view.Quality)
		}
		n := int(b[off+3])
		off += 4
		if len(b) < off+6*n+2 {
			return ferr(f, off, "view %d: %d minutiae need %d bytes", v, n, 6*n+2)
		}
		if n > 0 {
			view.Minutiae = make([]Minutia, n)
		}
		for i := range view.Minutiae {
			m := b[off : off+6]
			if m[2]&0xC0 != 0 {
				return ferr(f, off+2, "minutia %d: reserved bits set", i)
			}
			typ := MinutiaType(m[0] >> 6)
			if typ == 3 {
				return ferr(f, off, "minutia %d: type 11 is reserved", i)
			}
			a := float64(m[4]) * angleUnit
			if a >= 360 {
				return ferr(f, off+4, "minutia %d: angle %d out of range", i, m[4])
			}
			if m[5] > 100 {
				return ferr(f, off+5, "minutia %d: quality %d out of range", i, m[5])
			}
			view.Minutiae[i] = Minutia{Type: typ, X: int(binary.BigEndian.Uint16(m) & coordMask),
				Y: int(binary.BigEndian.Uint16(m[2:]) & coordMask), Angle: a, Quality: int(m[5])}
			off += 6
		}
		ext := int(binary.BigEndian.Uint16(b[off:]))
		off += 2
		if len(b) < off+ext {
			return ferr(f, off-2, "view %d: extended data of %d bytes truncated", v, ext)
		}
		if ext > 0 {
			view.Extended = append([]byte(nil), b[off:off+ext]...)
		}
		off += ext
		r.Views = append(r.Views, view)
	}
	if off != len(b) {
		return ferr(f, off, "%d bytes after the last view", len(b)-off)
	}
	return nil
}

// Encode writes the record in its Format (ISO or ANSI).
func (r *Record) Encode() ([]byte, error) {
	switch r.Format {
	case FormatISO:
		return r.encode(FormatISO)
	case FormatANSI:
		return r.encode(FormatANSI)
	}
	return nil, fmt.Errorf("biometric: cannot encode a %v record as a full record", r.Format)
}

func (r *Record) encode(f Format) ([]byte, error) {
	if len(r.Views) == 0 || len(r.Views) > maxViews {
		return nil, fmt.Errorf("biometric: %d views", len(r.Views))
	}
	body := []byte{byte(len(r.Views)), 0}
	unit := 360.0 / 256
	if f == FormatANSI {
		unit = 2
	}
	for _, v := range r.Views {
		if len(v.Minutiae) > maxMinutiae {
			return nil, fmt.Errorf("biometric: %d minutiae in a view (at most %d)", len(v.Minutiae), maxMinutiae)
		}
		body = append(body, byte(v.Finger), byte(v.ViewNumber<<4|v.Impression&0x0F), byte(v.Quality), byte(len(v.Minutiae)))
		for _, m := range v.Minutiae {
			if m.X < 0 || m.X > coordMask || m.Y < 0 || m.Y > coordMask || m.Type > TypeBifurcation {
				return nil, errors.New("biometric: minutia out of range")
			}
			a := int(math.Round(normDeg(m.Angle)/unit)) % int(math.Round(360/unit))
			body = binary.BigEndian.AppendUint16(body, uint16(m.Type)<<14|uint16(m.X))
			body = binary.BigEndian.AppendUint16(body, uint16(m.Y))
			body = append(body, byte(a), byte(min(max(m.Quality, 0), 100)))
		}
		body = binary.BigEndian.AppendUint16(body, uint16(len(v.Extended)))
		body = append(body, v.Extended...)
	}
	var out []byte
	dims := func(b []byte) []byte {
		for _, x := range []int{r.Width, r.Height, r.ResX, r.ResY} {
			b = binary.BigEndian.AppendUint16(b, uint16(x))
		}
		return b
	}
	if f == FormatISO {
		n := 24 - 2 + len(body)
		out = binary.BigEndian.AppendUint32([]byte("FMR\x00 20\x00"), uint32(n))
		out = binary.BigEndian.AppendUint16(out, r.CaptureEquipment)
		out = dims(out)
		return append(out, body...), nil
	}
	n := 26 - 2 + len(body)
	out = []byte("FMR\x00 20\x00")
	if n <= 0xFFFF {
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	} else {
		n += 4
		out = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(out, 0), uint32(n))
	}
	out = binary.BigEndian.AppendUint16(out, r.CBEFFOwner)
	out = binary.BigEndian.AppendUint16(out, r.CBEFFType)
	out = binary.BigEndian.AppendUint16(out, r.CaptureEquipment)
	out = dims(out)
	return append(out, body...), nil
}

func normDeg(a float64) float64 {
	a = math.Mod(a, 360)
	if a < 0 {
		a += 360
	}
	return a
}
