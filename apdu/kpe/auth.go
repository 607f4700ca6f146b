package kpe

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"kpe-agent/apdu/sm"
)

// Card authentication of docs/card-profiles.md §2.3: the BAC pattern of
// ICAO 9303 part 11 §4.3 with AES-128, CMAC and per-card keys diversified
// from a master key that only the SAM holds. The SAM side and the card side
// both live here so that the lab applets and the agent share one
// implementation.

// Lengths of the authentication values.
const (
	RndLen        = 16
	cryptogramLen = 3 * RndLen // RND ‖ RND ‖ K
	authMACLen    = 8
	AuthDataLen   = cryptogramLen + authMACLen // 56 bytes, EXTERNAL AUTHENTICATE data
)

// Errors of the authentication.
var (
	// ErrAuthFailed: the cryptogram does not verify: a clone (wrong key),
	// a tampered answer, or a challenge that is not the one issued.
	ErrAuthFailed = errors.New("kpe: card authentication failed")
	// ErrAuthFormat: an authentication value has the wrong length.
	ErrAuthFormat = errors.New("kpe: malformed authentication data")
)

// CardKeys are the per-card authentication keys.
type CardKeys struct {
	Enc, MAC []byte
}

// DeriveCardKeys computes a card's keys from the master key and its serial:
// K_card = KDF108(K_M, "KPE card key", serial), then
// Enc = KDF108(K_card, "KPE enc", serial), MAC = KDF108(K_card, "KPE mac",
// serial), all AES-128 (apdu/sm.KDF108CMAC).
func DeriveCardKeys(master []byte, serial [8]byte) (CardKeys, error) {
	kCard, err := sm.KDF108CMAC(master, []byte("KPE card key"), serial[:], 16)
	if err != nil {
		return CardKeys{}, err
	}
	enc, err := sm.KDF108CMAC(kCard, []byte("KPE enc"), serial[:], 16)
	if err != nil {
		return CardKeys{}, err
	}
	mac, err := sm.KDF108CMAC(kCard, []byte("KPE mac"), serial[:], 16)
	if err != nil {
		return CardKeys{}, err
	}
	clear(kCard)
	return CardKeys{Enc: enc, MAC: mac}, nil
}

func (k CardKeys) seal(plain []byte) ([]byte, error) {
	b, err := aes.NewCipher(k.Enc)
	if err != nil {
		return nil, err
	}
	ct := make([]byte, len(plain))
	cipher.NewCBCEncrypter(b, make([]byte, aes.BlockSize)).CryptBlocks(ct, plain)
	mb, err := aes.NewCipher(k.MAC)
	if err != nil {
		return nil, err
	}
	return append(ct, sm.CMAC(mb, ct)[:authMACLen]...), nil
}

func (k CardKeys) open(data []byte) ([]byte, error) {
	if len(data) != AuthDataLen {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrAuthFormat, len(data), AuthDataLen)
	}
	ct, mac := data[:cryptogramLen], data[cryptogramLen:]
	mb, err := aes.NewCipher(k.MAC)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(sm.CMAC(mb, ct)[:authMACLen], mac) != 1 {
		return nil, ErrAuthFailed
	}
	b, err := aes.NewCipher(k.Enc)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(b, make([]byte, aes.BlockSize)).CryptBlocks(plain, ct)
	return plain, nil
}

// Auth is the terminal/SAM side of one authentication in progress.
type Auth struct {
	keys                CardKeys
	rndIC, rndIFD, kIFD []byte
}

