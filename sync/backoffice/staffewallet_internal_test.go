package backoffice

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"kpe-agent/internal/i18n"
)

// An amount typed on the top-up form is read as whole rupiah, digits
// alone or grouped by thousands with one separator; anything that could
// be a decimal or a typo is refused, not guessed.
func TestParseRupiah(t *testing.T) {
	for in, want := range map[string]uint32{
		"1": 1, "250000": 250000, "1.250.000": 1250000, "1,250,000": 1250000, "1 250 000": 1250000,
		"999": 999, "12.345": 12345, "4294967295": 4294967295,
	} {
		got, err := parseRupiah(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for _, in := range []string{"", "1,5", "12.50", "1.250,000", "1.2500", ".250", "1..250", "1.250.", "-5", "+5", "1e6",
		"Rp 5", "5 ribu", "4294967296", "1.250.000,00", "0x10", "١٢٣"} {
		_, err := parseRupiah(in)
		assert.Error(t, err, "%q", in)
	}
}

// Any text: parseRupiah answers an amount or an error, never panics, and
// an amount it accepts is one the pages write back the same (in both
// languages' grouping).
func FuzzParseRupiah(f *testing.F) {
	for _, s := range []string{"1.250.000", "1,250,000", "1 250 000", "1,5", "", "4294967295", "1..2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseRupiah(s)
		if err != nil {
			return
		}
		for _, l := range []i18n.Lang{i18n.Indonesian, i18n.English} {
			again, err := parseRupiah(strings.TrimPrefix(rupiah(l, int64(n)), "Rp "))
			if err != nil || again != n {
				t.Fatalf("%q read as %d, written %q, read back %d (%v)", s, n, rupiah(l, int64(n)), again, err)
			}
		}
	})
}
