package biometric

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"kpe-agent/internal/tlv"
)

// The biometric information template (ISO/IEC 7816-11, NIST SP 800-76-2
// on-card comparison): the card says what it compares and what data it
// wants. The group is
//
//	7F61 { 02 count, 7F60 { [83 reference], A1 { 81 type, 82 subtype,
//	       87 format owner, 88 format type,
//	       B1 { 81 min ‖ max minutiae, 82 order, 83 feature handling } } } ... }

// BIT is one biometric information template.
type BIT struct {
	Reference    byte // VERIFY P2 (default 0x80 + index)
	Type         byte // 08 fingerprint
	Subtype      byte // finger bits: 01 right, 02 left; 04 thumb, 08 index, 0C middle, 10 ring, 14 little
	FormatOwner  uint16
	FormatType   uint16
	MinMinutiae  int
	MaxMinutiae  int
	Order        byte // 01 ascending / 02 descending | 04 x-y, 08 y-x, 0C angle, 10 polar
	FeatureFlags byte // 83, kept as given
}

// Order values.
const (
	OrderAscending  = 0x01
	OrderDescending = 0x02
	OrderXY         = 0x04
	OrderYX         = 0x08
	OrderAngle      = 0x0C
	OrderPolar      = 0x10
)

// ErrBIT is matched by every BIT parse error.
var ErrBIT = errors.New("biometric: malformed biometric information template")

func bitErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBIT, fmt.Sprintf(format, args...))
}

// ParseBITGroup parses a 7F61 group with one or two BITs.
func ParseBITGroup(b []byte) ([]BIT, error) {
	list, err := tlv.ParseWith(b, tlv.Options{AllowPadding: true})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBIT, err)
	}
	if len(list) != 1 || list[0].Tag != 0x7F61 {
		return nil, bitErr("want one 7F61 group")
	}
	var count = -1
	var bits []BIT
	for _, c := range list[0].Children {
		switch c.Tag {
		case 0x02:
			if len(c.Value) != 1 || count >= 0 {
				return nil, bitErr("count")
			}
			count = int(c.Value[0])
		case 0x7F60:
			bt, err := parseBIT(c, len(bits))
			if err != nil {
				return nil, err
			}
			bits = append(bits, bt)
		default:
			return nil, bitErr("unexpected %s in the group", c.Tag)
		}
	}
	if count < 1 || count > 2 || count != len(bits) {
		return nil, bitErr("count %d with %d BITs", count, len(bits))
	}
	return bits, nil
}

func parseBIT(t tlv.TLV, index int) (BIT, error) {
	bt := BIT{Reference: byte(0x80 + index)}
	var header bool
	for _, c := range t.Children {
		switch c.Tag {
		case 0x83:
			if len(c.Value) != 1 {
				return BIT{}, bitErr("reference")
			}
			bt.Reference = c.Value[0]
		case 0xA1:
			header = true
			if err := bt.parseHeader(c); err != nil {
				return BIT{}, err
			}
		default:
			return BIT{}, bitErr("unexpected %s in a BIT", c.Tag)
		}
	}
	if !header {
		return BIT{}, bitErr("BIT without a biometric header template A1")
	}
	return bt, nil
}

func (bt *BIT) parseHeader(h tlv.TLV) error {
	var params bool
	for _, c := range h.Children {
		v := c.Value
		switch c.Tag {
		case 0x81:
			if len(v) != 1 {
				return bitErr("type")
			}
			bt.Type = v[0]
		case 0x82:
			if len(v) != 1 {
				return bitErr("subtype")
			}
			bt.Subtype = v[0]
		case 0x87:
			if len(v) != 2 {
				return bitErr("format owner")
			}
			bt.FormatOwner = uint16(v[0])<<8 | uint16(v[1])
		case 0x88:
			if len(v) != 2 {
				return bitErr("format type")
			}
			bt.FormatType = uint16(v[0])<<8 | uint16(v[1])
		case 0xB1:
			params = true
			for _, p := range c.Children {
				switch p.Tag {
				case 0x81:
					if len(p.Value) != 2 || p.Value[0] > p.Value[1] || p.Value[1] == 0 {
						return bitErr("min/max minutiae")
					}
					bt.MinMinutiae, bt.MaxMinutiae = int(p.Value[0]), int(p.Value[1])
				case 0x82:
					if len(p.Value) != 1 || (p.Value[0]&0x03 != 1 && p.Value[0]&0x03 != 2) || p.Value[0]&0xE0 != 0 {
						return bitErr("order")
					}
					bt.Order = p.Value[0]
				case 0x83:
					if len(p.Value) != 1 {
						return bitErr("feature handling")
					}
					bt.FeatureFlags = p.Value[0]
				default:
					return bitErr("unexpected %s in the parameters", p.Tag)
				}
			}
		default:
			// other header fields (validity, creator, ...) are allowed
		}
	}
	if bt.Type != 0x08 {
		return bitErr("biometric type %02X is not fingerprint", bt.Type)
	}
	if !params || bt.MaxMinutiae == 0 || bt.Order == 0 {
		return bitErr("missing comparison parameters B1 (min/max, order)")
	}
	return nil
}

