// Package synth generates synthetic fingers and their impressions as
// minutiae templates, for the lab sensor and the matcher benchmark. Nothing
// here comes from a person. The model is documented in
// docs/fingerprint-synthesis.md:
//
//   - a master finger is an orientation field from the zero-pole model
//     (cores and deltas placed per pattern class: arch, tented arch, left
//     and right loop, whorl) over an elliptic fingertip, and minutiae
//     spread by Poisson-disc sampling whose directions follow the field
//     (ridge endings and bifurcations point along the ridges, either way);
//   - an impression places the finger under a capture window with a
//     rotation and a translation, deforms it elastically (a smooth
//     displacement field plus a small pressure stretch), adds position and
//     angle noise, drops minutiae, adds spurious ones, flips types, and
//     keeps what falls inside the window (a partial capture).
//
// Everything is deterministic for a seed.
package synth

import (
	"math"
	"math/rand/v2"

	"kpe-agent/biometric"
)

// Level is a difficulty level.
type Level int

// Levels.
const (
	Easy Level = iota + 1
	Hard
)

// Params of impressions for a level.
type Params struct {
	RotationSD     float64 // degrees
	ShiftSD        float64 // mm, finger against the window
	ElasticAmp     float64 // mm, peak displacement of each bump
	StretchSD      float64 // relative, pressure stretch
	PositionSD     float64 // mm
	AngleSD        float64 // degrees
	DropRate       float64 // fraction of minutiae missed
	SpuriousRate   float64 // spurious minutiae, fraction of the true count
	TypeFlipRate   float64
	QualityMin     int
	QualityMax     int
	WindowW        float64 // mm, capture window
	WindowH        float64
	ResolutionPxCm int
}

// ParamsFor returns the impression parameters of a level.
func ParamsFor(l Level) Params {
	p := Params{WindowW: 13.0, WindowH: 18.0, ResolutionPxCm: 197}
	if l == Hard {
		p.RotationSD, p.ShiftSD, p.ElasticAmp, p.StretchSD = 12, 1.6, 0.5, 0.03
		p.PositionSD, p.AngleSD = 0.12, 7
		p.DropRate, p.SpuriousRate, p.TypeFlipRate = 0.18, 0.14, 0.20
		p.QualityMin, p.QualityMax = 20, 85
		return p
	}
	p.RotationSD, p.ShiftSD, p.ElasticAmp, p.StretchSD = 8, 1.0, 0.3, 0.02
	p.PositionSD, p.AngleSD = 0.08, 5
	p.DropRate, p.SpuriousRate, p.TypeFlipRate = 0.10, 0.08, 0.10
	p.QualityMin, p.QualityMax = 40, 95
	return p
}

// Finger is a master finger: the orientation field and its minutiae, in mm
// with the origin at the fingertip centre, y pointing down.
type Finger struct {
	Class    string
	Cores    []complex128
	Deltas   []complex128
	Theta0   float64
	Minutiae []Point
	HalfW    float64 // fingertip ellipse half axes
	HalfH    float64
}

// Point is a minutia in mm and radians.
type Point struct {
	X, Y, Theta float64
	Type        biometric.MinutiaType
}

var classes = []string{"left-loop", "right-loop", "whorl", "arch", "tented-arch"}

