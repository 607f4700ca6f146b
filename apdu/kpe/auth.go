package kpe

import (
	"io"

	"kpe-agent/apdu/sm"
)

// Card authentication of docs/card-profiles.md §2.3: the BAC pattern of
// ICAO 9303 part 11 §4.3 (apdu/sm.Suite) with AES-128, CMAC and per-card
// keys diversified from a master key that only the SAM holds. The SAM side
// and the card side both live here so that the lab applets and the agent
// share one implementation.

// Suite is the KPE mutual authentication: AES-128, 16-byte challenges.
var Suite = sm.Suite{Cipher: sm.AES128, RndLen: 16}

// Lengths of the authentication values.
const (
	RndLen      = 16
	AuthDataLen = 3*RndLen + 8 // 56 bytes, EXTERNAL AUTHENTICATE data
)

// Errors of the authentication (shared with apdu/sm).
var (
	ErrAuthFailed = sm.ErrAuthFailed
	ErrAuthFormat = sm.ErrAuthFormat
)

// CardKeys are the per-card AES-128 authentication keys.
type CardKeys = sm.AuthKeys

// SessionKeys are the AES-128 secure-messaging keys and initial SSC of one
// card session. The SAM hands them to the terminal for KPE (§2.3).
type SessionKeys = sm.SessionKeys

// DeriveCardKeys computes a card's keys from the master key and its serial:
// K_card = KDF108(K_M, "KPE card key", serial), then
// Enc = KDF108(K_card, "KPE enc", serial), MAC = KDF108(K_card, "KPE mac",
// serial), all AES-128 (apdu/sm.KDF108CMAC).
func DeriveCardKeys(master []byte, serial [8]byte) (CardKeys, error) {
	kCard, err := sm.KDF108CMAC(master, []byte("KPE card key"), serial[:], 16)
	if err != nil {
		return CardKeys{}, err
	}
	defer clear(kCard)
	enc, err := sm.KDF108CMAC(kCard, []byte("KPE enc"), serial[:], 16)
	if err != nil {
		return CardKeys{}, err
	}
	mac, err := sm.KDF108CMAC(kCard, []byte("KPE mac"), serial[:], 16)
	if err != nil {
		return CardKeys{}, err
	}
	return CardKeys{Enc: enc, MAC: mac}, nil
}

// Auth is the terminal/SAM side of one authentication in progress.
type Auth struct{ a *sm.Auth }

// StartAuth answers the card's challenge: it returns the 56-byte data of
// EXTERNAL AUTHENTICATE (E.IFD ‖ M.IFD).
func StartAuth(keys CardKeys, rndIC []byte, rng io.Reader) (*Auth, []byte, error) {
	a, data, err := Suite.Start(keys, rndIC, rng)
	if err != nil {
		return nil, nil, err
	}
	return &Auth{a}, data, nil
}

// Finish checks the card's answer (E.IC ‖ M.IC) and returns the secure
// messaging session. A clone, a tampered answer or an answer to another
// challenge gives ErrAuthFailed.
func (a *Auth) Finish(resp []byte) (*sm.Session, error) {
	k, err := a.FinishKeys(resp)
	if err != nil {
		return nil, err
	}
	return k.Session()
}

// FinishKeys is Finish for the SAM, which returns the keys instead of a
// session.
func (a *Auth) FinishKeys(resp []byte) (SessionKeys, error) { return a.a.Finish(resp) }

// ParseSessionKeys parses KS_enc ‖ KS_mac ‖ SSC (48 bytes).
func ParseSessionKeys(b []byte) (SessionKeys, error) { return Suite.ParseSessionKeys(b) }

// CardRespond is the card side: it checks EXTERNAL AUTHENTICATE data
// against the challenge it issued and returns its answer and the session.
func CardRespond(keys CardKeys, rndIC, data []byte, rng io.Reader) ([]byte, *sm.Session, error) {
	return Suite.Respond(keys, rndIC, data, rng)
}
