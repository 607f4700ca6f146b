package biometric

import (
	"fmt"
	"math"
)

// The ISO/IEC 19794-2 compact card format: 3 bytes per minutia,
//
//	byte 1  X in 0.1 mm units
//	byte 2  Y in 0.1 mm units
//	byte 3  type in the top 2 bits (00 other, 01 ending, 10 bifurcation),
//	        angle in the low 6 bits in steps of 360/64 = 5.625 degrees
//
// Example (and test): ISO (100 px, 14 px, 112.5°, ending) at 197 px/cm
// is 33 07 54.

// CompactRes is the resolution of a compact-card record: 100 px/cm, so one
// unit is 0.1 mm.
const CompactRes = 100

const compactAngleStep = 360.0 / 64

// ToCompact converts a record's first view to compact-card minutiae: the
// coordinates from pixels at the record's resolution to 0.1 mm, the angles
// to 5.625° steps. Minutiae whose coordinates exceed 255 after conversion
// are dropped (dropped counts them). The result is a Record in
// FormatCompact with 100 px/cm.
func ToCompact(r *Record) (c *Record, dropped int, err error) {
	if r.ResX <= 0 || r.ResY <= 0 || len(r.Views) == 0 {
		return nil, 0, fmt.Errorf("%w: no resolution or no view to convert", ErrFormat)
	}
	v := r.Views[0]
	out := View{Finger: v.Finger, ViewNumber: v.ViewNumber, Impression: v.Impression, Quality: v.Quality}
	for _, m := range v.Minutiae {
		x := int(math.Round(float64(m.X) * 100 / float64(r.ResX)))
		y := int(math.Round(float64(m.Y) * 100 / float64(r.ResY)))
		if x > 255 || y > 255 {
			dropped++
			continue
		}
		a := float64(int(math.Round(normDeg(m.Angle)/compactAngleStep))%64) * compactAngleStep
		out.Minutiae = append(out.Minutiae, Minutia{Type: m.Type, X: x, Y: y, Angle: a, Quality: m.Quality})
	}
	return &Record{Format: FormatCompact, Width: min(256, r.Width*100/r.ResX+1), Height: min(256, r.Height*100/r.ResY+1),
		ResX: CompactRes, ResY: CompactRes, Views: []View{out}}, dropped, nil
}

// EncodeCompact writes minutiae as compact-card bytes (3 per minutia). The
// minutiae must already be in 0.1 mm units (ToCompact).
func EncodeCompact(ms []Minutia) ([]byte, error) {
	out := make([]byte, 0, 3*len(ms))
	for i, m := range ms {
		if m.X < 0 || m.X > 255 || m.Y < 0 || m.Y > 255 || m.Type > TypeBifurcation {
			return nil, fmt.Errorf("biometric: compact minutia %d out of range", i)
		}
		a := int(math.Round(normDeg(m.Angle)/compactAngleStep)) % 64
		out = append(out, byte(m.X), byte(m.Y), byte(m.Type)<<6|byte(a))
	}
	return out, nil
}

// ParseCompact parses compact-card minutiae (a multiple of 3 bytes) into a
// FormatCompact record.
func ParseCompact(b []byte) (*Record, error) {
	if len(b)%3 != 0 {
		return nil, ferr(FormatCompact, len(b)-len(b)%3, "length %d is not a multiple of 3", len(b))
	}
	if len(b)/3 > maxMinutiae {
		return nil, ferr(FormatCompact, 0, "%d minutiae (at most %d)", len(b)/3, maxMinutiae)
	}
	v := View{Minutiae: make([]Minutia, 0, len(b)/3)}
	for i := 0; i < len(b); i += 3 {
		t := MinutiaType(b[i+2] >> 6)
		if t == 3 {
			return nil, ferr(FormatCompact, i+2, "type 11 is reserved")
		}
		v.Minutiae = append(v.Minutiae, Minutia{Type: t, X: int(b[i]), Y: int(b[i+1]), Angle: float64(b[i+2]&0x3F) * compactAngleStep})
	}
	return &Record{Format: FormatCompact, Width: 256, Height: 256, ResX: CompactRes, ResY: CompactRes, Views: []View{v}}, nil
}
