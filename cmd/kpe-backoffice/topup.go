package main

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"kpe-agent/internal/clikit"
	"kpe-agent/sync/backoffice"
)

// topUpFlags are the top-up limits, on serve and on `topup stage`
// (docs/ewallet.md, "Limits").
type topUpFlags struct {
	monthly, maxBalance uint64
	validity            time.Duration
}

// add adds the monthly limit (both) and, for serve, the offer's limits.
// serve keeps its limits in the store; `topup stage` applies serve's
// monthly limit unless --topup-monthly-limit is given.
func (t *topUpFlags) add(f *pflag.FlagSet, serve bool) {
	if serve {
		f.Uint64Var(&t.monthly, "topup-monthly-limit", backoffice.DefaultTopUpMonthlyLimit,
			"rupiah of top-ups a NIP may have staged per calendar month (Asia/Jakarta), staged, authorised and applied counted (0: the default); kept in the store for `topup stage`")
	} else {
		f.Uint64Var(&t.monthly, "topup-monthly-limit", 0,
			"rupiah of top-ups a NIP may have staged per calendar month (Asia/Jakarta); default: the limit serve last started with, else Rp 40,000,000")
	}
	if serve {
		f.Uint64Var(&t.maxBalance, "topup-max-balance", backoffice.DefaultTopUpMaxBalance,
			"no top-up authorisation takes a card's balance above this many rupiah; the card's own maximum applies too (0: the default)")
		f.DurationVar(&t.validity, "topup-validity", backoffice.DefaultTopUpValidity, "how long a top-up authorisation is valid (0: the default)")
	}
}

// config makes the service's settings from the flags (serve: the offer's
// too); zero values take the defaults, as they do for a serve started
// from options without flags.
func (t topUpFlags) config(serve bool) (backoffice.TopUpConfig, error) {
	if serve && t.validity < 0 {
		return backoffice.TopUpConfig{}, clikit.UsageError{Err: errors.New("--topup-validity: not negative")}
	}
	return backoffice.TopUpConfig{MonthlyLimit: t.monthly, MaxBalance: t.maxBalance, Validity: t.validity}, nil
}

// topUpCommand is `kpe-backoffice topup`: the e-wallet top-ups staged for
// "update saldo" (docs/ewallet.md, part 3).
func topUpCommand(stdout io.Writer) *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "topup",
		Short: "Stage, list and cancel the e-wallet top-ups written to cards at a kiosk (update saldo)",
		Long: `E-wallet top-ups: a top-up paid online (a bank transfer) is staged for the holder's NIP; a kiosk or
counter terminal writes it to the holder's card after the fingerprint matched, with an authorisation the
back office signs for that card. See docs/ewallet.md.`,
	}
	sf.add(cmd.PersistentFlags())
	with := func(ctx context.Context, cfg backoffice.TopUpConfig, f func(*backoffice.Service) error) error {
		store, _, err := openStore(ctx, sf.dbPath, sf.pg, backoffice.PGOptions{})
		if err != nil {
			return err
		}
		defer store.Close()
		svc, err := backoffice.New(store, backoffice.Config{CA: x509.NewCertPool(), TopUp: cfg})
		if err != nil {
			return err
		}
		return f(svc)
	}

	var req backoffice.TopUpRequest
	var limits topUpFlags
	stage := &cobra.Command{
		Use:   "stage --nip NIP --amount RUPIAH --ref REFERENCE",
		Short: "Stage a top-up paid for a NIP, within the monthly limit",
		Long: `Stages a top-up of --amount rupiah for --nip, paid by the bank transfer --ref (a reference is staged
once). It is refused (exit code 1) when the NIP's top-ups staged in this calendar month (Asia/Jakarta),
with it, would pass the monthly limit: --topup-monthly-limit when given, else the one serve last started
with (kept in the store), else the default. The audit log records it with actor "cli".`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := limits.config(false)
			if err != nil {
				return err
			}
			return with(c.Context(), cfg, func(svc *backoffice.Service) error {
				t, err := svc.StageTopUp(c.Context(), req, "cli")
				if errors.Is(err, backoffice.ErrTopUpQuery) {
					return clikit.UsageError{Err: err}
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "top-up %x staged: Rp %d for %s (ref %s)\n", t.ID, t.Amount, t.NIP, t.Ref)
				return svc.AuditBy(c.Context(), "cli", backoffice.AuditTopUpStage, hex.EncodeToString(t.ID[:]), fmt.Sprintf("Rp %d, ref %s", t.Amount, t.Ref))
			})
		},
	}
	stage.Flags().StringVar(&req.NIP, "nip", "", "the holder's NIP (18 digits)")
	stage.Flags().Uint32Var(&req.Amount, "amount", 0, "rupiah, at least 1")
	stage.Flags().StringVar(&req.Ref, "ref", "", "the source reference (the bank transfer id), unique")
	limits.add(stage.Flags(), false)
	for _, name := range []string{"nip", "amount", "ref"} {
		_ = stage.MarkFlagRequired(name)
	}

	var status, nip string
	list := &cobra.Command{
		Use:   "list [--status staged|authorised|applied|cancelled] [--nip NIP]",
		Short: "List the top-ups, the newest staged first",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			st := backoffice.TopUpStatus(status)
			if st != "" && st != backoffice.TopUpStaged && st != backoffice.TopUpAuthorised && st != backoffice.TopUpApplied && st != backoffice.TopUpCancelled {
				return clikit.UsageError{Err: fmt.Errorf("--status %q: staged, authorised, applied or cancelled", status)}
			}
			return with(c.Context(), backoffice.TopUpConfig{}, func(svc *backoffice.Service) error {
				ts, err := svc.TopUps(c.Context(), backoffice.TopUpFilter{Status: st, NIP: nip})
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "TOPUP\tNIP\tAMOUNT\tREF\tSTAGED\tSTATUS\tCARD\tPTC\tAPPLIED\tTERMINAL\tCODE")
				for _, t := range ts {
					card, ptc, applied, term, code := "-", "-", "-", "-", "-"
					switch t.Status {
					case backoffice.TopUpAuthorised:
						card, ptc = fmt.Sprintf("%X", t.AuthSerial), fmt.Sprint(t.AuthPTC)
					case backoffice.TopUpApplied:
						card, ptc = fmt.Sprintf("%X", t.AppliedSerial), fmt.Sprint(t.AppliedPTC)
						applied, term, code = t.AppliedAt.UTC().Format("2006-01-02 15:04Z"), t.AppliedTerminal, t.AppliedCode
					}
					fmt.Fprintf(tw, "%x\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.NIP, t.Amount, t.Ref,
						t.StagedAt.UTC().Format("2006-01-02 15:04Z"), t.Status, card, ptc, applied, term, code)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&status, "status", "", "only top-ups in this state")
	list.Flags().StringVar(&nip, "nip", "", "only the top-ups of this NIP")

	cancel := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a staged top-up (one with an authorisation out cannot be)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := backoffice.ParseTopUpID(args[0])
			if err != nil {
				return clikit.UsageError{Err: err}
			}
			return with(c.Context(), backoffice.TopUpConfig{}, func(svc *backoffice.Service) error {
				if err := svc.CancelTopUp(c.Context(), id); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "top-up %x cancelled\n", id)
				return svc.AuditBy(c.Context(), "cli", backoffice.AuditTopUpCancel, hex.EncodeToString(id[:]), "")
			})
		},
	}
	cmd.AddCommand(stage, list, cancel)
	return cmd
}
