// Package sam talks to the terminal SAM (docs/card-profiles.md §4): its
// identity and state, activation, and SIGN RECORD, which signs a record
// digest together with the SAM's next signature counter value.
package sam

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/ktpel"
	"kpe-agent/apdu/sm"
	"kpe-agent/internal/tlv"
)

// AID is the SAM application identifier (a profile parameter).
var AID = []byte{0xF0, 0x4B, 0x50, 0x45, 0x53, 0x41, 0x4D, 0x01}

// Errors.
var (
	ErrBlocked      = errors.New("sam: blocked (activation tries exhausted)")
	ErrNotActivated = errors.New("sam: not activated")
	ErrFormat       = errors.New("sam: malformed answer")
)

// ActivationError is a wrong activation code; TriesLeft more are allowed.
type ActivationError struct {
	TriesLeft int
	Err       error // the card's *apdu.RetriesError
}

func (e *ActivationError) Error() string {
	return fmt.Sprintf("sam: wrong activation code, %d tries left", e.TriesLeft)
}
func (e *ActivationError) Unwrap() error { return e.Err }

// State of a SAM.
type State byte

const (
	Inactive State = 0
	Active   State = 1
	Blocked  State = 2
)

// Info is the SAM's GET DATA answer.
type Info struct {
	Serial    [8]byte
	State     State
	TriesLeft int
	Counter   uint32
}

// SAM is an opened SAM. Like a card, it belongs to one goroutine.
type SAM struct {
	c *apdu.Client
}

// Open selects the SAM application.
func Open(ctx context.Context, t apdu.Transmitter) (*SAM, error) {
	s := &SAM{c: apdu.NewClient(t, apdu.Limits{})}
	if _, err := s.c.Send(ctx, apdu.Command{CLA: 0x00, INS: 0xA4, P1: 0x04, P2: 0x0C, Data: AID}); err != nil {
		return nil, fmt.Errorf("sam: select: %w", err)
	}
	return s, nil
}

// Info reads serial, state, tries left and the signature counter.
func (s *SAM) Info(ctx context.Context) (Info, error) {
	b, err := s.c.Send(ctx, apdu.Command{CLA: 0x80, INS: 0xCA, P1: 0x01, P2: 0x01, Ne: 256})
	if err != nil {
		return Info{}, fmt.Errorf("sam: get data: %w", err)
	}
	return ParseInfo(b)
}

// ParseInfo parses 70 { 80 serial, 81 state, 82 tries, 83 counter }.
func ParseInfo(b []byte) (Info, error) {
	t, err := tlv.ParseOne(b)
	if err != nil || t.Tag != 0x70 {
		return Info{}, fmt.Errorf("%w: info template: %v", ErrFormat, err)
	}
	var in Info
	got := 0
	for _, c := range t.Children {
		switch {
		case c.Tag == 0x80 && len(c.Value) == 8:
			copy(in.Serial[:], c.Value)
		case c.Tag == 0x81 && len(c.Value) == 1 && c.Value[0] <= 2:
			in.State = State(c.Value[0])
		case c.Tag == 0x82 && len(c.Value) == 1:
			in.TriesLeft = int(c.Value[0])
		case c.Tag == 0x83 && len(c.Value) == 4:
			in.Counter = binary.BigEndian.Uint32(c.Value)
		default:
			return Info{}, fmt.Errorf("%w: info field %s", ErrFormat, c.Tag)
		}
		got++
	}
	if got != 4 {
		return Info{}, fmt.Errorf("%w: info has %d of 4 fields", ErrFormat, got)
	}
	return in, nil
}

func mapState(err error) error {
	var re *apdu.RetriesError
	switch {
	case errors.As(err, &re):
		return &ActivationError{TriesLeft: re.Retries, Err: err}
	case errors.Is(err, apdu.ErrAuthenticationBlocked):
		return fmt.Errorf("%w: %w", ErrBlocked, err)
	case errors.Is(err, apdu.ErrSecurityStatusNotSatisfied):
		return fmt.Errorf("%w: %w", ErrNotActivated, err)
	}
	return err
}

