// Command kpectl is the operator and technician CLI for kpe-agent terminals.
//
//	kpectl readers            readers, card present, ATR
//	kpectl monitor            live reader and card events
//	kpectl apdu HEX...        send APDUs to a card, like scriptor
//	kpectl read [-json]       read and verify the card (KPE, KPE Tambahan, KTP-el, SAM)
//	kpectl queue stats|list|retry|salvage   the agent's outbox of records
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
)

const usage = `kpectl — alat operator terminal KPE / KPE terminal operator tool

Usage:
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
         list never prints a record's subject (NIP, NIK hash) or card serial)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("kpectl", flag.ContinueOnError)
	global.SetOutput(stderr)
	lang := global.String("lang", envOr("KPE_LANG", "id"), "message language: id (Bahasa Indonesia) or en")
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
	c := &cli{out: stdout, errOut: stderr, in: stdin, msg: m, lang: *lang}
	switch rest[0] {
	case "readers":
		err = c.readers(ctx, rest[1:])
	case "monitor":
		err = c.monitor(ctx, rest[1:])
	case "apdu":
		err = c.apdu(ctx, rest[1:])
	case "read":
		err = c.read(ctx, rest[1:])
	case "bio":
		err = c.bio(ctx, rest[1:])
	case "queue":
		err = c.queue(ctx, rest[1:])
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
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, err)
		return 2
	default:
		fmt.Fprintln(stderr, c.explain(err))
		return 1
	}
}

type usageError struct{ error }

type cli struct {
	out, errOut io.Writer
	in          io.Reader
	msg         messages
	lang        string
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
