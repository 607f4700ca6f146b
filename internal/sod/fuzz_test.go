package sod

import (
	"errors"
	"testing"
)

func FuzzParse(f *testing.F) {
	p := newPKI(f, t0.AddDate(2, 0, 0))
	good, err := Sign(groups(), p.dsKey, p.dsCert)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:40])
	f.Add([]byte{0x77, 0x03, 0x80, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("parse error without ErrFormat: %v", err)
			}
			return
		}
		// Whatever parses must verify without panicking; only the genuine
		// object may pass.
		if o.VerifySignature(p.roots, t0) == nil {
			for dg, content := range groups() {
				if o.CheckGroup(dg, content) != nil {
					t.Fatalf("a verified object must be the genuine one")
				}
			}
		}
		_ = o.CheckGroup(1, nil)
	})
}
