package apdu

import (
	"errors"
	"fmt"
)

// ErrCardStatus is matched (errors.Is) by every status-word error: any
// *StatusError and any *RetriesError. Use it to tell "the card answered with
// a non-9000 status" apart from transport and protocol failures.
var ErrCardStatus = errors.New("card returned a status word other than 9000")

// Status-word sentinels. A *StatusError matches (errors.Is) at most one of
// them, chosen from the status word as listed, plus ErrCardStatus. Values
// and meanings follow ISO/IEC 7816-4:2013 §5.6, tables 5 and 6.
var (
	ErrEndOfFile                   = errors.New("end of file or record reached before reading Ne bytes") // 6282
	ErrFileDeactivated             = errors.New("selected file deactivated")                             // 6283
	ErrFileTerminated              = errors.New("selected file in termination state")                    // 6285
	ErrVerificationFailed          = errors.New("verification failed")                                   // 6300, 63Cx (as *RetriesError)
	ErrMemoryFailure               = errors.New("memory failure")                                        // 6581
	ErrWrongLength                 = errors.New("wrong length")                                          // 6700
	ErrCLAFunctionNotSupported     = errors.New("functions in CLA not supported")                        // 6800
	ErrLogicalChannelNotSupported  = errors.New("logical channel not supported")                         // 6881
	ErrSecureMessagingNotSupported = errors.New("secure messaging not supported")                        // 6882
	ErrLastCommandOfChainExpected  = errors.New("last command of the chain expected")                    // 6883
	ErrChainingNotSupported        = errors.New("command chaining not supported")                        // 6884
	ErrCommandNotAllowed           = errors.New("command not allowed")                                   // 6900, 6986
	ErrIncompatibleFileStructure   = errors.New("command incompatible with file structure")              // 6981
	ErrSecurityStatusNotSatisfied  = errors.New("security status not satisfied")                         // 6982
	ErrAuthenticationBlocked       = errors.New("authentication method blocked")                         // 6983
	ErrReferenceDataNotUsable      = errors.New("reference data not usable")                             // 6984
	ErrConditionsNotSatisfied      = errors.New("conditions of use not satisfied")                       // 6985
	ErrSMDataObjectsMissing        = errors.New("expected secure messaging data objects missing")        // 6987
	ErrSMDataObjectsIncorrect      = errors.New("incorrect secure messaging data objects")               // 6988
	ErrWrongData                   = errors.New("incorrect parameters in the command data field")        // 6A80
	ErrFunctionNotSupported        = errors.New("function not supported")                                // 6A81
	ErrFileNotFound                = errors.New("file or application not found")                         // 6A82
	ErrRecordNotFound              = errors.New("record not found")                                      // 6A83
	ErrNotEnoughMemory             = errors.New("not enough memory space in the file")                   // 6A84
	ErrNcInconsistent              = errors.New("command data length inconsistent")                      // 6A85, 6A87
	ErrWrongP1P2                   = errors.New("incorrect parameters P1-P2")                            // 6A00, 6A86, 6B00
	ErrReferenceNotFound           = errors.New("referenced data or reference data not found")           // 6A88
	ErrFileExists                  = errors.New("file already exists")                                   // 6A89
	ErrDFNameExists                = errors.New("DF name already exists")                                // 6A8A
	ErrWrongLe                     = errors.New("wrong Le field")                                        // 6Cxx
	ErrINSNotSupported             = errors.New("instruction code not supported or invalid")             // 6D00
	ErrCLANotSupported             = errors.New("class not supported")                                   // 6E00
	ErrNoPreciseDiagnosis          = errors.New("no precise diagnosis")                                  // 6F00
)

