package tlv

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"
)

// h decodes hex, ignoring spaces.
func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// sameTree reports whether a and b have the same tags and leaf values.
// Values of constructed objects with children are not compared, so that
// padded and canonical forms compare equal.
func sameTree(a, b []TLV) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Tag != y.Tag || len(x.Children) != len(y.Children) {
			return false
		}
		if len(x.Children) == 0 && !bytes.Equal(x.Value, y.Value) {
			return false
		}
		if !sameTree(x.Children, y.Children) {
			return false
		}
	}
	return true
}

const (
	fcpHex = "62 0E 80 02 10 00 82 01 01 83 02 01 01 8A 01 05"
	bitHex = "7F61 13 02 01 01 7F60 0D A1 0B 81 01 08 87 02 01 01 88 02 00 07"
)

func TestParseFCP(t *testing.T) {
	fcp, err := ParseOne(h(fcpHex))
	if err != nil {
		t.Fatal(err)
	}
	if fcp.Tag != 0x62 || !fcp.Tag.Constructed() || fcp.Tag.Class() != ClassApplication {
		t.Fatalf("tag %v", fcp.Tag)
	}
	want := []TLV{
		New(0x80, h("1000")),
		New(0x82, h("01")),
		New(0x83, h("0101")),
		New(0x8A, h("05")),
	}
	if !sameTree(fcp.Children, want) {
		t.Fatalf("children %+v", fcp.Children)
	}
	if !bytes.Equal(fcp.Value, h(fcpHex)[2:]) {
		t.Fatalf("value % X", fcp.Value)
	}
	if v, ok := fcp.Child(0x8A); !ok || !bytes.Equal(v.Value, []byte{5}) {
		t.Fatalf("Child(8A) = %v, %v", v, ok)
	}
	if _, ok := fcp.Child(0x84); ok {
		t.Fatal("Child(84) found")
	}
	// With the length 0F the template claims one byte more than present.
	bad := h(fcpHex)
	bad[1] = 0x0F
	if _, err := ParseOne(bad); !errors.Is(err, ErrTruncated) {
		t.Fatalf("62 0F: got %v", err)
	}
}

func TestParseBITGroup(t *testing.T) {
	in := h(bitHex)
	list, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	bit, ok := Find(list, 0x7F61, 0x7F60)
	if !ok || bit.Tag.String() != "7F60" || len(bit.Children) != 1 {
		t.Fatalf("Find 7F61/7F60 = %+v, %v", bit, ok)
	}
	v, ok := Find(list, 0x7F61, 0x7F60, 0xA1, 0x88)
	if !ok || !bytes.Equal(v.Value, h("0007")) {
		t.Fatalf("Find .../88 = %+v, %v", v, ok)
	}
	if n, ok := Find(list, 0x7F61, 0x02); !ok || !bytes.Equal(n.Value, []byte{1}) {
		t.Fatalf("Find 7F61/02 = %+v, %v", n, ok)
	}
	for _, path := range [][]Tag{nil, {0x7F60}, {0x7F61, 0xA1}, {0x7F61, 0x7F60, 0xA1, 0x88, 0x01}} {
		if _, ok := Find(list, path...); ok {
			t.Errorf("Find %v found something", path)
		}
	}
	if got := Encode(list...); !bytes.Equal(got, in) {
		t.Fatalf("re-encoded % X", got)
	}
}

