package cards_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/cards"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/labset"
	"kpe-agent/lab/pcsctest"
)

// A freshly personalised set (new PKI and master keys) gives the verdicts
// its spec promises, in-process: the generator and the committed sample set
// cannot drift apart unnoticed.
func TestPersonaliseFreshSet(t *testing.T) {
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	spec, err := labset.LoadSpec(pcsctest.RepoPath("testdata/cards/lab/spec.json"))
	require.NoError(t, err)
	dir := t.TempDir()
	m, err := labset.Generate(spec, dir, time.Now())
	require.NoError(t, err)
	o := labOptions(t, dir, m)
	ctx := context.Background()

	connect := func(image string) *cardsim.MemReader {
		c, err := cardsim.LoadCard(filepath.Join(dir, image))
		require.NoError(t, err)
		r := cardsim.NewMemReader(image)
		r.Insert(c)
		return r
	}
	samCard, err := connect("cards/sam.json").Connect(ctx)
	require.NoError(t, err)
	s := openLabSAM(t, ctx, samCard, m)

	for _, mc := range m.Cards {
		card, err := connect(mc.Image).Connect(ctx)
		require.NoError(t, err)
		r, err := cards.Read(ctx, card, s, o)
		require.NoError(t, err, mc.Image)
		require.Equal(t, mc.Expect, r.Verdict, "%s: %+v", mc.Image, r.Checks)
	}
}
