package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"kpe-agent/internal/clikit"
	"kpe-agent/lab/fleet"
)

// fleetCommand: kpe-cardsim fleet --pg DSN [--terminals N] [--records K]
// [--scenario storm|steady] ...
func fleetCommand(stdout io.Writer) *cobra.Command {
	var dsn, scenario string
	var terminals, records, batch, inflight int
	var period, timeout time.Duration
	var probeRate float64
	cmd := &cobra.Command{
		Use:   "fleet --pg DSN [--terminals N] [--records K] [--scenario storm|steady] [--period D] [--batch N] [--probe-rate R] [--max-inflight N]",
		Short: "Load-test a back office on PostgreSQL with N simulated terminals over mutual TLS",
		Long: `Starts a back office in this process on the PostgreSQL database DSN (a database of its own: the
migrations run and the records stay), with a fresh lab TLS CA and SAM CA, and simulates N terminals,
each with its own client certificate, SAM, hash chain and backlog of K sealed records, uploading
over mutual TLS: storm (all at once, whole backlogs) or steady (records one by one over --period).
--max-inflight puts a load balancer's admission control in front (503 + Retry-After beyond N batches).
A prober verifies accepted codes on the staff listener meanwhile. Prints records
sent/accepted/duplicate/rejected, the ingest rate, upload latency p50/p99, 429/503 answers, verify
p50/p99 and the database size per record. Exit 1 when a record was not taken or was rejected.
See docs/backoffice.md, "Fleet run".`,
		Example: `  kpe-cardsim fleet --pg postgres://kpe:kpe@127.0.0.1:5432/kpe_fleet --terminals 2000 --records 100`,
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			sc, err := fleet.ParseScenario(scenario)
			if err != nil {
				return clikit.Usagef("--scenario %q: want storm or steady", scenario)
			}
			switch {
			case dsn == "":
				return clikit.Usagef("--pg: want the DSN of a PostgreSQL database for the back office")
			case terminals < 1 || records < 1:
				return clikit.Usagef("--terminals and --records: want at least 1")
			case batch < 1 || batch > 1000:
				return clikit.Usagef("--batch: want 1 to 1000")
			case inflight < 0:
				return clikit.Usagef("--max-inflight: want 0 (no limit) or more")
			case probeRate <= 0 || period <= 0 || timeout <= 0:
				return clikit.Usagef("--probe-rate, --period and --timeout: want more than 0")
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			l, err := fleet.StartLocal(ctx, dsn, fleet.LocalOptions{MaxInFlight: inflight})
			if err != nil {
				return err
			}
			defer l.Close()
			cfg := l.Config()
			cfg.Terminals, cfg.Records, cfg.Scenario, cfg.Period = terminals, records, sc, period
			cfg.BatchRecords, cfg.ProbeRate, cfg.Timeout = batch, probeRate, timeout
			cfg.TerminalPrefix = "fleet-" + strconv.FormatInt(time.Now().Unix(), 36) + "-" // another run, other terminals
			t0 := time.Now()
			f, err := fleet.New(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "prepared %d terminals × %d records in %s; uploading to %s\n", terminals, records, time.Since(t0).Round(time.Millisecond), l.URL)
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
	f.IntVar(&inflight, "max-inflight", 0, "answer 503 + Retry-After beyond this many batches in flight (a load balancer's limit; 0: none)")
	_ = cmd.MarkFlagRequired("pg")
	return cmd
}
