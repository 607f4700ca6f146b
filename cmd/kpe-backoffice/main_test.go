package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// The command line: usage errors exit 2 and say why, help exits 0, and a
// serve that cannot start exits 1 naming the flag.
func TestCommandLine(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.pem")
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
	} {
		var out, errOut bytes.Buffer
		if code := run(c.args, &out, &errOut); code != c.code || !strings.Contains(out.String()+errOut.String(), c.want) {
			t.Errorf("kpe-backoffice %q = %d, want %d and %q\nstdout %q\nstderr %q", c.args, code, c.code, c.want, out.String(), errOut.String())
		}
	}
}
