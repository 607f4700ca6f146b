//go:build !unix

package pcsctest

import (
	"errors"
	"testing"
)

// Lock is a no-op where the integration lab does not run (no pcscd/vpcd).
func Lock(t testing.TB) {}

func processAlive(pid int) bool { return false }

func kill(pid int) error { return errors.New("not supported on this platform") }

func closeInheritedOnExec() {}
