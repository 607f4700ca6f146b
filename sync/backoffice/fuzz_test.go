package backoffice_test

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"kpe-agent/sync/backoffice"
)

// An institution's cursor comes from the network: any string is either
// refused with ErrCursor or is the one spelling of a cursor.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"", "x", backoffice.Cursor{XID: 5, Seq: 6}.String(), backoffice.Cursor{Seq: 1}.String(), "AQAAAAAAAAAFAAAAAAAAAAY="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := backoffice.ParseCursor(s)
		if err != nil {
			if !errors.Is(err, backoffice.ErrCursor) {
				t.Fatalf("%q: untyped error %v", s, err)
			}
			return
		}
		if c.String() != s {
			t.Fatalf("%q read as %+v, which is spelled %q", s, c, c.String())
		}
	})
}

// A receiver's header and body come from the network: the verifier
// answers with one of its typed errors or nil, never panics, accepts only
// what matches, and accepts what SignWebhook makes for the same body.
func FuzzVerifyWebhookSignature(f *testing.F) {
	now := time.Unix(1_780_000_000, 0)
	secret := []byte("whsec-test-0123456789abcdef")
	f.Add([]byte(backoffice.SignWebhook(secret, []byte(`{"id":"evt_1"}`), now)), []byte(`{"id":"evt_1"}`))
	f.Add([]byte("t=1,v1=00"), []byte(""))
	f.Add([]byte("t=1780000000,v1=zz,v0=1"), []byte("{}"))
	f.Fuzz(func(t *testing.T, header, body []byte) {
		err := backoffice.VerifyWebhookSignature(secret, header, body, 5*time.Minute, now)
		if err != nil && !errors.Is(err, backoffice.ErrSignatureHeader) && !errors.Is(err, backoffice.ErrSignatureTimestamp) &&
			!errors.Is(err, backoffice.ErrSignatureMismatch) {
			t.Fatalf("untyped error %v", err)
		}
		if err == nil && backoffice.VerifyWebhookSignature([]byte("another secret"), header, body, 5*time.Minute, now) == nil {
			t.Fatalf("%q verifies under two secrets", header)
		}
		// the window: an accepted header has a t= at most 5 minutes
		// from now, whatever its size
		if err == nil {
			var ts int64
			seen := false
			for _, part := range strings.Split(string(header), ",") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(part), "t="); ok {
					n, perr := strconv.ParseInt(v, 10, 64)
					if perr != nil {
						t.Fatalf("%q verifies with timestamp %q", header, v)
					}
					ts, seen = n, true
				}
			}
			if !seen || ts < now.Unix()-300 || ts > now.Unix()+300 {
				t.Fatalf("%q verifies with a timestamp outside the window", header)
			}
		}
		if len(body) > 0 {
			at := time.Unix(int64(binary.BigEndian.Uint64(append(make([]byte, 8), body...)[len(body):])), 0)
			signed := []byte(backoffice.SignWebhook(secret, body, at))
			d := at.Unix() - now.Unix()
			inside := at.Unix() >= now.Unix()-300 && at.Unix() <= now.Unix()+300
			if err := backoffice.VerifyWebhookSignature(secret, signed, body, 5*time.Minute, now); inside != (err == nil) {
				t.Fatalf("signed %d s from now: %v", d, err)
			}
		}
		good := []byte(backoffice.SignWebhook(secret, body, now))
		if err := backoffice.VerifyWebhookSignature(secret, good, body, 5*time.Minute, now); err != nil {
			t.Fatalf("the signature of the body itself: %v", err)
		}
	})
}
