package sm

import (
	"bytes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// Mutual authentication in the pattern of ICAO 9303 part 11 §4.3 (BAC),
// parameterised by cipher so that the KPE profile (AES-128, CMAC) and the
// KTP-el profile (3-key 3DES, retail MAC) share one implementation
// (docs/card-profiles.md §2.3 and §3):
//
//	E.IFD = CBC(K_enc, IV=0, RND.IFD ‖ RND.IC ‖ K.IFD), M.IFD = MAC(K_mac, E.IFD)
//	E.IC  = CBC(K_enc, IV=0, RND.IC ‖ RND.IFD ‖ K.IC),  M.IC  = MAC(K_mac, E.IC)
//	K_seed = K.IFD ⊕ K.IC, KS_enc = DeriveKey(seed, 1), KS_mac = DeriveKey(seed, 2)
//	SSC = last half of RND.IC ‖ last half of RND.IFD
//
// MAC is CMAC truncated to 8 bytes for AES, and ISO/IEC 9797-1 MAC
// algorithm 3 over the padded cryptogram for 3DES (as ICAO BAC).

// Errors of the authentication.
var (
	// ErrAuthFailed: a cryptogram does not verify: a clone (wrong key), a
	// tampered answer, or an answer to another challenge.
	ErrAuthFailed = errors.New("card authentication failed")
	// ErrAuthFormat: an authentication value has the wrong length.
	ErrAuthFormat = errors.New("malformed authentication data")
)

// Suite fixes the cipher and nonce length of a mutual authentication.
type Suite struct {
	Cipher Cipher
	RndLen int // challenge length: 16 for AES (KPE), 8 for 3DES (KTP-el)
}

// keySeedLen is the length of K.IFD and K.IC (ICAO: 16 bytes).
const keySeedLen = 16

// CryptogramLen is the length of E.IFD or E.IC.
func (s Suite) CryptogramLen() int { return 2*s.RndLen + keySeedLen }

// DataLen is the length of the EXTERNAL AUTHENTICATE data and of the card's
// answer: cryptogram and 8-byte MAC.
func (s Suite) DataLen() int { return s.CryptogramLen() + macLen }

// SessionKeysLen is the length of KS_enc ‖ KS_mac ‖ SSC.
func (s Suite) SessionKeysLen() int { return 2*s.Cipher.keyLen() + s.RndLen }

// AuthKeys are a card's long-term authentication keys.
type AuthKeys struct {
	Enc, MAC []byte
}

func (s Suite) check(k AuthKeys) error {
	if len(k.Enc) != s.Cipher.keyLen() || len(k.MAC) != s.Cipher.keyLen() {
		return fmt.Errorf("sm: %v authentication needs %d-byte keys", s.Cipher, s.Cipher.keyLen())
	}
	return nil
}

func (s Suite) mac(k AuthKeys, ct []byte) ([]byte, error) {
	if s.Cipher == AES128 || s.Cipher == AES256 {
		b, err := newBlock(s.Cipher, k.MAC)
		if err != nil {
			return nil, err
		}
		return CMAC(b, ct)[:macLen], nil
	}
	return RetailMAC(k.MAC, ct), nil
}

// RetailMAC is ISO/IEC 9797-1 MAC algorithm 3 with padding method 2 over
// msg, with a 16-byte (K1 ‖ K2) or 24-byte (K1 ‖ K2 ‖ K3) DES key.
func RetailMAC(key, msg []byte) []byte {
	p := append(bytes.Clone(msg), 0x80)
	for len(p)%8 != 0 {
		p = append(p, 0)
	}
	return retailMAC(key, p)
}

func (s Suite) seal(k AuthKeys, plain []byte) ([]byte, error) {
	b, err := newBlock(s.Cipher, k.Enc)
	if err != nil {
		return nil, err
	}
	ct := make([]byte, len(plain))
	cipher.NewCBCEncrypter(b, make([]byte, b.BlockSize())).CryptBlocks(ct, plain)
	m, err := s.mac(k, ct)
	if err != nil {
		return nil, err
	}
	return append(ct, m...), nil
}

func (s Suite) open(k AuthKeys, data []byte) ([]byte, error) {
	if len(data) != s.DataLen() {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrAuthFormat, len(data), s.DataLen())
	}
	ct, mac := data[:s.CryptogramLen()], data[s.CryptogramLen():]
	want, err := s.mac(k, ct)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(want, mac) != 1 {
		return nil, ErrAuthFailed
	}
	b, err := newBlock(s.Cipher, k.Enc)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(b, make([]byte, b.BlockSize())).CryptBlocks(plain, ct)
	return plain, nil
}

