package outbox_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
)

func serialOf(n uint64) [8]byte { return [8]byte(binary.BigEndian.AppendUint64(nil, n)) }

// renewalRecord is the chain's next record as a renewal of card serial.
func (c *chain) renewal(t testing.TB, serial [8]byte) *record.Record {
	if t == nil {
		t = panicT{}
	}
	id, err := record.NewID()
	require.NoError(t, err)
	r := &record.Record{
		ID: id, TerminalID: "t-01", SiteID: "s-01", OperatorID: "kiosk", Service: record.ServiceRenewal,
		CardType: record.CardKPE, CardSerial: serial[:], SubjectKind: record.SubjectNIP, Subject: "196608011988031001",
		CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
		Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Pass},
		Time: time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC), Clock: record.ClockSynced, PrevHash: c.prev,
		Renewal: &record.Renewal{UpdateID: [16]byte{serial[7], 1}, OldSOD: [32]byte{1}, NewSOD: [32]byte{2}},
	}
	require.NoError(t, record.Seal(context.Background(), r, c.s))
	return r
}

func TestJournalLifecycle(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "outbox.db")
	ob := open(t, path, outbox.Options{Now: clk.Now})
	s := serialOf(42)
	j, err := ob.Journal(s)
	require.NoError(t, err)
	assert.Nil(t, j, "no entry yet")

	want := outbox.Journal{Serial: s, UpdateID: [16]byte{9}, Sequence: 3, OldSOD: [32]byte{1}, NewSOD: [32]byte{2}, Step: outbox.JournalOffered}
	require.NoError(t, ob.PutJournal(want))
	want.Time = clk.Now()
	j, err = ob.Journal(s)
	require.NoError(t, err)
	require.NotNil(t, j)
	assert.Equal(t, want.UpdateID, j.UpdateID)
	assert.Equal(t, want.Sequence, j.Sequence)
	assert.Equal(t, want.OldSOD, j.OldSOD)
	assert.Equal(t, want.NewSOD, j.NewSOD)
	assert.Equal(t, outbox.JournalOffered, j.Step)
	assert.True(t, want.Time.Equal(j.Time), "time from the outbox's clock: %v", j.Time)

	want.Step = outbox.JournalCommitUnknown
	require.NoError(t, ob.PutJournal(want))
	j, err = ob.Journal(s)
	require.NoError(t, err)
	assert.Equal(t, "committed-unknown", j.Step.String())
	assert.Error(t, ob.PutJournal(outbox.Journal{Serial: s}), "a step is required")

	// it survives a reopen and a compaction
	require.NoError(t, ob.Close())
	_, err = outbox.Compact(path, outbox.Options{})
	require.NoError(t, err)
	ob = open(t, path, outbox.Options{})
	all, err := ob.Journals()
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, s, all[0].Serial)

	// a renewal record of another card leaves it; the card's own removes it
	c := newChain()
	r := c.renewal(t, serialOf(7))
	_, err = ob.AppendRenewal(r)
	require.NoError(t, err)
	c.appended(r)
	j, err = ob.Journal(s)
	require.NoError(t, err)
	assert.NotNil(t, j)
	r = c.renewal(t, s)
	_, err = ob.AppendRenewal(r)
	require.NoError(t, err)
	c.appended(r)
	j, err = ob.Journal(s)
	require.NoError(t, err)
	assert.Nil(t, j, "removed with the record's append")
	last, err := ob.Last()
	require.NoError(t, err)
	assert.Equal(t, r.ID, last.ID)

	// an append that fails keeps the entry
	require.NoError(t, ob.PutJournal(want))
	r = newChain().renewal(t, s) // PrevHash zero: breaks the chain
	_, err = ob.AppendRenewal(r)
	assert.ErrorIs(t, err, outbox.ErrChain)
	j, err = ob.Journal(s)
	require.NoError(t, err)
	assert.NotNil(t, j, "the failed append removed nothing")

	// only renewal records
	_, err = ob.AppendRenewal(c.next(t))
	assert.ErrorIs(t, err, outbox.ErrNotRecorded)
	require.NoError(t, ob.DeleteJournal(s))
	j, err = ob.Journal(s)
	require.NoError(t, err)
	assert.Nil(t, j)
}

const (
	journalChildEnv = "KPE_OUTBOX_JOURNAL_CHILD"
	journalStopEnv  = "KPE_OUTBOX_JOURNAL_STOP" // the child kills itself in its first renewal
)

