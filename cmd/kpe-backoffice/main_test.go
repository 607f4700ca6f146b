package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"kpe-agent/lab/labpki"
)

// The command line: usage errors exit 2 and say why, help exits 0, and a
// serve that cannot start exits 1 naming the flag.
func TestCommandLine(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.pem")
	pems := []string{"--sam-ca", missing, "--tls-cert", "c", "--tls-key", "k", "--client-ca", "ca"}
	for _, c := range []struct {
		args []string
		code int
		want string // in stdout+stderr
	}{
		{nil, 2, "Usage:"},
		{[]string{"-h"}, 0, "serve"},
		{[]string{"serve", "--help"}, 0, "--institution SITE=NAME"},
		{[]string{"serve"}, 2, `required flag(s) "client-ca", "sam-ca", "tls-cert", "tls-key" not set`},
		{[]string{"serve", "-sam-ca", "x"}, 2, "-sam-ca: long flags take two dashes: --sam-ca"},
		{[]string{"serve", "--institution", "nosite"}, 2, `want SITE=INSTITUTION, got "nosite"`},
		{[]string{"lab-pki", "--dir", "x"}, 2, `unknown command "lab-pki" for "kpe-backoffice"`},
		{[]string{"serve", "--sam-ca", missing, "--tls-cert", "c", "--tls-key", "k", "--client-ca", "ca"}, 1, "kpe-backoffice: --sam-ca: open " + missing},
		{[]string{"serve", "--sam-ca", "../../testdata/cards/lab/trust/backoffice-ca.pem", "--tls-cert", "c", "--tls-key", "k", "--client-ca",
			"../../testdata/cards/lab/trust/backoffice-ca.pem", "--sam-crl-poll", "0s"}, 1, "kpe-backoffice: --sam-crl-poll: 0s is not a positive duration"},
		{[]string{"version", "--json"}, 0, `"name": "kpe-backoffice"`},
		{append([]string{"serve", "--staff-host", "https://bo.example"}, pems...), 2, `kpe-backoffice serve: --staff-host/--staff-listen: staff host "https://bo.example": want a host name or IP address`},
		{append([]string{"serve", "--staff-listen", "8080"}, pems...), 2, `--staff-listen: staff listen address "8080"`},
		{append([]string{"serve", "--verify-rate", "0"}, pems...), 2, "--verify-rate: want a number above 0"},
		{append([]string{"serve", "--verify-total-burst", "-1"}, pems...), 2, "--verify-total-burst: want a number above 0"},
		{append([]string{"serve", "--max-ingest", "-2"}, pems...), 2, "--max-ingest: want -1, 0 or more"},
		{append([]string{"serve", "--pg-staff-conns", "-1"}, pems...), 2, "--pg-staff-conns: 0 (the default) or more"},
		{[]string{"serve", "--help"}, 0, "--staff-host stringArray"},
		{append([]string{"serve", "--oidc-issuer", "https://id.example"}, pems...), 2, "--oidc-issuer, --oidc-client-id and --oidc-redirect-url go together"},
	} {
		var out, errOut bytes.Buffer
		if code := run(c.args, &out, &errOut); code != c.code || !strings.Contains(out.String()+errOut.String(), c.want) {
			t.Errorf("kpe-backoffice %q = %d, want %d and %q\nstdout %q\nstderr %q", c.args, code, c.code, c.want, out.String(), errOut.String())
		}
	}
}

// --pg takes its default from KPE_BACKOFFICE_PG without ever printing it:
// not in the help, not with a usage error (the journal keeps both).
func TestPGFromEnvironmentNotShown(t *testing.T) {
	const dsn = "postgres://u:S3cretPw@127.0.0.1:1/db"
	t.Setenv("KPE_BACKOFFICE_PG", dsn)
	t.Setenv("KPE_BACKOFFICE_OIDC_SECRET", "OidcS3cretValue")
	for _, args := range [][]string{{"serve", "-h"}, {"serve", "--help"}, {"help", "serve"}, {"serve", "--bogus"}, {"serve"}, {"serve", "-pg", "x"}} {
		var out, errOut bytes.Buffer
		run(args, &out, &errOut)
		text := out.String() + errOut.String()
		if strings.Contains(text, "S3cretPw") || strings.Contains(text, "OidcS3cretValue") {
			t.Errorf("kpe-backoffice %q prints the DSN's password:\n%s", args, text)
		}
		if args[0] == "help" && !strings.Contains(text, "$KPE_BACKOFFICE_PG") {
			t.Errorf("the help does not name $KPE_BACKOFFICE_PG:\n%s", text)
		}
	}
	// and serve uses it: the store it opens is PostgreSQL at that address
	var out, errOut bytes.Buffer
	pki, err := labpki.Write(t.TempDir(), "lab-01")
	if err != nil {
		t.Fatal(err)
	}
	code := run([]string{"serve", "--sam-ca", pki.TLSCA, "--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey, "--client-ca", pki.TLSCA,
		"--listen", "127.0.0.1:0", "--staff-listen", "127.0.0.1:0"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "database: failed to connect to `user=u database=db`") || strings.Contains(errOut.String(), "S3cretPw") {
		t.Errorf("serve with $KPE_BACKOFFICE_PG = %d\nstdout %q\nstderr %q", code, out.String(), errOut.String())
	}
}
