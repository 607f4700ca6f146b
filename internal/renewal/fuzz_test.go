package renewal_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"kpe-agent/internal/kpedata"
	"kpe-agent/internal/renewal"
)

// An offer's JSON never panics the decoder; what it accepts encodes back
// to an offer that decodes to the same, and Verify answers an error or
// nil, never a panic, for any accepted offer.
func FuzzOfferJSON(f *testing.F) {
	iss := newIssuer(f, "BKN")
	c := newCard(f, iss)
	o := build(f, iss, c, map[int][]byte{2: employment("III/b").Encode(), 3: kpedata.Family{}.Encode()})
	good, err := json.Marshal(o)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"groups":{"1":""}}`))
	pool := iss.pool()
	st := c.state()
	f.Fuzz(func(t *testing.T, b []byte) {
		var o renewal.Offer
		if err := json.Unmarshal(b, &o); err != nil {
			return
		}
		again, err := json.Marshal(&o)
		if err != nil {
			t.Fatalf("an accepted offer does not encode: %v", err)
		}
		var back renewal.Offer
		if err := json.Unmarshal(again, &back); err != nil {
			t.Fatalf("an encoded offer does not decode: %v", err)
		}
		if !reflect.DeepEqual(o, back) {
			t.Fatalf("an offer does not decode to itself:\n%+v\n%+v", o, back)
		}
		_ = renewal.Verify(&o, st, pool, time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	})
}