func TestParseVectors(t *testing.T) {
	long300 := bytes.Repeat([]byte{0xA5}, 300)
	long128 := bytes.Repeat([]byte{0x5A}, 128)
	tests := []struct {
		name  string
		in    []byte
		tag   Tag
		value []byte
	}{
		{"5F1F", h("5F1F 03 414243"), 0x5F1F, h("414243")},
		{"empty value", h("84 00"), 0x84, []byte{}},
		{"three-byte tag", h("DF8101 01 AA"), 0xDF8101, h("AA")},
		{"four-byte tag", h("9F818101 01 BB"), 0x9F818101, h("BB")},
		{"81 long form", append(h("53 81 80"), long128...), 0x53, long128},
		{"82 long form 300", append(h("53 82 012C"), long300...), 0x53, long300},
		{"127 short form", append(h("C0 7F"), long300[:127]...), 0xC0, long300[:127]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseOne(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Tag != tc.tag || !bytes.Equal(got.Value, tc.value) || got.Children != nil {
				t.Fatalf("got %v len %d", got.Tag, len(got.Value))
			}
			if !bytes.Equal(got.Bytes(), tc.in) {
				t.Fatalf("Bytes() = % X", got.Bytes())
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	list, err := Parse(nil)
	if err != nil || len(list) != 0 {
		t.Fatalf("Parse(nil) = %v, %v", list, err)
	}
	// An empty constructed object has no children.
	c, err := ParseOne(h("70 00"))
	if err != nil || c.Children != nil || len(c.Value) != 0 {
		t.Fatalf("70 00: %+v, %v", c, err)
	}
}

func TestErrors(t *testing.T) {
	deep := func(n int) []byte { // n nested 70 objects around 80 00
		b := h("80 00")
		for range n {
			b = append([]byte{0x70, byte(len(b))}, b...)
		}
		return b
	}
	tests := []struct {
		name   string
		in     []byte
		opts   Options
		want   error
		offset int
	}{
		{"truncated tag", h("5F"), Options{}, ErrTruncated, 0},
		{"truncated 3-byte tag", h("80 00 DF81"), Options{}, ErrTruncated, 2},
		{"tag too long", h("9F81818101 00"), Options{}, ErrTagTooLong, 0},
		{"tag too long truncated", h("9F818181"), Options{}, ErrTagTooLong, 0},
		{"tag 1F80", h("9F8001 00"), Options{}, ErrNonMinimal, 0},
		{"tag 1F1E", h("9F1E 00"), Options{}, ErrNonMinimal, 0},
		{"tag 1F00", h("5F00 00"), Options{}, ErrNonMinimal, 0},
		{"tag 00", h("00 00"), Options{}, ErrInvalidTag, 0},
		{"tag FF", h("FF 00"), Options{}, ErrInvalidTag, 0},
		{"trailing 00", h("80 00 00"), Options{}, ErrInvalidTag, 2},
		{"missing length", h("80"), Options{}, ErrTruncated, 1},
		{"indefinite", h("70 80 80 00 00 00"), Options{}, ErrInvalidLength, 1},
		{"85 length", h("80 85 0000000001 AA"), Options{}, ErrInvalidLength, 1},
		{"FF length", h("80 FF"), Options{}, ErrInvalidLength, 1},
		{"81 05", h("80 81 05 0102030405"), Options{}, ErrNonMinimal, 1},
		{"82 0080", append(h("80 82 0080"), make([]byte, 128)...), Options{}, ErrNonMinimal, 1},
		{"83 00FFFF", h("80 83 00FFFF"), Options{}, ErrNonMinimal, 1},
		{"84 00FFFFFF", h("80 84 00FFFFFF"), Options{}, ErrNonMinimal, 1},
		{"truncated length bytes", h("80 82 01"), Options{}, ErrTruncated, 1},
		{"truncated value", h("80 05 01 02"), Options{}, ErrTruncated, 1},
		{"huge length", h("80 84 FFFFFFFF 00"), Options{}, ErrTruncated, 1},
		{"huge length lenient", h("80 84 FFFFFFFF"), Options{AllowNonMinimal: true, AllowPadding: true}, ErrTruncated, 1},
		{"second object truncated", h("80 00 81 01"), Options{}, ErrTruncated, 3},
		{"child overruns parent", h("70 03 80 05 01 02 03 04 05"), Options{}, ErrConstructedMismatch, 3},
		{"child without length", h("70 01 80 00"), Options{}, ErrConstructedMismatch, 3},
		{"child tag cut", h("70 01 5F 1F 00"), Options{}, ErrConstructedMismatch, 2},
		{"nested mismatch", h("70 05 71 03 80 02 00"), Options{}, ErrConstructedMismatch, 5},
		{"padding in child strict", h("70 03 80 00 FF"), Options{}, ErrInvalidTag, 4},
		{"error in child", h("70 03 9F 80 01"), Options{}, ErrNonMinimal, 2},
		{"too deep default", deep(16), Options{}, ErrTooDeep, 32},
		{"too deep option", deep(2), Options{MaxDepth: 2}, ErrTooDeep, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list, err := ParseWith(tc.in, tc.opts)
			if err == nil {
				t.Fatalf("no error, got %+v", list)
			}
			if list != nil {
				t.Errorf("list %+v returned with error", list)
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Offset != tc.offset {
				t.Fatalf("got %v, want offset %d", err, tc.offset)
			}
			if !strings.Contains(err.Error(), "offset") {
				t.Errorf("message %q", err)
			}
		})
	}
	if _, err := ParseWith(deep(15), Options{}); err != nil {
		t.Errorf("depth 16: %v", err)
	}
	if _, err := ParseWith(deep(1), Options{MaxDepth: 2}); err != nil {
		t.Errorf("depth 2: %v", err)
	}
}

func TestSentinels(t *testing.T) {
	for _, err := range []error{ErrTruncated, ErrTrailingData, ErrInvalidTag, ErrTagTooLong,
		ErrInvalidLength, ErrNonMinimal, ErrTooDeep, ErrConstructedMismatch} {
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%v does not match ErrMalformed", err)
		}
		if errors.Is(err, ErrTruncated) != (err == ErrTruncated) {
			t.Errorf("%v matches ErrTruncated", err)
		}
	}
	e := &Error{Offset: 7, Err: ErrTruncated}
	if e.Error() != "tlv: truncated data at offset 7" || e.Unwrap() != ErrTruncated {
		t.Errorf("Error() = %q", e.Error())
	}
}

func TestParseOne(t *testing.T) {
	_, err := ParseOne(h("80 00 81 00"))
	var e *Error
	if !errors.Is(err, ErrTrailingData) || !errors.As(err, &e) || e.Offset != 2 {
		t.Fatalf("two objects: %v", err)
	}
	if _, err := ParseOne(nil); !errors.Is(err, ErrTruncated) {
		t.Fatalf("empty: %v", err)
	}
	if _, err := ParseOne(h("80 00 00")); !errors.Is(err, ErrTrailingData) {
		t.Fatalf("padding, strict: %v", err)
	}
	got, err := ParseOneWith(h("FF 00 80 01 AA 00 FF FF"), Options{AllowPadding: true})
	if err != nil || got.Tag != 0x80 || !bytes.Equal(got.Value, h("AA")) {
		t.Fatalf("padded: %+v, %v", got, err)
	}
	if _, err := ParseOneWith(h("FF FF"), Options{AllowPadding: true}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("padding only: %v", err)
	}
}

func TestPadding(t *testing.T) {
	in := h("00 FF 80 01 AA 00 00 70 06 FF 81 00 00 82 00 FF FF")
	if _, err := Parse(in); !errors.Is(err, ErrInvalidTag) {
		t.Fatalf("strict: %v", err)
	}
	list, err := ParseWith(in, Options{AllowPadding: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []TLV{New(0x80, h("AA")), NewConstructed(0x70, New(0x81, nil), New(0x82, nil))}
	if !sameTree(list, want) {
		t.Fatalf("got %+v", list)
	}
	// The raw value keeps the padding; encoding the children drops it.
	if !bytes.Equal(list[1].Value, h("FF 81 00 00 82 00")) {
		t.Fatalf("value % X", list[1].Value)
	}
	if got := Encode(list...); !bytes.Equal(got, h("80 01 AA 70 04 81 00 82 00")) {
		t.Fatalf("encoded % X", got)
	}
	if list, err := ParseWith(h("00 FF 00"), Options{AllowPadding: true}); err != nil || len(list) != 0 {
		t.Fatalf("only padding: %v, %v", list, err)
	}
}

func TestNonMinimalOption(t *testing.T) {
	// EMV tags such as 9F1E and BF0C use a second tag byte below 0x1F,
	// which ISO/IEC 7816-4 calls invalid; they need AllowNonMinimal.
	if _, err := Parse(h("BF0C 03 9F1E 00 00")); !errors.Is(err, ErrNonMinimal) {
		t.Fatalf("strict EMV tags: %v", err)
	}
	o := Options{AllowNonMinimal: true}
	if l, err := ParseWith(h("BF0C 03 9F1E 00"), o); err != nil || l[0].Children[0].Tag != 0x9F1E {
		t.Fatalf("lenient EMV tags: %+v, %v", l, err)
	}
	list, err := ParseWith(h("80 81 05 0102030405 9F1E 82 0001 AA 9F8001 00"), o)
	if err != nil {
		t.Fatal(err)
	}
	want := []TLV{New(0x80, h("0102030405")), New(0x9F1E, h("AA")), New(0x9F8001, []byte{})}
	if !sameTree(list, want) {
		t.Fatalf("got %+v", list)
	}
	// Lengths are re-encoded minimally; tag bytes are kept as they were.
	if got := Encode(list...); !bytes.Equal(got, h("80 05 0102030405 9F1E 01 AA 9F8001 00")) {
		t.Fatalf("encoded % X", got)
	}
	// Structural errors stay errors.
	for _, in := range []string{"80 80", "80 85 0000000001", "9F81818101 00", "80 82 00"} {
		if _, err := ParseWith(h(in), o); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{1, 2, 3}, 100)
	tree := []TLV{
		NewConstructed(0x6F,
			New(0x84, h("A000000308000010000100")),
			NewConstructed(0xA5,
				New(0x5F2D, []byte("en")),
				NewConstructed(0xBF20, New(0x9F818101, big)),
			),
		),
		NewConstructed(0x7F61),
		New(0xDF8101, nil),
	}
	enc := Encode(tree...)
	got, err := Parse(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !sameTree(got, tree) {
		t.Fatalf("got %+v", got)
	}
	if !bytes.Equal(Encode(got...), enc) {
		t.Fatal("re-encoding differs")
	}
	if !bytes.Equal(got[0].Value, tree[0].Value) {
		t.Fatal("constructed Value differs")
	}
	// Bytes prefers Children over a stale Value for constructed tags.
	stale := TLV{Tag: 0x70, Value: h("80 00"), Children: []TLV{New(0x81, h("01"))}}
	if !bytes.Equal(stale.Bytes(), h("70 03 81 01 01")) {
		t.Fatalf("stale: % X", stale.Bytes())
	}
	// Without Children the raw Value is used.
	if got := New(0x70, h("80 00")).Bytes(); !bytes.Equal(got, h("70 02 80 00")) {
		t.Fatalf("raw constructed: % X", got)
	}
}

func TestAliasing(t *testing.T) {
	in := h("70 06 80 01 AA 81 01 BB")
	obj, err := ParseOne(in)
	if err != nil {
		t.Fatal(err)
	}
	in[4] = 0xCC
	if obj.Children[0].Value[0] != 0xCC || obj.Value[2] != 0xCC {
		t.Fatal("value does not alias the input")
	}
	_ = append(obj.Children[0].Value, 0xDD)
	if in[5] != 0x81 {
		t.Fatal("append overwrote the input")
	}
}

func TestTag(t *testing.T) {
	tests := []struct {
		tag         Tag
		bytes       string
		constructed bool
		class       Class
		valid       bool
	}{
		{0x80, "80", false, ClassContext, true},
		{0x62, "62", true, ClassApplication, true},
		{0x04, "04", false, ClassUniversal, true},
		{0x30, "30", true, ClassUniversal, true},
		{0xDF, "DF", false, ClassPrivate, false}, // needs a subsequent byte
		{0x5F1F, "5F1F", false, ClassApplication, true},
		{0x7F61, "7F61", true, ClassApplication, true},
		{0xBF0C, "BF0C", true, ClassContext, false}, // 0C < 31: non-minimal
		{0x9F7F, "9F7F", false, ClassContext, true},
		{0xDF8101, "DF8101", false, ClassPrivate, true},
		{0x9F818101, "9F818101", false, ClassContext, true},
		{0x9F7F01, "9F7F01", false, ClassContext, false}, // 7F ends the tag
		{0x9F8001, "9F8001", false, ClassContext, false},
		{0x00, "00", false, ClassUniversal, false},
		{0xFF, "FF", true, ClassPrivate, false},
	}
	for _, tc := range tests {
		if got := tc.tag.String(); got != tc.bytes {
			t.Errorf("%#x: String() = %s", uint32(tc.tag), got)
		}
		if got := tc.tag.Bytes(); !bytes.Equal(got, h(tc.bytes)) {
			t.Errorf("%v: Bytes() = % X", tc.tag, got)
		}
		if got := tc.tag.Constructed(); got != tc.constructed {
			t.Errorf("%v: Constructed() = %v", tc.tag, got)
		}
		if got := tc.tag.Class(); got != tc.class {
			t.Errorf("%v: Class() = %v", tc.tag, got)
		}
		if got := tc.tag.Valid(); got != tc.valid {
			t.Errorf("%v: Valid() = %v", tc.tag, got)
		}
	}
	names := []string{"universal", "application", "context-specific", "private", "Class(9)"}
	for i, c := range []Class{ClassUniversal, ClassApplication, ClassContext, ClassPrivate, 9} {
		if c.String() != names[i] {
			t.Errorf("Class(%d).String() = %s", c, c)
		}
	}
}

func TestEncodeLength(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{
		{0, "00"}, {5, "05"}, {127, "7F"}, {128, "8180"}, {255, "81FF"},
		{256, "820100"}, {300, "82012C"}, {0xFFFF, "82FFFF"}, {0x10000, "83010000"},
		{0xFFFFFF, "83FFFFFF"}, {0x1000000, "8401000000"}, {0x7FFFFFFF, "847FFFFFFF"},
	}
	for _, tc := range tests {
		if got := EncodeLength(tc.n); !bytes.Equal(got, h(tc.want)) {
			t.Errorf("EncodeLength(%d) = % X, want %s", tc.n, got, tc.want)
		}
	}
	if maxLen := uint64(MaxLength); maxLen <= math.MaxInt { // 64-bit int only
		if got := EncodeLength(int(maxLen)); !bytes.Equal(got, h("84FFFFFFFF")) {
			t.Errorf("EncodeLength(MaxLength) = % X", got)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("EncodeLength(-1) did not panic")
		}
	}()
	EncodeLength(-1)
}

func TestParseNoAllocForClaimedLength(t *testing.T) {
	in := h("80 84 7FFFFFFF 00")
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Parse(in); err == nil {
			t.Fatal("no error")
		}
	})
	if allocs > 2 {
		t.Errorf("%v allocations", allocs)
	}
}

func BenchmarkParse(b *testing.B) {
	in := Encode(
		TLV{Tag: 0x62, Value: h(fcpHex)[2:]},
		TLV{Tag: 0x7F61, Value: h(bitHex)[3:]},
		New(0x53, bytes.Repeat([]byte{0xA5}, 300)),
	)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}
