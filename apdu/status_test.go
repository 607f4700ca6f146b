package apdu

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// sentinelsByName lists every status sentinel by its Go name, for the
// transcription in testdata/iso7816-4-status-words.txt.
var sentinelsByName = map[string]error{
	"ErrEndOfFile":                   ErrEndOfFile,
	"ErrFileDeactivated":             ErrFileDeactivated,
	"ErrFileTerminated":              ErrFileTerminated,
	"ErrVerificationFailed":          ErrVerificationFailed,
	"ErrMemoryFailure":               ErrMemoryFailure,
	"ErrWrongLength":                 ErrWrongLength,
	"ErrCLAFunctionNotSupported":     ErrCLAFunctionNotSupported,
	"ErrLogicalChannelNotSupported":  ErrLogicalChannelNotSupported,
	"ErrSecureMessagingNotSupported": ErrSecureMessagingNotSupported,
	"ErrLastCommandOfChainExpected":  ErrLastCommandOfChainExpected,
	"ErrChainingNotSupported":        ErrChainingNotSupported,
	"ErrCommandNotAllowed":           ErrCommandNotAllowed,
	"ErrIncompatibleFileStructure":   ErrIncompatibleFileStructure,
	"ErrSecurityStatusNotSatisfied":  ErrSecurityStatusNotSatisfied,
	"ErrAuthenticationBlocked":       ErrAuthenticationBlocked,
	"ErrReferenceDataNotUsable":      ErrReferenceDataNotUsable,
	"ErrConditionsNotSatisfied":      ErrConditionsNotSatisfied,
	"ErrSMDataObjectsMissing":        ErrSMDataObjectsMissing,
	"ErrSMDataObjectsIncorrect":      ErrSMDataObjectsIncorrect,
	"ErrWrongData":                   ErrWrongData,
	"ErrFunctionNotSupported":        ErrFunctionNotSupported,
	"ErrFileNotFound":                ErrFileNotFound,
	"ErrRecordNotFound":              ErrRecordNotFound,
	"ErrNotEnoughMemory":             ErrNotEnoughMemory,
	"ErrNcInconsistent":              ErrNcInconsistent,
	"ErrWrongP1P2":                   ErrWrongP1P2,
	"ErrReferenceNotFound":           ErrReferenceNotFound,
	"ErrFileExists":                  ErrFileExists,
	"ErrDFNameExists":                ErrDFNameExists,
	"ErrWrongLe":                     ErrWrongLe,
	"ErrINSNotSupported":             ErrINSNotSupported,
	"ErrCLANotSupported":             ErrCLANotSupported,
	"ErrNoPreciseDiagnosis":          ErrNoPreciseDiagnosis,
}

type isoRow struct {
	line     int
	table    int
	pattern  string
	meaning  string
	sentinel string
}

// expand returns the status words a pattern of the transcription covers.
func (r isoRow) expand(t *testing.T) []uint16 {
	t.Helper()
	p := r.pattern
	parse := func(s string) uint16 {
		v, err := strconv.ParseUint(s, 16, 16)
		if err != nil || len(s) != 4 {
			t.Fatalf("line %d: bad status word %q", r.line, s)
		}
		return uint16(v)
	}
	var out []uint16
	switch {
	case strings.Contains(p, "-"):
		a, b, _ := strings.Cut(p, "-")
		lo, hi := parse(a), parse(b)
		if lo >= hi {
			t.Fatalf("line %d: empty range", r.line)
		}
		for v := uint32(lo); v <= uint32(hi); v++ {
			out = append(out, uint16(v))
		}
	case strings.HasSuffix(p, "XX"):
		base := parse(p[:2] + "00")
		for i := 0; i < 256; i++ {
			out = append(out, base|uint16(i))
		}
	case strings.HasSuffix(p, "X"):
		base := parse(p[:3] + "0")
		for i := 0; i < 16; i++ {
			out = append(out, base|uint16(i))
		}
	default:
		out = []uint16{parse(p)}
	}
	return out
}

