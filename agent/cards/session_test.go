package cards_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/cards"
	"kpe-agent/apdu"
	"kpe-agent/apdu/cardsim"
	"kpe-agent/apdu/cardsim/labset"
	"kpe-agent/apdu/pcsc/pcsctest"
	"kpe-agent/apdu/sam"
)

// Pulling the card at any APDU of a KPE or KTP-el read ends the session
// cleanly: the read fails with ErrCardRemoved (never a panic, a hang or a
// partial verdict), the session's goroutine exits, and later work is
// refused with the cause.
func TestSessionRemovalAtEveryAPDU(t *testing.T) {
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	dir := pcsctest.RepoPath("testdata/cards/lab")
	m, err := labset.LoadManifest(dir)
	require.NoError(t, err)
	bkn, err := m.Roots(dir, "bkn")
	require.NoError(t, err)
	duk, err := m.Roots(dir, "dukcapil")
	require.NoError(t, err)
	// Without photos: the loop is quadratic in the APDU count.
	o := cards.Options{BKNRoots: bkn, DukcapilRoots: duk}
	ctx := context.Background()

	load := func(name string) cardsim.Card {
		c, err := cardsim.LoadCard(filepath.Join(dir, "cards", name+".json"))
		require.NoError(t, err)
		return c
	}
	samReader := cardsim.NewMemReader("sam")
	samReader.Insert(load("sam"))
	samCard, err := samReader.Connect(ctx)
	require.NoError(t, err)
	s, err := sam.Open(ctx, samCard)
	require.NoError(t, err)
	require.NoError(t, s.Activate(ctx, []byte(m.SAM.ActivationCode)))
	require.NoError(t, s.ActivateKTP(ctx, []byte(m.SAM.KTPSecret1), []byte(m.SAM.KTPSecret2)))

	for _, name := range []string{"kpe-budi", "ktpel-siti"} {
		card := load(name)
		for n := 1; ; n++ {
			r := cardsim.NewMemReader(name)
			r.Insert(card)
			r.SetFault(cardsim.Fault{RemoveAtAPDU: n})
			c, err := r.Connect(ctx)
			require.NoError(t, err)
			sess := cards.Start(c)
			tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			res, err := sess.Read(tctx, s, o)
			cancel()
			if err == nil {
				// n is past the last APDU: the whole read went through.
				require.Equal(t, "genuine", res.Verdict)
				require.Greater(t, n, 20, "%s: a full read takes more than 20 APDUs", name)
				sess.Close()
				break
			}
			require.ErrorIs(t, err, apdu.ErrCardRemoved, "%s, removal at APDU %d", name, n)
			require.ErrorIs(t, err, cards.ErrSessionEnded)
			require.Nil(t, res)
			select {
			case <-sess.Done():
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: session goroutine still running after removal at APDU %d", name, n)
			}
			err = sess.Do(ctx, func(context.Context, apdu.Card) error { return errors.New("must not run") })
			require.ErrorIs(t, err, apdu.ErrCardRemoved)
			sess.Close() // idempotent after the end
			// The SAM may hold a half-finished authentication; a new read
			// starts over with CARD AUTH INIT, so nothing to reset here.
		}
	}
}
