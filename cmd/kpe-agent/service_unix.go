//go:build !windows

package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/kardianos/service"

	"kpe-agent/agent/config"
)

// Where kardianos writes the service definition on the platforms a Linux
// terminal has (kardianos names the platforms linux-systemd, unix-systemv).
const (
	platformSystemd = "linux-systemd"
	platformSysV    = "unix-systemv"
	systemdUnitDir  = "/etc/systemd/system"
	sysvInitDir     = "/etc/init.d"
)

func defaultInstallConfigFile() string { return defaultConfigFile() }

func defaultAccountName() string { return "root" }

func checkServicePrivileges() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (run it with sudo)")
	}
	return nil
}

// packagedUnit is the systemd unit the .deb or .rpm installed, or "".
func packagedUnit() string {
	for _, p := range []string{"/lib/systemd/system/" + serviceName + ".service", "/usr/lib/systemd/system/" + serviceName + ".service"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// serviceUser resolves the account the service runs as and its primary
// group. Without --user: kpe-agent when that account exists, else root
// (""). root also gives "" (the service manager's default).
func serviceUser(name string, set bool) (string, string, error) {
	if !set {
		if _, err := user.Lookup(serviceAccount); err != nil {
			var unknown user.UnknownUserError
			if errors.As(err, &unknown) {
				return "", "", nil
			}
			return "", "", fmt.Errorf("looking up the account %s: %w", serviceAccount, err)
		}
		name = serviceAccount
	}
	if name == "" || name == "root" {
		return "", "", nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return "", "", fmt.Errorf("--user %s: %w", name, err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return "", "", fmt.Errorf("--user %s: primary group %s: %w", name, u.Gid, err)
	}
	return u.Username, g.Name, nil
}

// secretsGroup is the group that may read the API token: the service
// account's primary group, else kpe-agent when that group exists, else none.
func secretsGroup(group string) (gid int, ok bool, err error) {
	if group == "" {
		if _, err := user.LookupGroup(serviceAccount); err != nil {
			return 0, false, nil
		}
		group = serviceAccount
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return 0, false, fmt.Errorf("group %s: %w", group, err)
	}
	gid, err = strconv.Atoi(g.Gid)
	if err != nil {
		return 0, false, fmt.Errorf("group %s: gid %q: %w", group, g.Gid, err)
	}
	return gid, true, nil
}

// makeSecretsDir creates dir 0750 root:group when it is missing; an
// existing directory is left as it is.
func makeSecretsDir(dir, group string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		return err
	}
	gid, ok, err := secretsGroup(group)
	if err != nil || !ok {
		return err
	}
	return os.Chown(dir, 0, gid)
}

// protectSecretFile makes the new token file 0640 root:group.
func protectSecretFile(f *os.File, group string) error {
	if err := f.Chmod(0o640); err != nil {
		return err
	}
	gid, ok, err := secretsGroup(group)
	if err != nil || !ok {
		return err
	}
	return f.Chown(0, gid)
}

// definitionPath is the file kardianos wrote for the platform, or "".
func definitionPath(platform string) string {
	switch platform {
	case platformSystemd:
		return filepath.Join(systemdUnitDir, serviceName+".service")
	case platformSysV:
		return filepath.Join(sysvInitDir, serviceName)
	}
	return ""
}

// serviceStatus is s.Status with two corrections for kardianos v1.2.4:
// on SysV its Status reads a stopped service (the script exits 1) and a
// missing script both as errors; on systemd a failed unit is an untyped
// error.
func serviceStatus(s service.Service) (service.Status, error) {
	switch s.Platform() {
	case platformSysV:
		script := definitionPath(platformSysV)
		if _, err := os.Stat(script); errors.Is(err, fs.ErrNotExist) {
			return service.StatusUnknown, service.ErrNotInstalled
		}
		out, err := exec.Command(script, "status").Output()
		switch first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n"); first {
		case "Running":
			return service.StatusRunning, nil
		case "Stopped":
			return service.StatusStopped, nil
		}
		return service.StatusUnknown, fmt.Errorf("%s status: %q (%v)", script, out, err)
	case platformSystemd:
		st, err := s.Status()
		if err != nil && err.Error() == "service in failed state" {
			return service.StatusStopped, errServiceFailed
		}
		return st, err
	}
	return s.Status()
}

// afterUninstall removes what kardianos's Uninstall leaves behind: on SysV
// the /etc/rc?.d links to the init script it removed.
func afterUninstall(platform string) error {
	if platform != platformSysV {
		return nil
	}
	script := definitionPath(platformSysV)
	links, err := filepath.Glob("/etc/rc[0-6S].d/[SK][0-9][0-9]" + serviceName)
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		if target, err := os.Readlink(l); err == nil && target == script {
			if err := os.Remove(l); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// platformWarnings says what the installed definition does not do.
func platformWarnings(platform, user string) []string {
	switch platform {
	case platformSystemd:
		return nil
	case platformSysV:
		w := []string{"SysV init: the init script does not restart the agent when it fails (systemd does: Restart=always)"}
		if user != "root" {
			w = append(w, "SysV init: kardianos's init script runs the agent as root, not as "+user)
		}
		return w
	}
	return []string{platform + ": the restart policy (Restart=always, RestartSec=5) is set for systemd and Windows only"}
}

// watchAgent: on Unix the RunWait option ends Run when the agent returns.
func watchAgent(*program, io.Writer, service.Logger) {}

// tokenGroup is the group the API token file gets at install: the
// packages' kpe-agent-api (config.APIGroup: the token's readers, who read
// nothing else) when that group exists and the service account is in it,
// so it can read the token too; else the service's own group, with a note
// saying how to split them (docs/install.md).
func tokenGroup(account, group string) (string, string) {
	api, err := user.LookupGroup(config.APIGroup)
	if err != nil {
		return group, tokenGroupNote(account, group)
	}
	if account == "" || account == "root" {
		return config.APIGroup, ""
	}
	u, err := user.Lookup(account)
	if err != nil {
		return group, tokenGroupNote(account, group)
	}
	ids, err := u.GroupIds()
	if err != nil || !slices.Contains(ids, api.Gid) {
		return group, tokenGroupNote(account, group)
	}
	return config.APIGroup, ""
}

// tokenGroupNote says that the token's group also reads the service's
// secrets, and how to give the token readers a group of their own.
func tokenGroupNote(account, group string) string {
	if group == "" {
		return ""
	}
	return fmt.Sprintf("the API token is readable by group %s, which may also read the service's other secrets: "+
		"create group %s, add %s to it, chgrp %s the token, and add the token's readers to %s, not %s (docs/install.md)",
		group, config.APIGroup, account, config.APIGroup, config.APIGroup, group)
}
