package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"kpe-agent/internal/clikit"
	"kpe-agent/internal/purse"
	"kpe-agent/sync/backoffice"
)

// purseKeyFlags are serve's --purse-keys and --purse-keys-lab.
type purseKeyFlags struct {
	path string
	lab  bool
}

func (p *purseKeyFlags) add(f *pflag.FlagSet) {
	f.StringVar(&p.path, "purse-keys", "", `JSON file {"debit_master": HEX, "credit_master": HEX}: the purse masters card proofs are checked with; without it the purse ledger says "unchecked" (docs/ewallet.md)`)
	f.BoolVar(&p.lab, "purse-keys-lab", false, "accept a --purse-keys file others may read (the lab's testdata only)")
}

// load reads the purse keys; nil without --purse-keys.
func (p *purseKeyFlags) load() (*purse.Keys, error) {
	if p.path == "" {
		if p.lab {
			return nil, clikit.Usagef("--purse-keys-lab goes with --purse-keys")
		}
		return nil, nil
	}
	load := purse.LoadKeys
	if p.lab {
		load = purse.LoadLabKeys
	}
	k, err := load(p.path)
	if err != nil {
		return nil, fmt.Errorf("--purse-keys: %w", err)
	}
	return k, nil
}

// settlementCommand is `kpe-backoffice settlement`: one day's settlement
// file for the bank (docs/ewallet.md, "Settlement file").
func settlementCommand(stdout io.Writer) *cobra.Command {
	var sf storeFlags
	var date, format, out string
	cmd := &cobra.Command{
		Use:   "settlement --date YYYY-MM-DD [--format csv|xlsx] [--out FILE]",
		Short: "Write one day's e-wallet settlement per merchant (CSV, or XLSX with the payments)",
		Long: `Writes the settlement of one day (a calendar day in WIB, Asia/Jakarta, UTC+7): the payments the back
office accepted that day, one line per merchant, as CSV with a trailer of totals and SHA-256, or as XLSX
with a second sheet of the payments. A day that is not over yet is refused: its file could still change.
See docs/ewallet.md for the format.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if format != "csv" && format != "xlsx" {
				return clikit.Usagef("--format %q: csv or xlsx", format)
			}
			if date == "" {
				return clikit.Usagef("--date is required")
			}
			return sf.withAccounts(c.Context(), func(svc *backoffice.Service) error {
				w := stdout
				var f *os.File
				if out != "" {
					var err error
					if f, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640); err != nil {
						return fmt.Errorf("--out: %w", err)
					}
					w = f
				}
				err := writeSettlement(c, svc, w, date, format)
				if f != nil {
					if cerr := f.Close(); err == nil {
						err = cerr
					}
					if err != nil {
						os.Remove(out)
					}
				}
				return err
			})
		},
	}
	sf.add(cmd.Flags())
	cmd.Flags().StringVar(&date, "date", "", "the settlement day, YYYY-MM-DD in WIB (UTC+7)")
	cmd.Flags().StringVar(&format, "format", "csv", "csv or xlsx")
	cmd.Flags().StringVar(&out, "out", "", "write to this new file (default: standard output)")
	return cmd
}

func writeSettlement(c *cobra.Command, svc *backoffice.Service, w io.Writer, date, format string) error {
	if format == "xlsx" {
		return svc.SettlementXLSX(c.Context(), w, date)
	}
	st, err := svc.Settlement(c.Context(), date, nil)
	if err != nil {
		return err
	}
	return backoffice.WriteSettlementCSV(w, st)
}

// purseCommand is `kpe-backoffice purse`: the purse ledger's upkeep.
func purseCommand(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "purse", Short: "The e-wallet's purse ledger", Args: cobra.NoArgs}
	var sf storeFlags
	var keys purseKeyFlags
	recheck := &cobra.Command{
		Use:   "recheck --purse-keys FILE",
		Short: "Check the card proofs of the ledger rows stored without --purse-keys",
		Long: `Checks, with the purse masters, the card proofs of the purse ledger's rows that are "unchecked" (stored
while serve ran without --purse-keys). A verified payment becomes settled (in the next settlement day not
settled yet, when its own was); a bad proof raises purse-bad-proof and the row gives up its PTC. Only
verified payments are paid to merchants (docs/ewallet.md, "Unchecked proofs"). serve started with
--purse-keys does the same at its start.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if keys.path == "" {
				return clikit.Usagef("--purse-keys is required")
			}
			k, err := keys.load()
			if err != nil {
				return err
			}
			store, _, err := openStore(c.Context(), sf.dbPath, sf.pg, backoffice.PGOptions{})
			if err != nil {
				return err
			}
			defer store.Close()
			svc, err := backoffice.New(store, backoffice.Config{CA: x509.NewCertPool(), PurseKeys: k})
			if err != nil {
				return err
			}
			done, err := svc.RecheckPurses(c.Context())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%d proofs verified, %d bad\n", done.Verified, done.Bad)
			return err
		},
	}
	sf.add(recheck.Flags())
	keys.add(recheck.Flags())
	cmd.AddCommand(recheck)
	return cmd
}

// ewalletAtStart is serve's start for the e-wallet: it keeps the top-up
// limits in the store (for `topup stage`); without the purse keys it
// warns (proofs stay unchecked and are not settled); with them it
// rechecks the rows stored unchecked before.
func ewalletAtStart(ctx context.Context, svc *backoffice.Service, keys *purse.Keys, log *slog.Logger) error {
	// serve's top-up limits, for `topup stage` (topup.go)
	if err := svc.SaveTopUpSettings(ctx); err != nil && !errors.Is(err, backoffice.ErrNoTopUps) {
		return fmt.Errorf("top-up settings: %w", err)
	}
	if keys == nil {
		log.Warn("no --purse-keys: card proofs of e-wallet records are not checked; their payments are withheld from settlement until `kpe-backoffice purse recheck --purse-keys FILE` verifies them")
		return nil
	}
	done, err := svc.RecheckPurses(ctx)
	if errors.Is(err, backoffice.ErrNoPurseLedger) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("purse recheck: %w", err)
	}
	if done.Verified+done.Bad > 0 {
		log.Info("purse proofs rechecked", "verified", done.Verified, "bad", done.Bad)
	}
	return nil
}
