package backoffice

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/wire"
)

func TestCountersGaps(t *testing.T) {
	var l counters
	g, f := l.observe(1)
	assert.False(t, g || f)
	g, _ = l.observe(5)
	assert.True(t, g)
	assert.Equal(t, []wire.Range{{From: 2, To: 4}}, l.Gaps)
	_, f = l.observe(3)
	assert.True(t, f)
	assert.Equal(t, []wire.Range{{From: 2, To: 2}, {From: 4, To: 4}}, l.Gaps)
	l.observe(2)
	l.observe(4)
	assert.Empty(t, l.Gaps)
	assert.Equal(t, uint32(5), l.Max)

	var first counters
	g, _ = first.observe(7) // a SAM first seen at 7: 1..6 are missing
	assert.True(t, g)
	assert.Equal(t, uint64(6), first.missing())
}

// Against a model: any order of distinct counters leaves exactly the
// unseen ones below the maximum as gaps.
func TestCountersModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		var l counters
		seen := map[uint32]bool{}
		for _, c := range rng.Perm(60)[:rng.IntN(60)] {
			c := uint32(c + 1)
			l.observe(c)
			seen[c] = true
		}
		var want []uint32
		for c := uint32(1); c <= l.Max; c++ {
			if !seen[c] {
				want = append(want, c)
			}
		}
		var got []uint32
		for i, r := range l.Gaps {
			require.LessOrEqual(t, r.From, r.To)
			if i > 0 {
				require.Greater(t, r.From, l.Gaps[i-1].To+1, "ranges must not touch")
			}
			for c := r.From; c <= r.To; c++ {
				got = append(got, c)
			}
		}
		require.Equal(t, want, got)
	}
}
