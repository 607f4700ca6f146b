//go:build unix

// Package systest holds what the tests that change this machine (register
// the kpe-agent service, install its package) share: the loud skip that
// fails under CI, and the lock that keeps them from overlapping (go test
// runs packages in parallel). Buffer (every platform) is the output sink
// tests read while a process or a goroutine writes it.
package systest

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Need skips a test whose prerequisite is missing, loudly; under CI=true a
// missing prerequisite fails the test instead.
func Need(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	msg := "NOT RUN: " + what
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI=true: a missing prerequisite is a failure")
	}
	fmt.Fprintln(os.Stderr, "\n!!!!!!!! "+msg+" !!!!!!!!")
	t.Skip(msg)
}

// LockService serialises the tests that register the kpe-agent service or
// install its package, across test binaries, until the test ends.
func LockService(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "kpe-agent-service-tests.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}
