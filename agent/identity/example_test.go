package identity_test

import (
	"errors"
	"fmt"
	"time"

	"kpe-agent/agent/identity"
)

func ExampleParseNIP() {
	n, err := identity.ParseNIP("19660801.198803.1.001")
	if err != nil {
		panic(err)
	}
	fmt.Println(n.Formatted())
	fmt.Println(n.BirthDate.Format("2006-01-02"), n.Appointment, n.Gender, n.Sequence)

	_, err = identity.ParseNIP("19660801 198803 3 001")
	fmt.Println(errors.Is(err, identity.ErrBadGender), errors.Is(err, identity.ErrInvalid))
	fmt.Println(err)
	// Output:
	// 19660801 198803 1 001
	// 1966-08-01 1988-03 male 1
	// true true
	// identity: invalid NIP.gender: gender digit is not 1 or 2 (digit 15)
}

func ExampleParseNIK() {
	ref := time.Date(2025, time.June, 15, 0, 0, 0, 0, time.UTC)

	n, _ := identity.ParseNIK("3204124108900001", ref)
	fmt.Println(n.Region.Province, n.BirthDate.Format("2006-01-02"), n.Gender, n.CenturyAmbiguous)

	// Year "20": a five-year-old or a 105-year-old.
	n, _ = identity.ParseNIK("3204120101200001", ref)
	for _, c := range n.BirthDateCandidates() {
		fmt.Println(c.Format("2006-01-02"))
	}
	// Output:
	// 32 1990-08-01 female false
	// 2020-01-01
	// 1920-01-01
}

func ExampleCheckNIP() {
	cardBirth := time.Date(1966, time.August, 2, 0, 0, 0, 0, time.UTC)
	for _, w := range identity.CheckNIP("19660801 198803 1 001", cardBirth, identity.Male) {
		fmt.Println(w.Code)
		fmt.Println(w.ID)
		fmt.Println(w.EN)
	}
	// Output:
	// nip.birthdate_mismatch
	// Tanggal lahir pada NIP tidak sama dengan tanggal lahir di kartu. Periksa dokumen pendukung.
	// The birth date in the NIP does not match the card's birth date. Check supporting documents.
}

func ExampleMerge() {
	ref := time.Date(2025, time.June, 15, 0, 0, 0, 0, time.UTC)
	nip, nik := "19660801 198803 3 001", "9904124108900001"
	ws := identity.Merge(
		identity.CheckNIP(nip, time.Time{}, identity.GenderUnknown),
		identity.CheckNIK(nik, time.Time{}, identity.GenderUnknown, ref),
		identity.CheckNIPvsNIK(nip, nik, ref),
	)
	for _, w := range ws {
		fmt.Println(w.Code)
	}
	// Output:
	// nip.invalid
	// nik.unknown_province
}
