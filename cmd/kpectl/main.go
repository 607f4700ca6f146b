// Command kpectl is the operator and technician CLI for kpe-agent terminals.
//
//	kpectl readers               readers, card present, ATR
//	kpectl monitor               live reader and card events
//	kpectl apdu HEX...           send APDUs to a card, like scriptor
//	kpectl read [--json]         read and verify the card (KPE, KPE Tambahan, KTP-el, SAM)
//	kpectl queue stats|list|retry|salvage|compact   the agent's outbox of records
//	kpectl doctor                diagnose the terminal: what is wrong and what to do
//	kpectl status                the agent, its readers, SAM, queue and sync in one view
//	kpectl auth                  authenticate a card holder through the agent
//	kpectl sync now              send the outbox to the back office now
//	kpectl monitor --via-agent   the agent's live events
//	kpectl loket [--open]        a one-time login link to the agent's counter screen
//	kpectl bio match|bench       the fingerprint matcher on template files
//
// Flags are GNU-style (--json, -r READER) and may come anywhere on the
// command line. See docs/kpectl.md.
//
// Messages are in Bahasa Indonesia by default; --lang en switches to English.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"kpe-agent/internal/clikit"
	"kpe-agent/internal/i18n"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{out: stdout, errOut: stderr, in: stdin, lang: string(i18n.Default), msg: messagesIn(i18n.Default)}
	if l, err := i18n.Parse(envOr("KPE_LANG", "id")); err == nil {
		c.msg, c.lang = messagesIn(l), string(l)
	}
	root := c.rootCommand()
	clikit.Prepare(root, stdout, stderr)
	cmd, err := clikit.Execute(ctx, root, args)
	return c.exit(cmd, args, err)
}

// exit reports err (of cmd) and returns the exit code: 0 success, 1
// failure, 2 usage error. With --json the error is a JSON object on
// standard output ({"error": {"code": ..., "message": ...}}).
func (c *cli) exit(cmd *cobra.Command, args []string, err error) int {
	code := clikit.ExitFailure
	switch {
	case err == nil:
		return clikit.ExitOK
	case errors.Is(err, errReported):
		return clikit.ExitFailure
	case clikit.IsUsage(err):
		code = clikit.ExitUsage
		// The command line was refused before --lang was applied.
		if m, lerr := messagesFor(c.langArg(args)); lerr == nil {
			c.msg = m
		}
	}
	if clikit.JSONRequested(cmd, args) {
		if perr := c.printJSON(c.errorBody(err)); perr != nil {
			fmt.Fprintln(c.errOut, c.explain(err))
		}
		return code
	}
	var unknown *clikit.UnknownCommandError
	switch {
	case errors.As(err, &unknown):
		fmt.Fprintf(c.errOut, "%s: %q\n", c.msg.UnknownCommand, unknown.Name)
		if len(unknown.Suggestions) > 0 {
			fmt.Fprintf(c.errOut, "  (%s?)\n", strings.Join(unknown.Suggestions, ", "))
		}
		fmt.Fprintf(c.errOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
	case code == clikit.ExitUsage:
		clikit.Report(c.errOut, cmd, err)
	default:
		fmt.Fprintln(c.errOut, c.explain(err))
	}
	return code
}

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

// langArg is the value of the last --lang (-l) in args, else the
// current language.
func (c *cli) langArg(args []string) string {
	lang := c.lang
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return lang
		case (a == "--lang" || a == "-l") && i+1 < len(args):
			lang = args[i+1]
			i++
		case strings.HasPrefix(a, "--lang="):
			lang = strings.TrimPrefix(a, "--lang=")
		case strings.HasPrefix(a, "-l") && len(a) > 2 && !strings.HasPrefix(a, "--"):
			lang = strings.TrimPrefix(a[2:], "=")
		}
	}
	return lang
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// printJSON prints v as indented JSON (every --json output but the
// monitors' streams, which are one object a line).
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
