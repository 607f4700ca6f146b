package identity

import (
	"errors"
	"fmt"
	"time"
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

// Texts. Keep them short, polite and actionable for a frontline clerk, and
// never put identifier values in them.

const checkDocsID = "Periksa dokumen pendukung."
const checkDocsEN = "Check supporting documents."

var warnings = map[string]Warning{
	CodeNIPBirthDateMismatch: {
		Code: CodeNIPBirthDateMismatch,
		ID:   "Tanggal lahir pada NIP tidak sama dengan tanggal lahir di kartu. " + checkDocsID,
		EN:   "The birth date in the NIP does not match the card's birth date. " + checkDocsEN,
	},
	CodeNIPGenderMismatch: {
		Code: CodeNIPGenderMismatch,
		ID:   "Jenis kelamin pada NIP tidak sama dengan jenis kelamin di kartu. " + checkDocsID,
		EN:   "The gender in the NIP does not match the gender on the card. " + checkDocsEN,
	},
	CodeNIKBirthDateMismatch: {
		Code: CodeNIKBirthDateMismatch,
		ID:   "Tanggal lahir pada NIK tidak sama dengan tanggal lahir di kartu. " + checkDocsID,
		EN:   "The birth date in the NIK does not match the card's birth date. " + checkDocsEN,
	},
	CodeNIKGenderMismatch: {
		Code: CodeNIKGenderMismatch,
		ID:   "Jenis kelamin pada NIK tidak sama dengan jenis kelamin di kartu. " + checkDocsID,
		EN:   "The gender in the NIK does not match the gender on the card. " + checkDocsEN,
	},
	CodeNIKUnknownProvince: {
		Code: CodeNIKUnknownProvince,
		ID: "Kode provinsi pada NIK belum dikenal oleh terminal ini. Transaksi tetap dapat dilanjutkan. " +
			"Jika ragu, periksa KTP-el atau Kartu Keluarga dan laporkan ke teknisi agar daftar provinsi diperbarui.",
		EN: "The province code in the NIK is not known to this terminal. The transaction can continue. " +
			"If in doubt, check the KTP-el or family card (Kartu Keluarga) and tell a technician so the province list can be updated.",
	},
}

const sameHolderID = " Pastikan KPE dan KTP-el milik orang yang sama, lalu periksa dokumen pendukung."
const sameHolderEN = " Make sure the KPE and the KTP-el belong to the same person, then check supporting documents."

var (
	nipNIKBirth = Warning{
		Code: CodeNIPNIKMismatch,
		ID:   "Tanggal lahir pada NIP dan NIK tidak sama." + sameHolderID,
		EN:   "The birth dates in the NIP and the NIK differ." + sameHolderEN,
	}
	nipNIKGender = Warning{
		Code: CodeNIPNIKMismatch,
		ID:   "Jenis kelamin pada NIP dan NIK tidak sama." + sameHolderID,
		EN:   "The genders in the NIP and the NIK differ." + sameHolderEN,
	}
	nipNIKBoth = Warning{
		Code: CodeNIPNIKMismatch,
		ID:   "Tanggal lahir dan jenis kelamin pada NIP dan NIK tidak sama." + sameHolderID,
		EN:   "The birth dates and genders in the NIP and the NIK differ." + sameHolderEN,
	}
)

// reason is a bilingual explanation of why an identifier is invalid.
type reason struct{ id, en string }

// invalidReasons maps (Error.Field, sentinel) to a clerk-facing reason.
var invalidReasons = map[string]map[error]reason{
	FieldNIP: {
		ErrLength:    {"NIP harus terdiri dari 18 digit angka.", "A NIP must have exactly 18 digits."},
		ErrNotDigits: {"NIP hanya boleh berisi angka.", "A NIP may contain digits only."},
	},
	FieldNIPBirthDate: {
		ErrBadDate: {"Bagian tanggal lahir (digit 1-8) bukan tanggal yang valid.",
			"The birth-date part (digits 1-8) is not a valid date."},
	},
	FieldNIPAppointment: {
		ErrBadDate: {"Bagian bulan pengangkatan CPNS (digit 9-14) tidak valid.",
			"The CPNS appointment part (digits 9-14) is not a valid month."},
		ErrAppointmentBeforeBirth: {"Bulan pengangkatan CPNS lebih awal dari tanggal lahir.",
			"The CPNS appointment month is earlier than the birth date."},
		ErrImplausibleAge: {
			fmt.Sprintf("Usia saat pengangkatan CPNS tidak wajar (di luar %d-%d tahun).", MinAppointmentAge, MaxAppointmentAge),
			fmt.Sprintf("The age at CPNS appointment is implausible (outside %d-%d years).", MinAppointmentAge, MaxAppointmentAge)},
	},
	FieldNIPGender: {
		ErrBadGender: {"Digit jenis kelamin (digit ke-15) harus 1 atau 2.",
			"The gender digit (15th digit) must be 1 or 2."},
	},
	FieldNIPSequence: {
		ErrBadSequence: {"Nomor urut (digit 16-18) tidak boleh 000.",
			"The sequence number (digits 16-18) must not be 000."},
	},
	FieldNIK: {
		ErrLength:    {"NIK harus terdiri dari 16 digit angka.", "A NIK must have exactly 16 digits."},
		ErrNotDigits: {"NIK hanya boleh berisi angka.", "A NIK may contain digits only."},
	},
	FieldNIKRegion: {
		ErrBadRegion: {"Kode wilayah (digit 1-6) tidak valid.", "The region code (digits 1-6) is not valid."},
	},
	FieldNIKBirthDate: {
		ErrBadDate: {"Bagian tanggal lahir (digit 7-12) bukan tanggal yang valid.",
			"The birth-date part (digits 7-12) is not a valid date."},
	},
	FieldNIKSequence: {
		ErrBadSequence: {"Nomor urut (digit 13-16) tidak boleh 0000.",
			"The sequence number (digits 13-16) must not be 0000."},
	},
}

func lookupReason(err error) reason {
	var e *Error
	if errors.As(err, &e) {
		if r, ok := invalidReasons[e.Field][e.Err]; ok {
			return r
		}
	}
	return reason{}
}

func nipInvalid(err error) Warning {
	r := lookupReason(err)
	return Warning{
		Code: CodeNIPInvalid,
		ID:   join("NIP tidak valid.", r.id, "Mohon periksa kembali NIP pada kartu dan dokumen kepegawaian."),
		EN:   join("The NIP is not valid.", r.en, "Please check the NIP on the card against the personnel documents."),
	}
}

func nikInvalid(err error) Warning {
	r := lookupReason(err)
	return Warning{
		Code: CodeNIKInvalid,
		ID:   join("NIK tidak valid.", r.id, "Mohon periksa kembali NIK pada KTP-el atau Kartu Keluarga."),
		EN:   join("The NIK is not valid.", r.en, "Please check the NIK on the KTP-el or the family card (Kartu Keluarga)."),
	}
}

func join(parts ...string) string {
	out := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += " "
		}
		out += p
	}
	return out
}
