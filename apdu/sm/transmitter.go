package sm

import (
	"context"
	"fmt"

	"kpe-agent/apdu"
)

// Transmitter returns an apdu.Transmitter that protects every command with
// s and verifies every response, so an apdu.Client can run unchanged inside
// a secure-messaging session. A response that fails verification closes
// the session and returns an error wrapping ErrSecureMessaging (and, for a
// plain error status word, the card's status).
func Transmitter(t apdu.Transmitter, s *Session) apdu.Transmitter {
	return &transmitter{t: t, s: s}
}

type transmitter struct {
	t apdu.Transmitter
	s *Session
}

func (x *transmitter) Transmit(ctx context.Context, raw []byte) ([]byte, error) {
	cmd, err := apdu.ParseCommand(raw)
	if err != nil {
		return nil, err
	}
	p, err := x.s.Wrap(cmd)
	if err != nil {
		return nil, err
	}
	praw, err := p.Bytes()
	if err != nil {
		return nil, err
	}
	rraw, err := x.t.Transmit(ctx, praw)
	if err != nil {
		return nil, err
	}
	rsp, err := apdu.ParseResponse(rraw)
	if err != nil {
		return nil, err
	}
	plain, err := x.s.Unwrap(rsp)
	if err != nil {
		return nil, fmt.Errorf("sm: %02X %02X: %w", cmd.CLA, cmd.INS, err)
	}
	return plain.Bytes(), nil
}
