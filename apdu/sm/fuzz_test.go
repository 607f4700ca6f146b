package sm

import (
	"bytes"
	"errors"
	"testing"

	"kpe-agent/apdu"
)

// Hostile responses and commands never panic, and only genuinely MACed
// messages pass.
func FuzzUnwrap(f *testing.F) {
	f.Add(hx("990290008E08FA855A5D4C50A8ED"), uint16(0x9000))
	f.Add(hx("8709019FF0EC34F9922651990290008E08AD55CC17140B2DED"), uint16(0x9000))
	f.Add([]byte{}, uint16(0x6988))
	f.Fuzz(func(t *testing.T, data []byte, sw uint16) {
		s, err := NewSession(TDES, hx("979EC13B1CBFE9DCD01AB0FED307EAE5"), hx("F1CB1F1FB5ADF208806B89DC579DC1F8"), hx("887022120C06C226"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Unwrap(apdu.Response{Data: data, SW: sw}); err != nil {
			if !errors.Is(err, ErrSecureMessaging) {
				t.Fatalf("error without ErrSecureMessaging: %v", err)
			}
			if _, err := s.Unwrap(apdu.Response{SW: 0x9000}); !errors.Is(err, ErrSessionClosed) {
				t.Fatalf("session must be closed after a failure, got %v", err)
			}
		}
	})
}

func FuzzUnwrapCommand(f *testing.F) {
	f.Add(byte(0x0C), byte(0xA4), hx("8709016375432908C044F68E08BF8B92D635FF24F8"))
	f.Add(byte(0x0C), byte(0xB0), hx("9701048E08ED6705417E96BA55"))
	f.Add(byte(0x00), byte(0xB0), []byte{})
	f.Fuzz(func(t *testing.T, cla, ins byte, data []byte) {
		s, err := NewSession(TDES, hx("979EC13B1CBFE9DCD01AB0FED307EAE5"), hx("F1CB1F1FB5ADF208806B89DC579DC1F8"), hx("887022120C06C226"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.UnwrapCommand(apdu.Command{CLA: cla, INS: ins, P1: 0x02, P2: 0x0C, Data: data}); err != nil && !errors.Is(err, ErrSecureMessaging) {
			t.Fatalf("error without ErrSecureMessaging: %v", err)
		}
	})
}

// The card side of mutual authentication parses EXTERNAL AUTHENTICATE data
// from the terminal, and the SAM side parses the card's answer: both must
// reject anything malformed or forged with a typed error, never panic.
func FuzzAuthData(f *testing.F) {
	for _, s := range []Suite{{Cipher: AES128, RndLen: 16}, {Cipher: TDES3, RndLen: 8}} {
		keys := AuthKeys{Enc: bytes.Repeat([]byte{0x11}, s.Cipher.keyLen()), MAC: bytes.Repeat([]byte{0x22}, s.Cipher.keyLen())}
		rnd := bytes.Repeat([]byte{0x33}, s.RndLen)
		_, ext, err := s.Start(keys, rnd, bytes.NewReader(bytes.Repeat([]byte{0x44}, 64)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.RndLen == 8, ext)
	}
	f.Add(false, []byte{})
	f.Fuzz(func(t *testing.T, tdes bool, data []byte) {
		s := Suite{Cipher: AES128, RndLen: 16}
		if tdes {
			s = Suite{Cipher: TDES3, RndLen: 8}
		}
		keys := AuthKeys{Enc: bytes.Repeat([]byte{0x11}, s.Cipher.keyLen()), MAC: bytes.Repeat([]byte{0x22}, s.Cipher.keyLen())}
		rnd := bytes.Repeat([]byte{0x33}, s.RndLen)
		resp, sess, err := s.Respond(keys, rnd, data, bytes.NewReader(bytes.Repeat([]byte{0x55}, 64)))
		if err == nil && (sess == nil || len(resp) != s.DataLen()) {
			t.Fatal("accepted without a session")
		}
		if err != nil && !errors.Is(err, ErrAuthFailed) && !errors.Is(err, ErrAuthFormat) {
			t.Fatalf("untyped error %v", err)
		}
		a, _, err := s.Start(keys, rnd, bytes.NewReader(bytes.Repeat([]byte{0x44}, 64)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Finish(data); err == nil {
			t.Fatal("the SAM accepted its own cryptogram as the card's answer")
		} else if !errors.Is(err, ErrAuthFailed) && !errors.Is(err, ErrAuthFormat) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
