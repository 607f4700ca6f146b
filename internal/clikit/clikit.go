// Package clikit holds what the command lines of kpe-agent, kpectl,
// kpe-backoffice and kpe-cardsim share on top of github.com/spf13/cobra:
// the exit codes, the split between usage errors (exit code 2) and
// failures, GNU-style flags only (a single-dash long flag is refused with
// the right spelling), commands that only group subcommands, and the
// version and man commands. Shell completion is cobra's own `completion`
// command.
package clikit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"kpe-agent/internal/buildinfo"
)

func init() {
	// Commands are listed in the order they were added: the order of
	// use (queue stats, list, retry, salvage), not the alphabet's.
	cobra.EnableCommandSorting = false
}

// Exit codes every binary shares (a binary may add its own: kpe-agent
// status uses 3 and 4, kpe-agent run 78).
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// UsageError is an error of the command line (unknown command or flag, a
// missing or malformed argument): exit code 2.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Usagef is a UsageError with a formatted message.
func Usagef(format string, a ...any) error { return UsageError{fmt.Errorf(format, a...)} }

// IsUsage reports whether err is (or wraps) a UsageError.
func IsUsage(err error) bool {
	var u UsageError
	return errors.As(err, &u)
}

// ErrNoCommand: a command that only groups subcommands was given none.
// Report prints the command's usage for it.
var ErrNoCommand = errors.New("a command is required")

// UnknownCommandError: no subcommand of Parent has this name.
type UnknownCommandError struct {
	Name        string
	Parent      string   // the parent's command path ("kpectl queue")
	Suggestions []string // similar names
}

func (e *UnknownCommandError) Error() string {
	s := fmt.Sprintf("unknown command %q for %q", e.Name, e.Parent)
	if len(e.Suggestions) > 0 {
		s += " (did you mean " + strings.Join(e.Suggestions, ", ") + "?)"
	}
	return s
}

// SingleDashError: a long flag was given with one dash (-json), the Go
// flag package's syntax the binaries used before; it takes two (--json).
// Hint, when set, replaces that advice: the old flag was renamed or
// removed (see LegacyFlag).
type SingleDashError struct{ Arg, Flag, Hint string }

func (e *SingleDashError) Error() string {
	if e.Hint != "" {
		return fmt.Sprintf("%s: %s", e.Arg, e.Hint)
	}
	return fmt.Sprintf("%s: long flags take two dashes: --%s", e.Arg, e.Flag)
}

// legacyPrefix marks the annotations LegacyFlag sets.
const legacyPrefix = "clikit.legacy-flag."

// LegacyFlag tells cmd's users what became of a flag of the old
// single-dash syntax that no longer exists under its name: "-agent" on
// kpectl monitor is now --via-agent, "-lab" on kpectl read is gone. hint
// is the whole advice ("renamed: use --via-agent").
func LegacyFlag(cmd *cobra.Command, name, hint string) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[legacyPrefix+name] = hint
}

// EnvDefault makes the environment variable env, when set and not empty,
// the default of the string flag name of fs without showing its value:
// the usage, the usage errors and the man pages keep the flag's own
// default, so a secret in the variable (a DSN with its password) is never
// printed. A value on the command line wins. Name $env in the flag's
// usage. Call it once the flag is defined.
func EnvDefault(fs *pflag.FlagSet, name, env string) {
	f := fs.Lookup(name)
	if f == nil || f.Value.Type() != "string" {
		panic("clikit.EnvDefault: no string flag --" + name)
	}
	if v := os.Getenv(env); v != "" {
		def := f.DefValue
		_ = f.Value.Set(v) // a string flag takes any value
		f.DefValue = def
	}
}

// Prepare sets root up for Execute, once its commands are added: cobra's own printing of errors and
// usage is off (Report does it), flag errors are UsageErrors, help goes to
// out and everything else to errOut, and the version, man and completion
// commands are added.
func Prepare(root *cobra.Command, out, errOut io.Writer) {
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.DisableAutoGenTag = true
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return UsageError{err} })
	root.AddCommand(VersionCommand(), ManCommand())
	root.SetHelpCommand(helpCommand())
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	// --version as well as the version command (the binaries took
	// --version before they moved to cobra)
	root.Version = buildinfo.Read().Version
	root.SetVersionTemplate(`{{.Name}} {{.Version}}` + "\n")
	root.InitDefaultVersionFlag()
}

