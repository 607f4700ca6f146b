package backoffice

import (
	"errors"
	"testing"
)

// A stored password hash is read at every sign-in: whatever the store
// holds, parseHash answers ErrHash or parameters within the bounds that
// keep argon2 affordable (a planted m=2^32 would take the node's memory).
func FuzzParseHash(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U")
	f.Add("$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5")
	f.Add("$argon2i$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, h string) {
		p, salt, key, err := parseHash(h)
		if err != nil {
			if !errors.Is(err, ErrHash) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if p.Time < 1 || p.Time > maxHashTime || p.Threads < 1 || p.Memory < 8*uint32(p.Threads) || p.Memory > maxHashMemory {
			t.Fatalf("%q: parameters %+v out of bounds", h, p)
		}
		if len(salt) < 8 || len(key) < 16 || len(key) > 64 {
			t.Fatalf("%q: salt %d bytes, key %d bytes", h, len(salt), len(key))
		}
	})
}
