// Package pcsctest is test support for integration tests that run through the
// real pcscd with the vsmartcard vpcd driver and the card lab.
//
// Policy (docs/testing.md): a test may skip only when pcscd is not installed,
// and says so loudly; under CI (CI set in the environment) it fails instead.
// When pcscd is installed but not running, the harness starts it.
//
// All test packages share one pcscd and its two vpcd slots, and `go test`
// runs packages in parallel, so every integration test takes a cross-process
// lock (Lock) for its whole duration.
package pcsctest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kpe-agent/apdu"
	"kpe-agent/apdu/pcsc"
)

// Reader names that pcscd gives the two vpcd slots (FRIENDLYNAME "Virtual
// PCD" in /etc/reader.conf.d/vpcd).
const (
	Slot0 = "Virtual PCD 00 00"
	Slot1 = "Virtual PCD 00 01"
)

var announce sync.Once

// Require makes sure pcscd is installed and running, then takes the
// cross-process lock. Call it first in every integration test.
func Require(t testing.TB) {
	t.Helper()
	bin, err := pcscdPath()
	if err != nil {
		msg := "pcscd is not installed: run `make test` (it installs pcscd and vsmartcard-vpcd)"
		if os.Getenv("CI") != "" {
			t.Fatalf("INTEGRATION FAILED: %s; CI must never skip this test", msg)
		}
		fmt.Fprintf(os.Stderr, "\n!!!!!!!! SKIPPING PC/SC INTEGRATION TEST %s: %s !!!!!!!!\n\n", t.Name(), msg)
		t.Skip("SKIPPED LOUDLY: " + msg)
	}
	Lock(t)
	if err := ensureRunning(bin); err != nil {
		t.Fatalf("INTEGRATION FAILED: pcscd is installed (%s) but not usable: %v", bin, err)
	}
	announce.Do(func() {
		fmt.Printf("INTEGRATION: %s run through real pcscd (pid %d) with the vpcd driver\n",
			packageOf(t), pid())
	})
}

func packageOf(t testing.TB) string {
	wd, _ := os.Getwd()
	return filepath.Base(wd) + " tests"
}

func pcscdPath() (string, error) {
	if p, err := exec.LookPath("pcscd"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/pcscd", "/sbin/pcscd"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("not found")
}

// pid returns the pid of a live pcscd, or 0. The pid file is not trusted: a
// killed pcscd leaves it behind, and where PID 1 does not reap, a zombie.
func pid() int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err == nil && strings.TrimSpace(string(b)) == "pcscd" && processAlive(n) {
			return n
		}
	}
	return 0
}

func ensureRunning(bin string) error {
	if pid() != 0 && WaitReaders(5*time.Second) == nil {
		return nil
	}
	return Start()
}

// Start starts pcscd (it daemonises) and waits until its readers appear.
func Start() error {
	bin, err := pcscdPath()
	if err != nil {
		return err
	}
	if pid() == 0 {
		// A stale socket and pid file from a killed pcscd make a new one
		// refuse to start. Only removed when no pcscd lives.
		_ = os.Remove("/run/pcscd/pcscd.comm")
		_ = os.Remove("/run/pcscd/pcscd.pid")
		// pcscd lives on after the test: it must not inherit the
		// descriptors this process got from its parent, above all the
		// lock of `flock /tmp/kpe-vpcd.lock go test ...`, which it would
		// hold for its whole life and so block every later run.
		closeInheritedOnExec()
		out, err := exec.Command(bin).CombinedOutput()
		if err != nil {
			return fmt.Errorf("starting %s: %v: %s", bin, err, out)
		}
	}
	return WaitReaders(10 * time.Second)
}

// Stop kills pcscd (SIGKILL: the harshest case) and waits until it is gone.
func Stop() error {
	p := pid()
	if p == 0 {
		return nil
	}
	if err := kill(p); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for processAlive(p) {
		if time.Now().After(deadline) {
			return fmt.Errorf("pcscd (pid %d) did not exit", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The thread-group leader shows as a zombie while pcscd's other
	// threads may still be exiting with the socket open: wait until it
	// refuses connections, or the first client call after this may still
	// reach it (and fail with SCARD_E_NO_ACCESS rather than NO_SERVICE).
	for {
		c, err := net.Dial("unix", "/run/pcscd/pcscd.comm")
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("pcscd (pid %d) exited but its socket still accepts connections", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = os.Remove("/run/pcscd/pcscd.pid")
	return nil
}

// WaitReaders waits until pcscd lists both vpcd readers.
func WaitReaders(timeout time.Duration) error {
	tr := pcsc.New(pcsc.Options{})
	defer tr.Close()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		rs, err := tr.Readers(context.Background())
		if err == nil && hasReader(rs, Slot0) && hasReader(rs, Slot1) {
			return nil
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("vpcd readers did not appear within %v (last error: %v)", timeout, last)
}

func hasReader(rs []apdu.ReaderInfo, name string) bool {
	for _, r := range rs {
		if r.Name == name {
			return true
		}
	}
	return false
}

// WaitCard waits until the reader reports a card (present=true) or none.
func WaitCard(t testing.TB, reader string, present bool, timeout time.Duration) apdu.ReaderInfo {
	t.Helper()
	tr := pcsc.New(pcsc.Options{})
	defer tr.Close()
	deadline := time.Now().Add(timeout)
	for {
		rs, err := tr.Readers(context.Background())
		if err == nil {
			for _, r := range rs {
				if r.Name == reader && r.CardPresent == present {
					return r
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("reader %q: card present=%v not seen within %v (err %v, readers %+v)", reader, present, timeout, err, rs)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
