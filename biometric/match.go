package biometric

import (
	"errors"
	"math"
	"math/bits"
)

// The matcher compares two minutiae sets in two stages:
//
//  1. Local structures. Each minutia gets a binary descriptor of its
//     neighbourhood in the spirit of the Minutia Cylinder-Code: a polar
//     grid aligned with the minutia's direction (distance x direction to
//     the neighbour x the neighbour's relative direction), one bit per cell
//     that holds a neighbour; a neighbour near a cell border also sets the
//     adjacent cell. The grid is invariant to rotation and translation, a
//     missing or spurious neighbour flips only its own few bits, and two
//     descriptors compare with AND and popcount.
//  2. Global consolidation. The best local pairs each propose an alignment
//     (rotation and translation) and vote for each other's; the best
//     supported alignments are tried, each starting from the rotation its
//     voters agree on (least squares). Minutiae near the anchor are paired
//     loosely, the alignment is refitted by least squares on those pairs,
//     and all minutiae are paired one to one when close in position and
//     direction; the tolerance grows with the distance from the pairs'
//     centre, which absorbs elastic distortion. The best alignment's pairs,
//     each weighted by how well the two neighbourhoods agree (and less
//     when the types differ), give the score, normalised by the minutiae
//     in the overlapping area, so a partial capture is not punished for
//     what it could not see.
//
// The search ends early once the score is far above the threshold: no
// other alignment could change the decision.
//
// The score is in [0, 1]; Threshold is the decision threshold calibrated
// on the synthetic hard set (docs/fingerprint-matching.md). Everything is
// deterministic: no randomness, stable sorts, fixed iteration order.

// Matcher parameters.
const (
	radBins        = 6
	radStep        = 1.2 // mm: neighbours up to 7.2 mm
	angBins        = 12  // direction to the neighbour, 30° each
	dirBins        = 6   // neighbour's relative direction, 60° each
	descBits       = radBins * angBins * dirBins
	descWords      = (descBits + 63) / 64 // 7: CompareAt unrolls the AND-popcount over them
	softEdge       = 0.1                  // fraction of a bin near its border that also sets the neighbour bin
	minDescBits    = 6
	candidates     = 24  // local pairs kept; at most 32 (a vote mask per candidate)
	looseTol0      = 0.8 // first pass, around the anchor: mm
	looseSlope     = 0.10
	looseMax       = 2.0
	looseAngle     = 0.6  // rad
	pairTol0       = 0.45 // after the refit: mm at the centre of the pairs
	pairTolSlope   = 0.06 // mm per mm from it
	pairTolMax     = 1.2
	angleTol       = 0.40 // rad
	minLoosePairs  = 6
	looseRadius    = 6.0  // mm: the first pass looks only around the anchor
	voteAngle      = 0.35 // rad: candidates agree on the rotation
	voteDist       = 1.5  // mm: and on where they put each other
	consolidations = 8    // alignments consolidated per comparison
	growRadius     = 7.0  // mm: paired neighbours that predict a minutia's distortion
	growTol        = 0.6  // mm: tolerance after that correction
	refits         = 1    // least-squares refits after the first pass
	minOverlap     = 18
	sureMatch      = 0.25 // a score this high (three times Threshold) ends the search early
	minPairs       = 8    // pairs after the refit, before growing: fewer ends the alignment
	typeMismatch   = 0.7  // weight of a pair whose types (ending, bifurcation) differ
)

// Threshold is the decision threshold of Compare's score. It is set from
// the synthetic hard set at a false match rate of 1e-4 (see
// docs/fingerprint-matching.md, regenerate with `kpectl bio bench`).
const Threshold = 0.082

type desc [descWords]uint64

// CompareAt unrolls the descriptor words: keep them at 7.
var _ = [1]struct{}{}[descWords-7]

// The voters of a candidate are a bit mask.
var _ [32 - candidates]struct{}

