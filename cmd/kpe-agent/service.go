package main

import (
	"fmt"
	"io"
)

// serviceCommand is replaced by the kardianos/service wrapper.
func serviceCommand(cmd string, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stderr, "kpe-agent %s: not built yet\n", cmd)
	return 1
}
