package renewal

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"kpe-agent/internal/strictjson"
)

// MaxOfferBytes bounds an offer's JSON: four data groups and a security
// object fit the card's 68 KB many times over.
const MaxOfferBytes = 512 << 10

// offerJSON is the wire form (docs/renewal.md):
//
//	{"update_id": 32 hex, "card_serial": 16 hex, "nip": "…", "sequence": n,
//	 "base_sod": 64 hex, "new_sod": 64 hex, "not_after": RFC 3339,
//	 "groups": {"2": base64, …}, "sod": base64, "signature": base64}
type offerJSON struct {
	UpdateID  string            `json:"update_id"`
	Serial    string            `json:"card_serial"`
	NIP       string            `json:"nip"`
	Sequence  uint32            `json:"sequence"`
	BaseSOD   string            `json:"base_sod"`
	NewSOD    string            `json:"new_sod"`
	NotAfter  time.Time         `json:"not_after"`
	Groups    map[string][]byte `json:"groups"`
	SOD       []byte            `json:"sod"`
	Signature []byte            `json:"signature"`
}

// MarshalJSON writes the wire form.
func (o *Offer) MarshalJSON() ([]byte, error) {
	j := offerJSON{
		UpdateID:  hex.EncodeToString(o.UpdateID[:]),
		Serial:    hex.EncodeToString(o.Serial[:]),
		NIP:       o.NIP,
		Sequence:  o.Sequence,
		BaseSOD:   hex.EncodeToString(o.BaseSOD[:]),
		NewSOD:    hex.EncodeToString(o.NewSOD[:]),
		NotAfter:  o.NotAfter.UTC(),
		Groups:    make(map[string][]byte, len(o.Groups)),
		SOD:       o.SOD,
		Signature: o.Signature,
	}
	for dg, b := range o.Groups {
		j.Groups[strconv.Itoa(dg)] = b
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the wire form strictly (internal/strictjson: no
// unknown field, every key exactly as documented and once, nothing after
// the object), with exact hex lengths and group numbers 1 to 4. It checks the
// form only; Verify decides whether to trust it.
func (o *Offer) UnmarshalJSON(b []byte) error {
	var j offerJSON
	if err := strictjson.Decode(b, &j); err != nil {
		return fmt.Errorf("%w: %w", ErrFormat, err)
	}
	var out Offer
	for _, f := range []struct {
		name string
		s    string
		dst  []byte
	}{
		{"update_id", j.UpdateID, out.UpdateID[:]},
		{"card_serial", j.Serial, out.Serial[:]},
		{"base_sod", j.BaseSOD, out.BaseSOD[:]},
		{"new_sod", j.NewSOD, out.NewSOD[:]},
	} {
		v, err := hex.DecodeString(f.s)
		if err != nil || len(v) != len(f.dst) {
			return fmt.Errorf("%w: %s is not %d hex digits", ErrFormat, f.name, 2*len(f.dst))
		}
		copy(f.dst, v)
	}
	if err := checkNIP(j.NIP); err != nil {
		return err
	}
	out.NIP, out.Sequence = j.NIP, j.Sequence
	if j.NotAfter.IsZero() {
		return fmt.Errorf("%w: no not_after", ErrFormat)
	}
	out.NotAfter = j.NotAfter.UTC()
	if len(j.Groups) == 0 || len(j.SOD) == 0 || len(j.Signature) == 0 {
		return fmt.Errorf("%w: groups, sod and signature are required", ErrFormat)
	}
	out.Groups = make(map[int][]byte, len(j.Groups))
	for k, v := range j.Groups {
		dg, err := strconv.Atoi(k)
		if err != nil || strconv.Itoa(dg) != k || dg < minGroup || dg > maxGroup {
			return fmt.Errorf("%w: group %q (DG%d to DG%d only)", ErrFormat, k, minGroup, maxGroup)
		}
		if len(v) == 0 {
			return fmt.Errorf("%w: DG%d is empty", ErrFormat, dg)
		}
		out.Groups[dg] = v
	}
	out.SOD, out.Signature = j.SOD, j.Signature
	*o = out
	return nil
}
