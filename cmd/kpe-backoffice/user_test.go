package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"

	"kpe-agent/internal/clikit"
	"kpe-agent/sync/backoffice"
)

// kpe-backoffice user add|passwd|disable|list on a bbolt file: the
// password from standard input signs in, never from an argument; bad
// input is a usage error or a typed refusal.
func TestUserCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bo.db")
	user := func(stdin string, args ...string) (int, string) {
		var out, errOut bytes.Buffer
		root := rootCommand(&out, &errOut)
		root.SetIn(strings.NewReader(stdin))
		code := clikit.Main(root, append(append([]string{"user"}, args...), "--db", db), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	for _, c := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"", []string{"add", "siti", "--role", "verifier"}, 2, "give --password-stdin"},
		{"", []string{"add", "siti"}, 2, `required flag(s) "role" not set`},
		{"", []string{"add", "siti", "--role", "verifier", "--password", "x"}, 2, "unknown flag: --password"},
		{"short\n", []string{"add", "siti", "--role", "verifier", "--password-stdin"}, 1, "at least 12"},
		{"", []string{"add", "siti", "--role", "verifier", "--password-stdin"}, 1, "standard input holds no password"},
		{"a long password\n", []string{"add", "siti", "--role", "root", "--password-stdin"}, 1, `role "root"`},
		{"a long password\n", []string{"add", "rina", "--role", "institution", "--password-stdin"}, 1, "name its services"},
		{"a long password\n", []string{"add", "siti", "--role", "verifier", "--password-stdin"}, 0, "account siti added"},
		{"a long password\n", []string{"add", "siti", "--role", "verifier", "--password-stdin"}, 1, "account exists already"},
		{"", []string{"add", "askes@bpjs.go.id", "--role", "institution", "--service", "askes", "--oidc"}, 0, "added"},
		{"", []string{"add", "bound@bpjs.go.id", "--role", "verifier", "--oidc-subject", "248289761001"}, 0, "added"},
		{"", []string{"add", "bad@bpjs.go.id", "--role", "verifier", "--oidc-subject", "two words"}, 1, "OIDC subject"},
		{"", []string{"passwd", "siti"}, 2, "give --password-stdin"},
		{"another long one\r\n", []string{"passwd", "siti", "--password-stdin"}, 0, "password of siti set"},
		{"another long one\n", []string{"passwd", "nobody", "--password-stdin"}, 1, "not found"},
		{"", []string{"disable", "askes@bpjs.go.id"}, 0, "disabled"},
		{"", []string{"list"}, 0, "siti"},
	} {
		code, out := user(c.stdin, c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("user %q = %d, want %d and %q:\n%s", c.args, code, c.code, c.want, out)
		}
	}
	_, list := user("", "list")
	for _, want := range []string{"askes@bpjs.go.id  institution  askes     oidc", "disabled", "siti              verifier     -         password  enabled"} {
		if !strings.Contains(list, want) {
			t.Errorf("list lacks %q:\n%s", want, list)
		}
	}

	// the password set from standard input signs in; the old one not
	st, err := backoffice.OpenBolt(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := backoffice.New(st, backoffice.Config{CA: x509.NewCertPool()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SignIn(context.Background(), "siti", "another long one", "test"); err != nil {
		t.Errorf("sign-in with the password from stdin: %v", err)
	}
	if _, err := svc.SignIn(context.Background(), "siti", "a long password", "test"); err == nil {
		t.Error("the old password still signs in")
	}
	entries, err := svc.AuditLog(context.Background(), backoffice.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, e := range entries {
		if e.Actor == "cli" {
			acts = append(acts, e.Action+" "+e.Target)
		}
	}
	if want := "account-disable askes@bpjs.go.id,account-password siti,account-add bound@bpjs.go.id,account-add askes@bpjs.go.id,account-add siti"; strings.Join(acts, ",") != want {
		t.Errorf("audit: %q, want %q", strings.Join(acts, ","), want)
	}
}
