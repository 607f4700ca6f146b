//go:build !unix

package config

import "os"

// reloadSignals make Watch reload (see CatchReloadSignals): none where there is no SIGHUP
// (Windows); file changes still do.
var reloadSignals []os.Signal