// NewFinger makes the master finger for id under seed.
func NewFinger(seed uint64, id int) *Finger {
	rng := rand.New(rand.NewPCG(seed, uint64(id)*0x9E3779B97F4A7C15+1))
	f := &Finger{HalfW: 8 + rng.Float64(), HalfH: 11 + 1.5*rng.Float64(), Theta0: (rng.Float64() - 0.5) * 0.3}
	// Class frequencies roughly as in the population: loops dominate.
	u := rng.Float64()
	switch {
	case u < 0.33:
		f.Class = classes[0]
	case u < 0.65:
		f.Class = classes[1]
	case u < 0.93:
		f.Class = classes[2]
	case u < 0.97:
		f.Class = classes[3]
	default:
		f.Class = classes[4]
	}
	j := func(s float64) float64 { return (rng.Float64() - 0.5) * 2 * s }
	switch f.Class {
	case "left-loop":
		f.Cores = []complex128{complex(-1+j(1.5), -2+j(1.5))}
		f.Deltas = []complex128{complex(5+j(1.5), 5+j(1.5))}
	case "right-loop":
		f.Cores = []complex128{complex(1+j(1.5), -2+j(1.5))}
		f.Deltas = []complex128{complex(-5+j(1.5), 5+j(1.5))}
	case "whorl":
		f.Cores = []complex128{complex(j(1), -2.5+j(1)), complex(j(1), 0.5+j(1))}
		f.Deltas = []complex128{complex(-6+j(1.5), 6+j(1.5)), complex(6+j(1.5), 6+j(1.5))}
	case "tented-arch":
		f.Cores = []complex128{complex(j(1), j(1.5))}
		f.Deltas = []complex128{complex(j(1), 3+j(1))}
	}
	// Poisson-disc minutiae over the ellipse (dart throwing).
	// Real fingertips carry about 0.2-0.25 minutiae per mm²; a 13 x 18 mm
	// plain capture then holds 40-55 of them.
	const minDist = 1.3
	target := int(math.Pi * f.HalfW * f.HalfH * (0.20 + 0.06*rng.Float64()))
	for tries := 0; len(f.Minutiae) < target && tries < 30*target; tries++ {
		x, y := j(f.HalfW), j(f.HalfH)
		if (x*x)/(f.HalfW*f.HalfW)+(y*y)/(f.HalfH*f.HalfH) > 1 {
			continue
		}
		ok := true
		for _, m := range f.Minutiae {
			if (m.X-x)*(m.X-x)+(m.Y-y)*(m.Y-y) < minDist*minDist {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		th := f.Orientation(x, y)
		if rng.IntN(2) == 1 {
			th += math.Pi
		}
		t := biometric.TypeEnding
		if rng.Float64() < 0.45 {
			t = biometric.TypeBifurcation
		}
		f.Minutiae = append(f.Minutiae, Point{X: x, Y: y, Theta: wrap(th), Type: t})
	}
	return f
}

// Orientation is the ridge orientation at (x, y) in radians, in [0, π), by
// the zero-pole model: θ = θ0 + ½ (Σ arg(z − core) − Σ arg(z − delta)).
// An arch (no singular points) gets a smooth curved field instead.
func (f *Finger) Orientation(x, y float64) float64 {
	z := complex(x, -y) // mathematical orientation: y up
	th := f.Theta0
	if len(f.Cores) == 0 && len(f.Deltas) == 0 {
		th += 0.5 * math.Atan(-0.25*x*math.Exp(-(y+3)*(y+3)/60)) // arch: ridges bulge up
	}
	for _, c := range f.Cores {
		d := z - c
		th += 0.5 * math.Atan2(imag(d), real(d))
	}
	for _, d := range f.Deltas {
		e := z - d
		th -= 0.5 * math.Atan2(imag(e), real(e))
	}
	return math.Mod(math.Mod(th, math.Pi)+math.Pi, math.Pi)
}

func wrap(a float64) float64 {
	a = math.Mod(a, 2*math.Pi)
	if a < 0 {
		a += 2 * math.Pi
	}
	return a
}

// Impression renders impression n of finger f as an ISO/IEC 19794-2
// record (500 dpi, one view). Finger position code is finger.
func (f *Finger) Impression(p Params, seed uint64, n int, fingerCode int) *biometric.Record {
	r, _ := f.ImpressionTruth(p, seed, n, fingerCode)
	return r
}

// ImpressionTruth is Impression that also says, for each minutia of the
// record, which master minutia it shows (-1: spurious). The benchmark
// tests use it to measure how many true correspondences two impressions
// share, the ceiling for any matcher.
func (f *Finger) ImpressionTruth(p Params, seed uint64, n int, fingerCode int) (*biometric.Record, []int) {
	rng := rand.New(rand.NewPCG(seed^0xA5A5A5A5, uint64(n)+1))
	g := func() float64 { return rng.NormFloat64() }
	rot := g() * p.RotationSD * math.Pi / 180
	// The window centre in finger coordinates: near the core area.
	cx, cy := g()*p.ShiftSD, -1+g()*p.ShiftSD
	scale := 1 + g()*p.StretchSD
	type bump struct{ x, y, dx, dy float64 }
	var bumps []bump
	for k := 0; k < 3; k++ {
		bumps = append(bumps, bump{x: g() * 5, y: g() * 6, dx: g() * p.ElasticAmp, dy: g() * p.ElasticAmp})
	}
	const s2 = 2 * 5.0 * 5.0
	px := float64(p.ResolutionPxCm) / 10 // px per mm
	sin, cos := math.Sincos(rot)
	var out []biometric.Minutia
	var truth []int
	src := -1
	add := func(x, y, th float64, t biometric.MinutiaType, spurious bool) {
		// elastic displacement in finger coordinates
		ex, ey := x, y
		if !spurious {
			for _, b := range bumps {
				w := math.Exp(-((x-b.x)*(x-b.x) + (y-b.y)*(y-b.y)) / s2)
				ex += w * b.dx
				ey += w * b.dy
			}
			ex, ey = cx+(ex-cx)*scale, cy+(ey-cy)*scale
		}
		// into the window frame: rotate around the window centre
		wx := cos*(ex-cx) - sin*(ey-cy) + p.WindowW/2
		wy := sin*(ex-cx) + cos*(ey-cy) + p.WindowH/2
		wx += g() * p.PositionSD
		wy += g() * p.PositionSD
		if wx < 0.3 || wy < 0.3 || wx > p.WindowW-0.3 || wy > p.WindowH-0.3 {
			return
		}
		// image y points down: a rotation by rot turns angles by -rot
		ang := th - rot + g()*p.AngleSD*math.Pi/180
		if rng.Float64() < p.TypeFlipRate {
			t = 3 - t // ending <-> bifurcation
		}
		q := p.QualityMin + rng.IntN(p.QualityMax-p.QualityMin+1)
		out = append(out, biometric.Minutia{Type: t, X: int(math.Round(wx * px)), Y: int(math.Round(wy * px)),
			Angle: wrap(ang) * 180 / math.Pi, Quality: q})
		truth = append(truth, src)
	}
	for k, m := range f.Minutiae {
		if rng.Float64() < p.DropRate {
			continue
		}
		src = k
		add(m.X, m.Y, m.Theta, m.Type, false)
	}
	src = -1
	spurious := int(math.Round(p.SpuriousRate * float64(len(f.Minutiae)) * (p.WindowW * p.WindowH) / (math.Pi * f.HalfW * f.HalfH)))
	for k := 0; k < spurious; k++ {
		// in window coordinates, mapped back to finger coordinates so the
		// same placement code applies
		wx, wy := rng.Float64()*p.WindowW-p.WindowW/2, rng.Float64()*p.WindowH-p.WindowH/2
		x := cos*wx + sin*wy + cx
		y := -sin*wx + cos*wy + cy
		th := rng.Float64() * 2 * math.Pi
		if rng.Float64() < 0.5 {
			th = f.Orientation(x, y) + float64(rng.IntN(2))*math.Pi
		}
		add(x, y, th, biometric.MinutiaType(1+rng.IntN(2)), true)
	}
	// Shuffle so that no order leaks which minutiae are spurious.
	rng.Shuffle(len(out), func(i, k int) {
		out[i], out[k] = out[k], out[i]
		truth[i], truth[k] = truth[k], truth[i]
	})
	if len(out) > 255 {
		out, truth = out[:255], truth[:255]
	}
	q := 0
	for _, m := range out {
		q += m.Quality
	}
	if len(out) > 0 {
		q /= len(out)
	}
	return &biometric.Record{Format: biometric.FormatISO, Width: int(p.WindowW * px), Height: int(p.WindowH * px),
		ResX: p.ResolutionPxCm, ResY: p.ResolutionPxCm,
		Views: []biometric.View{{Finger: fingerCode, Quality: q, Minutiae: out}}}, truth
}
