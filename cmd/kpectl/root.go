package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"kpe-agent/agent/doctor"
	"kpe-agent/internal/clikit"
	"kpe-agent/internal/i18n"
)

// The command groups of kpectl's help.
const (
	groupAgent  = "agent"
	groupDirect = "direct"
)

// rootCommand is kpectl's command tree; the flags are bound to c.
func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "kpectl",
		Short: "KPE terminal operator tool (alat operator terminal KPE)",
		Long: `kpectl diagnoses a kpe-agent terminal, talks to the running agent through its local API, reads
cards directly for a technician and looks after the agent's outbox of records.

Messages are in Bahasa Indonesia by default; --lang en (or KPE_LANG=en) switches to English.
Every command that prints data takes --json; with --json an error is printed as JSON on standard
output too: {"error": {"code": "...", "message": "...", "detail": "..."}}.

Flags may come anywhere on the command line, global ones too (kpectl readers --lang en).

Exit codes: 0 success; 1 failure (doctor: a check failed; auth: nothing recorded; sync now: not
sent); 2 usage error (unknown command or flag, a missing or bad argument).

See docs/kpectl.md.`,
		Example: `  sudo kpectl doctor
  kpectl status --json
  kpectl auth --service askes --operator op-17
  kpectl readers --lang en
  kpectl apdu -r "ACS ACR39U 00 00" --auto 00A4040007A0000000871002
  kpectl read --json --trust-bkn bkn.pem --sam-code-file sam-code
  kpectl queue list --state dead
  kpectl bio match a.iso b.iso --json`,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			l, err := i18n.Parse(c.lang)
			if err != nil {
				return clikit.UsageError{Err: fmt.Errorf("--lang: %w", err)}
			}
			// one spelling from here on ("EN-gb" is "en")
			c.lang, c.msg = string(l), messagesIn(l)
			return nil
		},
	}
	pf := root.PersistentFlags()
	// defaults from the environment are never shown (clikit.EnvDefault)
	pf.StringVarP(&c.lang, "lang", "l", "id", "message language: id (Bahasa Indonesia) or en ($KPE_LANG)")
	pf.StringVarP(&c.configFile, "config", "c", "",
		"the agent's configuration file ($KPE_CONFIG, default "+doctor.DefaultConfigFile()+"; a missing default file is fine)")
	pf.StringVar(&c.agentURL, "agent", "", "the agent's local API URL ($KPE_AGENT_URL, default http:// and api.listen)")
	pf.StringVar(&c.tokenFile, "token-file", "", "the local API's bearer token file ($KPE_TOKEN_FILE, default api.token_file)")
	for flag, env := range map[string]string{"lang": "KPE_LANG", "config": "KPE_CONFIG", "agent": "KPE_AGENT_URL", "token-file": "KPE_TOKEN_FILE"} {
		clikit.EnvDefault(pf, flag, env)
	}

	root.AddGroup(&cobra.Group{ID: groupAgent, Title: "Diagnosis and the agent (local API):"},
		&cobra.Group{ID: groupDirect, Title: "Direct access (the agent must not hold the reader or the outbox):"})
	for _, cmd := range []*cobra.Command{c.doctorCommand(), c.statusCommand(), c.authCommand(), c.syncCommand(), c.monitorCommand(), c.loketCommand()} {
		cmd.GroupID = groupAgent
		root.AddCommand(cmd)
	}
	for _, cmd := range []*cobra.Command{c.readersCommand(), c.apduCommand(), c.readCommand(), c.bioCommand(), c.queueCommand()} {
		cmd.GroupID = groupDirect
		root.AddCommand(cmd)
	}
	return root
}

// jsonFlag adds --json (-j) to cmd.
func jsonFlag(cmd *cobra.Command, v *bool, usage string) {
	cmd.Flags().BoolVarP(v, "json", "j", false, usage)
}