func readISOTable(t *testing.T) []isoRow {
	t.Helper()
	f, err := os.Open("testdata/iso7816-4-status-words.txt")
	must(t, err)
	defer f.Close()
	var rows []isoRow
	table := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			continue
		case strings.HasPrefix(line, "# table "):
			table, err = strconv.Atoi(strings.TrimPrefix(line, "# table "))
			must(t, err)
			continue
		case strings.HasPrefix(line, "#"):
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 || (table != 5 && table != 6) {
			t.Fatalf("line %d: %q: want SW<TAB>meaning<TAB>sentinel inside a table section", n, line)
		}
		rows = append(rows, isoRow{line: n, table: table, pattern: f[0], meaning: f[1], sentinel: f[2]})
	}
	must(t, sc.Err())
	if len(rows) == 0 {
		t.Fatal("no rows")
	}
	return rows
}

// TestStatusWordsMatchISO checks the code's status-word tables against the
// independent transcription of ISO/IEC 7816-4:2013 tables 5 and 6, for all
// 65536 status words: meaning text, whether the value is defined, and the
// one sentinel errors.Is matches.
func TestStatusWordsMatchISO(t *testing.T) {
	rows := readISOTable(t)

	wantSentinel := map[uint16]string{}
	defined := map[uint16]bool{}
	inTable6 := map[uint16]bool{}
	for _, r := range rows {
		if r.table != 6 {
			continue
		}
		for _, sw := range r.expand(t) {
			if inTable6[sw] {
				t.Fatalf("line %d: %04X listed twice", r.line, sw)
			}
			inTable6[sw] = true
			defined[sw] = true
			wantSentinel[sw] = r.sentinel
			got, ok := specific(sw)
			if check(t, ok, "line %d: %04X missing from the code's table 6", r.line, sw) {
				check(t, strings.EqualFold(r.meaning, got), "line %d: %04X: ISO %q, code %q", r.line, sw, r.meaning, got)
			}
		}
	}
	table5 := map[uint16]bool{}
	for _, r := range rows {
		if r.table != 5 {
			continue
		}
		qualified := strings.Contains(r.meaning, "(further qualification in SW2)")
		for _, sw := range r.expand(t) {
			table5[sw] = true
			g, ok := general(sw)
			if check(t, ok, "line %d: %04X missing from the code's table 5", r.line, sw) {
				check(t, strings.EqualFold(r.meaning, g.meaning), "line %d: %04X: ISO %q, code %q", r.line, sw, r.meaning, g.meaning)
			}
			if !inTable6[sw] {
				wantSentinel[sw] = r.sentinel
				defined[sw] = !qualified
			}
		}
	}
	for sw := range inTable6 {
		check(t, table5[sw], "%04X: in table 6 but not covered by table 5", sw)
	}
	for name := range wantSentinel {
		if s := wantSentinel[name]; s != "-" {
			_, ok := sentinelsByName[s]
			check(t, ok, "unknown sentinel name %q", s)
		}
	}

	for v := 0; v <= 0xFFFF; v++ {
		sw := uint16(v)
		if !table5[sw] {
			_, ok := general(sw)
			check(t, !ok, "%04X: code has a table 5 entry ISO lacks", sw)
		}
		if !inTable6[sw] {
			_, ok := specific(sw)
			check(t, !ok, "%04X: code has a table 6 entry ISO lacks", sw)
		}
		m, ok := Meaning(sw)
		eq(t, ok, defined[sw], "%04X: defined (%q)", sw, m)
		if !ok {
			check(t, strings.HasPrefix(m, "unknown status word"), "%04X: %q", sw, m)
		}

		err := StatusWordError(sw)
		if sw == 0x9000 {
			must(t, err)
			continue
		}
		if err == nil {
			t.Fatalf("%04X: no error", sw)
		}
		errIs(t, err, ErrCardStatus, "%04X", sw)
		var se *StatusError
		if check(t, errors.As(err, &se), "%04X", sw) {
			eq(t, se.SW, sw)
		}
		want := wantSentinel[sw]
		if want == "" {
			want = "-"
		}
		for name, s := range sentinelsByName {
			if name == want {
				errIs(t, err, s, "%04X", sw)
			} else {
				errIsNot(t, err, s, "%04X should match %s only", sw, want)
			}
		}
	}
}

