package main

import (
	"bytes"
	"strings"
	"testing"

	"kpe-agent/internal/pgtest"
)

// kpe-cardsim fleet refuses what it cannot run (exit 2) and runs a small
// storm against a back office it starts on PostgreSQL (exit 0, the
// report printed).
func TestFleetCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fleet"}, "pg"},
		{[]string{"fleet", "--pg", "postgres://x", "--scenario", "tsunami"}, "storm or steady"},
		{[]string{"fleet", "--pg", "postgres://x", "--terminals", "0"}, "at least 1"},
		{[]string{"fleet", "--pg", "postgres://x", "--batch", "1001"}, "1 to 1000"},
		{[]string{"fleet", "--pg", "postgres://x", "--probe-rate", "0"}, "more than 0"},
		{[]string{"fleet", "--target", "https://127.0.0.1:1"}, "--pki DIR"},
		{[]string{"fleet", "--pg", "postgres://x", "--staff", "http://127.0.0.1:1"}, "only with --target"},
		{[]string{"fleet", "--pki-only"}, "--pki-only: want --pki DIR"},
		{[]string{"fleet", "--pg", "postgres://x", "--max-ingest", "-2"}, "--max-ingest"},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
	// --pki-only writes the PKI the serve nodes are started with
	var pout, perr bytes.Buffer
	dir := t.TempDir()
	if code := run([]string{"fleet", "--pki", dir, "--pki-only"}, &pout, &perr); code != 0 {
		t.Fatalf("--pki-only: exit %d: %s", code, perr.String())
	}
	for _, want := range []string{"kpe-backoffice serve --tls-cert " + dir + "/server.pem", "--client-ca " + dir + "/tls-ca.pem", "--sam-ca " + dir + "/sam-ca.pem"} {
		if !strings.Contains(pout.String(), want) {
			t.Errorf("--pki-only output lacks %q:\n%s", want, pout.String())
		}
	}
	var out, errb bytes.Buffer
	code := run([]string{"fleet", "--pg", pgtest.DB(t), "-n", "5", "-k", "4"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	for _, want := range []string{"5 terminals × 4 records = 20 records", "accepted 20, duplicate 0, rejected 0", "records/s", "p99", "bytes per record"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
