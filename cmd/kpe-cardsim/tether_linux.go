package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// tether sets the parent-death signal and execs args[0]. The signal is an
// attribute of the calling thread, and is kept across execve only for the
// thread that calls it: lock this goroutine to its thread for both.
func tether(parent int, newSession bool, args []string) error {
	path, err := exec.LookPath(args[0])
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if newSession {
		if _, err := syscall.Setsid(); err != nil {
			return fmt.Errorf("setsid: %w", err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_PDEATHSIG): %w", err)
	}
	// Set after a parent that died already: no signal would come.
	if ppid := os.Getppid(); ppid != parent {
		return fmt.Errorf("%w (--parent %d; this process's parent is now %d)", errParentGone, parent, ppid)
	}
	return syscall.Exec(path, args, os.Environ())
}
