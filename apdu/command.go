package apdu

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	skythen "github.com/skythen/apdu"
)

// Length limits of ISO/IEC 7816-4 command and response APDUs.
const (
	// MaxShortNc is the largest command data field of a short APDU.
	MaxShortNc = 255
	// MaxShortNe is the largest Ne of a short APDU (Le = 00).
	MaxShortNe = 256
	// MaxExtendedNc is the largest command data field of an extended APDU.
	MaxExtendedNc = 65535
	// MaxExtendedNe is the largest Ne of an extended APDU (Le = 0000).
	MaxExtendedNe = 65536
)

// ErrInvalidCommand is wrapped by the errors returned for command APDUs
// that cannot be encoded or parsed (lengths out of range, inconsistent Lc)
// and for invalid arguments given to Client methods. It reports a mistake
// on the host side, not a card or transport failure.
var ErrInvalidCommand = errors.New("invalid command APDU")

// Command is a command APDU (ISO/IEC 7816-4 §5.1).
type Command struct {
	CLA, INS, P1, P2 byte
	// Data is the command data field (Nc = len(Data), at most 65535).
	Data []byte
	// Ne is the maximum number of response data bytes expected: 0 means
	// no Le field, 1..256 fit a short APDU, up to 65536 needs extended
	// length.
	Ne int
}

// Extended reports whether the command needs extended length fields
// (Nc > 255 or Ne > 256).
func (c Command) Extended() bool {
	return len(c.Data) > MaxShortNc || c.Ne > MaxShortNe
}

// Bytes encodes the command. Short length fields are used when both Nc and
// Ne fit them, extended fields otherwise (ISO/IEC 7816-4 §5.1 and
// ISO/IEC 7816-3 §12.1.3). It fails with an error wrapping
// ErrInvalidCommand when Nc > 65535 or Ne is outside 0..65536.
func (c Command) Bytes() ([]byte, error) {
	if len(c.Data) > MaxExtendedNc {
		return nil, fmt.Errorf("%w: command data of %d bytes exceeds %d", ErrInvalidCommand, len(c.Data), MaxExtendedNc)
	}
	if c.Ne < 0 || c.Ne > MaxExtendedNe {
		return nil, fmt.Errorf("%w: Ne %d outside 0..%d", ErrInvalidCommand, c.Ne, MaxExtendedNe)
	}
	capdu := skythen.Capdu{Cla: c.CLA, Ins: c.INS, P1: c.P1, P2: c.P2, Data: c.Data, Ne: c.Ne}
	b, err := capdu.Bytes()
	if err != nil {
		// Unreachable after the checks above; kept so that a change in the
		// encoder cannot go unnoticed.
		return nil, fmt.Errorf("%w: %v", ErrInvalidCommand, err)
	}
	return b, nil
}

