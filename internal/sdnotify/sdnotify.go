// Package sdnotify tells the service manager about the service's state
// with the sd_notify protocol, in pure Go: one datagram of newline-separated
// VAR=value assignments to the unix socket that $NOTIFY_SOCKET names (a
// path, or an abstract socket name written with a leading '@'). systemd
// sets the variable for a unit with Type=notify; without it nothing is sent.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// The states the agent reports (sd_notify(3)).
const (
	Ready    = "READY=1"    // the service is up: systemd's start job is done
	Stopping = "STOPPING=1" // the service is shutting down
)

// EnvSocket is the variable that names the service manager's socket.
const EnvSocket = "NOTIFY_SOCKET"

// ErrSocketName is a $NOTIFY_SOCKET that is neither a path nor an abstract
// socket name (systemd 252 sets nothing else).
var ErrSocketName = errors.New("not an absolute path or an @abstract socket name")

// Notify sends state to the socket $NOTIFY_SOCKET names. It reports
// whether it sent anything: false, nil when the variable is not set (not
// run by a service manager that listens).
func Notify(state string) (bool, error) {
	return NotifySocket(os.Getenv(EnvSocket), state)
}

// NotifySocket sends state to the socket named socket ("" sends nothing).
func NotifySocket(socket, state string) (bool, error) {
	if socket == "" {
		return false, nil
	}
	// Go's net package turns a leading '@' into the abstract namespace's
	// leading NUL byte.
	if socket[0] != '/' && (socket[0] != '@' || len(socket) < 2) {
		return false, fmt.Errorf("%s=%q: %w", EnvSocket, socket, ErrSocketName)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("%s: %w", EnvSocket, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("%s: %w", EnvSocket, err)
	}
	return true, nil
}
