package identity

import (
	"fmt"
	"time"
)

// NIPLength is the number of digits in a NIP.
const NIPLength = 18

// Plausibility bounds for a NIP. A NIP whose embedded dates fall outside
// them is rejected by ParseNIP.
const (
	// MinNIPBirthYear is the earliest accepted birth year. Every civil
	// servant or pensioner who can hold a KPE was born well after it.
	MinNIPBirthYear = 1900
	// MinAppointmentAge and MaxAppointmentAge bound the age, in completed
	// years, at CPNS appointment. The legal entry range has been 18 to 35
	// (up to 46 for former honorary staff, and close to retirement age for
	// PPPK, whose numbers share this layout). The bounds are deliberately
	// wider so that only clearly impossible numbers are rejected: a wrong
	// rejection stops a clerk, a wrong acceptance is still caught by the
	// cross-checks.
	MinAppointmentAge = 15
	MaxAppointmentAge = 60
)

// YearMonth is a calendar month, used for the CPNS appointment (TMT CPNS)
// encoded in a NIP.
type YearMonth struct {
	Year  int
	Month time.Month
}

// String returns "YYYY-MM".
func (ym YearMonth) String() string {
	return fmt.Sprintf("%04d-%02d", ym.Year, int(ym.Month))
}

// First returns the first day of the month, midnight UTC.
func (ym YearMonth) First() time.Time { return date(ym.Year, ym.Month, 1) }

// Last returns the last day of the month, midnight UTC.
func (ym YearMonth) Last() time.Time {
	return date(ym.Year, ym.Month, daysIn(ym.Month, ym.Year))
}

// NIP is a parsed Nomor Induk Pegawai (civil-servant number), 18 digits:
//
//	YYYYMMDD  birth date
//	YYYYMM    CPNS appointment month
//	G         gender, 1 male / 2 female
//	NNN       sequence, from 001
//
// Example: 19660801 198803 1 001.
type NIP struct {
	// Raw holds the 18 normalised digits (separators removed).
	Raw string
	// BirthDate is the birth date, midnight UTC.
	BirthDate time.Time
	// Appointment is the CPNS appointment month.
	Appointment YearMonth
	// Gender is Male or Female.
	Gender Gender
	// Sequence is the sequence number, 1-999.
	Sequence int
}

// String returns the 18 digits without separators.
func (n NIP) String() string { return n.Raw }

// Formatted returns the digits grouped as usually printed:
// "19660801 198803 1 001". It returns "" for the zero NIP.
func (n NIP) Formatted() string {
	if len(n.Raw) != NIPLength {
		return ""
	}
	r := n.Raw
	return r[0:8] + " " + r[8:14] + " " + r[14:15] + " " + r[15:18]
}

// ParseNIP parses and validates a NIP. Spaces, dots, hyphens, tabs and
// no-break spaces anywhere in s are ignored; any other non-digit is an
// error. Validation is structural (a NIP has no check digit):
//
//   - exactly 18 digits (ErrLength, ErrNotDigits);
//   - the birth date exists and its year is >= MinNIPBirthYear (ErrBadDate);
//   - the appointment month is 01-12 (ErrBadDate);
//   - the appointment month is not before the birth month
//     (ErrAppointmentBeforeBirth);
//   - the age at appointment is within [MinAppointmentAge,
//     MaxAppointmentAge] for at least one day of the appointment month
//     (ErrImplausibleAge);
//   - the gender digit is 1 or 2 (ErrBadGender);
//   - the sequence is not 000 (ErrBadSequence).
//
// ParseNIP does not depend on the current time. The returned error is an
// *Error and never contains the input.
func ParseNIP(s string) (NIP, error) {
	d, err := normalize(s, NIPLength, FieldNIP)
	if err != nil {
		return NIP{}, err
	}

	by, bm, bd := atoi(d[0:4]), atoi(d[4:6]), atoi(d[6:8])
	if !validDate(by, bm, bd) {
		return NIP{}, newError(FieldNIPBirthDate, digitRange(1, 8),
			"birth date is not a valid calendar date", ErrBadDate)
	}
	if by < MinNIPBirthYear {
		return NIP{}, newError(FieldNIPBirthDate, digitRange(1, 4),
			fmt.Sprintf("birth year before %d", MinNIPBirthYear), ErrBadDate)
	}
	birth := date(by, time.Month(bm), bd)

	ay, am := atoi(d[8:12]), atoi(d[12:14])
	if am < 1 || am > 12 {
		return NIP{}, newError(FieldNIPAppointment, digitRange(13, 14),
			"appointment month is not 01-12", ErrBadDate)
	}
	appt := YearMonth{Year: ay, Month: time.Month(am)}
	if ay < by || (ay == by && am < bm) {
		return NIP{}, newError(FieldNIPAppointment, digitRange(9, 14),
			"appointment month is before the birth month", ErrAppointmentBeforeBirth)
	}
	// Only the month of appointment is known: reject only if no day of
	// that month gives a plausible age.
	if ageAt(birth, appt.Last()) < MinAppointmentAge ||
		ageAt(birth, appt.First()) > MaxAppointmentAge {
		return NIP{}, newError(FieldNIPAppointment, digitRange(9, 14),
			fmt.Sprintf("age at appointment outside %d-%d years",
				MinAppointmentAge, MaxAppointmentAge), ErrImplausibleAge)
	}

	var g Gender
	switch d[14] {
	case '1':
		g = Male
	case '2':
		g = Female
	default:
		return NIP{}, newError(FieldNIPGender, digitRange(15, 15),
			"gender digit is not 1 or 2", ErrBadGender)
	}

	seq := atoi(d[15:18])
	if seq == 0 {
		return NIP{}, newError(FieldNIPSequence, digitRange(16, 18),
			"sequence is 000", ErrBadSequence)
	}

	return NIP{Raw: d, BirthDate: birth, Appointment: appt, Gender: g, Sequence: seq}, nil
}