// sentinelOf maps exact status words to their sentinel. 63Cx and 6Cxx are
// handled in sentinelFor.
var sentinelOf = map[uint16]error{
	0x6282: ErrEndOfFile,
	0x6283: ErrFileDeactivated,
	0x6285: ErrFileTerminated,
	0x6300: ErrVerificationFailed,
	0x6581: ErrMemoryFailure,
	0x6700: ErrWrongLength,
	0x6800: ErrCLAFunctionNotSupported,
	0x6881: ErrLogicalChannelNotSupported,
	0x6882: ErrSecureMessagingNotSupported,
	0x6883: ErrLastCommandOfChainExpected,
	0x6884: ErrChainingNotSupported,
	0x6900: ErrCommandNotAllowed,
	0x6981: ErrIncompatibleFileStructure,
	0x6982: ErrSecurityStatusNotSatisfied,
	0x6983: ErrAuthenticationBlocked,
	0x6984: ErrReferenceDataNotUsable,
	0x6985: ErrConditionsNotSatisfied,
	0x6986: ErrCommandNotAllowed,
	0x6987: ErrSMDataObjectsMissing,
	0x6988: ErrSMDataObjectsIncorrect,
	0x6A00: ErrWrongP1P2,
	0x6A80: ErrWrongData,
	0x6A81: ErrFunctionNotSupported,
	0x6A82: ErrFileNotFound,
	0x6A83: ErrRecordNotFound,
	0x6A84: ErrNotEnoughMemory,
	0x6A85: ErrNcInconsistent,
	0x6A86: ErrWrongP1P2,
	0x6A87: ErrNcInconsistent,
	0x6A88: ErrReferenceNotFound,
	0x6A89: ErrFileExists,
	0x6A8A: ErrDFNameExists,
	0x6B00: ErrWrongP1P2,
	0x6D00: ErrINSNotSupported,
	0x6E00: ErrCLANotSupported,
	0x6F00: ErrNoPreciseDiagnosis,
}

func sentinelFor(sw uint16) error {
	switch {
	case sw&0xFFF0 == 0x63C0:
		return ErrVerificationFailed
	case sw>>8 == 0x6C:
		return ErrWrongLe
	}
	return sentinelOf[sw]
}

// specificMeaning is the transcription of ISO/IEC 7816-4:2013 table 6
// (specific interindustry warning and error conditions), worded as Go error
// text. Ranges and the 63Cx counter are handled in specific.
var specificMeaning = map[uint16]string{
	0x6200: "no information given",
	0x6281: "part of returned data may be corrupted",
	0x6282: "end of file or record reached before reading Ne bytes, or unsuccessful search",
	0x6283: "selected file deactivated",
	0x6284: "file control information not correctly formatted",
	0x6285: "selected file in termination state",
	0x6286: "no input data available from a sensor on the card",
	0x6287: "at least one of the referenced records is deactivated",

	0x6300: "no information given",
	0x6340: "unsuccessful comparison (exact meaning depending on the command)",
	0x6381: "file filled up by the last write",

	0x6400: "execution error",
	0x6401: "immediate response required by the card",
	0x6481: "logical channel shared access denied",
	0x6482: "logical channel opening denied",

	0x6500: "no information given",
	0x6581: "memory failure",

	0x6800: "no information given",
	0x6881: "logical channel not supported",
	0x6882: "secure messaging not supported",
	0x6883: "last command of the chain expected",
	0x6884: "command chaining not supported",

	0x6900: "no information given",
	0x6981: "command incompatible with file structure",
	0x6982: "security status not satisfied",
	0x6983: "authentication method blocked",
	0x6984: "reference data not usable",
	0x6985: "conditions of use not satisfied",
	0x6986: "command not allowed (no current EF)",
	0x6987: "expected secure messaging data objects missing",
	0x6988: "incorrect secure messaging data objects",

	0x6A00: "no information given",
	0x6A80: "incorrect parameters in the command data field",
	0x6A81: "function not supported",
	0x6A82: "file or application not found",
	0x6A83: "record not found",
	0x6A84: "not enough memory space in the file",
	0x6A85: "Nc inconsistent with TLV structure",
	0x6A86: "incorrect parameters P1-P2",
	0x6A87: "Nc inconsistent with parameters P1-P2",
	0x6A88: "referenced data or reference data not found (exact meaning depending on the command)",
	0x6A89: "file already exists",
	0x6A8A: "DF name already exists",
}

