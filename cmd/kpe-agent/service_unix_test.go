//go:build !windows

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain runs runServiceWith in a child process when asked (the
// helper-process pattern): signals go to that process, not the test's.
func TestMain(m *testing.M) {
	if mode := os.Getenv("KPE_SERVICE_CHILD"); mode != "" {
		os.Exit(serviceChild(mode))
	}
	os.Exit(m.Run())
}

func serviceChild(mode string) int {
	// "ready" once the agent runs and the wrapper handles signals.
	runWaitHook = func() { fmt.Println("ready") }
	// "signalled" once the first signal was taken.
	runSignalHook = func(os.Signal) { fmt.Println("signalled") }
	stop := 10 * time.Second
	var agent agentFunc
	switch mode {
	case "wait":
		agent = func(ctx context.Context, _ runOptions, _ func()) error {
			<-ctx.Done()
			return nil
		}
	case "fail":
		agent = func(ctx context.Context, _ runOptions, _ func()) error {
			<-ctx.Done()
			return errors.New("outbox: close: disk full")
		}
	case "exit":
		agent = func(context.Context, runOptions, func()) error { return errors.New("config: terminal.id is required") }
	case "exitconfig":
		agent = func(context.Context, runOptions, func()) error {
			return configError{errors.New("config: agent.yaml:3: terminal.id: missing")}
		}
	case "exitnil":
		agent = func(context.Context, runOptions, func()) error { return nil }
	case "hang", "hang-long":
		if mode == "hang" {
			stop = 300 * time.Millisecond
		} else {
			stop = time.Minute
		}
		agent = func(context.Context, runOptions, func()) error {
			select {}
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown child mode", mode)
		return 99
	}
	return runServiceWith(runOptions{ConfigFile: "agent.yaml"}, os.Stderr, agent, stop)
}

// runChild starts the child in mode, waits for "ready" when signals is
// not empty, sends the signals (each once the child took the one before)
// and returns the exit code and stderr.
func runChild(t *testing.T, mode string, signals ...syscall.Signal) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KPE_SERVICE_CHILD="+mode)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if len(signals) > 0 {
		if !lines.Scan() || lines.Text() != "ready" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("child %s: no ready line (stderr %q)", mode, stderr.String())
		}
		for i, s := range signals {
			if err := cmd.Process.Signal(s); err != nil {
				t.Fatal(err)
			}
			// Two signals sent before the child takes the first can merge
			// into one: the next goes only once this one was taken.
			if i < len(signals)-1 && (!lines.Scan() || lines.Text() != "signalled") {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("child %s: no signalled line (stderr %q)", mode, stderr.String())
			}
		}
	}
	for lines.Scan() {
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("child %s did not exit within 30 s (stderr %q)", mode, stderr.String())
	}
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stderr.String()
}

func TestRunServiceSignals(t *testing.T) {
	for _, c := range []struct {
		name    string
		mode    string
		signals []syscall.Signal
		code    int
		stderr  string
	}{
		{"SIGTERM stops the agent", "wait", []syscall.Signal{syscall.SIGTERM}, 0, ""},
		{"SIGINT stops the agent", "wait", []syscall.Signal{syscall.SIGINT}, 0, ""},
		{"a failed shutdown exits 1", "fail", []syscall.Signal{syscall.SIGTERM}, 1, "outbox: close: disk full"},
		{"an agent error exits 1 at once", "exit", nil, 1, "config: terminal.id is required"},
		{"a configuration that keeps the agent from starting exits 78", "exitconfig", nil, exitConfig, "kpe-agent check-config"},
		{"an agent returning nil by itself exits 1", "exitnil", nil, 1, errAgentExited.Error()},
		{"a hung shutdown exits 1 after the stop timeout", "hang", []syscall.Signal{syscall.SIGTERM}, 1, errStopTimeout.Error()},
		{"a second signal exits at once", "hang-long", []syscall.Signal{syscall.SIGTERM, syscall.SIGTERM}, 1, "second signal"},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			code, stderr := runChild(t, c.mode, c.signals...)
			if code != c.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, c.code, stderr)
			}
			if c.stderr != "" && !strings.Contains(stderr, c.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, c.stderr)
			}
			if c.stderr == "" && stderr != "" {
				t.Errorf("unexpected stderr %q", stderr)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}
