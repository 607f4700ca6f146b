package identity

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"kpe-agent/apdu/kpe"
)

// Gender as encoded in identifiers and on cards.
type Gender int

const (
	// GenderUnknown is the zero value: not known, not given, or not
	// recognised. Cross-checks skip the gender comparison when the card's
	// gender is GenderUnknown.
	GenderUnknown Gender = iota
	// Male: NIP digit 1, NIK day 01-31, card code "L" (laki-laki).
	Male
	// Female: NIP digit 2, NIK day 41-71, card code "P" (perempuan).
	Female
)

// String returns "male", "female" or "unknown".
func (g Gender) String() string {
	switch g {
	case Male:
		return "male"
	case Female:
		return "female"
	}
	return "unknown"
}

// ParseGender recognises the gender codes found on cards and in back-office
// data, case-insensitively and ignoring surrounding spaces:
//
//	Male:   "L", "LAKI-LAKI", "LAKI LAKI", "PRIA", "M", "MALE", "1"
//	Female: "P", "PEREMPUAN", "WANITA", "F", "FEMALE", "2"
//
// Anything else returns GenderUnknown and an *Error matching ErrBadGender.
// Note that "P" means perempuan (female), as on the KTP-el, not "pria".
func ParseGender(code string) (Gender, error) {
	switch strings.ToUpper(strings.TrimSpace(code)) {
	case kpe.GenderMale, "LAKI-LAKI", "LAKI LAKI", "LAKILAKI", "PRIA", "M", "MALE", "1":
		return Male, nil
	case kpe.GenderFemale, "PEREMPUAN", "WANITA", "F", "FEMALE", "2":
		return Female, nil
	}
	return GenderUnknown, newError(FieldGender,
		fmt.Sprintf("%d characters", utf8.RuneCountInString(code)),
		"unrecognised gender code", ErrBadGender)
}
