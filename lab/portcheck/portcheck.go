// Package portcheck tells whether the lab's TCP ports are free and, when
// one is not, which process holds it, so that `make run` can say "held by
// pid 1234 (bin/kpe-agent run ...)" rather than "address already in use".
// The holder is found on Linux from /proc/net/tcp and /proc/net/tcp6 (the
// socket's inode) and /proc/PID/fd (the process with that socket open);
// elsewhere, or for another user's process, it is reported as unknown.
package portcheck

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Holder is a process that has a socket on the port open.
type Holder struct {
	PID     int
	Command string // its command line (or its name), "" when unreadable
}

// InUseError is a port that cannot be listened on because a socket holds it.
type InUseError struct {
	Addr    string   // host:port
	What    string   // what the lab runs there, e.g. "the agent's local API"
	Holders []Holder // empty when no process could be named
	UID     int      // the socket owner's uid (-1 unknown), for an unnamed holder
}

func (e *InUseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", e.Addr)
	if e.What != "" {
		fmt.Fprintf(&b, " (%s)", e.What)
	}
	b.WriteString(" is in use")
	switch {
	case len(e.Holders) > 0:
		for i, h := range e.Holders {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " by pid %d", h.PID)
			if h.Command != "" {
				fmt.Fprintf(&b, " (%s)", h.Command)
			}
		}
	case e.UID >= 0:
		fmt.Fprintf(&b, " by a process of uid %d that this user cannot see", e.UID)
	default:
		b.WriteString(" by a process that could not be found")
	}
	return b.String()
}

// Free returns nil when addr (host:port) can be listened on, an
// *InUseError naming the holders when it is in use, or another error
// (a bad address, a host that is not local).
func Free(addr, what string) error {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln.Close()
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s (%s): %w", addr, what, err)
	}
	e := &InUseError{Addr: addr, What: what, UID: -1}
	_, p, _ := net.SplitHostPort(addr)
	port, perr := strconv.ParseUint(p, 10, 16)
	if perr != nil {
		return e
	}
	socks := sockets("/proc", uint16(port))
	for _, s := range socks {
		e.UID = s.uid
	}
	e.Holders = holders("/proc", socks)
	return e
}

// socket is a TCP socket of /proc/net/tcp{,6} on the port.
type socket struct {
	inode uint64
	uid   int
}

// tcpListen is the LISTEN state in /proc/net/tcp.
const tcpListen = "0A"

// sockets reads the listening TCP sockets on port from proc's net/tcp and
// net/tcp6.
func sockets(proc string, port uint16) []socket {
	var out []socket
	for _, f := range []string{"net/tcp", "net/tcp6"} {
		fh, err := os.Open(filepath.Join(proc, f))
		if err != nil {
			continue
		}
		out = append(out, parseTCP(fh, port)...)
		fh.Close()
	}
	return out
}

// parseTCP reads a /proc/net/tcp table: "sl local_address rem_address st
// tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...", the local
// address as hex IP:PORT.
func parseTCP(r io.Reader, port uint16) []socket {
	var out []socket
	sc := bufio.NewScanner(r)
	sc.Scan() // the header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != tcpListen {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil || uint16(p) != port {
			continue
		}
		uid, err1 := strconv.Atoi(f[7])
		inode, err2 := strconv.ParseUint(f[9], 10, 64)
		if err1 != nil || err2 != nil || inode == 0 {
			continue
		}
		out = append(out, socket{inode: inode, uid: uid})
	}
	return out
}

// holders finds the processes with one of socks open among proc's
// /proc/PID/fd links ("socket:[INODE]").
func holders(proc string, socks []socket) []Holder {
	if len(socks) == 0 {
		return nil
	}
	want := map[string]bool{}
	for _, s := range socks {
		want["socket:["+strconv.FormatUint(s.inode, 10)+"]"] = true
	}
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil
	}
	var out []Holder
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join(proc, e.Name(), "fd"))
		if err != nil {
			continue // gone, or another user's
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(proc, e.Name(), "fd", fd.Name())); err == nil && want[l] {
				out = append(out, Holder{PID: pid, Command: command(filepath.Join(proc, e.Name()))})
				break
			}
		}
	}
	return out
}

// command is a process's command line, or its name.
func command(dir string) string {
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil && len(b) > 0 {
		return strings.TrimSpace(strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " "))
	}
	b, _ := os.ReadFile(filepath.Join(dir, "comm"))
	return strings.TrimSpace(string(b))
}
