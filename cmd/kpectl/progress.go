package main

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// progress is a one-line progress display on standard error, shown only
// when standard error is a terminal: scripts and CI logs get no noise.
type progress struct {
	mu    sync.Mutex
	w     io.Writer // nil: not a terminal, nothing shown
	shown bool
}

func (c *cli) newProgress() *progress {
	p := &progress{}
	if isTerminal(c.errOut) {
		p.w = c.errOut
	}
	return p
}

// isTerminal reports whether w is a character device (a console).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Show replaces the progress line.
func (p *progress) Show(format string, args ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K"+format, args...)
	p.shown = true
}

// Clear removes the progress line.
func (p *progress) Clear() {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}
