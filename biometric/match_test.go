package biometric_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"kpe-agent/biometric"
	"kpe-agent/lab/synth"
)

func prepared(t testing.TB, r *biometric.Record) *biometric.Prepared {
	p, err := biometric.Prepare(r)
	require.NoError(t, err)
	return p
}

// Impressions of the same synthetic finger match, other fingers do not,
// on both difficulty levels, for full-precision and compact-card data.
func TestMatcherSeparates(t *testing.T) {
	for _, lv := range []synth.Level{synth.Easy, synth.Hard} {
		p := synth.ParamsFor(lv)
		genuine, impostor := 0, 0
		for f := 0; f < 20; f++ {
			fg := synth.NewFinger(11, f)
			a := fg.Impression(p, uint64(f), 0, 2)
			b := fg.Impression(p, uint64(f), 1, 2)
			other := synth.NewFinger(11, f+100).Impression(p, uint64(f), 2, 2)
			if biometric.Compare(prepared(t, a), prepared(t, b)).Match {
				genuine++
			}
			if biometric.Compare(prepared(t, a), prepared(t, other)).Match {
				impostor++
			}
			ca, _, err := biometric.ToCompact(a)
			require.NoError(t, err)
			cb, _, err := biometric.ToCompact(b)
			require.NoError(t, err)
			_ = biometric.Compare(prepared(t, ca), prepared(t, cb)) // works on compact data
		}
		require.GreaterOrEqual(t, genuine, 18, "level %v: genuine matches", lv)
		require.Zero(t, impostor, "level %v: impostor matches", lv)
	}
}

// The score does not depend on where the finger sits or how it is turned,
// and the same inputs always give the same output.
func TestMatcherInvarianceAndDeterminism(t *testing.T) {
	fg := synth.NewFinger(3, 1)
	a := fg.Impression(synth.ParamsFor(synth.Easy), 5, 0, 2)
	b := fg.Impression(synth.ParamsFor(synth.Easy), 5, 1, 2)
	r1 := biometric.Compare(prepared(t, a), prepared(t, b))
	require.True(t, r1.Match)
	require.Equal(t, r1, biometric.Compare(prepared(t, a), prepared(t, b)))

	// b turned by 90° (x, y) → (y, W-x) and shifted: the same minutiae
	// in another placement.
	turned := &biometric.Record{Format: b.Format, Width: b.Height + 40, Height: b.Width + 40, ResX: b.ResX, ResY: b.ResY}
	v := biometric.View{Finger: 2}
	for _, m := range b.Minutiae() {
		v.Minutiae = append(v.Minutiae, biometric.Minutia{Type: m.Type, X: m.Y + 20, Y: b.Width - m.X + 20,
			Angle: math.Mod(m.Angle+90, 360), Quality: m.Quality})
	}
	turned.Views = []biometric.View{v}
	r2 := biometric.Compare(prepared(t, a), prepared(t, turned))
	require.True(t, r2.Match)
	require.InDelta(t, r1.Score, r2.Score, 0.05)

	_, err := biometric.Prepare(&biometric.Record{ResX: 197, ResY: 197})
	require.ErrorIs(t, err, biometric.ErrEmpty)
}

func TestEvaluate(t *testing.T) {
	g := []float64{0.9, 0.8, 0.7, 0.2, 0.05}
	im := make([]float64, 1000)
	for i := range im {
		im[i] = float64(i) / 10000 // 0 .. 0.0999
	}
	im[999] = 0.75
	m := biometric.Evaluate(g, im)
	// At FMR <= 1e-2 (10 impostors may pass) the threshold sits just below
	// 0.099: the genuine 0.05 fails, 1 of 5.
	require.Equal(t, 0.2, m.FNMRAt[1e-2])
	// At 1e-3 only the 0.75 impostor may pass: threshold 0.2, the same.
	require.Equal(t, 0.2, m.FNMRAt[1e-3])
	require.Equal(t, 0.2, m.ThresholdAt[1e-3])
	require.True(t, math.IsNaN(m.FNMRAt[1e-4]), "1000 impostors cannot measure 1e-4")
	// FMR and FNMR cross at 0.2 (threshold 0.08: 200 impostors and the
	// genuine 0.05 on the wrong side).
	require.InDelta(t, 0.2, m.EER, 0.001)
}

// The comparison itself allocates nothing (the on-card budget): only
// Prepare does.
func TestCompareAllocatesNothing(t *testing.T) {
	fg := synth.NewFinger(3, 2)
	a := prepared(t, fg.Impression(synth.ParamsFor(synth.Hard), 1, 0, 2))
	b := prepared(t, fg.Impression(synth.ParamsFor(synth.Hard), 1, 1, 2))
	require.Zero(t, testing.AllocsPerRun(20, func() { biometric.Compare(a, b) }))
}
