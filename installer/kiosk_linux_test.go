package installer_test

// The kiosk PC's files (docs/kiosk.md, "Running as a kiosk"): the
// kpe-kiosk user unit, its helper kpe-kiosk-browser, the example Chromium
// policy and the example Edge policies. These tests need no root; the
// package test (package_linux_test.go) installs them, and
// TestKioskChromiumPolicy gives the policy to a real Chromium.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"kpe-agent/agent/config"
	"kpe-agent/internal/systest"
)

const (
	kioskUnitSrc   = "linux/kpe-kiosk.service"
	kioskHelperSrc = "linux/kpe-kiosk-browser"
	kioskPolicySrc = "linux/kpe-kiosk.json"
	kioskEdgeSrc   = "windows/kpe-kiosk-edge.reg"

	kioskHelperPath = "/usr/libexec/kpe-agent/kpe-kiosk-browser"
)

// kioskFlags are the Chromium flags the unit must give (docs/kiosk.md has
// why each).
var kioskFlags = []string{"--kiosk", "--no-first-run", "--incognito", "--disable-translate",
	"--disable-features=Translate", "--noerrdialogs", "--disable-session-crashed-bubble",
	"--overscroll-history-navigation=0", "--disable-pinch", "--password-store=basic"}

// unitFile is a systemd unit: each section's key=value lines, in order
// (a key may repeat).
type unitFile map[string][][2]string

func (u unitFile) get(section, key string) []string {
	var vs []string
	for _, kv := range u[section] {
		if kv[0] == key {
			vs = append(vs, kv[1])
		}
	}
	return vs
}

// parseUnit reads a unit as systemd does, minus line continuations (the
// unit has none: a line ending in \ is an error here).
func parseUnit(t *testing.T, b []byte) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasSuffix(line, `\`):
			t.Fatalf("unit line %d: a continued line", n)
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("unit line %d: %q is not key=value in a section", n, line)
			}
			u[section] = append(u[section], [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	return u
}

// kioskUnit is the unit, and its ExecStart split into words (it holds no
// quotes).
func kioskUnit(t *testing.T) (unitFile, []string) {
	t.Helper()
	b, err := os.ReadFile(kioskUnitSrc)
	if err != nil {
		t.Fatal(err)
	}
	u := parseUnit(t, b)
	exec := u.get("Service", "ExecStart")
	if len(exec) != 1 || strings.ContainsAny(exec[0], `"'\`) {
		t.Fatalf("ExecStart = %q, want one line without quotes", exec)
	}
	return u, strings.Fields(exec[0])
}

// kioskURL is the page the unit opens: the agent's /kiosk/ at api.listen
// of the packaged configuration.
func kioskURL(t *testing.T) string {
	t.Helper()
	c, err := config.Load(config.Source{File: filepath.Join("..", "configs", "agent.yaml"),
		Set: map[string]string{"terminal.id": "T-TEST", "terminal.site": "S-TEST"}})
	if err != nil {
		t.Fatalf("configs/agent.yaml: %v", err)
	}
	return "http://" + c.API.Listen + "/kiosk/"
}

func TestKioskUnit(t *testing.T) {
	u, argv := kioskUnit(t)
	want := kioskURL(t)
	if argv[0] != kioskHelperPath {
		t.Errorf("ExecStart runs %s, want the helper %s", argv[0], kioskHelperPath)
	}
	if last := argv[len(argv)-1]; last != want {
		t.Errorf("ExecStart's page is %s, want %s (api.listen of configs/agent.yaml)", last, want)
	}
	flags := argv[1 : len(argv)-1]
	for _, f := range kioskFlags {
		if !slices.Contains(flags, f) {
			t.Errorf("ExecStart lacks the flag %s: %q", f, flags)
		}
	}
	for _, f := range flags {
		if !strings.HasPrefix(f, "--") {
			t.Errorf("ExecStart: %q is not a flag; the page's address must be the last argument", f)
		}
	}
	// A profile of its own on the session's tmpfs, emptied before each start.
	if !slices.Contains(flags, "--user-data-dir=%t/kpe-kiosk") {
		t.Errorf("ExecStart lacks --user-data-dir=%%t/kpe-kiosk: %q", flags)
	}
	if pre := u.get("Service", "ExecStartPre"); !slices.Equal(pre, []string{"/bin/rm -rf %t/kpe-kiosk"}) {
		t.Errorf("ExecStartPre = %q, want the profile deleted", pre)
	}
	for _, kv := range [][3]string{
		{"Unit", "After", "graphical-session.target"},
		{"Unit", "PartOf", "graphical-session.target"},
		{"Unit", "StartLimitIntervalSec", "0"},
		{"Service", "Restart", "always"},
		{"Service", "RestartSec", "2"},
		{"Service", "RestartPreventExitStatus", "78"},
		{"Install", "WantedBy", "graphical-session.target"},
	} {
		if got := u.get(kv[0], kv[1]); !slices.Equal(got, []string{kv[2]}) {
			t.Errorf("[%s] %s = %q, want %q", kv[0], kv[1], got, kv[2])
		}
	}
	if u.get("Service", "User") != nil || u.get("Service", "Group") != nil {
		t.Error("a user unit sets no User= or Group=")
	}
}

