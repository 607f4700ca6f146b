package logging

import (
	"errors"
	"fmt"
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
type RotatingWriter struct {
	mu       sync.Mutex
	path     string
	maxBytes int64
	maxFiles int
	f        *os.File
	size     int64
	closed   bool

	rotateFailed bool // reported on stderr; reset by a rotation that works
}

// NewRotatingWriter opens (appending) or creates path, creating its
// directory (0750) if needed, and removes rotated files beyond maxFiles
// left by a larger setting. maxBytes and maxFiles must be positive.
func NewRotatingWriter(path string, maxBytes int64, maxFiles int) (*RotatingWriter, error) {
	if maxBytes <= 0 || maxFiles <= 0 {
		return nil, fmt.Errorf("logging: %s: size %d and file count %d must be positive", path, maxBytes, maxFiles)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("logging: %w", err)
	}
	w := &RotatingWriter{path: path, maxBytes: maxBytes, maxFiles: maxFiles}
	if err := w.open(); err != nil {
		return nil, err
	}
	w.removeStale()
	return w, nil
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
			os.Remove(m)
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

// Write writes p to the current file, rotating first if p would not fit.
func (w *RotatingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, os.ErrClosed
	}
	if w.size > 0 && w.size+int64(len(p)) > w.maxBytes {
		if err := w.rotate(); err != nil {
			if w.f == nil {
				return 0, err // no file to write to
			}
			// The line still goes to the current file: the log is the
			// only place to tell, and a line lost would hide more.
			if !w.rotateFailed {
				w.rotateFailed = true
				fmt.Fprintf(os.Stderr, "logging: rotating %s: %v\n", w.path, err)
			}
		} else {
			w.rotateFailed = false
		}
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	return n, err
}

// rotate shifts the files and opens a fresh current one. On failure the
// writer keeps a file open when it can, so no line is lost.
func (w *RotatingWriter) rotate() error {
	_ = w.f.Close()
	w.f = nil
	var err error
	if w.maxFiles == 1 {
		err = os.Remove(w.path)
	} else {
		_ = os.Remove(w.rotated(w.maxFiles - 1))
		for i := w.maxFiles - 2; i >= 1; i-- {
			if e := os.Rename(w.rotated(i), w.rotated(i+1)); e != nil && !errors.Is(e, fs.ErrNotExist) {
				err = e
			}
		}
		if e := os.Rename(w.path, w.rotated(1)); e != nil {
			err = e
		}
	}
	if oerr := w.open(); oerr != nil {
		return errors.Join(err, oerr)
	}
	return err
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
