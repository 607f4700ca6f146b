package svgchart_test

import (
	"encoding/xml"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/svgchart"
)

// node is a parsed SVG element.
type node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []node     `xml:",any"`
}

func (n node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n node) walk(f func(node)) {
	f(n)
	for _, c := range n.Children {
		c.walk(f)
	}
}

// parse checks the SVG is well-formed XML and returns its root.
func parse(t *testing.T, svg string) node {
	t.Helper()
	var root node
	require.NoError(t, xml.Unmarshal([]byte(svg), &root), svg)
	assert.Equal(t, "svg", root.XMLName.Local)
	return root
}

func bars(root node) []node {
	var out []node
	root.walk(func(n node) {
		if n.XMLName.Local == "rect" && n.attr("class") == "bar" {
			out = append(out, n)
		}
	})
	return out
}

func num(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return f
}

func TestScale(t *testing.T) {
	for _, c := range []struct{ largest, max, step int64 }{
		{0, 1, 1}, {1, 1, 1}, {3, 3, 1}, {4, 4, 1}, {5, 6, 2}, {9, 10, 5}, {10, 10, 5}, {37, 40, 10}, {100, 100, 50}, {999, 1000, 500}, {12345, 15000, 5000},
	} {
		m, s := svgchart.Scale(c.largest)
		assert.Equal(t, c.max, m, "max for %d", c.largest)
		assert.Equal(t, c.step, s, "step for %d", c.largest)
		assert.GreaterOrEqual(t, m, c.largest)
		assert.Zero(t, m%s)
	}
}

// Two series stacked over three days: one bar segment per non-zero value,
// heights proportional to the values, stacked without overlap, each with
// its title; the legend names each series; the title and desc label the
// chart.
func TestStackedSeries(t *testing.T) {
	svg, err := svgchart.Chart{ID: "by-service", Title: "Per day", Desc: "Authentications per day",
		Labels: []string{"01-11", "02-11", "03-11"},
		Series: []svgchart.Series{{Name: "askes", Values: []int64{2, 0, 4}}, {Name: "taspen", Values: []int64{1, 3, 4}}}}.SVG()
	require.NoError(t, err)
	root := parse(t, svg)
	assert.Equal(t, "by-service-title by-service-desc", root.attr("aria-labelledby"))
	assert.Equal(t, "img", root.attr("role"))
	assert.Equal(t, "8", root.attr("data-max"))
	assert.Contains(t, svg, `<title id="by-service-title">Per day</title>`)
	assert.Contains(t, svg, `<desc id="by-service-desc">Authentications per day</desc>`)
	bs := bars(root)
	require.Len(t, bs, 5) // askes on 02-11 is zero
	unit := -1.0
	tops := map[string]float64{}
	for _, b := range bs {
		v := num(t, b.attr("data-value"))
		h := num(t, b.attr("height"))
		if unit < 0 {
			unit = h / v
		}
		assert.InDelta(t, unit*v, h, 0.2, "height of %s %s", b.attr("data-series"), b.attr("data-label"))
		require.Len(t, b.Children, 1)
		assert.Equal(t, b.attr("data-series")+", "+b.attr("data-label")+": "+b.attr("data-value"), b.Children[0].Text)
		if y, ok := tops[b.attr("data-label")]; ok {
			// the second segment sits on the first
			assert.InDelta(t, y, num(t, b.attr("y"))+num(t, b.attr("height")), 0.2)
		}
		tops[b.attr("data-label")] = num(t, b.attr("y"))
	}
	assert.NotEqual(t, bs[0].attr("fill"), bs[1].attr("fill"), "series have their own colours")
	assert.Contains(t, svg, ">askes</text>")
	assert.Contains(t, svg, ">taspen</text>")
}

// No data draws the axes and no bar; one day draws one bar.
func TestZeroAndOneDay(t *testing.T) {
	svg, err := svgchart.Chart{ID: "z", Title: "t", Labels: []string{"a", "b"}, Series: []svgchart.Series{{Name: "s", Values: []int64{0, 0}}}}.SVG()
	require.NoError(t, err)
	root := parse(t, svg)
	assert.Empty(t, bars(root))
	assert.Equal(t, "1", root.attr("data-max"))
	svg, err = svgchart.Chart{ID: "e", Title: "t"}.SVG()
	require.NoError(t, err)
	assert.Empty(t, bars(parse(t, svg)))

	svg, err = svgchart.Chart{ID: "one", Title: "t", Labels: []string{"06-12"}, Series: []svgchart.Series{{Name: "askes", Values: []int64{7}}}}.SVG()
	require.NoError(t, err)
	root = parse(t, svg)
	bs := bars(root)
	require.Len(t, bs, 1)
	// the bar reaches the top of the scale (7 of 8)
	assert.Equal(t, "8", root.attr("data-max"))
	assert.Equal(t, "7", bs[0].attr("data-value"))
}

// Labels, names, titles and descriptions are escaped: markup in them
// stays text.
func TestEscaping(t *testing.T) {
	evil := `<script>alert("x")</script>&`
	svg, err := svgchart.Chart{ID: "x", Title: evil, Desc: evil, Labels: []string{evil}, Series: []svgchart.Series{{Name: evil, Values: []int64{1}}}}.SVG()
	require.NoError(t, err)
	assert.NotContains(t, svg, "<script")
	root := parse(t, svg)
	bs := bars(root)
	require.Len(t, bs, 1)
	assert.Equal(t, evil, bs[0].attr("data-series"))
	assert.Equal(t, evil, bs[0].attr("data-label"))
	assert.Equal(t, evil+", "+evil+": 1", bs[0].Children[0].Text)
}

func TestBadCharts(t *testing.T) {
	for name, c := range map[string]svgchart.Chart{
		"length":   {ID: "a", Labels: []string{"x", "y"}, Series: []svgchart.Series{{Name: "s", Values: []int64{1}}}},
		"negative": {ID: "a", Labels: []string{"x"}, Series: []svgchart.Series{{Name: "s", Values: []int64{-1}}}},
		"id":       {ID: `a"b`, Labels: []string{"x"}},
		"no id":    {Labels: []string{"x"}},
		"tiny":     {ID: "a", Width: 20, Height: 20},
	} {
		_, err := c.SVG()
		assert.ErrorIs(t, err, svgchart.ErrChart, name)
		assert.True(t, strings.HasPrefix(err.Error(), "svgchart: "), name)
	}
}
