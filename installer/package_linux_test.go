//go:build linux

// Package installer_test builds the packages with make package and
// installs the .deb on this machine: files, owners and modes, the account,
// the conffile kept on upgrade, the token, when postinstall starts the
// service (under a faked running systemd), then removal and purge. It also
// reads the .rpm's header and installs and erases it in a scratch root
// (Debian's rpm tool, which make deps installs), and checks the text
// of the Windows install.ps1.
package installer_test

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"kpe-agent/internal/systest"
)

const pkg = "kpe-agent"

// apiGroup is the group of the API token's readers; apiReader the
// frontline account the test puts in it.
const (
	apiGroup  = "kpe-agent-api"
	apiReader = "kpe-test-frontline"
)

func need(t *testing.T, ok bool, what string) { t.Helper(); systest.Need(t, ok, what) }

// needSystemdAnalyze: systemd-analyze comes with the systemd package, which
// make deps installs; without it the check named by unchecked is not run.
func needSystemdAnalyze(t *testing.T, unchecked string) {
	t.Helper()
	_, err := exec.LookPath("systemd-analyze")
	need(t, err == nil, "systemd-analyze is not installed (package systemd; make deps installs it): "+unchecked)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// dpkgStatus is the package's dpkg status ("" when dpkg knows nothing).
func dpkgStatus() string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

type fileWant struct {
	path        string
	mode        os.FileMode
	owner, grp  string
	dir         bool
	contains    []string
	sameContent string // a source file the installed one must equal
}

func checkFile(t *testing.T, w fileWant) {
	t.Helper()
	fi, err := os.Lstat(w.path)
	if err != nil {
		t.Errorf("%s: %v", w.path, err)
		return
	}
	if fi.IsDir() != w.dir {
		t.Errorf("%s: directory %v, want %v", w.path, fi.IsDir(), w.dir)
	}
	if fi.Mode().Perm() != w.mode {
		t.Errorf("%s: mode %04o, want %04o", w.path, fi.Mode().Perm(), w.mode)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if u, err := user.LookupId(itoa(st.Uid)); err != nil || u.Username != w.owner {
		t.Errorf("%s: owner uid %d (%v), want %s", w.path, st.Uid, err, w.owner)
	}
	if g, err := user.LookupGroupId(itoa(st.Gid)); err != nil || g.Name != w.grp {
		t.Errorf("%s: group gid %d (%v), want %s", w.path, st.Gid, err, w.grp)
	}
	if len(w.contains) == 0 && w.sameContent == "" {
		return
	}
	b, err := os.ReadFile(w.path)
	if err != nil {
		t.Error(err)
		return
	}
	for _, s := range w.contains {
		if !strings.Contains(string(b), s) {
			t.Errorf("%s lacks %q", w.path, s)
		}
	}
	if w.sameContent != "" {
		src, err := os.ReadFile(w.sameContent)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(src, b) {
			t.Errorf("%s differs from %s", w.path, w.sameContent)
		}
	}
}

func itoa(n uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// buildPackages runs make package into a temporary directory and returns
// the .deb, the .rpm and the zip.
func buildPackages(t *testing.T, root string) (deb, rpm, zipFile string) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(root, "configs", "agent.yaml")
	if _, err := os.Stat(conf); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("configs/agent.yaml: %v", err)
		}
		conf = filepath.Join(dir, "agent.yaml")
		t.Logf("configs/agent.yaml is missing; packaging a placeholder configuration")
		if err := os.WriteFile(conf, []byte("# placeholder for the test\nterminal:\n  id: T-TEST\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("make", "--no-print-directory", "package")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PKG_DIR="+dir, "KPE_AGENT_YAML="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	one := func(pattern string) string {
		m, _ := filepath.Glob(filepath.Join(dir, pattern))
		if len(m) != 1 {
			t.Fatalf("make package: %d files match %s, want 1", len(m), pattern)
		}
		return m[0]
	}
	return one("kpe-agent_*_amd64.deb"), one("kpe-agent-*.x86_64.rpm"), one("kpe-agent-windows-amd64.zip")
}

func TestPackages(t *testing.T) {
	need(t, os.Geteuid() == 0, "installing the kpe-agent .deb needs root")
	_, dpkgErr := exec.LookPath("dpkg")
	need(t, dpkgErr == nil, "installing the kpe-agent .deb needs dpkg (a Debian system)")
	systest.LockService(t)
	if s := dpkgStatus(); s != "" && !strings.HasSuffix(s, "not-installed") {
		t.Fatalf("the kpe-agent package is on this machine (%s); the test would remove it: dpkg -P kpe-agent first", s)
	}
	if _, err := user.Lookup(pkg); err == nil {
		t.Fatal("the account kpe-agent exists on this machine; the test's purge would delete it: userdel kpe-agent first")
	}
	for _, g := range []string{pkg, apiGroup} {
		if _, err := user.LookupGroup(g); err == nil {
			t.Fatalf("the group %s exists on this machine; the test's purge would delete it: groupdel %s first", g, g)
		}
	}
	if _, err := user.Lookup(apiReader); err == nil {
		t.Fatalf("the account %s exists on this machine; the test creates and deletes it: userdel %s first", apiReader, apiReader)
	}
	if _, err := os.Stat("/etc/kpe-agent"); err == nil {
		t.Fatal("/etc/kpe-agent exists on this machine; the test's purge would delete it: move it away first")
	}
	if _, err := os.Stat("/etc/default/kpe-agent"); err == nil {
		t.Fatal("/etc/default/kpe-agent exists on this machine; the test writes and deletes it: move it away first")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	deb, rpm, zipFile := buildPackages(t, root)

	t.Run("zip", func(t *testing.T) { checkZip(t, zipFile) })
	t.Run("rpm", func(t *testing.T) { checkRPM(t, rpm) })
	t.Run("deb", func(t *testing.T) { checkDeb(t, root, deb) })
}

// checkRPM reads the .rpm's header with Debian's rpm tool (make deps
// installs it; without it the check is skipped loudly, and fails under CI).
func checkRPM(t *testing.T, rpm string) {
	if fi, err := os.Stat(rpm); err != nil || fi.Size() < 1<<20 {
		t.Fatalf("%s: %v (size %v)", rpm, err, fi)
	}
	_, err := exec.LookPath("rpm")
	systest.Need(t, err == nil, "rpm is not installed (apt-get install rpm): the .rpm's header is not inspected")
	if req := run(t, "rpm", "-qpR", rpm); !strings.Contains(req, "pcsc-lite-libs\n") || !strings.Contains(req, "pcsc-lite\n") {
		t.Errorf("rpm requires:\n%s", req)
	}
	if lic := run(t, "rpm", "-qp", "--qf", "%{LICENSE}", rpm); lic != "Apache-2.0" {
		t.Errorf("rpm licence %q, want Apache-2.0", lic)
	}
	if conf := run(t, "rpm", "-qpc", rpm); strings.TrimSpace(conf) != "/etc/kpe-agent/agent.yaml" {
		t.Errorf("rpm config files: %q", conf)
	}
	list := run(t, "rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]", rpm)
	for _, want := range []string{
		"-rwxr-xr-x root:root /usr/bin/kpe-agent\n",
		"-rwxr-xr-x root:root /usr/bin/kpectl\n",
		"-rw-r--r-- root:root /usr/share/man/man1/kpectl.1.gz\n",
		"-rw-r--r-- root:root /usr/share/man/man1/kpe-agent.1.gz\n",
		"-rw-r--r-- root:root /usr/share/man/man1/kpectl-read.1.gz\n",
		"-rw-r--r-- root:root /usr/lib/systemd/system/kpe-agent.service\n",
		"drwx--x--- root:kpe-agent-api /etc/kpe-agent/secrets\n",
		"drwxr-x--- kpe-agent:kpe-agent /var/lib/kpe-agent\n",
		"drwxr-x--- kpe-agent:kpe-agent /var/log/kpe-agent\n",
		"-rw-r--r-- root:root /usr/share/licenses/kpe-agent/LICENSE\n",
		"-rw-r--r-- root:root /usr/lib/systemd/user/kpe-kiosk.service\n",
		"-rwxr-xr-x root:root /usr/libexec/kpe-agent/kpe-kiosk-browser\n",
		"-rw-r--r-- root:root /usr/share/doc/kpe-agent/kiosk/kpe-kiosk.json\n",
		"-rw-r--r-- root:root /usr/share/doc/kpe-agent/kiosk-id.md\n",
	} {
		if !strings.Contains(list, want) {
			t.Errorf("the .rpm lacks %q; it holds:\n%s", want, list)
		}
	}
	if scripts := run(t, "rpm", "-qp", "--scripts", rpm); strings.Count(scripts, "scriptlet (using /bin/sh)") != 4 {
		t.Errorf("the .rpm's scripts:\n%s", scripts)
	}
	checkRPMErase(t, rpm)
}

// checkRPMErase installs the .rpm into a scratch root (no scripts, no
// dependencies) and erases it, twice: rpm deletes an unchanged
// agent.yaml (config|noreplace) and renames a changed one to
// agent.yaml.rpmsave, as docs/install.md says.
func checkRPMErase(t *testing.T, rpm string) {
	root := t.TempDir()
	rpmIn := func(args ...string) string {
		t.Helper()
		return run(t, "rpm", append([]string{"--root", root, "--dbpath", "/var/lib/rpm"}, args...)...)
	}
	rpmIn("--initdb")
	conf := filepath.Join(root, "etc/kpe-agent/agent.yaml")
	for _, changed := range []bool{false, true} {
		rpmIn("-i", "--nodeps", "--noscripts", "--nosignature", rpm)
		if changed {
			f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("# local change\n")
			f.Close()
		}
		rpmIn("-e", "--nodeps", "--noscripts", pkg)
		_, errConf := os.Stat(conf)
		save, errSave := os.ReadFile(conf + ".rpmsave")
		switch {
		case !os.IsNotExist(errConf):
			t.Errorf("rpm -e (agent.yaml changed: %v): agent.yaml is still there (%v)", changed, errConf)
		case changed && (errSave != nil || !strings.HasSuffix(string(save), "# local change\n")):
			t.Errorf("rpm -e of a changed agent.yaml: agent.yaml.rpmsave %v", errSave)
		case !changed && !os.IsNotExist(errSave):
			t.Errorf("rpm -e of an unchanged agent.yaml: agent.yaml.rpmsave exists (%v)", errSave)
		}
	}
}

func checkZip(t *testing.T, zipFile string) {
	zr, err := zip.OpenReader(zipFile)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		names = append(names, f.Name)
		files[f.Name] = f
	}
	want := []string{"kpe-agent/kpe-agent.exe", "kpe-agent/kpectl.exe", "kpe-agent/install.ps1",
		"kpe-agent/uninstall.ps1", "kpe-agent/README-windows.txt", "kpe-agent/kpe-kiosk-edge.reg",
		"kpe-agent/LICENSE", "kpe-agent/agent.yaml"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("zip holds %q, want %q", names, want)
	}
	read := func(name string) []byte {
		f := files[name]
		if f == nil {
			t.Fatalf("zip lacks %s", name)
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if exe := read("kpe-agent/kpe-agent.exe"); !bytes.HasPrefix(exe, []byte("MZ")) {
		t.Error("kpe-agent.exe is not a Windows executable")
	}
	conf := string(read("kpe-agent/agent.yaml"))
	if regexp.MustCompile(`(?m)^[^#]*/(etc|var/lib|var/log)/kpe-agent`).MatchString(conf) {
		t.Errorf("the Windows agent.yaml still has Linux paths:\n%s", conf)
	}
	if strings.Contains(conf, "token_file:") && !strings.Contains(conf, `token_file: C:\ProgramData\kpe-agent\secrets\api-token`) {
		t.Errorf("the Windows agent.yaml's token_file is not under ProgramData:\n%s", conf)
	}
	if strings.Contains(conf, "\nlog:") && !strings.Contains(conf, `  file: C:\ProgramData\kpe-agent\logs\agent.log`) {
		t.Errorf("the Windows agent.yaml does not set log.file (a service has no standard error):\n%s", conf)
	}
	if !strings.Contains(conf, "\n  id: \"\"\n") || !strings.Contains(conf, "\n  site: \"\"\n") {
		t.Errorf("the Windows agent.yaml names a terminal (terminal.id and terminal.site must be empty until set):\n%s", conf)
	}
	checkInstallPS1(t, string(read("kpe-agent/install.ps1")))
	// The kiosk's Edge policies: byte for byte (CRLF kept), and not
	// applied by install.ps1.
	if reg, err := os.ReadFile(kioskEdgeSrc); err != nil || !bytes.Equal(read("kpe-agent/kpe-kiosk-edge.reg"), reg) {
		t.Errorf("kpe-kiosk-edge.reg in the zip differs from %s (%v)", kioskEdgeSrc, err)
	}
}

// checkInstallPS1 checks the text of install.ps1 (PowerShell does not run
// here): the service's recovery actions, the ACLs by SID, and no start
// with a configuration the agent refuses.
func checkInstallPS1(t *testing.T, ps string) {
	for _, s := range []string{"'install', '--config', $config", "'failure', $name, 'reset=', '86400', 'actions=', 'restart/5000/restart/5000/restart/30000'",
		"'failureflag', $name, '1'", "'SCardSvr'",
		// The data folder: SYSTEM and Administrators only, owned by
		// Administrators, its files reset to what they inherit.
		"@($DataDir, '/inheritance:r', '/grant:r', '*S-1-5-18:(OI)(CI)F', '*S-1-5-32-544:(OI)(CI)F'",
		"@($DataDir, '/setowner', '*S-1-5-32-544', '/T'",
		"@((Join-Path $DataDir '*'), '/reset', '/T'",
		"@($DataDir, '/remove', \"*$sid\"",
		// Users read the configuration, and nothing else.
		"@($config, '/grant:r', '*S-1-5-32-545:R'",
		// Secrets: SYSTEM and Administrators only.
		"@($secrets, '/inheritance:r', '/grant:r', '*S-1-5-18:(OI)(CI)F', '*S-1-5-32-544:(OI)(CI)F')",
		"& $exe check-config --config $config 2>&1",
	} {
		if !strings.Contains(ps, s) {
			t.Errorf("install.ps1 lacks %q", s)
		}
	}
	code := regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(ps, "")
	for _, s := range []string{"kpe-kiosk-edge", `Policies\Microsoft\Edge`, "reg import", "regedit"} {
		if strings.Contains(code, s) {
			t.Errorf("install.ps1 mentions %q: the kiosk's Edge policies are an example it must not apply", s)
		}
	}
	if n := strings.Count(code, "S-1-5-32-545"); n != 1 {
		t.Errorf("install.ps1 grants Users (S-1-5-32-545) %d times, want once (read on agent.yaml)", n)
	}
	for _, name := range []string{"Users", "Administrators", "SYSTEM", "Everyone"} {
		if strings.Contains(code, name+":") {
			t.Errorf("install.ps1 names the account %s (localised on Windows): use its SID", name)
		}
	}
	// The order: the data folder is restricted before anything is written
	// in it; the agent is started only after check-config.
	before := func(a, b string) {
		t.Helper()
		i, j := strings.Index(code, a), strings.Index(code, b)
		if i < 0 || j < 0 || i > j {
			t.Errorf("install.ps1: %q (at %d) must come before %q (at %d)", a, i, b, j)
		}
	}
	restrict := "@($DataDir, '/inheritance:r'"
	before(restrict, "[IO.File]::WriteAllText($config")
	before(restrict, "[IO.File]::WriteAllText($token")
	before(restrict, "New-Item -ItemType Directory -Force -Path (Join-Path $DataDir 'logs')")
	before(restrict, "New-Item -ItemType Directory -Force -Path $secrets")
	before("[IO.File]::WriteAllText($config", "'*S-1-5-32-545:R'")
	before("& $exe check-config", "Start-Service -Name $name")
	if strings.Count(code, "Start-Service -Name $name") != 1 {
		t.Error("install.ps1 starts kpe-agent in more than one place")
	}
}

func checkDeb(t *testing.T, root, deb string) {
	t.Cleanup(func() {
		if s := dpkgStatus(); s != "" && !strings.HasSuffix(s, "not-installed") {
			t.Logf("cleanup: purging kpe-agent (%s)", s)
			exec.Command("dpkg", "-P", pkg).Run()
		}
	})
	t.Logf("dpkg -i %s:\n%s", filepath.Base(deb), run(t, "dpkg", append(manInclude(t), "-i", deb)...))
	if s := dpkgStatus(); s != "install ok installed" {
		t.Fatalf("dpkg status %q", s)
	}

	// The account.
	u, err := user.Lookup(pkg)
	if err != nil {
		t.Fatalf("account kpe-agent: %v", err)
	}
	g, err := user.LookupGroup(pkg)
	if err != nil {
		t.Fatalf("group kpe-agent: %v", err)
	}
	if u.Gid != g.Gid || u.HomeDir != "/var/lib/kpe-agent" {
		t.Errorf("account kpe-agent: gid %s (group %s), home %s", u.Gid, g.Gid, u.HomeDir)
	}
	if passwd := run(t, "getent", "passwd", pkg); !strings.Contains(passwd, "nologin") {
		t.Errorf("account kpe-agent has a login shell: %s", passwd)
	}

	// Files, owners, modes.
	for _, w := range []fileWant{
		{path: "/usr/bin/kpe-agent", mode: 0o755, owner: "root", grp: "root"},
		{path: "/usr/bin/kpectl", mode: 0o755, owner: "root", grp: "root"},
		{path: "/lib/systemd/system/kpe-agent.service", mode: 0o644, owner: "root", grp: "root",
			sameContent: filepath.Join(root, "installer/linux/kpe-agent.service"),
			contains: []string{"\nRestart=always\n", "\nRestartSec=5\n", "\nUser=kpe-agent\n", "\nGroup=kpe-agent\n",
				"\nAfter=network-online.target pcscd.socket pcscd.service\n", "\nWants=network-online.target pcscd.socket\n",
				"\nExecStart=/usr/bin/kpe-agent \"run\" \"--config\" \"/etc/kpe-agent/agent.yaml\"\n"}},
		{path: "/etc/kpe-agent", mode: 0o755, owner: "root", grp: "root", dir: true},
		{path: "/etc/kpe-agent/agent.yaml", mode: 0o644, owner: "root", grp: "root"},
		{path: "/etc/kpe-agent/secrets", mode: 0o710, owner: "root", grp: apiGroup, dir: true},
		{path: "/etc/kpe-agent/secrets/api-token", mode: 0o640, owner: "root", grp: apiGroup},
		{path: "/var/lib/kpe-agent", mode: 0o750, owner: pkg, grp: pkg, dir: true},
		{path: "/var/log/kpe-agent", mode: 0o750, owner: pkg, grp: pkg, dir: true},
		{path: "/usr/share/polkit-1/rules.d/60-kpe-agent-pcscd.rules", mode: 0o644, owner: "root", grp: "root",
			contains: []string{`"org.debian.pcsc-lite.access_pcsc"`, `"org.debian.pcsc-lite.access_card"`, `subject.user == "kpe-agent"`}},
		{path: "/usr/share/doc/kpe-agent/install.md", mode: 0o644, owner: "root", grp: "root"},
		{path: "/usr/share/doc/kpe-agent/copyright", mode: 0o644, owner: "root", grp: "root",
			sameContent: filepath.Join(root, "LICENSE")},
		{path: "/usr/share/man/man1/kpectl.1.gz", mode: 0o644, owner: "root", grp: "root"},
		{path: "/usr/share/man/man1/kpe-agent.1.gz", mode: 0o644, owner: "root", grp: "root"},
		{path: "/usr/share/man/man1/kpectl-queue-salvage.1.gz", mode: 0o644, owner: "root", grp: "root"},
		// The kiosk (docs/kiosk.md, "Running as a kiosk").
		{path: "/usr/lib/systemd/user/kpe-kiosk.service", mode: 0o644, owner: "root", grp: "root",
			sameContent: filepath.Join(root, "installer", kioskUnitSrc)},
		{path: "/usr/libexec/kpe-agent", mode: 0o755, owner: "root", grp: "root", dir: true},
		{path: kioskHelperPath, mode: 0o755, owner: "root", grp: "root",
			sameContent: filepath.Join(root, "installer", kioskHelperSrc)},
		{path: "/usr/share/doc/kpe-agent/kiosk/kpe-kiosk.json", mode: 0o644, owner: "root", grp: "root",
			sameContent: filepath.Join(root, "installer", kioskPolicySrc)},
		{path: "/usr/share/doc/kpe-agent/kiosk.md", mode: 0o644, owner: "root", grp: "root",
			sameContent: filepath.Join(root, "docs/kiosk.md")},
		{path: "/usr/share/doc/kpe-agent/kiosk-id.md", mode: 0o644, owner: "root", grp: "root",
			sameContent: filepath.Join(root, "docs/kiosk-id.md")},
		{path: "/usr/share/doc/kpe-agent/loket-id.md", mode: 0o644, owner: "root", grp: "root",
			sameContent: filepath.Join(root, "docs/loket-id.md")},
	} {
		checkFile(t, w)
	}
	// The kiosk is enabled for no one and locks no browser down: the
	// package puts nothing where Chromium, Chrome or systemd's global
	// user units are configured.
	for _, f := range strings.Split(run(t, "dpkg", "-L", pkg), "\n") {
		for _, dir := range []string{"/etc/chromium", "/etc/opt/chrome", "/etc/systemd/user", "/etc/xdg/systemd"} {
			if f == dir || strings.HasPrefix(f, dir+"/") {
				t.Errorf("the package installs %s", f)
			}
		}
	}
	if _, err := os.Lstat("/etc/systemd/user/graphical-session.target.wants/kpe-kiosk.service"); !os.IsNotExist(err) {
		t.Errorf("installing the package enabled kpe-kiosk for every account (%v)", err)
	}

	// The token: 64 hex digits, readable by the account.
	const token = "/etc/kpe-agent/secrets/api-token"
	tok, err := os.ReadFile(token)
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(tok) {
		t.Errorf("API token %q (%v): want 64 hex digits and a newline", tok, err)
	}
	if out := run(t, "su", "-s", "/bin/sh", pkg, "-c", "cat "+token); out != string(tok) {
		t.Errorf("the kpe-agent account reads %q from the token", out)
	}
	// a frontline application's account, given the token as
	// docs/local-api.md says
	run(t, "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--groups", apiGroup, apiReader)
	t.Cleanup(func() { exec.Command("userdel", apiReader).Run() })
	t.Run("secrets-split", func(t *testing.T) { checkSecretsSplit(t, token, tok) })

	// dpkg's view: the conffile and the dependencies.
	if c := run(t, "dpkg-query", "-W", "-f=${Conffiles}", pkg); !strings.Contains(c, "/etc/kpe-agent/agent.yaml ") {
		t.Errorf("conffiles %q lack /etc/kpe-agent/agent.yaml", c)
	}
	if d := run(t, "dpkg-query", "-W", "-f=${Depends}", pkg); !strings.Contains(d, "libpcsclite1") || !strings.Contains(d, "pcscd") {
		t.Errorf("Depends %q lack libpcsclite1 and pcscd", d)
	}

	// The binaries run and find libpcsclite, and say which build they
	// are: the package's version and the commit it was built from.
	version := strings.TrimSpace(run(t, "dpkg-query", "-W", "-f=${Version}", pkg))
	commit := strings.TrimSpace(run(t, "git", "-C", root, "rev-parse", "HEAD"))
	for _, bin := range []string{"kpe-agent", "kpectl"} {
		out := run(t, "/usr/bin/"+bin, "version")
		if !strings.HasPrefix(out, bin+" "+version+"\n") || !strings.Contains(out, "\n  commit:       "+commit) {
			t.Errorf("%s version = %q, want %s %s and commit %s", bin, out, bin, version, commit)
		}
	}
	for _, bin := range []string{"/usr/bin/kpe-agent", "/usr/bin/kpectl"} {
		out := run(t, "ldd", bin)
		if strings.Contains(out, "not found") {
			t.Errorf("ldd %s: a library is missing:\n%s", bin, out)
		}
		if bin == "/usr/bin/kpectl" && !strings.Contains(out, "libpcsclite.so.1 => /") {
			t.Errorf("ldd %s: not linked with libpcsclite (built without cgo?):\n%s", bin, out)
		}
	}
	// The package owns the service: kpe-agent install refuses.
	if out, err := exec.Command("/usr/bin/kpe-agent", "install").CombinedOutput(); err == nil || !strings.Contains(string(out), "kpe-agent package") {
		t.Errorf("kpe-agent install with the package installed: %v\n%s", err, out)
	}
	t.Run("man", func(t *testing.T) { checkMan(t) })
	t.Run("systemd-analyze", func(t *testing.T) { checkUnitsVerify(t) })
	t.Run("systemd-analyze-security", func(t *testing.T) { checkUnitSecurity(t, "/lib/systemd/system/kpe-agent.service") })

	t.Run("service", func(t *testing.T) { checkServiceStart(t, deb) })

	// Upgrade path: a local change to the conffile survives installing
	// the package again; the token is kept.
	f, err := os.OpenFile("/etc/kpe-agent/agent.yaml", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	const local = "# local change by the package test\n"
	if _, err := f.WriteString(local); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// An installation of an older version: the token 0640 root:kpe-agent,
	// a frontline account in the kpe-agent group to read it. The upgrade
	// moves the token to kpe-agent-api and the account with it.
	run(t, "chgrp", pkg, token)
	run(t, "chmod", "0750", "/etc/kpe-agent/secrets")
	run(t, "chgrp", pkg, "/etc/kpe-agent/secrets")
	run(t, "gpasswd", "-d", apiReader, apiGroup)
	run(t, "gpasswd", "-a", apiReader, pkg)
	out := run(t, "dpkg", "-i", deb)
	if !strings.Contains(out, "moved "+apiReader+" from the group kpe-agent to kpe-agent-api") {
		t.Errorf("the upgrade does not say it moved %s to %s:\n%s", apiReader, apiGroup, out)
	}
	checkFile(t, fileWant{path: token, mode: 0o640, owner: "root", grp: apiGroup})
	checkFile(t, fileWant{path: "/etc/kpe-agent/secrets", mode: 0o710, owner: "root", grp: apiGroup, dir: true})
	if m := groupMembers(t, pkg); len(m) != 0 {
		t.Errorf("after the upgrade the group kpe-agent has members %v, want none", m)
	}
	if m := groupMembers(t, apiGroup); !slices.Contains(m, apiReader) || !slices.Contains(m, pkg) {
		t.Errorf("after the upgrade the group kpe-agent-api has members %v, want %s and %s", m, pkg, apiReader)
	}
	if b, _ := os.ReadFile("/etc/kpe-agent/agent.yaml"); !strings.HasSuffix(string(b), local) {
		t.Error("installing the package again replaced the modified /etc/kpe-agent/agent.yaml")
	}
	if b, _ := os.ReadFile(token); !bytes.Equal(b, tok) {
		t.Error("installing the package again replaced the API token")
	}

	// Remove: the programs go, the configuration, the token and the
	// account stay.
	run(t, "dpkg", "-r", pkg)
	for _, p := range []string{"/usr/bin/kpe-agent", "/usr/bin/kpectl", "/lib/systemd/system/kpe-agent.service", "/usr/share/man/man1/kpectl.1.gz",
		"/usr/share/polkit-1/rules.d/60-kpe-agent-pcscd.rules", "/etc/systemd/system/multi-user.target.wants/kpe-agent.service",
		"/usr/lib/systemd/user/kpe-kiosk.service", kioskHelperPath, "/usr/libexec/kpe-agent", "/usr/share/doc/kpe-agent/kiosk/kpe-kiosk.json"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s is still there after dpkg -r (%v)", p, err)
		}
	}
	for _, p := range []string{"/etc/kpe-agent/agent.yaml", token} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("dpkg -r removed %s: %v", p, err)
		}
	}
	if _, err := user.Lookup(pkg); err != nil {
		t.Errorf("dpkg -r removed the account: %v", err)
	}

	// Purge: everything goes.
	run(t, "dpkg", "-P", pkg)
	for _, p := range []string{"/etc/kpe-agent", "/var/lib/kpe-agent", "/var/log/kpe-agent"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s is still there after dpkg -P (%v)", p, err)
		}
	}
	if _, err := user.Lookup(pkg); err == nil {
		t.Error("the account kpe-agent is still there after dpkg -P")
	}
	for _, g := range []string{pkg, apiGroup} {
		if _, err := user.LookupGroup(g); err == nil {
			t.Errorf("the group %s is still there after dpkg -P", g)
		}
	}
	if s := dpkgStatus(); s != "" && !strings.HasSuffix(s, "not-installed") {
		t.Errorf("dpkg status after purge: %q", s)
	}
}

// groupMembers lists the secondary members of group (getent group).
func groupMembers(t *testing.T, group string) []string {
	t.Helper()
	f := strings.Split(strings.TrimSpace(run(t, "getent", "group", group)), ":")
	if len(f) != 4 || f[3] == "" {
		return nil
	}
	return strings.Split(f[3], ",")
}

// checkSecretsSplit: the API token's readers (the group kpe-agent-api)
// read the token and nothing else. With the secrets laid out as
// docs/install.md says (0640 root:kpe-agent) and a log file as the agent
// writes it, a frontline account in kpe-agent-api (apiReader, made by the
// caller) reads the token but not
// the SAM activation code, the KTP-el secrets, the pseudonym key, the TLS
// key or the logs, and cannot list the secrets; the agent's account reads
// them all. The group kpe-agent has no member: the account's primary
// group only.
func checkSecretsSplit(t *testing.T, token string, tok []byte) {
	if _, err := user.LookupGroup(apiGroup); err != nil {
		t.Fatalf("group %s: %v", apiGroup, err)
	}
	if m := groupMembers(t, pkg); len(m) != 0 {
		t.Errorf("the group kpe-agent has members %v: only the service's own account may read its secrets", m)
	}
	if m := groupMembers(t, apiGroup); !slices.Contains(m, pkg) {
		t.Errorf("the account kpe-agent is not in %s (members %v): it could not read the token", apiGroup, m)
	}

	secrets := map[string]string{
		"/etc/kpe-agent/secrets/sam-code":       "123456\n",
		"/etc/kpe-agent/secrets/ktp-secrets":    "one\ntwo\n",
		"/etc/kpe-agent/secrets/nik-key":        strings.Repeat("k", 32) + "\n",
		"/etc/kpe-agent/secrets/client-key.pem": "-----BEGIN EC PRIVATE KEY-----\n",
		"/var/log/kpe-agent/agent.log":          "{\"msg\":\"agent running\"}\n",
	}
	for path, content := range secrets {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(path) })
		owner := "root:" + pkg
		if strings.HasPrefix(path, "/var/log/") {
			owner = pkg + ":" + pkg
		}
		run(t, "chown", owner, path)
		run(t, "chmod", "0640", path)
	}
	as := func(account string, args ...string) (string, error) {
		t.Helper()
		u, err := user.Lookup(account)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("setpriv", append([]string{"--reuid=" + u.Uid, "--regid=" + u.Gid, "--init-groups", "--"}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := as(apiReader, "cat", token); err != nil || out != string(tok) {
		t.Errorf("%s (in %s) cannot read the token: %v\n%s", apiReader, apiGroup, err, out)
	}
	for path := range secrets {
		if out, err := as(apiReader, "cat", path); err == nil {
			t.Errorf("%s (in %s) reads %s:\n%s", apiReader, apiGroup, path, out)
		}
		if out, err := as(pkg, "cat", path); err != nil || out != secrets[path] {
			t.Errorf("the kpe-agent account cannot read %s: %v\n%s", path, err, out)
		}
	}
	for _, dir := range []string{"/etc/kpe-agent/secrets", "/var/log/kpe-agent", "/var/lib/kpe-agent"} {
		if out, err := as(apiReader, "ls", dir); err == nil {
			t.Errorf("%s (in %s) lists %s:\n%s", apiReader, apiGroup, dir, out)
		}
	}
	// the agent accepts the token in kpe-agent-api and the other secrets
	// in kpe-agent; a secret in kpe-agent-api is refused
	conf := "/etc/kpe-agent/secrets-split-test.yaml"
	t.Cleanup(func() { os.Remove(conf) })
	if err := os.WriteFile(conf, []byte("terminal:\n  id: T-SPLIT\n  site: S-SPLIT\nsam:\n  activation_code_file: /etc/kpe-agent/secrets/sam-code\n"+
		"  ktp_secrets_file: /etc/kpe-agent/secrets/ktp-secrets\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := as(pkg, "/usr/bin/kpe-agent", "check-config", "--config", conf); err != nil {
		t.Errorf("kpe-agent check-config as the kpe-agent account with the secrets split: %v\n%s", err, out)
	}
	run(t, "chgrp", apiGroup, "/etc/kpe-agent/secrets/sam-code")
	if out, err := as(pkg, "/usr/bin/kpe-agent", "check-config", "--config", conf); err == nil || !strings.Contains(out, "kpe-agent-api") {
		t.Errorf("kpe-agent check-config accepts the activation code in the group kpe-agent-api: %v\n%s", err, out)
	}
}

// checkUnitsVerify has systemd-analyze verify the installed units: the
// service, and the kiosk's user unit in a user manager's view (with a
// runtime directory of its own: root has no user session here). Any
// message fails, warnings too. systemd-analyze comes with the systemd
// package, which make deps installs (it needs no running systemd);
// without it the check is a loud skip outside CI and fails under CI.
func checkUnitsVerify(t *testing.T) {
	needSystemdAnalyze(t, "the units are not verified")
	verify := func(user bool, unit string) {
		t.Helper()
		args := []string{"verify", unit}
		env := os.Environ()
		if user {
			runtime := t.TempDir()
			if err := os.Chmod(runtime, 0o700); err != nil {
				t.Fatal(err)
			}
			args = append([]string{"--user"}, args...)
			env = append(env, "XDG_RUNTIME_DIR="+runtime)
		}
		cmd := exec.Command("systemd-analyze", args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) != 0 {
			t.Errorf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	verify(false, "/lib/systemd/system/kpe-agent.service")
	verify(true, "/usr/lib/systemd/user/kpe-kiosk.service")
}

// maxUnitExposure is the highest "Overall exposure level" systemd-analyze
// security may give the installed kpe-agent.service (issue 16: 3.0 or
// lower; docs/install.md lists the options that get it there).
const maxUnitExposure = 3.0

// checkUnitSecurity has systemd-analyze security rate the installed unit
// offline (no running systemd needed) and checks the overall exposure
// level, and that the hardening keeps what the agent needs: the read-only
// adjtimex call (clock status) is allowed by the system call filter, and
// no capability can set the clock.
func checkUnitSecurity(t *testing.T, unit string) {
	needSystemdAnalyze(t, "the unit's exposure is not rated")
	cmd := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", unit)
	// the C locale: ASCII marks, + for a restriction in place, - for one missing
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	// systemd-analyze security exits non-zero only when it cannot rate
	// the unit (or the level is above --threshold, which is not given).
	if err != nil {
		t.Fatalf("systemd-analyze security %s: %v\n%s", unit, err, out)
	}
	level, err := exposureLevel(string(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("systemd-analyze security %s: overall exposure %.1f", unit, level)
	if level > maxUnitExposure {
		t.Errorf("systemd-analyze security rates %s %.1f, want %.1f or lower:\n%s", unit, level, maxUnitExposure, out)
	}
	for _, want := range []*regexp.Regexp{
		// adjtimex stays callable (the agent reads whether the clock is
		// synchronised), and it is the only clock call the filter names
		regexp.MustCompile(`(?m)^- SystemCallFilter=~@clock .*\(e\.g\. adjtimex is allowed\)`),
		// ...but nothing may set the clock
		regexp.MustCompile(`(?m)^\+ CapabilityBoundingSet=~CAP_SYS_TIME\s`),
		regexp.MustCompile(`(?m)^\+ SystemCallFilter=~@resources\s`),
		regexp.MustCompile(`(?m)^\+ RestrictAddressFamilies=~AF_PACKET\s`),
	} {
		if !want.MatchString(string(out)) {
			t.Errorf("systemd-analyze security %s: no line matches %s:\n%s", unit, want, out)
		}
	}
}

// exposureLevel reads the overall exposure level from systemd-analyze
// security's output ("-> Overall exposure level for kpe-agent.service: 1.7 OK :-)"
// in the C locale).
func exposureLevel(out string) (float64, error) {
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9]+\.[0-9]+) `).FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("systemd-analyze security: no \"Overall exposure level\" line")
	}
	return strconv.ParseFloat(m[1], 64)
}

func TestExposureLevel(t *testing.T) {
	for out, want := range map[string]float64{
		"+ NotifyAccess=  ...\n\n-> Overall exposure level for kpe-agent.service: 7.6 EXPOSED :-(\n": 7.6,
		"-> Overall exposure level for kpe-agent.service: 1.7 OK :-)":                                1.7,
		"→ Overall exposure level for x.service: 10.0 UNSAFE 😨\n":                                    10,
	} {
		if got, err := exposureLevel(out); err != nil || got != want {
			t.Errorf("exposureLevel(%q) = %v, %v; want %v", out, got, err, want)
		}
	}
	if _, err := exposureLevel("Unit kpe-agent.service not found.\n"); err == nil {
		t.Error("exposureLevel of output without the level: no error")
	}
}

// manInclude is the dpkg option that installs the package's man pages
// where a dpkg configuration excludes /usr/share/man (minimal Debian and
// Ubuntu images: path-exclude in /etc/dpkg/dpkg.cfg.d/), so that the man
// check below sees the pages: a command-line option comes after the
// configuration files' and wins. None when nothing excludes them.
func manInclude(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("/etc/dpkg/dpkg.cfg.d/*")
	opts, why := manIncludeFor(append(files, "/etc/dpkg/dpkg.cfg"))
	if why != "" {
		t.Logf("%s: installing with %s", why, strings.Join(opts, " "))
	}
	return opts
}

// manIncludeFor is manInclude for these dpkg configuration files; why
// names the exclusion.
func manIncludeFor(files []string) (opts []string, why string) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if p, ok := strings.CutPrefix(line, "path-exclude"); ok && strings.Contains(p, "/usr/share/man") {
				return []string{"--path-include=/usr/share/man/man1/kpe*"}, f + " excludes the man pages (" + line + ")"
			}
		}
	}
	return nil, ""
}

func TestManIncludeFor(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	speedup := write("docker-apt-speedup", "force-unsafe-io\n")
	excludes := write("excludes", "# minimised\npath-exclude=/usr/share/man/*\npath-include=/usr/share/man/man1/dpkg*\n")
	if opts, why := manIncludeFor([]string{speedup, filepath.Join(dir, "missing")}); opts != nil || why != "" {
		t.Errorf("no exclusion: %q %q", opts, why)
	}
	opts, why := manIncludeFor([]string{speedup, excludes})
	if strings.Join(opts, " ") != "--path-include=/usr/share/man/man1/kpe*" || !strings.Contains(why, "path-exclude=/usr/share/man/*") {
		t.Errorf("exclusion: %q %q", opts, why)
	}
}

// checkMan reads the installed man pages with man(1): kpectl(1), a
// command's page, kpe-agent(1).
func checkMan(t *testing.T) {
	_, err := exec.LookPath("man")
	systest.Need(t, err == nil, "man is not installed (make deps installs man-db): the man pages are not read")
	man := func(page string) string {
		t.Helper()
		cmd := exec.Command("man", page)
		// No pager, no terminal formatting, wide enough not to wrap.
		cmd.Env = append(os.Environ(), "MANPAGER=cat", "PAGER=cat", "MANWIDTH=200", "MAN_KEEP_FORMATTING=", "LC_ALL=C")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("man %s: %v\n%s", page, err, out)
		}
		// Undo the line breaks (and the hyphenations at line ends).
		return strings.Join(strings.Fields(regexp.MustCompile(`-\n\s+`).ReplaceAllString(string(out), "-")), " ")
	}
	if p := strings.TrimSpace(run(t, "man", "-w", "kpectl")); p != "/usr/share/man/man1/kpectl.1.gz" {
		t.Errorf("man -w kpectl = %q", p)
	}
	for page, want := range map[string][]string{
		"kpectl":      {"KPECTL(1)", "kpectl - KPE terminal operator tool", "--lang", "--token-file", "kpectl-doctor(1)", "kpectl-completion(1)"},
		"kpectl-read": {"kpectl read", "--trust-bkn", "--sam-code-file", "--ktp-secrets-file"},
		"kpe-agent":   {"KPE-AGENT(1)", "kpe-agent - KPE / KTP-el card terminal agent", "kpe-agent-run(1)", "kpe-agent-version(1)"},
	} {
		out := man(page)
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("man %s lacks %q:\n%s", page, w, out)
			}
		}
	}
}

// fakeSystemd runs commands (dpkg, a package script) as if systemd were
// running: in a private mount namespace with a tmpfs on /run holding
// /run/systemd/system, and a systemctl first in PATH that logs its
// arguments and answers is-active from a flag. The real systemd is not
// touched.
type fakeSystemd struct{ dir, log, active string }

func newFakeSystemd(t *testing.T) *fakeSystemd {
	t.Helper()
	f := &fakeSystemd{dir: t.TempDir()}
	f.log = filepath.Join(f.dir, "calls")
	f.active = filepath.Join(f.dir, "active")
	script := "#!/bin/sh\necho \"$*\" >>" + f.log + "\n" +
		"if [ \"$1\" = is-active ]; then [ -e " + f.active + " ]; exit; fi\nexit 0\n"
	if err := os.WriteFile(filepath.Join(f.dir, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		"mount -t tmpfs kpe-test /run && mkdir -p /run/systemd/system").CombinedOutput()
	need(t, err == nil, "a private mount namespace (unshare --mount) to fake a running systemd: "+strings.TrimSpace(string(out)))
	return f
}

func (f *fakeSystemd) setActive(t *testing.T, active bool) {
	t.Helper()
	if active {
		if err := os.WriteFile(f.active, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	} else if err := os.Remove(f.active); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// run runs the command and returns its output and the systemctl calls it
// made, one a line.
func (f *fakeSystemd) run(t *testing.T, name string, args ...string) (out, calls string) {
	t.Helper()
	if err := os.WriteFile(f.log, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs kpe-test /run && mkdir -p /run/systemd/system && exec "$@"`, "sh", name}, args...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "PATH="+f.dir+":"+os.Getenv("PATH"))
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s (fake systemd): %v\n%s", name, strings.Join(args, " "), err, b)
	}
	c, err := os.ReadFile(f.log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), string(c)
}

// hasCall reports whether calls holds the systemctl command line.
func hasCall(calls, line string) bool {
	return strings.Contains("\n"+calls, "\n"+line+"\n")
}

// checkServiceStart: what postinstall does with the service under a
// running systemd. The installed configuration has no terminal.id or
// terminal.site, so the agent refuses it; postinstall then enables but
// does not start the service. Once they are set (in /etc/default/kpe-agent
// or agent.yaml) it starts the stopped service, also after dpkg -r and
// dpkg -i (dpkg passes the old version then, as on an upgrade), and
// restarts a running one.
func checkServiceStart(t *testing.T, deb string) {
	cc, err := exec.Command("/usr/bin/kpe-agent", "check-config", "--config", "/etc/kpe-agent/agent.yaml").CombinedOutput()
	if err == nil || !strings.Contains(string(cc), "terminal.id: missing") || !strings.Contains(string(cc), "terminal.site: missing") {
		t.Errorf("kpe-agent check-config on the installed agent.yaml: %v, want terminal.id and terminal.site missing:\n%s", err, cc)
	}

	f := newFakeSystemd(t)
	noStart := func(calls string) {
		t.Helper()
		if hasCall(calls, "start kpe-agent.service") || hasCall(calls, "try-restart kpe-agent.service") {
			t.Errorf("the service was started or restarted; systemctl calls:\n%s", calls)
		}
	}

	// Not configured: enabled, not started, and the technician is told why.
	out, calls := f.run(t, "dpkg", "-i", deb)
	if !hasCall(calls, "enable kpe-agent.service") {
		t.Errorf("the service was not enabled; systemctl calls:\n%s", calls)
	}
	noStart(calls)
	for _, s := range []string{"kpe-agent: config: /etc/kpe-agent/agent.yaml:", "terminal.id: missing", "enabled but not started", "systemctl start kpe-agent"} {
		if !strings.Contains(out, s) {
			t.Errorf("dpkg -i with no terminal.id: the output lacks %q:\n%s", s, out)
		}
	}

	// Configured by the service's environment file: started.
	const env = "/etc/default/kpe-agent"
	if err := os.WriteFile(env, []byte("KPE_TERMINAL_ID=PKM-TEST-01\nKPE_TERMINAL_SITE=PKM-TEST\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, calls = f.run(t, "dpkg", "-i", deb)
	os.Remove(env)
	if !hasCall(calls, "start kpe-agent.service") || hasCall(calls, "try-restart kpe-agent.service") {
		t.Errorf("terminal.id set in %s, service stopped: want start; systemctl calls:\n%s\noutput:\n%s", env, calls, out)
	}

	// Configured in agent.yaml (a local change dpkg keeps).
	b, err := os.ReadFile("/etc/kpe-agent/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(strings.Replace(string(b), "\n  id: \"\"\n", "\n  id: PKM-TEST-01\n", 1), "\n  site: \"\"\n", "\n  site: PKM-TEST\n", 1)
	if conf == string(b) {
		t.Fatal("the installed agent.yaml has no empty terminal.id / terminal.site line to set")
	}
	if err := os.WriteFile("/etc/kpe-agent/agent.yaml", []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/bin/kpe-agent", "check-config", "--config", "/etc/kpe-agent/agent.yaml").CombinedOutput(); err != nil {
		t.Fatalf("kpe-agent check-config with terminal.id set: %v\n%s", err, out)
	}

	// Running: restarted with the new binary.
	f.setActive(t, true)
	_, calls = f.run(t, "dpkg", "-i", deb)
	if !hasCall(calls, "try-restart kpe-agent.service") || hasCall(calls, "start kpe-agent.service") {
		t.Errorf("upgrade of a running service: want try-restart; systemctl calls:\n%s", calls)
	}

	// apt remove, then apt install: dpkg gives postinstall the old
	// version, but the service is stopped: started.
	f.setActive(t, false)
	_, calls = f.run(t, "dpkg", "-r", pkg)
	if !hasCall(calls, "stop kpe-agent.service") || !hasCall(calls, "disable kpe-agent.service") {
		t.Errorf("dpkg -r: want stop and disable; systemctl calls:\n%s", calls)
	}
	_, calls = f.run(t, "dpkg", "-i", deb)
	if !hasCall(calls, "enable kpe-agent.service") || !hasCall(calls, "start kpe-agent.service") {
		t.Errorf("dpkg -i after dpkg -r: want enable and start; systemctl calls:\n%s", calls)
	}

	// rpm's upgrade (2) of a stopped service: started too.
	_, calls = f.run(t, "sh", "/var/lib/dpkg/info/kpe-agent.postinst", "2")
	if !hasCall(calls, "start kpe-agent.service") {
		t.Errorf("postinstall 2 (rpm upgrade), service stopped: want start; systemctl calls:\n%s", calls)
	}
}
