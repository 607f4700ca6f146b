package apdu

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Tracer writes one line per APDU exchange, for diagnostics:
//
//	2026-01-02T03:04:05.123456Z -> 00A40400 07 A0000000871002 00 <- 6F0A8407A0000000871002 9000 (1.52ms)
//	2026-01-02T03:04:05.125000Z -> 00200081 08 <redacted 8 bytes> <- 63C2 (12ms)
//	2026-01-02T03:04:05.140000Z -> 00B00000 00 <- (none) (5s) error: card did not answer before the deadline
//
// Each line holds the time the command was sent, the command (header, then
// the Lc field, the data field and the Le field as sent, separated by
// spaces), the response (data field, then SW1-SW2), the duration and the
// error, if any.
//
// Unless Unsafe is set, secrets and personal data are redacted: a redacted
// field is replaced by "<redacted N bytes>", while the header, the Lc and Le
// fields and the status word stay visible.
//
// The command data field and the response data field are redacted for:
//   - VERIFY (INS 20, 21), CHANGE REFERENCE DATA (24), DISABLE and ENABLE
//     VERIFICATION REQUIREMENT (26, 28), RESET RETRY COUNTER (2C):
//     PINs, PUKs and other reference data;
//   - MANAGE SECURITY ENVIRONMENT (22), PERFORM SECURITY OPERATION (2A),
//     EXTERNAL or MUTUAL AUTHENTICATE (82), GENERAL AUTHENTICATE (86, 87),
//     INTERNAL AUTHENTICATE (88): keys, cryptograms, signatures;
//   - PUT DATA (DA, DB), WRITE BINARY (D0, D1), WRITE RECORD (D2), UPDATE
//     BINARY (D6, D7), UPDATE RECORD (DC, DD), APPEND RECORD (E2) and
//     ENVELOPE (C2, C3): data written to the card or wrapped commands;
//   - every command sent with secure messaging: CLA 00..3F with bits b4-b3
//     (0x0C) not zero, or CLA 40..7F with bit b6 (0x20) set.
//
// Both are redacted for every proprietary class (CLA 80..FE): their
// meaning is private to the card, and the SAM's SM WRAP / SM UNWRAP carry
// the plain commands and answers of a KTP-el session (population data).
//
// Only the response data field is redacted for READ BINARY (B0, B1), READ
// RECORD (B2, B3) and GET DATA (CA, CB): file contents are personal data.
//
// A GET RESPONSE (C0) that continues (after 61xx) a command whose response
// is redacted has its response redacted too. The INS rules apply whatever
// the CLA, including proprietary classes (a PC/SC pseudo-APDU such as
// FF 82, LOAD KEYS, is redacted). A command that cannot be parsed as an
// APDU but falls under a rule has everything after its header redacted.
//
// Unsafe, the explicit "unsafe debug" switch, turns all redaction off: the
// trace then holds PINs, keys and personal data and must be handled as
// such.
//
// W is an io.Writer rather than a *slog.Logger: an APDU trace is a
// low-level, high-volume diagnostic stream meant for a dedicated file or
// stderr, in a fixed one-line format that is easy to read and diff next to
// pcsc-spy output, and it must not depend on the application's log level
// or handler (a JSON handler would split the line into attributes). Lines
// are written whole, one Write call each, serialised by the Tracer.
type Tracer struct {
	// W receives the trace lines. A nil W disables tracing.
	W io.Writer
	// Unsafe disables redaction (see above).
	Unsafe bool
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
}

func (tr *Tracer) now() time.Time {
	if tr.Now != nil {
		return tr.Now()
	}
	return time.Now()
}

// Trace returns a Transmitter that sends through t and writes every exchange
// to tr. With a nil tr or a nil tr.W it returns t itself.
func Trace(t Transmitter, tr *Tracer) Transmitter {
	if tr == nil || tr.W == nil {
		return t
	}
	return &tracing{t: t, tr: tr}
}

// TraceCard is Trace for a Card: the exchanges are traced, everything
// else (transactions, reader, ATR, Close) goes to card itself.
func TraceCard(card Card, tr *Tracer) Card {
	if tr == nil || tr.W == nil {
		return card
	}
	return tracedCard{Card: card, t: &tracing{t: card, tr: tr}}
}

type tracedCard struct {
	Card
	t Transmitter
}

func (c tracedCard) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	return c.t.Transmit(ctx, cmd)
}

type tracing struct {
	t  Transmitter
	tr *Tracer

	mu sync.Mutex
	// continued: the last exchange had its response redacted and ended
	// with 61xx, so a GET RESPONSE now returns more of that response.
	continued bool
}

