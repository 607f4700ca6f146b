//go:build unix

package main

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/config"
)

// systemctl reload sends SIGHUP whenever it is asked to, also while the
// agent starts or stops; Go's default for a SIGHUP nobody catches is to
// end the process. runAgent catches it from its first line on, for good:
// here it returns at once (a configuration it refuses), and a SIGHUP
// after that must not end this test process.
func TestRunAgentCatchesSIGHUP(t *testing.T) {
	p := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(p, []byte("terminal: {site: pkm}\n"), 0o600))
	err := runAgent(context.Background(), runOptions{ConfigFile: p, Set: map[string]string{}}, nil)
	require.ErrorIs(t, err, config.ErrInvalid)

	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	select {
	case <-config.CatchReloadSignals(): // caught, and nothing left pending
	case <-time.After(10 * time.Second):
		t.Fatal("SIGHUP not delivered")
	}
}
