package logging

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

var errLocked = errors.New("The process cannot access the file because it is being used by another process.")

// lineOf is line i, 39 bytes: two fit in 100 bytes, three do not.
func lineOf(i int) []byte { return fmt.Appendf(nil, "%038d\n", i) }

// logLines returns the line numbers in the files, oldest file first
// (path.N ... path.1, path), and checks each file's size bound.
func logLines(t *testing.T, path string, maxFiles int) []int {
	t.Helper()
	var out []int
	for n := maxFiles; n >= 0; n-- {
		name := path
		if n > 0 {
			name = path + "." + strconv.Itoa(n)
		}
		b, err := os.ReadFile(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		for _, l := range strings.Fields(string(b)) {
			i, err := strconv.Atoi(l)
			require.NoError(t, err)
			out = append(out, i)
		}
	}
	return out
}

// consecutive checks the lines are from-, from+1, ... to.
func consecutive(t *testing.T, lines []int, from, to int) {
	t.Helper()
	want := []int{}
	for i := from; i <= to; i++ {
		want = append(want, i)
	}
	require.Equal(t, want, lines)
}

// ops injects failures: renaming the current file (as on Windows while
// another program holds it open), emptying it, copying it.
type ops struct {
	path                             string
	lockLive, noTruncate, noCopy     atomic.Bool
	failRenameFrom                   atomic.Value // string: a rotated file that cannot be moved
	liveRenames, truncates, removals atomic.Int32
}

func (o *ops) fileOps() fileOps {
	return fileOps{
		rename: func(from, to string) error {
			if from == o.path {
				o.liveRenames.Add(1)
				if o.lockLive.Load() {
					return &os.LinkError{Op: "rename", Old: from, New: to, Err: errLocked}
				}
			}
			if f, _ := o.failRenameFrom.Load().(string); f == from {
				return &os.LinkError{Op: "rename", Old: from, New: to, Err: errLocked}
			}
			return os.Rename(from, to)
		},
		remove: func(name string) error {
			o.removals.Add(1)
			return os.Remove(name)
		},
		truncate: func(name string) error {
			o.truncates.Add(1)
			if o.noTruncate.Load() {
				return errLocked
			}
			return os.Truncate(name, 0)
		},
		copy: func(from, to string) error {
			if o.noCopy.Load() {
				return errors.New("disk full")
			}
			return copyFile(from, to)
		},
	}
}

func newTestWriter(t *testing.T, maxFiles int) (*RotatingWriter, *ops, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.log")
	o := &ops{path: p}
	w, err := newRotatingWriter(p, 100, maxFiles, o.fileOps())
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	return w, o, p
}

func writeLines(t *testing.T, w *RotatingWriter, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		n, err := w.Write(lineOf(i))
		require.NoError(t, err)
		require.Equal(t, 39, n)
	}
}

// When agent.log cannot be renamed and cannot be emptied either, a
// rotation loses nothing (the old files were deleted one a line before),
// is tried again only after another maximum size's worth of bytes, and
// the rotation that works later brings the files back within the budget.
func TestRotationFailureLosesNothing(t *testing.T) {
	w, o, p := newTestWriter(t, 3)
	writeLines(t, w, 0, 5) // .2: 0 1, .1: 2 3, agent.log: 4 5
	consecutive(t, logLines(t, p, 3), 0, 5)
	old1, _ := os.ReadFile(p + ".1")
	old2, _ := os.ReadFile(p + ".2")

	o.lockLive.Store(true)
	o.noTruncate.Store(true)
	o.liveRenames.Store(0)
	writeLines(t, w, 6, 45) // 40 lines, 1560 bytes
	consecutive(t, logLines(t, p, 3), 0, 45)
	b1, _ := os.ReadFile(p + ".1")
	b2, _ := os.ReadFile(p + ".2")
	require.Equal(t, old1, b1, "untouched")
	require.Equal(t, old2, b2, "untouched")
	require.NoFileExists(t, p+".rotating")
	// One attempt per 100 bytes written past the limit (every second
	// line here), not one a line, and one more before the files would
	// exceed the budget (the last resort, which fails here).
	require.LessOrEqual(t, o.liveRenames.Load(), int32(21))
	require.GreaterOrEqual(t, o.liveRenames.Load(), int32(10))

	// Released: the next attempt works, and the files are back within
	// the budget: the file that grew past it on its own goes, after the
	// older ones.
	o.lockLive.Store(false)
	o.noTruncate.Store(false)
	writeLines(t, w, 46, 49)
	lines := logLines(t, p, 3)
	consecutive(t, lines, lines[0], 49)
	require.Greater(t, lines[0], 45)
	require.LessOrEqual(t, totalSize(t, filepath.Dir(p)), int64(300))
	require.NoFileExists(t, p+".3")
}

// When agent.log cannot be renamed but can be copied and emptied
// (copytruncate), rotation goes on as usual.
func TestRotationCopyTruncate(t *testing.T) {
	w, o, p := newTestWriter(t, 3)
	o.lockLive.Store(true)
	writeLines(t, w, 0, 9)
	consecutive(t, logLines(t, p, 3), 4, 9) // as without the lock
	for n, want := range map[string][]int{p: {8, 9}, p + ".1": {6, 7}, p + ".2": {4, 5}} {
		consecutive(t, logLines(t, n, 0), want[0], want[1])
	}
	require.NoFileExists(t, p+".rotating")
}

