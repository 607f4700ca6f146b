package ktpel

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzParseBiodata(f *testing.F) {
	f.Add(sampleBiodata().Encode())
	f.Add([]byte{0x71, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseBiodata(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatal(err)
			}
			return
		}
		again, err := ParseBiodata(d.Encode())
		if err != nil || again != d {
			t.Fatalf("re-parse: %v", err)
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	f.Add(Header{ChipSerial: []byte{1, 2, 3, 4}, Version: 1}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatal(err)
			}
			return
		}
		if _, err := ParseHeader(h.Encode()); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseFingerprint(f *testing.F) {
	f.Add(Fingerprint{Finger: 2, Template: []byte("FMR\x00 20\x00")}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		fp, err := ParseFingerprint(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatal(err)
			}
			return
		}
		again, err := ParseFingerprint(fp.Encode())
		if err != nil || again.Finger != fp.Finger || !bytes.Equal(again.Template, fp.Template) {
			t.Fatalf("re-parse: %v", err)
		}
	})
}
