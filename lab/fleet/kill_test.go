package fleet_test

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/pgtest"
	"kpe-agent/lab/fleet"
	"kpe-agent/sync/backoffice"
)

// node is a kpe-backoffice serve process.
type node struct {
	cmd        *exec.Cmd
	url, staff string
	wait       chan error
}

var readyLine = regexp.MustCompile(`ready: terminals (https://\S+), staff page (http://\S+)/ `)

// startNode starts kpe-backoffice serve on dsn with the fleet's PKI, on
// ports of the system's choosing, and waits for its ready line.
func startNode(t testing.TB, bin, dsn string, pki fleet.PKIFiles, extra ...string) *node {
	args := append([]string{"serve", "--pg", dsn, "--listen", "127.0.0.1:0", "--staff-listen", "127.0.0.1:0",
		"--verify-rate", "1000", "--verify-burst", "1000", "--verify-total-rate", "1000", "--verify-total-burst", "1000"}, pki.ServeArgs()...)
	cmd := exec.Command(bin, append(args, extra...)...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	n := &node{cmd: cmd, wait: make(chan error, 1)}
	go io.Copy(io.Discard, stderr) // the nodes' logs (ingest failures while one dies) are not the test's
	ready := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m
			}
		}
	}()
	go func() { n.wait <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-n.wait
	})
	select {
	case m := <-ready:
		n.url, n.staff = m[1], m[2]
	case err := <-n.wait:
		n.wait <- err
		t.Fatalf("kpe-backoffice serve ended before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("kpe-backoffice serve not ready within 60 s")
	}
	return n
}

// Two kpe-backoffice serve processes on one PostgreSQL take a storm of
// 200 terminals × 20 records spread over both; one is killed with
// SIGKILL mid-storm. Its terminals fail over to the other node (and the
// prober's verifications too), and afterwards every record is stored
// exactly once: one row per record and code, each SAM's counters 1…20
// without a gap, each terminal's count and chain whole, no alarm.
func TestNodeKilledMidStorm(t *testing.T) {
	const terminals, records = 200, 20
	dir := t.TempDir()
	bin := filepath.Join(dir, "kpe-backoffice")
	// The build has its own generous bound: on a loaded CI machine with a
	// cold cache it can take minutes, which is not the storm's time.
	buildCtx, buildCancel := context.WithTimeout(context.Background(), 10*time.Minute)
	out, err := exec.CommandContext(buildCtx, "go", "build", "-o", bin, "kpe-agent/cmd/kpe-backoffice").CombinedOutput()
	buildCancel()
	require.NoError(t, err, "%s", out)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, files, err := fleet.OpenPKI(filepath.Join(dir, "pki"))
	require.NoError(t, err)
	pki, files2, err := fleet.OpenPKI(files.Dir) // read back as written
	require.NoError(t, err)
	require.Equal(t, files, files2)
	dsn := pgtest.DB(t)

	var nodes [2]*node
	var wg sync.WaitGroup
	for i := range nodes { // both start together: the migrations serialise
		wg.Add(1)
		go func() { defer wg.Done(); nodes[i] = startNode(t, bin, dsn, files) }()
	}
	wg.Wait()
	require.False(t, t.Failed())

	// the prober's verifier account, made as an operator would
	add := exec.CommandContext(ctx, bin, "user", "add", "fleet-prober", "--role", "verifier", "--password-stdin", "--pg", dsn)
	add.Stdin = strings.NewReader("fleet prober password 1\n")
	out, err = add.CombinedOutput()
	require.NoError(t, err, "%s", out)

	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	defer pool.Close()
	f, err := fleet.New(ctx, fleet.Config{URLs: []string{nodes[0].url, nodes[1].url}, StaffURLs: []string{nodes[0].staff, nodes[1].staff},
		StaffUser: "fleet-prober", StaffPassword: "fleet prober password 1",
		Roots: pki.TLSCA.Pool(), TerminalCA: pki.TLSCA, SAMCA: pki.SAMCA, Terminals: terminals, Records: records,
		BatchRecords: 4, MaxBackoff: 3 * time.Second, Timeout: 20 * time.Second, ProbeRate: 50})
	require.NoError(t, err)

	type result struct {
		rep *fleet.Report
		err error
	}
	done := make(chan result, 1)
	go func() { rep, err := f.Run(ctx); done <- result{rep, err} }()
	// mid-storm: a fifth of the records stored
	var stored int
	for stored < terminals*records/5 {
		select {
		case r := <-done:
			t.Fatalf("the storm ended before the kill: %v\n%s", r.err, r.rep)
		case <-time.After(20 * time.Millisecond):
		}
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM records").Scan(&stored))
	}
	require.NoError(t, nodes[0].cmd.Process.Kill()) // SIGKILL
	killedAt := stored
	r := <-done
	require.NoError(t, r.err)
	rep := r.rep
	t.Logf("node 0 killed at %d of %d records stored\n%s", killedAt, terminals*records, rep)
	assert.Less(t, killedAt, terminals*records, "killed before the end")
	assert.Positive(t, rep.Failovers, "terminals of the killed node moved to the other")

	const n = terminals * records
	assert.Zero(t, rep.Rejected, "%v", rep.RejectReasons)
	assert.Equal(t, n, rep.Accepted+rep.Duplicate, "every record answered taken")
	assert.Zero(t, rep.VerifyWrong, "an accepted code not found")
	assert.Zero(t, rep.VerifyErr, "the prober fails over to the other node's staff listener: %v", rep.VerifyErrReasons)
	assert.Positive(t, rep.Verifies, "the prober, signed in on both nodes, verified codes")

	var rows, codes, terms, badSAMs, badTerms, alarms int
	q := func(sql string, dst ...any) { require.NoError(t, pool.QueryRow(ctx, sql).Scan(dst...), sql) }
	q("SELECT count(*), count(DISTINCT code), count(DISTINCT terminal_id) FROM records", &rows, &codes, &terms)
	assert.Equal(t, n, rows, "stored exactly once")
	assert.Equal(t, n, codes)
	assert.Equal(t, terminals, terms)
	// a batch the killed node committed but did not answer is sent again to
	// the other node and answered duplicate: accepted + duplicate = n
	// (above) while the rows stay n
	assert.LessOrEqual(t, rep.Accepted, n)
	q(`SELECT count(*) FROM (SELECT sam_serial, count(*) c, min(counter) lo, max(counter) hi FROM records GROUP BY sam_serial) s
		WHERE c <> 20 OR lo <> 1 OR hi <> 20`, &badSAMs)
	assert.Zero(t, badSAMs, "each SAM's counters 1…20, none missing or doubled")
	q("SELECT count(*) FROM terminals WHERE records <> 20 OR chain_breaks <> 0", &badTerms)
	assert.Zero(t, badTerms, "each terminal's count and chain")
	q("SELECT count(*) FROM alarms", &alarms)
	assert.Zero(t, alarms)
	st, err := backoffice.OpenPostgres(ctx, dsn)
	require.NoError(t, err)
	defer st.Close()
	g, err := st.Gauges(ctx, time.Now(), nil)
	require.NoError(t, err)
	assert.Zero(t, g.SAMsWithGaps, "the counter ledgers: no gap")
	assert.Equal(t, int64(terminals), g.Terminals)

	// the surviving node still answers
	select {
	case err := <-nodes[1].wait:
		t.Fatalf("the other node ended: %v", err)
	default:
	}
}
