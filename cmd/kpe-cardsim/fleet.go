package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"kpe-agent/internal/clikit"
	"kpe-agent/lab/fleet"
	"kpe-agent/sync/backoffice"
)

// fleetCommand: kpe-cardsim fleet --pg DSN [--terminals N] [--records K]
// [--scenario storm|steady] ...
func fleetCommand(stdout io.Writer) *cobra.Command {
	var dsn, scenario, pkiDir, staffUser string
	var targets, staffs []string
	var terminals, records, batch, maxIngest, pgConns, staffConns int
	var pkiOnly, probeOnly bool
	var probeFor time.Duration
	var period, timeout time.Duration
	var probeRate float64
	cmd := &cobra.Command{
		Use:   "fleet (--pg DSN | --target URL... --staff URL... --pki DIR) [--terminals N] [--records K] [--scenario storm|steady] [flags]",
		Short: "Load-test a back office on PostgreSQL with N simulated terminals over mutual TLS",
		Long: `Starts a back office in this process on the PostgreSQL database DSN (a database of its own: the
migrations run and the records stay), with a fresh lab TLS CA and SAM CA, and simulates N terminals,
each with its own client certificate, SAM, hash chain and backlog of K sealed records, uploading
over mutual TLS: storm (all at once, whole backlogs) or steady (records one by one over --period).
--max-ingest is the back office's admission limit (503 busy + jittered Retry-After beyond it).

With --target (repeatable) it drives running kpe-backoffice serve nodes instead: terminals are spread
over them and fail over to the next on connection errors; --staff (repeatable) names their staff
listeners, --pki DIR the lab PKI they were started with (made and written there when DIR holds none;
--pki-only writes it, prints the serve flags and exits). --pg then only measures the database size.

The staff listeners want a signed-in account: --staff-user names a verifier account of the nodes
(kpe-backoffice user add NAME --role verifier), its password comes from $KPE_FLEET_STAFF_PASSWORD.

--probe-only runs only the verifier, in this process of its own, against --staff for --duration (or
until interrupted), verifying codes sampled from the database --pg: start it beside a fleet run so the
fleet's own load on its process does not count as verification latency.

A prober verifies accepted codes on the staff listener(s) meanwhile. Prints records
sent/accepted/duplicate/rejected, the ingest rate, upload latency p50/p99, 429/503 answers, verify
p50/p99 and the database size per record. Exit 1 when a record was not taken or was rejected.
See docs/backoffice.md, "Fleet run".`,
		Example: `  kpe-cardsim fleet --pg postgres://kpe:kpe@127.0.0.1:5432/kpe_fleet --terminals 2000 --records 100
  kpe-cardsim fleet --pki /tmp/fleet-pki --pki-only
  kpe-cardsim fleet --pki /tmp/fleet-pki --target https://127.0.0.1:8443 --target https://127.0.0.1:8444 \
      --staff http://127.0.0.1:8080 --staff http://127.0.0.1:8081 --pg "$DSN" -n 2000 -k 100`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			sc, err := fleet.ParseScenario(scenario)
			if err != nil {
				return clikit.Usagef("--scenario %q: want storm or steady", scenario)
			}
			if pkiOnly {
				if pkiDir == "" {
					return clikit.Usagef("--pki-only: want --pki DIR")
				}
				_, files, err := fleet.OpenPKI(pkiDir)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "PKI in %s; start each node with:\n  kpe-backoffice serve %s --pg DSN --verify-rate 1000 --verify-burst 1000 --verify-total-rate 1000 --verify-total-burst 1000\n",
					pkiDir, strings.Join(files.ServeArgs(), " "))
				return nil
			}
			if probeOnly {
				if len(staffs) == 0 || dsn == "" || probeFor <= 0 || probeRate <= 0 {
					return clikit.Usagef("--probe-only: want --staff URL, --pg DSN, --duration above 0 and --probe-rate above 0")
				}
				return probeOnlyRun(dsn, staffs, staffUser, probeRate, probeFor, stdout)
			}
			switch {
			case dsn == "" && len(targets) == 0:
				return clikit.Usagef("--pg: want the DSN of a PostgreSQL database for the back office (or --target URL)")
			case len(targets) > 0 && pkiDir == "":
				return clikit.Usagef("--target: want --pki DIR, the PKI the nodes were started with")
			case len(staffs) > 0 && len(targets) == 0:
				return clikit.Usagef("--staff: only with --target")
			case terminals < 1 || records < 1:
				return clikit.Usagef("--terminals and --records: want at least 1")
			case batch < 1 || batch > 1000:
				return clikit.Usagef("--batch: want 1 to 1000")
			case maxIngest < -1 || pgConns < 0 || staffConns < 0:
				return clikit.Usagef("--max-ingest: want -1 (no limit), 0 (the default) or more; --pg-conns and --pg-staff-conns 0 (the default) or more")
			case probeRate <= 0 || period <= 0 || timeout <= 0:
				return clikit.Usagef("--probe-rate, --period and --timeout: want more than 0")
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var cfg fleet.Config
			if len(targets) > 0 {
				pki, _, err := fleet.OpenPKI(pkiDir)
				if err != nil {
					return err
				}
				cfg = fleet.Config{URLs: targets, StaffURLs: staffs, Roots: pki.TLSCA.Pool(), TerminalCA: pki.TLSCA, SAMCA: pki.SAMCA,
					StaffUser: staffUser, StaffPassword: os.Getenv("KPE_FLEET_STAFF_PASSWORD")}
				if dsn != "" {
					pool, err := pgxpool.New(ctx, dsn)
					if err != nil {
						return fmt.Errorf("--pg: %w", err)
					}
					defer pool.Close()
					cfg.DBSize = func(ctx context.Context) (n int64, err error) {
						err = pool.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n)
						return n, err
					}
				}
			} else {
				errs := &errorCounts{}
				l, err := fleet.StartLocal(ctx, dsn, fleet.LocalOptions{MaxIngest: maxIngest,
					Pools: backoffice.PGOptions{Conns: pgConns, StaffConns: staffConns}, Log: slog.New(errs)})
				if err != nil {
					return err
				}
				defer l.Close()
				defer errs.print(stdout)
				cfg = l.Config()
			}
			cfg.Terminals, cfg.Records, cfg.Scenario, cfg.Period = terminals, records, sc, period
			cfg.BatchRecords, cfg.ProbeRate, cfg.Timeout = batch, probeRate, timeout
			cfg.TerminalPrefix = "fleet-" + strconv.FormatInt(time.Now().Unix(), 36) + "-" // another run, other terminals
			t0 := time.Now()
			f, err := fleet.New(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "prepared %d terminals × %d records in %s; uploading to %s\n", terminals, records, time.Since(t0).Round(time.Millisecond), strings.Join(f.URLs(), ", "))
			rep, err := f.Run(ctx)
			if rep != nil {
				fmt.Fprint(stdout, rep)
			}
			if err != nil {
				return err
			}
			if rep.Rejected > 0 {
				return fmt.Errorf("fleet: %d records rejected: %v", rep.Rejected, rep.RejectReasons)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dsn, "pg", "", "PostgreSQL DSN of the back office's database")
	f.IntVarP(&terminals, "terminals", "n", 200, "simulated terminals")
	f.IntVarP(&records, "records", "k", 100, "records in each terminal's backlog")
	f.StringVar(&scenario, "scenario", "storm", "storm or steady")
	f.DurationVar(&period, "period", time.Minute, "steady: the period the records are spread over")
	f.IntVar(&batch, "batch", 200, "largest batch, records (the uploader's default)")
	f.Float64Var(&probeRate, "probe-rate", 20, "verifications a second on the staff listener during the run")
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "one upload request (a timed-out batch is sent again)")
	f.IntVar(&maxIngest, "max-ingest", 0, "the in-process back office's admission limit (0: its default; -1: none)")
	f.IntVar(&pgConns, "pg-conns", 0, "the in-process back office's ingest pool (0: the default)")
	f.IntVar(&staffConns, "pg-staff-conns", backoffice.DefaultStaffConns, "the in-process back office's staff pool")
	f.StringArrayVar(&targets, "target", nil, "a running kpe-backoffice serve node's terminal API, https://HOST:PORT (repeatable)")
	f.StringArrayVar(&staffs, "staff", nil, "a node's staff listener for the prober, http://HOST:PORT (repeatable; with --target)")
	f.StringVar(&pkiDir, "pki", "", "directory of the lab PKI shared with the serve nodes (made when empty)")
	f.BoolVar(&pkiOnly, "pki-only", false, "write the PKI into --pki, print the serve flags and exit")
	f.StringVar(&staffUser, "staff-user", "", "with --staff: the verifier account the prober signs in as (password: $KPE_FLEET_STAFF_PASSWORD)")
	f.BoolVar(&probeOnly, "probe-only", false, "only verify codes from --pg on --staff, for --duration")
	f.DurationVar(&probeFor, "duration", 5*time.Minute, "--probe-only: how long")
	return cmd
}

