package identity

import (
	"errors"
	"strings"
	"time"

	"kpe-agent/internal/i18n"
)

// Warning is a problem found while checking identifiers, to be shown to the
// clerk. Warnings never stop a transaction and never contain identifier
// values, so they may also be logged.
type Warning struct {
	// Code is a stable machine-readable code (the Code* constants).
	Code string
	// ID is the message in Bahasa Indonesia.
	ID string
	// EN is the message in English.
	EN string
}

// In returns the message in lang (Bahasa Indonesia for any language other
// than English).
func (w Warning) In(lang i18n.Lang) string {
	return i18n.Text{ID: w.ID, EN: w.EN}.In(lang)
}

// Warning codes.
const (
	CodeNIPInvalid           = "nip.invalid"
	CodeNIPBirthDateMismatch = "nip.birthdate_mismatch"
	CodeNIPGenderMismatch    = "nip.gender_mismatch"
	CodeNIKInvalid           = "nik.invalid"
	CodeNIKBirthDateMismatch = "nik.birthdate_mismatch"
	CodeNIKGenderMismatch    = "nik.gender_mismatch"
	CodeNIKUnknownProvince   = "nik.unknown_province"
	CodeNIPNIKMismatch       = "nip_nik.mismatch"
)

// CheckNIP validates nip and cross-checks it against the birth date and
// gender printed on / read from the same card. It returns nil when all is
// well. It never fails: an invalid NIP yields a nip.invalid warning (and no
// further checks), a mismatch yields nip.birthdate_mismatch and/or
// nip.gender_mismatch.
//
// A zero birth or GenderUnknown skips that comparison. birth is compared
// as a calendar date read in its own location.
//
// Use it only with the data of the civil servant the NIP belongs to: a KPE
// Tambahan (spouse, child) carries the civil servant's NIP but the family
// member's birth date and gender.
func CheckNIP(nip string, birth time.Time, gender Gender) []Warning {
	n, err := ParseNIP(nip)
	if err != nil {
		return []Warning{nipInvalid(err)}
	}
	var ws []Warning
	if !birth.IsZero() && !sameDate(n.BirthDate, birth) {
		ws = append(ws, warnings[CodeNIPBirthDateMismatch])
	}
	if gender != GenderUnknown && gender != n.Gender {
		ws = append(ws, warnings[CodeNIPGenderMismatch])
	}
	return ws
}

// CheckNIK validates nik (resolving the century against ref, see ParseNIK)
// and cross-checks it against the birth date and gender on the card. It
// returns nil when all is well and never fails: an invalid NIK yields a
// nik.invalid warning (and no further checks); an unknown province yields
// nik.unknown_province; a mismatch yields nik.birthdate_mismatch and/or
// nik.gender_mismatch.
//
// The NIK only holds a two-digit year, so the birth date is compared on
// day, month and year modulo 100; the guessed century never causes a
// warning. A zero birth or GenderUnknown skips that comparison.
func CheckNIK(nik string, birth time.Time, gender Gender, ref time.Time) []Warning {
	n, err := ParseNIK(nik, ref)
	if err != nil {
		return []Warning{nikInvalid(err)}
	}
	var ws []Warning
	if !n.Region.ProvinceKnown() {
		ws = append(ws, warnings[CodeNIKUnknownProvince])
	}
	if !birth.IsZero() && !sameDateMod100(n.BirthDate, birth) {
		ws = append(ws, warnings[CodeNIKBirthDateMismatch])
	}
	if gender != GenderUnknown && gender != n.Gender {
		ws = append(ws, warnings[CodeNIKGenderMismatch])
	}
	return ws
}

// CheckNIPvsNIK checks that a NIP and a NIK describe the same person: same
// birth date (day, month, and year modulo 100) and same gender. A mismatch
// yields one nip_nik.mismatch warning whose text says what differs. If
// either identifier is invalid, it yields nip.invalid and/or nik.invalid
// instead and compares nothing; unknown provinces are left to CheckNIK.
// Use Merge to combine its result with CheckNIP and CheckNIK without
// duplicates.
func CheckNIPvsNIK(nip, nik string, ref time.Time) []Warning {
	var ws []Warning
	p, errP := ParseNIP(nip)
	if errP != nil {
		ws = append(ws, nipInvalid(errP))
	}
	k, errK := ParseNIK(nik, ref)
	if errK != nil {
		ws = append(ws, nikInvalid(errK))
	}
	if errP != nil || errK != nil {
		return ws
	}
	dateDiff := !sameDateMod100(k.BirthDate, p.BirthDate)
	genderDiff := p.Gender != k.Gender
	switch {
	case dateDiff && genderDiff:
		ws = append(ws, nipNIKBoth)
	case dateDiff:
		ws = append(ws, nipNIKBirth)
	case genderDiff:
		ws = append(ws, nipNIKGender)
	}
	return ws
}

