// Command kpe-agent is the card-reader terminal daemon: it watches the
// PC/SC readers, authenticates KPE, KPE Tambahan and KTP-el cards with the
// terminal SAM and the holder's fingerprint, records SAM-signed
// authentication codes in the local outbox, syncs them to the back office,
// and serves frontline applications on a local API (docs/local-api.md).
//
//	kpe-agent run [-config FILE] [-set key=value ...]   in the foreground (or under the service manager)
//	kpe-agent install [-config FILE] [-user USER]       register the OS service (restart on failure)
//	kpe-agent uninstall | start | stop | status         manage the OS service (status exits 0 running, 3 stopped, 4 not installed)
//	kpe-agent check-config [-config FILE]               validate the configuration and exit
//	kpe-agent version
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

const usage = `kpe-agent — KPE / KTP-el card terminal agent

Usage:
  kpe-agent run [-config FILE] [-set key=value ...]
  kpe-agent check-config [-config FILE] [-set key=value ...]
  kpe-agent install [-config FILE] [-user USER]
  kpe-agent uninstall | start | stop | status
        (status exits 0 when running, 3 when stopped or failed, 4 when not installed)
  kpe-agent version

The configuration file defaults to $KPE_CONFIG, else /etc/kpe-agent/agent.yaml
(%ProgramData%\kpe-agent\agent.yaml on Windows)
(configs/agent.yaml documents every key). Precedence: -set flags, then KPE_*
environment variables (KPE_SYNC_URL for sync.url), then the file, then defaults.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runCommand(args[1:], stderr)
	case "check-config":
		return checkConfigCommand(args[1:], stdout, stderr)
	case "install", "uninstall", "start", "stop", "status":
		return serviceCommand(args[0], args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "kpe-agent", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "kpe-agent: unknown command %q\n\n%s", args[0], usage)
	return 2
}
