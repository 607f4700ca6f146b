package tlv

import (
	"bytes"
	"errors"
	"testing"
)

func fuzzSeeds(f *testing.F) {
	for _, s := range []string{
		"",
		fcpHex,
		bitHex,
		"5F1F 03 414243",
		"53 82 0100" + string(bytes.Repeat([]byte("AB"), 256)),
		"DF8101 01 AA 9F818101 00",
		"00 FF 80 01 AA 00 70 04 FF 81 00 FF",
		"80 81 05 0102030405",
		"9F1E 01 00 BF0C 00",
		"70 80 80 00 00 00",
		"80 84 FFFFFFFF",
		"70 03 80 05 01",
		"9F81818101 00",
		"70 0A 70 08 70 06 70 04 70 02 70 00",
	} {
		f.Add(h(s))
	}
}

// checkError verifies the contract for errors returned by the parser.
func checkError(t *testing.T, err error, in []byte) {
	t.Helper()
	var e *Error
	if !errors.Is(err, ErrMalformed) || !errors.As(err, &e) {
		t.Fatalf("unexpected error type %T: %v", err, err)
	}
	if e.Offset < 0 || e.Offset > len(in) {
		t.Fatalf("offset %d outside input of %d bytes", e.Offset, len(in))
	}
}

func FuzzParse(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		list, err := Parse(in)
		one, oneErr := ParseOne(in)
		if err != nil {
			checkError(t, err, in)
			if oneErr == nil {
				t.Fatalf("ParseOne accepts what Parse rejects: %v", err)
			}
			checkError(t, oneErr, in)
			return
		}
		// Strict parsing is canonical.
		enc := Encode(list...)
		if !bytes.Equal(enc, in) {
			t.Fatalf("re-encoding differs:\n in  % X\n out % X", in, enc)
		}
		again, err := Parse(enc)
		if err != nil || !sameTree(again, list) {
			t.Fatalf("re-parse: %v", err)
		}
		for _, obj := range list {
			if !obj.Tag.Valid() {
				t.Fatalf("parsed tag %v is not Valid", obj.Tag)
			}
		}
		// ParseOne agrees with Parse.
		if len(list) == 1 {
			if oneErr != nil || !sameTree([]TLV{one}, list) {
				t.Fatalf("ParseOne: %v", oneErr)
			}
		} else {
			checkError(t, oneErr, in)
		}
		// Everything strict is also accepted by the relaxed parser.
		lax, err := ParseWith(in, Options{AllowPadding: true, AllowNonMinimal: true})
		if err != nil || !sameTree(lax, list) {
			t.Fatalf("relaxed parse: %v", err)
		}
	})
}

func FuzzParseOptions(f *testing.F) {
	for _, pad := range []bool{false, true} {
		for _, nonMin := range []bool{false, true} {
			for _, depth := range []uint8{0, 1, 3} {
				f.Add(h("00 FF 80 01 AA 00 70 04 FF 81 00 FF"), pad, nonMin, depth)
				f.Add(h("70 06 80 81 01 AA 9F1E 00"), pad, nonMin, depth)
			}
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, pad, nonMin bool, depth uint8) {
		o := Options{AllowPadding: pad, AllowNonMinimal: nonMin, MaxDepth: int(depth % 24)}
		list, err := ParseWith(in, o)
		strict, strictErr := ParseWith(in, Options{MaxDepth: o.MaxDepth})
		if err != nil {
			checkError(t, err, in)
			if strictErr == nil {
				t.Fatalf("relaxed rejects what strict accepts: %v", err)
			}
			return
		}
		if strictErr == nil && !sameTree(strict, list) {
			t.Fatal("relaxed and strict results differ")
		}
		// The encoding is canonical: it parses back to the same tree and
		// re-encodes to itself.
		enc := Encode(list...)
		again, err := ParseWith(enc, o)
		if err != nil || !sameTree(again, list) {
			t.Fatalf("re-parse of % X: %v", enc, err)
		}
		if !bytes.Equal(Encode(again...), enc) {
			t.Fatal("encoding is not stable")
		}
		if !pad && !nonMin && !bytes.Equal(enc, in) {
			t.Fatal("strict re-encoding differs")
		}
	})
}
