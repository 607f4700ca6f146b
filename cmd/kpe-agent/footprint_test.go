package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	_ "kpe-agent/lab/cardsim/samapp"
	"kpe-agent/lab/labset"
	"kpe-agent/lab/pcsctest"
)

// BenchmarkIdleFootprint runs the real kpe-agent binary against the card
// lab through real pcscd (the lab SAM in slot 1, a KPE resting in slot 0)
// and measures what an idle terminal costs:
//   - start to ready: exec until the local API answers, against the exec
//     of `kpe-agent version` (the bare process start) in the same run;
//   - resident memory (VmRSS) once the SAM is ready and the card read;
//   - CPU over an idle window (KPE_BENCH_IDLE, default 60s), beside
//     pcscd's own CPU over the same window.
//
// Goals (issue 6): ready ≤ 300 ms, RSS ≤ 25 MB, CPU ≤ 0.5 %.
func BenchmarkIdleFootprint(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc")
	}
	idle := 60 * time.Second
	if v := os.Getenv("KPE_BENCH_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(b, err, "KPE_BENCH_IDLE")
		idle = d
	}
	pcsctest.Require(b)
	dir := b.TempDir()
	b.Setenv("KPE_CARDSIM_STATE_DIR", filepath.Join(dir, "cardsim"))
	lab := pcsctest.Lab(b)
	pcsctest.Insert(b, lab, 1, "lab/cards/sam.json")
	pcsctest.Insert(b, lab, 0, "lab/cards/kpe-budi.json")

	bin := filepath.Join(dir, "kpe-agent")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(b, err, "%s", out)
	cfg, token := labConfig(b, dir)

	var execs []time.Duration
	for range 5 {
		t0 := time.Now()
		require.NoError(b, exec.Command(bin, "version").Run())
		execs = append(execs, time.Since(t0))
	}
	slices.Sort(execs)
	bare := execs[len(execs)/2]

	for b.Loop() {
		cmd := exec.Command(bin, "run", "--config", cfg)
		cmd.Stderr = os.Stderr
		t0 := time.Now()
		require.NoError(b, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		api := "http://" + listenOf(b, cfg)
		var ready time.Duration
		require.Eventually(b, func() bool {
			resp, err := http.Get(api + "/v1/health")
			if err != nil {
				return false
			}
			resp.Body.Close()
			ready = time.Since(t0)
			return resp.StatusCode == 200
		}, 10*time.Second, time.Millisecond)
		var samReady time.Duration
		require.Eventually(b, func() bool {
			req, _ := http.NewRequest("GET", api+"/v1/readers", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var buf [4096]byte
			n, _ := resp.Body.Read(buf[:])
			s := string(buf[:n])
			samReady = time.Since(t0)
			return strings.Contains(s, `"role":"sam"`) && strings.Contains(s, `"state":"authenticated"`)
		}, 20*time.Second, 5*time.Millisecond)
		time.Sleep(2 * time.Second) // settle
		rss := vmRSS(b, cmd.Process.Pid)
		c0, p0 := cpuTicks(b, cmd.Process.Pid), cpuTicks(b, pcscdPid(b))
		time.Sleep(idle)
		c1, p1 := cpuTicks(b, cmd.Process.Pid), cpuTicks(b, pcscdPid(b))
		const hz = 100 // USER_HZ
		cpu := float64(c1-c0) / hz / idle.Seconds() * 100
		pcscdCPU := float64(p1-p0) / hz / idle.Seconds() * 100
		rssAfter := vmRSS(b, cmd.Process.Pid)
		t1 := time.Now()
		require.NoError(b, cmd.Process.Signal(syscall.SIGTERM))
		select {
		case err := <-done:
			require.NoError(b, err, "kpe-agent exit")
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			b.Fatal("kpe-agent did not stop within 20 s of SIGTERM")
		}
		stop := time.Since(t1)
		b.ReportMetric(float64(ready.Microseconds())/1000, "ready-ms")
		b.ReportMetric(float64(ready)/float64(bare), "ready/bare-exec")
		b.ReportMetric(float64(max(rss, rssAfter))/1024, "rss-MB")
		b.ReportMetric(cpu, "idle-cpu-%")
		b.Logf("start to ready %v (bare exec of `kpe-agent version` %v, ratio %.1f; SAM ready and resting card read at %v); "+
			"RSS %.1f MB after start, %.1f MB after %v idle (goal ≤ 25 MB); idle CPU %.3f %% over %v (goal ≤ 0.5 %%; pcscd itself %.3f %%); stop after SIGTERM %v",
			ready.Round(time.Millisecond), bare.Round(time.Microsecond), float64(ready)/float64(bare), samReady.Round(time.Millisecond),
			float64(rss)/1024, float64(rssAfter)/1024, idle, cpu, idle, pcscdCPU, stop.Round(time.Millisecond))
	}
}

// labConfig writes an agent configuration for the lab into dir and
// returns its path and the API token.
func labConfig(b *testing.B, dir string) (string, string) {
	repo := pcsctest.RepoPath(".")
	m, err := labset.LoadManifest(filepath.Join(repo, "testdata/cards/lab"))
	require.NoError(b, err)
	const token = "footprint-token-0123456789"
	require.NoError(b, os.WriteFile(filepath.Join(dir, "api-token"), []byte(token), 0o600))
	require.NoError(b, os.WriteFile(filepath.Join(dir, "sam-code"), []byte(m.SAM.ActivationCode), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := fmt.Sprintf(`terminal: {id: bench-01, site: bench, lab: true}
readers: {sam: ["%s"]}
sam: {activation_code_file: sam-code}
trust: {bkn: %s}
outbox: {path: outbox.db}
api: {listen: "127.0.0.1:%d", token_file: api-token}
log: {file: agent.log, level: info}
`, pcsctest.Slot1, filepath.Join(repo, "testdata/cards/lab/trust/bkn-ca.pem"), port)
	path := filepath.Join(dir, "agent.yaml")
	require.NoError(b, os.WriteFile(path, []byte(cfg), 0o600))
	return path, token
}

func listenOf(b *testing.B, cfg string) string {
	raw, err := os.ReadFile(cfg)
	require.NoError(b, err)
	i := strings.Index(string(raw), `listen: "`)
	require.GreaterOrEqual(b, i, 0)
	rest := string(raw)[i+len(`listen: "`):]
	return rest[:strings.IndexByte(rest, '"')]
}

func vmRSS(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(b, err)
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(b, err)
			return kb
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// cpuTicks is utime + stime of pid, in clock ticks.
func cpuTicks(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(b, err)
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 on
	u, err := strconv.ParseInt(f[11], 10, 64)                // utime, field 14
	require.NoError(b, err)
	st, err := strconv.ParseInt(f[12], 10, 64) // stime, field 15
	require.NoError(b, err)
	return u + st
}

func pcscdPid(b *testing.B) int {
	out, err := exec.CommandContext(context.Background(), "pidof", "pcscd").Output()
	require.NoError(b, err)
	pid, err := strconv.Atoi(strings.Fields(string(out))[0])
	require.NoError(b, err)
	return pid
}
