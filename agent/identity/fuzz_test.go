package identity

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Seed corpora live in testdata/fuzz/FuzzParseNIP and testdata/fuzz/FuzzParseNIK.

// fuzzEpoch + refDays is the NIK reference date; uint16 days span
// 1950-2129, which crosses the 2000 and 2100 century boundaries.
var fuzzEpoch = d(1950, time.January, 1)

// checkFuzzError verifies the error contract shared by all parsers.
func checkFuzzError(t *testing.T, s string, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error does not match ErrInvalid: %v", err)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error is %T, want *Error", err)
	}
	if dig := digitsOnly(s); len(dig) >= 5 && strings.Contains(err.Error(), dig) {
		t.Fatalf("error %q echoes the input digits", err)
	}
	if longDigitRun.MatchString(err.Error()) && len(s) < 10000 {
		t.Fatalf("error %q contains a long digit run", err)
	}
}

func checkFuzzWarnings(t *testing.T, s string, ws []Warning) {
	t.Helper()
	dig := digitsOnly(s)
	for _, w := range ws {
		if w.Code == "" || w.ID == "" || w.EN == "" {
			t.Fatalf("incomplete warning %+v", w)
		}
		for _, text := range []string{w.ID, w.EN} {
			if longDigitRun.MatchString(text) || (len(dig) >= 5 && strings.Contains(text, dig)) {
				t.Fatalf("warning text leaks digits: %q", text)
			}
		}
	}
}

func FuzzParseNIP(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNIP(s)
		ws := CheckNIP(s, d(1966, time.August, 1), Male)
		checkFuzzWarnings(t, s, ws)
		if err != nil {
			checkFuzzError(t, s, err)
			if len(ws) != 1 || ws[0].Code != CodeNIPInvalid {
				t.Fatalf("invalid NIP gave warnings %v", codes(ws))
			}
			return
		}
		// A successful parse re-formats to the same digits.
		if got, want := n.String(), digitsOnly(s); got != want || len(got) != NIPLength {
			t.Fatalf("String() = %q, want %q", got, want)
		}
		if got := strings.ReplaceAll(n.Formatted(), " ", ""); got != n.String() {
			t.Fatalf("Formatted() = %q, digits %q", n.Formatted(), n.String())
		}
		again, err := ParseNIP(n.Formatted())
		if err != nil || !reflect.DeepEqual(again, n) {
			t.Fatalf("re-parse of %q: %+v, %v; want %+v", n.Formatted(), again, err, n)
		}
		// Invariants of a valid NIP.
		if n.Gender != Male && n.Gender != Female {
			t.Fatalf("gender %v", n.Gender)
		}
		if n.Sequence < 1 || n.Sequence > 999 {
			t.Fatalf("sequence %d", n.Sequence)
		}
		if n.BirthDate.Year() < MinNIPBirthYear || n.BirthDate.Location() != time.UTC {
			t.Fatalf("birth date %v", n.BirthDate)
		}
		if n.Appointment.Last().Before(n.BirthDate) {
			t.Fatalf("appointment %v before birth %v", n.Appointment, n.BirthDate)
		}
		if ws := CheckNIP(n.String(), n.BirthDate, n.Gender); len(ws) != 0 {
			t.Fatalf("self-check warned: %v", codes(ws))
		}
	})
}

func FuzzParseNIK(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string, refDays uint16) {
		ref := fuzzEpoch.AddDate(0, 0, int(refDays))
		n, err := ParseNIK(s, ref)
		ws := CheckNIK(s, d(1990, time.August, 1), Female, ref)
		checkFuzzWarnings(t, s, ws)
		checkFuzzWarnings(t, s, CheckNIPvsNIK(s, s, ref))
		if err != nil {
			checkFuzzError(t, s, err)
			if len(ws) != 1 || ws[0].Code != CodeNIKInvalid {
				t.Fatalf("invalid NIK gave warnings %v", codes(ws))
			}
			return
		}
		// A successful parse re-formats to the same digits.
		if got, want := n.String(), digitsOnly(s); got != want || len(got) != NIKLength {
			t.Fatalf("String() = %q, want %q", got, want)
		}
		if got := strings.ReplaceAll(n.Formatted(), " ", ""); got != n.String() {
			t.Fatalf("Formatted() = %q, digits %q", n.Formatted(), n.String())
		}
		again, err := ParseNIK(n.Formatted(), ref)
		if err != nil || !reflect.DeepEqual(again, n) {
			t.Fatalf("re-parse of %q: %+v, %v; want %+v", n.Formatted(), again, err, n)
		}
		// Invariants of a valid NIK.
		if n.Region.String() != n.Raw[:6] {
			t.Fatalf("region %q vs %q", n.Region, n.Raw[:6])
		}
		if n.BirthDate.After(ref) || ageAt(n.BirthDate, ref) > MaxNIKAge {
			t.Fatalf("birth %v implausible at %v", n.BirthDate, ref)
		}
		day := n.BirthDate.Day()
		if n.Gender == Female {
			day += femaleDayOffset
		}
		if got := fmt.Sprintf("%02d%02d%02d", day, int(n.BirthDate.Month()), n.BirthDate.Year()%100); got != n.Raw[6:12] {
			t.Fatalf("birth %v / gender %v do not encode to %q", n.BirthDate, n.Gender, n.Raw[6:12])
		}
		c := n.BirthDateCandidates()
		if len(c) != map[bool]int{false: 1, true: 2}[n.CenturyAmbiguous] {
			t.Fatalf("candidates %v, ambiguous %v", c, n.CenturyAmbiguous)
		}
		if len(c) == 2 && !c[1].Equal(c[0].AddDate(-100, 0, 0)) {
			t.Fatalf("candidates %v not a century apart", c)
		}
		if ws := CheckNIK(n.String(), n.BirthDate, n.Gender, ref); len(ws) > 1 ||
			(len(ws) == 1 && ws[0].Code != CodeNIKUnknownProvince) {
			t.Fatalf("self-check warned: %v", codes(ws))
		}
	})
}
