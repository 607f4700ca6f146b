package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/agent/config"
	"kpe-agent/internal/sdnotify"
	"kpe-agent/internal/systest"
	"kpe-agent/lab/labpki"
	"kpe-agent/lab/pcsctest"
)

// TestAgentNotifiesServiceManager is the unit's Type=notify: the kpe-agent
// binary, run on configs/lab.yaml with make run's files and $NOTIFY_SOCKET
// naming an abstract unixgram socket this test listens on (as systemd
// does), sends READY=1 once its local API answers, and STOPPING=1 when
// SIGTERM stops it. The agent is kept off this machine's pcscd (its
// client socket variable names a missing socket), so no reader is shared
// with other tests.
func TestAgentNotifiesServiceManager(t *testing.T) {
	repo := pcsctest.RepoPath(".")
	state := t.TempDir()
	const token = "notify-test-token-0123456789abcdef"
	env := runLabFiles(t, filepath.Join(repo, "scripts/run-lab.sh"), state, token)
	cfgFile := filepath.Join(repo, "configs/lab.yaml")
	cfg, err := config.Load(config.Source{File: cfgFile, Environ: env})
	require.NoError(t, err)
	_, err = labpki.Write(filepath.Join(state, "pki"), cfg.Terminal.ID)
	require.NoError(t, err)

	socket := fmt.Sprintf("@kpe-agent-notify-test-%d", os.Getpid())
	manager, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	require.NoError(t, err)
	defer manager.Close()
	messages := make(chan string, 16)
	go func() {
		defer close(messages)
		b := make([]byte, 4096)
		for {
			n, err := manager.Read(b)
			if err != nil {
				return
			}
			messages <- string(b[:n])
		}
	}()

	bin := filepath.Join(state, "kpe-agent")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	listen := freePort(t, "127.0.0.1")
	base := "http://" + listen
	cmd := exec.Command(bin, "run")
	cmd.Env = append(os.Environ(), append(env, "KPE_CONFIG="+cfgFile, "KPE_API_LISTEN="+listen,
		"KPE_SYNC_URL=https://127.0.0.1:1", "PCSCLITE_CSOCK_NAME="+filepath.Join(state, "no-pcscd.comm"),
		sdnotify.EnvSocket+"="+socket)...)
	log := &systest.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("kpe-agent's log:\n%s", log.String())
		}
	}()

	health := func() int {
		req, err := http.NewRequest("GET", base+api.PathHealth, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// the first message is READY=1, and the API answers when it comes
	select {
	case m := <-messages:
		lines := strings.Split(m, "\n")
		require.True(t, slices.Contains(lines, sdnotify.Ready), "the agent's first notification %q is not READY=1", m)
		require.Equal(t, http.StatusOK, health(), "READY=1 came before the local API answered")
		require.Contains(t, m, "\nSTATUS=local API listening on "+listen)
	case err := <-done:
		t.Fatalf("kpe-agent exited before it said READY=1: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("kpe-agent sent no READY=1 to $NOTIFY_SOCKET within 30 s of its start (its API answers: %d)", health())
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case m := <-messages:
		require.Equal(t, sdnotify.Stopping, m)
	case <-time.After(30 * time.Second):
		t.Fatal("kpe-agent sent no STOPPING=1 within 30 s of SIGTERM")
	}
	select {
	case err := <-done:
		require.NoError(t, err, "kpe-agent run after SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("kpe-agent did not exit within 30 s of SIGTERM")
	}
}