// A rotated file that cannot be moved stops the shift without removing
// anything more; the next rotation finishes it, no line lost.
func TestRotationShiftFailure(t *testing.T) {
	w, o, p := newTestWriter(t, 4)
	writeLines(t, w, 0, 7) // .3: 0 1, .2: 2 3, .1: 4 5, agent.log: 6 7
	o.failRenameFrom.Store(p + ".2")
	writeLines(t, w, 8, 8) // .3 removed (the oldest), .2 cannot move: 6 7 stay aside
	require.FileExists(t, p+".rotating")
	require.FileExists(t, p+".2")
	require.FileExists(t, p+".1")
	writeLines(t, w, 9, 12)
	o.failRenameFrom.Store("")
	removed := o.removals.Load()
	writeLines(t, w, 13, 20)
	require.NoFileExists(t, p+".rotating")
	lines := logLines(t, p, 4)
	consecutive(t, lines, lines[0], 20)
	require.Greater(t, o.removals.Load(), removed)
}

// When nothing works but emptying it, agent.log is emptied before it
// would exceed the whole budget (maxFiles times the maximum): bounded,
// not lost before that.
func TestRotationLastResort(t *testing.T) {
	w, o, p := newTestWriter(t, 3)
	o.lockLive.Store(true)
	o.noCopy.Store(true)
	maxSeen := int64(0)
	for i := range 60 {
		writeLines(t, w, i, i)
		info, err := os.Stat(p)
		require.NoError(t, err)
		maxSeen = max(maxSeen, info.Size())
	}
	require.LessOrEqual(t, maxSeen, int64(3*100))
	require.Greater(t, maxSeen, int64(3*100-39), "kept until the budget")
	require.NoFileExists(t, p+".1")
}

// One file: rotation removes it or, when it cannot, empties it.
func TestRotationOneFile(t *testing.T) {
	w, o, p := newTestWriter(t, 1)
	writeLines(t, w, 0, 2)
	consecutive(t, logLines(t, p, 1), 2, 2)
	o.lockLive.Store(true)
	writeLines(t, w, 3, 5)
	consecutive(t, logLines(t, p, 1), 4, 5)
}

// A rotation interrupted (a crash after agent.log was moved aside) is
// finished at the next start.
func TestRotationResumedAtStart(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "agent.log")
	require.NoError(t, os.WriteFile(p+".1", lineOf(1), 0o640))
	require.NoError(t, os.WriteFile(p+".rotating", lineOf(2), 0o640))
	w, err := NewRotatingWriter(p, 100, 3)
	require.NoError(t, err)
	writeLines(t, w, 3, 3)
	require.NoError(t, w.Close())
	consecutive(t, logLines(t, p, 3), 1, 3)
	require.NoFileExists(t, p+".rotating")
}

// totalSize is the bytes in all the files of dir.
func totalSize(t *testing.T, dir string) int64 {
	t.Helper()
	n := int64(0)
	for _, size := range files(t, dir) {
		n += size
	}
	return n
}

// While rotation keeps failing, the log files together (agent.log, the
// rotated ones and one set aside) never exceed the budget, maxFiles times
// the maximum: agent.log is emptied before a line would take them past
// it, whether or not rotated files are there. Once rotation works again,
// the files that grew too large go first, oldest first.
func TestRotationBudget(t *testing.T) {
	for _, before := range []int{0, 6} { // none rotated yet; .2, .1 and agent.log full
		t.Run(strconv.Itoa(before), func(t *testing.T) {
			w, o, p := newTestWriter(t, 3)
			dir := filepath.Dir(p)
			writeLines(t, w, 0, before-1)
			o.lockLive.Store(true)
			o.noCopy.Store(true)
			maxSeen := int64(0)
			for i := before; i < before+100; i++ {
				writeLines(t, w, i, i)
				maxSeen = max(maxSeen, totalSize(t, dir))
				require.LessOrEqual(t, maxSeen, int64(300), "line %d", i)
			}
			require.Greater(t, maxSeen, int64(300-39), "used up to the budget")
			require.Greater(t, o.truncates.Load(), int32(0), "agent.log emptied")
			cur := logLines(t, p, 0)
			consecutive(t, cur, cur[0], before+99)
			if before > 0 {
				consecutive(t, logLines(t, p+".1", 0), 2, 3) // untouched
				consecutive(t, logLines(t, p+".2", 0), 0, 1)
			}

			o.lockLive.Store(false)
			o.noCopy.Store(false)
			for i := before + 100; i < before+140; i++ {
				writeLines(t, w, i, i)
				require.LessOrEqual(t, totalSize(t, dir), int64(300), "line %d", i)
			}
			lines := logLines(t, p, 3)
			consecutive(t, lines, lines[0], before+139)
			require.NoFileExists(t, p+".rotating")
		})
	}
}
