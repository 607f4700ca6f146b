package cardsim

import (
	"errors"
	"fmt"
)

// This file holds the card-side ISO/IEC 7816-4 helpers that every simulated
// card (the generic file-system card and the KPE/KTP-el/SAM applets) shares:
// C-APDU parsing (short and extended length), status words, response
// building, class-byte decoding and a minimal BER-TLV encoder/decoder.

// SW is a status word (SW1 SW2) as sent by the card.
type SW uint16

// Card-side status words.
const (
	SWOK                         SW = 0x9000
	SWBytesRemaining             SW = 0x6100 // SW2 = bytes still available (00 = 256 or more)
	SWEndOfFile                  SW = 0x6282 // end of file reached before Ne bytes were read
	SWVerificationFailed         SW = 0x6300 // authentication failed, no retry counter (63Cx: SWTriesLeft)
	SWMemoryFailure              SW = 0x6581
	SWWrongLength                SW = 0x6700
	SWLogicalChannelNotSupported SW = 0x6881
	SWSecureMessagingUnsupported SW = 0x6882
	SWLastCommandOfChainExpected SW = 0x6883
	SWChainingNotSupported       SW = 0x6884
	SWSecurityStatusNotSatisfied SW = 0x6982
	SWAuthenticationBlocked      SW = 0x6983
	SWConditionsNotSatisfied     SW = 0x6985
	SWCommandNotAllowedNoEF      SW = 0x6986
	SWSMDataObjectsMissing       SW = 0x6987 // expected secure-messaging data objects missing
	SWSMDataObjectsIncorrect     SW = 0x6988 // incorrect secure-messaging data objects (MAC, SSC)
	SWWrongData                  SW = 0x6A80
	SWFunctionNotSupported       SW = 0x6A81
	SWFileNotFound               SW = 0x6A82
	SWNotEnoughMemory            SW = 0x6A84
	SWIncorrectP1P2              SW = 0x6A86
	SWReferencedDataNotFound     SW = 0x6A88
	SWWrongP1P2                  SW = 0x6B00 // also: offset beyond the end of the EF
	SWWrongLe                    SW = 0x6C00 // SW2 = exact number of bytes available
	SWINSNotSupported            SW = 0x6D00
	SWCLANotSupported            SW = 0x6E00
	SWUnknown                    SW = 0x6F00
)

// SWTriesLeft returns 63Cx: verification failed, x tries left, n clamped
// to 0..15.
func SWTriesLeft(n int) SW { return 0x63C0 | SW(min(max(n, 0), 15)) }

// Bytes returns SW1 SW2.
func (s SW) Bytes() []byte { return []byte{byte(s >> 8), byte(s)} }

func (s SW) String() string { return fmt.Sprintf("%04X", uint16(s)) }

// SWWithCount returns a status word whose SW2 carries a byte count, as in
// 61xx and 6Cxx: n is clamped to 1..256 and 256 is encoded as 00.
func SWWithCount(base SW, n int) SW {
	if n >= 256 || n <= 0 {
		return base &^ 0xFF
	}
	return base&^0xFF | SW(n)
}

// Respond builds a raw R-APDU: data followed by the status word.
func Respond(data []byte, sw SW) []byte {
	out := make([]byte, 0, len(data)+2)
	out = append(out, data...)
	return append(out, byte(sw>>8), byte(sw))
}

// Command is a parsed command APDU.
type Command struct {
	CLA, INS, P1, P2 byte
	// Data is the command data field (Nc = len(Data)); nil when absent.
	Data []byte
	// Ne is the maximum number of response bytes expected: 0 when the Le
	// field is absent, 1..256 for a short Le (00 means 256) and 1..65536 for
	// an extended Le (0000 means 65536).
	Ne int
	// Extended reports that the extended length encoding was used.
	Extended bool
}

// HasLe reports whether the command carried an Le field.
func (c Command) HasLe() bool { return c.Ne > 0 }

// P1P2 returns P1 and P2 as one big-endian number.
func (c Command) P1P2() uint16 { return uint16(c.P1)<<8 | uint16(c.P2) }

// C-APDU parsing errors. A card answers all of them with 6700.
var (
	ErrAPDUTooShort  = errors.New("command APDU shorter than 4 bytes")
	ErrAPDUBadLength = errors.New("command APDU length fields do not match its size")
)

// ParseCommand decodes a raw command APDU in any of the ISO/IEC 7816-4 cases
// 1, 2S, 3S, 4S, 2E, 3E and 4E. The returned Data aliases raw.
func ParseCommand(raw []byte) (Command, error) {
	if len(raw) < 4 {
		return Command{}, ErrAPDUTooShort
	}
	c := Command{CLA: raw[0], INS: raw[1], P1: raw[2], P2: raw[3]}
	body := raw[4:]
	switch {
	case len(body) == 0: // case 1
		return c, nil
	case len(body) == 1: // case 2S
		c.Ne = shortNe(body[0])
		return c, nil
	case body[0] != 0: // case 3S or 4S
		nc := int(body[0])
		switch len(body) {
		case 1 + nc:
			c.Data = body[1:]
		case 2 + nc:
			c.Data = body[1 : 1+nc]
			c.Ne = shortNe(body[1+nc])
		default:
			return Command{}, ErrAPDUBadLength
		}
		return c, nil
	}
	// Extended: body[0] == 0 and at least two more bytes.
	if len(body) < 3 {
		return Command{}, ErrAPDUBadLength
	}
	c.Extended = true
	n := int(body[1])<<8 | int(body[2])
	if len(body) == 3 { // case 2E
		c.Ne = extendedNe(n)
		return c, nil
	}
	if n == 0 {
		return Command{}, ErrAPDUBadLength
	}
	switch len(body) {
	case 3 + n: // case 3E
		c.Data = body[3:]
	case 5 + n: // case 4E
		c.Data = body[3 : 3+n]
		c.Ne = extendedNe(int(body[3+n])<<8 | int(body[4+n]))
	default:
		return Command{}, ErrAPDUBadLength
	}
	return c, nil
}