// TestStatusTranscriptionCoverage guards the transcription itself: the
// values that public tables most often get wrong must be present with the
// sentinel the code is expected to map them to.
func TestStatusTranscriptionCoverage(t *testing.T) {
	got := map[string]string{}
	for _, r := range readISOTable(t) {
		got[r.pattern] = r.sentinel
	}
	for sw, name := range map[string]string{
		"6881": "ErrLogicalChannelNotSupported", "6882": "ErrSecureMessagingNotSupported",
		"6883": "ErrLastCommandOfChainExpected", "6884": "ErrChainingNotSupported",
		"6981": "ErrIncompatibleFileStructure", "6982": "ErrSecurityStatusNotSatisfied",
		"6983": "ErrAuthenticationBlocked", "6984": "ErrReferenceDataNotUsable",
		"6985": "ErrConditionsNotSatisfied", "6986": "ErrCommandNotAllowed",
		"6987": "ErrSMDataObjectsMissing", "6988": "ErrSMDataObjectsIncorrect",
		"63CX": "ErrVerificationFailed", "6300": "ErrVerificationFailed",
		"6282": "ErrEndOfFile", "6700": "ErrWrongLength", "6800": "ErrCLAFunctionNotSupported",
		"6900": "ErrCommandNotAllowed", "6A00": "ErrWrongP1P2", "6A86": "ErrWrongP1P2",
		"6B00": "ErrWrongP1P2", "6A80": "ErrWrongData", "6A81": "ErrFunctionNotSupported",
		"6A82": "ErrFileNotFound", "6A83": "ErrRecordNotFound", "6A84": "ErrNotEnoughMemory",
		"6A88": "ErrReferenceNotFound", "6D00": "ErrINSNotSupported", "6E00": "ErrCLANotSupported",
		"6F00": "ErrNoPreciseDiagnosis",
	} {
		eq(t, got[sw], name, sw)
	}
}

func TestStatusErrorText(t *testing.T) {
	for sw, want := range map[uint16]string{
		0x6A82: "6A82: file or application not found",
		0x6982: "6982: security status not satisfied",
		0x6700: "6700: wrong length",
		0x6800: "6800: functions in CLA not supported",
		0x6200: "6200: warning, non-volatile memory unchanged",
		0x6883: "6883: last command of the chain expected",
		0x6C10: "6C10: wrong Le field, 16 bytes available",
		0x6100: "6100: 256 more response bytes available",
		0x9123: "9123: unknown status word",
		0x6701: "6701: unknown status word",
		0x62F1: "62F1: unknown status word (warning, non-volatile memory unchanged)",
		0x6601: "6601: security-related issue",
	} {
		eq(t, (&StatusError{SW: sw}).Error(), want)
	}
	eq(t, StatusWordError(0x63C2).Error(), "63C2: verification failed, 2 tries left")
	eq(t, (&StatusError{SW: 0x63C2}).Error(), "63C2: counter value 2 (meaning depends on the command)")
}

func TestStatusErrorIsExactValue(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", StatusWordError(0x6A82))
	errIs(t, err, &StatusError{SW: 0x6A82})
	errIsNot(t, err, &StatusError{SW: 0x6A83})
	errIs(t, err, ErrFileNotFound)
	errIs(t, err, ErrCardStatus)
	errIsNot(t, err, ErrMalformedResponse)
}

func TestRetriesError(t *testing.T) {
	for x := 0; x <= 15; x++ {
		sw := uint16(0x63C0 + x)
		err := fmt.Errorf("verify: %w", Response{SW: sw}.Err())
		var re *RetriesError
		if !errors.As(err, &re) {
			t.Fatalf("%04X: no RetriesError in %v", sw, err)
		}
		eq(t, re.Retries, x)
		eq(t, re.SW, sw)
		errIs(t, err, ErrVerificationFailed)
		errIs(t, err, ErrCardStatus)
		errIsNot(t, err, ErrAuthenticationBlocked)
		var se *StatusError
		if check(t, errors.As(err, &se)) {
			eq(t, se.SW, sw)
		}
	}
	// 6300 is a verification failure without a counter.
	err := StatusWordError(0x6300)
	var re *RetriesError
	check(t, !errors.As(err, &re))
	errIs(t, err, ErrVerificationFailed)
}

func TestIsWarningIsSuccess(t *testing.T) {
	for sw, want := range map[uint16][2]bool{ // {success, warning}
		0x9000: {true, false}, 0x6110: {true, false}, 0x9001: {false, false},
		0x6282: {false, true}, 0x63C1: {false, true}, 0x6300: {false, true},
		0x6400: {false, false}, 0x6A82: {false, false},
	} {
		eq(t, IsSuccess(sw), want[0], "IsSuccess(%04X)", sw)
		eq(t, IsWarning(sw), want[1], "IsWarning(%04X)", sw)
	}
}