func (c *cli) doctorCommand() *cobra.Command {
	var o doctorOptions
	cmd := &cobra.Command{
		Use:   "doctor [--json] [--timeout 40s] [--check-timeout 5s]",
		Short: "Diagnose the terminal: each problem with its action (exit code 1 when a check fails)",
		Long: `Checks the configuration, the agent, PC/SC, the readers, the SAM, the back office, the clock, the
certificates, the disk and the outbox. Each finding is printed with its mark, the technical detail
and, when something is wrong, the action to take. The exit code is 1 when a check fails.
Run it as root (sudo kpectl doctor) so that the agent's token can be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.doctor(cmd.Context(), o) },
	}
	jsonFlag(cmd, &o.asJSON, "print the report as JSON (both languages)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 40*time.Second, "bound of the whole diagnosis")
	cmd.Flags().DurationVar(&o.checkTimeout, "check-timeout", 5*time.Second, "bound of each check")
	return cmd
}

func (c *cli) statusCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "The agent's health, readers, SAM, queue and sync in one view",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return c.status(cmd.Context(), asJSON) },
	}
	jsonFlag(cmd, &asJSON, "print JSON")
	return cmd
}

func (c *cli) authCommand() *cobra.Command {
	var o authOptions
	cmd := &cobra.Command{
		Use:   "auth --service S --operator ID [-r READER] [--wait 30s] [--confirm-last-try] [--json] [--timeout 5m]",
		Short: "Authenticate the card holder through the agent and print the code",
		Long: `Runs an authentication on the agent (card, data, fingerprint, record) and prints the code, with
the session's progress while the agent works. Ctrl-C cancels the session on the agent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.auth(cmd.Context(), o) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.service, "service", "s", "", "service: askes, taspen, bapertarum, kiosk (the terminal's configured list)")
	f.StringVar(&o.operator, "operator", "", "the clerk's ID, recorded with the code")
	f.StringVarP(&o.reader, "reader", "r", "", "card reader (default: the agent's choice: the only card reader, or the one holding a card)")
	f.DurationVar(&o.wait, "wait", 30*time.Second, "how long the agent waits for a card (0: the card must be in the reader; at most 5m)")
	f.BoolVar(&o.confirm, "confirm-last-try", false, "allow the card's last fingerprint try (the clerk confirmed)")
	jsonFlag(cmd, &o.asJSON, "print the result (or the error) as JSON")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this long")
	_ = cmd.MarkFlagRequired("service")
	_ = cmd.MarkFlagRequired("operator")
	return cmd
}

func (c *cli) syncCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Send the outbox to the back office now (sync now)",
	}
	var asJSON bool
	var timeout time.Duration
	now := &cobra.Command{
		Use:   "now [--json] [--timeout 2m]",
		Short: "Ask the agent to send the outbox now and print the counts",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return c.sync(cmd.Context(), asJSON, timeout) },
	}
	jsonFlag(now, &asJSON, "print JSON")
	now.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long")
	cmd.AddCommand(now)
	return cmd
}

func (c *cli) monitorCommand() *cobra.Command {
	var viaAgent, asJSON bool
	cmd := &cobra.Command{
		Use:   "monitor [--via-agent] [--json]",
		Short: "Live reader and card events (PC/SC), or the agent's events with --via-agent",
		Long: `Without --via-agent, watches the PC/SC readers directly. With --via-agent, streams the agent's
events (reader, session, SAM, sync, service) from its local API, reconnecting when the agent
restarts. --json prints one JSON object per event.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if viaAgent {
				return c.monitorAgent(cmd.Context(), asJSON)
			}
			return c.monitor(cmd.Context(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&viaAgent, "via-agent", false, "stream the agent's events (local API) instead of watching PC/SC directly")
	jsonFlag(cmd, &asJSON, "print one JSON object per event")
	clikit.LegacyFlag(cmd, "agent", "renamed: use --via-agent (--agent URL is the agent's address)")
	return cmd
}

func (c *cli) loketCommand() *cobra.Command {
	var o loketOptions
	cmd := &cobra.Command{
		Use:   "loket [--open] [--json]",
		Short: "Open the counter screen: print a one-time login link (valid 60 s) and, with --open, open it",
		Long: `Asks the agent for a one-time login link to its counter screen (layar loket,
http://127.0.0.1:7531/loket/; loket.enabled) and prints it. Opened within 60 seconds in the
browser of the clerk at this PC, the link logs that browser in for 12 hours (a session cookie);
it works once. Reading the agent's token is required, as for the other agent commands: add the
clerk's account to the kpe-agent-api group rather than using sudo, which cannot open the clerk's
browser. See docs/loket.md.`,
		Example: `  kpectl loket --open
  kpectl loket --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.loket(cmd.Context(), o) },
	}
	cmd.Flags().BoolVar(&o.open, "open", false, "open the link in the desktop's default browser (xdg-open; on Windows, as start does)")
	jsonFlag(cmd, &o.asJSON, "print JSON: url, expires_seconds, opened")
	return cmd
}

func (c *cli) readersCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "readers [--json]",
		Short: "The PC/SC readers: card present, ATR",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return c.readers(cmd.Context(), asJSON) },
	}
	jsonFlag(cmd, &asJSON, "print JSON")
	return cmd
}

