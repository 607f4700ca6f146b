package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{
		"--vpcd-port", "40000", "--slots", "3", "--insert", "0=a.json", "--insert", "2=b.json",
		"--log-level", "debug", "--control", "[::1]:9000",
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.vpcdPort != 40000 || o.slots != 3 || o.logLevel != slog.LevelDebug || o.control != "[::1]:9000" {
		t.Fatalf("%+v", o)
	}
	if len(o.inserts) != 2 || o.inserts[1] != (insertion{slot: 2, path: "b.json"}) {
		t.Fatalf("inserts %+v", o.inserts)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--control", "0.0.0.0:35990"}, "not a loopback"},
		{[]string{"--control", ":35990"}, "not a loopback"},
		{[]string{"--control", "192.168.1.10:35990"}, "not a loopback"},
		{[]string{"--control", "nonsense"}, "missing port"},
		{[]string{"--insert", "a.json"}, "SLOT=PATH"},
		{[]string{"--insert", "x=a.json"}, "bad slot"},
		{[]string{"--insert", "-1=a.json"}, "bad slot"},
		{[]string{"--log-level", "loud"}, "log-level"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		_, err := parseFlags(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
	for _, ok := range [][]string{
		{"--control", "localhost:1"},
		{"--control", "127.0.0.2:1"},
		{"--control", ""},
		{"--control", "0.0.0.0:35990", "--control-allow-remote"},
	} {
		if _, err := parseFlags(ok); err != nil {
			t.Fatalf("%v: %v", ok, err)
		}
	}
}

func runCardsim(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// Without a command: the usage on standard error, exit code 2; help
// exits 0.
func TestUsage(t *testing.T) {
	out, errOut, code := runCardsim(t)
	if code != 2 || out != "" || !strings.Contains(errOut, "Usage:") || !strings.Contains(errOut, "serve") {
		t.Fatalf("kpe-cardsim = %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	for _, args := range [][]string{{"-h"}, {"help"}, {"serve", "--help"}, {"bio", "gen", "-h"}} {
		if out, errOut, code := runCardsim(t, args...); code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%q = %d\nstdout %q\nstderr %q", args, code, out, errOut)
		}
	}
	for args, want := range map[string][]string{
		"serve --control 0.0.0.0:1":  {"serve", "--control", "0.0.0.0:1"},
		"serve extra":                {"serve", "extra"},
		"serve -insert 0=a.json":     {"serve", "-insert", "0=a.json"},
		"secrets without --out":      {"secrets", "--lab", "x"},
		"bio gen --level medium":     {"bio", "gen", "--out", t.TempDir(), "--level", "medium"},
		"bio gen --fingers 1":        {"bio", "gen", "--out", t.TempDir(), "--fingers", "1"},
		"personalise without --spec": {"personalise", "--out", t.TempDir()},
		"frobnicate":                 {"frobnicate"},
	} {
		if _, errOut, code := runCardsim(t, want...); code != 2 {
			t.Errorf("%s = %d, want 2 (stderr %q)", args, code, errOut)
		}
	}
}

// secrets writes the sample set's SAM code and KTP-el secrets 0600 and
// prints kpectl read's flags; pki and bio gen write their files.
func TestLabCommands(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	lab := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "cards", "lab")
	dir := t.TempDir()
	out, errOut, code := runCardsim(t, "secrets", "--lab", lab, "--out", filepath.Join(dir, "secrets"))
	if code != 0 {
		t.Fatalf("secrets = %d: %s", code, errOut)
	}
	code1, err := os.ReadFile(filepath.Join(dir, "secrets", "sam-code"))
	if err != nil || string(code1) != "123456\n" {
		t.Errorf("sam-code %q (%v)", code1, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "secrets", "ktp-secrets")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("ktp-secrets: %v %v", st, err)
	}
	if !strings.Contains(out, "kpectl read flags:    --trust-dukcapil ") || !strings.Contains(out, "--ktp-secrets-file "+filepath.Join(dir, "secrets", "ktp-secrets")) {
		t.Errorf("secrets output:\n%s", out)
	}

	if _, errOut, code := runCardsim(t, "pki", "--dir", filepath.Join(dir, "pki"), "--terminal", "lab-07"); code != 0 {
		t.Fatalf("pki = %d: %s", code, errOut)
	}
	for _, f := range []string{"tls-ca.pem", "server.pem", "server-key.pem", "terminal.pem", "terminal-key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, "pki", f)); err != nil {
			t.Error(err)
		}
	}

	out, errOut, code = runCardsim(t, "bio", "gen", "-o", filepath.Join(dir, "bio"), "--level", "easy", "--fingers", "3", "--impressions", "2", "--impostors", "0")
	if code != 0 || !strings.Contains(out, "3 fingers x 2 impressions (easy), pairs.csv") {
		t.Fatalf("bio gen = %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "bio", "pairs.csv")); err != nil {
		t.Error(err)
	}
}

// parseFlags parses serve's flags as serve does (serveFlags, then check).
func parseFlags(args []string) (options, error) {
	var o options
	cmd := &cobra.Command{Use: "serve"}
	serveFlags(cmd, &o)
	if err := cmd.ParseFlags(args); err != nil {
		return o, err
	}
	if rest := cmd.Flags().Args(); len(rest) > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", rest)
	}
	return o, o.check()
}