func (x *tracing) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	start := x.tr.now()
	rsp, err := x.t.Transmit(ctx, cmd)
	end := x.tr.now()

	x.mu.Lock()
	redactCmd, redactRsp := x.tr.rules(cmd, x.continued)
	x.continued = redactRsp && err == nil && len(rsp) >= 2 && rsp[len(rsp)-2] == 0x61
	x.mu.Unlock()

	var b strings.Builder
	b.WriteString(start.Format("2006-01-02T15:04:05.000000Z07:00"))
	b.WriteString(" -> ")
	formatCommand(&b, cmd, redactCmd)
	b.WriteString(" <- ")
	formatResponse(&b, rsp, err, redactRsp)
	fmt.Fprintf(&b, " (%v)", end.Sub(start))
	if err != nil {
		b.WriteString(" error: ")
		b.WriteString(oneLine(err.Error()))
	}
	b.WriteByte('\n')

	x.tr.mu.Lock()
	_, _ = io.WriteString(x.tr.W, b.String())
	x.tr.mu.Unlock()
	return rsp, err
}

// INS codes whose command and response data are redacted.
var redactBoth = map[byte]bool{
	0x20: true, 0x21: true, 0x24: true, 0x26: true, 0x28: true, 0x2C: true, // reference data
	0x22: true, 0x2A: true, 0x82: true, 0x86: true, 0x87: true, 0x88: true, // security operations
	0xDA: true, 0xDB: true, 0xD0: true, 0xD1: true, 0xD2: true, 0xD6: true, 0xD7: true, // writes
	0xDC: true, 0xDD: true, 0xE2: true, 0xC2: true, 0xC3: true, // writes, ENVELOPE
}

// INS codes whose response data only is redacted.
var redactResponse = map[byte]bool{
	0xB0: true, 0xB1: true, 0xB2: true, 0xB3: true, 0xCA: true, 0xCB: true,
}

// secureMessaging reports whether cla is an interindustry class with
// secure messaging indicated (ISO/IEC 7816-4 §5.4.1).
func secureMessaging(cla byte) bool {
	switch {
	case cla < 0x40:
		return cla&0x0C != 0
	case cla < 0x80:
		return cla&0x20 != 0
	}
	return false
}

// rules decides what to redact in an exchange of cmd.
func (tr *Tracer) rules(cmd []byte, continued bool) (redactCmd, redactRsp bool) {
	if tr.Unsafe || len(cmd) < 2 {
		return false, false
	}
	cla, ins := cmd[0], cmd[1]
	proprietary := cla >= 0x80 && cla != 0xFF
	redactCmd = redactBoth[ins] || secureMessaging(cla) || proprietary
	redactRsp = redactCmd || redactResponse[ins] || (ins == 0xC0 && continued)
	return redactCmd, redactRsp
}

func redacted(n int) string {
	if n == 1 {
		return "<redacted 1 byte>"
	}
	return fmt.Sprintf("<redacted %d bytes>", n)
}

func hexUpper(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// formatCommand writes the command as "header Lc data Le" in hex, leaving
// out absent fields and redacting the data field when asked to.
func formatCommand(b *strings.Builder, cmd []byte, redact bool) {
	if len(cmd) < 4 {
		if redact {
			b.WriteString(redacted(len(cmd)))
		} else {
			b.WriteString(hexUpper(cmd))
		}
		b.WriteString(" (invalid APDU)")
		return
	}
	b.WriteString(hexUpper(cmd[:4]))
	l, err := decodeLayout(cmd)
	if err != nil {
		if len(cmd) > 4 {
			b.WriteByte(' ')
			if redact {
				b.WriteString(redacted(len(cmd) - 4))
			} else {
				b.WriteString(hexUpper(cmd[4:]))
			}
		}
		b.WriteString(" (invalid APDU)")
		return
	}
	if l.lcLen > 0 {
		b.WriteByte(' ')
		b.WriteString(hexUpper(cmd[4 : 4+l.lcLen]))
		b.WriteByte(' ')
		data := cmd[l.dataOff() : l.dataOff()+l.dataLen]
		if redact {
			b.WriteString(redacted(len(data)))
		} else {
			b.WriteString(hexUpper(data))
		}
	}
	if l.leLen > 0 {
		b.WriteByte(' ')
		b.WriteString(hexUpper(cmd[len(cmd)-l.leLen:]))
	}
}

// formatResponse writes the response as "data SW1SW2" in hex.
func formatResponse(b *strings.Builder, rsp []byte, err error, redact bool) {
	switch {
	case err != nil && len(rsp) == 0:
		b.WriteString("(none)")
		return
	case len(rsp) < 2:
		if redact && len(rsp) > 0 {
			b.WriteString(redacted(len(rsp)))
		} else {
			b.WriteString(hexUpper(rsp))
		}
		b.WriteString(" (invalid response)")
		return
	}
	data, sw := rsp[:len(rsp)-2], rsp[len(rsp)-2:]
	if len(data) > 0 {
		if redact {
			b.WriteString(redacted(len(data)))
		} else {
			b.WriteString(hexUpper(data))
		}
		b.WriteByte(' ')
	}
	b.WriteString(hexUpper(sw))
}

// oneLine keeps an error message on the trace line.
func oneLine(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}
