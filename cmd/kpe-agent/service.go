package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// serviceCommand is replaced by the kardianos/service wrapper.
func serviceCommand(cmd string, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stderr, "kpe-agent %s: not built yet\n", cmd)
	return 1
}

// runService runs the agent in the foreground (replaced by the
// kardianos/service wrapper, which also runs it under the service manager).
func runService(o runOptions, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runAgent(ctx, o, nil); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