// policyJSON decodes the Chromium policy, refusing duplicate keys (the
// browser would take one of them silently).
func policyJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("the policy is not a JSON object: %v %v", tok, err)
	}
	p := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		name := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("policy %s: %v", name, err)
		}
		if _, dup := p[name]; dup {
			t.Fatalf("policy %s is set twice", name)
		}
		p[name] = v
	}
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("something after the policy object: %v", err)
	}
	return p
}

func kioskPolicy(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(kioskPolicySrc)
	if err != nil {
		t.Fatal(err)
	}
	return policyJSON(t, b)
}

// originOf is scheme://host:port of a URL.
func originOf(t *testing.T, s string) string {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u.Scheme + "://" + u.Host
}

// kioskPolicyWant are the policies both browsers must have, by Chromium's
// name and JSON value (the Edge .reg: an Edge name may differ, below).
func kioskPolicyWant(t *testing.T) map[string]any {
	return map[string]any{
		"URLBlocklist":               []any{"*"},
		"URLAllowlist":               []any{originOf(t, kioskURL(t))},
		"DownloadRestrictions":       3.0,
		"PasswordManagerEnabled":     false,
		"AutofillAddressEnabled":     false,
		"AutofillCreditCardEnabled":  false,
		"DeveloperToolsAvailability": 2.0,
		"TranslateEnabled":           false,
		"PrintingEnabled":            true,
		"AllowFileSelectionDialogs":  false,
		"BrowserSignin":              0.0,
		"SyncDisabled":               true,
	}
}

