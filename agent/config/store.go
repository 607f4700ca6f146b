package config

import (
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Store holds the current configuration snapshot and reloads it safely:
// only the keys that can change while the agent runs (log.level,
// sync.interval, messages.*) are taken from a reloaded configuration;
// the others keep their value until a restart.
type Store struct {
	src Source
	cur atomic.Pointer[Config]
	mu  sync.Mutex // serialises Reload

	watchReady func() // tests: called once Watch listens
}

// Change lists the keys a reload found changed.
type Change struct {
	Applied     []string // safe keys now in effect
	NeedRestart []string // changed keys that take effect only after a restart
}

// Empty reports whether nothing changed.
func (c Change) Empty() bool { return len(c.Applied) == 0 && len(c.NeedRestart) == 0 }

// NewStore returns a Store publishing initial (what Load(src) returned)
// and reloading from src. src's Environ and Set are those of the start:
// a reload reads the file again.
func NewStore(src Source, initial *Config) *Store {
	s := &Store{src: src}
	s.cur.Store(initial)
	return s
}

// Current returns the current snapshot. Safe for concurrent use; never
// modify it.
func (s *Store) Current() *Config { return s.cur.Load() }

// IsReloadable reports whether a change of key takes effect on reload
// (log.level, sync.interval, messages.*) rather than on restart.
func IsReloadable(key string) bool {
	return key == "log.level" || key == "sync.interval" || strings.HasPrefix(key, "messages.")
}

// Reload loads the source again. If the result is invalid, the current
// snapshot stays and the error is returned. Otherwise a new snapshot,
// the current one with the reloadable keys of the new configuration, is
// published, and the changed keys are listed: Applied (reloadable) and
// NeedRestart (the others, which keep their old value in the snapshot
// until a restart; they are listed again by each reload until then).
func (s *Store) Reload() (Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := Load(s.src)
	if err != nil {
		return Change{}, err
	}
	cur := s.cur.Load()
	if cur == nil {
		s.cur.Store(next)
		return Change{}, nil
	}
	var ch Change
	for _, k := range diff(cur, next) {
		if IsReloadable(k) {
			ch.Applied = append(ch.Applied, k)
		} else {
			ch.NeedRestart = append(ch.NeedRestart, k)
		}
	}
	if len(ch.Applied) > 0 {
		snap := *cur
		snap.Log.Level = next.Log.Level
		snap.Sync.Interval = next.Sync.Interval
		snap.Messages = next.Messages
		s.cur.Store(&snap)
	}
	return ch, nil
}

// diff lists the keys whose values differ, messages per code
// (messages.id.no-card).
func diff(a, b *Config) []string {
	var out []string
	for _, lf := range schemaKeys.ordered {
		va, vb := lf.field(a), lf.field(b)
		switch lf.kind {
		case kindList:
			if !slices.Equal(va.Interface().([]string), vb.Interface().([]string)) {
				out = append(out, lf.key)
			}
		case kindMap:
			ma, mb := va.Interface().(map[string]string), vb.Interface().(map[string]string)
			var codes []string
			for k, v := range ma {
				if w, ok := mb[k]; !ok || w != v {
					codes = append(codes, k)
				}
			}
			for k := range mb {
				if _, ok := ma[k]; !ok {
					codes = append(codes, k)
				}
			}
			sort.Strings(codes)
			for _, c := range codes {
				out = append(out, lf.key+"."+c)
			}
		default:
			if !reflect.DeepEqual(va.Interface(), vb.Interface()) {
				out = append(out, lf.key)
			}
		}
	}
	return out
}