func (c *cli) apduCommand() *cobra.Command {
	var o apduOptions
	cmd := &cobra.Command{
		Use:   "apdu [-r READER] [--auto] [--timeout 10s] [--trace FILE] [--json] [HEX ...]",
		Short: "Send APDUs to a card, like scriptor",
		Long: `Sends each APDU (hex; spaces and colons allowed) to the card and prints the answer with the
meaning of its status word. Without HEX arguments, the APDUs are read from standard input, one a
line; '#' starts a comment. --auto handles 61xx (GET RESPONSE) and 6Cxx (wrong Le).
--trace appends the exchanges to FILE in the redacted trace format of kpectl read --trace.`,
		Example: `  kpectl apdu 00A4040007A0000000871002 00B0000000
  echo "00 A4 04 00 07 A0 00 00 00 87 10 02" | kpectl apdu -r "ACS ACR39U 00 00" --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.timeout <= 0 {
				return clikit.Usagef("--timeout must be positive")
			}
			return c.apdu(cmd.Context(), o, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.reader, "reader", "r", "", "reader name (default: the first reader with a card)")
	f.BoolVar(&o.auto, "auto", false, "handle 61xx (GET RESPONSE) and 6Cxx (wrong Le) automatically")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "deadline per command")
	f.StringVar(&o.trace, "trace", "", "append an APDU trace (personal data and secrets redacted) to this file")
	jsonFlag(cmd, &o.asJSON, "print JSON: the reader, the ATR and each exchange")
	return cmd
}

func (c *cli) readCommand() *cobra.Command {
	var o readOptions
	cmd := &cobra.Command{
		Use:   "read [-r READER] [--sam READER] [--json] [--photo FILE] [--trust-bkn PEM] [--trust-dukcapil PEM] [--sam-code-file F] [--ktp-secrets-file F]",
		Short: "Read and verify the card (KPE, KPE Tambahan, KTP-el, SAM)",
		Long: `Finds the card and the SAM among the readers (or takes them from -r and --sam), activates the SAM
if it is not yet and a code file is given, reads the card with its profile and prints each check.
The photo is written only with --photo, never into the JSON; KTP-el data is never printed and a
KTP-el photo is never written. For the card lab, kpe-cardsim secrets writes the code and secrets
files of a lab set.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.timeout <= 0 {
				return clikit.Usagef("--timeout must be positive")
			}
			return c.read(cmd.Context(), o)
		},
	}
	clikit.LegacyFlag(cmd, "lab", "removed: kpe-cardsim secrets --lab DIR --out OUT writes the lab's code and secrets files "+
		"(--sam-code-file OUT/sam-code --ktp-secrets-file OUT/ktp-secrets); the trust lists are DIR/trust/bkn-ca.pem and dukcapil-ca.pem")
	f := cmd.Flags()
	f.StringVarP(&o.reader, "reader", "r", "", "card reader (default: the first reader holding a card that is not a SAM)")
	f.StringVar(&o.samReader, "sam", "", "SAM reader (default: found by selecting the SAM application)")
	jsonFlag(cmd, &o.asJSON, "print JSON")
	f.StringVar(&o.photo, "photo", "", "save the KPE photo (JPEG) to this file")
	f.StringVar(&o.trustBKN, "trust-bkn", "", "PEM file of trusted BKN issuer CAs")
	f.StringVar(&o.trustDukcapil, "trust-dukcapil", "", "PEM file of trusted Dukcapil issuer CAs")
	f.StringVar(&o.codeFile, "sam-code-file", "", "file holding the SAM activation code (used only if the SAM is inactive; mode 0600)")
	f.StringVar(&o.secretsFile, "ktp-secrets-file", "", "file holding the two KTP-el installation secrets, one per line (mode 0600)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "deadline for the whole read")
	f.StringVar(&o.trace, "trace", "", "append an APDU trace of card and SAM (personal data redacted) to this file")
	f.StringVar(&o.fingerLab, "finger-lab", "", "verify the holder's fingerprint with the card lab's sensor at this control URL (slot of the card reader)")
	f.StringVar(&o.fingerCmd, "finger-cmd", "", "verify the holder's fingerprint with this capture program (vendor SDK; see docs/fingerprint-sensors.md)")
	f.BoolVar(&o.confirmLast, "confirm-last-try", false, "allow the card's last fingerprint try")
	f.StringVar(&o.logFile, "log", "", "append a debug log (JSON lines) to this file")
	return cmd
}

func (c *cli) bioCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bio",
		Short: "The fingerprint matcher on template files (match, bench)",
		Long: `The fingerprint matcher on ISO/IEC 19794-2 or ANSI INCITS 378 minutiae template files. Synthetic
sample sets are made by kpe-cardsim bio gen.`,
	}
	var matchJSON, benchJSON bool
	match := &cobra.Command{
		Use:   "match [--json] A B",
		Short: "Compare two minutiae templates: score and decision",
		Args:  exactArgs(2, "want two template files (ISO/IEC 19794-2 or ANSI INCITS 378)"),
		RunE:  func(_ *cobra.Command, args []string) error { return c.bioMatch(args[0], args[1], matchJSON) },
	}
	jsonFlag(match, &matchJSON, "print JSON with the details")
	bench := &cobra.Command{
		Use:   "bench [--json] DIR",
		Short: "EER, FNMR at FMR 1e-2/1e-3/1e-4 and comparisons/s on a set (DIR: *.iso and pairs.csv)",
		Args:  exactArgs(1, "want a directory with *.iso files and pairs.csv (a,b,genuine)"),
		RunE:  func(_ *cobra.Command, args []string) error { return c.bioBench(args[0], benchJSON) },
	}
	jsonFlag(bench, &benchJSON, "print JSON")
	cmd.AddCommand(match, bench)
	return cmd
}

