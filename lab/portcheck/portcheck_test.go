package portcheck

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFree(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()

	err = Free(addr, "the agent's local API")
	var inUse *InUseError
	require.True(t, errors.As(err, &inUse), "%v", err)
	require.Equal(t, addr, inUse.Addr)
	if runtime.GOOS == "linux" {
		// this process holds it, and is named
		require.Len(t, inUse.Holders, 1, "%v", err)
		require.Equal(t, os.Getpid(), inUse.Holders[0].PID)
		self, xerr := os.Executable()
		require.NoError(t, xerr)
		require.Contains(t, inUse.Holders[0].Command, self)
		require.Contains(t, err.Error(), fmt.Sprintf("%s (the agent's local API) is in use by pid %d (%s", addr, os.Getpid(), self))
	}

	require.NoError(t, ln.Close())
	require.NoError(t, Free(addr, "the agent's local API"))
	// not a local address, or not an address: another error
	err = Free("no-port", "x")
	require.Error(t, err)
	require.False(t, errors.As(err, &inUse))
}

func TestParseTCP(t *testing.T) {
	// /proc/net/tcp and tcp6 lines: a listener on 7531 (0x1D6B) of uid
	// 1000, a connection from that port, a listener on another port
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1D6B 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1D6B 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
   3: garbage
`
	require.Equal(t, []socket{{inode: 4242, uid: 1000}}, parseTCP(strings.NewReader(table), 7531))
	require.Equal(t, []socket{{inode: 777, uid: 0}}, parseTCP(strings.NewReader(table), 8080))
	require.Empty(t, parseTCP(strings.NewReader(table), 35990))
}

func TestInUseErrorWithoutHolder(t *testing.T) {
	e := &InUseError{Addr: "127.0.0.1:8443", What: "the back office", UID: 1000}
	require.Equal(t, "127.0.0.1:8443 (the back office) is in use by a process of uid 1000 that this user cannot see", e.Error())
	e.UID = -1
	require.Equal(t, "127.0.0.1:8443 (the back office) is in use by a process that could not be found", e.Error())
}
