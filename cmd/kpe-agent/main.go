// Command kpe-agent is the card-reader terminal daemon: it watches the
// PC/SC readers, authenticates KPE, KPE Tambahan and KTP-el cards with the
// terminal SAM and the holder's fingerprint, records SAM-signed
// authentication codes in the local outbox, syncs them to the back office,
// and serves frontline applications on a local API (docs/local-api.md).
//
//	kpe-agent run [-c FILE] [--set key=value ...]    in the foreground (or under the service manager)
//	kpe-agent install [-c FILE] [--user USER]        register the OS service (restart on failure)
//	kpe-agent uninstall | start | stop | status      manage the OS service (status exits 0 running, 3 stopped, 4 not installed)
//	kpe-agent check-config [-c FILE]                 validate the configuration and exit
//	kpe-agent version [--json]
//
// Flags are GNU-style (--config, -c). `run` also accepts the single-dash
// flags of older versions (run -config FILE), with a warning: an installed
// service's command line may still hold them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"kpe-agent/agent/config"
	"kpe-agent/internal/buildinfo"
	"kpe-agent/internal/clikit"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitCode is a command's exit code when it is not 0, 1 or 2 (status: 3
// and 4; run: 78), or when the command has already said why it failed.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit code %d", int(e)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "run" {
		// A SIGHUP (systemctl reload) must not kill the agent at any
		// time, and Go's default for a SIGHUP nobody catches is to exit:
		// catch it before anything else.
		config.CatchReloadSignals()
	}
	root := rootCommand(stdout, stderr)
	clikit.Prepare(root, stdout, stderr)
	args = legacyRunFlags(root, args, stderr)
	cmd, err := clikit.Execute(context.Background(), root, args)
	var code exitCode
	switch {
	case errors.As(err, &code):
		return int(code)
	case err == nil || clikit.IsUsage(err):
		return clikit.Report(stderr, cmd, err)
	}
	fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
	return clikit.ExitFailure
}

// legacyRunFlags rewrites `run -config FILE -set k=v` (the Go flag syntax
// of older versions, which an installed systemd unit, SysV script or
// Windows service may still use) into GNU flags, and warns once on
// stderr: the agent keeps starting after an upgrade.
func legacyRunFlags(root *cobra.Command, args []string, stderr io.Writer) []string {
	if len(args) == 0 || args[0] != "run" {
		return args
	}
	runCmd, _, err := root.Find(args[:1])
	if err != nil {
		return args
	}
	rest, old := clikit.RewriteSingleDash(runCmd, args[1:])
	if len(old) == 0 {
		return args
	}
	fmt.Fprintf(stderr, "kpe-agent: warning: %s: single-dash flags are the old syntax; use --%s "+
		"(if the service manager starts the agent so, reinstall the service or the package)\n",
		strings.Join(old, " "), strings.TrimPrefix(old[0], "-"))
	return append([]string{"run"}, rest...)
}

func rootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "kpe-agent",
		Short: "KPE / KTP-el card terminal agent",
		Long: `kpe-agent is the daemon next to the card reader: it reads KPE, KPE Tambahan and KTP-el cards over
PC/SC, authenticates them with the terminal SAM and the holder's fingerprint, records SAM-signed
authentication codes in a local outbox, syncs them to the back office, and serves frontline
applications on a local API.

The configuration file defaults to $KPE_CONFIG, else /etc/kpe-agent/agent.yaml
(%ProgramData%\kpe-agent\agent.yaml on Windows); configs/agent.yaml documents every key.
Precedence: --set flags, then KPE_* environment variables (KPE_SYNC_URL for sync.url), then the
file, then the defaults.

Exit codes: 0 success; 1 failure; 2 usage error; run: 78 when the configuration keeps the agent
from starting; status: 0 running, 3 stopped or failed, 4 not installed.

See docs/agent.md and docs/install.md.`,
		Example: `  kpe-agent check-config --config /etc/kpe-agent/agent.yaml
  kpe-agent run -c configs/lab.yaml --set log.level=debug
  sudo kpe-agent install --config /etc/kpe-agent/agent.yaml && sudo kpe-agent start
  kpe-agent status; echo $?`,
	}

	var ro runOptions
	runCmd := &cobra.Command{
		Use:   "run [-c FILE] [--set key=value ...]",
		Short: "Run the agent in the foreground (or under the service manager)",
		Long: `Runs the agent until Ctrl-C, SIGTERM or the service manager stops it. The exit code is 78
(EX_CONFIG) when the configuration or a file it names keeps the agent from starting: the service
manager does not restart it then. The single-dash flags of older versions (run -config FILE) are
still accepted, with a warning, for service definitions written by them.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return codeOf(runCommand(ro, stderr)) },
	}
	runFlags(runCmd, &ro)

	var co runOptions
	checkCmd := &cobra.Command{
		Use:   "check-config [-c FILE] [--set key=value ...]",
		Short: "Validate the configuration and every file it names, then exit",
		Long: `Loads the configuration as run does and reads every file run reads at start (secrets, keys,
certificates, trust lists). Exit code 0 when the agent can start with it, 1 otherwise, with a
message naming the key, the file and line, and the expected form.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return codeOf(checkConfigCommand(co, stdout, stderr)) },
	}
	runFlags(checkCmd, &co)

	var configFile, userName string
	installCmd := &cobra.Command{
		Use:   "install [-c FILE] [--user USER]",
		Short: "Register the OS service (systemd, SysV init or Windows), restarted on failure",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return codeOf(installCommand(configFile, userName, cmd.Flags().Changed("user"), stdout, stderr))
		},
	}
	installCmd.Flags().StringVarP(&configFile, "config", "c", defaultInstallConfigFile(), "configuration file the service runs with ($KPE_CONFIG when set)")
	clikit.EnvDefault(installCmd.Flags(), "config", "KPE_CONFIG")
	installCmd.Flags().StringVar(&userName, "user", "", "account the service runs as (Linux default: "+serviceAccount+" when it exists, else root)")

	control := func(name, short string) *cobra.Command {
		return &cobra.Command{
			Use:   name,
			Short: short,
			Args:  cobra.NoArgs,
			RunE:  func(*cobra.Command, []string) error { return codeOf(controlCommand(name, stdout, stderr)) },
		}
	}
	statusCmd := &cobra.Command{
		Use:   "status",
		Short: "The service's state: exit code 0 running, 3 stopped or failed, 4 not installed",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return codeOf(statusCommand(stdout, stderr)) },
	}
	root.AddCommand(runCmd, checkCmd, installCmd,
		control("uninstall", "Remove the OS service (the configuration, the token and the data are kept)"),
		control("start", "Start the OS service"), control("stop", "Stop the OS service"), statusCmd)
	return root
}

// runFlags are the flags of run and check-config.
func runFlags(cmd *cobra.Command, o *runOptions) {
	o.Set = map[string]string{}
	cmd.Flags().StringVarP(&o.ConfigFile, "config", "c", defaultConfigFile(), "configuration file (YAML; $KPE_CONFIG when set)")
	clikit.EnvDefault(cmd.Flags(), "config", "KPE_CONFIG")
	cmd.Flags().Var(setFlag(o.Set), "set", "override a key: --set sync.url=https://bo.example:8443 (repeatable)")
}

// codeOf is a command's exit code as its RunE error: nil for 0.
func codeOf(code int) error {
	if code == 0 {
		return nil
	}
	return exitCode(code)
}

// version is the agent's version for its health answer and logs.
func version() string { return buildinfo.Read().Version }
