package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kpe-agent/internal/clikit"
)

// kpe-backoffice renewal import|list on a bbolt file: a good file is
// staged and listed; a bad one prints every problem with its row, exits
// 1 and stages nothing; a newer import supersedes.
func TestRenewalCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "bo.db")
	renewal := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := clikit.Main(rootCommand(&out, &errOut), append(append([]string{"renewal"}, args...), "--db", db), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, err := os.ReadFile("../../sync/backoffice/testdata/renewal/changes.json")
	if err != nil {
		t.Fatal(err)
	}
	const header = "nip,groups,status,pangkat,golongan_ruang,tmt_pangkat,jabatan,parent_agency,working_agency\n"
	bad := write("bad.csv", header+
		"196608011988031001,employment,PNS,Penata,III/d,20261001,Analis,BKN,Kanreg I\n"+
		"19660801198803100,employment,PNS,Penata,III/z,20261301,Analis,BKN,Kanreg I\n")
	promoted := write("promoted.txt", header+"196608011988031001,employment,PNS,Pembina,IV/a,20270401,Analis,BKN,Kanreg I\n")

	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"import", bad}, 1, []string{"row 3 nip: want 18 digits", "row 3 golongan_ruang", "row 3 tmt_pangkat", "3 problems, nothing staged"}},
		{[]string{"list"}, 0, []string{"UPDATE"}},
		{[]string{"import", write("changes.json", string(good))}, 0, []string{"196608011988031001  DG2", "197501152000122002  DG3,DG4", "2 updates staged"}},
		{[]string{"import", promoted}, 2, []string{`--format "txt"`}},
		{[]string{"import", "--format", "csv", promoted}, 0, []string{"1 updates staged"}},
		{[]string{"list", "--status", "superseded"}, 0, []string{"196608011988031001", "superseded"}},
		{[]string{"list", "--nip", "197501152000122002"}, 0, []string{"DG3,DG4", "staged"}},
		{[]string{"list", "--status", "lost"}, 2, []string{"staged, applied or superseded"}},
		{[]string{"import", filepath.Join(dir, "missing.csv")}, 1, []string{"no such file"}},
	} {
		code, out := renewal(c.args...)
		if code != c.code {
			t.Errorf("renewal %q = %d, want %d:\n%s", c.args, code, c.code, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("renewal %q lacks %q:\n%s", c.args, w, out)
			}
		}
	}
	_, list := renewal("list")
	if n := strings.Count(list, "\n"); n != 4 {
		t.Errorf("list: want a header and 3 updates (the bad file staged nothing):\n%s", list)
	}
	_, staged := renewal("list", "--status", "staged")
	if !strings.Contains(staged, "DG2") || strings.Count(staged, "\n") != 3 {
		t.Errorf("staged: want the promotion and the family change:\n%s", staged)
	}
}