// EncodeBITGroup encodes BITs (lab personalisation).
func EncodeBITGroup(bits []BIT) []byte {
	items := []tlv.TLV{tlv.New(0x02, []byte{byte(len(bits))})}
	for _, bt := range bits {
		params := tlv.NewConstructed(0xB1,
			tlv.New(0x81, []byte{byte(bt.MinMinutiae), byte(bt.MaxMinutiae)}),
			tlv.New(0x82, []byte{bt.Order}),
			tlv.New(0x83, []byte{bt.FeatureFlags}))
		header := tlv.NewConstructed(0xA1,
			tlv.New(0x81, []byte{bt.Type}), tlv.New(0x82, []byte{bt.Subtype}),
			tlv.New(0x87, []byte{byte(bt.FormatOwner >> 8), byte(bt.FormatOwner)}),
			tlv.New(0x88, []byte{byte(bt.FormatType >> 8), byte(bt.FormatType)}), params)
		items = append(items, tlv.NewConstructed(0x7F60, tlv.New(0x83, []byte{bt.Reference}), header))
	}
	return tlv.NewConstructed(0x7F61, items...).Bytes()
}

// ErrPlaceAgain: the capture has too few minutiae (or too low a quality)
// for this card: ask for the finger again. Such a capture is never sent.
var ErrPlaceAgain = errors.New("biometric: capture too poor: place the finger again")

// QualityGate refuses captures with fewer than min minutiae or an average
// minutia quality (when reported) below minQuality.
func QualityGate(r *Record, minMinutiae, minQuality int) error {
	ms := r.Minutiae()
	if len(ms) < minMinutiae {
		return fmt.Errorf("%w (%d minutiae, need %d)", ErrPlaceAgain, len(ms), minMinutiae)
	}
	q, n := 0, 0
	for _, m := range ms {
		if m.Quality > 0 {
			q += m.Quality
			n++
		}
	}
	if n > 0 && q/n < minQuality {
		return fmt.Errorf("%w (quality %d, need %d)", ErrPlaceAgain, q/n, minQuality)
	}
	return nil
}

// VerifyData builds what the card asks for from a capture: compact-card
// minutiae, the best-quality ones down to the BIT's maximum, sorted in the
// BIT's order. Fewer than the BIT's minimum after conversion gives
// ErrPlaceAgain: such a capture must not be sent.
func VerifyData(bt BIT, r *Record) ([]byte, error) {
	c, _, err := ToCompact(r)
	if err != nil {
		return nil, err
	}
	ms := slices.Clone(c.Minutiae())
	defer clear(ms)
	if len(ms) < bt.MinMinutiae {
		return nil, fmt.Errorf("%w (%d usable minutiae, the card needs %d)", ErrPlaceAgain, len(ms), bt.MinMinutiae)
	}
	if len(ms) > bt.MaxMinutiae {
		slices.SortStableFunc(ms, func(a, b Minutia) int { return cmp.Compare(b.Quality, a.Quality) })
		ms = ms[:bt.MaxMinutiae]
	}
	SortMinutiae(ms, bt.Order)
	return EncodeCompact(ms)
}

// SortMinutiae sorts compact minutiae in a BIT order.
func SortMinutiae(ms []Minutia, order byte) {
	var cx, cy float64
	for _, m := range ms {
		cx += float64(m.X)
		cy += float64(m.Y)
	}
	if len(ms) > 0 {
		cx, cy = cx/float64(len(ms)), cy/float64(len(ms))
	}
	key := func(m Minutia) (float64, float64) {
		switch order &^ 0x03 {
		case OrderYX:
			return float64(m.Y), float64(m.X)
		case OrderAngle:
			return m.Angle, float64(m.X)
		case OrderPolar:
			dx, dy := float64(m.X)-cx, float64(m.Y)-cy
			return math.Hypot(dx, dy), math.Atan2(dy, dx)
		}
		return float64(m.X), float64(m.Y)
	}
	slices.SortStableFunc(ms, func(a, b Minutia) int {
		a1, a2 := key(a)
		b1, b2 := key(b)
		c := cmp.Compare(a1, b1)
		if c == 0 {
			c = cmp.Compare(a2, b2)
		}
		if order&0x03 == OrderDescending {
			c = -c
		}
		return c
	})
}

// VerifyCommandData wraps compact minutiae in 7F2E { 81 ... }.
func VerifyCommandData(compact []byte) []byte {
	return tlv.NewConstructed(0x7F2E, tlv.New(0x81, compact)).Bytes()
}

// ParseVerifyCommandData accepts the 7F2E-wrapped form and the bare 3N-byte
// form of the PIV draft; wrapped reports which arrived.
func ParseVerifyCommandData(b []byte) (compact []byte, wrapped bool, err error) {
	if len(b) >= 2 && b[0] == 0x7F && b[1] == 0x2E {
		t, err := tlv.ParseOne(b)
		if err != nil {
			return nil, true, fmt.Errorf("%w: %w", ErrFormat, err)
		}
		v, ok := tlv.Find(t.Children, 0x81)
		if !ok || len(t.Children) != 1 {
			return nil, true, fmt.Errorf("%w: 7F2E without exactly one 81", ErrFormat)
		}
		return v.Value, true, nil
	}
	if len(b)%3 != 0 {
		return nil, false, fmt.Errorf("%w: bare data of %d bytes", ErrFormat, len(b))
	}
	return b, false, nil
}
