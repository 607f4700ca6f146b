package outbox_test

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/outbox"
)

const (
	compactChildEnv = "KPE_OUTBOX_COMPACT_CHILD" // the outbox file
	compactKillEnv  = "KPE_OUTBOX_COMPACT_KILL"  // the step at which the child kills itself; "" compacts in a loop
)

// compactChild compacts the outbox: once, killing itself with SIGKILL at
// the step compactKillEnv names, or, without it, again and again until it
// is killed. It prints each step as it reaches it.
func compactChild(path string) {
	killAt := os.Getenv(compactKillEnv)
	w := bufio.NewWriter(os.Stdout)
	outbox.SetCompactHook(func(step string) {
		fmt.Fprintln(w, step)
		w.Flush()
		if step == killAt {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	})
	for {
		if _, err := outbox.Compact(path, outbox.Options{}); err != nil {
			fmt.Fprintln(w, "error", err)
			w.Flush()
			os.Exit(2)
		}
		if killAt != "" {
			fmt.Fprintln(w, "error: not killed at", killAt)
			w.Flush()
			os.Exit(2)
		}
	}
}

// content is everything an outbox holds, as its methods show it.
type content struct {
	items    []outbox.ListItem
	dead     []outbox.DeadItem
	lastHash [32]byte
	stats    outbox.Stats
}

func contentOf(t *testing.T, path string) content {
	t.Helper()
	ob, err := outbox.Open(path, outbox.Options{ReadOnly: true})
	require.NoError(t, err)
	defer ob.Close()
	var c content
	c.items, err = ob.List(0, 0)
	require.NoError(t, err)
	c.dead, err = ob.Dead()
	require.NoError(t, err)
	c.lastHash, err = ob.LastHash()
	require.NoError(t, err)
	c.stats, err = ob.Stats()
	require.NoError(t, err)
	c.stats.FileBytes, c.stats.DataBytes, c.stats.FreeBytes, c.stats.OldestUnsynced, c.stats.AgeUsed = 0, 0, 0, 0, 0
	return c
}

// compactFixture is an outbox with records in every state, most of the
// acknowledged ones pruned (free pages for compaction to give back), and
// the sequence continuing. It returns the chain to go on with.
func compactFixture(t *testing.T, path string, n int) *chain {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	ob, err := outbox.Open(path, outbox.Options{Now: clk.Now, Retention: time.Hour})
	require.NoError(t, err)
	defer ob.Close()
	c := newChain()
	var results []outbox.Result
	for i := range n {
		r := c.next(t)
		seq, err := ob.Append(r)
		require.NoError(t, err)
		c.appended(r)
		switch {
		case i%50 == 7:
			results = append(results, outbox.Result{Seq: seq, Outcome: outbox.Rejected, Reason: "bad-signature"})
		case i%10 == 3:
			results = append(results, outbox.Result{Seq: seq, Outcome: outbox.Retry})
		case i < n*3/4:
			results = append(results, outbox.Result{Seq: seq, Outcome: outbox.Accepted})
		}
	}
	_, err = ob.Claim(n, 1<<30)
	require.NoError(t, err)
	require.NoError(t, ob.Settle(results))
	clk.Add(2 * time.Hour)
	pruned, err := ob.Prune()
	require.NoError(t, err)
	require.Positive(t, pruned)
	_, err = ob.Claim(5, 1<<30) // some left in sending, as a killed agent leaves them
	require.NoError(t, err)
	return c
}

// kpectl queue compact's work: the outbox is copied into a new file, which
// replaces the old one; everything in it is kept, the file is smaller, and
// the sequence goes on where it was.
func TestCompact(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "outbox.db")
	c := compactFixture(t, path, 1500)
	before := contentOf(t, path)
	fi, err := os.Stat(path)
	require.NoError(t, err)

	res, err := outbox.Compact(path, outbox.Options{})
	require.NoError(t, err)
	assert.Equal(t, fi.Size(), res.Before)
	assert.Less(t, res.After, res.Before, "compaction gives the pruned records' pages back")
	assert.False(t, res.RemovedTemp)
	fi, err = os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, res.After, fi.Size())
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	assert.Equal(t, before, contentOf(t, path))
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	require.NoError(t, err)
	assert.Equal(t, []string{path}, names, "no temporary file is left")

	ob := open(t, path, outbox.Options{})
	r := c.next(t)
	seq, err := ob.Append(r)
	require.NoError(t, err, "the chain goes on")
	assert.Equal(t, before.items[len(before.items)-1].Seq+1, seq, "the sequence goes on")
}

