package identity

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/i18n"
)

const (
	exampleNIP = "19660801 198803 1 001"   // male, born 1966-08-01
	femaleNIP  = "199008012015022003"      // female, born 1990-08-01
	femaleNIK  = "3204124108900001"        // female, born (19)90-08-01
	maleNIK    = "3204120108660002"        // male, born (19)66-08-01
	unknownNIK = "9904124108900001"        // province 99 is not in the table
	badNIP     = "19660801 198803 3 001"   // gender digit 3
	badNIK     = "3204123208900001"        // day 32
	childNIK   = "3204120101200001"        // born 2020-01-01 or 1920-01-01
	nipPlusSp  = " 19660801 198803 1 001 " // same as exampleNIP
)

func codes(ws []Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Code)
	}
	return out
}

func TestCheckNIP(t *testing.T) {
	born := d(1966, time.August, 1)
	tests := []struct {
		name   string
		nip    string
		birth  time.Time
		gender Gender
		want   []string
	}{
		{"match", exampleNIP, born, Male, nil},
		{"match with spaces", nipPlusSp, born, Male, nil},
		{"birth date in WIB", exampleNIP, time.Date(1966, time.August, 1, 0, 0, 0, 0, wib), Male, nil},
		{"birth date with time of day", exampleNIP, time.Date(1966, time.August, 1, 23, 59, 0, 0, wib), Male, nil},
		{"unknown card data skips checks", exampleNIP, time.Time{}, GenderUnknown, nil},
		{"birth mismatch", exampleNIP, d(1966, time.August, 2), Male, []string{CodeNIPBirthDateMismatch}},
		{"birth mismatch by century", exampleNIP, d(2066, time.August, 1), Male, []string{CodeNIPBirthDateMismatch}},
		{"gender mismatch", exampleNIP, born, Female, []string{CodeNIPGenderMismatch}},
		{"both mismatch", exampleNIP, d(1970, time.January, 1), Female, []string{CodeNIPBirthDateMismatch, CodeNIPGenderMismatch}},
		{"female match", femaleNIP, d(1990, time.August, 1), Female, nil},
		{"invalid", badNIP, born, Male, []string{CodeNIPInvalid}},
		{"empty", "", born, Male, []string{CodeNIPInvalid}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws := CheckNIP(tc.nip, tc.birth, tc.gender)
			assert.Equal(t, tc.want, codes(ws))
			for _, w := range ws {
				assertWarningText(t, tc.nip, w)
			}
		})
	}
}

func TestCheckNIK(t *testing.T) {
	born := d(1990, time.August, 1)
	tests := []struct {
		name   string
		nik    string
		birth  time.Time
		gender Gender
		want   []string
	}{
		{"match", femaleNIK, born, Female, nil},
		{"unknown card data skips checks", femaleNIK, time.Time{}, GenderUnknown, nil},
		{"birth mismatch", femaleNIK, d(1990, time.August, 2), Female, []string{CodeNIKBirthDateMismatch}},
		{"day+40 read as day", femaleNIK, d(1990, time.August, 41-40), Female, nil},
		{"gender mismatch", femaleNIK, born, Male, []string{CodeNIKGenderMismatch}},
		{"both mismatch", femaleNIK, d(1991, time.August, 1), Male, []string{CodeNIKBirthDateMismatch, CodeNIKGenderMismatch}},
		{"century is not compared: 1920", childNIK, d(1920, time.January, 1), Male, nil},
		{"century is not compared: 2020", childNIK, d(2020, time.January, 1), Male, nil},
		{"unknown province", unknownNIK, born, Female, []string{CodeNIKUnknownProvince}},
		{"unknown province and mismatch", unknownNIK, born, Male, []string{CodeNIKUnknownProvince, CodeNIKGenderMismatch}},
		{"invalid", badNIK, born, Female, []string{CodeNIKInvalid}},
		{"NIP given as NIK", femaleNIP, born, Female, []string{CodeNIKInvalid}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws := CheckNIK(tc.nik, tc.birth, tc.gender, ref2025)
			assert.Equal(t, tc.want, codes(ws))
			for _, w := range ws {
				assertWarningText(t, tc.nik, w)
			}
		})
	}
}