// Prepared is a template ready for comparison: minutiae in millimetres and
// radians, with local descriptors. Prepare once, compare many times.
type Prepared struct {
	x, y, t                []float32
	typ                    []MinutiaType
	d                      []desc
	bits                   []int32
	grid                   grid
	minX, minY, maxX, maxY float32
	// near[nearStart[j]:nearStart[j+1]]: the minutiae within looseRadius
	// of minutia j (j among them), in index order
	nearStart []int32
	near      []int16
}

// ErrEmpty: a template without minutiae cannot be compared.
var ErrEmpty = errors.New("biometric: template has no minutiae")

// Prepare converts a record's first view for matching.
func Prepare(r *Record) (*Prepared, error) {
	ms := r.Minutiae()
	if len(ms) == 0 {
		return nil, ErrEmpty
	}
	if len(ms) > maxMinutiae {
		ms = ms[:maxMinutiae]
	}
	if r.ResX <= 0 || r.ResY <= 0 {
		return nil, ErrFormat
	}
	n := len(ms)
	p := &Prepared{x: make([]float32, n), y: make([]float32, n), t: make([]float32, n), typ: make([]MinutiaType, n),
		d: make([]desc, n), bits: make([]int32, n)}
	for i, m := range ms {
		p.x[i] = float32(float64(m.X) * 10 / float64(r.ResX))
		p.y[i] = float32(float64(m.Y) * 10 / float64(r.ResY))
		p.t[i] = float32(normDeg(m.Angle) * math.Pi / 180)
		p.typ[i] = m.Type
	}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if j == i {
				continue
			}
			dx, dy := float64(p.x[j]-p.x[i]), float64(p.y[j]-p.y[i])
			r := math.Sqrt(dx*dx+dy*dy) / radStep
			if r >= radBins {
				continue
			}
			dir := math.Atan2(-dy, dx) // y down: counter-clockwise angle
			phi := float64(angDiff(float32(dir), p.t[i]))
			alpha := float64(angDiff(p.t[j], p.t[i]))
			p.d[i].set(r, (phi+math.Pi)/(2*math.Pi)*angBins, (alpha+math.Pi)/(2*math.Pi)*dirBins)
		}
		c := 0
		for _, w := range p.d[i] {
			c += bits.OnesCount64(w)
		}
		p.bits[i] = int32(c)
	}
	p.buildGrid()
	p.nearStart = make([]int32, n+1)
	for j := 0; j < n; j++ {
		for k := 0; k < n; k++ {
			if dx, dy := p.x[k]-p.x[j], p.y[k]-p.y[j]; dx*dx+dy*dy <= looseRadius*looseRadius {
				p.near = append(p.near, int16(k))
			}
		}
		p.nearStart[j+1] = int32(len(p.near))
	}
	return p, nil
}

// set marks the cell of (r, a, d), given in bin units, and the adjacent
// cell in each dimension whose border is within softEdge. Radius does not
// wrap; the two angles do.
func (ds *desc) set(r, a, d float64) {
	ri, ai, di := int(r), int(a)%angBins, int(d)%dirBins
	rs := []int{ri}
	if f := r - float64(ri); f < softEdge && ri > 0 {
		rs = append(rs, ri-1)
	} else if f > 1-softEdge && ri < radBins-1 {
		rs = append(rs, ri+1)
	}
	as := []int{ai}
	if f := a - math.Floor(a); f < softEdge {
		as = append(as, (ai+angBins-1)%angBins)
	} else if f > 1-softEdge {
		as = append(as, (ai+1)%angBins)
	}
	dsx := []int{di}
	if f := d - math.Floor(d); f < softEdge {
		dsx = append(dsx, (di+dirBins-1)%dirBins)
	} else if f > 1-softEdge {
		dsx = append(dsx, (di+1)%dirBins)
	}
	for _, x := range rs {
		for _, y := range as {
			for _, z := range dsx {
				b := (x*angBins+y)*dirBins + z
				ds[b/64] |= 1 << (b % 64)
			}
		}
	}
}

// Len is the number of minutiae.
func (p *Prepared) Len() int { return len(p.x) }

