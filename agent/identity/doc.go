// Package identity parses, validates and cross-checks the Indonesian
// personal identifiers found on the KPE (civil-servant card) and the
// KTP-el (electronic national ID card).
//
// None of these identifiers has a check digit. Validation is therefore
// structural (length, digits, embedded dates and codes) plus cross-checks
// against the other fields of the card.
//
// # Formats
//
// NIP (Nomor Induk Pegawai), 18 digits, e.g. "19660801 198803 1 001":
//
//	YYYYMMDD  birth date
//	YYYYMM    CPNS appointment month (TMT CPNS)
//	G         gender: 1 male, 2 female
//	NNN       sequence, from 001
//
// ParseNIP also rejects numbers that cannot belong to a real person: birth
// year before MinNIPBirthYear, appointment before birth, or an age at
// appointment outside MinAppointmentAge..MaxAppointmentAge (15..60, wider
// than the legal entry ages so that only impossible numbers are refused).
//
// NIK (Nomor Induk Kependudukan), 16 digits:
//
//	PPRRDD    region: province, regency/city, district (2 digits each)
//	DDMMYY    birth date; women have 40 added to the day (41-71)
//	SSSS      sequence, from 0001
//
// KK (Kartu Keluarga number), 16 digits, starting with the same 6-digit
// region code; only that code is interpreted.
//
// BPJS Kesehatan participant number, 13 digits; checked for length and
// digits only.
//
// On input, spaces, tabs, dots, hyphens and no-break spaces are ignored
// wherever they appear ("3204.12 410890-0001" is accepted); any other
// character, including non-ASCII digits, is rejected. String returns the
// bare digits; Formatted returns the usual grouping.
//
// # Century ambiguity
//
// A NIK holds only a two-digit birth year. ParseNIK takes a reference date
// (normally the transaction date) and chooses the most recent birth date
// that exists and is not after it, as long as the person would be at most
// MaxNIKAge (110) years old. When the date one century earlier is also
// plausible (a NIK read in 2025 with year "20": a child born in 2020 or a
// centenarian born in 1920) the result has CenturyAmbiguous set and
// BirthDateCandidates lists both. A date such as 29 February "00" exists
// in 2000 but not in 1900, so the century also decides validity.
// Cross-checks compare NIK birth dates on day, month and year modulo 100
// only, so the guessed century never produces a warning.
//
// # Province codes
//
// The known province codes are listed once, in provinces.go (Kemendagri
// codes, 38 provinces since the 2022 Papua splits). New provinces are
// created from time to time, so an unknown but non-zero province code is
// not an error: it is reported by Region.ProvinceKnown and turned into a
// nik.unknown_province warning by CheckNIK.
//
// # Errors and warnings: warn, never crash
//
// The Parse functions return an *Error that matches ErrInvalid and one of
// the specific sentinels (ErrLength, ErrNotDigits, ErrBadDate, ...) via
// errors.Is. They are for code that needs a valid identifier.
//
// The Check functions (CheckNIP, CheckNIK, CheckNIPvsNIK) are for the
// clerk's screen. They never fail and never panic: an invalid identifier
// or a mismatch between an identifier and the card's birth date or gender
// becomes a Warning with a stable Code and a polite, actionable message in
// Bahasa Indonesia (ID) and English (EN), from the message catalogue
// (internal/i18n, identity.*). Real cards carry data-entry errors;
// deciding what to do is the clerk's job, not the software's.
// Use Merge to combine the results of several checks without duplicates.
//
// # Personal data
//
// Identifiers are personal data (UU 27/2022). Errors and warnings never
// contain an identifier or any of its digits: they describe a problem by
// length or digit position only, and may be logged. The parsed values
// themselves (NIP, NIK, KK and their String methods) do contain personal
// data and must not be logged.
package identity