// Auth is the terminal (SAM) side of one authentication in progress.
type Auth struct {
	suite               Suite
	keys                AuthKeys
	rndIC, rndIFD, kIFD []byte
}

// Start answers the card's challenge: it returns the EXTERNAL AUTHENTICATE
// data E.IFD ‖ M.IFD.
func (s Suite) Start(keys AuthKeys, rndIC []byte, rng io.Reader) (*Auth, []byte, error) {
	if err := s.check(keys); err != nil {
		return nil, nil, err
	}
	if len(rndIC) != s.RndLen {
		return nil, nil, fmt.Errorf("%w: challenge of %d bytes, want %d", ErrAuthFormat, len(rndIC), s.RndLen)
	}
	a := &Auth{suite: s, keys: keys, rndIC: bytes.Clone(rndIC), rndIFD: make([]byte, s.RndLen), kIFD: make([]byte, keySeedLen)}
	if _, err := io.ReadFull(rng, a.rndIFD); err != nil {
		return nil, nil, err
	}
	if _, err := io.ReadFull(rng, a.kIFD); err != nil {
		return nil, nil, err
	}
	data, err := s.seal(keys, concat(a.rndIFD, a.rndIC, a.kIFD))
	return a, data, err
}

// SessionKeys are the secure-messaging keys and initial SSC of one card
// session.
type SessionKeys struct {
	Cipher        Cipher
	Enc, MAC, SSC []byte
}

// Bytes is KS_enc ‖ KS_mac ‖ SSC.
func (k SessionKeys) Bytes() []byte { return concat(k.Enc, k.MAC, k.SSC) }

// ParseSessionKeys parses KS_enc ‖ KS_mac ‖ SSC.
func (s Suite) ParseSessionKeys(b []byte) (SessionKeys, error) {
	if len(b) != s.SessionKeysLen() {
		return SessionKeys{}, fmt.Errorf("%w: session keys of %d bytes, want %d", ErrAuthFormat, len(b), s.SessionKeysLen())
	}
	n := s.Cipher.keyLen()
	return SessionKeys{Cipher: s.Cipher, Enc: bytes.Clone(b[:n]), MAC: bytes.Clone(b[n : 2*n]), SSC: bytes.Clone(b[2*n:])}, nil
}

// Session starts secure messaging with these keys.
func (k SessionKeys) Session() (*Session, error) {
	return NewSession(k.Cipher, k.Enc, k.MAC, k.SSC)
}

// Finish checks the card's answer (E.IC ‖ M.IC) and returns the session
// keys. A clone, a tampered answer or an answer to another challenge gives
// ErrAuthFailed.
func (a *Auth) Finish(resp []byte) (SessionKeys, error) {
	s := a.suite
	plain, err := s.open(a.keys, resp)
	if err != nil {
		return SessionKeys{}, err
	}
	n := s.RndLen
	if !bytes.Equal(plain[:n], a.rndIC) || !bytes.Equal(plain[n:2*n], a.rndIFD) {
		return SessionKeys{}, ErrAuthFailed
	}
	return s.sessionKeys(a.kIFD, plain[2*n:], a.rndIC, a.rndIFD), nil
}

// Respond is the card side: it checks EXTERNAL AUTHENTICATE data against
// the challenge it issued and returns its answer and the session.
func (s Suite) Respond(keys AuthKeys, rndIC, data []byte, rng io.Reader) ([]byte, *Session, error) {
	if err := s.check(keys); err != nil {
		return nil, nil, err
	}
	plain, err := s.open(keys, data)
	if err != nil {
		return nil, nil, err
	}
	n := s.RndLen
	rndIFD, kIFD := plain[:n], plain[2*n:]
	if !bytes.Equal(plain[n:2*n], rndIC) {
		return nil, nil, ErrAuthFailed
	}
	kIC := make([]byte, keySeedLen)
	if _, err := io.ReadFull(rng, kIC); err != nil {
		return nil, nil, err
	}
	resp, err := s.seal(keys, concat(rndIC, rndIFD, kIC))
	if err != nil {
		return nil, nil, err
	}
	sess, err := s.sessionKeys(kIFD, kIC, rndIC, rndIFD).Session()
	return resp, sess, err
}

func (s Suite) sessionKeys(kIFD, kIC, rndIC, rndIFD []byte) SessionKeys {
	seed := make([]byte, keySeedLen)
	subtle.XORBytes(seed, kIFD, kIC)
	h := s.RndLen / 2
	return SessionKeys{
		Cipher: s.Cipher,
		Enc:    DeriveKey(s.Cipher, seed, KDFEnc),
		MAC:    DeriveKey(s.Cipher, seed, KDFMAC),
		SSC:    concat(rndIC[h:], rndIFD[h:]),
	}
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
