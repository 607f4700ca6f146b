package biometric

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func sample(f Format, n int) *Record {
	r := &Record{Format: f, CaptureEquipment: 0x0012, Width: 256, Height: 360, ResX: 197, ResY: 197,
		CBEFFOwner: 0x0033, CBEFFType: 0x0001}
	if f != FormatANSI {
		r.CBEFFOwner, r.CBEFFType = 0, 0
	}
	v := View{Finger: 2, Quality: 80}
	unit := 360.0 / 256
	if f == FormatANSI {
		unit = 2
	}
	for i := 0; i < n; i++ {
		v.Minutiae = append(v.Minutiae, Minutia{Type: MinutiaType(1 + i%2), X: 10 + i*5%240, Y: 20 + i*7%330,
			Angle: float64(i*11%int(360/unit)) * unit, Quality: 40 + i%60})
	}
	r.Views = []View{v}
	return r
}

func TestRoundTrip(t *testing.T) {
	for _, f := range []Format{FormatISO, FormatANSI} {
		for _, n := range []int{0, 1, 40, 255} {
			t.Run(fmt.Sprintf("%v/%d", f, n), func(t *testing.T) {
				r := sample(f, n)
				b, err := r.Encode()
				require.NoError(t, err)
				got, err := Parse(b)
				require.NoError(t, err)
				require.Equal(t, r, got)
				b2, err := got.Encode()
				require.NoError(t, err)
				require.Equal(t, b, b2)
			})
		}
	}
	// Two views with extended data, and an ANSI record over 64 KiB would
	// need the 6-byte length; views of 255 minutiae stay below, so check
	// the long form by hand.
	r := sample(FormatISO, 3)
	r.Views = append(r.Views, View{Finger: 7, ViewNumber: 1, Quality: 60, Extended: []byte{1, 2, 3}})
	b, err := r.Encode()
	require.NoError(t, err)
	got, err := ParseISO(b)
	require.NoError(t, err)
	require.Equal(t, r, got)

	a := sample(FormatANSI, 2)
	short, _ := a.Encode()
	n := len(short) + 4
	long := append(append([]byte(nil), short[:8]...), 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	long = append(long, short[10:]...)
	got, err = ParseANSI(long)
	require.NoError(t, err)
	require.Equal(t, a, got)
}

// ISO (100, 14, 112.5°, ending) at 197 px/cm is 33 07 54 in compact form.
func TestCompactWorkedExample(t *testing.T) {
	iso := &Record{Format: FormatISO, Width: 400, Height: 500, ResX: 197, ResY: 197,
		Views: []View{{Minutiae: []Minutia{{Type: TypeEnding, X: 100, Y: 14, Angle: 112.5, Quality: 60}}}}}
	b, err := iso.Encode()
	require.NoError(t, err)
	// The ISO minutia: 01|X=100, Y=14, angle 80 x 1.40625°, quality 60.
	require.Equal(t, "4064000e503c", hex.EncodeToString(b[28:34]))
	parsed, err := ParseISO(b)
	require.NoError(t, err)
	c, dropped, err := ToCompact(parsed)
	require.NoError(t, err)
	require.Zero(t, dropped)
	cb, err := EncodeCompact(c.Minutiae())
	require.NoError(t, err)
	require.Equal(t, []byte{0x33, 0x07, 0x54}, cb)
	back, err := ParseCompact(cb)
	require.NoError(t, err)
	require.Equal(t, Minutia{Type: TypeEnding, X: 51, Y: 7, Angle: 112.5}, back.Minutiae()[0])
}

func TestCompactConversions(t *testing.T) {
	// ANSI angles (2° units) to 5.625° steps; far minutiae dropped.
	r := &Record{Format: FormatANSI, Width: 800, Height: 800, ResX: 197, ResY: 197, Views: []View{{Minutiae: []Minutia{
		{Type: TypeBifurcation, X: 0, Y: 0, Angle: 358},   // 358/5.625 = 63.6 → 64 → 0
		{Type: TypeEnding, X: 503, Y: 10, Angle: 90},      // 503 px = 255.3 → 255, angle 16
		{Type: TypeEnding, X: 504, Y: 10, Angle: 90},      // 255.8 → 256: dropped
		{Type: TypeOther, X: 10, Y: 600, Angle: 180},      // dropped
		{Type: TypeBifurcation, X: 197, Y: 394, Angle: 2}, // 100, 200, angle 0.36 → 0
	}}}}
	c, dropped, err := ToCompact(r)
	require.NoError(t, err)
	require.Equal(t, 2, dropped)
	cb, err := EncodeCompact(c.Minutiae())
	require.NoError(t, err)
	require.Equal(t, "000080ff055064c880", hex.EncodeToString(cb))
}

func TestParseErrorsAreTyped(t *testing.T) {
	good, _ := sample(FormatISO, 3).Encode()
	cases := map[string][]byte{
		"empty":       nil,
		"magic":       append([]byte("FMX"), good[3:]...),
		"length":      append(append([]byte(nil), good...), 0),
		"truncated":   good[:len(good)-3],
		"no views":    func() []byte { b := bytes.Clone(good); b[22] = 0; return b }(),
		"reserved":    func() []byte { b := bytes.Clone(good); b[23] = 1; return b }(),
		"type 11":     func() []byte { b := bytes.Clone(good); b[28] |= 0xC0; return b }(),
		"zero res":    func() []byte { b := bytes.Clone(good); b[18], b[19] = 0, 0; return b }(),
		"quality 101": func() []byte { b := bytes.Clone(good); b[33] = 101; return b }(),
	}
	for name, b := range cases {
		_, err := ParseISO(b)
		require.ErrorIs(t, err, ErrFormat, name)
		var fe *FormatError
		require.True(t, errors.As(err, &fe), name)
	}
	_, err := ParseCompact([]byte{1, 2})
	require.ErrorIs(t, err, ErrFormat)
	_, err = ParseCompact([]byte{1, 2, 0xC0})
	require.ErrorIs(t, err, ErrFormat)
}

func TestTemplatesStayOutOfLogs(t *testing.T) {
	r := sample(FormatISO, 5)
	for _, s := range []string{fmt.Sprint(r), fmt.Sprintf("%+v %#v", r, r), fmt.Sprint(r.Views[0].Minutiae)} {
		require.True(t, strings.Contains(s, "redacted"), s)
		require.NotContains(t, s, "Angle")
	}
	j, _ := r.MarshalJSON()
	require.Contains(t, string(j), "redacted")
	r.Wipe()
	require.Nil(t, r.Views)
}
