package identity

import (
	"time"

	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/ktpel"
)

// CheckKPE cross-checks the identifiers on a KPE or KPE Tambahan against
// the holder's birth date and gender on the card (docs/background.md §3). Mismatches
// are warnings for the clerk, never errors. On a KPE Tambahan the NIP is the
// civil servant's (the link), so only the holder's NIK is checked against
// the holder's data, and the linked NIP only for its own structure.
func CheckKPE(c *kpe.Card, ref time.Time) []Warning {
	id := c.Identity
	birth, _ := time.Parse(kpe.DateLayout, id.BirthDate) // zero time skips the date check
	gender, _ := ParseGender(id.Gender)                  // unknown skips the gender check
	var lists [][]Warning
	if c.Info.Type == kpe.CardKPETambahan {
		if id.LinkedNIP != "" {
			if _, err := ParseNIP(id.LinkedNIP); err != nil {
				lists = append(lists, CheckNIP(id.LinkedNIP, time.Time{}, GenderUnknown))
			}
		}
	} else {
		lists = append(lists, CheckNIP(id.NIP, birth, gender))
		if id.NIK != "" {
			lists = append(lists, CheckNIPvsNIK(id.NIP, id.NIK, ref))
		}
	}
	if id.NIK != "" {
		lists = append(lists, CheckNIK(id.NIK, birth, gender, ref))
	}
	for _, m := range c.Family.Members {
		if m.NIK == "" {
			continue
		}
		mb, _ := time.Parse(kpe.DateLayout, m.BirthDate)
		lists = append(lists, CheckNIK(m.NIK, mb, GenderUnknown, ref))
	}
	return Merge(lists...)
}

// CheckKTPel cross-checks a KTP-el's NIK against the birth date
// (DD-MM-YYYY as printed on the card, or YYYYMMDD) and gender read from the
// same chip. Like CheckKPE it only warns.
func CheckKTPel(nik, birthDate, gender string, ref time.Time) []Warning {
	birth, err := time.Parse(ktpel.DateLayout, birthDate)
	if err != nil {
		birth, _ = time.Parse(kpe.DateLayout, birthDate) // zero time skips the date check
	}
	g, _ := ParseGender(gender)
	return CheckNIK(nik, birth, g, ref)
}