// errorCounts is a slog handler that counts the in-process back office's
// error messages with their cause (why batches were answered
// store-unavailable), printed after the run.
type errorCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (e *errorCounts) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (e *errorCounts) WithAttrs([]slog.Attr) slog.Handler           { return e }
func (e *errorCounts) WithGroup(string) slog.Handler                { return e }
func (e *errorCounts) Handle(_ context.Context, r slog.Record) error {
	key := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			key += ": " + a.Value.String()
		}
		return true
	})
	if len(key) > 200 {
		key = key[:200]
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == nil {
		e.n = map[string]int{}
	}
	e.n[key]++
	return nil
}

func (e *errorCounts) print(w io.Writer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	keys := slices.Sorted(maps.Keys(e.n))
	for _, k := range keys {
		fmt.Fprintf(w, "back-office error ×%d: %s\n", e.n[k], k)
	}
}

// probeOnlyRun verifies codes sampled from the database on the staff
// listeners until the duration ends or the process is interrupted.
func probeOnlyRun(dsn string, staffs []string, user string, rate float64, d time.Duration, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fmt.Errorf("--pg: %w", err)
	}
	defer pool.Close()
	var mu sync.Mutex
	var codes []string
	load := func() error {
		var got []string
		for _, q := range []string{"SELECT code FROM record_keys TABLESAMPLE SYSTEM (1) LIMIT 5000", "SELECT code FROM record_keys LIMIT 5000"} {
			rows, err := pool.Query(ctx, q)
			if err != nil {
				return err
			}
			if got, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
			if len(got) > 0 {
				break
			}
		}
		mu.Lock()
		codes = got
		mu.Unlock()
		return nil
	}
	if err := load(); err != nil {
		return fmt.Errorf("--pg: the codes: %w", err)
	}
	go func() { // new records' codes as they come
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				load()
			}
		}
	}()
	rep, err := fleet.Probe(ctx, fleet.ProbeConfig{StaffURLs: staffs, Rate: rate, User: user, Password: os.Getenv("KPE_FLEET_STAFF_PASSWORD"), Code: func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(codes) == 0 {
			return ""
		}
		return codes[rand.IntN(len(codes))]
	}})
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep)
	if rep.Wrong > 0 || rep.Errors > 0 {
		return fmt.Errorf("fleet: %d codes not found, %d errors", rep.Wrong, rep.Errors)
	}
	return nil
}
