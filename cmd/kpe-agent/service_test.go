package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/kardianos/service"
)

func waitAgent(t *testing.T, p *program) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the agent goroutine did not return")
	}
}

func TestProgramStopCancelsAgent(t *testing.T) {
	cancelled := make(chan struct{})
	p := newProgram(runOptions{ConfigFile: "/x.yaml"}, func(ctx context.Context, o runOptions, _ func()) error {
		if o.ConfigFile != "/x.yaml" {
			t.Errorf("the agent got config %q", o.ConfigFile)
		}
		<-ctx.Done()
		close(cancelled)
		return nil
	}, 5*time.Second, os.Stderr)
	if err := p.Start(nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(nil); err == nil {
		t.Error("a second Start succeeded")
	}
	if err := p.Stop(nil); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-cancelled:
	default:
		t.Fatal("Stop returned before the agent saw the cancellation")
	}
}

func TestProgramStopReturnsAgentError(t *testing.T) {
	want := errors.New("outbox: closing: disk full")
	p := newProgram(runOptions{}, func(ctx context.Context, _ runOptions, _ func()) error {
		<-ctx.Done()
		return want
	}, 5*time.Second, os.Stderr)
	if err := p.Start(nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(nil); !errors.Is(err, want) {
		t.Fatalf("Stop = %v, want %v", err, want)
	}
}

func TestProgramStopTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	p := newProgram(runOptions{}, func(context.Context, runOptions, func()) error {
		<-release // ignores the cancellation
		return nil
	}, 100*time.Millisecond, os.Stderr)
	if err := p.Start(nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := p.Stop(nil)
	if !errors.Is(err, errStopTimeout) {
		t.Fatalf("Stop = %v, want errStopTimeout", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 3*time.Second {
		t.Errorf("Stop returned after %v, want about 100ms", d)
	}
}

func TestProgramAgentExitsByItself(t *testing.T) {
	t.Run("nil", func(t *testing.T) {
		p := newProgram(runOptions{}, func(context.Context, runOptions, func()) error { return nil }, time.Second, os.Stderr)
		if err := p.Start(nil); err != nil {
			t.Fatal(err)
		}
		waitAgent(t, p)
		if err := p.Stop(nil); !errors.Is(err, errAgentExited) {
			t.Fatalf("Stop = %v, want errAgentExited", err)
		}
	})
	t.Run("error", func(t *testing.T) {
		want := errors.New("config: terminal.id is required")
		p := newProgram(runOptions{}, func(context.Context, runOptions, func()) error { return want }, time.Second, os.Stderr)
		if err := p.Start(nil); err != nil {
			t.Fatal(err)
		}
		waitAgent(t, p)
		if err := p.Stop(nil); !errors.Is(err, want) {
			t.Fatalf("Stop = %v, want %v", err, want)
		}
	})
	t.Run("panic", func(t *testing.T) {
		p := newProgram(runOptions{}, func(context.Context, runOptions, func()) error { panic("boom") }, time.Second, os.Stderr)
		if err := p.Start(nil); err != nil {
			t.Fatal(err)
		}
		waitAgent(t, p)
		if err := p.Stop(nil); err == nil || !strings.Contains(err.Error(), "the agent panicked: boom") {
			t.Fatalf("Stop = %v, want the panic as an error", err)
		}
	})
}

func TestProgramStopWithoutStart(t *testing.T) {
	p := newProgram(runOptions{}, nil, time.Second, os.Stderr)
	if err := p.Stop(nil); err != nil {
		t.Fatalf("Stop before Start = %v", err)
	}
}

func TestServiceConfigLinux(t *testing.T) {
	c := newServiceConfig("linux", "/etc/kpe-agent/agent.yaml", "kpe-agent", "kpe-agent")
	if c.Name != "kpe-agent" || c.DisplayName != "KPE terminal agent" || c.Description == "" {
		t.Errorf("names: %q %q %q", c.Name, c.DisplayName, c.Description)
	}
	if got := strings.Join(c.Arguments, " "); got != "run --config /etc/kpe-agent/agent.yaml" {
		t.Errorf("Arguments = %q", got)
	}
	if c.UserName != "kpe-agent" || c.Option[optionGroup] != "kpe-agent" {
		t.Errorf("user %q group %v", c.UserName, c.Option[optionGroup])
	}
	if c.Option["Restart"] != "always" {
		t.Errorf("Restart = %v", c.Option["Restart"])
	}
	deps := strings.Join(c.Dependencies, "\n")
	for _, want := range []string{"After=network-online.target pcscd.socket pcscd.service", "Wants=network-online.target pcscd.socket"} {
		if !strings.Contains(deps, want) {
			t.Errorf("Dependencies lack %q:\n%s", want, deps)
		}
	}
	if s, ok := c.Option["SystemdScript"].(string); !ok || s != systemdUnitTemplate {
		t.Error("SystemdScript is not systemdUnitTemplate")
	}
}

func TestServiceConfigWindows(t *testing.T) {
	c := newServiceConfig("windows", `C:\ProgramData\kpe-agent\agent.yaml`, "", "")
	if got := strings.Join(c.Arguments, " "); got != `run --config C:\ProgramData\kpe-agent\agent.yaml` {
		t.Errorf("Arguments = %q", got)
	}
	if len(c.Dependencies) != 0 {
		t.Errorf("Windows dependencies (service names) = %q, want none", c.Dependencies)
	}
	// kardianos reads these with type assertions: a wrong type is
	// silently replaced by its default (no recovery action at all).
	if v, ok := c.Option["OnFailure"].(string); !ok || v != "restart" {
		t.Errorf("OnFailure = %#v", c.Option["OnFailure"])
	}
	if v, ok := c.Option["OnFailureDelayDuration"].(string); !ok {
		t.Errorf("OnFailureDelayDuration = %#v, want a string", c.Option["OnFailureDelayDuration"])
	} else if d, err := time.ParseDuration(v); err != nil || d != 5*time.Second {
		t.Errorf("OnFailureDelayDuration = %q (%v), want 5s", v, err)
	}
	if v, ok := c.Option["OnFailureResetPeriod"].(int); !ok || v != 86400 {
		t.Errorf("OnFailureResetPeriod = %#v, want int 86400", c.Option["OnFailureResetPeriod"])
	}
	if v, ok := c.Option["DelayedAutoStart"].(bool); !ok || v {
		t.Errorf("DelayedAutoStart = %#v, want false", c.Option["DelayedAutoStart"])
	}
	if v, ok := c.Option["StartType"].(string); !ok || v != "automatic" {
		t.Errorf("StartType = %#v", c.Option["StartType"])
	}
}

// TestKardianosOptionNames checks that the option names newServiceConfig
// and runServiceWith use are the ones kardianos/service reads (they are
// plain strings, and the Windows constants cannot be referenced on Linux).
func TestKardianosOptionNames(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/kardianos/service").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/kardianos/service: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	common, systemd, windows := read("service.go"), read("service_systemd_linux.go"), read("service_windows.go")
	for _, c := range []struct{ src, re string }{
		{common, `optionRestart\s*=\s*"Restart"`},
		{common, `optionSystemdScript\s*=\s*"SystemdScript"`},
		{common, `optionRunWait\s*=\s*"RunWait"`},
		{common, `optionReloadSignal\s*=\s*"ReloadSignal"`},
		{systemd, `s\.Option\.string\(optionReloadSignal, ""\)`},
		{systemd, `s\.Option\.string\(optionRestart, "always"\)`},
		{systemd, `\.Option\.funcSingle\(optionRunWait`},
		{windows, `StartType\s*=\s*"StartType"`},
		{windows, `OnFailure\s*=\s*"OnFailure"`},
		{windows, `OnFailureRestart\s*=\s*"restart"`},
		{windows, `OnFailureDelayDuration\s*=\s*"OnFailureDelayDuration"`},
		{windows, `OnFailureResetPeriod\s*=\s*"OnFailureResetPeriod"`},
		{windows, `ws\.Option\.int\(OnFailureResetPeriod`},
		{windows, `ws\.Option\.string\(OnFailureDelayDuration`},
		{windows, `ws\.Option\.bool\("DelayedAutoStart"`},
	} {
		if !regexp.MustCompile(c.re).MatchString(c.src) {
			t.Errorf("kardianos/service (%s) no longer matches %s", dir, c.re)
		}
	}
}

// renderSystemdUnit renders the unit as kardianos's systemd Install does
// (v1.2.4: the same data fields and template functions), without systemd.
func renderSystemdUnit(t *testing.T, c *service.Config, path string) string {
	t.Helper()
	funcs := template.FuncMap{
		"cmd":       func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` },
		"cmdEscape": func(s string) string { return strings.ReplaceAll(s, " ", `\x20`) },
	}
	tmpl, err := template.New("").Funcs(funcs).Parse(c.Option["SystemdScript"].(string))
	if err != nil {
		t.Fatal(err)
	}
	restart, _ := c.Option["Restart"].(string)
	reload, _ := c.Option["ReloadSignal"].(string)
	data := &struct {
		*service.Config
		Path                 string
		HasOutputFileSupport bool
		ReloadSignal         string
		PIDFile              string
		LimitNOFILE          int
		Restart              string
		SuccessExitStatus    string
		LogOutput            bool
		LogDirectory         string
	}{c, path, true, reload, "", -1, restart, "", false, "/var/log"}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestSystemdUnit renders the unit kpe-agent install writes under systemd
// and checks the restart policy, the pcscd ordering and the hardening; the
// packages' unit (installer/linux/kpe-agent.service) must be the same text
// for the packages' paths and account.
func TestSystemdUnit(t *testing.T) {
	unit := renderSystemdUnit(t, newServiceConfig("linux", "/etc/kpe-agent/agent.yaml", "kpe-agent", "kpe-agent"), "/usr/bin/kpe-agent")
	for _, want := range []string{
		"\nAfter=network-online.target pcscd.socket pcscd.service\n",
		"\nWants=network-online.target pcscd.socket\n",
		"\nStartLimitIntervalSec=0\n",
		"\nExecStart=/usr/bin/kpe-agent \"run\" \"--config\" \"/etc/kpe-agent/agent.yaml\"\n",
		"\nUser=kpe-agent\nGroup=kpe-agent\n",
		"\nRestart=always\n",
		// the agent sends READY=1 when its local API listens (internal/sdnotify)
		"\nType=notify\nNotifyAccess=main\n",
		"\nRestartSec=5\n",
		"\nExecReload=/bin/kill -HUP $MAINPID\n",
		"\nNoNewPrivileges=yes\n",
		"\nProtectSystem=strict\n",
		"\nReadWritePaths=-/var/lib/kpe-agent -/var/log/kpe-agent\n",
		"\nStateDirectory=kpe-agent\n",
		// the hardening of issue 16 (docs/install.md): no capability, and
		// the system call filter keeps the read-only adjtimex
		"\nCapabilityBoundingSet=\n",
		"\nSystemCallFilter=@system-service\nSystemCallFilter=~@privileged @resources\nSystemCallFilter=adjtimex\nSystemCallErrorNumber=EPERM\n",
		"\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n",
		"\nWantedBy=multi-user.target\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q:\n%s", want, unit)
		}
	}
	if strings.Contains(unit, "ProtectClock=") {
		t.Errorf("the unit sets ProtectClock=, which denies the agent's adjtimex (clock status):\n%s", unit)
	}
	// the fingerprint sensor's capture program runs in the agent's
	// sandbox and opens its USB or hidraw node
	if strings.Contains(unit, "PrivateDevices=yes") || !strings.Contains(unit, "DeviceAllow=char-usb_device rw") ||
		!strings.Contains(unit, "DeviceAllow=char-hidraw rw") {
		t.Errorf("the unit hides the fingerprint sensor's device nodes from the capture program:\n%s", unit)
	}
	if strings.Contains(unit, "\n\n\n") || strings.Contains(unit, "{{") {
		t.Errorf("the unit has stray blank lines or template text:\n%s", unit)
	}
	pkg, err := os.ReadFile("../../installer/linux/kpe-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	if string(pkg) != unit {
		t.Errorf("installer/linux/kpe-agent.service differs from what kpe-agent install writes; want:\n%s", unit)
	}

	// Run as root: no User= or Group= line at all.
	root := renderSystemdUnit(t, newServiceConfig("linux", "/srv/a b/agent.yaml", "", ""), "/opt/kpe agent/kpe-agent")
	if strings.Contains(root, "User=") || strings.Contains(root, "Group=") {
		t.Errorf("a root unit names an account:\n%s", root)
	}
	if !strings.Contains(root, `ExecStart=/opt/kpe\x20agent/kpe-agent "run" "--config" "/srv/a b/agent.yaml"`) {
		t.Errorf("ExecStart with spaces:\n%s", root)
	}
}

func TestTokenFileFromConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got, err := tokenFileFromConfig(write("none.yaml", "terminal:\n  id: T1\n")); err != nil || got != defaultAPITokenFile() {
		t.Errorf("without api.token_file: %q, %v; want %q", got, err, defaultAPITokenFile())
	}
	if got, err := tokenFileFromConfig(write("empty.yaml", "")); err != nil || got != defaultAPITokenFile() {
		t.Errorf("empty file: %q, %v", got, err)
	}
	abs := filepath.Join(dir, "s", "tok")
	if got, err := tokenFileFromConfig(write("set.yaml", "api:\n  listen: 127.0.0.1:7531\n  token_file: "+abs+"\n")); err != nil || got != abs {
		t.Errorf("api.token_file set: %q, %v; want %q", got, err, abs)
	}
	if got, err := tokenFileFromConfig(write("rel.yaml", "api:\n  token_file: secrets/tok\n")); err != nil || got != filepath.Join(dir, "secrets", "tok") {
		t.Errorf("relative api.token_file: %q, %v; want it under the config file's directory", got, err)
	}
	if _, err := tokenFileFromConfig(write("bad.yaml", "api: [\n")); err == nil {
		t.Error("bad YAML accepted")
	}
	if _, err := tokenFileFromConfig(write("scalar.yaml", "api: 3\n")); err == nil {
		t.Error("api: 3 accepted")
	}
	if _, err := tokenFileFromConfig(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestEnsureAPIToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "secrets", "api-token")
	created, err := ensureAPIToken(path, "")
	if err != nil || !created {
		t.Fatalf("ensureAPIToken = %v, %v", created, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(b) {
		t.Errorf("token %q: want 64 hex digits and a newline", b)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("token mode %v, want 0640", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o750 {
		t.Errorf("secrets directory mode %v, want 0750", di.Mode().Perm())
	}
	created, err = ensureAPIToken(path, "")
	if err != nil || created {
		t.Fatalf("second ensureAPIToken = %v, %v; want the file left alone", created, err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, b) {
		t.Error("the existing token was replaced")
	}
	other, err := newAPIToken()
	if err != nil || other+"\n" == string(b) {
		t.Errorf("two tokens are equal (%v)", err)
	}
}

// Usage errors exit 2 and say so; help and version exit 0.
func TestCommandLine(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string // in stdout+stderr
	}{
		{[]string{"status", "extra"}, 2, `unknown command "extra" for "kpe-agent status"`},
		{[]string{"start", "-x"}, 2, "unknown shorthand flag: 'x'"},
		{[]string{"install", "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"install", "--config", "a", "b"}, 2, `unknown command "b"`},
		{[]string{"install", "-config", "a"}, 2, "-config: long flags take two dashes: --config"},
		{[]string{"check-config", "--set", "nokey"}, 2, `want key=value, got "nokey"`},
		{[]string{"reload"}, 2, `unknown command "reload" for "kpe-agent"`},
		{nil, 2, "Usage:"},
		{[]string{"-h"}, 0, "Usage:"},
		{[]string{"help", "run"}, 0, "--set key=value"},
		{[]string{"status", "--help"}, 0, "4 not installed"},
		{[]string{"completion", "bash"}, 0, "__start_kpe-agent"},
		{[]string{"version"}, 0, "kpe-agent "},
	} {
		var out, errb bytes.Buffer
		if got := run(c.args, &out, &errb); got != c.code || !strings.Contains(out.String()+errb.String(), c.want) {
			t.Errorf("kpe-agent %q = %d, want %d and %q\nstdout %q\nstderr %q", c.args, got, c.code, c.want, out.String(), errb.String())
		}
	}
}

// An installed service may start the agent with the single-dash flags of
// older versions: run accepts them, with a warning.
func TestRunAcceptsLegacyFlags(t *testing.T) {
	var errb bytes.Buffer
	root := rootCommand(io.Discard, &errb)
	args := legacyRunFlags(root, []string{"run", "-config", "/etc/kpe-agent/agent.yaml", "-set=log.level=debug", "-c", "x", "--", "-config"}, &errb)
	want := []string{"run", "--config", "/etc/kpe-agent/agent.yaml", "--set=log.level=debug", "-c", "x", "--", "-config"}
	if strings.Join(args, " ") != strings.Join(want, " ") {
		t.Errorf("args %q, want %q", args, want)
	}
	if !strings.Contains(errb.String(), "warning: -config -set: single-dash flags are the old syntax; use --config") {
		t.Errorf("warning %q", errb.String())
	}
	errb.Reset()
	if args := legacyRunFlags(root, []string{"check-config", "-config", "x"}, &errb); args[1] != "-config" || errb.Len() > 0 {
		t.Errorf("check-config rewritten: %q %q", args, errb.String())
	}

	// The whole path: an old unit's command line reaches the agent with
	// the configuration (here one that fails to load: exit 78).
	dir := t.TempDir()
	bad := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(bad, []byte("terminal: {id: x}\nlog: {levle: debug}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	errb.Reset()
	code := run([]string{"run", "-config", bad}, &out, &errb)
	if code != exitConfig || !strings.Contains(errb.String(), "log.levle") || !strings.Contains(errb.String(), "use --config") {
		t.Errorf("run -config %s = %d\nstderr %s", bad, code, errb.String())
	}
}

func TestInstallRefusesMissingConfig(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"install", "--config", filepath.Join(t.TempDir(), "nope.yaml")}, &out, &errb)
	if code != 1 {
		t.Fatalf("install with a missing config = %d, want 1", code)
	}
	want := "no such file"
	if os.Geteuid() != 0 {
		want = "needs root"
	}
	if !strings.Contains(errb.String(), want) {
		t.Errorf("stderr %q lacks %q", errb.String(), want)
	}
}
