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
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/labset"
	"kpe-agent/lab/pcsctest"
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
	// Without photos: the loop is quadratic in the APDU count.
	o := labOptions(t, dir, m)
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
	s := openLabSAM(t, ctx, samCard, m)

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

// Do gives up when its context ends; DoWait, once fn has started, waits
// for fn's own result (a workflow past its point of no return).
func TestSessionDoWait(t *testing.T) {
	dir := pcsctest.RepoPath("testdata/cards/lab")
	c, err := cardsim.LoadCard(filepath.Join(dir, "cards", "kpe-budi.json"))
	require.NoError(t, err)
	r := cardsim.NewMemReader("kpe")
	r.Insert(c)
	card, err := r.Connect(context.Background())
	require.NoError(t, err)
	sess := cards.Start(card)
	defer sess.Close()

	for _, wait := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		started, finished := make(chan struct{}), make(chan struct{})
		fn := func(ctx context.Context, _ apdu.Card) error {
			close(started)
			<-ctx.Done()
			time.Sleep(50 * time.Millisecond) // the step past the point of no return
			close(finished)
			return nil
		}
		go func() { <-started; cancel() }()
		if wait {
			require.NoError(t, sess.DoWait(ctx, fn), "fn's own result")
			select {
			case <-finished:
			default:
				t.Fatal("DoWait returned before fn")
			}
		} else {
			require.ErrorIs(t, sess.Do(ctx, fn), context.Canceled)
			<-finished
		}
	}
	// a context that has ended before fn is taken: nothing runs
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, sess.DoWait(ctx, func(context.Context, apdu.Card) error { t.Error("ran"); return nil }), context.Canceled)
}
