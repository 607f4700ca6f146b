package biometric

import (
	"errors"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, fm := range []Format{FormatISO, FormatANSI} {
		b, _ := sample(fm, 12).Encode()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		out, err := r.Encode()
		if err != nil {
			t.Fatalf("parsed but cannot encode: %v", err)
		}
		r2, err := Parse(out)
		if err != nil || len(r2.Views) != len(r.Views) {
			t.Fatalf("re-encoded record does not parse: %v", err)
		}
	})
}

func FuzzParseCompact(f *testing.F) {
	f.Add([]byte{0x33, 0x07, 0x54})
	f.Add([]byte{0, 0, 0x80, 255, 255, 0x3F})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseCompact(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		out, err := EncodeCompact(r.Minutiae())
		if err != nil || string(out) != string(b) {
			t.Fatalf("compact round trip: % X → % X (%v)", b, out, err)
		}
	})
}

func FuzzParseBITGroup(f *testing.F) {
	f.Add(EncodeBITGroup([]BIT{labBIT()}))
	f.Add([]byte{0x7F, 0x61, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		bits, err := ParseBITGroup(b)
		if err != nil {
			if !errors.Is(err, ErrBIT) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if _, err := ParseBITGroup(EncodeBITGroup(bits)); err != nil {
			t.Fatalf("re-encoded BIT group does not parse: %v", err)
		}
	})
}