const (
	meaningTriggering = "triggering by the card"
	meaningCounter    = "counter from 0 to 15 encoded by 'X' (exact meaning depending on the command)"
)

// specific returns the table 6 meaning of sw.
func specific(sw uint16) (string, bool) {
	if m, ok := specificMeaning[sw]; ok {
		return m, true
	}
	sw1, sw2 := byte(sw>>8), byte(sw)
	switch {
	case (sw1 == 0x62 || sw1 == 0x64) && sw2 >= 0x02 && sw2 <= 0x80:
		return meaningTriggering, true
	case sw&0xFFF0 == 0x63C0:
		return meaningCounter, true
	}
	return "", false
}

// sw2Kind says how table 5 qualifies SW2 for one SW1 value.
type sw2Kind int

const (
	sw2Zero      sw2Kind = iota // only SW2 = 00 is defined (e.g. 6700, 9000)
	sw2Qualified                // SW2 is qualified by table 6
	sw2Count                    // SW2 is a byte count (61xx, 6Cxx)
	sw2Any                      // any SW2, no further qualification (66xx)
)

// generalEntry is one row of ISO/IEC 7816-4:2013 table 5.
type generalEntry struct {
	kind    sw2Kind
	meaning string // table 5 wording
	short   string // what Error prints when table 6 has nothing better
}

// generalMeaning is the transcription of ISO/IEC 7816-4:2013 table 5
// (general meaning of the interindustry values of SW1-SW2), keyed by SW1.
var generalMeaning = map[byte]generalEntry{
	0x90: {sw2Zero, "no further qualification", "normal processing"},
	0x61: {sw2Count, "SW2 encodes the number of data bytes still available", "more response data available"},
	0x62: {sw2Qualified, "state of non-volatile memory is unchanged (further qualification in SW2)", "warning, non-volatile memory unchanged"},
	0x63: {sw2Qualified, "state of non-volatile memory has changed (further qualification in SW2)", "warning, non-volatile memory changed"},
	0x64: {sw2Qualified, "state of non-volatile memory is unchanged (further qualification in SW2)", "execution error, non-volatile memory unchanged"},
	0x65: {sw2Qualified, "state of non-volatile memory has changed (further qualification in SW2)", "execution error, non-volatile memory changed"},
	0x66: {sw2Any, "security-related issues", "security-related issue"},
	0x67: {sw2Zero, "wrong length; no further indication", "wrong length"},
	0x68: {sw2Qualified, "functions in CLA not supported (further qualification in SW2)", "functions in CLA not supported"},
	0x69: {sw2Qualified, "command not allowed (further qualification in SW2)", "command not allowed"},
	0x6A: {sw2Qualified, "wrong parameters P1-P2 (further qualification in SW2)", "wrong parameters P1-P2"},
	0x6B: {sw2Zero, "wrong parameters P1-P2", "wrong parameters P1-P2"},
	0x6C: {sw2Count, "wrong Le field; SW2 encodes the exact number of available data bytes", "wrong Le field"},
	0x6D: {sw2Zero, "instruction code not supported or invalid", "instruction code not supported or invalid"},
	0x6E: {sw2Zero, "class not supported", "class not supported"},
	0x6F: {sw2Zero, "no precise diagnosis", "no precise diagnosis"},
}

// general returns the table 5 row that covers sw.
func general(sw uint16) (generalEntry, bool) {
	e, ok := generalMeaning[byte(sw>>8)]
	if !ok || (e.kind == sw2Zero && byte(sw) != 0) {
		return generalEntry{}, false
	}
	return e, true
}

