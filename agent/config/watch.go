package config

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce is how long Watch waits after the last change of the file
// before reloading (editors write a file in several steps).
const debounce = 200 * time.Millisecond

// Watch reloads the configuration until ctx ends: on SIGHUP (Unix; on
// Windows only file changes count) and when the file changes (its
// directory is watched, as editors replace files; changes are debounced
// for 200 ms). It logs what was applied and which changed keys need a
// restart (key names only, never values), keeps the current snapshot
// when the new file is invalid (logging why), and calls onChange (if
// not nil) with the new snapshot after a reload that changed something.
func (s *Store) Watch(ctx context.Context, log *slog.Logger, onChange func(*Config, Change)) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var sigs chan os.Signal
	if len(reloadSignals) > 0 {
		sigs = make(chan os.Signal, 1)
		signal.Notify(sigs, reloadSignals...)
		defer signal.Stop(sigs)
	}
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
