package fleet_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/internal/pgtest"
	"kpe-agent/lab/fleet"
)

// cpuTicks sums utime+stime (clock ticks) of the processes whose command
// name is comm (every PostgreSQL backend: "postgres"), or of pid.
func cpuTicks(comm string, pid int) int64 {
	var total int64
	read := func(p string) {
		b, err := os.ReadFile(filepath.Join("/proc", p, "stat"))
		if err != nil {
			return
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || (comm != "" && s[strings.IndexByte(s, '(')+1:i] != comm) {
			return
		}
		f := strings.Fields(s[i+2:]) // from field 3 (state)
		if len(f) < 13 {
			return
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		k, _ := strconv.ParseInt(f[12], 10, 64)
		total += u + k
	}
	if pid > 0 {
		read(strconv.Itoa(pid))
		return total
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			read(e.Name())
		}
	}
	return total
}

// machineTicks are the whole machine's busy and total clock ticks
// (/proc/stat's cpu line; idle and iowait are not busy).
func machineTicks() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		total += v
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return busy, total
}

// BenchmarkTwoNodes: the same storm against one kpe-backoffice serve
// node and then against two on the same PostgreSQL, in one run; reports
// both ingest rates, their ratio (the target: ≥ 1.6) and where
// the CPU went in each (the nodes, PostgreSQL, the fleet), against the
// machine's cores × the time (docs/backoffice.md, "Performance").
func BenchmarkTwoNodes(b *testing.B) {
	terminals, records := 500, 100
	if s := os.Getenv("KPE_BENCH_FLEET"); s != "" { // TERMINALSxRECORDS
		fmt.Sscanf(s, "%dx%d", &terminals, &records)
	}
	ctx := context.Background()
	dir := b.TempDir()
	bin := filepath.Join(dir, "kpe-backoffice")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "kpe-agent/cmd/kpe-backoffice").CombinedOutput()
	require.NoError(b, err, "%s", out)
	pki, files, err := fleet.OpenPKI(filepath.Join(dir, "pki"))
	require.NoError(b, err)
	dsn := pgtest.DB(b)
	nodes := []*node{startNode(b, bin, dsn, files), startNode(b, bin, dsn, files)}
	const hz = 100 // USER_HZ on Linux
	var rates [2]float64
	for b.Loop() {
		for k, n := range []int{1, 2} {
			var urls []string
			for _, nd := range nodes[:n] {
				urls = append(urls, nd.url)
			}
			f, err := fleet.New(ctx, fleet.Config{URLs: urls, Roots: pki.TLSCA.Pool(), TerminalCA: pki.TLSCA, SAMCA: pki.SAMCA,
				Terminals: terminals, Records: records, TerminalPrefix: fmt.Sprintf("bench%d-", n), MaxBackoff: 5 * time.Second})
			require.NoError(b, err)
			pg0, self0 := cpuTicks("postgres", 0), cpuTicks("", os.Getpid())
			mb0, mt0 := machineTicks()
			var node0 int64
			for _, nd := range nodes[:n] {
				node0 += cpuTicks("", nd.cmd.Process.Pid)
			}
			rep, err := f.Run(ctx)
			require.NoError(b, err)
			mb1, mt1 := machineTicks()
			var node1 int64
			for _, nd := range nodes[:n] {
				node1 += cpuTicks("", nd.cmd.Process.Pid)
			}
			pg, self, nodeCPU := float64(cpuTicks("postgres", 0)-pg0)/hz, float64(cpuTicks("", os.Getpid())-self0)/hz, float64(node1-node0)/hz
			avail := rep.Elapsed.Seconds() * float64(runtime.NumCPU())
			machine := float64(mb1-mb0) / float64(max(1, mt1-mt0)) * 100
			b.Logf("%d node(s): %d records in %s, %.0f records/s; 503 busy ×%d; CPU s: nodes %.1f, PostgreSQL %.1f, fleet %.1f, of %.1f available (%d cores); the machine %.0f%% busy (everything on it)",
				n, rep.Records, rep.Elapsed.Round(time.Millisecond), rep.Rate, rep.Answers503, nodeCPU, pg, self, avail, runtime.NumCPU(), machine)
			b.ReportMetric(machine, fmt.Sprintf("machine-busy%%-%dnode", n))
			rates[k] = rep.Rate
			b.ReportMetric(rep.Rate, fmt.Sprintf("rec/s-%dnode", n))
			b.ReportMetric((nodeCPU+pg+self)/avail*100, fmt.Sprintf("cpu%%-%dnode", n))
		}
	}
	b.ReportMetric(rates[1]/rates[0], "ratio-2v1")
}
