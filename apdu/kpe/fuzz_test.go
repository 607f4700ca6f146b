package kpe

import (
	"bytes"
	"errors"
	"testing"
)

// Each data-group parser must reject hostile input with a FormatError and
// never panic; what it accepts must survive a re-encode and re-parse.

func fuzzGroup[T any](f *testing.F, seed []byte, parse func([]byte) (T, error), encode func(T) []byte) {
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parse(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error without ErrFormat: %v", err)
			}
			return
		}
		again, err := parse(encode(v))
		if err != nil {
			t.Fatalf("re-parse of encoded value failed: %v", err)
		}
		if !bytes.Equal(encode(again), encode(v)) {
			t.Fatalf("encoding not stable")
		}
	})
}

func FuzzParseCardInfo(f *testing.F) {
	ci := CardInfo{Serial: [8]byte{1}, Type: CardKPE, ProfileVersion: 1, MaxResponse: 256}
	fuzzGroup(f, ci.Encode(), ParseCardInfo, CardInfo.Encode)
}

func FuzzParseIdentity(f *testing.F) {
	fuzzGroup(f, sampleIdentity().Encode(), ParseIdentity, Identity.Encode)
}

func FuzzParseEmployment(f *testing.F) {
	fuzzGroup(f, sampleEmployment().Encode(), ParseEmployment, Employment.Encode)
}

func FuzzParseFamily(f *testing.F) {
	fuzzGroup(f, sampleFamily().Encode(), ParseFamily, Family.Encode)
}

func FuzzParseBenefits(f *testing.F) {
	b := Benefits{BPJSNumber: "0001234567890", BankName: "BRI"}
	fuzzGroup(f, b.Encode(), ParseBenefits, Benefits.Encode)
}

// The renewal status answer (a card's GET DATA) is hostile input: strict,
// no panic, and what is accepted re-encodes to the same bytes.
func FuzzParseUpdateStatus(f *testing.F) {
	f.Add(EncodeUpdateStatus(3, [16]byte{0xAB}))
	f.Add(EncodeUpdateStatus(0, [16]byte{}))
	f.Add([]byte{0x71, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseUpdateStatus(b)
		if err != nil {
			if !errors.Is(err, ErrUpdateFormat) {
				t.Fatalf("error without ErrUpdateFormat: %v", err)
			}
			return
		}
		if !st.Supported {
			t.Fatal("parsed status without Supported")
		}
		again, err := ParseUpdateStatus(EncodeUpdateStatus(st.Sequence, st.LastID))
		if err != nil || again != st {
			t.Fatalf("re-parse: %+v %v", again, err)
		}
	})
}

// BEGIN UPDATE's data, as the card parses it: strict, no panic, and what
// is accepted re-encodes to the same bytes.
func FuzzParseBeginUpdate(f *testing.F) {
	f.Add(BeginUpdate{Sequence: 1, EFs: []StagedEF{{FIDEmployment, 120}, {FIDSOD, 900}}}.Encode())
	f.Add(BeginUpdate{Sequence: 2, EFs: []StagedEF{{FIDPhoto, 10}, {FIDSOD, 900}}}.Encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		bu, err := ParseBeginUpdate(b)
		if err != nil {
			if !errors.Is(err, ErrUpdateFormat) && !errors.Is(err, ErrNotUpdatable) {
				t.Fatalf("error without ErrUpdateFormat or ErrNotUpdatable: %v", err)
			}
			return
		}
		if !bytes.Equal(bu.Encode(), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}
