//go:build unix

package config

import (
	"os"
	"syscall"
)

// reloadSignals make Watch reload (see CatchReloadSignals).
var reloadSignals = []os.Signal{syscall.SIGHUP}
