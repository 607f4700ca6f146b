package main

// The two commands scripts/run-lab.sh (make run) uses so that it stops
// everything it started however it is stopped, and says what holds a port
// it needs: tether and check-ports. docs/card-lab.md, "Stopping make run".

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"kpe-agent/internal/clikit"
	"kpe-agent/lab/portcheck"
)

// tetherCommand: kpe-cardsim tether --parent PID [--setsid] -- CMD [ARG...].
func tetherCommand() *cobra.Command {
	var parent int
	var newSession bool
	cmd := &cobra.Command{
		Use:   "tether --parent PID [--setsid] -- CMD [ARG...]",
		Short: "Run CMD so that it gets SIGTERM when process PID (its parent) dies, even by SIGKILL",
		Long: `Replaces itself with CMD (exec), after asking the kernel to send SIGTERM to it when its parent
process dies (Linux PR_SET_PDEATHSIG). PID must be the parent's process id ($$ in the shell that
starts it): when the parent is already gone, CMD is not run. With --setsid CMD runs in a session of
its own, so that signals to the parent's process group (Ctrl-C, kill -TERM -PGID) do not reach it
and the parent stops it in its own order. make run starts the back office, the card lab and the
agent so, and itself too (tethered to make).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if parent <= 1 {
				return clikit.Usagef("--parent: want the parent's process id, got %d", parent)
			}
			if c.ArgsLenAtDash() != 0 {
				return clikit.Usagef("write the command after --: tether --parent PID -- CMD [ARG...]")
			}
			return tether(parent, newSession, args)
		},
	}
	cmd.Flags().IntVar(&parent, "parent", 0, "the parent's process id (the process CMD must not outlive)")
	cmd.Flags().BoolVar(&newSession, "setsid", false, "run CMD in a new session (setsid)")
	_ = cmd.MarkFlagRequired("parent")
	return cmd
}

// errParentGone: tether's parent died before CMD was tethered to it.
var errParentGone = errors.New("the parent process is gone")

// checkPortsCommand: kpe-cardsim check-ports ADDR[=WHAT]...
func checkPortsCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "check-ports ADDR[=WHAT]...",
		Short: "Check that TCP addresses are free to listen on; name the process holding one that is not",
		Long: `Tries to listen on each host:port and, for one in use, names the process holding it (from /proc on
Linux): "127.0.0.1:7531 (the agent's local API) is in use by pid 1234 (bin/kpe-agent run ...)".
WHAT says what the address is for. Exit codes: 0 all free; 1 one or more in use; 2 usage error.`,
		Example: `  kpe-cardsim check-ports "127.0.0.1:7531=the agent's local API" 127.0.0.1:35990`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var errs []error
			for _, a := range args {
				addr, what, _ := strings.Cut(a, "=")
				if err := portcheck.Free(addr, what); err != nil {
					errs = append(errs, err)
				}
			}
			if len(errs) > 0 {
				return fmt.Errorf("%w\n(a lab from an earlier make run still running? stop the process named, e.g. kill PID)", errors.Join(errs...))
			}
			fmt.Fprintf(stdout, "free: %d address(es)\n", len(args))
			return nil
		},
	}
}