// helpCommand is `help [command]`: the command's help, and a usage error
// (exit code 2) for a command that does not exist (cobra's own prints
// "Unknown help topic" and exits 0).
func helpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || cmd == nil || len(rest) > 0 {
				name := strings.Join(args, " ")
				return UsageError{&UnknownCommandError{Name: name, Parent: c.Root().CommandPath(), Suggestions: c.Root().SuggestionsFor(name)}}
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			return cmd.Help()
		},
	}
}

// Execute runs root (set up by Prepare) on args. It returns the command
// that ran, or the one the error is about, and the error: every error
// found before a command ran (unknown command or flag, a bad argument, a
// missing required flag, a single-dash long flag) is a UsageError.
func Execute(ctx context.Context, root *cobra.Command, args []string) (*cobra.Command, error) {
	completing := len(args) > 0 && strings.HasPrefix(args[0], "__complete")
	if !completing {
		if err := checkSingleDash(root, args); err != nil {
			return root, UsageError{err}
		}
		if cmd, err := checkGroup(root, args); err != nil {
			return cmd, err
		}
	}
	ran := false
	markRun(root, &ran)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if cmd == nil {
		cmd = root
	}
	if err != nil && !ran && !IsUsage(err) {
		err = UsageError{err}
	}
	return cmd, err
}

// markRun wraps every command's run function so that *ran says whether a
// command's own code was reached.
func markRun(c *cobra.Command, ran *bool) {
	if f := c.RunE; f != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error { *ran = true; return f(cmd, args) }
	}
	if f := c.Run; f != nil {
		c.Run = func(cmd *cobra.Command, args []string) { *ran = true; f(cmd, args) }
	}
	for _, sub := range c.Commands() {
		markRun(sub, ran)
	}
}

// Report prints err, an error Execute returned for cmd, on w when it is a
// usage error (ErrNoCommand prints cmd's usage) and returns ExitUsage;
// for any other error it returns ExitFailure and prints nothing: the
// binary says what failed in its own words.
func Report(w io.Writer, cmd *cobra.Command, err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrNoCommand):
		fmt.Fprint(w, cmd.UsageString())
		return ExitUsage
	case IsUsage(err):
		fmt.Fprintf(w, "%s: %v\nRun '%s --help' for usage.\n", cmd.CommandPath(), err, cmd.CommandPath())
		return ExitUsage
	}
	return ExitFailure
}

// checkGroup catches what cobra does not treat as an error for a command
// that only groups subcommands (root or not): no subcommand (cobra prints
// the help and exits 0) or an unknown one (cobra does the same below the
// root). The help flag still shows the help.
func checkGroup(root *cobra.Command, args []string) (*cobra.Command, error) {
	cmd, rest, err := root.Find(args)
	if cmd == nil {
		return root, nil // cobra reports it
	}
	if cmd.Runnable() || !cmd.HasSubCommands() {
		return cmd, nil
	}
	pos, help := positional(cmd, rest)
	switch {
	case help:
		return cmd, nil
	case len(pos) == 0 && err == nil:
		// an unknown flag is named, not hidden behind the usage
		cmd.InitDefaultHelpFlag()
		if perr := cmd.ParseFlags(rest); perr != nil {
			return cmd, UsageError{perr}
		}
		if v := cmd.Flags().Lookup("version"); v != nil && v.Changed {
			return cmd, nil // cobra prints the version
		}
		return cmd, UsageError{ErrNoCommand}
	case len(pos) > 0:
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only for the root's own check
		}
		return cmd, UsageError{&UnknownCommandError{Name: pos[0], Parent: cmd.CommandPath(), Suggestions: cmd.SuggestionsFor(pos[0])}}
	}
	return cmd, nil
}