// Activate activates the SAM for this terminal with its activation code.
func (s *SAM) Activate(ctx context.Context, code []byte) error {
	_, err := s.c.Send(ctx, apdu.Command{CLA: 0x80, INS: 0x10, P1: 0x01, Data: code})
	return mapState(err)
}

// Signature is the SAM's answer to SIGN RECORD.
type Signature struct {
	Counter uint32
	R, S    *big.Int
}

// SignRecord has the SAM sign digest with its next counter value.
func (s *SAM) SignRecord(ctx context.Context, digest [32]byte) (Signature, error) {
	b, err := s.c.Send(ctx, apdu.Command{CLA: 0x80, INS: 0x40, Data: digest[:], Ne: 256})
	if err != nil {
		return Signature{}, fmt.Errorf("sam: sign record: %w", mapState(err))
	}
	return ParseSignature(b)
}

// ParseSignature parses counter (4) ‖ r (32) ‖ s (32).
func ParseSignature(b []byte) (Signature, error) {
	if len(b) != 68 {
		return Signature{}, fmt.Errorf("%w: signature of %d bytes, want 68", ErrFormat, len(b))
	}
	return Signature{
		Counter: binary.BigEndian.Uint32(b),
		R:       new(big.Int).SetBytes(b[4:36]),
		S:       new(big.Int).SetBytes(b[36:68]),
	}, nil
}

// Verify checks the signature over digest ‖ counter ‖ serial.
func (sig Signature) Verify(pub *ecdsa.PublicKey, digest [32]byte, serial [8]byte) bool {
	msg := append(append(digest[:], binary.BigEndian.AppendUint32(nil, sig.Counter)...), serial[:]...)
	h := sha256.Sum256(msg)
	return ecdsa.Verify(pub, h[:], sig.R, sig.S)
}

// FIDCert is the EF holding the terminal certificate (DER).
const FIDCert uint16 = 0x0201

// Certificate reads the terminal certificate (X.509 DER) whose key signs
// records. The back office checks it against its CA.
func (s *SAM) Certificate(ctx context.Context) ([]byte, error) {
	b, err := s.c.ReadEF(ctx, FIDCert)
	if err != nil {
		return nil, fmt.Errorf("sam: read certificate: %w", mapState(err))
	}
	return b, nil
}

// Counter reads the signature counter.
func (s *SAM) Counter(ctx context.Context) (uint32, error) {
	b, err := s.c.Send(ctx, apdu.Command{CLA: 0x80, INS: 0x42, Ne: 4})
	if err != nil {
		return 0, fmt.Errorf("sam: get counter: %w", mapState(err))
	}
	if len(b) != 4 {
		return 0, fmt.Errorf("%w: counter of %d bytes", ErrFormat, len(b))
	}
	return binary.BigEndian.Uint32(b), nil
}

// BeginCardAuth implements kpe.Authenticator with the SAM: CARD AUTH INIT
// computes the answer to the card's challenge with a key derived inside the
// SAM, and the returned finish runs CARD AUTH COMPLETE, which checks the
// card's answer and hands out only that session's keys.
func (s *SAM) BeginCardAuth(ctx context.Context, serial [8]byte, rndIC []byte) ([]byte, func(context.Context, []byte) (*sm.Session, error), error) {
	data := tlv.Encode(tlv.New(0x80, serial[:]), tlv.New(0x81, rndIC))
	ext, err := s.c.Send(ctx, apdu.Command{CLA: 0x80, INS: 0x20, P1: 0x01, Data: data, Ne: 256})
	if err != nil {
		return nil, nil, fmt.Errorf("sam: card auth init: %w", mapState(err))
	}
	finish := func(ctx context.Context, resp []byte) (*sm.Session, error) {
		b, err := s.c.Send(ctx, apdu.Command{CLA: 0x80, INS: 0x22, P1: 0x01, Data: resp, Ne: 256})
		if errors.Is(err, apdu.ErrVerificationFailed) {
			return nil, fmt.Errorf("%w: %w", kpe.ErrAuthFailed, err)
		}
		if err != nil {
			return nil, fmt.Errorf("sam: card auth complete: %w", mapState(err))
		}
		keys, err := kpe.ParseSessionKeys(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFormat, err)
		}
		return keys.Session()
	}
	return ext, finish, nil
}

