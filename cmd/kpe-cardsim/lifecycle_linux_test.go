package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// buildCardsim builds this command into a temporary directory.
func buildCardsim(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kpe-cardsim")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// TestTether: a command started by a shell through tether gets SIGTERM
// when the shell is killed with SIGKILL (which no trap sees); a command
// started without it is left running, as make run's children were.
func TestTether(t *testing.T) {
	bin := buildCardsim(t)
	for _, tethered := range []bool{true, false} {
		t.Run(fmt.Sprintf("tethered=%v", tethered), func(t *testing.T) {
			start := "sleep 300 &"
			if tethered {
				start = bin + " tether --parent $$ --setsid -- sleep 300 &"
			}
			sh := exec.Command("sh", "-c", start+" echo $!; wait")
			out, err := sh.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, sh.Start())
			line, err := bufio.NewReader(out).ReadString('\n')
			require.NoError(t, err)
			child, err := strconv.Atoi(strings.TrimSpace(line))
			require.NoError(t, err)
			defer syscall.Kill(child, syscall.SIGKILL)
			// tether has become sleep, in a session of its own
			require.Eventually(t, func() bool {
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", child))
				return strings.TrimSpace(string(comm)) == "sleep"
			}, 10*time.Second, 10*time.Millisecond)
			if tethered {
				sid, err := syscall.Getpgid(child)
				require.NoError(t, err)
				require.Equal(t, child, sid, "--setsid: the child leads its own process group")
			}

			require.NoError(t, sh.Process.Kill())
			_ = sh.Wait()
			gone := func() bool { return !alive(child) }
			if tethered {
				require.Eventually(t, gone, 20*time.Second, 10*time.Millisecond, "the tethered child outlived its parent")
			} else {
				time.Sleep(300 * time.Millisecond)
				require.False(t, gone(), "an untethered child died with its parent: the test shows nothing")
			}
		})
	}
}

func TestTetherRefuses(t *testing.T) {
	bin := buildCardsim(t)
	marker := filepath.Join(t.TempDir(), "ran")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		// a parent that is not this process's: it died, or the caller is wrong
		{[]string{"tether", "--parent", "999999999", "--", "touch", marker}, 1, "the parent process is gone"},
		{[]string{"tether", "--parent", "1", "--", "touch", marker}, 2, "--parent"},
		{[]string{"tether", "--parent", strconv.Itoa(os.Getpid()), "touch", marker}, 2, "after --"},
		{[]string{"tether", "--parent", strconv.Itoa(os.Getpid()), "--", "no-such-command-kpe"}, 1, "no-such-command-kpe"},
	} {
		cmd := exec.Command(bin, c.args...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%v: %s", c.args, out)
		require.Equal(t, c.code, exit.ExitCode(), "%v: %s", c.args, out)
		require.Contains(t, string(out), c.want, "%v", c.args)
		_, err = os.Stat(marker)
		require.True(t, os.IsNotExist(err), "%v: the command ran", c.args)
	}
	// the right parent: the command runs
	require.NoError(t, exec.Command(bin, "tether", "--parent", strconv.Itoa(os.Getpid()), "--", "touch", marker).Run())
	_, err := os.Stat(marker)
	require.NoError(t, err)
}

func TestCheckPorts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	held := ln.Addr().String()
	var stdout, stderr bytes.Buffer
	code := run([]string{"check-ports", held + "=the agent's local API"}, &stdout, &stderr)
	require.Equal(t, 1, code, "stdout %s stderr %s", &stdout, &stderr)
	require.Contains(t, stderr.String(), fmt.Sprintf("%s (the agent's local API) is in use by pid %d (", held, os.Getpid()))
	require.Contains(t, stderr.String(), "kill PID")

	require.NoError(t, ln.Close())
	stdout.Reset()
	stderr.Reset()
	require.Equal(t, 0, run([]string{"check-ports", held + "=the agent's local API", "127.0.0.1:0"}, &stdout, &stderr), "%s", &stderr)
	require.Equal(t, "free: 2 address(es)\n", stdout.String())
	require.Equal(t, 2, run([]string{"check-ports"}, &stdout, &stderr))
}
