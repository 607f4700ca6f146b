package identity

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var wib = time.FixedZone("WIB", 7*3600)

func d(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, time.UTC) }

// digitsOnly keeps the ASCII digits of s.
func digitsOnly(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// longDigitRun matches runs of five or more digits. No error or warning
// text may contain one: identifier fragments must never leak.
var longDigitRun = regexp.MustCompile(`[0-9]{5,}`)

// assertRedacted checks that text leaks neither the input nor its digits.
func assertRedacted(t *testing.T, input, text string) {
	t.Helper()
	if trimmed := strings.TrimSpace(input); len(trimmed) >= 5 {
		assert.NotContains(t, text, trimmed, "text echoes the input")
	}
	if dig := digitsOnly(input); len(dig) >= 5 {
		assert.NotContains(t, text, dig, "text echoes the digits")
	}
	assert.False(t, longDigitRun.MatchString(text), "text contains a long digit run: %q", text)
}

// requireInvalid checks the shape of a validation error.
func requireInvalid(t *testing.T, err error, sentinel error, field, input string) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, sentinel)
	assert.ErrorIs(t, err, ErrInvalid)
	var e *Error
	require.True(t, errors.As(err, &e), "error is %T, want *Error", err)
	assert.Equal(t, field, e.Field)
	assert.NotEmpty(t, e.Reason)
	assert.NotEmpty(t, e.Value)
	assertRedacted(t, input, err.Error())
	assertRedacted(t, input, e.Value)
}