// Wipe overwrites the prepared template.
func (p *Prepared) Wipe() {
	clear(p.x)
	clear(p.y)
	clear(p.t)
	clear(p.d)
	clear(p.near)
}

// angDiff returns a-b wrapped to (-π, π].
func angDiff(a, b float32) float32 {
	d := a - b
	for d > math.Pi {
		d -= 2 * math.Pi
	}
	for d <= -math.Pi {
		d += 2 * math.Pi
	}
	return d
}

// descSim is 2|A∧B| / (|A|+|B|) of two descriptors.
func descSim(ad *desc, ab int32, bd *desc, bb int32) float32 {
	if ab+bb == 0 {
		return 0
	}
	common := bits.OnesCount64(ad[0]&bd[0]) + bits.OnesCount64(ad[1]&bd[1]) + bits.OnesCount64(ad[2]&bd[2]) +
		bits.OnesCount64(ad[3]&bd[3]) + bits.OnesCount64(ad[4]&bd[4]) + bits.OnesCount64(ad[5]&bd[5]) +
		bits.OnesCount64(ad[6]&bd[6])
	return 2 * float32(common) / float32(ab+bb)
}

func abs32(a float32) float32 {
	if a < 0 {
		return -a
	}
	return a
}

// Result is a comparison's outcome. It holds no minutiae.
type Result struct {
	Score    float64 // 0..1
	Match    bool    // Score >= threshold
	Paired   int     // minutiae paired under the best alignment
	OverlapA int     // minutiae of A in the common area
	OverlapB int
}

// Compare compares two prepared templates with the default threshold.
func Compare(a, b *Prepared) Result { return CompareAt(a, b, Threshold) }

type lpair struct {
	i, j int
	s    float32
}

// CompareAt compares with the given threshold. It is safe for concurrent
// use on shared Prepared templates.
func CompareAt(a, b *Prepared, threshold float64) Result {
	na, nbn := a.Len(), b.Len()
	// Stage 1: the best local pairs (a fixed-size top list, no sort of
	// all pairs).
	var top [candidates]lpair
	nTop := 0
	bd, bb := b.d[:nbn], b.bits[:nbn]
	for i := 0; i < na; i++ {
		ab := a.bits[i]
		if ab < minDescBits {
			continue
		}
		ad := &a.d[i]
		for j := range bd {
			// s = 2|A∧B| / (|A|+|B|) can only beat the current last
			// candidate if min/max of the bit counts allows it.
			sum := ab + bb[j]
			if bb[j] < minDescBits || (nTop == candidates && 2*float32(min(ab, bb[j])) <= top[nTop-1].s*float32(sum)) {
				continue
			}
			d := &bd[j]
			common := bits.OnesCount64(ad[0]&d[0]) + bits.OnesCount64(ad[1]&d[1]) + bits.OnesCount64(ad[2]&d[2]) +
				bits.OnesCount64(ad[3]&d[3]) + bits.OnesCount64(ad[4]&d[4]) + bits.OnesCount64(ad[5]&d[5]) +
				bits.OnesCount64(ad[6]&d[6])
			if common == 0 || (nTop == candidates && 2*float32(common) <= top[nTop-1].s*float32(sum)) {
				continue
			}
			s := 2 * float32(common) / float32(sum)
			k := min(nTop, candidates-1)
			for k > 0 && top[k-1].s < s {
				if k < candidates {
					top[k] = top[k-1]
				}
				k--
			}
			top[k] = lpair{i, j, s}
			if nTop < candidates {
				nTop++
			}
		}
	}
	// The candidates vote for their alignments: pairs of a genuine
	// comparison agree on rotation and translation, chance pairs of an
	// impostor scatter. Only the best supported alignments are
	// consolidated (the expensive stage).
	var tr [candidates]transform
	var votes [candidates]float32
	var voters [candidates]uint32 // k voted for c: bit k of voters[c]
	for c := 0; c < nTop; c++ {
		rot := angDiff(a.t[top[c].i], b.t[top[c].j])
		sin, cos := math.Sincos(float64(rot))
		tr[c] = transform{c: float32(cos), s: float32(sin), rot: rot, ox: b.x[top[c].j], oy: b.y[top[c].j], tx: a.x[top[c].i], ty: a.y[top[c].i]}
	}
	for c := 0; c < nTop; c++ {
		for k := 0; k < nTop; k++ {
			// |angDiff(rc, rk)| > voteAngle without its loops: both
			// rotations lie in (-π, π], so |rc-rk| < 2π and the wrapped
			// difference is |rc-rk| or 2π - |rc-rk|.
			if d := abs32(tr[c].rot - tr[k].rot); d > voteAngle && 2*math.Pi-d > voteAngle {
				continue
			}
			// where c's alignment puts k's b minutia, against k's a minutia
			x, y := tr[c].apply(b.x[top[k].j], b.y[top[k].j])
			dx, dy := x-a.x[top[k].i], y-a.y[top[k].i]
			if dx*dx+dy*dy <= voteDist*voteDist {
				votes[c] += top[k].s
				voters[c] |= 1 << k
			}
		}
	}
	best := Result{}
	var done [candidates]bool
	for round := 0; round < consolidations; round++ {
		bi := -1
		for c := 0; c < nTop; c++ {
			if !done[c] && (bi < 0 || votes[c] > votes[bi]) {
				bi = c
			}
		}
		if bi < 0 {
			break
		}
		done[bi] = true
		// The alignment starts from the candidates that agree with it: their
		// positions fix the rotation better than one minutia's direction.
		var agree [candidates]cp
		na := 0
		for k := 0; k < nTop; k++ {
			if voters[bi]&(1<<k) != 0 {
				agree[na] = cp{int16(top[k].i), int16(top[k].j), 0}
				na++
			}
		}
		r := consolidate(a, b, top[bi], agree[:na])
		if r.Score > best.Score {
			best = r
		}
		if best.Score >= max(sureMatch, threshold) {
			break // no other alignment can change the decision
		}
	}
	best.Match = best.Score >= threshold
	return best
}

