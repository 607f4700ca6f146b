package identity

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/i18n"
)

func TestParseNIPDomainExample(t *testing.T) {
	n, err := ParseNIP("19660801 198803 1 001")
	require.NoError(t, err)
	assert.Equal(t, "196608011988031001", n.Raw)
	assert.Equal(t, "196608011988031001", n.String())
	assert.Equal(t, "19660801 198803 1 001", n.Formatted())
	assert.Equal(t, d(1966, time.August, 1), n.BirthDate)
	assert.Equal(t, time.UTC, n.BirthDate.Location())
	assert.Equal(t, YearMonth{1988, time.March}, n.Appointment)
	assert.Equal(t, "1988-03", n.Appointment.String())
	assert.Equal(t, Male, n.Gender)
	assert.Equal(t, 1, n.Sequence)
}

func TestParseNIPSeparators(t *testing.T) {
	for _, in := range []string{
		"196608011988031001",
		"19660801 198803 1 001",
		"  19660801  198803 1 001  ",
		"19660801.198803.1.001",
		"19660801-198803-1-001",
		"19660801\t198803\t1\t001",
		"19660801\u00a0198803\u00a01\u00a0001",
		"1966 0801 1988 0310 01",
	} {
		n, err := ParseNIP(in)
		require.NoError(t, err, "%q", in)
		assert.Equal(t, "196608011988031001", n.String(), "%q", in)
	}
}

func TestParseNIPValid(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		birth  time.Time
		appt   YearMonth
		gender Gender
		seq    int
	}{
		{"female", "197512312005012999", d(1975, time.December, 31), YearMonth{2005, time.January}, Female, 999},
		{"born 29 Feb leap year", "198802292010121002", d(1988, time.February, 29), YearMonth{2010, time.December}, Male, 2},
		{"born 29 Feb 2000", "200002292022012003", d(2000, time.February, 29), YearMonth{2022, time.January}, Female, 3},
		{"minimum age 15 within month", "196608011981082001", d(1966, time.August, 1), YearMonth{1981, time.August}, Female, 1},
		{"late in month birthday", "196608311981081001", d(1966, time.August, 31), YearMonth{1981, time.August}, Male, 1},
		{"maximum age 60", "196608012027071001", d(1966, time.August, 1), YearMonth{2027, time.July}, Male, 1},
		{"birth year 1900", "190001011925011001", d(1900, time.January, 1), YearMonth{1925, time.January}, Male, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := ParseNIP(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.birth, n.BirthDate)
			assert.Equal(t, tc.appt, n.Appointment)
			assert.Equal(t, tc.gender, n.Gender)
			assert.Equal(t, tc.seq, n.Sequence)
		})
	}
}

func TestParseNIPErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		sentinel error
		field    string
	}{
		{"empty", "", ErrLength, FieldNIP},
		{"17 digits", "19660801198803100", ErrLength, FieldNIP},
		{"19 digits", "1966080119880310011", ErrLength, FieldNIP},
		{"NIK length", "3204124108900001", ErrLength, FieldNIP},
		{"letter", "19660801 198803 1 00l", ErrNotDigits, FieldNIP},
		{"letter O for zero", "19660801 198803 1 O01", ErrNotDigits, FieldNIP},
		{"fullwidth digit", "1966080119880310０1", ErrNotDigits, FieldNIP},
		{"slash", "19660801/198803/1/001", ErrNotDigits, FieldNIP},
		{"month 13", "196613011988031001", ErrBadDate, FieldNIPBirthDate},
		{"month 00", "196600011988031001", ErrBadDate, FieldNIPBirthDate},
		{"day 00", "196608001988031001", ErrBadDate, FieldNIPBirthDate},
		{"31 April", "196604311988031001", ErrBadDate, FieldNIPBirthDate},
		{"29 Feb non-leap", "196702291988031001", ErrBadDate, FieldNIPBirthDate},
		{"29 Feb 1900", "190002291925011001", ErrBadDate, FieldNIPBirthDate},
		{"30 Feb leap", "196802301988031001", ErrBadDate, FieldNIPBirthDate},
		{"birth before 1900", "189912311920011001", ErrBadDate, FieldNIPBirthDate},
		{"all zeros", "000000000000000000", ErrBadDate, FieldNIPBirthDate},
		{"appointment month 00", "196608011988001001", ErrBadDate, FieldNIPAppointment},
		{"appointment month 13", "196608011988131001", ErrBadDate, FieldNIPAppointment},
		{"appointment year before birth", "196608011965071001", ErrAppointmentBeforeBirth, FieldNIPAppointment},
		{"appointment month before birth", "196608011966071001", ErrAppointmentBeforeBirth, FieldNIPAppointment},
		{"appointed in birth month", "196608011966081001", ErrImplausibleAge, FieldNIPAppointment},
		{"age 14", "196608011981071001", ErrImplausibleAge, FieldNIPAppointment},
		{"age 14 late birthday", "196608311981071001", ErrImplausibleAge, FieldNIPAppointment},
		{"age 61", "196608012027081001", ErrImplausibleAge, FieldNIPAppointment},
		{"gender 0", "196608011988030001", ErrBadGender, FieldNIPGender},
		{"gender 3", "196608011988033001", ErrBadGender, FieldNIPGender},
		{"gender 9", "196608011988039001", ErrBadGender, FieldNIPGender},
		{"sequence 000", "196608011988031000", ErrBadSequence, FieldNIPSequence},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := ParseNIP(tc.in)
			requireInvalid(t, err, tc.sentinel, tc.field, tc.in)
			assert.Equal(t, NIP{}, n)
			r, ok := lookupReason(err)
			assert.True(t, ok, "no clerk text for %s/%v", tc.field, tc.sentinel)
			assert.True(t, i18n.Has(r.key), "%s/%v: %q is not in the catalogue", tc.field, tc.sentinel, r.key)
		})
	}
}

func TestParseNIPErrorValueIsPosition(t *testing.T) {
	_, err := ParseNIP("19660801 198803 1 0x1")
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "character 20", e.Value)

	_, err = ParseNIP("1966080119880310")
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "16 digits", e.Value)
	assert.Equal(t, "identity: invalid NIP: must have 18 digits (16 digits)", err.Error())
}

func TestNIPZeroValue(t *testing.T) {
	var n NIP
	assert.Equal(t, "", n.String())
	assert.Equal(t, "", n.Formatted())
}

func TestYearMonth(t *testing.T) {
	ym := YearMonth{2024, time.February}
	assert.Equal(t, d(2024, time.February, 1), ym.First())
	assert.Equal(t, d(2024, time.February, 29), ym.Last())
	assert.Equal(t, d(2023, time.February, 28), YearMonth{2023, time.February}.Last())
	assert.Equal(t, "2024-02", ym.String())
}

func TestSentinelsAreDistinct(t *testing.T) {
	all := []error{ErrLength, ErrNotDigits, ErrBadDate, ErrBadGender, ErrBadSequence,
		ErrBadRegion, ErrAppointmentBeforeBirth, ErrImplausibleAge}
	for i, a := range all {
		assert.ErrorIs(t, a, ErrInvalid)
		for j, b := range all {
			if i != j {
				assert.NotErrorIs(t, a, b)
			}
		}
	}
}