// String returns the encoded command in upper-case hex, or a description of
// why it cannot be encoded. It never redacts: do not log commands carrying
// secrets with it (see Tracer).
func (c Command) String() string {
	b, err := c.Bytes()
	if err != nil {
		return fmt.Sprintf("%02X%02X%02X%02X <invalid: %v>", c.CLA, c.INS, c.P1, c.P2, err)
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// cmdLayout describes where the fields of an encoded command APDU are.
type cmdLayout struct {
	lcLen   int // 0, 1 or 3
	dataLen int // Nc
	leLen   int // 0, 1, 2 (extended with Lc) or 3 (extended without Lc)
	ne      int
}

func (l cmdLayout) dataOff() int { return 4 + l.lcLen }

// decodeLayout checks b against the four cases of ISO/IEC 7816-3 §12.1.3
// and returns its layout. It accepts exactly the encodings the standard
// defines: an Lc of zero, truncated fields and trailing bytes are errors.
func decodeLayout(b []byte) (cmdLayout, error) {
	if len(b) < 4 {
		return cmdLayout{}, fmt.Errorf("%w: %d bytes, shorter than a header", ErrInvalidCommand, len(b))
	}
	body := b[4:]
	n := len(body)
	switch {
	case n == 0: // case 1
		return cmdLayout{}, nil
	case n == 1: // case 2 short
		ne := int(body[0])
		if ne == 0 {
			ne = MaxShortNe
		}
		return cmdLayout{leLen: 1, ne: ne}, nil
	case body[0] != 0: // case 3 or 4 short
		lc := int(body[0])
		switch n {
		case 1 + lc:
			return cmdLayout{lcLen: 1, dataLen: lc}, nil
		case 2 + lc:
			ne := int(body[n-1])
			if ne == 0 {
				ne = MaxShortNe
			}
			return cmdLayout{lcLen: 1, dataLen: lc, leLen: 1, ne: ne}, nil
		}
		return cmdLayout{}, fmt.Errorf("%w: short Lc %d does not match a body of %d bytes", ErrInvalidCommand, lc, n)
	case n == 3: // case 2 extended: 00 Le1 Le2
		ne := int(body[1])<<8 | int(body[2])
		if ne == 0 {
			ne = MaxExtendedNe
		}
		return cmdLayout{leLen: 3, ne: ne}, nil
	case n < 3:
		return cmdLayout{}, fmt.Errorf("%w: truncated extended length field", ErrInvalidCommand)
	}
	// case 3 or 4 extended: 00 Lc1 Lc2 data [Le1 Le2]
	lc := int(body[1])<<8 | int(body[2])
	if lc == 0 {
		return cmdLayout{}, fmt.Errorf("%w: extended Lc of zero", ErrInvalidCommand)
	}
	switch n {
	case 3 + lc:
		return cmdLayout{lcLen: 3, dataLen: lc}, nil
	case 5 + lc:
		ne := int(body[n-2])<<8 | int(body[n-1])
		if ne == 0 {
			ne = MaxExtendedNe
		}
		return cmdLayout{lcLen: 3, dataLen: lc, leLen: 2, ne: ne}, nil
	}
	return cmdLayout{}, fmt.Errorf("%w: extended Lc %d does not match a body of %d bytes", ErrInvalidCommand, lc, n)
}

// ParseCommand decodes an encoded command APDU. It is strict: the body must
// be exactly one of the short or extended encodings of cases 1 to 4; an
// error wrapping ErrInvalidCommand is returned otherwise. Data is a copy.
func ParseCommand(b []byte) (Command, error) {
	l, err := decodeLayout(b)
	if err != nil {
		return Command{}, err
	}
	// The layout is valid, so the skythen decoder sees only well-formed
	// input (it is not robust against malformed input on its own).
	c, err := skythen.ParseCapdu(b)
	if err != nil {
		return Command{}, fmt.Errorf("%w: %v", ErrInvalidCommand, err)
	}
	cmd := Command{CLA: c.Cla, INS: c.Ins, P1: c.P1, P2: c.P2, Ne: c.Ne}
	if len(c.Data) > 0 {
		cmd.Data = append([]byte(nil), c.Data...)
	}
	if len(cmd.Data) != l.dataLen || cmd.Ne != l.ne {
		return Command{}, fmt.Errorf("%w: inconsistent decoding", ErrInvalidCommand)
	}
	return cmd, nil
}

// Response is a response APDU: the data field and the status word SW1-SW2.
type Response struct {
	Data []byte
	SW   uint16
}

// SW1 returns the first status byte.
func (r Response) SW1() byte { return byte(r.SW >> 8) }

// SW2 returns the second status byte.
func (r Response) SW2() byte { return byte(r.SW) }

// Bytes encodes the response as data followed by SW1 SW2.
func (r Response) Bytes() []byte {
	b := make([]byte, 0, len(r.Data)+2)
	b = append(b, r.Data...)
	return append(b, r.SW1(), r.SW2())
}

// Err returns nil when SW is 9000 and otherwise the status-word error
// (*StatusError, or *RetriesError for 63Cx); see StatusWordError.
func (r Response) Err() error {
	return StatusWordError(r.SW)
}

// ParseResponse splits a raw response APDU into data and status word. A
// response shorter than two bytes or longer than 65536+2 bytes gives an
// error wrapping ErrMalformedResponse. Data is a copy (nil when empty).
func ParseResponse(b []byte) (Response, error) {
	r, err := skythen.ParseRapdu(b)
	if err != nil {
		return Response{}, fmt.Errorf("%w: %d bytes", ErrMalformedResponse, len(b))
	}
	resp := Response{SW: uint16(r.SW1)<<8 | uint16(r.SW2)}
	if len(r.Data) > 0 {
		resp.Data = append([]byte(nil), r.Data...)
	}
	return resp, nil
}