type cp struct {
	i, j int16
	e    float32
}

// transform maps b's coordinates onto a's: x' = c·dx + s·dy + tx,
// y' = −s·dx + c·dy + ty with (dx, dy) relative to (ox, oy); in image
// coordinates (y down) that is a counter-clockwise turn by rot.
type transform struct {
	c, s, rot      float32
	ox, oy, tx, ty float32
}

func (t *transform) apply(x, y float32) (float32, float32) {
	dx, dy := x-t.ox, y-t.oy
	return t.c*dx + t.s*dy + t.tx, -t.s*dx + t.c*dy + t.ty
}

// pairUp pairs b's minutiae with a's under t, one to one, best first.
// A pair is accepted within tol0 + slope·(distance from (cx, cy)) (capped
// at tolMax) and angTol. It returns the pairs used, sorted by error. With
// anchor >= 0 only b's minutiae within looseRadius of b's minutia anchor
// are paired (b.near lists them); tx and ty are left unset for the others.
func pairUp(a, b *Prepared, t *transform, cx, cy, tol0, slope, tolMax, angTol float32, anchor int, pairs *[512]cp, tx, ty *[maxMinutiae]float32) []cp {
	nbn := min(b.Len(), maxMinutiae)
	var near []int16
	if anchor >= 0 {
		near = b.near[b.nearStart[anchor]:b.nearStart[anchor+1]]
		nbn = len(near)
	}
	np := 0
	g := &a.grid
	for q := 0; q < nbn; q++ {
		j := q
		if near != nil {
			j = int(near[q])
		}
		x, y := t.apply(b.x[j], b.y[j])
		tx[j], ty[j] = x, y
		// No partner of j can lie farther than tolJ: a's minutiae within
		// tolMax of (x, y) are at most dc + tolMax from the centre.
		ux, uy := x-cx, y-cy
		tolJ := min(tol0+slope*(float32(math.Sqrt(float64(ux*ux+uy*uy)))+tolMax), tolMax)
		gx0, gx1 := int((x-tolJ-g.x0)/gridCell), int((x+tolJ-g.x0)/gridCell)
		gy0, gy1 := int((y-tolJ-g.y0)/gridCell), int((y+tolJ-g.y0)/gridCell)
		if x+tolJ < g.x0 || y+tolJ < g.y0 || gx0 >= g.nx || gy0 >= g.ny {
			continue
		}
		bt := b.t[j] + t.rot
		gx0, gx1 = max(gx0, 0), min(gx1, g.nx-1)
		for gy := max(gy0, 0); gy <= min(gy1, g.ny-1); gy++ {
			// the cells gx0..gx1 of a row are contiguous in idx: one span
			row := gy * g.nx
			for k := g.start[row+gx0]; k < g.start[row+gx1+1]; k++ {
				i := int(g.idx[k])
				ex, ey := x-a.x[i], y-a.y[i]
				d2 := ex*ex + ey*ey
				if d2 > tolJ*tolJ {
					continue
				}
				rx, ry := a.x[i]-cx, a.y[i]-cy
				tol := min(tol0+slope*float32(math.Sqrt(float64(rx*rx+ry*ry))), tolMax)
				if d2 > tol*tol {
					continue
				}
				da := abs32(angDiff(a.t[i], bt))
				if da > angTol || np == len(pairs) {
					continue
				}
				e := float32(math.Sqrt(float64(d2)))/tol + da/angTol
				q := np
				for q > 0 && pairs[q-1].e > e {
					pairs[q] = pairs[q-1]
					q--
				}
				pairs[q] = cp{int16(i), int16(j), e}
				np++
			}
		}
	}
	var usedA, usedB [maxMinutiae]bool
	out := 0
	for _, q := range pairs[:np] {
		if usedA[q.i] || usedB[q.j] {
			continue
		}
		usedA[q.i], usedB[q.j] = true, true
		pairs[out] = q
		out++
	}
	return pairs[:out]
}