// Meaning returns the ISO/IEC 7816-4 meaning of a status word as a short
// lower-case phrase, and whether the value is defined there. Values the
// standard leaves proprietary or reserved give a phrase starting with
// "unknown status word" and false.
func Meaning(sw uint16) (string, bool) {
	g, gok := general(sw)
	if m, ok := specific(sw); ok {
		switch {
		case m == "no information given" && gok:
			return g.short, true
		case sw&0xFFF0 == 0x63C0:
			return fmt.Sprintf("counter value %d (meaning depends on the command)", sw&0x0F), true
		}
		return m, true
	}
	if !gok {
		return "unknown status word", false
	}
	switch g.kind {
	case sw2Count:
		if byte(sw>>8) == 0x61 {
			return fmt.Sprintf("%d more response bytes available", retryLen(byte(sw))), true
		}
		return fmt.Sprintf("wrong Le field, %d bytes available", retryLen(byte(sw))), true
	case sw2Qualified:
		// SW1 is interindustry but table 6 does not define this SW2.
		return "unknown status word (" + g.short + ")", false
	}
	return g.short, true
}

// retryLen decodes an SW2 that carries a length, where 00 means 256.
func retryLen(sw2 byte) int {
	if sw2 == 0 {
		return 256
	}
	return int(sw2)
}

// IsSuccess reports whether sw means normal processing (ISO/IEC 7816-4
// table 5): 9000, or 61xx (more data available through GET RESPONSE).
// Client.Do never leaves a 61xx in a returned Response.
func IsSuccess(sw uint16) bool {
	return sw == 0x9000 || sw>>8 == 0x61
}

// IsWarning reports whether sw is a warning (62xx or 63xx): the command was
// processed and response data, if any, is returned alongside the error.
func IsWarning(sw uint16) bool {
	sw1 := sw >> 8
	return sw1 == 0x62 || sw1 == 0x63
}

// StatusError is a status word other than 9000 returned by the card.
//
// errors.Is(err, ErrCardStatus) holds for every StatusError, and
// errors.Is(err, ErrX) holds for the one sentinel ErrX listed for its value
// (for example ErrFileNotFound for 6A82). errors.Is(err, &StatusError{SW: v})
// matches the exact value v.
type StatusError struct {
	SW uint16
}

// Error returns the status word in hex and its meaning, for example
// "6A82: file or application not found".
func (e *StatusError) Error() string {
	m, _ := Meaning(e.SW)
	return fmt.Sprintf("%04X: %s", e.SW, m)
}

// Is implements the matching rules described on StatusError.
func (e *StatusError) Is(target error) bool {
	if target == ErrCardStatus {
		return true
	}
	if t, ok := target.(*StatusError); ok {
		return t != nil && t.SW == e.SW
	}
	s := sentinelFor(e.SW)
	return s != nil && s == target
}

// RetriesError is a 63Cx status word: the command failed (for VERIFY and
// similar commands: the reference data did not match) and x, the number of
// further allowed tries, is Retries (0..15). It matches
// errors.Is(err, ErrVerificationFailed) and ErrCardStatus, and it unwraps to
// a *StatusError with the same SW, so errors.As(err, &statusErr) works for
// code that only cares about status words.
type RetriesError struct {
	SW      uint16
	Retries int
}

// Error returns for example "63C2: verification failed, 2 tries left".
func (e *RetriesError) Error() string {
	return fmt.Sprintf("%04X: verification failed, %d tries left", e.SW, e.Retries)
}

// Unwrap returns the equivalent *StatusError.
func (e *RetriesError) Unwrap() error { return &StatusError{SW: e.SW} }

// StatusWordError returns the error for a status word: nil for 9000, a
// *RetriesError for 63C0..63CF and a *StatusError otherwise (including
// unknown values, which keep their SW).
func StatusWordError(sw uint16) error {
	switch {
	case sw == 0x9000:
		return nil
	case sw&0xFFF0 == 0x63C0:
		return &RetriesError{SW: sw, Retries: int(sw & 0x0F)}
	}
	return &StatusError{SW: sw}
}
