package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kpe-agent/internal/clikit"
)

// kpe-backoffice settlement on a bbolt file: a past day's CSV is the
// header and a trailer of zeros with the SHA-256 of the header; the XLSX
// goes to a new file; a bad format or date is a usage error or refused;
// a day not over is refused; serve's --purse-keys-lab needs --purse-keys.
func TestSettlementCommand(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "bo.db")
	settle := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := clikit.Main(rootCommand(&out, &errOut), append(append([]string{"settlement"}, args...), "--db", db), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := settle("--date", "2026-03-02")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(lines) != 2 || lines[0][0] != "settlement_date" || lines[1][0] != "TOTAL" || lines[1][3] != "0" {
		t.Fatalf("settlement CSV %q (%v)", out, err)
	}
	xlsx := filepath.Join(dir, "s.xlsx")
	if code, _, errOut := settle("--date", "2026-03-02", "--format", "xlsx", "--out", xlsx); code != 0 {
		t.Fatalf("xlsx: exit %d: %s", code, errOut)
	}
	if b, err := os.ReadFile(xlsx); err != nil || !bytes.HasPrefix(b, []byte("PK")) {
		t.Fatalf("xlsx file: %v", err)
	}
	if code, _, _ := settle("--date", "2026-03-02", "--format", "xlsx", "--out", xlsx); code != 1 {
		t.Errorf("an existing --out: exit %d, want 1", code)
	}
	if code, _, _ := settle("--date", "2026-03-02", "--format", "pdf"); code != 2 {
		t.Errorf("--format pdf: exit %d, want 2", code)
	}
	if code, _, _ := settle(); code != 2 {
		t.Errorf("no --date: exit %d, want 2", code)
	}
	if code, _, errOut := settle("--date", "2026-3-2"); code != 1 || !strings.Contains(errOut, "YYYY-MM-DD") {
		t.Errorf("--date 2026-3-2: exit %d: %s", code, errOut)
	}
	if code, _, errOut := settle("--date", "2999-01-01"); code != 1 || !strings.Contains(errOut, "not over") {
		t.Errorf("a day not over: exit %d: %s", code, errOut)
	}
	p := purseKeyFlags{lab: true}
	if _, err := p.load(); err == nil {
		t.Error("--purse-keys-lab without --purse-keys accepted")
	}
	keys := filepath.Join(dir, "purse-keys.json")
	if err := os.WriteFile(keys, []byte(`{"debit_master": "000102030405060708090a0b0c0d0e0f", "credit_master": "000102030405060708090a0b0c0d0e0f"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	p = purseKeyFlags{path: keys}
	if _, err := p.load(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a readable keys file: %v", err)
	}
	p.lab = true
	if k, err := p.load(); err != nil || len(k.Debit) != 16 {
		t.Errorf("lab keys: %v", err)
	}
}

// kpe-backoffice purse recheck: --purse-keys is required (usage, 2); with
// the keys on a store with no unchecked rows it checks nothing.
func TestPurseRecheckCommand(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "bo.db")
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := clikit.Main(rootCommand(&out, &errOut), append(append([]string{"purse", "recheck"}, args...), "--db", db), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := run(); code != 2 || !strings.Contains(out, "--purse-keys is required") {
		t.Errorf("no keys: exit %d: %s", code, out)
	}
	keys := filepath.Join(dir, "purse-keys.json")
	if err := os.WriteFile(keys, []byte(`{"debit_master": "000102030405060708090a0b0c0d0e0f", "credit_master": "000102030405060708090a0b0c0d0e0f"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := run("--purse-keys", keys); code != 0 || !strings.Contains(out, "0 proofs verified, 0 bad") {
		t.Errorf("recheck: exit %d: %s", code, out)
	}
}