// positional returns the arguments that are not flags or flag values,
// and whether the help flag is among args.
func positional(cmd *cobra.Command, args []string) (pos []string, help bool) {
	flags := cmd.Flags()
	takesValue := func(f *pflag.Flag) bool { return f != nil && f.NoOptDefVal == "" }
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(pos, args[i+1:]...), help
		case a == "-h" || a == "--help":
			help = true
		case strings.HasPrefix(a, "--"):
			if !strings.Contains(a, "=") && takesValue(flags.Lookup(a[2:])) {
				i++
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			if len(a) == 2 && takesValue(flags.ShorthandLookup(a[1:])) {
				i++
			}
		default:
			pos = append(pos, a)
		}
	}
	return pos, help
}

// checkSingleDash refuses -name and -name=value where name is a long flag
// of the command args name (its own or inherited), or an old flag of it
// that LegacyFlag describes: pflag would read it as shorthand flags
// (-config as -c onfig) and fail in a confusing way, or not at all. When
// the command cannot be told, every long flag of root counts.
func checkSingleDash(root *cobra.Command, args []string) error {
	cmd, _, err := root.Find(args)
	known := func(name string) bool {
		if err != nil || cmd == nil {
			return slices.Contains(LongFlags(root), name)
		}
		return cmd.Flags().Lookup(name) != nil || cmd.InheritedFlags().Lookup(name) != nil
	}
	for _, a := range args {
		if a == "--" {
			return nil
		}
		name, ok := singleDashName(a)
		if !ok {
			continue
		}
		if cmd != nil {
			if hint, ok := cmd.Annotations[legacyPrefix+name]; ok {
				return &SingleDashError{Arg: a, Flag: name, Hint: hint}
			}
		}
		if known(name) {
			return &SingleDashError{Arg: a, Flag: name}
		}
	}
	return nil
}

// singleDashName is the name of a single-dash long flag argument
// ("-config=x" gives "config").
func singleDashName(a string) (string, bool) {
	if len(a) < 3 || a[0] != '-' || a[1] == '-' {
		return "", false
	}
	name, _, _ := strings.Cut(a[1:], "=")
	return name, len(name) > 1
}

// LongFlags lists the long flag names of c and its subcommands.
func LongFlags(c *cobra.Command) []string {
	var names []string
	add := func(f *pflag.Flag) {
		if !slices.Contains(names, f.Name) {
			names = append(names, f.Name)
		}
	}
	c.LocalFlags().VisitAll(add)
	c.PersistentFlags().VisitAll(add)
	for _, sub := range c.Commands() {
		for _, n := range LongFlags(sub) {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// RewriteSingleDash turns the single-dash long flags of cmd (its own and
// the inherited ones) in args into double-dash ones (-config FILE into
// --config FILE) and returns the flags it rewrote. It is for command lines
// written before the move to GNU flags that a person cannot change, such
// as an installed service's.
func RewriteSingleDash(cmd *cobra.Command, args []string) ([]string, []string) {
	out := make([]string, 0, len(args))
	var rewritten []string
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...), rewritten
		}
		if name, ok := singleDashName(a); ok && (cmd.Flags().Lookup(name) != nil || cmd.InheritedFlags().Lookup(name) != nil) {
			a = "-" + a
			rewritten = append(rewritten, "-"+name)
		}
		out = append(out, a)
	}
	return out, rewritten
}

// JSONRequested reports whether the command line asks for JSON output:
// cmd's --json flag is set, or (when parsing failed before it was read)
// --json or -j appears among args.
func JSONRequested(cmd *cobra.Command, args []string) bool {
	if cmd != nil {
		if f := cmd.Flags().Lookup("json"); f != nil && f.Changed {
			return f.Value.String() == "true"
		}
	}
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--json", "--json=true", "-j":
			return true
		}
	}
	return false
}

// Main sets root up (Prepare), runs it on args with a context cancelled
// by SIGINT and SIGTERM, reports a usage error, prints any other error as
// "NAME: error" on errOut, and returns the exit code: what a binary with
// no exit codes of its own does in main.
func Main(root *cobra.Command, args []string, out, errOut io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	Prepare(root, out, errOut)
	cmd, err := Execute(ctx, root, args)
	if err == nil || IsUsage(err) {
		return Report(errOut, cmd, err)
	}
	fmt.Fprintf(errOut, "%s: %v\n", root.Name(), err)
	return ExitFailure
}
