package pcsc_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ebfe/scard"
	"github.com/stretchr/testify/require"

	"kpe-agent/apdu"
	"kpe-agent/apdu/pcsc"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/pcsctest"
)

// The generic lab card (testdata/cards/generic-fs*.json).
var (
	labAID = []byte{0xF0, 0x4B, 0x50, 0x45, 0x2D, 0x46, 0x53, 0x01}
)

const (
	ef10   = 0x5001 // 10 bytes 01..0A
	ef64k  = 0x5002 // PatternBytes(65536, 7)
	ef4096 = 0x5004 // PatternBytes(4096, 3)
)

// counting counts the APDUs that reach the transport.
type counting struct {
	apdu.Transmitter
	n atomic.Int64
}

func (c *counting) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	c.n.Add(1)
	return c.Transmitter.Transmit(ctx, cmd)
}

func connect(t *testing.T, tr *pcsc.Transport, reader string) apdu.Card {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tr.Connect(ctx, reader)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// onLabCard starts the lab with image in slot 0 and connects to it through
// pcscd.
func onLabCard(t *testing.T, image string, opts pcsc.Options) (*cardsim.Lab, *pcsc.Transport, apdu.Card) {
	t.Helper()
	pcsctest.Require(t)
	lab := pcsctest.Lab(t)
	pcsctest.Insert(t, lab, 0, image)
	tr := pcsc.New(opts)
	t.Cleanup(func() { _ = tr.Close() })
	return lab, tr, connect(t, tr, pcsctest.Slot0)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// nextEvent waits for an event of one of the kinds for reader ("" = any).
func nextEvent(t *testing.T, ch <-chan apdu.Event, reader string, timeout time.Duration, kinds ...apdu.EventKind) apdu.Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-ch:
			require.True(t, ok, "monitor stopped")
			if reader != "" && ev.Reader != reader {
				continue
			}
			for _, k := range kinds {
				if ev.Kind == k {
					return ev
				}
			}
		case <-deadline:
			t.Fatalf("no %v event for %q within %v", kinds, reader, timeout)
		}
	}
}

