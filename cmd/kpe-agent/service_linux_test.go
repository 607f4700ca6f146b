package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kardianos/service"

	"kpe-agent/internal/systest"
)

// requireRoot skips a test that needs root, loudly; under CI=true a
// missing prerequisite fails instead.
func requireRoot(t *testing.T, what string) {
	t.Helper()
	systest.Need(t, os.Geteuid() == 0, what+" needs root (run the tests as root, e.g. in the CI container)")
}

// kpeAgent runs the built binary.
func kpeAgent(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kpe-agent %q: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// TestInstallUninstall registers the service on this machine with the
// built binary, checks what kardianos wrote for the service system it
// detects here (a systemd unit, or a SysV init script in a container
// without systemd) and the API token, then uninstalls it.
func TestInstallUninstall(t *testing.T) {
	requireRoot(t, "registering the kpe-agent service")
	systest.LockService(t)
	platform := service.ChosenSystem().String()
	t.Logf("service system detected here: %s", platform)
	if unit := packagedUnit(); unit != "" {
		t.Fatalf("the kpe-agent package is installed here (%s): remove it first (dpkg -P kpe-agent)", unit)
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "kpe-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if code, out, _ := kpeAgent(t, bin, "status"); code != exitStatusNotInstalled {
		t.Fatalf("kpe-agent is already registered on this machine (status %d: %s); run kpe-agent uninstall first", code, out)
	}
	token := filepath.Join(dir, "etc", "secrets", "api-token")
	config := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(config, []byte("api:\n  token_file: "+token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	if code, _, stderr := kpeAgent(t, bin, "install", "--config", config, "--user", "no-such-user-kpe"); code != 1 || !strings.Contains(stderr, "no-such-user-kpe") {
		t.Fatalf("install -user no-such-user-kpe = %d (%q), want 1 and the name", code, stderr)
	}
	code, out, stderr := kpeAgent(t, bin, "install", "--config", config)
	t.Cleanup(func() {
		if c, _, _ := kpeAgent(t, bin, "status"); c != exitStatusNotInstalled {
			kpeAgent(t, bin, "uninstall")
		}
	})
	if code != 0 {
		t.Fatalf("install = %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	t.Logf("install:\n%s", out)
	if !strings.Contains(out, "API token: "+token+" (created)") {
		t.Errorf("install output lacks the created token:\n%s", out)
	}

	def := definitionPath(platform)
	switch platform {
	case platformSysV:
		b, err := os.ReadFile(def)
		if err != nil {
			t.Fatal(err)
		}
		script := string(b)
		wantCmd := `cmd="` + bin + ` "run" "--config" "` + config + `""`
		for _, want := range []string{wantCmd, "# Short-Description: KPE terminal agent", "status)"} {
			if !strings.Contains(script, want) {
				t.Errorf("%s lacks %q:\n%s", def, want, script)
			}
		}
		if fi, _ := os.Stat(def); fi == nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s is not 0755", def)
		}
		for _, l := range []string{"/etc/rc2.d/S50kpe-agent", "/etc/rc3.d/S50kpe-agent", "/etc/rc0.d/K02kpe-agent", "/etc/rc6.d/K02kpe-agent"} {
			if target, err := os.Readlink(l); err != nil || target != def {
				t.Errorf("%s -> %q (%v), want %s", l, target, err, def)
			}
		}
	case platformSystemd:
		b, err := os.ReadFile(def)
		if err != nil {
			t.Fatal(err)
		}
		unit := string(b)
		for _, want := range []string{
			"\nExecStart=" + bin + ` "run" "--config" "` + config + `"` + "\n",
			"\nRestart=always\n", "\nRestartSec=5\n",
			"\nAfter=network-online.target pcscd.socket pcscd.service\n",
			"\nWants=network-online.target pcscd.socket\n",
		} {
			if !strings.Contains(unit, want) {
				t.Errorf("%s lacks %q:\n%s", def, want, unit)
			}
		}
		if out, err := exec.Command("systemctl", "is-enabled", "kpe-agent.service").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "enabled" {
			t.Errorf("systemctl is-enabled kpe-agent: %q (%v)", out, err)
		}
	default:
		t.Logf("%s: checking the status only", platform)
	}

	b, err := os.ReadFile(token)
	if err != nil {
		t.Fatalf("API token: %v", err)
	}
	if len(bytes.TrimSpace(b)) != 64 {
		t.Errorf("API token %d bytes, want 64 hex digits", len(bytes.TrimSpace(b)))
	}
	fi, err := os.Stat(token)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("API token mode %v, want 0640", fi.Mode().Perm())
	}
	if gid, ok, _ := secretsGroup(""); ok && int(fi.Sys().(*syscall.Stat_t).Gid) != gid {
		t.Errorf("API token gid %d, want %d (kpe-agent)", fi.Sys().(*syscall.Stat_t).Gid, gid)
	}

	if code, out, _ := kpeAgent(t, bin, "status"); code != exitStatusStopped || !strings.HasPrefix(out, "stopped") {
		t.Errorf("status after install = %d %q, want %d stopped", code, out, exitStatusStopped)
	}
	if code, _, stderr := kpeAgent(t, bin, "install", "--config", config); code != 1 || !strings.Contains(stderr, "already installed") {
		t.Errorf("second install = %d %q, want 1 already installed", code, stderr)
	}
	if code, _, stderr := kpeAgent(t, bin, "stop"); code != 0 {
		t.Errorf("stop of a stopped service = %d %q", code, stderr)
	}

	if code, out, stderr := kpeAgent(t, bin, "uninstall"); code != 0 {
		t.Fatalf("uninstall = %d\n%s%s", code, out, stderr)
	}
	if def != "" {
		if _, err := os.Lstat(def); !os.IsNotExist(err) {
			t.Errorf("%s still exists after uninstall (%v)", def, err)
		}
	}
	if links, _ := filepath.Glob("/etc/rc?.d/*kpe-agent"); len(links) > 0 {
		t.Errorf("rc links left after uninstall: %q", links)
	}
	if code, out, _ := kpeAgent(t, bin, "status"); code != exitStatusNotInstalled || !strings.HasPrefix(out, "not installed") {
		t.Errorf("status after uninstall = %d %q, want %d not installed", code, out, exitStatusNotInstalled)
	}
	if _, err := os.Stat(token); err != nil {
		t.Errorf("uninstall removed the API token: %v", err)
	}
	for _, cmd := range []string{"uninstall", "start", "stop"} {
		if code, _, stderr := kpeAgent(t, bin, cmd); code != 1 || !strings.Contains(stderr, "not installed") {
			t.Errorf("%s when not installed = %d %q, want 1 not installed", cmd, code, stderr)
		}
	}
}

// TestTokenPathsAgree: the packages' postinstall and the shipped
// configuration name the same token file as the agent's default.
func TestTokenPathsAgree(t *testing.T) {
	const pkg = "/etc/kpe-agent/secrets/api-token" // installer/linux/postinstall.sh
	if got := defaultAPITokenFile(); got != pkg {
		t.Errorf("api.token_file's default is %s, the packages create %s", got, pkg)
	}
	script, err := os.ReadFile("../../installer/linux/postinstall.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), "token="+pkg+"\n") {
		t.Errorf("installer/linux/postinstall.sh does not create %s", pkg)
	}
	abs, err := filepath.Abs("../../configs/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tokenFileFromConfig(abs); err != nil || got != pkg {
		t.Errorf("configs/agent.yaml: api.token_file %q (%v), want %s", got, err, pkg)
	}
}
