package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"kpe-agent/internal/clikit"
	"kpe-agent/sync/backoffice"
)

// The staff accounts: kpe-backoffice user add|passwd|disable|list
// (docs/staff-signin.md). Passwords are read from standard input, never
// from the command line (which other users see in the process list).

// storeFlags are --db and --pg, as serve has them.
type storeFlags struct{ dbPath, pg string }

func (s *storeFlags) add(f *pflag.FlagSet) {
	f.StringVar(&s.dbPath, "db", "backoffice.db", "embedded store file (when --pg is not given)")
	f.StringVar(&s.pg, "pg", "", "PostgreSQL DSN (postgres://user:pass@host/db; default $KPE_BACKOFFICE_PG, never printed)")
	clikit.EnvDefault(f, "pg", "KPE_BACKOFFICE_PG")
}

// openStore opens PostgreSQL when pg is given, else the bbolt file; kind
// names it for messages.
func openStore(ctx context.Context, dbPath, pg string, po backoffice.PGOptions) (store backoffice.Store, kind string, err error) {
	if pg != "" {
		st, err := backoffice.OpenPostgresWith(ctx, pg, po)
		return st, "PostgreSQL", err
	}
	st, err := backoffice.OpenBolt(dbPath)
	return st, "bbolt " + dbPath, err
}

// withAccounts runs f on a Service over the store of s. The Service
// verifies no records here, so its SAM CA is an empty pool.
func (s storeFlags) withAccounts(ctx context.Context, f func(*backoffice.Service) error) error {
	store, _, err := openStore(ctx, s.dbPath, s.pg, backoffice.PGOptions{})
	if err != nil {
		return err
	}
	defer store.Close()
	svc, err := backoffice.New(store, backoffice.Config{CA: x509.NewCertPool()})
	if err != nil {
		return err
	}
	return f(svc)
}

// readPassword reads one line of in: the password, without its line end.
func readPassword(in io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(in, backoffice.MaxPassword+3)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("--password-stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("--password-stdin: standard input holds no password")
	}
	return pw, nil
}

func userCommand(stdout io.Writer) *cobra.Command {
	user := &cobra.Command{
		Use:   "user",
		Short: "Manage staff accounts: add, passwd, disable, list",
		Long: `Staff accounts sign in on the staff listener (docs/staff-signin.md). Roles: verifier (verify codes),
institution (verify codes of its --service only), auditor (reports, alarms, terminals, the audit
log), admin (accounts and everything the auditor may). Passwords come from standard input
(--password-stdin), never from the command line. Every change goes into the audit log as "cli".`,
		Args: cobra.NoArgs,
	}
	var sf storeFlags
	sf.add(user.PersistentFlags())

	var roles, services []string
	var stdinPw, oidc bool
	var oidcSubject string
	add := &cobra.Command{
		Use:   "add NAME --role ROLE [--role ROLE]... [--service SERVICE]... [--password-stdin] [--oidc] [--oidc-subject SUB]",
		Short: "Add a staff account",
		Example: `  printf '%s\n' "$PASSWORD" | kpe-backoffice user add siti --role verifier --password-stdin
  kpe-backoffice user add askes.staff@bpjs.go.id --role institution --service askes --oidc`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			oidc = oidc || oidcSubject != ""
			if !stdinPw && !oidc {
				return clikit.Usagef("give --password-stdin (the password on standard input) or --oidc, or both")
			}
			n := backoffice.NewAccount{Name: args[0], Services: services, OIDC: oidc, OIDCSubject: oidcSubject}
			for _, r := range roles {
				n.Roles = append(n.Roles, backoffice.Role(r))
			}
			if stdinPw {
				pw, err := readPassword(cmd.InOrStdin())
				if err != nil {
					return err
				}
				n.Password = pw
			}
			return sf.withAccounts(cmd.Context(), func(svc *backoffice.Service) error {
				if err := svc.AddAccount(cmd.Context(), n, backoffice.Actor{}); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "account %s added\n", n.Name)
				return nil
			})
		},
	}
	add.Flags().StringArrayVar(&roles, "role", nil, "a role: verifier, institution, auditor or admin (repeatable)")
	add.Flags().StringArrayVar(&services, "service", nil, "a service an institution account sees, such as askes (repeatable)")
	add.Flags().BoolVar(&stdinPw, "password-stdin", false, "read the password from standard input (one line)")
	add.Flags().BoolVar(&oidc, "oidc", false, "the account may sign in through the institution's OpenID Connect provider (bound to the identity of its first OIDC sign-in)")
	add.Flags().StringVar(&oidcSubject, "oidc-subject", "", "bind the account to this subject (sub) at the OIDC provider from the start (implies --oidc)")
	_ = add.MarkFlagRequired("role")

	var passwdStdin bool
	passwd := &cobra.Command{
		Use:   "passwd NAME --password-stdin",
		Short: "Set an account's password (and lift a lock-out)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !passwdStdin {
				return clikit.Usagef("the new password comes from standard input: give --password-stdin")
			}
			pw, err := readPassword(cmd.InOrStdin())
			if err != nil {
				return err
			}
			return sf.withAccounts(cmd.Context(), func(svc *backoffice.Service) error {
				if err := svc.SetPassword(cmd.Context(), args[0], pw, backoffice.Actor{}); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "password of %s set\n", args[0])
				return nil
			})
		},
	}
	passwd.Flags().BoolVar(&passwdStdin, "password-stdin", false, "read the password from standard input (one line)")

	disable := &cobra.Command{
		Use:   "disable NAME",
		Short: "Disable an account: no sign-in, its sessions end",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return sf.withAccounts(cmd.Context(), func(svc *backoffice.Service) error {
				if err := svc.DisableAccount(cmd.Context(), args[0], backoffice.Actor{}); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "account %s disabled\n", args[0])
				return nil
			})
		},
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sf.withAccounts(cmd.Context(), func(svc *backoffice.Service) error {
				all, err := svc.ListAccounts(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tROLES\tSERVICES\tSIGN-IN\tSTATE")
				for _, a := range all {
					var rs, how []string
					for _, r := range a.Roles {
						rs = append(rs, string(r))
					}
					if a.Password {
						how = append(how, "password")
					}
					if a.OIDC {
						how = append(how, "oidc")
					}
					state := "enabled"
					switch {
					case a.Disabled:
						state = "disabled"
					case a.LockedUntil.After(time.Now()):
						state = "locked until " + a.LockedUntil.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Name, strings.Join(rs, ","), cmp.Or(strings.Join(a.Services, ","), "-"), strings.Join(how, ","), state)
				}
				return tw.Flush()
			})
		},
	}
	user.AddCommand(add, passwd, disable, list)
	return user
}
