// Package tlv parses and encodes BER-TLV data objects as used by
// ISO/IEC 7816-4 smart cards (FCP/FCI templates, biometric information
// templates, GET DATA responses, ...).
//
// # Strictness
//
// The parser is meant for untrusted card responses and is strict by default:
//
//   - Tags are 1 to 4 bytes long. A truncated tag, a tag longer than
//     4 bytes and a non-minimal multi-byte tag (first subsequent byte 0x80,
//     or the subsequent-byte form used for a tag number below 31) are
//     rejected. 0x00 and 0xFF are not valid first tag bytes.
//   - Lengths use the short form (0..127) or the long forms 0x81..0x84.
//     The indefinite form 0x80 and 0x85 and above are rejected, as are
//     long forms that are not minimal (e.g. 81 05) and lengths that run
//     past the end of the available data.
//   - Constructed objects (bit 6 of the first tag byte set) are parsed
//     recursively; their children must fill the value exactly. Nesting is
//     bounded by Options.MaxDepth.
//   - The whole input must be consumed: trailing bytes are an error.
//
// Options relaxes two of these rules: AllowPadding skips the 0x00 and 0xFF
// bytes that ISO/IEC 7816-4 permits before, between and after objects (at
// every nesting level), and AllowNonMinimal accepts non-minimal lengths and
// tags. A strictly parsed input re-encodes byte-for-byte with Encode.
//
// The parser never panics and never allocates memory in proportion to a
// length read from the input before that length has been checked against
// the data actually present. Every error it returns is an *Error that
// matches ErrMalformed and one more specific sentinel with errors.Is.
//
// # Aliasing
//
// Parsing does not copy: the Value of every parsed TLV, including the
// values of its Children, is a sub-slice of the input. Changing the input
// changes the parsed values, so copy the input first if its buffer is going
// to be reused (for example for the next card response). Values are capped
// at their own end, so appending to a Value never overwrites the input.
package tlv

import (
	"errors"
	"fmt"
)

// DefaultMaxDepth is the nesting limit used when Options.MaxDepth is not
// positive.
const DefaultMaxDepth = 16

// MaxLength is the largest value length that can be encoded (long form 84).
const MaxLength = 0xFFFFFFFF

// ErrMalformed is matched (with errors.Is) by every error this package
// returns, and by each of the more specific sentinels below.
var ErrMalformed = errors.New("tlv: malformed data")

// Specific error kinds. Each of them also matches ErrMalformed.
var (
	ErrTruncated           = kind("truncated data")
	ErrTrailingData        = kind("trailing data after object")
	ErrInvalidTag          = kind("invalid tag")
	ErrTagTooLong          = kind("tag longer than 4 bytes")
	ErrInvalidLength       = kind("invalid length encoding")
	ErrNonMinimal          = kind("non-minimal encoding")
	ErrTooDeep             = kind("nesting too deep")
	ErrConstructedMismatch = kind("children do not fill constructed value")
)

type kindError struct{ msg string }

func kind(msg string) error { return &kindError{msg} }

func (e *kindError) Error() string { return "tlv: " + e.msg }
func (e *kindError) Unwrap() error { return ErrMalformed }

// Error describes malformed input. Offset is the index in the input of the
// tag or length field where the problem was detected (the start of the
// object for ErrTooDeep, the first extra byte for ErrTrailingData); Err is
// one of the Err* sentinels.
type Error struct {
	Offset int
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("%v at offset %d", e.Err, e.Offset) }

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// Class is the class of a tag, taken from the two high bits of its first byte.
type Class uint8

// Tag classes.
const (
	ClassUniversal   Class = 0
	ClassApplication Class = 1
	ClassContext     Class = 2 // context-specific
	ClassPrivate     Class = 3
)

// String returns the class name, e.g. "context-specific".
func (c Class) String() string {
	switch c {
	case ClassUniversal:
		return "universal"
	case ClassApplication:
		return "application"
	case ClassContext:
		return "context-specific"
	case ClassPrivate:
		return "private"
	}
	return fmt.Sprintf("Class(%d)", uint8(c))
}

// Tag is a tag's encoded bytes packed big-endian into an integer, e.g.
// 0x84, 0x5F1F, 0x7F61 or 0xDF8101 (leading zero bytes are not part of the
// tag). The zero Tag stands for the single byte 0x00.
type Tag uint32

// len returns the number of bytes of t.
func (t Tag) len() int {
	switch {
	case t > 0xFFFFFF:
		return 4
	case t > 0xFFFF:
		return 3
	case t > 0xFF:
		return 2
	}
	return 1
}

func (t Tag) first() byte { return byte(t >> (8 * (t.len() - 1))) }

func (t Tag) appendTo(dst []byte) []byte {
	for i := t.len() - 1; i >= 0; i-- {
		dst = append(dst, byte(t>>(8*i)))
	}
	return dst
}

// Bytes returns the encoded tag bytes.
func (t Tag) Bytes() []byte { return t.appendTo(make([]byte, 0, 4)) }

// Constructed reports whether bit 6 of the first tag byte is set.
func (t Tag) Constructed() bool { return t.first()&0x20 != 0 }

