// Package sm implements ISO/IEC 7816-4 secure messaging as ICAO Doc 9303
// part 11 §9.8 specifies it, with AES (KPE cards) or 3DES (KTP-el), for
// both ends: the terminal wraps commands and unwraps responses, the card
// (the lab applets) unwraps commands and wraps responses.
//
// Construction (both ciphers): the send-sequence counter SSC is incremented
// before every command and every response. Data is padded (ISO/IEC 9797-1
// method 2) and encrypted with CBC, IV zero for 3DES and E(KSenc, SSC) for
// AES, in DO'87' (01 ‖ cryptogram; DO'85' without the indicator for odd
// INS). Le goes in DO'97', the status word of a response in DO'99'. The
// MAC (retail MAC for 3DES, CMAC for AES, 8 bytes) covers pad(SSC ‖ padded
// header ‖ DOs) and is carried in DO'8E'.
//
// Any verification failure closes the session (its keys are wiped): ICAO
// requires the terminal to abort secure messaging after an error, and a
// card must not answer further protected commands in a broken session.
package sm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"errors"
	"fmt"

	"kpe-agent/apdu"
	"kpe-agent/internal/tlv"
)

// Errors. All of them match ErrSecureMessaging.
var (
	ErrSecureMessaging = errors.New("secure messaging failed")
	ErrBadMAC          = fmt.Errorf("%w: MAC does not verify (tampered or replayed)", ErrSecureMessaging)
	ErrMissingDO       = fmt.Errorf("%w: secure-messaging data object missing", ErrSecureMessaging)
	ErrBadDO           = fmt.Errorf("%w: malformed secure-messaging data object", ErrSecureMessaging)
	ErrBadPadding      = fmt.Errorf("%w: bad padding", ErrSecureMessaging)
	ErrSessionClosed   = fmt.Errorf("%w: session closed after an error", ErrSecureMessaging)
	ErrPlainError      = fmt.Errorf("%w: card answered without secure messaging", ErrSecureMessaging)
)

const macLen = 8

// Session is one secure-messaging session. It is not safe for concurrent
// use; a card session is sequential anyway.
type Session struct {
	c        Cipher
	enc, mac cipher.Block
	macKey   []byte // 3DES retail MAC needs the raw key
	ssc      []byte
	closed   bool
}

// NewSession starts a session with the session keys and initial SSC (8
// bytes for 3DES, 16 for AES).
func NewSession(c Cipher, kEnc, kMAC, ssc []byte) (*Session, error) {
	if c.keyLen() == 0 || len(kEnc) != c.keyLen() || len(kMAC) != c.keyLen() {
		return nil, fmt.Errorf("sm: %v needs %d-byte keys", c, c.keyLen())
	}
	if len(ssc) != c.blockSize() {
		return nil, fmt.Errorf("sm: %v needs a %d-byte SSC", c, c.blockSize())
	}
	s := &Session{c: c, ssc: append([]byte(nil), ssc...)}
	var err error
	if s.enc, err = newBlock(c, kEnc); err != nil {
		return nil, err
	}
	if s.mac, err = newBlock(c, kMAC); err != nil {
		return nil, err
	}
	s.macKey = append([]byte(nil), kMAC...)
	return s, nil
}

func newBlock(c Cipher, k []byte) (cipher.Block, error) {
	switch c {
	case AES128, AES256:
		return aes.NewCipher(k)
	case TDES:
		return des.NewTripleDESCipher(append(append([]byte(nil), k...), k[:8]...))
	case TDES3:
		return des.NewTripleDESCipher(k)
	}
	return nil, fmt.Errorf("sm: unknown cipher %v", c)
}

// SSC returns a copy of the current send-sequence counter.
func (s *Session) SSC() []byte { return append([]byte(nil), s.ssc...) }

// Close wipes the keys; every later call fails with ErrSessionClosed.
func (s *Session) Close() {
	s.closed = true
	clear(s.macKey)
	clear(s.ssc)
	s.enc, s.mac = nil, nil
}

func (s *Session) fail(err error) error {
	s.Close()
	return err
}

func (s *Session) incSSC() {
	for i := len(s.ssc) - 1; i >= 0; i-- {
		s.ssc[i]++
		if s.ssc[i] != 0 {
			return
		}
	}
}

func (s *Session) pad(b []byte) []byte {
	bs := s.c.blockSize()
	out := append(append([]byte(nil), b...), 0x80)
	for len(out)%bs != 0 {
		out = append(out, 0)
	}
	return out
}

// unpad removes ISO/IEC 9797-1 method 2 padding (bytes, not runes: the
// data is binary).
func unpad(b []byte) ([]byte, error) {
	i := len(b) - 1
	for i >= 0 && b[i] == 0 {
		i--
	}
	if i < 0 || b[i] != 0x80 {
		return nil, ErrBadPadding
	}
	return b[:i], nil
}

