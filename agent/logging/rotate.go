package logging

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// RotatingWriter writes to a file, rotating it before a write would make
// it larger than its maximum size: agent.log becomes agent.log.1,
// agent.log.1 becomes agent.log.2 and so on; at most maxFiles files are
// kept, the current one included. Each Write goes whole into one file,
// so a log line is never split (a single write larger than the maximum
// goes alone into a fresh file). Files are created with mode 0640. Safe
// for concurrent use.
//
// A rotation loses no file when it fails. The current file is moved
// aside first (to agent.log.rotating) and the others are shifted only
// once that worked. When it cannot be renamed (on Windows, while another
// program holds it open), it is copied aside and emptied instead, as
// logrotate's copytruncate does. When that fails too, the writer keeps
// appending to the current file, reports the failure on standard error
// once, and tries again only after another maximum size's worth of
// bytes, or before a write would take the files together (the current
// one, the rotated ones and one set aside) past the budget, maxFiles
// times the maximum size, whichever comes first. If rotation fails then
// too, the current file is emptied as a last resort: the log must not
// fill the disk the outbox is on. When a rotation works, rotated files
// that would keep the files over the budget (grown while rotation
// failed, or a single write larger than the maximum) are removed, oldest
// first. So the files never hold more than the budget, unless the
// current file cannot be emptied either, or a single write is larger
// than the whole budget.
type RotatingWriter struct {
	mu       sync.Mutex
	path     string
	maxBytes int64
	maxFiles int
	f        *os.File
	size     int64
	others   int64 // bytes in the rotated files and the one set aside
	closed   bool

	rotateFailed bool  // reported on stderr; reset by a rotation that works
	retryAt      int64 // after a failed rotation: the size at which to try again

	fs fileOps
}

// fileOps are the file operations rotation uses (tests inject failures).
type fileOps struct {
	rename   func(oldpath, newpath string) error
	remove   func(name string) error
	truncate func(name string) error     // empty a file
	copy     func(from, to string) error // to must not exist
}

var osFileOps = fileOps{
	rename:   os.Rename,
	remove:   os.Remove,
	truncate: func(name string) error { return os.Truncate(name, 0) },
	copy:     copyFile,
}

// NewRotatingWriter opens (appending) or creates path, creating its
// directory (0750) if needed, finishes a rotation a crash interrupted,
// and removes rotated files beyond maxFiles left by a larger setting.
// maxBytes and maxFiles must be positive.
func NewRotatingWriter(path string, maxBytes int64, maxFiles int) (*RotatingWriter, error) {
	return newRotatingWriter(path, maxBytes, maxFiles, osFileOps)
}

func newRotatingWriter(path string, maxBytes int64, maxFiles int, ops fileOps) (*RotatingWriter, error) {
	if maxBytes <= 0 || maxFiles <= 0 {
		return nil, fmt.Errorf("logging: %s: size %d and file count %d must be positive", path, maxBytes, maxFiles)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("logging: %w", err)
	}
	w := &RotatingWriter{path: path, maxBytes: maxBytes, maxFiles: maxFiles, fs: ops}
	if err := w.open(); err != nil {
		return nil, err
	}
	if exists(w.aside()) {
		_ = w.shiftIn() // a crash between moving agent.log aside and shifting
	}
	w.removeStale()
	w.measure()
	return w, nil
}

// budget is the most the files may hold together.
func (w *RotatingWriter) budget() int64 { return w.maxBytes * int64(w.maxFiles) }

// measure sets others to the bytes in the rotated files and the one set
// aside.
func (w *RotatingWriter) measure() {
	w.others = 0
	for _, name := range w.otherFiles() {
		if info, err := os.Lstat(name); err == nil {
			w.others += info.Size()
		}
	}
}

// otherFiles are the names of the rotated files, newest first, and of
// the one set aside.
func (w *RotatingWriter) otherFiles() []string {
	names := make([]string, 0, w.maxFiles)
	for i := 1; i < w.maxFiles; i++ {
		names = append(names, w.rotated(i))
	}
	return append(names, w.aside())
}

func (w *RotatingWriter) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("logging: %w", err)
	}
	_ = f.Chmod(0o640) // an older file may be wider; best effort
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("logging: %w", err)
	}
	w.f, w.size = f, info.Size()
	return nil
}

// removeStale removes path.N for N >= maxFiles.
func (w *RotatingWriter) removeStale() {
	matches, _ := filepath.Glob(globEscape(w.path) + ".*")
	for _, m := range matches {
		n, err := strconv.Atoi(strings.TrimPrefix(m, w.path+"."))
		if err == nil && n >= w.maxFiles {
			_ = w.fs.remove(m)
		}
	}
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) && filepath.Separator != '\\' {
			b.WriteRune('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (w *RotatingWriter) rotated(n int) string { return w.path + "." + strconv.Itoa(n) }

// aside is where the current file goes while the others are shifted.
func (w *RotatingWriter) aside() string { return w.path + ".rotating" }

func exists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}

// Write writes p to the current file, rotating first if p would not fit
// in it or in the budget.
func (w *RotatingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, os.ErrClosed
	}
	n := int64(len(p))
	if next := w.size + n; w.size > 0 && next > w.retryAt && (next > w.maxBytes || w.others+next > w.budget()) {
		emptied, err := w.rotate(n)
		switch {
		case err != nil:
			if w.f == nil {
				return 0, err // no file to write to
			}
			// The line still goes to the current file: the log is the
			// only place to tell, and a line lost would hide more. The
			// next attempt waits for another maxBytes, but comes before
			// the files would exceed the budget, so that the last resort
			// is in time. If it came too late (the current file could
			// not be emptied), only the maxBytes spacing holds.
			w.retryAt = w.size + w.maxBytes
			if room := w.budget() - w.others; w.size+n <= room {
				w.retryAt = min(w.retryAt, room)
			}
			if !w.rotateFailed {
				w.rotateFailed = true
				fmt.Fprintf(os.Stderr, "logging: rotating %s: %v (trying again after another %d bytes at most)\n", w.path, err, w.maxBytes)
			}
		case emptied:
			w.retryAt = 0 // the next attempt after another maxBytes
		default:
			w.rotateFailed, w.retryAt = false, 0
		}
	}
	if w.size == 0 && w.others+n > w.budget() {
		w.trim(n) // a write larger than the maximum, into an empty file
	}
	written, err := w.f.Write(p)
	w.size += int64(written)
	return written, err
}