// exactArgs wants n positional arguments; why says what they are.
func exactArgs(n int, why string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return clikit.Usagef("%s (got %d argument(s))", why, len(args))
		}
		return nil
	}
}

func (c *cli) queueCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "The agent's outbox of records: stats, list, retry, salvage, compact",
		Long: `The agent's outbox (--outbox, default $KPE_OUTBOX, else ` + defaultOutbox + `; see docs/outbox.md).
stats and list only read; retry, salvage --out and compact write: stop the agent first. stats asks the
agent when it holds the outbox. list never prints a record's subject (NIP, NIK hash) or card serial.`,
	}
	outboxFlag := func(sub *cobra.Command, path *string) {
		sub.Flags().StringVar(path, "outbox", defaultOutbox, "the agent's outbox file ($KPE_OUTBOX)")
		clikit.EnvDefault(sub.Flags(), "outbox", "KPE_OUTBOX")
	}

	var so queueStatsOptions
	stats := &cobra.Command{
		Use:   "stats [--outbox FILE] [--json] [--max-records N] [--max-age 720h]",
		Short: "Counts by state, the oldest unsynced record, the use of the limits and the alarm",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return c.queueStats(cmd.Context(), so) },
	}
	outboxFlag(stats, &so.path)
	jsonFlag(stats, &so.asJSON, "print JSON")
	stats.Flags().IntVar(&so.maxRecords, "max-records", 100_000, "the agent's limit of unsynced records (the file does not hold it)")
	stats.Flags().DurationVar(&so.maxAge, "max-age", 30*24*time.Hour, "the agent's limit of the oldest unsynced record's age")

	var lo queueListOptions
	list := &cobra.Command{
		Use:   "list [--outbox FILE] [--json] [--state pending|sending|acknowledged|dead|all] [-n 100]",
		Short: "The records, oldest first (no subject, no card serial)",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return c.queueList(lo) },
	}
	outboxFlag(list, &lo.path)
	jsonFlag(list, &lo.asJSON, "print JSON")
	list.Flags().StringVar(&lo.state, "state", "all", "pending, sending, acknowledged, dead or all")
	list.Flags().IntVarP(&lo.limit, "limit", "n", listDefault, "list at most N records, oldest first (0: all)")

	var ro queueRetryOptions
	retry := &cobra.Command{
		Use:   "retry [--outbox FILE] [--json] (SEQ ... | --all)",
		Short: "Move dead records back to pending (stop the agent first)",
		RunE:  func(_ *cobra.Command, args []string) error { return c.queueRetry(ro, args) },
	}
	outboxFlag(retry, &ro.path)
	jsonFlag(retry, &ro.asJSON, "print JSON")
	retry.Flags().BoolVarP(&ro.all, "all", "a", false, "every record in the dead-letter bucket")

	var vo queueSalvageOptions
	salvage := &cobra.Command{
		Use:   "salvage [--json] FILE [-o NEWFILE]",
		Short: "Recover the records of a damaged outbox file; with --out, into a new outbox as pending",
		Args:  exactArgs(1, "want one damaged outbox file (e.g. outbox.db.corrupt-…)"),
		RunE:  func(_ *cobra.Command, args []string) error { return c.queueSalvage(vo, args[0]) },
	}
	jsonFlag(salvage, &vo.asJSON, "print JSON")
	salvage.Flags().StringVarP(&vo.out, "out", "o", "", "write the recovered records as pending into this new outbox file")

	var co queueCompactOptions
	compact := &cobra.Command{
		Use:   "compact [--outbox FILE] [--json]",
		Short: "Shrink the outbox file to what it holds (stop the agent first; safe if interrupted)",
		Long: `Copies the outbox into a new file without its free pages and renames it over the old one
(bbolt reuses freed pages but never gives them back). Everything in the outbox is kept. The agent
must be stopped: while it holds the outbox, compact refuses. Killed at any point, it leaves the old
file or the new one, complete; the next run removes a temporary file left behind.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return c.queueCompact(co) },
	}
	outboxFlag(compact, &co.path)
	jsonFlag(compact, &co.asJSON, "print JSON")

	cmd.AddCommand(stats, list, retry, salvage, compact)
	return cmd
}
