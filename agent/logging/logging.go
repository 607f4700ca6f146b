// Package logging sets up the agent's log: JSON lines through log/slog,
// to standard error or to a size-bounded rotating file, every record
// passed through a handler that redacts personal data.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"kpe-agent/agent/config"
)

// New returns the agent's logger for c: JSON lines to c.File, rotated at
// c.MaxSize MB with c.MaxFiles files kept (the current one included), or
// to standard error when c.File is "" (the service manager's journal).
// The level is level's (nil: a private one), which New sets to c.Level;
// set it again to change the level of a running logger. Attributes whose
// key names personal data are redacted (see Redact). Close the returned
// Closer when done (a no-op for standard error).
func New(c config.Log, level *slog.LevelVar) (*slog.Logger, io.Closer, error) {
	if level == nil {
		level = new(slog.LevelVar)
	}
	lv := slog.LevelInfo
	if c.Level != "" {
		var err error
		if lv, err = ParseLevel(c.Level); err != nil {
			return nil, nil, err
		}
	}
	level.Set(lv)
	var (
		w      io.Writer = os.Stderr
		closer io.Closer = nopCloser{}
	)
	if c.File != "" {
		rw, err := NewRotatingWriter(c.File, int64(max(c.MaxSize, 1))<<20, max(c.MaxFiles, 1))
		if err != nil {
			return nil, nil, err
		}
		w, closer = rw, rw
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(Redact(h)), closer, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// ParseLevel parses debug, info, warn or error (any case).
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("logging: level %q: want debug, info, warn or error", s)
}
