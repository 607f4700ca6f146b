package config

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce is how long Watch waits after the last change of the file
// before reloading (editors write a file in several steps).
const debounce = 200 * time.Millisecond

// caught is the process's one channel of reload signals.
var caught struct {
	once sync.Once
	c    chan os.Signal
}

// CatchReloadSignals starts catching the reload signal (SIGHUP on Unix;
// there is none on Windows, where it returns nil) for the rest of the
// process's life, and returns the channel it arrives on. From the first
// call on, a SIGHUP no longer terminates the process, which is what Go
// does with a SIGHUP nobody catches: a program that may get one
// (systemctl reload) calls this first thing. Later calls return the
// same channel.
//
// Watch reads the channel. While no Watch runs (before it starts, after
// it stopped), one signal is kept pending, however many arrive; the next
// Watch reloads for it as soon as it starts. So a reload asked for while
// the agent starts is done once it is ready, and one asked for during
// its shutdown is ignored. One Watch at a time should run in a process.
func CatchReloadSignals() <-chan os.Signal {
	caught.once.Do(func() {
		if len(reloadSignals) > 0 {
			caught.c = make(chan os.Signal, 1)
			signal.Notify(caught.c, reloadSignals...)
		}
	})
	return caught.c
}

// Watch reloads the configuration until ctx ends: on SIGHUP (Unix; on
// Windows only file changes count; see CatchReloadSignals, which Watch
// calls) and when the file changes (its directory is watched, as
// editors replace files; changes are debounced for 200 ms). It logs
// what was applied and which changed keys need a restart (key names
// only, never values), keeps the current snapshot when the new file is
// invalid (logging why), and calls onChange (if not nil) with the new
// snapshot after a reload that changed something.
func (s *Store) Watch(ctx context.Context, log *slog.Logger, onChange func(*Config, Change)) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sigs := CatchReloadSignals()
	var (
		events <-chan fsnotify.Event
		errs   <-chan error
		base   string
	)
	if s.src.File != "" {
		abs, err := filepath.Abs(s.src.File)
		if err == nil {
			var w *fsnotify.Watcher
			if w, err = fsnotify.NewWatcher(); err == nil {
				defer w.Close()
				if err = w.Add(filepath.Dir(abs)); err == nil {
					events, errs, base = w.Events, w.Errors, filepath.Base(abs)
				}
			}
		}
		if err != nil {
			log.Warn("configuration file not watched; send SIGHUP to reload", "file", s.src.File, "err", err)
		}
	}
	if s.watchReady != nil {
		s.watchReady()
	}
	var pending <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-sigs:
			s.reloadAndLog(log, sig.String(), onChange)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if filepath.Base(ev.Name) == base && ev.Op != fsnotify.Chmod {
				pending = time.After(debounce)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			log.Warn("watching the configuration file", "err", err)
		case <-pending:
			pending = nil
			s.reloadAndLog(log, "file changed", onChange)
		}
	}
}

func (s *Store) reloadAndLog(log *slog.Logger, trigger string, onChange func(*Config, Change)) {
	ch, err := s.Reload()
	if err != nil {
		log.Error("configuration reload failed; keeping the current configuration", "trigger", trigger, "err", err)
		return
	}
	if ch.Empty() {
		log.Debug("configuration reloaded: nothing changed", "trigger", trigger)
		return
	}
	if len(ch.Applied) > 0 {
		log.Info("configuration reloaded", "trigger", trigger, "applied", ch.Applied)
	}
	if len(ch.NeedRestart) > 0 {
		log.Warn("configuration changed; restart needed for these keys", "trigger", trigger, "keys", ch.NeedRestart)
	}
	if onChange != nil {
		onChange(s.Current(), ch)
	}
}
