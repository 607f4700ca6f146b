//go:build linux

package pcsctest

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A descriptor inherited without close-on-exec (as flock(1) passes its
// lock to the command it runs) must not reach the pcscd Start runs.
func TestCloseInheritedOnExec(t *testing.T) {
	fd, err := syscall.Dup(0) // dup does not set close-on-exec
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	childHas := func() bool {
		out, err := exec.Command("/bin/sh", "-c", "ls /proc/self/fd").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.Fields(string(out)) {
			if f == strconv.Itoa(fd) {
				return true
			}
		}
		return false
	}
	if !childHas() {
		t.Fatalf("descriptor %d should reach a child before closeInheritedOnExec", fd)
	}
	closeInheritedOnExec()
	if childHas() {
		t.Fatalf("descriptor %d still reaches a child", fd)
	}
	// this process keeps it open
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0); errno != 0 {
		t.Fatalf("descriptor %d closed here: %v", fd, errno)
	}
}