func TestIntegrationInsertRemoveEvents(t *testing.T) {
	pcsctest.Require(t)
	lab := pcsctest.Lab(t)
	tr := pcsc.New(pcsc.Options{})
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mon := tr.Watch(ctx)

	// Both vpcd readers are announced at start.
	seen := map[string]bool{}
	for len(seen) < 2 {
		ev := nextEvent(t, mon.Events, "", 5*time.Second, apdu.ReaderAdded)
		seen[ev.Reader] = true
	}
	require.True(t, seen[pcsctest.Slot0] && seen[pcsctest.Slot1], "readers: %v", seen)

	card := pcsctest.Insert(t, lab, 0, "generic-fs.json")
	ev := nextEvent(t, mon.Events, pcsctest.Slot0, 5*time.Second, apdu.CardInserted)
	require.Equal(t, card.ATR(), ev.ATR)

	rs, err := tr.Readers(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Len(t, rs, 2)
	require.True(t, rs[0].CardPresent)
	require.Equal(t, card.ATR(), rs[0].ATR)

	require.NoError(t, lab.Remove(0))
	nextEvent(t, mon.Events, pcsctest.Slot0, 5*time.Second, apdu.CardRemoved)

	// Swap in the second slot: removal then insertion.
	pcsctest.Insert(t, lab, 1, "generic-fs-t0.json")
	nextEvent(t, mon.Events, pcsctest.Slot1, 5*time.Second, apdu.CardInserted)
	c2, err := cardsim.LoadCard(pcsctest.RepoPath("testdata/cards/generic-fs-extended.json"))
	require.NoError(t, err)
	require.NoError(t, lab.Swap(1, c2))
	nextEvent(t, mon.Events, pcsctest.Slot1, 5*time.Second, apdu.CardRemoved)
	ev = nextEvent(t, mon.Events, pcsctest.Slot1, 5*time.Second, apdu.CardInserted)
	require.Equal(t, c2.ATR(), ev.ATR)

	st := mon.Stats()
	t.Logf("monitor: %d GetStatusChange calls, %d idle wakeups", st.Waits, st.IdleWakeups)
	require.Less(t, st.IdleWakeups, int64(5), "monitor woke without changes: it must block, not poll")
}

func TestIntegrationPCSCDRestart(t *testing.T) {
	pcsctest.Require(t)
	lab := pcsctest.Lab(t)
	card := pcsctest.Insert(t, lab, 0, "generic-fs.json")

	tr := pcsc.New(pcsc.Options{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mon := tr.Watch(ctx)
	nextEvent(t, mon.Events, pcsctest.Slot0, 5*time.Second, apdu.CardInserted)
	c := connect(t, tr, pcsctest.Slot0)

	// Make sure pcscd is back even if the test fails half-way.
	t.Cleanup(func() { _ = pcsctest.Start() })
	require.NoError(t, pcsctest.Stop())
	lost := nextEvent(t, mon.Events, "", 5*time.Second, apdu.ServiceLost)
	require.ErrorIs(t, lost.Err, apdu.ErrNoService)
	nextEvent(t, mon.Events, pcsctest.Slot0, time.Second, apdu.CardRemoved)

	// A card handle from the dead service gives a typed error, not a hang.
	_, err := c.Transmit(ctxT(t, 3*time.Second), []byte{0x00, 0x84, 0x00, 0x00, 0x08})
	require.Error(t, err)
	require.True(t, errors.Is(err, apdu.ErrNoService) || errors.Is(err, apdu.ErrCardRemoved), "got %v", err)

	// While the service is down the monitor backs off: count its attempts.
	before := mon.Stats()
	var ru0, ru1 rusage
	getrusage(&ru0)
	time.Sleep(3 * time.Second)
	getrusage(&ru1)
	during := mon.Stats()
	attempts := during.Establish - before.Establish
	t.Logf("outage of 3s: %d context attempts, %d waits, process CPU %v", attempts, during.Waits-before.Waits, ru1.cpu()-ru0.cpu())
	// Backoff 100ms doubling to 1s gives about 5 attempts in 3s; a spinning
	// loop would make thousands.
	require.LessOrEqual(t, attempts, int64(10), "monitor must back off, not spin")
	require.Zero(t, during.Waits-before.Waits, "no GetStatusChange without a context")

	require.NoError(t, pcsctest.Start())
	nextEvent(t, mon.Events, "", 10*time.Second, apdu.ServiceRestored)
	nextEvent(t, mon.Events, pcsctest.Slot0, 10*time.Second, apdu.ReaderAdded)
	ev := nextEvent(t, mon.Events, pcsctest.Slot0, 10*time.Second, apdu.CardInserted)
	require.Equal(t, card.ATR(), ev.ATR)

	// And the transport works again with a fresh connection.
	c2 := connect(t, tr, pcsctest.Slot0)
	cl := apdu.NewClient(c2, apdu.Limits{})
	_, err = cl.SelectAID(ctxT(t, 5*time.Second), labAID)
	require.NoError(t, err)
}

func TestIntegrationRemovedMidReadBinary(t *testing.T) {
	lab, _, c := onLabCard(t, "generic-fs.json", pcsc.Options{})
	cl := apdu.NewClient(c, apdu.Limits{})
	ctx := ctxT(t, 10*time.Second)
	_, err := cl.SelectAID(ctx, labAID)
	require.NoError(t, err)

	// SELECT EF, then READ BINARY 1, 2, 3 answered, the 4th pulls the card.
	require.NoError(t, lab.SetFault(0, cardsim.Fault{RemoveAtAPDU: 5}))
	const deadline = 4 * time.Second
	rctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	_, err = cl.ReadEF(rctx, ef64k)
	elapsed := time.Since(start)
	require.ErrorIs(t, err, apdu.ErrCardRemoved)
	require.True(t, apdu.Retriable(err))
	require.Less(t, elapsed, deadline, "typed error must come within the deadline")
	t.Logf("card removed mid READ BINARY: %v after %v", err, elapsed)

	// The next command on the dead handle fails fast and typed as well.
	_, err = c.Transmit(ctxT(t, 3*time.Second), []byte{0x00, 0xB0, 0x00, 0x00, 0x10})
	require.ErrorIs(t, err, apdu.ErrCardRemoved)
}

func TestIntegrationSlowCardDeadline(t *testing.T) {
	lab, _, c := onLabCard(t, "generic-fs.json", pcsc.Options{})

	// The card's delay is far beyond the bounds below, so that "returned at
	// its deadline" and "waited for the card" stay apart on a loaded
	// machine, and the second command surely starts while the first is
	// still inside pcscd.
	const delay, bound = 5 * time.Second, 3 * time.Second
	require.NoError(t, lab.SetFault(0, cardsim.Fault{Delay: delay, DelayCount: 1}))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Transmit(ctx, []byte{0x00, 0x84, 0x00, 0x00, 0x08})
	elapsed := time.Since(start)
	require.ErrorIs(t, err, apdu.ErrTimeout)
	require.Less(t, elapsed, bound, "the caller must not wait for the slow card")

	// While the slow command is still inside pcscd, another command with a
	// short deadline is refused in time, not queued until the card answers.
	_, err = c.Transmit(ctxT(t, 200*time.Millisecond), []byte{0x00, 0x84, 0x00, 0x00, 0x08})
	require.ErrorIs(t, err, apdu.ErrTimeout)
	require.Less(t, time.Since(start), delay, "the second command must not wait for the slow card")

	// Once the card answers the old command, the connection works again.
	rsp, err := c.Transmit(ctxT(t, 15*time.Second), []byte{0x00, 0x84, 0x00, 0x00, 0x08})
	require.NoError(t, err)
	require.Len(t, rsp, 10)
}

func TestIntegrationGetResponseAndWrongLe(t *testing.T) {
	_, _, c := onLabCard(t, "generic-fs-t0.json", pcsc.Options{})
	ctx := ctxT(t, 10*time.Second)

	// Raw: the card answers SELECT with 61xx; the client fetches the FCI.
	rsp, err := c.Transmit(ctx, append([]byte{0x00, 0xA4, 0x04, 0x00, byte(len(labAID))}, labAID...))
	require.NoError(t, err)
	require.Equal(t, byte(0x61), rsp[len(rsp)-2], "card must answer 61xx in T=0 style, got % X", rsp)

	cnt := &counting{Transmitter: c}
	cl := apdu.NewClient(cnt, apdu.Limits{})
	fci, err := cl.SelectAID(ctx, labAID)
	require.NoError(t, err)
	require.NotEmpty(t, fci)

	// Raw: a READ BINARY asking for 256 bytes of a 10-byte EF gets 6C0A.
	_, err = cl.SelectFID(ctx, ef10)
	require.NoError(t, err)
	rsp, err = c.Transmit(ctx, []byte{0x00, 0xB0, 0x00, 0x00, 0x00})
	require.NoError(t, err)
	require.Equal(t, []byte{0x6C, 0x0A}, rsp)

	// Client: re-issued with Le=0A, then fetched with GET RESPONSE.
	r, err := cl.Do(ctx, apdu.Command{CLA: 0x00, INS: 0xB0, Ne: 256})
	require.NoError(t, err)
	require.Equal(t, uint16(0x9000), r.SW)
	require.Equal(t, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, r.Data)

	// A whole 4 KiB EF through 61xx/GET RESPONSE, byte-exact.
	data, err := cl.ReadEF(ctx, ef4096)
	require.NoError(t, err)
	require.Equal(t, cardsim.PatternBytes(4096, 3), data)
}

func TestIntegrationCommandChaining(t *testing.T) {
	_, _, c := onLabCard(t, "generic-fs.json", pcsc.Options{})
	ctx := ctxT(t, 10*time.Second)
	cnt := &counting{Transmitter: c}
	cl := apdu.NewClient(cnt, apdu.Limits{MaxCommandData: 255})

	blob := cardsim.PatternBytes(700, 11)
	_, err := cl.Send(ctx, apdu.Command{CLA: 0x00, INS: 0xDA, P1: 0x01, P2: 0x00, Data: blob})
	require.NoError(t, err)
	require.Equal(t, int64(3), cnt.n.Load(), "700 bytes in 255-byte links = 3 APDUs")

	// GET DATA returns what the card's buffer allows (256 bytes).
	got, err := cl.Send(ctx, apdu.Command{CLA: 0x00, INS: 0xCA, P1: 0x01, P2: 0x00, Ne: 256})
	require.NoError(t, err)
	require.Equal(t, blob[:256], got)

	// A single 300-byte short APDU is refused by the card: 6700.
	raw := append([]byte{0x00, 0xDA, 0x01, 0x00, 0x00, 0x01, 0x2C}, blob[:300]...)
	rsp, err := c.Transmit(ctx, raw)
	require.NoError(t, err)
	require.Equal(t, []byte{0x67, 0x00}, rsp[len(rsp)-2:])
}

func TestIntegrationRead64KiB(t *testing.T) {
	pcsctest.Require(t)
	want := cardsim.PatternBytes(65536, 7)
	for _, tc := range []struct {
		image string
		limit apdu.Limits
	}{
		{"generic-fs.json", apdu.Limits{}},
		{"generic-fs-extended.json", apdu.Limits{}}, // limits read from EF.ATR/INFO
	} {
		t.Run(tc.image, func(t *testing.T) {
			lab := pcsctest.Lab(t)
			pcsctest.Insert(t, lab, 0, tc.image)
			tr := pcsc.New(pcsc.Options{})
			defer tr.Close()
			c := connect(t, tr, pcsctest.Slot0)
			ctx := ctxT(t, 30*time.Second)
			require.NoError(t, c.BeginTransaction(ctx))
			defer c.EndTransaction()

			cl := apdu.NewClient(c, tc.limit)
			limits, err := cl.ReadLimits(ctx)
			require.NoError(t, err)
			cnt := &counting{Transmitter: c}
			cl = apdu.NewClient(cnt, limits)
			_, err = cl.SelectAID(ctx, labAID)
			require.NoError(t, err)
			_, err = cl.SelectFID(ctx, ef64k)
			require.NoError(t, err)
			cnt.n.Store(0)
			got, err := cl.ReadBinary(ctx, len(want))
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got), "64 KiB EF must be read byte-exact")
			plan := apdu.PlanReadBinary(len(want), limits)
			require.Equal(t, int64(plan), cnt.n.Load(), "APDUs used must equal the minimum for the announced buffer")
			t.Logf("%s: announced %+v, 64 KiB in %d APDUs (minimum %d)", tc.image, limits, cnt.n.Load(), plan)
		})
	}
}

func TestIntegrationMalformedResponse(t *testing.T) {
	lab, _, c := onLabCard(t, "generic-fs.json", pcsc.Options{RemovalGrace: 500 * time.Millisecond})
	require.NoError(t, lab.SetFault(0, cardsim.Fault{MalformedAtAPDU: 1}))
	cl := apdu.NewClient(c, apdu.Limits{})
	_, err := cl.SelectAID(ctxT(t, 5*time.Second), labAID)
	require.ErrorIs(t, err, apdu.ErrMalformedResponse)
	// The card itself is fine: the next command works.
	_, err = cl.SelectAID(ctxT(t, 5*time.Second), labAID)
	require.NoError(t, err)
}

func TestIntegrationResetByOtherProgram(t *testing.T) {
	_, tr, ours := onLabCard(t, "generic-fs.json", pcsc.Options{})
	other := connect(t, tr, pcsctest.Slot0)
	ctx := ctxT(t, 10*time.Second)
	require.NoError(t, other.Reconnect(ctx, true))

	_, err := ours.Transmit(ctx, []byte{0x00, 0x84, 0x00, 0x00, 0x08})
	require.ErrorIs(t, err, apdu.ErrCardReset, "the caller must learn that its secure session is gone")
	// The transport reconnected: the next command works.
	rsp, err := ours.Transmit(ctx, []byte{0x00, 0x84, 0x00, 0x00, 0x08})
	require.NoError(t, err)
	require.Len(t, rsp, 10)
}

func TestIntegrationSharingViolation(t *testing.T) {
	pcsctest.Require(t)
	lab := pcsctest.Lab(t)
	pcsctest.Insert(t, lab, 0, "generic-fs.json")
	tr := pcsc.New(pcsc.Options{})
	defer tr.Close()

	// "Another program" holds the reader exclusively. (pcscd does not wake
	// GetStatusChange for that, so the monitor cannot see it as it happens;
	// the reader listing and the connect error are what PC/SC offers.)
	sc, err := scard.EstablishContext()
	require.NoError(t, err)
	defer sc.Release()
	holder, err := sc.Connect(pcsctest.Slot0, scard.ShareExclusive, scard.ProtocolAny)
	require.NoError(t, err)

	rs, err := tr.Readers(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.True(t, rs[0].Exclusive)

	_, err = tr.Connect(ctxT(t, 5*time.Second), pcsctest.Slot0)
	require.ErrorIs(t, err, apdu.ErrSharingViolation)
	require.Contains(t, err.Error(), "another program")

	require.NoError(t, holder.Disconnect(scard.LeaveCard))
	connect(t, tr, pcsctest.Slot0) // free again
}

// A transaction ended while its card is stuck in a timed-out command is
// released as soon as the command returns: EndTransaction does not block,
// and another program gets the card afterwards.
func TestIntegrationEndTransactionWhileStuck(t *testing.T) {
	lab, tr, ours := onLabCard(t, "generic-fs.json", pcsc.Options{})
	other := connect(t, tr, pcsctest.Slot0)

	require.NoError(t, ours.BeginTransaction(ctxT(t, 5*time.Second)))
	// The card stays stuck far longer than EndTransaction may take, so that
	// "did not wait" and "waited for the card" stay apart under load.
	require.NoError(t, lab.SetFault(0, cardsim.Fault{Delay: 5 * time.Second, DelayCount: 1}))
	_, err := ours.Transmit(ctxT(t, 200*time.Millisecond), []byte{0x00, 0x84, 0x00, 0x00, 0x08})
	require.ErrorIs(t, err, apdu.ErrTimeout)

	start := time.Now()
	require.NoError(t, ours.EndTransaction())
	require.Less(t, time.Since(start), 2*time.Second, "EndTransaction must not wait for the stuck card")

	// The other connection gets the card once the slow command is answered.
	require.NoError(t, other.BeginTransaction(ctxT(t, 15*time.Second)))
	rsp, err := other.Transmit(ctxT(t, 5*time.Second), []byte{0x00, 0x84, 0x00, 0x00, 0x08})
	require.NoError(t, err)
	require.Len(t, rsp, 10)
	require.NoError(t, other.EndTransaction())
}