func (s *Session) iv() []byte {
	iv := make([]byte, s.c.blockSize())
	if s.c == AES128 || s.c == AES256 {
		s.enc.Encrypt(iv, s.ssc)
	}
	return iv
}

func (s *Session) encrypt(plain []byte) []byte {
	p := s.pad(plain)
	cipher.NewCBCEncrypter(s.enc, s.iv()).CryptBlocks(p, p)
	return p
}

func (s *Session) decrypt(ct []byte) ([]byte, error) {
	if len(ct) == 0 || len(ct)%s.c.blockSize() != 0 {
		return nil, ErrBadDO
	}
	p := make([]byte, len(ct))
	cipher.NewCBCDecrypter(s.enc, s.iv()).CryptBlocks(p, ct)
	return unpad(p)
}

// computeMAC returns the 8-byte MAC over pad(SSC ‖ m).
func (s *Session) computeMAC(m []byte) []byte {
	n := s.pad(append(append([]byte(nil), s.ssc...), m...))
	if s.c == AES128 || s.c == AES256 {
		return CMAC(s.mac, n)[:macLen]
	}
	return retailMAC(s.macKey, n)
}

// retailMAC is ISO/IEC 9797-1 MAC algorithm 3 over already padded data:
// single-DES CBC with K1, then decrypt with K2 and encrypt with K1 (or K3).
func retailMAC(key, padded []byte) []byte {
	k1, _ := des.NewCipher(key[:8])
	k2, _ := des.NewCipher(key[8:16])
	k3 := k1
	if len(key) == 24 {
		k3, _ = des.NewCipher(key[16:24])
	}
	x := make([]byte, 8)
	for i := 0; i < len(padded); i += 8 {
		subtle.XORBytes(x, x, padded[i:i+8])
		k1.Encrypt(x, x)
	}
	k2.Decrypt(x, x)
	k3.Encrypt(x, x)
	return x
}

func (s *Session) header(cmd apdu.Command) []byte {
	return s.pad([]byte{cmd.CLA | 0x0C, cmd.INS, cmd.P1, cmd.P2})
}

func leBytes(ne int) []byte {
	switch {
	case ne == 256:
		return []byte{0x00}
	case ne < 256:
		return []byte{byte(ne)}
	case ne == 65536:
		return []byte{0x00, 0x00}
	default:
		return []byte{byte(ne >> 8), byte(ne)}
	}
}

// Wrap protects a command (terminal side).
func (s *Session) Wrap(cmd apdu.Command) (apdu.Command, error) {
	if s.closed {
		return apdu.Command{}, ErrSessionClosed
	}
	if cmd.CLA&0x0C != 0 {
		return apdu.Command{}, fmt.Errorf("sm: command is already protected (CLA %02X)", cmd.CLA)
	}
	s.incSSC()
	var dos []byte
	if len(cmd.Data) > 0 {
		ct := s.encrypt(cmd.Data)
		if cmd.INS&1 == 1 {
			dos = tlv.New(0x85, ct).Bytes()
		} else {
			dos = tlv.New(0x87, append([]byte{0x01}, ct...)).Bytes()
		}
	}
	if cmd.Ne > 0 {
		dos = append(dos, tlv.New(0x97, leBytes(cmd.Ne)).Bytes()...)
	}
	mac := s.computeMAC(append(s.header(cmd), dos...))
	dos = append(dos, tlv.New(0x8E, mac).Bytes()...)
	ne := 256
	if cmd.Ne > 231 || len(dos) > 255 { // room for DO87/99/8E around the answer
		ne = 65536
	}
	return apdu.Command{CLA: cmd.CLA | 0x0C, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Data: dos, Ne: ne}, nil
}

