package biometric

import (
	"math"
	"sort"
)

// Metrics are the accuracy figures of a score set.
type Metrics struct {
	Genuine, Impostor int
	EER               float64 // equal error rate
	EERThreshold      float64
	// FNMRAt maps a target false match rate to the false non-match rate at
	// the lowest threshold whose FMR does not exceed it, and ThresholdAt
	// to that threshold. With fewer than 1/FMR impostor scores the figure
	// is not measurable and is reported as NaN.
	FNMRAt      map[float64]float64
	ThresholdAt map[float64]float64
}

// TargetFMRs are the operating points reported by the benchmark.
var TargetFMRs = []float64{1e-2, 1e-3, 1e-4}

// Evaluate computes EER and FNMR at the target FMRs from genuine and
// impostor scores (higher = more similar; a score >= threshold matches).
func Evaluate(genuine, impostor []float64) Metrics {
	g := append([]float64(nil), genuine...)
	im := append([]float64(nil), impostor...)
	sort.Float64s(g)
	sort.Float64s(im)
	m := Metrics{Genuine: len(g), Impostor: len(im), FNMRAt: map[float64]float64{}, ThresholdAt: map[float64]float64{}}
	if len(g) == 0 || len(im) == 0 {
		m.EER = math.NaN()
		return m
	}
	// fmr(t): impostors >= t; fnmr(t): genuine < t.
	fmr := func(t float64) float64 { return float64(len(im)-sort.SearchFloat64s(im, t)) / float64(len(im)) }
	fnmr := func(t float64) float64 { return float64(sort.SearchFloat64s(g, t)) / float64(len(g)) }
	// Candidate thresholds: every distinct score, plus just above the top.
	ts := append(append([]float64(nil), g...), im...)
	sort.Float64s(ts)
	ts = append(ts, math.Nextafter(ts[len(ts)-1], math.Inf(1)))
	best := math.Inf(1)
	for _, t := range ts {
		a, b := fmr(t), fnmr(t)
		if d := math.Abs(a - b); d < best {
			best, m.EER, m.EERThreshold = d, (a+b)/2, t
		}
	}
	for _, target := range TargetFMRs {
		if float64(len(im))*target < 1 {
			m.FNMRAt[target], m.ThresholdAt[target] = math.NaN(), math.NaN()
			continue
		}
		// lowest threshold with fmr <= target
		i := sort.Search(len(ts), func(k int) bool { return fmr(ts[k]) <= target })
		m.FNMRAt[target], m.ThresholdAt[target] = fnmr(ts[i]), ts[i]
	}
	return m
}