// ActivateKTP enables the KTP-el functions with the installation's two
// secrets (ACTIVATE P1 02); the terminal activation must come first.
func (s *SAM) ActivateKTP(ctx context.Context, secret1, secret2 []byte) error {
	data := tlv.Encode(tlv.New(0x80, secret1), tlv.New(0x81, secret2))
	_, err := s.c.Send(ctx, apdu.Command{CLA: 0x80, INS: 0x10, P1: 0x02, Data: data})
	return mapState(err)
}

// BeginKTPAuth implements ktpel.Authenticator: CARD AUTH INIT (profile 02)
// answers the chip's challenge with a key derived from its UID inside the
// SAM; finish runs CARD AUTH COMPLETE, after which the SAM holds the
// session keys and the returned channel wraps and unwraps through it.
func (s *SAM) BeginKTPAuth(ctx context.Context, uid, rndIC []byte) ([]byte, func(context.Context, []byte) (sm.Channel, error), error) {
	data := tlv.Encode(tlv.New(0x80, uid), tlv.New(0x81, rndIC))
	ext, err := s.c.Send(ctx, apdu.Command{CLA: 0x80, INS: 0x20, P1: 0x02, Data: data, Ne: 256})
	if err != nil {
		return nil, nil, fmt.Errorf("sam: KTP-el card auth init: %w", mapState(err))
	}
	if len(ext) != ktpel.AuthDataLen {
		return nil, nil, fmt.Errorf("%w: KTP-el cryptogram of %d bytes", ErrFormat, len(ext))
	}
	finish := func(ctx context.Context, resp []byte) (sm.Channel, error) {
		_, err := s.c.Send(ctx, apdu.Command{CLA: 0x80, INS: 0x22, P1: 0x02, Data: resp})
		if errors.Is(err, apdu.ErrVerificationFailed) {
			return nil, fmt.Errorf("%w: %w", sm.ErrAuthFailed, err)
		}
		if err != nil {
			return nil, fmt.Errorf("sam: KTP-el card auth complete: %w", mapState(err))
		}
		return ktpChannel{s}, nil
	}
	return ext, finish, nil
}

// ktpChannel is secure messaging done by the SAM (SM WRAP / SM UNWRAP).
type ktpChannel struct{ s *SAM }

func (k ktpChannel) WrapAPDU(ctx context.Context, plain []byte) ([]byte, error) {
	b, err := k.s.c.Send(ctx, apdu.Command{CLA: 0x80, INS: 0x30, P1: 0x02, Data: plain, Ne: 256})
	if err != nil {
		return nil, fmt.Errorf("sam: SM wrap: %w", mapSM(err))
	}
	return b, nil
}

func (k ktpChannel) UnwrapAPDU(ctx context.Context, protected []byte) ([]byte, error) {
	b, err := k.s.c.Send(ctx, apdu.Command{CLA: 0x80, INS: 0x32, P1: 0x02, Data: protected, Ne: 256})
	if err != nil {
		return nil, fmt.Errorf("sam: SM unwrap: %w", mapSM(err))
	}
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: unwrapped response of %d bytes", ErrFormat, len(b))
	}
	return b, nil
}

// mapSM labels the SAM's refusal to unwrap (6988) a secure-messaging
// failure, so that the reader reports the chip's answer as not verifying.
func mapSM(err error) error {
	if errors.Is(err, apdu.ErrSMDataObjectsIncorrect) {
		return fmt.Errorf("%w: %w", sm.ErrBadMAC, err)
	}
	return mapState(err)
}
