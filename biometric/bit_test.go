package biometric

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func labBIT() BIT {
	return BIT{Reference: 0x81, Type: 0x08, Subtype: 0x0A /* left index */, FormatOwner: 0x0101, FormatType: 0x0006,
		MinMinutiae: 12, MaxMinutiae: 60, Order: OrderAscending | OrderXY}
}

func TestBITRoundTripAndErrors(t *testing.T) {
	b := EncodeBITGroup([]BIT{labBIT()})
	got, err := ParseBITGroup(b)
	require.NoError(t, err)
	require.Equal(t, []BIT{labBIT()}, got)

	two := EncodeBITGroup([]BIT{labBIT(), {Reference: 0x82, Type: 8, Subtype: 0x09, MinMinutiae: 10, MaxMinutiae: 40, Order: 0x0E}})
	got, err = ParseBITGroup(two)
	require.NoError(t, err)
	require.Len(t, got, 2)

	for name, mut := range map[string]func(BIT) BIT{
		"not fingerprint": func(b BIT) BIT { b.Type = 0x02; return b },
		"min > max":       func(b BIT) BIT { b.MinMinutiae = 70; return b },
		"bad order":       func(b BIT) BIT { b.Order = 0x07; return b },
	} {
		_, err := ParseBITGroup(EncodeBITGroup([]BIT{mut(labBIT())}))
		require.ErrorIs(t, err, ErrBIT, name)
	}
	_, err = ParseBITGroup([]byte{0x7F, 0x61, 0x03, 0x02, 0x01, 0x01})
	require.ErrorIs(t, err, ErrBIT)
}

func capture(n int) *Record {
	r := &Record{Format: FormatISO, Width: 256, Height: 360, ResX: 197, ResY: 197}
	v := View{}
	for i := 0; i < n; i++ {
		v.Minutiae = append(v.Minutiae, Minutia{Type: TypeEnding, X: (i * 37) % 250, Y: (i * 53) % 350, Angle: float64(i*7) * 1.40625, Quality: 10 + i%90})
	}
	r.Views = []View{v}
	return r
}

func TestVerifyData(t *testing.T) {
	bt := labBIT()
	_, err := VerifyData(bt, capture(5))
	require.ErrorIs(t, err, ErrPlaceAgain, "below the card's minimum: never sent")

	data, err := VerifyData(bt, capture(100))
	require.NoError(t, err)
	require.Len(t, data, 3*60, "cut to the card's maximum")
	rec, err := ParseCompact(data)
	require.NoError(t, err)
	ms := rec.Minutiae()
	for i := 1; i < len(ms); i++ {
		require.True(t, ms[i-1].X < ms[i].X || ms[i-1].X == ms[i].X && ms[i-1].Y <= ms[i].Y, "x-y ascending")
	}
	// the best-quality ones were kept: minutia i has quality 10+i%90, so
	// i = 0 (quality 10, at 0,0) is among the dropped.
	for _, m := range ms {
		require.False(t, m.X == 0 && m.Y == 0, "the worst minutia was dropped")
	}
	bt.Order = OrderDescending | OrderAngle
	data, err = VerifyData(bt, capture(30))
	require.NoError(t, err)
	rec, _ = ParseCompact(data)
	ms = rec.Minutiae()
	for i := 1; i < len(ms); i++ {
		require.GreaterOrEqual(t, ms[i-1].Angle, ms[i].Angle)
	}

	wrapped := VerifyCommandData(data)
	got, isWrapped, err := ParseVerifyCommandData(wrapped)
	require.NoError(t, err)
	require.True(t, isWrapped)
	require.Equal(t, data, got)
	got, isWrapped, err = ParseVerifyCommandData(data)
	require.NoError(t, err)
	require.False(t, isWrapped)
	require.Equal(t, data, got)
	_, _, err = ParseVerifyCommandData(data[:4])
	require.ErrorIs(t, err, ErrFormat)

	require.ErrorIs(t, QualityGate(capture(8), 12, 0), ErrPlaceAgain)
	require.NoError(t, QualityGate(capture(40), 12, 20))
}
