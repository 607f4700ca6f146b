package identity

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestGenderString(t *testing.T) {
	assert.Equal(t, "unknown", GenderUnknown.String())
	assert.Equal(t, "male", Male.String())
	assert.Equal(t, "female", Female.String())
	assert.Equal(t, "unknown", Gender(42).String())
	var zero Gender
	assert.Equal(t, GenderUnknown, zero)
}

func TestParseGender(t *testing.T) {
	for in, want := range map[string]Gender{
		"L": Male, "l": Male, " L ": Male, "LAKI-LAKI": Male, "Laki-laki": Male, "laki laki": Male,
		"PRIA": Male, "M": Male, "male": Male, "1": Male,
		"P": Female, "p": Female, "PEREMPUAN": Female, "Perempuan": Female, "WANITA": Female,
		"F": Female, "Female": Female, "2": Female,
	} {
		g, err := ParseGender(in)
		assert.NoError(t, err, "%q", in)
		assert.Equal(t, want, g, "%q", in)
	}
	for _, in := range []string{"", "X", "0", "3", "LP", "-"} {
		g, err := ParseGender(in)
		assert.ErrorIs(t, err, ErrBadGender, "%q", in)
		assert.ErrorIs(t, err, ErrInvalid, "%q", in)
		assert.Equal(t, GenderUnknown, g)
	}
}
