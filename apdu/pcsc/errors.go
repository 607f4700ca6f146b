package pcsc

import (
	"errors"
	"fmt"

	"github.com/ebfe/scard"

	"kpe-agent/apdu"
)

// Error is a PC/SC failure translated for the rest of the program. Kind is
// one of the apdu transport sentinels (apdu.ErrCardRemoved, ...) and is what
// errors.Is matches; Code keeps the platform's SCARD_* value for diagnostics.
type Error struct {
	Op     string // "connect", "transmit", "begin-transaction", ...
	Reader string
	Code   uint32 // SCARD_* code, 0 when the failure did not come from PC/SC
	Kind   error
	Detail string
}

func (e *Error) Error() string {
	msg := e.Op
	if e.Reader != "" {
		msg += " " + fmt.Sprintf("%q", e.Reader)
	}
	msg += ": " + e.Kind.Error()
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	if e.Code != 0 {
		msg += fmt.Sprintf(" [SCARD 0x%08X]", e.Code)
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Kind }

// kindOf maps a PC/SC return code onto a transport sentinel. Codes are taken
// from the scard package's constants, which are generated from the platform
// headers, so nothing here is a hand-typed number.
func kindOf(code scard.Error) error {
	switch code {
	case scard.ErrRemovedCard, scard.ErrNoSmartcard, scard.ErrUnpoweredCard,
		scard.ErrUnresponsiveCard:
		return apdu.ErrCardRemoved
	case scard.ErrResetCard:
		return apdu.ErrCardReset
	case scard.ErrNoService, scard.ErrServiceStopped, scard.ErrInvalidHandle,
		scard.ErrNoReadersAvailable, scard.ErrCommError:
		// pcsc-lite answers NO_READERS_AVAILABLE on a live context only from
		// ListReaders, which is handled separately; anywhere else it means
		// the service is not usable. F_COMM_ERROR ("RPC transport error") is
		// what pcsc-lite's client library returns when pcscd dies under it.
		return apdu.ErrNoService
	case scard.ErrSharingViolation:
		return apdu.ErrSharingViolation
	case scard.ErrUnknownReader, scard.ErrReaderUnavailable:
		return apdu.ErrNoReader
	case scard.ErrTimeout:
		return apdu.ErrTimeout
	}
	return apdu.ErrTransport
}

// wrap turns any error from the scard package into an *Error.
func wrap(op, reader string, err error) error {
	if err == nil {
		return nil
	}
	var code scard.Error
	if errors.As(err, &code) {
		e := &Error{Op: op, Reader: reader, Code: uint32(code), Kind: kindOf(code), Detail: code.Error()}
		if e.Kind == apdu.ErrSharingViolation {
			// Neither pcsc-lite nor WinSCard names the program that holds the
			// reader; say so instead of leaving the operator guessing.
			e.Detail = "another program holds the reader exclusively; the platform does not say which"
		}
		return e
	}
	return &Error{Op: op, Reader: reader, Kind: apdu.ErrTransport, Detail: err.Error()}
}

func newErr(op, reader string, kind error, detail string) error {
	return &Error{Op: op, Reader: reader, Kind: kind, Detail: detail}
}

func isServiceGone(err error) bool { return errors.Is(err, apdu.ErrNoService) }

// refine re-examines an unclassified failure: if the PC/SC service no longer
// accepts a context, the real cause is ErrNoService (a dying pcscd is
// reported with several codes, W_SECURITY_VIOLATION among them, which
// otherwise also means a policy denial).
func refine(err error) error {
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != apdu.ErrTransport {
		return err
	}
	c, cerr := establish()
	if cerr == nil {
		_ = release(c)
		return err
	}
	if errors.Is(wrap("", "", cerr), apdu.ErrNoService) {
		return &Error{Op: pe.Op, Reader: pe.Reader, Code: pe.Code, Kind: apdu.ErrNoService, Detail: pe.Detail}
	}
	return err
}
