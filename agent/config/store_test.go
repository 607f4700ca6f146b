package config

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/internal/systest"
)

const storeBase = minimal + `sync:
  interval: 30s
log:
  level: info
outbox:
  max_records: 100
`

func newTestStore(t *testing.T, content string) (*Store, string) {
	t.Helper()
	p := writeFile(t, content)
	src := Source{File: p}
	c, err := Load(src)
	require.NoError(t, err)
	return NewStore(src, c), p
}

func rewrite(t *testing.T, p, content string) {
	t.Helper()
	// As editors do: write a new file and rename it over the old one.
	tmp := p + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, p))
}

func TestReloadSafeKeysOnly(t *testing.T) {
	s, p := newTestStore(t, storeBase)
	old := s.Current()

	ch, err := s.Reload()
	require.NoError(t, err)
	require.True(t, ch.Empty())
	require.Same(t, old, s.Current(), "nothing changed: same snapshot")

	rewrite(t, p, strings.NewReplacer("interval: 30s", "interval: 2m", "level: info", "level: debug",
		"max_records: 100", "max_records: 200", "site: S-01", "site: S-02").Replace(storeBase)+
		"messages:\n  id:\n    no-card: Masukkan kartu\n")
	ch, err = s.Reload()
	require.NoError(t, err)
	require.Equal(t, []string{"sync.interval", "log.level", "messages.id.no-card"}, ch.Applied)
	require.Equal(t, []string{"terminal.site", "outbox.max_records"}, ch.NeedRestart)

	cur := s.Current()
	require.NotSame(t, old, cur)
	require.Equal(t, 2*time.Minute, cur.Sync.Interval)
	require.Equal(t, "debug", cur.Log.Level)
	require.Equal(t, "Masukkan kartu", cur.Messages.ID["no-card"])
	require.Equal(t, "S-01", cur.Terminal.Site, "needs a restart: unchanged")
	require.Equal(t, 100, cur.Outbox.MaxRecords)
	require.Equal(t, p, cur.File)
	// The old snapshot is untouched.
	require.Equal(t, 30*time.Second, old.Sync.Interval)
	require.Equal(t, "info", old.Log.Level)
	require.Nil(t, old.Messages.ID)

	// Until the restart, the unsafe changes are listed again.
	ch, err = s.Reload()
	require.NoError(t, err)
	require.Empty(t, ch.Applied)
	require.Equal(t, []string{"terminal.site", "outbox.max_records"}, ch.NeedRestart)

	// A message removed is a change too.
	rewrite(t, p, storeBase)
	ch, err = s.Reload()
	require.NoError(t, err)
	require.Equal(t, []string{"sync.interval", "log.level", "messages.id.no-card"}, ch.Applied)
	require.Empty(t, s.Current().Messages.ID)
}

func TestReloadBrokenKeepsSnapshot(t *testing.T) {
	s, p := newTestStore(t, storeBase)
	old := s.Current()
	for _, broken := range []string{
		strings.Replace(storeBase, "interval: 30s", "interval: abc", 1),
		strings.Replace(storeBase, "level: info", "levle: debug", 1),
		"terminal: [\n",
	} {
		rewrite(t, p, broken)
		ch, err := s.Reload()
		require.ErrorIs(t, err, ErrInvalid)
		require.True(t, ch.Empty())
		require.Same(t, old, s.Current())
	}
	require.NoError(t, os.Remove(p))
	_, err := s.Reload()
	require.Error(t, err)
	require.Same(t, old, s.Current())
}

func TestConcurrentCurrent(t *testing.T) {
	s, p := newTestStore(t, storeBase)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				c := s.Current()
				if c.Log.Level != "info" && c.Log.Level != "debug" {
					t.Errorf("level %q", c.Log.Level)
					return
				}
				_ = c.Messages.ID["no-card"]
			}
		})
	}
	for i := range 30 {
		content := storeBase
		if i%2 == 0 {
			content = strings.Replace(storeBase, "level: info", "level: debug", 1) + "messages:\n  id:\n    no-card: x\n"
		}
		rewrite(t, p, content)
		_, err := s.Reload()
		require.NoError(t, err)
	}
	cancel()
	wg.Wait()
}

// startWatch runs Watch until the test ends and returns its changes.
func startWatch(t *testing.T, s *Store) (<-chan Change, *systest.Buffer) {
	t.Helper()
	logs := new(systest.Buffer)
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	changes := make(chan Change, 16)
	ready := make(chan struct{})
	s.watchReady = func() { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, log, func(c *Config, ch Change) {
			if s.Current() != c {
				t.Errorf("onChange got %p, Current is %p", c, s.Current())
			}
			changes <- ch
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	<-ready
	return changes, logs
}

func waitChange(t *testing.T, changes <-chan Change) Change {
	t.Helper()
	select {
	case ch := <-changes:
		return ch
	case <-time.After(10 * time.Second):
		t.Fatal("no reload")
	}
	return Change{}
}

func TestWatchFileChange(t *testing.T) {
	s, p := newTestStore(t, storeBase)
	changes, logs := startWatch(t, s)

	rewrite(t, p, strings.Replace(storeBase, "level: info", "level: debug", 1))
	ch := waitChange(t, changes)
	require.Equal(t, []string{"log.level"}, ch.Applied)
	require.Equal(t, "debug", s.Current().Log.Level)
	require.Contains(t, logs.String(), "configuration reloaded")

	// In place, as some editors write.
	require.NoError(t, os.WriteFile(p, []byte(strings.Replace(storeBase, "site: S-01", "site: S-09", 1)), 0o644))
	ch = waitChange(t, changes)
	require.Equal(t, []string{"log.level"}, ch.Applied)
	require.Equal(t, []string{"terminal.site"}, ch.NeedRestart)
	require.Contains(t, logs.String(), "restart needed")
	require.NotContains(t, logs.String(), "S-09", "values are not logged")

	// A broken file: logged, snapshot kept, no onChange.
	cur := s.Current()
	rewrite(t, p, "log:\n  levle: x\n")
	// An editor's write may reach the watcher in two steps (the truncated
	// file first, which fails for another reason), so wait for the failure
	// that names the unknown key rather than for the first failure.
	require.Eventually(t, func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "reload failed") && strings.Contains(l, "log.levle") {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond)
	require.Same(t, cur, s.Current())

	// Another file in the directory does not reload.
	before := strings.Count(logs.String(), "\n")
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(p), "other.yaml"), []byte("x"), 0o644))
	time.Sleep(3 * debounce)
	require.Equal(t, before, strings.Count(logs.String(), "\n"))
}
