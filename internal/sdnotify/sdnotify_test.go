//go:build linux

package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// listen is a service manager's notification socket: a unixgram socket at
// name (a path, or @abstract).
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	require.NoError(t, err)
	return string(b[:n])
}

func TestNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	abstract := fmt.Sprintf("@kpe-sdnotify-test-%d", os.Getpid())
	for _, name := range []string{path, abstract} {
		t.Run(name, func(t *testing.T) {
			c := listen(t, name)
			t.Setenv(EnvSocket, name)
			sent, err := Notify(Ready + "\nSTATUS=serving")
			require.NoError(t, err)
			require.True(t, sent)
			require.Equal(t, "READY=1\nSTATUS=serving", receive(t, c))
			sent, err = Notify(Stopping)
			require.NoError(t, err)
			require.True(t, sent)
			require.Equal(t, "STOPPING=1", receive(t, c))
		})
	}
}

func TestNotifyWithoutManager(t *testing.T) {
	t.Setenv(EnvSocket, "")
	sent, err := Notify(Ready)
	require.NoError(t, err)
	require.False(t, sent)
}

func TestNotifyBadSocket(t *testing.T) {
	for _, name := range []string{"relative/notify", "@", "vsock:2:1234"} {
		sent, err := NotifySocket(name, Ready)
		require.ErrorIs(t, err, ErrSocketName, name)
		require.False(t, sent)
	}
	// a path where nobody listens: an error, no hang
	sent, err := NotifySocket(filepath.Join(t.TempDir(), "none"), Ready)
	require.Error(t, err)
	require.False(t, sent)
}
