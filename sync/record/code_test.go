package record_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/record"
)

const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U"

// The worked example of docs/records.md.
func TestCodeKnownAnswer(t *testing.T) {
	var h [32]byte
	for i := range h {
		h[i] = byte(i)
	}
	// 00 01 02 03 04 05 06 07 08 09 in 5-bit groups:
	// 00000 00000 00010 00000 10000 00011 00000 10000 ...
	c := record.CodeOf(h)
	assert.Equal(t, record.Code("000G40R40M30E20"), c)
	assert.Equal(t, "000G-40R4-0M30-E20", c.String()[:18])
	assert.Len(t, strings.ReplaceAll(c.String(), "-", ""), record.CodeLen)
	back, err := record.ParseCode(c.String())
	require.NoError(t, err)
	assert.Equal(t, c, back)
}

func codes(n int) []record.Code {
	var out []record.Code
	var h [32]byte
	for i := 0; i < n; i++ {
		for j := range h {
			h[j] = byte(i*31 + j*17 + i*j)
		}
		out = append(out, record.CodeOf(h))
	}
	return out
}

// Every single wrong character and every swap of two different neighbours
// is caught by the check character.
func TestCodeCatchesTypos(t *testing.T) {
	for _, c := range codes(200) {
		s := strings.ReplaceAll(c.String(), "-", "")
		for i := 0; i < len(s); i++ {
			for _, r := range alphabet {
				if byte(r) == s[i] || (i < len(s)-1 && r > 'Z') || (i < len(s)-1 && r == 'U') {
					continue
				}
				typo := s[:i] + string(r) + s[i+1:]
				_, err := record.ParseCode(typo)
				require.ErrorIs(t, err, record.ErrCode, "%s -> %s", s, typo)
			}
			if i+1 < len(s) && s[i] != s[i+1] {
				swapped := s[:i] + string(s[i+1]) + string(s[i]) + s[i+2:]
				_, err := record.ParseCode(swapped)
				require.ErrorIs(t, err, record.ErrCode, "%s -> %s", s, swapped)
			}
		}
	}
}

func TestParseCodeForgiving(t *testing.T) {
	c := codes(1)[0]
	s := c.String()
	for _, v := range []string{s, strings.ToLower(s), strings.ReplaceAll(s, "-", " "), strings.ReplaceAll(s, "-", ""),
		" " + s + " "} {
		got, err := record.ParseCode(v)
		require.NoError(t, err, v)
		assert.Equal(t, c, got)
	}
	// O for 0, I and L for 1
	withZero := "000G-40R4-0M30-E20"
	base := record.CodeOf([32]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	full := base.String()
	require.True(t, strings.HasPrefix(full, withZero))
	got, err := record.ParseCode(strings.ReplaceAll(full, "0", "o"))
	require.NoError(t, err)
	assert.Equal(t, base, got)

	for in, want := range map[string]error{
		"":                      record.ErrCodeLength,
		"ABC":                   record.ErrCodeLength,
		s + "0":                 record.ErrCodeLength,
		"000G-40R4-0M30-E2U0":   record.ErrCodeSymbol, // U only as the check symbol
		"000G-40R4-0M30-E2!0":   record.ErrCodeSymbol,
		"000G-40R4-0M30-E2é0":   record.ErrCodeSymbol,
		strings.Repeat("Z", 99): record.ErrCodeLength,
	} {
		_, err := record.ParseCode(in)
		assert.ErrorIs(t, err, want, in)
		assert.ErrorIs(t, err, record.ErrCode, in)
	}
}