func shortNe(b byte) int {
	if b == 0 {
		return 256
	}
	return int(b)
}

func extendedNe(n int) int {
	if n == 0 {
		return 65536
	}
	return n
}

// Class describes a CLA byte.
type Class struct {
	// Interindustry is false for proprietary classes (bit 8 set) and for the
	// invalid value FF.
	Interindustry bool
	// Chained: command chaining bit (0x10); this is not the last command of
	// a chain.
	Chained bool
	// SecureMessaging: a secure-messaging indication is present.
	SecureMessaging bool
	// Channel is the logical channel number (0..19).
	Channel int
}

// DecodeClass decodes a CLA byte following ISO/IEC 7816-4 section 5.4.1
// (first interindustry values 0x00-0x1F, further interindustry 0x40-0x7F).
func DecodeClass(cla byte) Class {
	switch {
	case cla&0xE0 == 0x00:
		return Class{
			Interindustry:   true,
			Chained:         cla&0x10 != 0,
			SecureMessaging: cla&0x0C != 0,
			Channel:         int(cla & 0x03),
		}
	case cla&0xC0 == 0x40:
		return Class{
			Interindustry:   true,
			Chained:         cla&0x10 != 0,
			SecureMessaging: cla&0x20 != 0,
			Channel:         4 + int(cla&0x0F),
		}
	}
	return Class{}
}

// AppendBERLength appends the BER-TLV encoding of length n (n >= 0).
func AppendBERLength(dst []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(dst, byte(n))
	case n <= 0xFF:
		return append(dst, 0x81, byte(n))
	case n <= 0xFFFF:
		return append(dst, 0x82, byte(n>>8), byte(n))
	case n <= 0xFFFFFF:
		return append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// BERLengthSize is the number of bytes AppendBERLength uses for n.
func BERLengthSize(n int) int {
	switch {
	case n < 0x80:
		return 1
	case n <= 0xFF:
		return 2
	case n <= 0xFFFF:
		return 3
	case n <= 0xFFFFFF:
		return 4
	}
	return 5
}

// AppendTLV appends a BER-TLV data object. tag holds the tag bytes as a
// big-endian number (0x53, 0x7F66, ...).
func AppendTLV(dst []byte, tag uint32, value []byte) []byte {
	dst = appendTag(dst, tag)
	dst = AppendBERLength(dst, len(value))
	return append(dst, value...)
}

func appendTag(dst []byte, tag uint32) []byte {
	switch {
	case tag > 0xFFFFFF:
		return append(dst, byte(tag>>24), byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xFFFF:
		return append(dst, byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xFF:
		return append(dst, byte(tag>>8), byte(tag))
	}
	return append(dst, byte(tag))
}

// ErrBadTLV reports a malformed BER-TLV encoding.
var ErrBadTLV = errors.New("malformed BER-TLV")

// ParseTLV decodes the first BER-TLV data object of b and returns its tag
// (as a big-endian number), its value and the bytes after it. Tags of up to
// four bytes and definite lengths of up to four bytes are accepted.
func ParseTLV(b []byte) (tag uint32, value, rest []byte, err error) {
	if len(b) == 0 {
		return 0, nil, nil, ErrBadTLV
	}
	i := 0
	tag = uint32(b[0])
	i++
	if b[0]&0x1F == 0x1F {
		for {
			if i >= len(b) || i >= 4 {
				return 0, nil, nil, ErrBadTLV
			}
			tag = tag<<8 | uint32(b[i])
			i++
			if b[i-1]&0x80 == 0 {
				break
			}
		}
	}
	if i >= len(b) {
		return 0, nil, nil, ErrBadTLV
	}
	l := int(b[i])
	i++
	if l&0x80 != 0 {
		nb := l & 0x7F
		if nb == 0 || nb > 4 || i+nb > len(b) {
			return 0, nil, nil, ErrBadTLV
		}
		l = 0
		for _, x := range b[i : i+nb] {
			l = l<<8 | int(x)
		}
		i += nb
	}
	if l < 0 || l > len(b)-i {
		return 0, nil, nil, ErrBadTLV
	}
	return tag, b[i : i+l], b[i+l:], nil
}

// MinimalUint encodes n (n >= 0) as a big-endian unsigned integer without
// leading zero bytes; zero is encoded as one 00 byte.
func MinimalUint(n int) []byte {
	if n <= 0 {
		return []byte{0}
	}
	var out []byte
	for ; n > 0; n >>= 8 {
		out = append([]byte{byte(n)}, out...)
	}
	return out
}
