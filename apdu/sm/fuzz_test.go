package sm

import (
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
