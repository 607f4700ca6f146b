package main

import (
	"fmt"
	"io"
)

func runCommand(args []string, stderr io.Writer) int {
	fmt.Fprintln(stderr, "kpe-agent run: not built yet")
	return 1
}

func checkConfigCommand(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "kpe-agent check-config: not built yet")
	return 1
}
