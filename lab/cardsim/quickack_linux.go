package cardsim

import (
	"net"
	"syscall"
)

// quickAck asks Linux to acknowledge the next segments at once.
//
// vpcd writes each message as two send() calls (the 2-byte length, then the
// body) on a socket without TCP_NODELAY. Nagle's algorithm holds the body
// until the length is acknowledged, and our delayed ACK holds that for up to
// 40 ms, so every exchange would stall for ~40 ms. The kernel clears
// TCP_QUICKACK by itself, so it is set again before every read.
func quickAck(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
