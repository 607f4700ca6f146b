package identity

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/i18n"
)

var ref2025 = d(2025, time.June, 15)

func TestParseNIKMaleAndFemale(t *testing.T) {
	m, err := ParseNIK("3204120108900002", ref2025)
	require.NoError(t, err)
	assert.Equal(t, "3204120108900002", m.String())
	assert.Equal(t, "320412 010890 0002", m.Formatted())
	assert.Equal(t, Region{"32", "04", "12"}, m.Region)
	assert.Equal(t, "320412", m.Region.String())
	assert.True(t, m.Region.ProvinceKnown())
	assert.Equal(t, d(1990, time.August, 1), m.BirthDate)
	assert.Equal(t, Male, m.Gender)
	assert.Equal(t, 2, m.Sequence)
	assert.False(t, m.CenturyAmbiguous)
	assert.Equal(t, []time.Time{d(1990, time.August, 1)}, m.BirthDateCandidates())

	// Women: 40 added to the day.
	f, err := ParseNIK("32.04.12 410890 0001", ref2025)
	require.NoError(t, err)
	assert.Equal(t, d(1990, time.August, 1), f.BirthDate)
	assert.Equal(t, Female, f.Gender)
	assert.Equal(t, 1, f.Sequence)
}

func TestParseNIKDays(t *testing.T) {
	tests := []struct {
		ddmmyy string
		birth  time.Time
		gender Gender
	}{
		{"010190", d(1990, time.January, 1), Male},
		{"310190", d(1990, time.January, 31), Male},
		{"410190", d(1990, time.January, 1), Female},
		{"710190", d(1990, time.January, 31), Female},
		{"300490", d(1990, time.April, 30), Male},
		{"700490", d(1990, time.April, 30), Female},
		{"290296", d(1996, time.February, 29), Male},
		{"690296", d(1996, time.February, 29), Female},
		{"290200", d(2000, time.February, 29), Male},
		{"280299", d(1999, time.February, 28), Male},
	}
	for _, tc := range tests {
		t.Run(tc.ddmmyy, func(t *testing.T) {
			n, err := ParseNIK("357801"+tc.ddmmyy+"0001", ref2025)
			require.NoError(t, err)
			assert.Equal(t, tc.birth, n.BirthDate)
			assert.Equal(t, tc.gender, n.Gender)
		})
	}
}