func TestCheckNIPvsNIK(t *testing.T) {
	tests := []struct {
		name     string
		nip, nik string
		want     []string
		idPrefix string
	}{
		{"same person", femaleNIP, femaleNIK, nil, ""},
		{"same person, male", exampleNIP, maleNIK, nil, ""},
		{"birth differs", exampleNIP, "3204120108670002", []string{CodeNIPNIKMismatch}, "Tanggal lahir pada"},
		{"gender differs", exampleNIP, "3204124108660002", []string{CodeNIPNIKMismatch}, "Jenis kelamin pada"},
		{"both differ", exampleNIP, femaleNIK, []string{CodeNIPNIKMismatch}, "Tanggal lahir dan jenis kelamin"},
		{"unknown province is CheckNIK's job", femaleNIP, unknownNIK, nil, ""},
		{"invalid NIP", badNIP, femaleNIK, []string{CodeNIPInvalid}, "NIP tidak valid"},
		{"invalid NIK", femaleNIP, badNIK, []string{CodeNIKInvalid}, "NIK tidak valid"},
		{"both invalid", badNIP, badNIK, []string{CodeNIPInvalid, CodeNIKInvalid}, "NIP tidak valid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws := CheckNIPvsNIK(tc.nip, tc.nik, ref2025)
			assert.Equal(t, tc.want, codes(ws))
			if tc.idPrefix != "" {
				require.NotEmpty(t, ws)
				assert.True(t, strings.HasPrefix(ws[0].ID, tc.idPrefix), ws[0].ID)
			}
			for _, w := range ws {
				assertWarningText(t, tc.nip, w)
				assertWarningText(t, tc.nik, w)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	born := d(1966, time.August, 1)
	all := Merge(
		CheckNIP(badNIP, born, Male),
		CheckNIK(unknownNIK, born, Male, ref2025),
		CheckNIPvsNIK(badNIP, unknownNIK, ref2025),
	)
	assert.Equal(t, []string{CodeNIPInvalid, CodeNIKUnknownProvince, CodeNIKBirthDateMismatch, CodeNIKGenderMismatch}, codes(all))
	assert.Nil(t, Merge())
	assert.Nil(t, Merge(nil, nil))
}

// Every invalid-identifier warning explains the reason in both languages.
func TestInvalidWarningsHaveReasons(t *testing.T) {
	for _, in := range []string{"", "x", "196613011988031001", "196608011988001001",
		"196608011965071001", "196608011981071001", badNIP, "196608011988031000"} {
		ws := CheckNIP(in, time.Time{}, GenderUnknown)
		require.Len(t, ws, 1)
		assert.Equal(t, 3, strings.Count(ws[0].ID, "."), "%q: %s", in, ws[0].ID)
		assertWarningText(t, in, ws[0])
	}
	for _, in := range []string{"", "x", "0004124108900001", badNIK, "3204124108900000"} {
		ws := CheckNIK(in, time.Time{}, GenderUnknown, ref2025)
		require.Len(t, ws, 1)
		assert.GreaterOrEqual(t, strings.Count(ws[0].ID, "."), 3, "%q: %s", in, ws[0].ID)
		assertWarningText(t, in, ws[0])
	}
}

func TestWarningTable(t *testing.T) {
	for code, w := range warnings {
		assert.Equal(t, code, w.Code)
	}
	for _, w := range []Warning{nipNIKBirth, nipNIKGender, nipNIKBoth} {
		assert.Equal(t, CodeNIPNIKMismatch, w.Code)
	}
	assert.Equal(t, "Tanggal lahir pada NIP tidak sama dengan tanggal lahir di kartu. Periksa dokumen pendukung.",
		warnings[CodeNIPBirthDateMismatch].ID)
	assert.Equal(t, "The birth date in the NIP does not match the card's birth date. Check supporting documents.",
		warnings[CodeNIPBirthDateMismatch].EN)
}

func TestWarningIn(t *testing.T) {
	w := warnings[CodeNIKUnknownProvince]
	assert.Equal(t, w.ID, w.In(i18n.Indonesian))
	assert.Equal(t, w.EN, w.In(i18n.English))
	assert.Equal(t, w.EN, w.In("en-GB"))
	assert.Equal(t, w.ID, w.In("fr"), "any other language is Bahasa Indonesia")
	assert.Equal(t, w.ID, w.In(""))
}

// The reason of an implausible age names the limits in both languages.
func TestImplausibleAgeReason(t *testing.T) {
	ws := CheckNIP("196608011981071001", time.Time{}, GenderUnknown) // appointed at 14
	require.Len(t, ws, 1)
	assert.Equal(t, "NIP tidak valid. Usia saat pengangkatan CPNS tidak wajar (di luar 15-60 tahun). "+
		"Mohon periksa kembali NIP pada kartu dan dokumen kepegawaian.", ws[0].ID)
	assert.Equal(t, "The NIP is not valid. The age at CPNS appointment is implausible (outside 15-60 years). "+
		"Please check the NIP on the card against the personnel documents.", ws[0].EN)
}

// An invalid identifier whose error has no known reason still says that
// it is invalid and what to check, in two sentences.
func TestInvalidWarningWithoutReason(t *testing.T) {
	w := nikInvalid(errors.New("not an identity error"))
	assert.Equal(t, CodeNIKInvalid, w.Code)
	assert.Equal(t, "NIK tidak valid. Mohon periksa kembali NIK pada KTP-el atau Kartu Keluarga.", w.ID)
	assert.Equal(t, "The NIK is not valid. Please check the NIK on the KTP-el or the family card (Kartu Keluarga).", w.EN)
}

func assertWarningText(t *testing.T, input string, w Warning) {
	t.Helper()
	assert.NotEmpty(t, w.Code)
	assert.NotEmpty(t, w.ID)
	assert.NotEmpty(t, w.EN)
	assert.NotEqual(t, w.ID, w.EN)
	assertRedacted(t, input, w.ID)
	assertRedacted(t, input, w.EN)
}
