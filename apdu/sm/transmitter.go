package sm

import (
	"context"
	"fmt"

	"kpe-agent/apdu"
)

// Channel protects encoded command APDUs and verifies encoded response
// APDUs. A *Session is a Channel that holds the keys in the terminal (KPE);
// a SAM that keeps the session keys and wraps on request is another (KTP-el).
type Channel interface {
	WrapAPDU(ctx context.Context, plain []byte) ([]byte, error)
	UnwrapAPDU(ctx context.Context, protected []byte) ([]byte, error)
}

// WrapAPDU implements Channel.
func (s *Session) WrapAPDU(_ context.Context, raw []byte) ([]byte, error) {
	cmd, err := apdu.ParseCommand(raw)
	if err != nil {
		return nil, err
	}
	p, err := s.Wrap(cmd)
	if err != nil {
		return nil, err
	}
	return p.Bytes()
}

// UnwrapAPDU implements Channel.
func (s *Session) UnwrapAPDU(_ context.Context, raw []byte) ([]byte, error) {
	rsp, err := apdu.ParseResponse(raw)
	if err != nil {
		return nil, err
	}
	plain, err := s.Unwrap(rsp)
	if err != nil {
		return nil, err
	}
	return plain.Bytes(), nil
}

// Transmitter returns an apdu.Transmitter that protects every command with
// ch and verifies every response, so an apdu.Client can run unchanged inside
// a secure-messaging session. A response that fails verification closes
// the session and returns an error wrapping ErrSecureMessaging (and, for a
// plain error status word, the card's status).
func Transmitter(t apdu.Transmitter, ch Channel) apdu.Transmitter {
	return &transmitter{t: t, ch: ch}
}

type transmitter struct {
	t  apdu.Transmitter
	ch Channel
}

func (x *transmitter) Transmit(ctx context.Context, raw []byte) ([]byte, error) {
	praw, err := x.ch.WrapAPDU(ctx, raw)
	if err != nil {
		return nil, err
	}
	rraw, err := x.t.Transmit(ctx, praw)
	if err != nil {
		return nil, err
	}
	plain, err := x.ch.UnwrapAPDU(ctx, rraw)
	if err != nil {
		if len(raw) >= 2 {
			return nil, fmt.Errorf("sm: %02X %02X: %w", raw[0], raw[1], err)
		}
		return nil, err
	}
	return plain, nil
}