// journalChild runs renewals one card after another as the agent does:
// the journal entry ("j <serial>" once stored), its steps, then the
// record with the entry removed ("r <serial>" once appended). It numbers
// the cards on from what is stored, records and journal entries.
func journalChild(path string) {
	ob, err := outbox.Open(path, outbox.Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	c := newChain()
	var n uint64
	if last, err := ob.Last(); err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	} else if last != nil {
		c.prev, _ = last.Hash()
		c.s = record.NewSoftwareSigner(testKey, last.SAMSerial, last.Counter)
		n = binary.BigEndian.Uint64(last.CardSerial) + 1 // beyond every serial recorded before
	}
	// and beyond every serial a killed child left journaled: reusing one
	// would overwrite its entry and record it, so no entry would be left
	entries, err := ob.Journals()
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for _, j := range entries {
		n = max(n, binary.BigEndian.Uint64(j.Serial[:])+1)
	}
	w := bufio.NewWriter(os.Stdout)
	for ; ; n++ {
		s := serialOf(n)
		j := outbox.Journal{Serial: s, UpdateID: [16]byte{1}, Sequence: 1, Step: outbox.JournalOffered}
		for _, step := range []outbox.JournalStep{outbox.JournalOffered, outbox.JournalWriting, outbox.JournalVerified} {
			j.Step = step
			if err := ob.PutJournal(j); err != nil {
				fmt.Fprintln(w, "error", err)
				w.Flush()
				os.Exit(2)
			}
			if step == outbox.JournalOffered {
				fmt.Fprintf(w, "j %x\n", s)
				w.Flush()
			}
			if step == outbox.JournalWriting && os.Getenv(journalStopEnv) != "" {
				// killed mid-renewal, the database not closed
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
		r := c.renewal(nil, s)
		if _, err := ob.AppendRenewal(r); err != nil {
			fmt.Fprintln(w, "error", err)
			w.Flush()
			os.Exit(2)
		}
		c.appended(r)
		fmt.Fprintf(w, "r %x\n", s)
		w.Flush()
	}
}

// A process running renewals is killed with SIGKILL at random moments:
// every card whose journal entry was reported stored has afterwards its
// entry or its renewal record, never neither and never both.
func TestKill9JournalOrRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test skipped in -short mode")
	}
	path := filepath.Join(t.TempDir(), "outbox.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	journaled := map[string]bool{}
	n := crashIterations()
	for it := 0; it < n; it++ {
		env := []string{journalChildEnv + "=" + path}
		stops := it%4 == 1
		if stops {
			env = append(env, journalStopEnv+"=1") // one kill certainly between entry and record
		}
		cmd, lines, stderr := startChild(t, env...)
		// The timer starts at the child's first entry, not at its start: a
		// loaded machine can take longer than the whole window to start a
		// process, and then no child ever stored anything. A stopping
		// child kills itself, so it gets no timer.
		first, ok := <-lines
		if !ok {
			cmd.Wait()
			t.Fatalf("child said nothing: %s", stderr.String())
		}
		f := strings.Fields(first)
		require.Len(t, f, 2, "child: %s", first)
		require.Equal(t, "j", f[0], "child: %s", first)
		journaled[f[1]] = true
		var kill <-chan time.Time
		if !stops {
			kill = time.After(time.Duration(rng.IntN(40_000)) * time.Microsecond)
		}
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				f := strings.Fields(l)
				require.Len(t, f, 2, "child: %s", l)
				if f[0] == "j" {
					journaled[f[1]] = true
				}
			case <-kill:
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
				kill = nil
			}
		}
		cmd.Wait()
	}
	require.NotEmpty(t, journaled, "the child stored no entry")

	ob := open(t, path, outbox.Options{})
	require.Empty(t, ob.MovedAside)
	items, err := ob.Claim(1<<30, 1<<40)
	require.NoError(t, err)
	recorded := map[string]bool{}
	for _, it := range items {
		r, err := record.Decode(it.Encoded)
		require.NoError(t, err)
		recorded[fmt.Sprintf("%x", r.CardSerial)] = true
	}
	entries, err := ob.Journals()
	require.NoError(t, err)
	inJournal := map[string]bool{}
	for _, j := range entries {
		inJournal[fmt.Sprintf("%x", j.Serial)] = true
	}
	assert.NotEmpty(t, entries, "the kills mid-renewal left entries")
	for s := range journaled {
		assert.True(t, recorded[s] != inJournal[s], "card %s: record %v, journal entry %v", s, recorded[s], inJournal[s])
	}
	t.Logf("%d kills, %d renewals journaled, %d recorded, %d entries left", n, len(journaled), len(recorded), len(entries))
}