// Class returns the class encoded in the first tag byte.
func (t Tag) Class() Class { return Class(t.first() >> 6) }

// String returns the tag bytes in upper-case hex, e.g. "7F61".
func (t Tag) String() string { return fmt.Sprintf("%X", t.Bytes()) }

// Valid reports whether t is a well-formed, minimally encoded tag, i.e.
// whether its bytes would be accepted by the strict parser.
func (t Tag) Valid() bool {
	b := t.Bytes()
	p := parser{b: b}
	got, n, err := p.tag(0, len(b))
	return err == nil && n == len(b) && got == t
}

// TLV is one data object.
type TLV struct {
	Tag Tag
	// Value holds the raw value bytes, for constructed objects too. For
	// parsed objects it aliases the parser input.
	Value []byte
	// Children holds the parsed children of a constructed object; it is
	// nil for primitive objects and for an empty constructed value.
	Children []TLV
}

// New returns a TLV with the given tag and value. The value is not copied.
func New(tag Tag, value []byte) TLV { return TLV{Tag: tag, Value: value} }

// NewConstructed returns a TLV holding children; its Value is their encoding.
// tag should have the constructed bit set.
func NewConstructed(tag Tag, children ...TLV) TLV {
	return TLV{Tag: tag, Value: Encode(children...), Children: children}
}

// Child returns the first direct child of t with the given tag.
func (t TLV) Child(tag Tag) (TLV, bool) {
	for _, c := range t.Children {
		if c.Tag == tag {
			return c, true
		}
	}
	return TLV{}, false
}

// Find looks up the first object in list with tag path[0], then the first
// of its children with tag path[1], and so on. It reports false if some
// step is missing or path is empty.
func Find(list []TLV, path ...Tag) (TLV, bool) {
	if len(path) == 0 {
		return TLV{}, false
	}
	cur := TLV{Children: list}
	for _, tag := range path {
		next, ok := cur.Child(tag)
		if !ok {
			return TLV{}, false
		}
		cur = next
	}
	return cur, true
}

// Bytes encodes t using the minimal length form. For a constructed tag
// with Children, the children are encoded (and Value is ignored);
// otherwise Value is written as is. Bytes panics if a value is longer
// than MaxLength.
func (t TLV) Bytes() []byte { return t.appendTo(nil) }

func (t TLV) appendTo(dst []byte) []byte {
	value := t.Value
	if t.Tag.Constructed() && len(t.Children) > 0 {
		value = Encode(t.Children...)
	}
	dst = t.Tag.appendTo(dst)
	dst = appendLength(dst, len(value))
	return append(dst, value...)
}

// Encode returns the concatenated encodings of list (see TLV.Bytes).
func Encode(list ...TLV) []byte {
	var out []byte
	for _, t := range list {
		out = t.appendTo(out)
	}
	return out
}

// EncodeLength returns the minimal BER encoding of the length n. It panics
// if n is negative or greater than MaxLength.
func EncodeLength(n int) []byte { return appendLength(make([]byte, 0, 5), n) }

func appendLength(dst []byte, n int) []byte {
	if n < 0 || uint64(n) > MaxLength {
		panic(fmt.Sprintf("tlv: length %d cannot be encoded", n))
	}
	if n < 0x80 {
		return append(dst, byte(n))
	}
	size := 1
	for uint64(n)>>(8*size) != 0 {
		size++
	}
	dst = append(dst, 0x80|byte(size))
	for i := size - 1; i >= 0; i-- {
		dst = append(dst, byte(uint64(n)>>(8*i)))
	}
	return dst
}

// Options relaxes the strict parsing rules. The zero value is strict.
type Options struct {
	// AllowPadding skips 0x00 and 0xFF bytes before, between and after
	// objects, at every nesting level (ISO/IEC 7816-4, e.g. padded EF
	// content or erased objects).
	AllowPadding bool
	// AllowNonMinimal accepts non-minimal long-form lengths such as 81 05
	// and non-minimal multi-byte tags such as 9F 1E or 9F 80 01. EMV data
	// needs it: tags like BF0C and 9F02 use a second byte below 0x1F,
	// which ISO/IEC 7816-4 declares invalid. Tag bytes are kept as read, so
	// they re-encode unchanged; lengths re-encode minimally.
	AllowNonMinimal bool
	// MaxDepth limits nesting: top-level objects are at depth 1, their
	// children at depth 2, and so on. Zero or negative means
	// DefaultMaxDepth.
	MaxDepth int
}

// Parse parses a sequence of objects using the strict rules. The whole
// input must be consumed; an empty input gives an empty list.
func Parse(b []byte) ([]TLV, error) { return ParseWith(b, Options{}) }

// ParseWith is like Parse with relaxed rules selected by o.
func ParseWith(b []byte, o Options) ([]TLV, error) {
	p := newParser(b, o)
	return p.list(0, len(b), 1)
}

// ParseOne parses exactly one object using the strict rules; any byte
// after it is an error (ErrTrailingData).
func ParseOne(b []byte) (TLV, error) { return ParseOneWith(b, Options{}) }