func TestParseNIKCentury(t *testing.T) {
	tests := []struct {
		name       string
		ddmmyy     string
		ref        time.Time
		candidates []time.Time // most recent first; [0] is BirthDate
	}{
		{"adult, one century", "010890", ref2025, []time.Time{d(1990, time.August, 1)}},
		{"child or centenarian", "010120", ref2025, []time.Time{d(2020, time.January, 1), d(1920, time.January, 1)}},
		{"birthday later this year: previous century", "011225", ref2025, []time.Time{d(1925, time.December, 1)}},
		{"born today", "150625", ref2025, []time.Time{d(2025, time.June, 15), d(1925, time.June, 15)}},
		{"older candidate exactly 110", "150615", ref2025, []time.Time{d(2015, time.June, 15), d(1915, time.June, 15)}},
		{"older candidate 111 is not plausible", "150614", ref2025, []time.Time{d(2014, time.June, 15)}},
		{"older candidate still 110, turns 111 tomorrow", "160614", ref2025, []time.Time{d(2014, time.June, 16), d(1914, time.June, 16)}},
		{"older candidate turned 111 today", "150614", ref2025.AddDate(0, 0, 1), []time.Time{d(2014, time.June, 15)}},
		{"29 Feb 00: 1900 is not a leap year", "290200", d(2009, time.June, 1), []time.Time{d(2000, time.February, 29)}},
		{"1 Jan 00 in 2009: ambiguous", "010100", d(2009, time.June, 1), []time.Time{d(2000, time.January, 1), d(1900, time.January, 1)}},
		{"29 Feb 00 on that day", "290200", d(2000, time.February, 29), []time.Time{d(2000, time.February, 29)}},
		{"29 Feb 00 after 2100: 2100 not leap", "290200", d(2105, time.March, 1), []time.Time{d(2000, time.February, 29)}},
		{"year 00 after 2100", "010100", d(2105, time.March, 1), []time.Time{d(2100, time.January, 1), d(2000, time.January, 1)}},
		{"year 90 after 2100", "010190", d(2105, time.March, 1), []time.Time{d(2090, time.January, 1)}},
		{"ref before 2000", "010199", d(1999, time.December, 31), []time.Time{d(1999, time.January, 1), d(1899, time.January, 1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := ParseNIK("327301"+tc.ddmmyy+"0001", tc.ref)
			require.NoError(t, err)
			assert.Equal(t, tc.candidates[0], n.BirthDate)
			assert.Equal(t, len(tc.candidates) == 2, n.CenturyAmbiguous)
			assert.Equal(t, tc.candidates, n.BirthDateCandidates())
		})
	}
}

func TestParseNIKRefIsACalendarDate(t *testing.T) {
	// 00:30 WIB on 1 Jan 2025 is still 31 Dec 2024 in UTC. The ref is read
	// in its own location, so a baby born that day is 0, not 100.
	ref := time.Date(2025, time.January, 1, 0, 30, 0, 0, wib)
	n, err := ParseNIK("3173010101250001", ref)
	require.NoError(t, err)
	assert.Equal(t, d(2025, time.January, 1), n.BirthDate)
	assert.True(t, n.CenturyAmbiguous)
}

func TestParseNIKZeroRefMeansNow(t *testing.T) {
	n, err := ParseNIK("3204120108900002", time.Time{})
	require.NoError(t, err)
	assert.Equal(t, d(1990, time.August, 1), n.BirthDate)
}

func TestParseNIKUnknownProvinceIsNotAnError(t *testing.T) {
	for _, p := range []string{"97", "99", "10", "20", "01"} {
		n, err := ParseNIK(p+"04124108900001", ref2025)
		require.NoError(t, err, p)
		assert.False(t, n.Region.ProvinceKnown(), p)
		assert.Equal(t, p, n.Region.Province)
	}
}

func TestParseNIKErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		ref      time.Time
		sentinel error
		field    string
	}{
		{"empty", "", ref2025, ErrLength, FieldNIK},
		{"15 digits", "320412410890000", ref2025, ErrLength, FieldNIK},
		{"17 digits", "32041241089000011", ref2025, ErrLength, FieldNIK},
		{"NIP", "196608011988031001", ref2025, ErrLength, FieldNIK},
		{"letter", "320412410890000I", ref2025, ErrNotDigits, FieldNIK},
		{"plus sign", "+3204124108900001", ref2025, ErrNotDigits, FieldNIK},
		{"province 00", "0004124108900001", ref2025, ErrBadRegion, FieldNIKRegion},
		{"regency 00", "3200124108900001", ref2025, ErrBadRegion, FieldNIKRegion},
		{"district 00", "3204004108900001", ref2025, ErrBadRegion, FieldNIKRegion},
		{"day 00", "3204120008900001", ref2025, ErrBadDate, FieldNIKBirthDate},
		{"day 32", "3204123208900001", ref2025, ErrBadDate, FieldNIKBirthDate},
		{"day 40", "3204124008900001", ref2025, ErrBadDate, FieldNIKBirthDate},
		{"day 72", "3204127208900001", ref2025, ErrBadDate, FieldNIKBirthDate},
		{"day 99", "3204129908900001", ref2025, ErrBadDate, FieldNIKBirthDate},
		{"month 00", "3204120100900001", ref2025, ErrBadDate, FieldNIKBirthDate},
		{"month 13", "3204120113900001", ref2025, ErrBadDate, FieldNIKBirthDate},
		{"31 April", "3204123104900001", ref2025, ErrBadDate, FieldNIKBirthDate},
		{"71 April (female)", "3204127104900001", ref2025, ErrBadDate, FieldNIKBirthDate},
		{"29 Feb 01 never leap", "3204122902010001", ref2025, ErrBadDate, FieldNIKBirthDate},
		{"69 Feb 97 never leap (female)", "3204126902970001", ref2025, ErrBadDate, FieldNIKBirthDate},
		{"30 Feb", "3204123002960001", ref2025, ErrBadDate, FieldNIKBirthDate},
		// 2000-02-29 is after the ref and 1900-02-29 does not exist.
		{"29 Feb 00 before it happened", "3204122902000001", d(2000, time.January, 1), ErrBadDate, FieldNIKBirthDate},
		{"sequence 0000", "3204124108900000", ref2025, ErrBadSequence, FieldNIKSequence},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := ParseNIK(tc.in, tc.ref)
			requireInvalid(t, err, tc.sentinel, tc.field, tc.in)
			assert.Equal(t, NIK{}, n)
			r, ok := lookupReason(err)
			assert.True(t, ok, "no clerk text for %s/%v", tc.field, tc.sentinel)
			assert.True(t, i18n.Has(r.key), "%s/%v: %q is not in the catalogue", tc.field, tc.sentinel, r.key)
		})
	}
}

