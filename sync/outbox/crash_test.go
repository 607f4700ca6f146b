package outbox_test

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
)

const childEnv = "KPE_OUTBOX_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		crashChild(path)
		return
	}
	if path := os.Getenv(journalChildEnv); path != "" {
		journalChild(path)
		return
	}
	if path := os.Getenv(compactChildEnv); path != "" {
		compactChild(path)
		return
	}
	os.Exit(m.Run())
}

// crashChild appends records as fast as it can and prints "ok <counter>"
// after each Append returned: the moment the agent would show the code.
// It continues the chain and the counter from what is stored.
func crashChild(path string) {
	ob, err := outbox.Open(path, outbox.Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	c := newChain()
	if last, err := ob.Last(); err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	} else if last != nil {
		c.prev, _ = last.Hash()
		c.s = record.NewSoftwareSigner(testKey, last.SAMSerial, last.Counter)
	}
	w := bufio.NewWriter(os.Stdout)
	for {
		r := c.next(nil)
		if _, err := ob.Append(r); err != nil {
			fmt.Fprintln(w, "error", err)
			w.Flush()
			os.Exit(2)
		}
		c.appended(r)
		fmt.Fprintln(w, "ok", r.Counter)
		w.Flush()
	}
}

func crashIterations() int {
	if n, err := strconv.Atoi(os.Getenv("KPE_SOAK_ITERATIONS")); err == nil && n > 0 {
		return n
	}
	return 20
}

// startChild runs this test binary as a child with env added, and
// answers it, the lines it prints and its standard error.
func startChild(t *testing.T, env ...string) (*exec.Cmd, <-chan string, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return cmd, lines, stderr
}

// A process appending records is killed with SIGKILL at random moments.
// Every record it reported as saved is in the outbox afterwards, the
// counters have no gap and the hash chain is unbroken.
func TestKill9DuringAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test skipped in -short mode")
	}
	path := filepath.Join(t.TempDir(), "outbox.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	acked := map[uint32]bool{}
	n := crashIterations()
	for it := 0; it < n; it++ {
		cmd, lines, stderr := startChild(t, childEnv+"="+path)
		// wait for the first saved record, then kill at a random moment
		first, ok := <-lines
		if !ok {
			cmd.Wait()
			t.Fatalf("child said nothing: %s", stderr.String())
		}
		require.True(t, strings.HasPrefix(first, "ok "), first)
		kill := time.After(time.Duration(rng.IntN(40_000)) * time.Microsecond)
		got := []string{first}
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				got = append(got, l)
			case <-kill:
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
				kill = nil
			}
		}
		cmd.Wait()
		for _, l := range got {
			f := strings.Fields(l)
			require.Equal(t, "ok", f[0], "child: %s", l)
			v, err := strconv.ParseUint(f[1], 10, 32)
			require.NoError(t, err)
			acked[uint32(v)] = true
		}
	}

	ob := open(t, path, outbox.Options{})
	require.Empty(t, ob.MovedAside, "kill -9 never corrupts the outbox")
	items, err := ob.Claim(1<<30, 1<<40)
	require.NoError(t, err)
	var prev [32]byte
	stored := map[uint32]bool{}
	for i, it := range items {
		r, err := record.Decode(it.Encoded)
		require.NoError(t, err)
		require.NoError(t, r.Verify(&testKey.PublicKey))
		assert.Equal(t, uint32(i+1), r.Counter, "no gap, no repeat")
		assert.Equal(t, prev, r.PrevHash, "chain unbroken at %d", i)
		prev, _ = r.Hash()
		stored[r.Counter] = true
	}
	for c := range acked {
		assert.True(t, stored[c], "record %d was reported saved and is gone", c)
	}
	t.Logf("%d kills, %d records reported saved, %d stored", n, len(acked), len(items))
}
