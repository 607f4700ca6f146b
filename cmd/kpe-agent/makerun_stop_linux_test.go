package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/internal/systest"
	"kpe-agent/lab/pcsctest"
)

// TestMakeRunStops is `make run` stopped the ways a terminal, a script,
// timeout(1) or a CI runner stop it: run as `setsid make run` (make leads
// its own process group), once up it gets SIGTERM, SIGHUP or SIGINT to
// its process group, SIGKILL to the shell running scripts/run-lab.sh, to
// make, or to the whole process group. Within 10 s no process of that
// run may be left (the back office, the card lab, the agent, make and the
// script), and the next make run, right after, comes up: each case is
// the next run after the one before. Last, a port of the lab held by
// someone else: make run refuses to start and names the process holding
// it.
//
// make run uses the lab's fixed ports (127.0.0.1:7531, 8443, 8080, 8444, 35990)
// and pcscd's vpcd readers: run it under the vpcd lock, with no lab of
// your own running.
func TestMakeRunStops(t *testing.T) {
	pcsctest.Require(t)
	repo := pcsctest.RepoPath(".")
	out, err := exec.Command("make", "-C", repo, "--no-print-directory", "build").CombinedOutput()
	require.NoError(t, err, "make build: %s", out)
	state := t.TempDir() // the lab's state, kept from one run to the next as a user's is

	for _, c := range []struct {
		name string
		stop func(t *testing.T, r *makeRun)
	}{
		{"SIGTERM to the process group", func(t *testing.T, r *makeRun) { r.signalGroup(t, syscall.SIGTERM) }},
		{"SIGHUP to the process group", func(t *testing.T, r *makeRun) { r.signalGroup(t, syscall.SIGHUP) }},
		{"SIGINT to the process group", func(t *testing.T, r *makeRun) { r.signalGroup(t, syscall.SIGINT) }},
		{"SIGKILL to the shell", func(t *testing.T, r *makeRun) {
			require.NoError(t, syscall.Kill(r.script, syscall.SIGKILL))
		}},
		{"SIGKILL to make", func(t *testing.T, r *makeRun) { require.NoError(t, syscall.Kill(r.make, syscall.SIGKILL)) }},
		{"SIGKILL to the process group", func(t *testing.T, r *makeRun) { r.signalGroup(t, syscall.SIGKILL) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := startMakeRun(t, repo, state)
			c.stop(t, r)
			r.requireAllGone(t, 10*time.Second)
		})
	}

	t.Run("a port held by another process", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:7531") // the agent's, in configs/lab.yaml
		require.NoError(t, err, "127.0.0.1:7531 is in use: is a lab running here?")
		defer ln.Close()
		cmd := exec.Command("make", "--no-print-directory", "-o", "build", "-o", "pcscd", "run")
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "KPE_LAB_STATE="+state, "KPE_LAB_NO_BROWSER=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		done := make(chan struct{})
		var out []byte
		go func() { defer close(done); out, err = cmd.CombinedOutput() }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			<-done
			t.Fatalf("make run with 127.0.0.1:7531 taken did not stop within 60 s:\n%s", out)
		}
		require.Error(t, err, "make run started with 127.0.0.1:7531 taken:\n%s", out)
		self, err := os.ReadFile("/proc/self/comm")
		require.NoError(t, err)
		for _, want := range []string{"127.0.0.1:7531", fmt.Sprintf("pid %d", os.Getpid()), strings.TrimSpace(string(self))} {
			require.Contains(t, string(out), want, "make run does not say what holds the agent's port")
		}
		requireNoProcessOf(t, state, 10*time.Second)
	})
}

// makeRun is one `setsid make run`, up.
type makeRun struct {
	state        string
	make, script int           // their pids; make's is its process group
	exited       chan struct{} // closed when make has exited
	out          *systest.Buffer
}