// ParseOneWith is like ParseOne with relaxed rules selected by o. With
// AllowPadding, padding before and after the object is skipped.
func ParseOneWith(b []byte, o Options) (TLV, error) {
	p := newParser(b, o)
	pos := p.skipPadding(0, len(b))
	t, next, err := p.object(pos, len(b), 1)
	if err != nil {
		return TLV{}, err
	}
	if next = p.skipPadding(next, len(b)); next != len(b) {
		return TLV{}, &Error{Offset: next, Err: ErrTrailingData}
	}
	return t, nil
}

type parser struct {
	b        []byte
	opts     Options
	maxDepth int
}

func newParser(b []byte, o Options) parser {
	p := parser{b: b, opts: o, maxDepth: o.MaxDepth}
	if p.maxDepth <= 0 {
		p.maxDepth = DefaultMaxDepth
	}
	return p
}

func (p *parser) skipPadding(pos, end int) int {
	if p.opts.AllowPadding {
		for pos < end && (p.b[pos] == 0x00 || p.b[pos] == 0xFF) {
			pos++
		}
	}
	return pos
}

// list parses the objects in p.b[pos:end], which are at the given depth.
func (p *parser) list(pos, end, depth int) ([]TLV, error) {
	var out []TLV
	for {
		if pos = p.skipPadding(pos, end); pos == end {
			return out, nil
		}
		t, next, err := p.object(pos, end, depth)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		pos = next
	}
}

// object parses one object starting at pos that must end by end. It
// returns the object and the offset just after it.
func (p *parser) object(pos, end, depth int) (TLV, int, error) {
	if depth > p.maxDepth {
		return TLV{}, 0, &Error{Offset: pos, Err: ErrTooDeep}
	}
	t, next, err := p.header(pos, end)
	if err != nil {
		// Inside a constructed object the data is known to be present, so
		// running out of it means that a child overruns its parent.
		if depth > 1 && err.Err == ErrTruncated {
			err.Err = ErrConstructedMismatch
		}
		return TLV{}, 0, err
	}
	if t.Tag.Constructed() {
		valueStart := next - len(t.Value)
		children, err := p.list(valueStart, next, depth+1)
		if err != nil {
			return TLV{}, 0, err
		}
		t.Children = children
	}
	return t, next, nil
}

// header parses the tag and length at pos and returns the object without
// its children, and the offset just after its value.
func (p *parser) header(pos, end int) (TLV, int, *Error) {
	tag, n, err := p.tag(pos, end)
	if err != nil {
		return TLV{}, 0, err
	}
	pos += n
	valueLen, n, err := p.length(pos, end)
	if err != nil {
		return TLV{}, 0, err
	}
	start := pos + n
	stop := start + valueLen
	return TLV{Tag: tag, Value: p.b[start:stop:stop]}, stop, nil
}

// tag parses the tag at pos and returns it with its size in bytes.
func (p *parser) tag(pos, end int) (Tag, int, *Error) {
	fail := func(err error) (Tag, int, *Error) { return 0, 0, &Error{Offset: pos, Err: err} }
	if pos >= end {
		return fail(ErrTruncated)
	}
	b := p.b[pos:end]
	if b[0] == 0x00 || b[0] == 0xFF {
		return fail(ErrInvalidTag)
	}
	t := Tag(b[0])
	if b[0]&0x1F != 0x1F {
		return t, 1, nil
	}
	for i := 1; ; i++ {
		if i == 4 {
			return fail(ErrTagTooLong)
		}
		if i == len(b) {
			return fail(ErrTruncated)
		}
		c := b[i]
		if i == 1 && (c == 0x80 || c < 0x1F) && !p.opts.AllowNonMinimal {
			return fail(ErrNonMinimal)
		}
		t = t<<8 | Tag(c)
		if c&0x80 == 0 {
			return t, i + 1, nil
		}
	}
}

// minLong holds the smallest value allowed for each long-form size.
var minLong = [...]uint64{1: 0x80, 2: 0x100, 3: 0x10000, 4: 0x1000000}

// length parses the length field at pos. It returns the value length,
// already checked against the data available before end, and the size of
// the length field.
func (p *parser) length(pos, end int) (int, int, *Error) {
	fail := func(err error) (int, int, *Error) { return 0, 0, &Error{Offset: pos, Err: err} }
	if pos >= end {
		return fail(ErrTruncated)
	}
	b := p.b[pos:end]
	n, size := uint64(b[0]), 1
	if b[0] >= 0x80 {
		size += int(b[0] & 0x7F)
		if size == 1 || size > 5 {
			return fail(ErrInvalidLength)
		}
		if size > len(b) {
			return fail(ErrTruncated)
		}
		n = 0
		for _, c := range b[1:size] {
			n = n<<8 | uint64(c)
		}
		if n < minLong[size-1] && !p.opts.AllowNonMinimal {
			return fail(ErrNonMinimal)
		}
	}
	// Compare in uint64 so that a huge length cannot overflow int.
	if n > uint64(len(b)-size) {
		return fail(ErrTruncated)
	}
	return int(n), size, nil
}