func TestKioskChromiumPolicyFile(t *testing.T) {
	p := kioskPolicy(t)
	want := kioskPolicyWant(t)
	want["IncognitoModeAvailability"] = 2.0
	for name, v := range want {
		if got, ok := p[name]; !ok || fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	deny, _ := p["PrinterTypeDenyList"].([]any)
	if !slices.Contains(deny, any("pdf")) {
		t.Errorf("PrinterTypeDenyList = %v: a receipt could be saved as PDF", p["PrinterTypeDenyList"])
	}
	for name := range p {
		if !regexp.MustCompile(`^[A-Z][A-Za-z0-9]+$`).MatchString(name) {
			t.Errorf("%q is not a policy name", name)
		}
	}
}

// regFile is a .reg file: each key's values, as "dword:N" or the string.
type regFile map[string]map[string]string

// parseReg reads a regedit 5 file as kpe-kiosk-edge.reg writes it: CRLF
// line ends, ASCII, ; comments, [key] sections, "name"=dword:HEX or
// "name"="string" values.
func parseReg(t *testing.T, b []byte) regFile {
	t.Helper()
	if !bytes.HasSuffix(b, []byte("\r\n")) || bytes.Count(b, []byte("\n")) != bytes.Count(b, []byte("\r\n")) {
		t.Fatal("the .reg's lines must all end in CRLF")
	}
	for i, c := range b {
		if c > 0x7e || (c < 0x20 && c != '\r' && c != '\n') {
			t.Fatalf("the .reg holds a byte %#x at %d: ASCII only", c, i)
		}
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n")
	if lines[0] != "Windows Registry Editor Version 5.00" {
		t.Fatalf("the .reg's first line is %q", lines[0])
	}
	value := regexp.MustCompile(`^"([^"\\]+)"=(dword:[0-9a-f]{8}|"[^"\\]*")$`)
	r := regFile{}
	key := ""
	for n, line := range lines[1:] {
		switch {
		case line == "" || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			key = line[1 : len(line)-1]
			if r[key] != nil {
				t.Fatalf(".reg line %d: key %s twice", n+2, key)
			}
			r[key] = map[string]string{}
		default:
			m := value.FindStringSubmatch(line)
			if m == nil || key == "" {
				t.Fatalf(".reg line %d: %q is not a value of a key", n+2, line)
			}
			if _, dup := r[key][m[1]]; dup {
				t.Fatalf(".reg line %d: %s set twice", n+2, m[1])
			}
			r[key][m[1]] = strings.Trim(m[2], `"`)
		}
	}
	return r
}

const edgeKey = `HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Edge`

// edgeList is an Edge list policy (values "1", "2", … of its key).
func edgeList(r regFile, name string) []any {
	var l []any
	for i := 1; ; i++ {
		v, ok := r[edgeKey+`\`+name][strconv.Itoa(i)]
		if !ok {
			return l
		}
		l = append(l, v)
	}
}

func TestKioskEdgePolicyFile(t *testing.T) {
	b, err := os.ReadFile(kioskEdgeSrc)
	if err != nil {
		t.Fatal(err)
	}
	r := parseReg(t, b)
	for key, vals := range r {
		if key != edgeKey && !strings.HasPrefix(key, edgeKey+`\`) {
			t.Errorf("the .reg writes %s, outside Edge's policies", key)
		}
		if key != edgeKey && len(edgeList(r, strings.TrimPrefix(key, edgeKey+`\`))) != len(vals) {
			t.Errorf("list policy %s: values %v are not 1, 2, …", key, vals)
		}
	}
	// The same policies as Chromium's, by value.
	for name, v := range kioskPolicyWant(t) {
		switch v := v.(type) {
		case []any:
			if got := edgeList(r, name); fmt.Sprint(got) != fmt.Sprint(v) {
				t.Errorf("Edge %s = %v, want %v", name, got, v)
			}
		default:
			n := map[bool]float64{false: 0, true: 1}
			want := 0.0
			if bv, ok := v.(bool); ok {
				want = n[bv]
			} else {
				want = v.(float64)
			}
			if got := r[edgeKey][name]; got != fmt.Sprintf("dword:%08x", int(want)) {
				t.Errorf("Edge %s = %q, want dword %v", name, got, want)
			}
		}
	}
	if got := r[edgeKey]["BrowserAddProfileEnabled"]; got != "dword:00000000" {
		t.Errorf("Edge BrowserAddProfileEnabled = %q, want 0 (Chromium's BrowserAddPersonEnabled)", got)
	}
	if got := r[edgeKey]["KioskDeleteDownloadsOnExit"]; got != "dword:00000001" {
		t.Errorf("Edge KioskDeleteDownloadsOnExit = %q, want 1", got)
	}
	if !slices.Contains(edgeList(r, "PrinterTypeDenyList"), any("pdf")) {
		t.Errorf("Edge PrinterTypeDenyList = %v: a receipt could be saved as PDF", edgeList(r, "PrinterTypeDenyList"))
	}
	// Policies Microsoft lists as not supported with Edge's kiosk mode.
	for name := range r[edgeKey] {
		if name == "InPrivateModeAvailability" || name == "IsolateOrigins" || strings.HasPrefix(name, "Extension") {
			t.Errorf("the .reg sets %s, which Edge's kiosk mode does not support", name)
		}
	}
}

// fakeBrowser writes a script that records its arguments, one a line, in
// the file it returns, then exits 0.
func fakeBrowser(t *testing.T) (bin, argsFile string) {
	t.Helper()
	dir := t.TempDir()
	bin = filepath.Join(dir, "fake-chromium")
	argsFile = filepath.Join(dir, "args")
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >" + argsFile + "\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, argsFile
}

// startHelper starts kpe-kiosk-browser with the arguments and
// environment, in its own process group; done gets its exit.
func startHelper(t *testing.T, env []string, args ...string) (cmd *exec.Cmd, stderr *systest.Buffer, done chan error) {
	t.Helper()
	cmd = exec.Command(kioskHelperSrc, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "KPE_KIOSK_POLL=0.05"}, env...)
	stderr = &systest.Buffer{}
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, stderr, done
}

// runHelper runs kpe-kiosk-browser with the arguments and environment,
// at most for d; it reports the exit status (-1: still running, killed).
func runHelper(t *testing.T, d time.Duration, env []string, args ...string) (code int, stderr string) {
	t.Helper()
	cmd, errb, done := startHelper(t, env, args...)
	var err error
	select {
	case err = <-done:
	case <-time.After(d):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return -1, errb.String()
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), errb.String()
	default:
		t.Fatal(err)
		return 0, ""
	}
}

// runHelperUntil runs the kiosk helper until its stderr holds line (at
// most limit), lets it run for another `after`, then kills it and returns
// its stderr; it fails the test if the helper exits or never says line.
func runHelperUntil(t *testing.T, line string, limit, after time.Duration, env []string, args ...string) string {
	t.Helper()
	cmd, errb, done := startHelper(t, env, args...)
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(limit)
	for !strings.Contains(errb.String(), line) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the helper exited (%v) before saying %q; stderr:\n%s", err, line, errb.String())
		case <-deadline:
			t.Fatalf("the helper did not say %q within %v; stderr:\n%s", line, limit, errb.String())
		case <-tick.C:
		}
	}
	select {
	case err := <-done:
		done <- err
		t.Fatalf("the helper exited (%v), want still waiting; stderr:\n%s", err, errb.String())
	case <-time.After(after):
	}
	return errb.String()
}

func TestKioskBrowserHelper(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("kpe-kiosk-browser is a bash script: %v", err)
	}
	_, argv := kioskUnit(t)
	flags := argv[1 : len(argv)-1]
	bin, argsFile := fakeBrowser(t)

	t.Run("waits for the page, then starts the browser", func(t *testing.T) {
		// The agent answers 404 (kiosk.enabled false) three times, then
		// serves the page.
		var hits atomic.Int32
		var badReq atomic.Value
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || r.URL.Path != "/kiosk/" || r.Host != r.Context().Value(http.LocalAddrContextKey).(net.Addr).String() {
				badReq.Store(fmt.Sprintf("%s %s Host %s", r.Method, r.URL, r.Host))
			}
			if hits.Add(1) <= 3 {
				http.NotFound(w, r)
				return
			}
			w.Write([]byte("<!doctype html><title>kiosk</title>"))
		}))
		defer srv.Close()
		page := srv.URL + "/kiosk/"
		code, stderr := runHelper(t, 20*time.Second, []string{"KPE_KIOSK_BROWSER=" + bin}, append(slices.Clone(flags), page)...)
		if code != 0 {
			t.Fatalf("exit %d, want 0 (the browser's); stderr:\n%s", code, stderr)
		}
		if v := badReq.Load(); v != nil {
			t.Errorf("the helper asked %s, want GET /kiosk/ with the page's Host", v)
		}
		if n := hits.Load(); n != 4 {
			t.Errorf("the agent was asked %d times, want 4 (three 404s, then the page)", n)
		}
		if n := strings.Count(stderr, "(404): set kiosk.enabled: true"); n != 1 {
			t.Errorf("the 404 is said %d times, want once:\n%s", n, stderr)
		}
		if !strings.Contains(stderr, "the kiosk page answers; starting "+bin) {
			t.Errorf("stderr lacks the start:\n%s", stderr)
		}
		got, err := os.ReadFile(argsFile)
		if err != nil {
			t.Fatalf("the browser did not run: %v", err)
		}
		if want := strings.Join(append(slices.Clone(flags), page), "\n") + "\n"; string(got) != want {
			t.Errorf("the browser got\n%s\nwant\n%s", got, want)
		}
	})

	t.Run("no agent: keeps waiting", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		os.Remove(argsFile)
		// It says so once it found no agent, then keeps polling (every
		// 0.05 s) for a second more without saying it again.
		stderr := runHelperUntil(t, "waiting for the kpe-agent at "+addr, 30*time.Second, time.Second,
			[]string{"KPE_KIOSK_BROWSER=" + bin}, "--kiosk", "http://"+addr+"/kiosk/")
		if n := strings.Count(stderr, "waiting for the kpe-agent at "+addr); n != 1 {
			t.Errorf("the wait is said %d times, want once:\n%s", n, stderr)
		}
		if _, err := os.Stat(argsFile); err == nil {
			t.Error("the browser ran without the agent")
		}
	})

	for _, c := range []struct {
		name string
		env  []string
		args []string
		msg  string
	}{
		{"no arguments", []string{"KPE_KIOSK_BROWSER=" + bin}, nil, "usage: kpe-kiosk-browser"},
		{"https", []string{"KPE_KIOSK_BROWSER=" + bin}, []string{"--kiosk", "https://127.0.0.1:7531/kiosk/"}, "must be the kiosk page's http:// address"},
		{"a flag last", []string{"KPE_KIOSK_BROWSER=" + bin}, []string{"http://127.0.0.1:7531/kiosk/", "--kiosk"}, "must be the kiosk page's http:// address"},
		{"bad port", []string{"KPE_KIOSK_BROWSER=" + bin}, []string{"http://127.0.0.1:x/kiosk/"}, "bad port"},
		{"browser missing", []string{"KPE_KIOSK_BROWSER=/nonexistent/chromium"}, []string{"http://127.0.0.1:7531/kiosk/"}, "is not an executable"},
		{"no browser in PATH", []string{"PATH=" + t.TempDir()}, []string{"http://127.0.0.1:7531/kiosk/"}, "no browser: install chromium"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stderr := runHelper(t, 10*time.Second, c.env, c.args...)
			if code != 78 || !strings.Contains(stderr, c.msg) {
				t.Errorf("exit %d, stderr %q; want 78 and %q", code, stderr, c.msg)
			}
		})
	}
}
