// Package apdu is the ISO/IEC 7816-4 toolkit: command and response APDUs,
// status words as typed errors, a client that handles GET RESPONSE, wrong-Le
// retries, command chaining and large READ BINARY, BER-TLV (sub-package tlv),
// and APDU tracing with redaction.
//
// The interfaces in this file are the only view the rest of the code has of a
// card reader. The PC/SC implementation lives in apdu/pcsc (the only package
// that imports github.com/ebfe/scard and cgo); the card lab in lab/cardsim
// implements the same interfaces in-process for tests and hardware-free demos.
package apdu

import (
	"context"
	"errors"
	"time"
)

// Transmitter sends one raw command APDU and returns the raw response
// (data followed by SW1 SW2). It performs no status-word interpretation.
//
// Implementations must honour ctx: when its deadline passes or it is
// cancelled, Transmit returns an error wrapping ErrTimeout (deadline) or
// context.Canceled without waiting for the card.
type Transmitter interface {
	Transmit(ctx context.Context, cmd []byte) ([]byte, error)
}

// Card is a connected card in a reader.
type Card interface {
	Transmitter
	// Reader is the name of the reader that holds the card.
	Reader() string
	// ATR is the answer-to-reset seen when the card was connected.
	ATR() []byte
	// BeginTransaction takes exclusive access to the card for one logical
	// operation (several APDUs). Always pair it with EndTransaction.
	BeginTransaction(ctx context.Context) error
	// EndTransaction releases the access taken by BeginTransaction.
	EndTransaction() error
	// Reconnect re-establishes the connection. With reset true the card is
	// reset (warm reset); every secure session on the card is gone either way
	// when Reconnect reports ErrCardReset.
	Reconnect(ctx context.Context, reset bool) error
	// Close disconnects, leaving the card powered in the reader.
	Close() error
}

// Transport errors. Every error returned by a Card, a Transport or a monitor
// wraps exactly one of these sentinels, so callers can decide what to do with
// errors.Is without seeing PC/SC types.
var (
	// ErrCardRemoved: the card left the reader (possibly mid-command).
	// Retriable once a card is inserted again.
	ErrCardRemoved = errors.New("card removed")
	// ErrCardReset: the card was reset by someone else (or by the platform,
	// e.g. Windows after ~5 s idle inside a transaction). The transport has
	// reconnected; any secure-messaging session is lost and must be redone.
	ErrCardReset = errors.New("card was reset; secure session lost")
	// ErrTimeout: the per-command deadline passed before the card answered.
	ErrTimeout = errors.New("card did not answer before the deadline")
	// ErrNoService: the PC/SC service is not running or was restarted.
	ErrNoService = errors.New("smart-card service unavailable")
	// ErrSharingViolation: another program holds the reader exclusively.
	ErrSharingViolation = errors.New("reader is in use by another program")
	// ErrNoCard: no card in the reader.
	ErrNoCard = errors.New("no card in reader")
	// ErrNoReader: the reader does not exist (any more).
	ErrNoReader = errors.New("reader not available")
	// ErrMalformedResponse: the response is not a valid R-APDU (e.g. shorter
	// than two bytes) or violates the protocol.
	ErrMalformedResponse = errors.New("malformed response APDU")
	// ErrTransport: any other transport failure.
	ErrTransport = errors.New("card transport failure")
)

// Retriable reports whether an operation that failed with err may succeed if
// repeated (after the card is inserted again, the service comes back, or the
// reader is released).
func Retriable(err error) bool {
	switch {
	case errors.Is(err, ErrCardRemoved), errors.Is(err, ErrCardReset),
		errors.Is(err, ErrTimeout), errors.Is(err, ErrNoService),
		errors.Is(err, ErrSharingViolation), errors.Is(err, ErrNoCard):
		return true
	}
	return false
}

// EventKind says what happened in a reader monitor.
type EventKind int

const (
	// ReaderAdded: a reader appeared.
	ReaderAdded EventKind = iota + 1
	// ReaderRemoved: a reader disappeared.
	ReaderRemoved
	// CardInserted: a card is present; Event.ATR holds its ATR.
	CardInserted
	// CardRemoved: the card left the reader.
	CardRemoved
	// ReaderBusy: the reader is held exclusively by another program.
	ReaderBusy
	// ServiceLost: the smart-card service went away; the monitor is
	// re-establishing its context with capped backoff.
	ServiceLost
	// ServiceRestored: the monitor has a working context again. Events for
	// the readers and cards present at that moment follow.
	ServiceRestored
)

func (k EventKind) String() string {
	switch k {
	case ReaderAdded:
		return "reader-added"
	case ReaderRemoved:
		return "reader-removed"
	case CardInserted:
		return "card-inserted"
	case CardRemoved:
		return "card-removed"
	case ReaderBusy:
		return "reader-busy"
	case ServiceLost:
		return "service-lost"
	case ServiceRestored:
		return "service-restored"
	}
	return "unknown"
}

// Event is one change seen by a reader monitor.
type Event struct {
	Kind   EventKind
	Reader string
	ATR    []byte // CardInserted only
	Time   time.Time
	Err    error // ServiceLost: the cause
}

// ReaderInfo describes a reader at one moment.
type ReaderInfo struct {
	Name        string
	CardPresent bool
	ATR         []byte
	// Exclusive: another program holds the card exclusively.
	Exclusive bool
	// InUse: some program (possibly us) has the card connected.
	InUse bool
	// Mute: a card is present but did not answer reset.
	Mute bool
}
