package ktpel

import (
	"fmt"

	"kpe-agent/apdu/sm"
)

// Card authentication of docs/card-profiles.md §3: the ICAO BAC pattern
// (apdu/sm.Suite) with 3-key 3DES, 8-byte challenges and 40-byte
// cryptograms (32 bytes 3DES-CBC ‖ 8 bytes retail MAC). The card key is
// diversified from the KTP-el master key by the chip's UID; only the SAM
// holds the master, and for KTP-el the SAM also keeps the session keys.

// Suite is the KTP-el mutual authentication.
var Suite = sm.Suite{Cipher: sm.TDES3, RndLen: 8}

// Lengths of the authentication values.
const (
	RndLen      = 8
	AuthDataLen = 40
)

// CardKeys are a chip's 3-key 3DES authentication keys.
type CardKeys = sm.AuthKeys

// DeriveCardKeys computes a chip's keys: Enc = DeriveKey(3DES-3key,
// master ‖ UID, 1) and MAC = DeriveKey(3DES-3key, master ‖ UID, 2), that
// is the first 24 bytes of SHA-256(master ‖ UID ‖ counter) with DES parity
// (apdu/sm.DeriveKey).
func DeriveCardKeys(master, uid []byte) (CardKeys, error) {
	if len(master) < 16 || len(master) > 32 {
		return CardKeys{}, fmt.Errorf("ktpel: master key of %d bytes, want 16..32", len(master))
	}
	if len(uid) < MinUIDLen || len(uid) > MaxUIDLen {
		return CardKeys{}, fmt.Errorf("%w: UID of %d bytes", ErrFormat, len(uid))
	}
	seed := append(append([]byte(nil), master...), uid...)
	defer clear(seed)
	return CardKeys{Enc: sm.DeriveKey(sm.TDES3, seed, sm.KDFEnc), MAC: sm.DeriveKey(sm.TDES3, seed, sm.KDFMAC)}, nil
}
