package identity

import (
	"errors"
	"fmt"
)

// ErrInvalid matches every validation error returned by this package:
// errors.Is(err, ErrInvalid) is true for all the more specific sentinels below.
var ErrInvalid = errors.New("identity: invalid identifier")

// Sentinel errors. Each wraps ErrInvalid. Use errors.Is to test for them;
// the concrete error returned by the parsers is always an *Error.
var (
	// ErrLength: wrong number of digits (after separators are removed).
	ErrLength = fmt.Errorf("%w: wrong length", ErrInvalid)
	// ErrNotDigits: a character that is neither an ASCII digit nor an
	// accepted separator.
	ErrNotDigits = fmt.Errorf("%w: not digits", ErrInvalid)
	// ErrBadDate: an embedded date or month does not exist in the calendar,
	// is out of the accepted range, or (NIK) no century makes it plausible.
	ErrBadDate = fmt.Errorf("%w: bad date", ErrInvalid)
	// ErrBadGender: the NIP gender digit is not 1 or 2, or a gender code
	// could not be recognised.
	ErrBadGender = fmt.Errorf("%w: bad gender", ErrInvalid)
	// ErrBadSequence: the sequence number is zero (sequences start at 1).
	ErrBadSequence = fmt.Errorf("%w: bad sequence", ErrInvalid)
	// ErrBadRegion: a region segment (province, regency/city or district)
	// of a NIK or KK is 00. An unknown but non-zero province code is NOT an
	// error; it is reported as a warning (see CheckNIK).
	ErrBadRegion = fmt.Errorf("%w: bad region code", ErrInvalid)
	// ErrAppointmentBeforeBirth: the NIP appointment month precedes the
	// birth month.
	ErrAppointmentBeforeBirth = fmt.Errorf("%w: appointment before birth", ErrInvalid)
	// ErrImplausibleAge: the age at CPNS appointment implied by a NIP is
	// outside [MinAppointmentAge, MaxAppointmentAge].
	ErrImplausibleAge = fmt.Errorf("%w: implausible age at appointment", ErrInvalid)
)

// Field names used in Error.Field. The part after the dot names the segment
// of the identifier that failed.
const (
	FieldNIP            = "NIP"
	FieldNIPBirthDate   = "NIP.birth_date"
	FieldNIPAppointment = "NIP.appointment"
	FieldNIPGender      = "NIP.gender"
	FieldNIPSequence    = "NIP.sequence"
	FieldNIK            = "NIK"
	FieldNIKRegion      = "NIK.region"
	FieldNIKBirthDate   = "NIK.birth_date"
	FieldNIKSequence    = "NIK.sequence"
	FieldKK             = "KK"
	FieldKKRegion       = "KK.region"
	FieldBPJS           = "BPJS"
	FieldGender         = "gender"
)

// Error describes why an identifier was rejected.
//
// Identifiers are personal data (UU 27/2022), so an Error never contains the
// identifier or any of its digits: Value only describes where the problem
// is (a length, a character position or a digit range), never what the
// characters were. Errors can therefore be logged safely.
type Error struct {
	// Field is the identifier and, after a dot, the failing segment,
	// e.g. "NIP" or "NIK.birth_date" (see the Field* constants).
	Field string
	// Value is a redacted description of the offending input, e.g.
	// "17 digits", "character 5" or "digits 7-12". Never the input itself.
	Value string
	// Reason is a short English explanation for developers and logs.
	// Clerk-facing texts come from the Check* functions (Warning).
	Reason string
	// Err is the sentinel (ErrLength, ErrBadDate, ...). It wraps ErrInvalid.
	Err error
}

func (e *Error) Error() string {
	msg := "identity: invalid " + e.Field
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Value != "" {
		msg += " (" + e.Value + ")"
	}
	return msg
}

// Unwrap returns the sentinel, so errors.Is works for both the sentinel and
// ErrInvalid.
func (e *Error) Unwrap() error { return e.Err }

func newError(field, value, reason string, sentinel error) *Error {
	return &Error{Field: field, Value: value, Reason: reason, Err: sentinel}
}

// digitRange formats a 1-based, inclusive digit range for Error.Value.
func digitRange(from, to int) string {
	if from == to {
		return fmt.Sprintf("digit %d", from)
	}
	return fmt.Sprintf("digits %d-%d", from, to)
}