// Compaction refuses an outbox the agent holds, a missing file (it creates
// none) and a damaged one (it is not moved aside).
func TestCompactRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "outbox.db")
	agent := open(t, path, outbox.Options{})
	start := time.Now()
	_, err := outbox.Compact(path, outbox.Options{OpenTimeout: 200 * time.Millisecond})
	require.ErrorIs(t, err, outbox.ErrLocked)
	assert.Less(t, time.Since(start), 3*time.Second)
	require.NoError(t, agent.Close())

	missing := filepath.Join(dir, "missing.db")
	_, err = outbox.Compact(missing, outbox.Options{})
	require.ErrorIs(t, err, outbox.ErrNoOutbox)
	_, err = os.Stat(missing)
	require.ErrorIs(t, err, os.ErrNotExist, "nothing created")

	damaged := filepath.Join(dir, "damaged.db")
	require.NoError(t, os.WriteFile(damaged, []byte(strings.Repeat("garbage ", 2048)), 0o600))
	_, err = outbox.Compact(damaged, outbox.Options{})
	require.ErrorIs(t, err, outbox.ErrDamaged)
	names, err := filepath.Glob(damaged + "*")
	require.NoError(t, err)
	assert.Equal(t, []string{damaged}, names, "not moved aside, no temporary file")
}

// runCompactChild runs compactChild on path and returns the steps it
// printed; kill names the step at which it kills itself, or "" to have it
// compact in a loop until this kills it after d.
func runCompactChild(t *testing.T, path, kill string, d time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), compactChildEnv+"="+path, compactKillEnv+"="+kill)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	var steps []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			steps = append(steps, sc.Text())
		}
	}()
	if kill == "" {
		time.Sleep(d)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	}
	<-done
	err = cmd.Wait()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "the child was killed: %v %s", err, stderr.String())
	ws := ee.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "killed by SIGKILL, not %v; steps %v; %s", err, steps, stderr.String())
	for _, s := range steps {
		require.False(t, strings.HasPrefix(s, "error"), "child: %s", s)
	}
	return steps
}

// A compaction killed with SIGKILL at any point leaves the old file or the
// new one, complete: every record is there, in its state, with the dead
// letters and the chain's last hash. A temporary file it left is removed
// by the next compaction. First at each step, then at random moments of
// compactions run back to back (20 times in make test, KPE_SOAK_ITERATIONS
// in make soak).
func TestCompactKill9(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "outbox.db")
	compactFixture(t, path, 1500)
	want := contentOf(t, path)
	tmp := path + outbox.CompactTempSuffix

	for _, step := range outbox.CompactSteps {
		steps := runCompactChild(t, path, step, 0)
		require.Equal(t, step, steps[len(steps)-1])
		assert.Equal(t, want, contentOf(t, path), "killed at %s", step)
		_, err := os.Stat(tmp)
		left := err == nil
		res, err := outbox.Compact(path, outbox.Options{})
		require.NoError(t, err, "after a kill at %s", step)
		assert.Equal(t, left, res.RemovedTemp, "killed at %s", step)
		assert.Equal(t, want, contentOf(t, path), "compacted after a kill at %s", step)
		_, err = os.Stat(tmp)
		assert.ErrorIs(t, err, os.ErrNotExist)
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	n := crashIterations()
	compactions, leftovers := 0, 0
	for range n {
		steps := runCompactChild(t, path, "", time.Duration(5_000+rng.IntN(60_000))*time.Microsecond)
		for _, s := range steps {
			if s == "done" {
				compactions++
			}
		}
		require.Equal(t, want, contentOf(t, path), "after %v", steps[max(0, len(steps)-3):])
		if _, err := os.Stat(tmp); err == nil {
			leftovers++
		}
	}
	res, err := outbox.Compact(path, outbox.Options{})
	require.NoError(t, err)
	assert.Equal(t, want, contentOf(t, path))
	t.Logf("%d kills during %d finished compactions; %d left a temporary file; the file is %d bytes", n, compactions, leftovers, res.After)
}
