package record_test

import (
	"bytes"
	"context"
	"testing"

	"kpe-agent/sync/record"
)

// Decode never panics, and what it accepts encodes back to the same bytes
// (one encoding per record).
func FuzzDecode(f *testing.F) {
	f.Add(sealed(f))
	f.Add([]byte("KPR\x01"))
	f.Add([]byte("KPR\x02"))
	f.Add([]byte("KPR\x03"))
	f.Add(sealedRenewal(f))
	f.Add(sealedPurse(f, paymentSample()))
	f.Add(sealedPurse(f, topUpSample()))
	g := legacy(f) // version 1, with the low and the high s
	f.Add(unhex(f, g["enc"]))
	f.Add(unhex(f, g["twin"]))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := record.Decode(b)
		if err != nil {
			return
		}
		again, err := r.Encode()
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("not canonical:\n in %x\nout %x", b, again)
		}
	})
}

// ParseCode never panics, and an accepted code prints back to an
// equivalent code.
func FuzzParseCode(f *testing.F) {
	f.Add("000G-40R4-0M30-E20A")
	f.Add("oooo-iiii-llll-0000")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := record.ParseCode(s)
		if err != nil {
			return
		}
		again, err := record.ParseCode(c.String())
		if err != nil || again != c {
			t.Fatalf("%q -> %q -> %v %v", s, c, again, err)
		}
	})
}

// sealedRenewal is a sealed renewal record's encoding (version 3).
func sealedRenewal(t testing.TB) []byte {
	r := renewalSample()
	if err := record.Seal(context.Background(), r, signer(t)); err != nil {
		t.Fatal(err)
	}
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
