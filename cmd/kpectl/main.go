// Command kpectl is the operator and technician CLI for kpe-agent terminals.
//
//	kpectl readers            readers, card present, ATR
//	kpectl monitor            live reader and card events
//	kpectl apdu HEX...        send APDUs to a card, like scriptor
//	kpectl read [-json]       read and verify the card (KPE, KPE Tambahan, KTP-el, SAM)
//	kpectl queue stats|list|retry|salvage   the agent's outbox of records
//	kpectl doctor             diagnose the terminal: what is wrong and what to do
//	kpectl status             the agent, its readers, SAM, queue and sync in one view
//	kpectl auth               authenticate a card holder through the agent
//	kpectl sync now           send the outbox to the back office now
//	kpectl monitor -agent     the agent's live events
//
// See docs/kpectl.md.
//
// Messages are in Bahasa Indonesia by default; -lang en switches to English.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"kpe-agent/agent/doctor"
)

const usage = `kpectl — alat operator terminal KPE / KPE terminal operator tool

Usage:
  kpectl [global flags] COMMAND [flags]

Global flags:
  -lang id|en        message language (default $KPE_LANG, else id)
  -config FILE       the agent's configuration (default $KPE_CONFIG, else /etc/kpe-agent/agent.yaml;
                     a missing default file is fine: the defaults apply)
  -agent URL         the agent's local API (default $KPE_AGENT_URL, else http://<api.listen>)
  -token-file FILE   the API's bearer token (default $KPE_TOKEN_FILE, else api.token_file)

Diagnosis and the agent (local API):
  kpectl doctor [-json] [-config FILE] [-timeout 40s]
        checks PC/SC, readers, SAM, agent, clock, back office, certificates, disk, outbox;
        each problem with its action; exit code 1 when a check fails
  kpectl status [-json]               agent health, readers, SAM, queue and sync in one view
  kpectl auth -service S -operator ID [-reader R] [-wait 30s] [-confirm-last-try] [-json] [-timeout 5m]
        authenticate the card holder (card, data, fingerprint) and print the code; Ctrl-C cancels
  kpectl sync now [-json] [-timeout 2m]   send the outbox to the back office now
  kpectl monitor -agent [-json]       the agent's live events (reconnects when the agent restarts)

Direct access (the agent must not hold the reader):
  kpectl [-lang id|en] readers [-json]
  kpectl [-lang id|en] monitor [-json]
  kpectl [-lang id|en] apdu [-r READER] [-auto] [-timeout 10s] [-trace] [HEX ...]
        (without HEX arguments, APDUs are read from standard input, one per line; '#' starts a comment)
  kpectl [-lang id|en] read [-r READER] [-sam READER] [-json] [-photo FILE]
        [-trust-bkn PEM] [-trust-dukcapil PEM] [-sam-code-file F] [-ktp-secrets-file F] [-lab DIR]
        (the photo is written only with -photo, never into the JSON; KTP-el data is never printed)
  kpectl bio match [-json] A B      compare two ISO/ANSI minutiae templates: score and decision
  kpectl bio bench [-json] DIR      EER, FNMR at FMR 1e-2/1e-3/1e-4, comparisons/s (DIR: *.iso + pairs.csv)
  kpectl bio gen -out DIR [-level easy|hard] [-fingers N] [-impressions K] [-impostors N] [-seed S]
  kpectl [-lang id|en] queue stats [-outbox FILE] [-json] [-max-records N] [-max-age 720h]
  kpectl [-lang id|en] queue list [-outbox FILE] [-json] [-state pending|sending|acknowledged|dead|all] [-n 100]
  kpectl [-lang id|en] queue retry [-outbox FILE] [-json] SEQ ... | -all
  kpectl [-lang id|en] queue salvage [-json] FILE [-out NEWFILE]
        (the agent's outbox; -outbox defaults to $KPE_OUTBOX, else /var/lib/kpe-agent/outbox.db.
         stats and list only read; retry and salvage -out write: stop the agent first.
         stats asks the agent when it holds the outbox.
         list never prints a record's subject (NIP, NIK hash) or card serial)

Exit codes: 0 success, 1 failure (doctor: a check failed), 2 usage error.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("kpectl", flag.ContinueOnError)
	global.SetOutput(stderr)
	lang := global.String("lang", envOr("KPE_LANG", "id"), "message language: id (Bahasa Indonesia) or en")
	agentURL := global.String("agent", os.Getenv("KPE_AGENT_URL"), "the agent's local API URL (default from the configuration's api.listen)")
	tokenFile := global.String("token-file", os.Getenv("KPE_TOKEN_FILE"), "the local API's bearer token file (default the configuration's api.token_file)")
	configFile := global.String("config", os.Getenv("KPE_CONFIG"), "the agent's configuration file (default "+doctor.DefaultConfigFile()+")")
	global.Usage = func() { fmt.Fprint(stderr, usage) }
	if err := global.Parse(args); err != nil {
		return 2
	}
	m, err := messagesFor(*lang)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	rest := global.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{out: stdout, errOut: stderr, in: stdin, msg: m, lang: *lang,
		agentURL: *agentURL, tokenFile: *tokenFile, configFile: *configFile}
	switch rest[0] {
	case "readers":
		err = c.readers(ctx, rest[1:])
	case "monitor":
		err = c.monitorCmd(ctx, rest[1:])
	case "apdu":
		err = c.apdu(ctx, rest[1:])
	case "read":
		err = c.read(ctx, rest[1:])
	case "bio":
		err = c.bio(ctx, rest[1:])
	case "queue":
		err = c.queue(ctx, rest[1:])
	case "doctor":
		err = c.doctor(ctx, rest[1:])
	case "status":
		err = c.status(ctx, rest[1:])
	case "auth":
		err = c.auth(ctx, rest[1:])
	case "sync":
		err = c.sync(ctx, rest[1:])
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "%s: %q\n\n%s", m.UnknownCommand, rest[0], usage)
		return 2
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errReported):
		return 1
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, err)
		return 2
	default:
		fmt.Fprintln(stderr, c.explain(err))
		return 1
	}
}

type usageError struct{ error }

// errReported: the command failed and has said why; exit code 1 without
// another message.
var errReported = errors.New("failed (reported)")

type cli struct {
	out, errOut io.Writer
	in          io.Reader
	msg         messages
	lang        string
	// Reaching the agent: the global flags (or their environment
	// variables), empty when not given.
	agentURL, tokenFile, configFile string
	// The token file read for the agent and why it gave no token.
	tokenPath string
	tokenErr  error
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
