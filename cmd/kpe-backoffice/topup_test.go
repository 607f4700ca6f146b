package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"kpe-agent/internal/clikit"
	"kpe-agent/sync/backoffice"
)

// kpe-backoffice topup stage|list|cancel on a bbolt file: staging within
// the monthly limit (exactly the limit passes, one rupiah more exits 1),
// a reference once, bad requests are usage errors (2); list and cancel.
func TestTopUpCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bo.db")
	topup := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := clikit.Main(rootCommand(&out, &errOut), append(append([]string{"topup"}, args...), "--db", db), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	const nip = "196608011988031001"
	code, out := topup("stage", "--nip", nip, "--amount", "600", "--ref", "TRF-1", "--topup-monthly-limit", "1000")
	if code != 0 || !strings.Contains(out, "Rp 600 for "+nip) {
		t.Fatalf("stage = %d:\n%s", code, out)
	}
	id := regexp.MustCompile(`top-up ([0-9a-f]{32}) staged`).FindStringSubmatch(out)[1]

	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"stage", "--nip", nip, "--amount", "400", "--ref", "TRF-2", "--topup-monthly-limit", "1000"}, 0, []string{"Rp 400"}},
		{[]string{"stage", "--nip", nip, "--amount", "1", "--ref", "TRF-3", "--topup-monthly-limit", "1000"}, 1, []string{"over the monthly limit", "Rp 1000 of Rp 1000"}},
		{[]string{"stage", "--nip", nip, "--amount", "1", "--ref", "TRF-3"}, 0, []string{"staged"}}, // the default limit: Rp 40,000,000
		{[]string{"stage", "--nip", nip, "--amount", "1", "--ref", "TRF-1"}, 1, []string{"source reference exists"}},
		{[]string{"stage", "--nip", nip, "--amount", "0", "--ref", "TRF-4"}, 2, []string{"amount"}},
		{[]string{"stage", "--nip", "123", "--amount", "5", "--ref", "TRF-4"}, 2, []string{"nip"}},
		{[]string{"stage", "--nip", nip, "--amount", "5"}, 2, []string{"ref"}},
		{[]string{"list"}, 0, []string{"TOPUP", "TRF-1", "TRF-2", "TRF-3", "staged"}},
		{[]string{"cancel", id}, 0, []string{"cancelled"}},
		{[]string{"cancel", id}, 1, []string{"state does not allow"}},
		{[]string{"cancel", "xyz"}, 2, []string{"32 hex digits"}},
		{[]string{"list", "--status", "cancelled"}, 0, []string{id, "TRF-1", "cancelled"}},
		{[]string{"list", "--status", "lost"}, 2, []string{"staged, authorised, applied or cancelled"}},
	} {
		code, out := topup(c.args...)
		if code != c.code {
			t.Errorf("topup %q = %d, want %d:\n%s", c.args, code, c.code, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("topup %q: no %q in\n%s", c.args, w, out)
			}
		}
	}
	if _, out := topup("list", "--status", "cancelled"); strings.Contains(out, "TRF-2") {
		t.Errorf("the filter lets another state through:\n%s", out)
	}
}

// `topup stage` without --topup-monthly-limit applies the limit serve
// saved in the store; the flag overrides it; stage and cancel are in the
// audit log with actor "cli".
func TestTopUpStageServeLimit(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bo.db")
	st, err := backoffice.OpenBolt(db)
	if err != nil {
		t.Fatal(err)
	}
	serve, err := backoffice.New(st, backoffice.Config{CA: x509.NewCertPool(), TopUp: backoffice.TopUpConfig{MonthlyLimit: 1000}})
	if err == nil {
		err = serve.SaveTopUpSettings(context.Background())
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	topup := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := clikit.Main(rootCommand(&out, &errOut), append(append([]string{"topup"}, args...), "--db", db), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	const nip = "196608011988031001"
	if code, out := topup("stage", "--nip", nip, "--amount", "1001", "--ref", "TRF-1"); code != 1 || !strings.Contains(out, "Rp 0 of Rp 1000") {
		t.Errorf("over serve's limit: exit %d:\n%s", code, out)
	}
	code, out := topup("stage", "--nip", nip, "--amount", "1000", "--ref", "TRF-1")
	if code != 0 {
		t.Fatalf("within serve's limit: exit %d:\n%s", code, out)
	}
	id := regexp.MustCompile(`top-up ([0-9a-f]{32}) staged`).FindStringSubmatch(out)[1]
	if code, out := topup("stage", "--nip", nip, "--amount", "1", "--ref", "TRF-2", "--topup-monthly-limit", "2000"); code != 0 {
		t.Errorf("an explicit limit: exit %d:\n%s", code, out)
	}
	if code, out := topup("cancel", id); code != 0 {
		t.Errorf("cancel: exit %d:\n%s", code, out)
	}
	st, err = backoffice.OpenBolt(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log, err := st.AuditLog(context.Background(), backoffice.AuditQuery{Account: "cli", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		got = append(got, e.Action+" "+e.Target)
	}
	if len(got) != 3 || got[0] != backoffice.AuditTopUpCancel+" "+id || got[2] != backoffice.AuditTopUpStage+" "+id {
		t.Errorf("audit log of cli: %q", got)
	}
}
