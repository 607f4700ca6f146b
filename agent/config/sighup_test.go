//go:build unix

package config

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWatchSIGHUP(t *testing.T) {
	s, p := newTestStore(t, storeBase)
	// Changed before Watch watches: only the signal can make it reload.
	rewrite(t, p, strings.Replace(storeBase, "interval: 30s", "interval: 45s", 1))
	changes, _ := startWatch(t, s)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	ch := waitChange(t, changes)
	require.Equal(t, []string{"sync.interval"}, ch.Applied)
	require.Equal(t, 45*time.Second, s.Current().Sync.Interval)
}

// A SIGHUP before Watch runs (the agent still starting) neither kills
// the process nor is lost: the Watch that starts later reloads for it.
// One after Watch stopped (the agent shutting down) is caught too.
func TestSIGHUPQueuedBeforeWatch(t *testing.T) {
	sigs := CatchReloadSignals()
	require.NotNil(t, sigs)
	require.Equal(t, sigs, CatchReloadSignals(), "one channel per process")
	s, p := newTestStore(t, storeBase)
	rewrite(t, p, strings.Replace(storeBase, "level: info", "level: debug", 1))
	for range 3 { // several count as one
		require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	}
	require.Eventually(t, func() bool { return len(sigs) == 1 }, 5*time.Second, 5*time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	changes := make(chan Change, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, nil, func(_ *Config, ch Change) { changes <- ch })
	}()
	ch := waitChange(t, changes)
	require.Equal(t, []string{"log.level"}, ch.Applied)
	require.Equal(t, "debug", s.Current().Log.Level)
	cancel()
	<-done

	// Watch stopped: the signal is caught and stays pending (the process
	// lives on to run the next line).
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return len(sigs) == 1 }, 5*time.Second, 5*time.Millisecond)
	<-sigs // leave nothing pending for other tests
	select {
	case ch := <-changes:
		t.Fatalf("a reload after Watch stopped: %+v", ch)
	default:
	}
}
