package identity

import (
	"fmt"
	"time"
)

// NIKLength is the number of digits in a NIK (and a KK).
const NIKLength = 16

// MaxNIKAge is the oldest age, in completed years at the reference date,
// that ParseNIK considers plausible when it resolves the century of the
// two-digit birth year.
const MaxNIKAge = 110

// femaleDayOffset is added to the birth day in a woman's NIK.
const femaleDayOffset = 40

// NIK is a parsed Nomor Induk Kependudukan (national identity number),
// 16 digits:
//
//	PP RR DD   region: province, regency/city, district (kecamatan)
//	DDMMYY     birth date; 40 is added to the day for women
//	SSSS       sequence, from 0001
type NIK struct {
	// Raw holds the 16 normalised digits (separators removed).
	Raw string
	// Region is the region where the NIK was issued. The province may be
	// unknown to this package (Region.ProvinceKnown); that is not an error.
	Region Region
	// BirthDate is the birth date, midnight UTC, with the century chosen
	// as described in ParseNIK.
	BirthDate time.Time
	// CenturyAmbiguous is true when the birth date 100 years before
	// BirthDate is also plausible (age <= MaxNIKAge at the reference date),
	// e.g. a NIK read in 2025 with birth year "20" could be 2020 or 1920.
	CenturyAmbiguous bool
	// Gender is Male (day 01-31) or Female (day 41-71).
	Gender Gender
	// Sequence is the sequence number, 1-9999.
	Sequence int

	// older is the other plausible birth date when CenturyAmbiguous.
	older time.Time
}

// String returns the 16 digits without separators.
func (n NIK) String() string { return n.Raw }

// Formatted returns the digits grouped as region, birth, sequence:
// "320412 410890 0001". It returns "" for the zero NIK.
func (n NIK) Formatted() string {
	if len(n.Raw) != NIKLength {
		return ""
	}
	r := n.Raw
	return r[0:6] + " " + r[6:12] + " " + r[12:16]
}

// BirthDateCandidates returns the plausible birth dates, most recent first:
// BirthDate alone, or BirthDate and the date 100 years earlier when
// CenturyAmbiguous.
func (n NIK) BirthDateCandidates() []time.Time {
	if n.BirthDate.IsZero() {
		return nil
	}
	if n.CenturyAmbiguous && !n.older.IsZero() {
		return []time.Time{n.BirthDate, n.older}
	}
	return []time.Time{n.BirthDate}
}

// ParseNIK parses and validates a NIK. Separators are handled as in
// ParseNIP. Validation is structural (a NIK has no check digit):
//
//   - exactly 16 digits (ErrLength, ErrNotDigits);
//   - no region segment is 00 (ErrBadRegion); an unknown province is
//     accepted (see Region.ProvinceKnown and CheckNIK);
//   - the day is 01-31 (male) or 41-71 (female), and day, month and year
//     form a date that exists in the chosen century (ErrBadDate);
//   - the sequence is not 0000 (ErrBadSequence).
//
// The birth year has two digits. ParseNIK chooses the most recent date
// that exists and is not after ref (the person is 0 or more years old),
// provided the age at ref is at most MaxNIKAge; otherwise ErrBadDate.
// CenturyAmbiguous reports whether the date one century earlier would also
// have been plausible. Dates are compared as calendar dates: ref is read in
// its own location. A zero ref means time.Now().
//
// The returned error is an *Error and never contains the input.
func ParseNIK(s string, ref time.Time) (NIK, error) {
	d, err := normalize(s, NIKLength, FieldNIK)
	if err != nil {
		return NIK{}, err
	}
	region, err := parseRegion(d, FieldNIKRegion)
	if err != nil {
		return NIK{}, err
	}

	day, month, yy := atoi(d[6:8]), atoi(d[8:10]), atoi(d[10:12])
	g := Male
	if day > femaleDayOffset {
		g = Female
		day -= femaleDayOffset
	}
	if day < 1 || day > 31 || month < 1 || month > 12 {
		return NIK{}, newError(FieldNIKBirthDate, digitRange(7, 10),
			"day must be 01-31 (male) or 41-71 (female) and month 01-12", ErrBadDate)
	}

	if ref.IsZero() {
		ref = time.Now()
	}
	birth, older, err := resolveCentury(day, time.Month(month), yy, dateOf(ref))
	if err != nil {
		return NIK{}, err
	}

	seq := atoi(d[12:16])
	if seq == 0 {
		return NIK{}, newError(FieldNIKSequence, digitRange(13, 16),
			"sequence is 0000", ErrBadSequence)
	}

	return NIK{
		Raw:              d,
		Region:           region,
		BirthDate:        birth,
		CenturyAmbiguous: !older.IsZero(),
		Gender:           g,
		Sequence:         seq,
		older:            older,
	}, nil
}

// resolveCentury picks the full birth date for day/month and a two-digit
// year yy, given the reference date ref (midnight UTC). It returns the
// chosen date and, if one exists, the second plausible date one century
// earlier (zero otherwise).
//
// Candidates are the years y with y%100 == yy, newest first, starting at
// the latest such year not after ref's year. A candidate is plausible if
// the date exists in that year (29 February 1900 does not, 2000 does), is
// not after ref, and the age at ref is at most MaxNIKAge. Because
// MaxNIKAge < 200, at most two candidates can be plausible.
func resolveCentury(day int, month time.Month, yy int, ref time.Time) (time.Time, time.Time, error) {
	ry := ref.Year()
	y := ry - mod(ry-yy, 100)
	var found []time.Time
	for ; ry-y <= MaxNIKAge+1 && len(found) < 2; y -= 100 {
		if !validDate(y, int(month), day) {
			continue
		}
		b := date(y, month, day)
		if b.After(ref) || ageAt(b, ref) > MaxNIKAge {
			continue
		}
		found = append(found, b)
	}
	switch len(found) {
	case 0:
		return time.Time{}, time.Time{}, newError(FieldNIKBirthDate, digitRange(7, 12),
			fmt.Sprintf("no century gives an existing birth date with an age of 0-%d years at the reference date", MaxNIKAge),
			ErrBadDate)
	case 1:
		return found[0], time.Time{}, nil
	}
	return found[0], found[1], nil
}

// mod returns a modulo n in [0, n).
func mod(a, n int) int {
	m := a % n
	if m < 0 {
		m += n
	}
	return m
}
