// Package svgchart draws small bar charts as SVG on the server: the back
// office's staff pages show them under a policy that allows no script
// from elsewhere and no inline style. A chart has axes with tick labels,
// stacked bars (one colour per series), a legend, and an accessible
// <title> and <desc>; each bar carries its own <title> and its series,
// label and value as data attributes. Pages show the same numbers as a
// table next to it, for screen readers and for copying.
package svgchart

import (
	"errors"
	"fmt"
	"html"
	"math"
	"strings"
)

// Series is one named row of values, one per label.
type Series struct {
	Name   string
	Values []int64
}

// Chart is a stacked bar chart: one bar per label (a day, say), made of
// one segment per series.
type Chart struct {
	ID            string // prefix of the element ids (title, desc); letters, digits and -
	Title, Desc   string
	Labels        []string // the x axis
	Series        []Series
	Width, Height int // the viewBox; 0: 640 × 260
}

// Palette is the series' colours in order (the Okabe–Ito set, told apart
// by colour-blind readers too); beyond its length it repeats.
var Palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

// ErrChart: a chart that cannot be drawn (its error says why).
var ErrChart = errors.New("svgchart: chart not drawable")

// geometry
const (
	marginLeft   = 52
	marginRight  = 12
	marginTop    = 12
	axisBelow    = 28 // x labels
	legendRow    = 18
	legendPerRow = 3
)

// Scale is the y axis: from 0 to Max in steps of Step (a 1, 2 or 5
// times a power of ten, at least 1), Max a multiple of Step at or above
// the largest bar.
func Scale(largest int64) (top, step int64) {
	if largest <= 0 {
		return 1, 1
	}
	raw := float64(largest) / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 1
	for _, m := range []float64{1, 2, 5, 10} {
		if s := int64(math.Ceil(m * mag)); float64(s) >= raw {
			step = max(s, 1)
			break
		}
	}
	return (largest + step - 1) / step * step, step
}

// SVG draws the chart. It fails (ErrChart) when a series has not one
// value per label, a value is negative, or the id is unusable.
func (c Chart) SVG() (string, error) {
	if c.ID == "" || strings.Trim(c.ID, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
		return "", fmt.Errorf("%w: id %q: want letters, digits and -", ErrChart, c.ID)
	}
	totals := make([]int64, len(c.Labels))
	for _, s := range c.Series {
		if len(s.Values) != len(c.Labels) {
			return "", fmt.Errorf("%w: series %q has %d values for %d labels", ErrChart, s.Name, len(s.Values), len(c.Labels))
		}
		for i, v := range s.Values {
			if v < 0 {
				return "", fmt.Errorf("%w: series %q has a negative value at %q", ErrChart, s.Name, c.Labels[i])
			}
			totals[i] += v
		}
	}
	width, height := c.Width, c.Height
	if width <= 0 || height <= 0 {
		width, height = 640, 260
	}
	rows := (len(c.Series) + legendPerRow - 1) / legendPerRow
	plotW := float64(width - marginLeft - marginRight)
	plotH := float64(height - marginTop - axisBelow - rows*legendRow)
	if plotW < 10 || plotH < 10 {
		return "", fmt.Errorf("%w: %d × %d leaves no room for the plot", ErrChart, width, height)
	}
	var largest int64
	for _, t := range totals {
		largest = max(largest, t)
	}
	top, step := Scale(largest)
	y := func(v int64) float64 { return float64(marginTop) + plotH - plotH*float64(v)/float64(top) }
	e := html.EscapeString

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-title %s-desc" data-max="%d">`,
		width, height, c.ID, c.ID, top)
	fmt.Fprintf(&b, `<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`, c.ID, e(c.Title), c.ID, e(c.Desc))
	// y axis: grid lines and tick labels
	b.WriteString(`<g class="axis y" font-size="11" fill="#444">`)
	for v := int64(0); v <= top; v += step {
		fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, marginLeft, float64(marginLeft)+plotW, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%d</text>`, marginLeft-6, y(v), v)
	}
	b.WriteString(`</g>`)
	// bars
	band := plotW / float64(max(len(c.Labels), 1))
	barW := band * 0.7
	b.WriteString(`<g class="bars">`)
	for i, label := range c.Labels {
		x := float64(marginLeft) + float64(i)*band + (band-barW)/2
		var below int64
		for k, s := range c.Series {
			v := s.Values[i]
			if v == 0 {
				continue
			}
			y0, y1 := y(below+v), y(below)
			fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" data-series="%s" data-label="%s" data-value="%d"><title>%s, %s: %d</title></rect>`,
				x, y0, barW, y1-y0, Palette[k%len(Palette)], e(s.Name), e(label), v, e(s.Name), e(label), v)
			below += v
		}
	}
	b.WriteString(`</g>`)
	// x axis and its labels, thinned to at most 16
	base := float64(marginTop) + plotH
	fmt.Fprintf(&b, `<g class="axis x" font-size="11" fill="#444"><line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#444"/>`,
		marginLeft, float64(marginLeft)+plotW, base, base)
	every := (len(c.Labels) + 15) / 16
	for i, label := range c.Labels {
		if i%max(every, 1) != 0 {
			continue
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, float64(marginLeft)+(float64(i)+0.5)*band, base+16, e(label))
	}
	b.WriteString(`</g>`)
	// legend
	b.WriteString(`<g class="legend" font-size="12" fill="#1b1b1b">`)
	colW := plotW / legendPerRow
	for k, s := range c.Series {
		lx := float64(marginLeft) + float64(k%legendPerRow)*colW
		ly := base + float64(axisBelow) + float64(k/legendPerRow)*legendRow
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/><text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>`,
			lx, ly, Palette[k%len(Palette)], lx+14, ly+5, e(s.Name))
	}
	b.WriteString(`</g></svg>`)
	return b.String(), nil
}
