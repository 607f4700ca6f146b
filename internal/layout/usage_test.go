package layout

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// binaries are the commands the project builds (cmd/...).
var binaries = []string{"kpe-agent", "kpectl", "kpe-cardsim", "kpe-backoffice"}

// plantedSecrets are values put in every environment variable a binary
// reads (os.Getenv, os.LookupEnv, and the agent's KPE_* configuration
// keys that name secrets or URLs), each holding a marker no usage text
// may show: a flag whose default came from the environment printed it
// with -h and with every usage error.
var plantedSecrets = map[string]string{
	"KPE_BACKOFFICE_PG":            "postgres://u:S3cretPw@h/db",
	"KPE_AGENT_URL":                "http://u:AgentS3cretPw@127.0.0.1:1",
	"KPE_TOKEN_FILE":               "/nonexistent/TokenFileS3cret",
	"KPE_CONFIG":                   "/nonexistent/ConfigS3cret.yaml",
	"KPE_OUTBOX":                   "/nonexistent/OutboxS3cret.db",
	"KPE_CARDSIM_STATE_DIR":        "/nonexistent/CardsimS3cret",
	"KPE_SYNC_URL":                 "https://u:SyncS3cretPw@bo.example:8443",
	"KPE_API_TOKEN_FILE":           "/nonexistent/ApiTokenS3cret",
	"KPE_SAM_ACTIVATION_CODE_FILE": "/nonexistent/SamCodeS3cret",
	"KPE_SAM_NIK_KEY_FILE":         "/nonexistent/NikKeyS3cret",
	"KPE_SAM_KTP_SECRETS_FILE":     "/nonexistent/KtpS3cret",
	"KPE_SYNC_CLIENT_KEY":          "/nonexistent/ClientKeyS3cret",
	"KPE_PKCS11_PIN":               "Pkcs11PinS3cret",
	"PGPASSWORD":                   "PgPasswordS3cret",
}

// secretMarker finds any planted value, or its password part.
var secretMarker = regexp.MustCompile(`[A-Za-z]*S3cret[A-Za-z]*`)

// Every binary's help and usage errors, for every command, with secrets
// in the environment: no planted value shows, in the output nor in the
// man pages the packages ship. The commands are found in the help
// itself, so a new command is covered without a change here.
func TestNoSecretInUsage(t *testing.T) {
	root, _ := moduleRoot(t)
	bin := t.TempDir()
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	for _, b := range binaries {
		args = append(args, "./cmd/"+b)
	}
	build := exec.Command("go", args...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// KPE_LANG is read too but holds no secret: a valid value, so that
	// kpectl's help commands run
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LANG=C", "KPE_LANG=en"}
	for k, v := range plantedSecrets {
		env = append(env, k+"="+v)
	}
	runs := 0
	runWith := func(extra []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Env = append(append([]string(nil), env...), extra...)
		cmd.Dir = t.TempDir()
		cmd.Stdin = strings.NewReader("")
		done := make(chan struct{})
		timer := time.AfterFunc(30*time.Second, func() {
			if cmd.Process != nil {
				cmd.Process.Kill()
			}
			close(done)
		})
		out, _ := cmd.CombinedOutput()
		if !timer.Stop() {
			<-done
			t.Errorf("%s %q did not finish within 30 s", name, args)
		}
		runs++
		if m := secretMarker.FindAllString(string(out), -1); len(m) > 0 {
			t.Errorf("%s %s shows planted secrets %q:\n%s", name, strings.Join(args, " "), m, out)
		}
		return string(out)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		return runWith(nil, name, args...)
	}

	for _, b := range binaries {
		seen := map[string]bool{}
		var walk func(path []string)
		walk = func(path []string) {
			key := strings.Join(path, " ")
			if seen[key] {
				return
			}
			seen[key] = true
			help := run(b, append(path, "-h")...)
			run(b, append(path, "--help")...)
			run(b, append(path, "--no-such-flag")...)
			run(b, append(path, "-no-such-flag=x")...)
			run(b, append([]string{"help"}, path...)...)
			for _, sub := range subcommands(help) {
				walk(append(append([]string(nil), path...), sub))
			}
		}
		walk(nil)
		if len(seen) < 3 {
			t.Errorf("%s: only %d commands found in its help; the help's layout changed?", b, len(seen))
		}
		run(b) // no command: the usage
		// the man pages (packages ship them)
		man := t.TempDir()
		run(b, "man", "--dir", man)
		pages, _ := filepath.Glob(filepath.Join(man, "*.1"))
		if len(pages) < 3 {
			t.Errorf("%s man wrote %d pages", b, len(pages))
		}
		for _, p := range pages {
			text, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if m := secretMarker.FindAllString(string(text), -1); len(m) > 0 {
				t.Errorf("%s shows planted secrets %q", p, m)
			}
		}
	}
	// commands that fail on their flags after parsing them
	run("kpe-backoffice", "serve")
	run("kpe-backoffice", "serve", "--sam-ca", "/nonexistent/ca.pem", "--tls-cert", "c", "--tls-key", "k", "--client-ca", "ca")
	run("kpe-backoffice", "serve", "--skew", "bogus")
	// and one that gets as far as the database, which refuses the
	// connection: its error names the user and database, not the password
	pki := t.TempDir()
	run("kpe-cardsim", "pki", "--dir", pki, "--terminal", "lab-01")
	out := runWith([]string{"KPE_BACKOFFICE_PG=postgres://u:S3cretPw@127.0.0.1:1/db"}, "kpe-backoffice", "serve",
		"--sam-ca", filepath.Join(root, "testdata/cards/lab/trust/backoffice-ca.pem"), "--tls-cert", filepath.Join(pki, "server.pem"),
		"--tls-key", filepath.Join(pki, "server-key.pem"), "--client-ca", filepath.Join(pki, "tls-ca.pem"),
		"--listen", "127.0.0.1:0", "--staff-listen", "127.0.0.1:0")
	if !strings.Contains(out, "database") {
		t.Errorf("kpe-backoffice serve with an unreachable database: %s", out)
	}
	t.Logf("%d runs", runs)
}

// subcommands lists the commands a cobra help text offers (its
// "Available Commands:" section and the group sections), not help and
// completion's shells.
func subcommands(help string) []string {
	item := regexp.MustCompile(`^  ([a-z][a-z0-9-]*) +\S`)
	var out []string
	inCommands, afterUsage := false, false
	sc := bufio.NewScanner(strings.NewReader(help))
	for sc.Scan() {
		line := sc.Text()
		if line != "" && !strings.HasPrefix(line, " ") && strings.HasSuffix(line, ":") {
			switch line {
			case "Usage:":
				afterUsage = true
				inCommands = false
			case "Examples:", "Flags:", "Global Flags:", "Aliases:", "Additional help topics:":
				inCommands = false
			default:
				inCommands = afterUsage
			}
			continue
		}
		if m := item.FindStringSubmatch(line); inCommands && m != nil && m[1] != "help" {
			out = append(out, m[1])
		}
	}
	return out
}
