// Package cardsim is the virtual card lab: simulated ISO/IEC 7816 cards, the
// vpcd protocol that plugs them into a real pcscd (vsmartcard's virtual
// reader driver), fault injection, an HTTP control channel and an in-process
// reader (MemReader) that implements apdu.Card without PC/SC.
//
// Card-side building blocks:
//   - Card is the small interface every simulated card implements.
//   - iso7816.go has C-APDU parsing, status words and BER-TLV helpers.
//   - Frontend implements the application-independent part of command
//     handling (class checks, length limits, command chaining, T=0 style
//     GET RESPONSE) so that applets only handle complete commands.
//   - FileSystemCard is a generic ISO/IEC 7816-4 file-system card; LoadCard
//     builds one from a JSON card image (see testdata/cards).
//
// Plumbing:
//   - Lab drives N vpcd slots (one TCP client per slot).
//   - MemReader offers the same cards and faults in-process.
//   - Fault describes injected failures; Lab and MemReader share its logic.
package cardsim

import (
	"fmt"
	"log/slog"
)

// Card is a simulated smart card as seen from the reader.
//
// The lab calls a card from one goroutine at a time per slot or reader, but
// the same Card value may be shared, so implementations should be safe for
// concurrent use.
type Card interface {
	// ATR returns the answer-to-reset (2..33 bytes).
	ATR() []byte
	// PowerOn is called when the reader powers the card (cold reset).
	PowerOn()
	// PowerOff is called when the reader removes power or the card leaves
	// the reader.
	PowerOff()
	// Reset is a warm reset.
	Reset()
	// Process handles one raw command APDU and returns the raw response APDU
	// (data followed by SW1 SW2). It must never panic and must always return
	// at least two bytes, whatever the input.
	Process(cmd []byte) []byte
}

// Named is implemented by cards that have a display name (used in slot
// status and logs).
type Named interface {
	Name() string
}

// CardName returns c's display name: Name() when c implements Named, its Go
// type otherwise.
func CardName(c Card) string {
	if n, ok := c.(Named); ok && n.Name() != "" {
		return n.Name()
	}
	return fmt.Sprintf("%T", c)
}

// maxFramePayload is the largest vpcd frame payload (16-bit length).
const maxFramePayload = 0xFFFF

// processSafely calls c.Process and guarantees a well-formed answer: a
// panic, a response shorter than two bytes or longer than a vpcd frame
// becomes 6F00.
func processSafely(c Card, cmd []byte, log *slog.Logger) (resp []byte) {
	defer func() {
		if r := recover(); r != nil {
			if log != nil {
				log.Error("card panicked in Process", "card", CardName(c), "panic", r)
			}
			resp = SWUnknown.Bytes()
		}
	}()
	resp = c.Process(cmd)
	if len(resp) < 2 || len(resp) > maxFramePayload {
		if log != nil {
			log.Error("card returned an invalid response length; answering 6F00",
				"card", CardName(c), "len", len(resp))
		}
		return SWUnknown.Bytes()
	}
	return resp
}
