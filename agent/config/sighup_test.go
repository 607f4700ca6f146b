//go:build unix

package config

import (
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
