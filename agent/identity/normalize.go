package identity

import (
	"fmt"
	"time"
)

// isSeparator reports whether r may appear between the digits of an
// identifier on input. Clerks and documents write identifiers grouped with
// spaces ("19660801 198803 1 001"), dots ("32.04.12...") or hyphens, and
// text copied from PDFs or spreadsheets often contains tabs or no-break
// spaces. All of these are dropped; anything else that is not an ASCII
// digit is rejected.
func isSeparator(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '.', '-', '\u00a0', '\u202f':
		return true
	}
	return false
}

// normalize strips separators and checks that what remains is exactly want
// ASCII digits. field names the identifier for the error.
func normalize(s string, want int, field string) (string, error) {
	buf := make([]byte, 0, want+1)
	pos, digits := 0, 0
	for _, r := range s {
		pos++
		switch {
		case r >= '0' && r <= '9':
			// Stop collecting once too long (bounded memory on hostile
			// input); keep scanning so a stray letter is still reported.
			digits++
			if len(buf) <= want {
				buf = append(buf, byte(r))
			}
		case isSeparator(r):
		default:
			return "", newError(field, fmt.Sprintf("character %d", pos),
				"contains a character that is not a digit or separator", ErrNotDigits)
		}
	}
	if digits != want {
		return "", newError(field, fmt.Sprintf("%d digits", digits),
			fmt.Sprintf("must have %d digits", want), ErrLength)
	}
	return string(buf), nil
}

// atoi converts a string of ASCII digits (already validated) to an int.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// validDate reports whether y-m-d exists in the proleptic Gregorian calendar.
func validDate(y, m, d int) bool {
	if m < 1 || m > 12 || d < 1 {
		return false
	}
	return d <= daysIn(time.Month(m), y)
}

func daysIn(m time.Month, y int) int {
	// Day 0 of the next month is the last day of m.
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// date returns midnight UTC of y-m-d.
func date(y int, m time.Month, d int) time.Time {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// dateOf returns the calendar date of t, read in t's own location, as
// midnight UTC. Card dates are dates, not instants: a birth date given as
// midnight WIB must not shift to the previous day.
func dateOf(t time.Time) time.Time {
	y, m, d := t.Date()
	return date(y, m, d)
}

// ageAt returns the number of completed years between birth and at (both
// calendar dates). Someone born on 29 February becomes a year older on
// 1 March in non-leap years.
func ageAt(birth, at time.Time) int {
	by, bm, bd := birth.Date()
	ay, am, ad := at.Date()
	age := ay - by
	if am < bm || (am == bm && ad < bd) {
		age--
	}
	return age
}