func TestNIKZeroValue(t *testing.T) {
	var n NIK
	assert.Equal(t, "", n.String())
	assert.Equal(t, "", n.Formatted())
	assert.Nil(t, n.BirthDateCandidates())
}

func TestProvinceTable(t *testing.T) {
	assert.Len(t, provinces, 38)
	for code, name := range provinces {
		assert.Len(t, code, 2)
		assert.NotEqual(t, "00", code)
		assert.NotEmpty(t, name)
	}
	name, ok := ProvinceName("32")
	assert.True(t, ok)
	assert.Equal(t, "Jawa Barat", name)
	name, ok = ProvinceName("96")
	assert.True(t, ok)
	assert.Equal(t, "Papua Barat Daya", name)
	_, ok = ProvinceName("97")
	assert.False(t, ok)
}

func TestParseKK(t *testing.T) {
	k, err := ParseKK("3204 1212 3456 7890")
	require.NoError(t, err)
	assert.Equal(t, "3204121234567890", k.String())
	assert.Equal(t, Region{"32", "04", "12"}, k.Region)
	assert.True(t, k.Region.ProvinceKnown())

	k, err = ParseKK("9904121234567890")
	require.NoError(t, err)
	assert.False(t, k.Region.ProvinceKnown())

	for _, tc := range []struct {
		in       string
		sentinel error
		field    string
	}{
		{"320412123456789", ErrLength, FieldKK},
		{"32041212345678x0", ErrNotDigits, FieldKK},
		{"0004121234567890", ErrBadRegion, FieldKKRegion},
		{"3204001234567890", ErrBadRegion, FieldKKRegion},
	} {
		_, err := ParseKK(tc.in)
		requireInvalid(t, err, tc.sentinel, tc.field, tc.in)
	}
}

func TestParseBPJS(t *testing.T) {
	n, err := ParseBPJS("0001234567890")
	require.NoError(t, err)
	assert.Equal(t, "0001234567890", n)
	n, err = ParseBPJS("0001 2345 6789 0")
	require.NoError(t, err)
	assert.Equal(t, "0001234567890", n)

	for _, tc := range []struct {
		in       string
		sentinel error
	}{
		{"", ErrLength},
		{"000123456789", ErrLength},
		{"00012345678901", ErrLength},
		{"000123456789A", ErrNotDigits},
	} {
		_, err := ParseBPJS(tc.in)
		requireInvalid(t, err, tc.sentinel, FieldBPJS, tc.in)
	}
}
