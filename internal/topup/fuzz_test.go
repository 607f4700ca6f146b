package topup_test

import (
	"crypto/x509"
	"encoding/json"
	"reflect"
	"testing"

	"kpe-agent/internal/topup"
)

// An authorisation's JSON never panics the decoder; what it accepts
// encodes back to an authorisation that decodes to the same, and Verify
// answers an error or nil, never a panic, for any accepted one.
func FuzzAuthorisationJSON(f *testing.F) {
	iss := newIssuer(f, "BKN", x509.KeyUsageDigitalSignature)
	good, err := json.Marshal(signed(f, iss))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"","amount":1}`))
	pool := iss.pool()
	f.Fuzz(func(t *testing.T, b []byte) {
		var a topup.Authorisation
		if err := json.Unmarshal(b, &a); err != nil {
			return
		}
		again, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("an accepted authorisation does not encode: %v", err)
		}
		var back topup.Authorisation
		if err := json.Unmarshal(again, &back); err != nil {
			t.Fatalf("an encoded authorisation does not decode: %v", err)
		}
		if !reflect.DeepEqual(a, back) {
			t.Fatalf("an authorisation does not decode to itself:\n%+v\n%+v", a, back)
		}
		_ = topup.Verify(&a, serial, 7, pool, t0)
	})
}