// Unwrap verifies and decrypts a protected response (terminal side). A card
// that answers with a plain error status word (no SM objects, e.g. 6987 or
// 6988 because it rejected our command) gives ErrPlainError wrapping the
// card's status, and closes the session.
func (s *Session) Unwrap(rsp apdu.Response) (apdu.Response, error) {
	if s.closed {
		return apdu.Response{}, ErrSessionClosed
	}
	s.incSSC()
	if len(rsp.Data) == 0 {
		if rsp.SW == 0x9000 {
			return apdu.Response{}, s.fail(ErrMissingDO)
		}
		return apdu.Response{}, s.fail(fmt.Errorf("%w: %w", ErrPlainError, apdu.StatusWordError(rsp.SW)))
	}
	dos, err := tlv.Parse(rsp.Data)
	if err != nil {
		return apdu.Response{}, s.fail(fmt.Errorf("%w: %w", ErrBadDO, err))
	}
	var data, sw, mac *tlv.TLV
	var macInput []byte
	for i := range dos {
		d := &dos[i]
		switch {
		case d.Tag == 0x87 && data == nil && sw == nil && mac == nil:
			data = d
		case d.Tag == 0x99 && sw == nil && mac == nil:
			sw = d
		case d.Tag == 0x8E && mac == nil && i == len(dos)-1:
			mac = d
			continue
		default:
			return apdu.Response{}, s.fail(fmt.Errorf("%w: unexpected %s", ErrBadDO, d.Tag))
		}
		macInput = append(macInput, d.Bytes()...)
	}
	if mac == nil || sw == nil {
		return apdu.Response{}, s.fail(ErrMissingDO)
	}
	if len(sw.Value) != 2 || len(mac.Value) != macLen {
		return apdu.Response{}, s.fail(ErrBadDO)
	}
	if subtle.ConstantTimeCompare(s.computeMAC(macInput), mac.Value) != 1 {
		return apdu.Response{}, s.fail(ErrBadMAC)
	}
	out := apdu.Response{SW: uint16(sw.Value[0])<<8 | uint16(sw.Value[1])}
	if data != nil {
		if len(data.Value) < 2 || data.Value[0] != 0x01 {
			return apdu.Response{}, s.fail(ErrBadDO)
		}
		if out.Data, err = s.decrypt(data.Value[1:]); err != nil {
			return apdu.Response{}, s.fail(err)
		}
	}
	return out, nil
}

// UnwrapCommand verifies and decrypts a protected command (card side).
// ErrMissingDO means the card answers 6987, every other error 6988.
func (s *Session) UnwrapCommand(cmd apdu.Command) (apdu.Command, error) {
	if s.closed {
		return apdu.Command{}, ErrSessionClosed
	}
	s.incSSC()
	if cmd.CLA&0x0C != 0x0C {
		return apdu.Command{}, s.fail(ErrMissingDO)
	}
	dos, err := tlv.Parse(cmd.Data)
	if err != nil {
		return apdu.Command{}, s.fail(fmt.Errorf("%w: %w", ErrBadDO, err))
	}
	plain := apdu.Command{CLA: cmd.CLA &^ 0x0C, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2}
	var macInput []byte
	var data, le, mac *tlv.TLV
	for i := range dos {
		d := &dos[i]
		switch {
		case (d.Tag == 0x87 || d.Tag == 0x85) && data == nil && le == nil && mac == nil:
			data = d
		case d.Tag == 0x97 && le == nil && mac == nil:
			le = d
		case d.Tag == 0x8E && mac == nil && i == len(dos)-1:
			mac = d
			continue
		default:
			return apdu.Command{}, s.fail(fmt.Errorf("%w: unexpected %s", ErrBadDO, d.Tag))
		}
		macInput = append(macInput, d.Bytes()...)
	}
	if mac == nil {
		return apdu.Command{}, s.fail(ErrMissingDO)
	}
	if len(mac.Value) != macLen {
		return apdu.Command{}, s.fail(ErrBadDO)
	}
	if subtle.ConstantTimeCompare(s.computeMAC(append(s.header(plain), macInput...)), mac.Value) != 1 {
		return apdu.Command{}, s.fail(ErrBadMAC)
	}
	if data != nil {
		ct := data.Value
		if data.Tag == 0x87 {
			if len(ct) < 2 || ct[0] != 0x01 {
				return apdu.Command{}, s.fail(ErrBadDO)
			}
			ct = ct[1:]
		}
		if plain.Data, err = s.decrypt(ct); err != nil {
			return apdu.Command{}, s.fail(err)
		}
	}
	if le != nil {
		switch len(le.Value) {
		case 1:
			plain.Ne = int(le.Value[0])
			if plain.Ne == 0 {
				plain.Ne = 256
			}
		case 2:
			plain.Ne = int(le.Value[0])<<8 | int(le.Value[1])
			if plain.Ne == 0 {
				plain.Ne = 65536
			}
		default:
			return apdu.Command{}, s.fail(ErrBadDO)
		}
	}
	return plain, nil
}

// WrapResponse protects a response (card side).
func (s *Session) WrapResponse(rsp apdu.Response) (apdu.Response, error) {
	if s.closed {
		return apdu.Response{}, ErrSessionClosed
	}
	s.incSSC()
	var dos []byte
	if len(rsp.Data) > 0 {
		dos = tlv.New(0x87, append([]byte{0x01}, s.encrypt(rsp.Data)...)).Bytes()
	}
	dos = append(dos, tlv.New(0x99, []byte{byte(rsp.SW >> 8), byte(rsp.SW)}).Bytes()...)
	dos = append(dos, tlv.New(0x8E, s.computeMAC(dos)).Bytes()...)
	return apdu.Response{Data: dos, SW: rsp.SW}, nil
}
