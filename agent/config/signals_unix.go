//go:build unix

package config

import (
	"os"
	"syscall"
)

// reloadSignals make Watch reload.
var reloadSignals = []os.Signal{syscall.SIGHUP}