// fit is the least-squares rigid transform (Procrustes) taking the b side
// of the pairs onto the a side.
func fit(a, b *Prepared, ps []cp) transform {
	var ax, ay, bx, by float32
	for _, q := range ps {
		ax += a.x[q.i]
		ay += a.y[q.i]
		bx += b.x[q.j]
		by += b.y[q.j]
	}
	n := float32(len(ps))
	ax, ay, bx, by = ax/n, ay/n, bx/n, by/n
	var sc, ss float32
	for _, q := range ps {
		px, py := b.x[q.j]-bx, b.y[q.j]-by
		qx, qy := a.x[q.i]-ax, a.y[q.i]-ay
		sc += qx*px + qy*py
		ss += qx*py - qy*px
	}
	rot := float32(math.Atan2(float64(ss), float64(sc)))
	sin, cos := math.Sincos(float64(rot))
	return transform{c: float32(cos), s: float32(sin), rot: rot, ox: bx, oy: by, tx: ax, ty: ay}
}

// consolidate aligns b onto a from one local pair, pairs minutiae near the
// anchor with a loose tolerance, refits the alignment on those pairs
// (least squares), and pairs everything again with the tolerance that
// absorbs elastic distortion. agree holds the local pairs that voted for
// p's alignment (p among them): with two or more, their least-squares
// rotation replaces the one from p's directions, which carry the angle
// noise of two minutiae.
func consolidate(a, b *Prepared, p lpair, agree []cp) Result {
	rot := angDiff(a.t[p.i], b.t[p.j])
	sin, cos := math.Sincos(float64(rot))
	t := transform{c: float32(cos), s: float32(sin), rot: rot, ox: b.x[p.j], oy: b.y[p.j], tx: a.x[p.i], ty: a.y[p.i]}
	if len(agree) >= 2 {
		f := fit(a, b, agree)
		// the same rotation, expressed around the anchor
		t.c, t.s, t.rot = f.c, f.s, f.rot
		t.tx, t.ty = f.apply(t.ox, t.oy)
	}
	var pairs [512]cp
	var tx, ty [maxMinutiae]float32
	ps := pairUp(a, b, &t, a.x[p.i], a.y[p.i], looseTol0, looseSlope, looseMax, looseAngle, p.j, &pairs, &tx, &ty)
	if len(ps) < minLoosePairs {
		return Result{} // no support around the anchor: a chance pair
	}
	{
		t = fit(a, b, ps)
		// the refit's rotation replaces the anchor's noisy direction
		ps = pairUp(a, b, &t, t.tx, t.ty, pairTol0, pairTolSlope, pairTolMax, angleTol, -1, &pairs, &tx, &ty)
		if refits > 1 && len(ps) >= 3 {
			// once more on the larger, better set of pairs
			t = fit(a, b, ps)
			ps = pairUp(a, b, &t, t.tx, t.ty, pairTol0, pairTolSlope, pairTolMax, angleTol, -1, &pairs, &tx, &ty)
		}
	}
	if len(ps) < minPairs {
		return Result{} // too few pairs over the whole overlap
	}
	ps = grow(a, b, ps, t.rot, &pairs, &tx, &ty)
	m := len(ps)
	// Each pair counts by how well its two neighbourhoods agree: chance
	// pairs of an impostor rarely share their local structure.
	// A pair of an ending and a bifurcation counts less (types flip, but
	// less often than chance would have them differ).
	var quality float32
	for _, q := range ps {
		w := (1 - q.e/4) * descSim(&a.d[q.i], a.bits[q.i], &b.d[q.j], b.bits[q.j])
		if ta, tb := a.typ[q.i], b.typ[q.j]; ta != tb && ta != TypeOther && tb != TypeOther {
			w *= typeMismatch
		}
		quality += w
	}
	nbn := min(b.Len(), maxMinutiae)
	minX, minY, maxX, maxY := float32(math.Inf(1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Inf(-1))
	for j := 0; j < nbn; j++ {
		minX, maxX = min(minX, tx[j]), max(maxX, tx[j])
		minY, maxY = min(minY, ty[j]), max(maxY, ty[j])
	}
	// Minutiae in the common area: the intersection of the two bounding
	// boxes (after alignment), shrunk slightly.
	ix0, iy0 := max(minX, a.minX)+0.5, max(minY, a.minY)+0.5
	ix1, iy1 := min(maxX, a.maxX)-0.5, min(maxY, a.maxY)-0.5
	oa, ob := 0, 0
	for i := range a.x {
		if a.x[i] >= ix0 && a.x[i] <= ix1 && a.y[i] >= iy0 && a.y[i] <= iy1 {
			oa++
		}
	}
	for j := 0; j < nbn; j++ {
		if tx[j] >= ix0 && tx[j] <= ix1 && ty[j] >= iy0 && ty[j] <= iy1 {
			ob++
		}
	}
	fa, fb := float64(max(oa, minOverlap, m)), float64(max(ob, minOverlap, m))
	score := float64(quality) * float64(m) / (fa * fb)
	return Result{Score: math.Min(score, 1), Paired: m, OverlapA: oa, OverlapB: ob}
}

// grow follows elastic distortion: a rigid alignment leaves residuals
// that vary smoothly over a genuine finger, so each unpaired minutia of b
// is moved by the mean residual of its nearest paired neighbours and paired
// with a tight tolerance. An impostor's residuals are noise, and so are
// its predictions. ps lives in pairs; the result does too.
func grow(a, b *Prepared, ps []cp, rot float32, pairs *[512]cp, tx, ty *[maxMinutiae]float32) []cp {
	var usedA, usedB [maxMinutiae]bool
	for _, q := range ps {
		usedA[q.i], usedB[q.j] = true, true
	}
	n0 := len(ps)
	g := &a.grid
	nbn := min(b.Len(), maxMinutiae)
	for j := 0; j < nbn; j++ {
		if usedB[j] {
			continue
		}
		// the 3 nearest paired minutiae of b (in aligned coordinates)
		var bestD [3]float32
		var bestK [3]int
		nb := 0
		for k := 0; k < n0; k++ {
			q := ps[k]
			dx, dy := tx[q.j]-tx[j], ty[q.j]-ty[j]
			d := dx*dx + dy*dy
			if d > growRadius*growRadius {
				continue
			}
			pos := min(nb, 3)
			for pos > 0 && bestD[pos-1] > d {
				if pos < 3 {
					bestD[pos], bestK[pos] = bestD[pos-1], bestK[pos-1]
				}
				pos--
			}
			if pos < 3 {
				bestD[pos], bestK[pos] = d, k
				if nb < 3 {
					nb++
				}
			}
		}
		if nb < 2 {
			continue
		}
		var rx, ry float32
		for k := 0; k < nb; k++ {
			q := ps[bestK[k]]
			rx += a.x[q.i] - tx[q.j]
			ry += a.y[q.i] - ty[q.j]
		}
		x, y := tx[j]+rx/float32(nb), ty[j]+ry/float32(nb)
		gcx, gcy := int((x-g.x0)/gridCell), int((y-g.y0)/gridCell)
		best, bi := float32(math.MaxFloat32), -1
		gx0, gx1 := max(gcx-1, 0), min(gcx+1, g.nx-1)
		for gy := max(gcy-1, 0); gx0 <= gx1 && gy <= min(gcy+1, g.ny-1); gy++ {
			row := gy * g.nx
			for k := g.start[row+gx0]; k < g.start[row+gx1+1]; k++ {
				i := int(g.idx[k])
				if usedA[i] {
					continue
				}
				ex, ey := x-a.x[i], y-a.y[i]
				d2 := ex*ex + ey*ey
				if d2 > growTol*growTol {
					continue
				}
				da := abs32(angDiff(a.t[i], b.t[j]+rot))
				if da > angleTol {
					continue
				}
				e := float32(math.Sqrt(float64(d2)))/growTol + da/angleTol
				if e < best {
					best, bi = e, i
				}
			}
		}
		if bi >= 0 && len(ps) < len(pairs) {
			usedA[bi], usedB[j] = true, true
			ps = append(ps, cp{int16(bi), int16(j), best + 1})
		}
	}
	return ps
}

// gridCell is the cell size of a template's grid: the largest pairing
// tolerance, so a partner is always in the 3 x 3 cells around.
const gridCell = 1.2

type grid struct {
	x0, y0 float32
	nx, ny int
	start  []int32 // cell c holds idx[start[c]:start[c+1]]
	idx    []int16
}

func (p *Prepared) buildGrid() {
	p.minX, p.minY = float32(math.Inf(1)), float32(math.Inf(1))
	p.maxX, p.maxY = float32(math.Inf(-1)), float32(math.Inf(-1))
	for i := range p.x {
		p.minX, p.maxX = min(p.minX, p.x[i]), max(p.maxX, p.x[i])
		p.minY, p.maxY = min(p.minY, p.y[i]), max(p.maxY, p.y[i])
	}
	g := &p.grid
	g.x0, g.y0 = p.minX, p.minY
	g.nx = int((p.maxX-p.minX)/gridCell) + 1
	g.ny = int((p.maxY-p.minY)/gridCell) + 1
	cells := make([]int, len(p.x))
	g.start = make([]int32, g.nx*g.ny+1)
	for i := range p.x {
		cells[i] = int((p.y[i]-g.y0)/gridCell)*g.nx + int((p.x[i]-g.x0)/gridCell)
		g.start[cells[i]+1]++
	}
	for c := 1; c < len(g.start); c++ {
		g.start[c] += g.start[c-1]
	}
	g.idx = make([]int16, len(p.x))
	fill := append([]int32(nil), g.start...)
	for i := range p.x { // in index order: deterministic
		g.idx[fill[cells[i]]] = int16(i)
		fill[cells[i]]++
	}
}
