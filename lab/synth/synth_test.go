package synth

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDeterministicAndPlausible(t *testing.T) {
	a, b := NewFinger(1, 5), NewFinger(1, 5)
	require.Equal(t, a.Minutiae, b.Minutiae)
	require.NotEqual(t, a.Minutiae, NewFinger(1, 6).Minutiae)
	// about 0.2-0.26 minutiae per mm² of fingertip
	d := float64(len(a.Minutiae)) / (math.Pi * a.HalfW * a.HalfH)
	require.InDelta(t, 0.21, d, 0.06)
	// minutia directions follow the ridge flow (either way along it)
	for _, m := range a.Minutiae {
		o := a.Orientation(m.X, m.Y)
		diff := math.Mod(math.Abs(m.Theta-o), math.Pi)
		require.True(t, diff < 1e-9 || math.Pi-diff < 1e-9)
	}
	p := ParamsFor(Hard)
	r1, tr := a.ImpressionTruth(p, 9, 0, 2)
	r2 := a.Impression(p, 9, 0, 2)
	require.Equal(t, r1, r2)
	require.Len(t, tr, len(r1.Minutiae()))
	n := len(r1.Minutiae())
	require.True(t, n >= 20 && n <= 80, "%d minutiae in a plain capture", n)
	for _, m := range r1.Minutiae() {
		require.True(t, m.X >= 0 && m.X < r1.Width && m.Y >= 0 && m.Y < r1.Height)
	}
}
