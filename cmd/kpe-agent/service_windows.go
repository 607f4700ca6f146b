//go:build windows

package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/kardianos/service"
)

func programData() string {
	if d := os.Getenv("ProgramData"); d != "" {
		return d
	}
	return `C:\ProgramData`
}

// defaultInstallConfigFile is install's --config default; $KPE_CONFIG
// overrides it (clikit.EnvDefault).
func defaultInstallConfigFile() string {
	return filepath.Join(programData(), "kpe-agent", "agent.yaml")
}

func defaultAccountName() string { return "LocalSystem" }

// checkServicePrivileges: the service manager refuses non-administrators
// with a clear "Access is denied".
func checkServicePrivileges() error { return nil }

func packagedUnit() string { return "" }

// serviceUser: LocalSystem unless --user names an account that needs no
// password (NT AUTHORITY\LocalService, for instance).
func serviceUser(name string, set bool) (string, string, error) {
	if !set {
		return "", "", nil
	}
	return name, "", nil
}

// makeSecretsDir creates dir and gives it an ACL for SYSTEM and the
// Administrators group only (by SID: the names are localised), without
// inherited entries; files created in it inherit that ACL.
func makeSecretsDir(dir, _ string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	out, err := exec.Command("icacls.exe", dir, "/inheritance:r", "/grant:r",
		"*S-1-5-18:(OI)(CI)F", "*S-1-5-32-544:(OI)(CI)F").CombinedOutput()
	if err != nil {
		return fmt.Errorf("icacls %s: %v: %s", dir, err, out)
	}
	return nil
}

func protectSecretFile(*os.File, string) error { return nil }

// tokenGroup: Windows protects the token by the secrets directory's ACL.
func tokenGroup(_, group string) (string, string) { return group, "" }

func definitionPath(string) string { return "" }

func serviceStatus(s service.Service) (service.Status, error) { return s.Status() }

func afterUninstall(string) error { return nil }

func platformWarnings(string, string) []string {
	return []string{"recovery: restart 5 s after a failure (install.ps1 adds a second and third restart with sc.exe failure)"}
}

// watchAgent ends the process when the agent returns by itself: the
// Windows service manager then sees a failure and runs the recovery
// actions (kardianos's Run only returns on a stop request).
func watchAgent(p *program, stderr io.Writer, logger service.Logger) {
	go func() {
		<-p.done
		if p.stopping.Load() {
			return
		}
		err := p.err
		if err == nil {
			err = errAgentExited
		}
		fmt.Fprintf(stderr, "kpe-agent: %v\n", err)
		if logger != nil {
			_ = logger.Errorf("kpe-agent: %v", err)
		}
		os.Exit(1)
	}()
}