// Merge concatenates warning lists, keeping only the first warning of each
// code, in order.
func Merge(lists ...[]Warning) []Warning {
	var out []Warning
	seen := map[string]bool{}
	for _, l := range lists {
		for _, w := range l {
			if seen[w.Code] {
				continue
			}
			seen[w.Code] = true
			out = append(out, w)
		}
	}
	return out
}

func sameDate(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

func sameDateMod100(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return mod(ay, 100) == mod(by, 100) && am == bm && ad == bd
}

// Texts. They live in the catalogue (internal/i18n, identity.*): keep them
// short, polite and actionable for a frontline clerk, and never put
// identifier values in them.

// newWarning returns the warning code with the catalogue text of key.
func newWarning(code, key string) Warning {
	t := i18n.Both(key)
	return Warning{Code: code, ID: t.ID, EN: t.EN}
}

var warnings = map[string]Warning{
	CodeNIPBirthDateMismatch: newWarning(CodeNIPBirthDateMismatch, "identity.nip.birthdate_mismatch"),
	CodeNIPGenderMismatch:    newWarning(CodeNIPGenderMismatch, "identity.nip.gender_mismatch"),
	CodeNIKBirthDateMismatch: newWarning(CodeNIKBirthDateMismatch, "identity.nik.birthdate_mismatch"),
	CodeNIKGenderMismatch:    newWarning(CodeNIKGenderMismatch, "identity.nik.gender_mismatch"),
	CodeNIKUnknownProvince:   newWarning(CodeNIKUnknownProvince, "identity.nik.unknown_province"),
}

var (
	nipNIKBirth  = newWarning(CodeNIPNIKMismatch, "identity.nip_nik.birthdate_mismatch")
	nipNIKGender = newWarning(CodeNIPNIKMismatch, "identity.nip_nik.gender_mismatch")
	nipNIKBoth   = newWarning(CodeNIPNIKMismatch, "identity.nip_nik.both_mismatch")
)

// reason is the catalogue key (and its arguments) of a clerk-facing
// explanation of why an identifier is invalid.
type reason struct {
	key  string
	args []any
}

// invalidReasons maps (Error.Field, sentinel) to a clerk-facing reason.
var invalidReasons = map[string]map[error]reason{
	FieldNIP: {
		ErrLength:    {key: "identity.nip.reason.length"},
		ErrNotDigits: {key: "identity.nip.reason.not_digits"},
	},
	FieldNIPBirthDate: {
		ErrBadDate: {key: "identity.nip.reason.birth_date"},
	},
	FieldNIPAppointment: {
		ErrBadDate:                {key: "identity.nip.reason.appointment_date"},
		ErrAppointmentBeforeBirth: {key: "identity.nip.reason.appointment_before_birth"},
		ErrImplausibleAge:         {key: "identity.nip.reason.appointment_age", args: []any{MinAppointmentAge, MaxAppointmentAge}},
	},
	FieldNIPGender: {
		ErrBadGender: {key: "identity.nip.reason.gender_digit"},
	},
	FieldNIPSequence: {
		ErrBadSequence: {key: "identity.nip.reason.sequence"},
	},
	FieldNIK: {
		ErrLength:    {key: "identity.nik.reason.length"},
		ErrNotDigits: {key: "identity.nik.reason.not_digits"},
	},
	FieldNIKRegion: {
		ErrBadRegion: {key: "identity.nik.reason.region"},
	},
	FieldNIKBirthDate: {
		ErrBadDate: {key: "identity.nik.reason.birth_date"},
	},
	FieldNIKSequence: {
		ErrBadSequence: {key: "identity.nik.reason.sequence"},
	},
}

// lookupReason returns err's reason; ok is false for an error without one.
func lookupReason(err error) (r reason, ok bool) {
	var e *Error
	if errors.As(err, &e) {
		r, ok = invalidReasons[e.Field][e.Err]
	}
	return r, ok
}

func nipInvalid(err error) Warning {
	return invalidWarning(CodeNIPInvalid, "identity.nip.invalid", "identity.nip.recheck", err)
}

func nikInvalid(err error) Warning {
	return invalidWarning(CodeNIKInvalid, "identity.nik.invalid", "identity.nik.recheck", err)
}

// invalidWarning says, in each language, that an identifier is invalid
// (headline), why (when err has a known reason) and what to check.
func invalidWarning(code, headline, recheck string, err error) Warning {
	r, ok := lookupReason(err)
	text := func(l i18n.Lang) string {
		parts := []string{l.T(headline)}
		if ok {
			parts = append(parts, l.T(r.key, r.args...))
		}
		return strings.Join(append(parts, l.T(recheck)), " ")
	}
	return Warning{Code: code, ID: text(i18n.Indonesian), EN: text(i18n.English)}
}