// StartAuth answers the card's challenge: it returns the 56-byte data of
// EXTERNAL AUTHENTICATE (E.IFD ‖ M.IFD).
func StartAuth(keys CardKeys, rndIC []byte, rng io.Reader) (*Auth, []byte, error) {
	if len(rndIC) != RndLen {
		return nil, nil, fmt.Errorf("%w: challenge of %d bytes", ErrAuthFormat, len(rndIC))
	}
	a := &Auth{keys: keys, rndIC: append([]byte(nil), rndIC...), rndIFD: make([]byte, RndLen), kIFD: make([]byte, RndLen)}
	if _, err := io.ReadFull(rng, a.rndIFD); err != nil {
		return nil, nil, err
	}
	if _, err := io.ReadFull(rng, a.kIFD); err != nil {
		return nil, nil, err
	}
	data, err := keys.seal(concat(a.rndIFD, a.rndIC, a.kIFD))
	return a, data, err
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

// SessionKeys are the AES-128 secure-messaging keys and the initial SSC of
// one card session. The SAM hands them to the terminal for KPE (§2.3).
type SessionKeys struct {
	Enc, MAC, SSC []byte
}

// Bytes is KS_enc ‖ KS_mac ‖ SSC, the SAM's CARD AUTH COMPLETE answer.
func (k SessionKeys) Bytes() []byte { return concat(k.Enc, k.MAC, k.SSC) }

// ParseSessionKeys parses KS_enc ‖ KS_mac ‖ SSC (48 bytes).
func ParseSessionKeys(b []byte) (SessionKeys, error) {
	if len(b) != 3*RndLen {
		return SessionKeys{}, fmt.Errorf("%w: session keys of %d bytes, want %d", ErrAuthFormat, len(b), 3*RndLen)
	}
	return SessionKeys{Enc: b[:16], MAC: b[16:32], SSC: b[32:48]}, nil
}

// Session starts secure messaging with these keys.
func (k SessionKeys) Session() (*sm.Session, error) {
	return sm.NewSession(sm.AES128, k.Enc, k.MAC, k.SSC)
}

// FinishKeys is Finish for the SAM, which returns the keys instead of a
// session.
func (a *Auth) FinishKeys(resp []byte) (SessionKeys, error) {
	plain, err := a.keys.open(resp)
	if err != nil {
		return SessionKeys{}, err
	}
	if !bytes.Equal(plain[:RndLen], a.rndIC) || !bytes.Equal(plain[RndLen:2*RndLen], a.rndIFD) {
		return SessionKeys{}, ErrAuthFailed
	}
	return sessionKeys(a.kIFD, plain[2*RndLen:], a.rndIC, a.rndIFD), nil
}

// CardRespond is the card side: it checks EXTERNAL AUTHENTICATE data
// against the challenge it issued and returns its answer and the session.
func CardRespond(keys CardKeys, rndIC, data []byte, rng io.Reader) ([]byte, *sm.Session, error) {
	plain, err := keys.open(data)
	if err != nil {
		return nil, nil, err
	}
	rndIFD, kIFD := plain[:RndLen], plain[2*RndLen:]
	if !bytes.Equal(plain[RndLen:2*RndLen], rndIC) {
		return nil, nil, ErrAuthFailed
	}
	kIC := make([]byte, RndLen)
	if _, err := io.ReadFull(rng, kIC); err != nil {
		return nil, nil, err
	}
	resp, err := keys.seal(concat(rndIC, rndIFD, kIC))
	if err != nil {
		return nil, nil, err
	}
	s, err := sessionKeys(kIFD, kIC, rndIC, rndIFD).Session()
	return resp, s, err
}

// sessionKeys derives the AES session keys as ICAO 9303 §9.7.1:
// K_seed = K.IFD ⊕ K.IC, SSC = RND.IC[8:] ‖ RND.IFD[8:].
func sessionKeys(kIFD, kIC, rndIC, rndIFD []byte) SessionKeys {
	seed := make([]byte, RndLen)
	subtle.XORBytes(seed, kIFD, kIC)
	return SessionKeys{
		Enc: sm.DeriveKey(sm.AES128, seed, sm.KDFEnc),
		MAC: sm.DeriveKey(sm.AES128, seed, sm.KDFMAC),
		SSC: concat(rndIC[8:], rndIFD[8:]),
	}
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
