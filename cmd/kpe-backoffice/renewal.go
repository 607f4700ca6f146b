package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"kpe-agent/internal/clikit"
	"kpe-agent/sync/backoffice"
)

// renewalCommand is `kpe-backoffice renewal`: the personnel changes staged
// for card data renewal (docs/renewal.md).
func renewalCommand(stdout io.Writer) *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "renewal",
		Short: "Import and list the personnel changes staged for card data renewal",
		Long: `Card data renewal: personnel changes per NIP from SAPK (employment, family, benefits) are imported
and staged; a kiosk or counter terminal writes them to the holder's card after the fingerprint matched.
See docs/renewal.md for the import format.`,
	}
	sf.add(cmd.PersistentFlags())

	var format string
	imp := &cobra.Command{
		Use:   "import [--format csv|json] FILE",
		Short: "Stage the changes of a CSV or JSON file: all of them, or none when any row is refused",
		Long: `Stages the changes of FILE, each with a fresh update id; a change for a NIP supersedes the update
staged for it before. The file is checked whole first: when any row is refused, every problem is printed
with its row (the CSV line, the JSON array index) and nothing is staged (exit code 1). The format
defaults to the file's extension.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if format == "" {
				format = strings.TrimPrefix(strings.ToLower(filepath.Ext(args[0])), ".")
			}
			if format != backoffice.FormatCSV && format != backoffice.FormatJSON {
				return clikit.UsageError{Err: fmt.Errorf("--format %q: csv or json", format)}
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			return sf.withAccounts(c.Context(), func(svc *backoffice.Service) error {
				res, err := svc.ImportRenewals(c.Context(), format, f)
				var ie *backoffice.ImportError
				if errors.As(err, &ie) {
					for _, p := range ie.Problems {
						fmt.Fprintln(stdout, p.String())
					}
					if ie.More > 0 {
						fmt.Fprintf(stdout, "… and %d more problems\n", ie.More)
					}
					return fmt.Errorf("%s: %d problems, nothing staged", args[0], len(ie.Problems)+ie.More)
				}
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "UPDATE\tNIP\tGROUPS")
				for _, u := range res.Updates {
					fmt.Fprintf(tw, "%x\t%s\t%s\n", u.ID, u.NIP, groupList(u.Changed()))
				}
				tw.Flush()
				fmt.Fprintf(stdout, "import %x: %d updates staged\n", res.ImportID, len(res.Updates))
				return nil
			})
		},
	}
	imp.Flags().StringVar(&format, "format", "", "csv or json (default: the file's extension)")

	var status, nip string
	list := &cobra.Command{
		Use:   "list [--status staged|applied|superseded] [--nip NIP]",
		Short: "List the staged updates, the newest import first",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			switch backoffice.RenewalStatus(status) {
			case "", backoffice.RenewalStaged, backoffice.RenewalApplied, backoffice.RenewalSuperseded:
			default:
				return clikit.UsageError{Err: fmt.Errorf("--status %q: staged, applied or superseded", status)}
			}
			return sf.withAccounts(c.Context(), func(svc *backoffice.Service) error {
				us, err := svc.RenewalUpdates(c.Context(), backoffice.RenewalFilter{Status: backoffice.RenewalStatus(status), NIP: nip})
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "UPDATE\tNIP\tGROUPS\tIMPORTED\tSTATUS\tAPPLIED\tTERMINAL\tCODE")
				for _, u := range us {
					applied, term, code := "-", "-", "-"
					if u.Status == backoffice.RenewalApplied {
						applied, term, code = u.AppliedAt.UTC().Format("2006-01-02 15:04Z"), u.AppliedTerminal, u.AppliedCode
					}
					fmt.Fprintf(tw, "%x\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.NIP, groupList(u.Changed()),
						u.ImportedAt.UTC().Format("2006-01-02 15:04Z"), u.Status, applied, term, code)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&status, "status", "", "only updates in this state")
	list.Flags().StringVar(&nip, "nip", "", "only the updates of this NIP")
	cmd.AddCommand(imp, list)
	return cmd
}

// groupList writes group numbers as "DG2,DG3".
func groupList(dgs []int) string {
	var parts []string
	for _, dg := range dgs {
		parts = append(parts, "DG"+strconv.Itoa(dg))
	}
	return strings.Join(parts, ",")
}