// startMakeRun starts `setsid make run` (its build and pcscd steps done
// already) with the lab's state in state, and waits until the script says
// everything runs. Whatever of it is left when the test ends is killed.
func startMakeRun(t *testing.T, repo, state string) *makeRun {
	t.Helper()
	requireNoProcessOf(t, state, 0)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.Command("make", "--no-print-directory", "-o", "build", "-o", "pcscd", "run")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "KPE_LAB_STATE="+state, "KPE_LAB_NO_BROWSER=1")
	// An *os.File: Wait does not wait for the children that share it.
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	require.NoError(t, cmd.Start())
	w.Close()
	run := &makeRun{state: state, make: cmd.Process.Pid, exited: make(chan struct{}), out: &systest.Buffer{}}
	go func() { _ = cmd.Wait(); close(run.exited) }()
	t.Cleanup(func() {
		for _, p := range processesOf(state) {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		for end := time.Now().Add(10 * time.Second); len(processesOf(state)) > 0 && time.Now().Before(end); {
			time.Sleep(50 * time.Millisecond)
		}
		if t.Failed() {
			t.Logf("make run's output:\n%s", run.out.String())
		}
	})
	up := make(chan struct{})
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		signalled := false
		for sc.Scan() {
			fmt.Fprintln(run.out, sc.Text())
			if !signalled && strings.Contains(sc.Text(), "Running: back office, card lab and agent") {
				signalled = true
				close(up)
			}
		}
	}()
	select {
	case <-up:
	case <-run.exited:
		t.Fatalf("make run exited before it was up:\n%s", run.out.String())
	case <-time.After(120 * time.Second):
		t.Fatalf("make run was not up within 120 s:\n%s", run.out.String())
	}
	ps := processesOf(state)
	var names []string
	for _, p := range ps {
		names = append(names, p.comm)
		if strings.Contains(p.cmdline, "scripts/run-lab.sh") && !strings.HasPrefix(p.comm, "kpe-") {
			run.script = p.pid
		}
	}
	for _, want := range []string{"kpe-backoffice", "kpe-cardsim", "kpe-agent", "make"} {
		require.Contains(t, names, want, "make run is up; its processes: %v", ps)
	}
	require.NotZero(t, run.script, "no shell runs scripts/run-lab.sh among %v", ps)
	return run
}

func (r *makeRun) signalGroup(t *testing.T, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, syscall.Kill(-r.make, sig))
}

// requireAllGone: within d, make has exited and no process of the run is
// left.
func (r *makeRun) requireAllGone(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	requireNoProcessOf(t, r.state, d)
	select {
	case <-r.exited:
	case <-time.After(time.Until(deadline)):
		t.Fatalf("make has not exited within %v", d)
	}
	// The run's card lab is gone; let pcscd see its cards leave before the
	// next run, or another package's test under the vpcd lock, takes the
	// slots (a card still shown present there is this run's, not theirs).
	for _, reader := range pcsctest.SlotReaders {
		pcsctest.WaitCard(t, reader, false, 15*time.Second)
	}
}

// requireNoProcessOf fails unless, within d, no process of the make run
// with state is left.
func requireNoProcessOf(t *testing.T, state string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ps := processesOf(state)
		if len(ps) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, p := range ps {
				fmt.Fprintf(&b, "\n  pid %d %s: %s", p.pid, p.comm, p.cmdline)
			}
			t.Fatalf("%v after the stop, processes of the make run are left:%s", d, b.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type process struct {
	pid           int
	comm, cmdline string
}

// processesOf lists the live processes (zombies aside) whose environment
// holds KPE_LAB_STATE=state: those of the make run given that state.
func processesOf(state string) []process {
	want := []byte("KPE_LAB_STATE=" + state)
	ents, _ := os.ReadDir("/proc")
	var ps []process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		env, err := os.ReadFile(filepath.Join(dir, "environ"))
		if err != nil || !slices.ContainsFunc(bytes.Split(env, []byte{0}), func(v []byte) bool { return bytes.Equal(v, want) }) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if i := bytes.LastIndexByte(stat, ')'); err != nil || i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		ps = append(ps, process{pid: pid, comm: strings.TrimSpace(string(comm)), cmdline: strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))})
	}
	return ps
}
