package topup

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"kpe-agent/internal/strictjson"
)

// MaxAuthorisationBytes bounds one authorisation's JSON: a certificate
// and a signature.
const MaxAuthorisationBytes = 16 << 10

// authJSON is the wire form (docs/ewallet.md):
//
//	{"id": 32 hex, "card_serial": 16 hex, "ptc": n, "amount": n,
//	 "not_after": RFC 3339, "cert": base64 DER, "signature": base64}
type authJSON struct {
	ID        string    `json:"id"`
	Serial    string    `json:"card_serial"`
	PTC       uint32    `json:"ptc"`
	Amount    uint32    `json:"amount"`
	NotAfter  time.Time `json:"not_after"`
	Cert      []byte    `json:"cert"`
	Signature []byte    `json:"signature"`
}

// MarshalJSON writes the wire form.
func (a Authorisation) MarshalJSON() ([]byte, error) {
	return json.Marshal(authJSON{ID: hex.EncodeToString(a.ID[:]), Serial: hex.EncodeToString(a.Serial[:]), PTC: a.PTC, Amount: a.Amount,
		NotAfter: a.NotAfter.UTC(), Cert: a.Cert, Signature: a.Signature})
}

// UnmarshalJSON reads the wire form strictly (internal/strictjson: no
// unknown field, every key exactly as documented and once, nothing after
// the object), with exact hex lengths, an amount of at least 1, a
// not-after to the second, and a certificate and signature present. It
// checks the form only; Verify decides whether to trust it.
func (a *Authorisation) UnmarshalJSON(b []byte) error {
	if len(b) > MaxAuthorisationBytes {
		return fmt.Errorf("%w: larger than %d bytes", ErrFormat, MaxAuthorisationBytes)
	}
	var j authJSON
	if err := strictjson.Decode(b, &j); err != nil {
		return fmt.Errorf("%w: %w", ErrFormat, err)
	}
	var out Authorisation
	for _, f := range []struct {
		name string
		s    string
		dst  []byte
	}{
		{"id", j.ID, out.ID[:]},
		{"card_serial", j.Serial, out.Serial[:]},
	} {
		v, err := hex.DecodeString(f.s)
		if err != nil || len(v) != len(f.dst) {
			return fmt.Errorf("%w: %s is not %d hex digits", ErrFormat, f.name, 2*len(f.dst))
		}
		copy(f.dst, v)
	}
	if j.Amount == 0 {
		return fmt.Errorf("%w: amount must be at least 1", ErrFormat)
	}
	if j.NotAfter.IsZero() || j.NotAfter.Nanosecond() != 0 || j.NotAfter.Unix() < 0 {
		return fmt.Errorf("%w: not_after must be a time to the second", ErrFormat)
	}
	if len(j.Cert) == 0 || len(j.Signature) == 0 {
		return fmt.Errorf("%w: cert and signature are required", ErrFormat)
	}
	out.PTC, out.Amount, out.NotAfter, out.Cert, out.Signature = j.PTC, j.Amount, j.NotAfter.UTC(), j.Cert, j.Signature
	*a = out
	return nil
}