// rotate starts a fresh current file before a write of n bytes, keeping
// the old ones as path.1 ... and then removing, oldest first, those that
// would take the files past the budget. On failure no file is lost,
// unless the write would take the files past the budget: the current
// file is then emptied (emptied is true, err nil). The writer keeps a
// file open when it can.
func (w *RotatingWriter) rotate(n int64) (emptied bool, err error) {
	_ = w.f.Close() // Windows renames no file that is open
	w.f = nil
	err = w.rotateFiles()
	w.measure()
	if err != nil {
		cur := w.size
		if info, serr := os.Lstat(w.path); serr == nil {
			cur = info.Size()
		} else if errors.Is(serr, fs.ErrNotExist) {
			cur = 0 // set aside before the shift failed: counted in others
		}
		if w.others+cur+n > w.budget() {
			// Last resort: the files would exceed the budget.
			if terr := w.fs.truncate(w.path); terr == nil {
				fmt.Fprintf(os.Stderr, "logging: %s emptied: it could not be rotated and the log files would have exceeded %d bytes: %v\n",
					w.path, w.budget(), err)
				emptied, err = true, nil
			}
		}
	}
	if oerr := w.open(); oerr != nil {
		return false, errors.Join(err, oerr)
	}
	if err == nil {
		w.trim(n)
	}
	return emptied, err
}

// trim removes rotated files, oldest first, while the files and a write
// of n bytes would exceed the budget.
func (w *RotatingWriter) trim(n int64) {
	for i := w.maxFiles - 1; i >= 1 && w.others+w.size+n > w.budget(); i-- {
		info, err := os.Lstat(w.rotated(i))
		if err != nil {
			continue
		}
		if err := w.fs.remove(w.rotated(i)); err == nil {
			w.others -= info.Size()
		}
	}
}

func (w *RotatingWriter) rotateFiles() error {
	if w.maxFiles == 1 {
		rerr := w.fs.remove(w.path)
		if rerr == nil || errors.Is(rerr, fs.ErrNotExist) {
			return nil
		}
		// Nothing is kept with one file: emptying it is the same.
		if terr := w.fs.truncate(w.path); terr != nil {
			return errors.Join(rerr, terr)
		}
		return nil
	}
	aside := w.aside()
	if exists(aside) {
		// Left by a rotation that could not finish: in place first, or
		// it would be overwritten.
		if err := w.shiftIn(); err != nil {
			return err
		}
	}
	if rerr := w.fs.rename(w.path, aside); errors.Is(rerr, fs.ErrNotExist) {
		return nil // removed by someone else: open makes a fresh one
	} else if rerr != nil {
		// Another program holds it open (Windows): copy it aside and
		// empty it, the old files untouched until both worked.
		if cerr := w.copyTruncate(aside); cerr != nil {
			return errors.Join(rerr, cerr)
		}
	}
	return w.shiftIn()
}

// copyTruncate copies the current file to aside, then empties it. If
// either step fails, aside is removed and the current file is as it was.
func (w *RotatingWriter) copyTruncate(aside string) error {
	err := w.fs.copy(w.path, aside)
	if err == nil {
		err = w.fs.truncate(w.path)
	}
	if err != nil {
		_ = os.Remove(aside)
	}
	return err
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// shiftIn moves the file set aside to path.1, making room by renaming
// path.i to path.i+1 down from the first free number, and removing the
// oldest, path.(maxFiles-1), only when there is none. If a rename fails,
// the files stay where they are, the one aside included, and the free
// number is then lower: the next attempt removes nothing.
func (w *RotatingWriter) shiftIn() error {
	if w.maxFiles == 1 {
		return w.fs.remove(w.aside()) // no rotated file is kept
	}
	free := 1
	for free < w.maxFiles && exists(w.rotated(free)) {
		free++
	}
	if free == w.maxFiles {
		free = w.maxFiles - 1
		if err := w.fs.remove(w.rotated(free)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	for i := free - 1; i >= 1; i-- {
		if err := w.fs.rename(w.rotated(i), w.rotated(i+1)); err != nil {
			return err
		}
	}
	return w.fs.rename(w.aside(), w.rotated(1))
}

// Close closes the current file; later writes fail with os.ErrClosed.
func (w *RotatingWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if w.f == nil {
		return nil
	}
	return w.f.Close()
}
