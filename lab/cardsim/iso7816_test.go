package cardsim

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	long := strings.Repeat("AB", 300)
	for _, tc := range []struct {
		name     string
		raw      string
		data     string
		ne       int
		extended bool
		err      error
	}{
		{"case 1", "00A40000", "", 0, false, nil},
		{"case 2S", "00B000000A", "", 10, false, nil},
		{"case 2S Le=00", "00B0000000", "", 256, false, nil},
		{"case 3S", "00A4040C03A00001", "A00001", 0, false, nil},
		{"case 4S", "00A4040003A0000100", "A00001", 256, false, nil},
		{"case 2E", "00B00000000100", "", 256, true, nil},
		{"case 2E Le=0000", "00B00000000000", "", 65536, true, nil},
		{"case 3E", "00DA0100000003AABBCC", "AABBCC", 0, true, nil},
		{"case 3E long", "00DA010000012C" + long, long, 0, true, nil},
		{"case 4E", "00DA0100000003AABBCC0010", "AABBCC", 16, true, nil},
		{"case 4E Le=0000", "00DA0100000003AABBCC0000", "AABBCC", 65536, true, nil},
		{"too short", "00A400", "", 0, false, ErrAPDUTooShort},
		{"empty", "", "", 0, false, ErrAPDUTooShort},
		{"Lc too big", "00A4040C04A00001", "", 0, false, ErrAPDUBadLength},
		{"Lc too small", "00A4040C02A0000100AA", "", 0, false, ErrAPDUBadLength},
		{"extended truncated", "00B0000000", "", 256, false, nil},
		{"extended 6 bytes", "00B000000001", "", 0, false, ErrAPDUBadLength},
		{"extended Lc=0 with data", "00DA01000000000000", "", 0, false, ErrAPDUBadLength},
		{"extended Lc mismatch", "00DA0100000004AABBCC", "", 0, false, ErrAPDUBadLength},
		{"extended Le one byte", "00DA0100000003AABBCC00", "", 0, false, ErrAPDUBadLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCommand(hx(tc.raw))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			noErr(t, err)
			if !bytes.Equal(c.Data, hx(tc.data)) || c.Ne != tc.ne || c.Extended != tc.extended {
				t.Fatalf("got data %X ne %d ext %v", c.Data, c.Ne, c.Extended)
			}
			equal(t, c.HasLe(), tc.ne > 0, "HasLe")
		})
	}
	c, err := ParseCommand(hx("80CA9F7F00"))
	noErr(t, err)
	equal(t, c.CLA, 0x80, "CLA")
	equal(t, c.INS, 0xCA, "INS")
	equal(t, c.P1P2(), 0x9F7F, "P1P2")
}

func TestDecodeClass(t *testing.T) {
	for _, tc := range []struct {
		cla  byte
		want Class
	}{
		{0x00, Class{Interindustry: true}},
		{0x10, Class{Interindustry: true, Chained: true}},
		{0x0C, Class{Interindustry: true, SecureMessaging: true}},
		{0x03, Class{Interindustry: true, Channel: 3}},
		{0x40, Class{Interindustry: true, Channel: 4}},
		{0x7F, Class{Interindustry: true, Chained: true, SecureMessaging: true, Channel: 19}},
		{0x20, Class{}},
		{0x80, Class{}},
		{0xFF, Class{}},
	} {
		equal(t, DecodeClass(tc.cla), tc.want, "class")
	}
}

func TestSWHelpers(t *testing.T) {
	equal(t, SWWithCount(SWBytesRemaining, 16), SW(0x6110), "61 16")
	equal(t, SWWithCount(SWBytesRemaining, 256), SW(0x6100), "61 256")
	equal(t, SWWithCount(SWBytesRemaining, 1000), SW(0x6100), "61 1000")
	equal(t, SWWithCount(SWWrongLe, 8), SW(0x6C08), "6C 8")
	equal(t, SWFileNotFound.String(), "6A82", "String")
	if !bytes.Equal(Respond([]byte{1, 2}, SWOK), hx("01029000")) {
		t.Fatal("Respond")
	}
}

func TestBERHelpers(t *testing.T) {
	for _, n := range []int{0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0xFFFFFF, 0x1000000} {
		enc := AppendBERLength(nil, n)
		equal(t, len(enc), BERLengthSize(n), "BERLengthSize")
		v := bytes.Repeat([]byte{0}, min(n, 70000))
		if n > 70000 {
			continue
		}
		tlv := AppendTLV(nil, 0x53, v)
		tag, val, rest, err := ParseTLV(append(tlv, 0xEE))
		noErr(t, err)
		equal(t, tag, 0x53, "tag")
		equal(t, len(val), n, "len")
		if !bytes.Equal(rest, []byte{0xEE}) {
			t.Fatalf("rest %X", rest)
		}
	}
	tlv := AppendTLV(nil, 0x7F66, []byte{1})
	if !bytes.Equal(tlv, hx("7F660101")) {
		t.Fatalf("two-byte tag %X", tlv)
	}
	tag, _, _, err := ParseTLV(tlv)
	noErr(t, err)
	equal(t, tag, 0x7F66, "tag")
	if !bytes.Equal(AppendTLV(nil, 0x5F2D01, nil), hx("5F2D0100")) {
		t.Fatal("three-byte tag")
	}
	for _, bad := range []string{"", "54", "5F", "5F81", "5402AA", "548500000000", "5480", "9F8181818101AA"} {
		if _, _, _, err := ParseTLV(hx(bad)); err == nil {
			t.Fatalf("ParseTLV(%s) accepted", bad)
		}
	}
	for n, want := range map[int]string{0: "00", 1: "01", 255: "FF", 256: "0100", 4096: "1000", 65533: "FFFD", 65536: "010000"} {
		if got := MinimalUint(n); !bytes.Equal(got, hx(want)) {
			t.Fatalf("MinimalUint(%d) = %X", n, got)
		}
	}
}

func TestValidateATR(t *testing.T) {
	for _, good := range []string{
		"3B888131FE4580739401A082900057",
		"3B888131FE4580739401E082900017",
		"3B6800008073940 1A0829000",
		"3B00",
		"3F00",
		"3B8F8001804F0CA000000306030001000000006A", // PC/SC contactless storage card
	} {
		noErr(t, ValidateATR(hx(good)))
	}
	for _, bad := range []string{
		"",
		"3B",
		"3C00",
		"3B888131FE4580739401A082900058", // wrong TCK
		"3B888131FE4580739401A0829000",   // missing TCK
		"3B6800008073940 1A082900000",    // extra byte
		"3B68000080739401A08290",         // missing historical byte
		"3B80",                           // TD1 missing
		"3B" + strings.Repeat("00", 33),
	} {
		if ValidateATR(hx(bad)) == nil {
			t.Fatalf("ValidateATR(%s) accepted", bad)
		}
	}
	noErr(t, ValidateATR(DefaultATR))
}
