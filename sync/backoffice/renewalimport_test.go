package backoffice_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/kpedata"
	"kpe-agent/sync/backoffice"
)

// The two sample files hold the same changes: an employment change for
// one NIP, a family and benefits change for another.
func TestRenewalParseSamples(t *testing.T) {
	for _, format := range []string{backoffice.FormatCSV, backoffice.FormatJSON} {
		t.Run(format, func(t *testing.T) {
			f, err := os.Open("testdata/renewal/changes." + format)
			require.NoError(t, err)
			defer f.Close()
			changes, err := backoffice.ParseRenewals(format, f)
			require.NoError(t, err)
			require.Len(t, changes, 2)

			a := changes[0]
			assert.Equal(t, "196608011988031001", a.NIP)
			assert.Nil(t, a.Family, "a group the change does not name stays as on the card")
			assert.Nil(t, a.Benefits)
			g := a.Groups()
			require.Equal(t, []int{2}, keys(g))
			e, err := kpedata.ParseEmployment(g[2])
			require.NoError(t, err, "the staged DG2 is what a card reader parses")
			assert.Equal(t, "III/c", e.GolonganRuang)
			assert.Equal(t, "20261001", e.TMTPangkat)
			assert.Equal(t, []kpedata.WorkUnit{{Level: 1, Name: "Kantor Regional I"}, {Level: 2, Name: "Bidang Mutasi"}}, e.WorkUnits)
			assert.Equal(t, "Yogyakarta", e.WorkLocation)

			b := changes[1]
			g = b.Groups()
			require.Equal(t, []int{3, 4}, keys(g))
			fam, err := kpedata.ParseFamily(g[3])
			require.NoError(t, err)
			require.Len(t, fam.Members, 2)
			assert.True(t, fam.Members[0].Spouse)
			assert.Equal(t, "3404015501780002", fam.Members[0].NIK)
			assert.True(t, fam.Members[0].Dependant)
			assert.False(t, fam.Members[1].Spouse)
			assert.Equal(t, "4b50452d00000101", fam.Members[1].TambahanCard)
			ben, err := kpedata.ParseBenefits(g[4])
			require.NoError(t, err)
			assert.Equal(t, "********4321", ben.AccountMasked)
			assert.Equal(t, "AKTIF", ben.TaperumStatus)
		})
	}
	// the two formats stage the same bytes
	csvF, _ := os.ReadFile("testdata/renewal/changes.csv")
	jsonF, _ := os.ReadFile("testdata/renewal/changes.json")
	c1, err := backoffice.ParseRenewals("csv", strings.NewReader(string(csvF)))
	require.NoError(t, err)
	c2, err := backoffice.ParseRenewals("json", strings.NewReader(string(jsonF)))
	require.NoError(t, err)
	for i := range c1 {
		assert.Equal(t, c1[i].Groups(), c2[i].Groups(), "change %d", i)
	}
}

func keys(m map[int][]byte) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

const (
	csvHeader = "nip,groups,status,pangkat,golongan_ruang,tmt_pangkat,jabatan,tmt_jabatan,parent_agency,working_agency,work_location,bpjs_number,bank,account_masked,member_1_kind,member_1_name,member_1_nik,member_1_birth_date,member_1_relation"
	csvGood   = "196608011988031001,employment,PNS,Penata,III/c,20261001,Analis,20261001,BKN,Kanreg I,Yogyakarta,,,,,,,,"
)

// csvRow is csvGood with columns replaced (index → value).
func csvRow(nip string, repl map[int]string) string {
	cols := strings.Split(csvGood, ",")
	cols[0] = nip
	for i, v := range repl {
		cols[i] = v
	}
	return strings.Join(cols, ",")
}

const jsonEmployment = `{"status":"PNS","pangkat":"Penata","golongan_ruang":"III/c","tmt_pangkat":"20261001","jabatan":"Analis","parent_agency":"BKN","working_agency":"Kanreg I"}`

func jsonRow(nip, groups string) string { return `{"nip":"` + nip + `",` + groups + `}` }

// Every refusal names its row (the CSV line, the JSON index) and field.
func TestRenewalParseRefusals(t *testing.T) {
	const nip2 = "197501152000122002"
	cases := []struct {
		name, format, in string
		row              int
		field, reason    string
	}{
		{"empty", "csv", "  \n", -1, "", "empty"},
		{"empty json", "json", "", -1, "", "empty"},
		{"no rows", "json", "[]", -1, "", "no changes"},
		{"header only", "csv", csvHeader + "\n", -1, "", "no changes"},
		{"not an array", "json", `{"nip":"1"}`, -1, "", "want one JSON array"},
		{"trailing data", "json", `[] []`, -1, "", "data after the value"},
		{"unknown column", "csv", csvHeader + ",shoe_size\n" + csvGood + ",44\n", 1, "shoe_size", "unknown column"},
		{"duplicate column", "csv", "nip,groups,nip\n", 1, "nip", "column given twice"},
		{"no groups column", "csv", "nip,status\n196608011988031001,PNS\n", 1, "groups", "missing column"},
		{"unknown field", "json", `[` + jsonRow("196608011988031001", `"employment":`+jsonEmployment+`,"shoe":1`) + `]`, 0, "", "unknown field"},
		{"unknown nested field", "json", `[` + jsonRow("196608011988031001", `"benefits":{"bpjs_number":"1","iban":"x"}`) + `]`, 0, "benefits", "unknown field"},
		{"nip short", "csv", csvHeader + "\n" + csvRow("19660801198803100", nil) + "\n", 2, "nip", "want 18 digits"},
		{"nip letters", "json", `[` + jsonRow("19660801198803100X", `"employment":`+jsonEmployment) + `]`, 0, "nip", "want 18 digits"},
		{"nip missing", "csv", csvHeader + "\n" + csvRow("", nil) + "\n", 2, "nip", "missing"},
		{"duplicate nip", "csv", csvHeader + "\n" + csvGood + "\n" + csvGood + "\n", 3, "nip", "NIP also in row 2"},
		{"duplicate nip json", "json", `[` + jsonRow(nip2, `"employment":`+jsonEmployment) + `,` + jsonRow(nip2, `"employment":`+jsonEmployment) + `]`, 1, "nip", "NIP also in row 0"},
		{"golongan", "csv", csvHeader + "\n" + csvRow(nip2, map[int]string{4: "V/a"}) + "\n", 2, "golongan_ruang", "want I/a to IV/e"},
		{"golongan e", "csv", csvHeader + "\n" + csvRow(nip2, map[int]string{4: "III/e"}) + "\n", 2, "golongan_ruang", "want I/a to IV/e"},
		{"date not real", "csv", csvHeader + "\n" + csvRow(nip2, map[int]string{5: "20260230"}) + "\n", 2, "tmt_pangkat", "want a real date"},
		{"date format", "csv", csvHeader + "\n" + csvRow(nip2, map[int]string{7: "2026-10-01"}) + "\n", 2, "tmt_jabatan", "want a real date"},
		{"required missing", "csv", csvHeader + "\n" + csvRow(nip2, map[int]string{6: ""}) + "\n", 2, "jabatan", "missing"},
		{"status", "json", `[` + jsonRow(nip2, `"employment":`+strings.Replace(jsonEmployment, `"PNS"`, `"HONORER"`, 1)) + `]`, 0, "employment.status", "want CPNS, PNS or PENSIUN"},
		{"work unit level", "json", `[` + jsonRow(nip2, `"employment":`+strings.Replace(jsonEmployment, `}`, `,"work_units":[{"level":5,"name":"X"}]}`, 1)) + `]`, 0, "employment.work_units[0]", "want 1 to 4"},
		{"nik", "json", `[` + jsonRow(nip2, `"family":[{"kind":"child","name":"A","nik":"340401120310000","birth_date":"20100312","relation":"Anak"}]`) + `]`, 0, "family[0].nik", "want 16 digits"},
		{"member kind", "json", `[` + jsonRow(nip2, `"family":[{"kind":"cousin","name":"A","nik":"3404011203100003","birth_date":"20100312","relation":"Anak"}]`) + `]`, 0, "family[0].kind", "want spouse or child"},
		{"member birth date", "csv", csvHeader + "\n" + nip2 + ",family,,,,,,,,,,,,,child,A,3404011203100003,20101332,Anak\n", 2, "member_1_birth_date", "want a real date"},
		{"masked account shows digits", "csv", csvHeader + "\n" + nip2 + ",benefits,,,,,,,,,,0001,BRI,12344321,,,,,\n", 2, "account_masked", "masked but its last four digits"},
		{"masked account without bank", "json", `[` + jsonRow(nip2, `"benefits":{"bpjs_number":"1","account_masked":"****4321"}`) + `]`, 0, "benefits.bank", "missing (an account is given)"},
		{"column of a group not named", "csv", csvHeader + "\n" + csvRow(nip2, map[int]string{11: "0001"}) + "\n", 2, "bpjs_number", "does not name the benefits group"},
		{"no group", "json", `[{"nip":"` + nip2 + `"}]`, 0, "", "names no group"},
		{"null group", "json", `[` + jsonRow(nip2, `"family":null`) + `]`, 0, "family", "leave the group out"},
		{"unknown group", "csv", csvHeader + "\n" + csvRow(nip2, map[int]string{1: "employment;salary"}) + "\n", 2, "groups", "unknown group"},
		{"field count", "csv", csvHeader + "\n" + csvGood + ",extra\n", 2, "", "wrong number of fields"},
		{"bad quoting", "csv", csvHeader + "\n" + `196608011988031001,"employment` + "\n", 2, "", "extraneous or missing"},
		{"control character", "json", `[` + jsonRow(nip2, `"employment":`+strings.Replace(jsonEmployment, `"Analis"`, `"Ana\u0007lis"`, 1)) + `]`, 0, "employment.jabatan", "control character"},
		{"not utf-8", "csv", "nip,groups\n\xff\xfe\n", -1, "", "not UTF-8"},
		// encoding/json alone matches keys case-insensitively and lets the last of a duplicate win
		{"key twice", "json", `[` + jsonRow(nip2, `"nip":"`+nip2+`","employment":`+jsonEmployment) + `]`, 0, "nip", `key "nip" given twice`},
		{"key twice in another case", "json", `[` + jsonRow(nip2, `"Nip":"196608011988031001","employment":`+jsonEmployment) + `]`, 0, "Nip", `given twice (first as "nip")`},
		{"upper-case key", "json", `[{"NIP":"` + nip2 + `","employment":` + jsonEmployment + `}]`, 0, "NIP", "keys are lower-case"},
		{"group key in capitals", "json", `[` + jsonRow(nip2, `"Employment":`+jsonEmployment) + `]`, 0, "Employment", "keys are lower-case"},
		{"nested key twice", "json", `[` + jsonRow(nip2, `"employment":`+strings.Replace(jsonEmployment, `"status":"PNS"`, `"status":"PNS","status":"CPNS"`, 1)) + `]`, 0, "employment.status", "given twice"},
		{"nested key folded", "json", `[` + jsonRow(nip2, `"employment":`+strings.Replace(jsonEmployment, `"status"`, `"ſtatus"`, 1)) + `]`, 0, "employment.ſtatus", "keys are lower-case"},
		{"member key in capitals", "json", `[` + jsonRow(nip2, `"family":[{"kind":"child","name":"A","NIK":"3404011203100003","birth_date":"20100312","relation":"Anak"}]`) + `]`, 0, "family[0].NIK", "keys are lower-case"},
		{"work unit key twice", "json", `[` + jsonRow(nip2, `"employment":`+strings.Replace(jsonEmployment, `}`, `,"work_units":[{"level":1,"name":"A","level":2}]}`, 1)) + `]`, 0, "employment.work_units[0].level", "given twice"},
		{"dependant yes", "csv", dependantCSV("yes"), 2, "member_1_dependant", "want 1, Y or ya"},
		{"dependant true", "csv", dependantCSV("true"), 2, "member_1_dependant", "want 1, Y or ya"},
		{"dependant lower-case y", "csv", dependantCSV("y"), 2, "member_1_dependant", "want 1, Y or ya"},
		{"dependant no", "csv", dependantCSV("no"), 2, "member_1_dependant", "want 1, Y or ya"},
		{"spaces only", "json", `[` + jsonRow(nip2, `"employment":`+strings.Replace(jsonEmployment, `"Analis"`, `"   "`, 1)) + `]`, 0, "employment.jabatan", "missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			changes, err := backoffice.ParseRenewals(c.format, strings.NewReader(c.in))
			require.ErrorIs(t, err, backoffice.ErrImport)
			assert.Nil(t, changes, "nothing of a refused file")
			var ie *backoffice.ImportError
			require.True(t, errors.As(err, &ie))
			found := false
			for _, p := range ie.Problems {
				if p.Row == c.row && p.Field == c.field && strings.Contains(p.Reason, c.reason) {
					found = true
				}
			}
			assert.True(t, found, "want row %d field %q %q in %+v", c.row, c.field, c.reason, ie.Problems)
		})
	}
}

// dependantCSV is a family change whose one member's dependant column is d.
func dependantCSV(d string) string {
	return "nip,groups,member_1_kind,member_1_name,member_1_nik,member_1_birth_date,member_1_relation,member_1_dependant\n" +
		"197501152000122002,family,child,A,3404011203100003,20100312,Anak Kandung," + d + "\n"
}

// The CSV dependant column takes exactly the spellings docs/renewal.md
// gives: 1, Y, ya (dependant); 0, N, tidak or empty (not).
func TestRenewalParseDependant(t *testing.T) {
	for d, want := range map[string]bool{"1": true, "Y": true, "ya": true, "0": false, "N": false, "tidak": false, "": false, " ya ": true} {
		changes, err := backoffice.ParseRenewals("csv", strings.NewReader(dependantCSV(d)))
		require.NoError(t, err, "%q", d)
		fam, err := kpedata.ParseFamily(changes[0].Groups()[3])
		require.NoError(t, err)
		assert.Equal(t, want, fam.Members[0].Dependant, "%q", d)
	}
}

// Text values are trimmed in both formats: a JSON change whose values
// have spaces around them stages what the same values without them
// stage, as a CSV row with the spaces does.
func TestRenewalParseTrimsText(t *testing.T) {
	const nip = "197501152000122002"
	padded := func(s string) string { return strings.ReplaceAll(s, `":"`, `":"  `) }
	clean := `[` + jsonRow(nip, `"employment":`+strings.Replace(jsonEmployment, `}`, `,"work_units":[{"level":1,"name":"Kanreg I"}]}`, 1)+
		`,"family":[{"kind":"spouse","name":"Siti","nik":"3404015501780002","birth_date":"19780115","relation":"Istri","dependant":true}]`+
		`,"benefits":{"bpjs_number":"0001","bank":"BRI","account_masked":"****4321"}`) + `]`
	spaced := strings.ReplaceAll(padded(clean), `",`, ` \t",`)
	spaced = strings.ReplaceAll(spaced, `"}`, ` "}`)
	require.NotEqual(t, clean, spaced)
	want, err := backoffice.ParseRenewals("json", strings.NewReader(clean))
	require.NoError(t, err)
	got, err := backoffice.ParseRenewals("json", strings.NewReader(spaced))
	require.NoError(t, err, "%s", spaced)
	assert.Equal(t, nip, got[0].NIP)
	assert.Equal(t, want[0].Groups(), got[0].Groups())

	csvPadded := csvHeader + "\n" + strings.ReplaceAll(csvRow(nip, nil), ",", " , ") + "\n"
	fromCSV, err := backoffice.ParseRenewals("csv", strings.NewReader(csvPadded))
	require.NoError(t, err)
	fromJSON, err := backoffice.ParseRenewals("json", strings.NewReader(`[`+jsonRow(nip, `"employment":{"status":" PNS ","pangkat":" Penata ",`+
		`"golongan_ruang":" III/c ","tmt_pangkat":" 20261001 ","jabatan":" Analis ","tmt_jabatan":" 20261001 ","parent_agency":" BKN ",`+
		`"working_agency":" Kanreg I ","work_location":" Yogyakarta "}`)+`]`))
	require.NoError(t, err)
	assert.Equal(t, fromCSV[0].Groups(), fromJSON[0].Groups(), "the same rule in both formats")
}

// The renewal offer's query is decoded by the same strict helper: a key
// in another case, or given twice, is a bad query (400), not a match.
func TestRenewalOfferQueryStrictKeys(t *testing.T) {
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer st.Close()
	iss := newTestIssuer(t, "BKN")
	rl := newRenewalLab(t, newLab(t, st), iss)
	stage(t, rl.svc, "III/b")
	card := newTestCard(t, iss)
	good, err := json.Marshal(card.query())
	require.NoError(t, err)
	status, body := rl.ask(t, good)
	require.Equal(t, http.StatusOK, status, "%s", body)
	for name, q := range map[string]string{
		"upper-case key": strings.Replace(string(good), `"nip":`, `"NIP":`, 1),
		"key twice":      strings.Replace(string(good), `"nip":`, `"nip":"199001012015011001","nip":`, 1),
		"folded twice":   strings.Replace(string(good), `"sequence":`, `"Sequence":7,"sequence":`, 1),
	} {
		require.NotEqual(t, string(good), q, name)
		status, body := rl.ask(t, []byte(q))
		assert.Equal(t, http.StatusBadRequest, status, "%s: %s", name, body)
		assert.Equal(t, "bad-query", problemCode(t, body), name)
	}
}

// A file too large, and one with more problems than are listed.
func TestRenewalParseLimits(t *testing.T) {
	big := strings.Repeat(" ", backoffice.MaxRenewalImportBytes+1)
	_, err := backoffice.ParseRenewals("json", strings.NewReader(big))
	var ie *backoffice.ImportError
	require.ErrorAs(t, err, &ie)
	assert.Contains(t, ie.Problems[0].Reason, "larger than")

	var b strings.Builder
	b.WriteString(csvHeader + "\n")
	for i := range 150 {
		fmt.Fprintf(&b, "%s\n", csvRow(fmt.Sprintf("196608011988031%03d", i), map[int]string{4: "X/z"}))
	}
	_, err = backoffice.ParseRenewals("csv", strings.NewReader(b.String()))
	require.ErrorAs(t, err, &ie)
	assert.Len(t, ie.Problems, backoffice.MaxImportProblems)
	assert.Equal(t, 50, ie.More, "the problems beyond the list are counted")
	assert.Equal(t, 2, ie.Problems[0].Row)
	assert.Equal(t, 101, ie.Problems[99].Row)

	_, err = backoffice.ParseRenewals("xml", strings.NewReader("<x/>"))
	require.Error(t, err)
	assert.NotErrorIs(t, err, backoffice.ErrImport, "an unknown format is the caller's mistake, not the file's")
}

// A good import stages every change; a file with one bad row stages
// nothing, on both stores, and leaves what was staged before as it was.
func TestRenewalImportAllOrNothing(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		f, err := os.Open("testdata/renewal/changes.csv")
		require.NoError(t, err)
		defer f.Close()
		res, err := l.svc.ImportRenewals(ctx, "csv", f)
		require.NoError(t, err)
		require.Len(t, res.Updates, 2)
		assert.NotEqual(t, res.Updates[0].ID, res.Updates[1].ID)
		before, err := l.svc.RenewalUpdates(ctx, backoffice.RenewalFilter{})
		require.NoError(t, err)
		require.Len(t, before, 2)
		for _, u := range before {
			assert.Equal(t, backoffice.RenewalStaged, u.Status)
			assert.Equal(t, res.ImportID, u.ImportID)
		}
		one, err := l.svc.RenewalUpdates(ctx, backoffice.RenewalFilter{Limit: 1})
		require.NoError(t, err)
		assert.Equal(t, before[:1], one)

		// one good row for a new NIP, one for a staged NIP, one bad
		bad := csvHeader + "\n" + csvRow("198001012005011003", nil) + "\n" + csvRow("196608011988031001", map[int]string{4: "III/d"}) + "\n" +
			csvRow("198001012005011004", map[int]string{5: "20261301"}) + "\n"
		_, err = l.svc.ImportRenewals(ctx, "csv", strings.NewReader(bad))
		var ie *backoffice.ImportError
		require.ErrorAs(t, err, &ie)
		assert.Equal(t, []backoffice.RowProblem{{Row: 4, Field: "tmt_pangkat", Reason: `"20261301": want a real date as YYYYMMDD`}}, ie.Problems)
		after, err := l.svc.RenewalUpdates(ctx, backoffice.RenewalFilter{})
		require.NoError(t, err)
		assert.Equal(t, before, after, "nothing of the refused file is staged, nothing is superseded")
		counts, err := l.svc.RenewalCounts(ctx)
		require.NoError(t, err)
		assert.Equal(t, map[backoffice.RenewalStatus]int64{backoffice.RenewalStaged: 2}, counts)
	})
}

// A newer import for a NIP supersedes its staged update; the other NIPs'
// stay staged.
func TestRenewalSupersede(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		jsonF, err := os.ReadFile("testdata/renewal/changes.json")
		require.NoError(t, err)
		first, err := l.svc.ImportRenewals(ctx, "json", strings.NewReader(string(jsonF)))
		require.NoError(t, err)
		second, err := l.svc.ImportRenewals(ctx, "csv", strings.NewReader(csvHeader+"\n"+csvRow("196608011988031001", map[int]string{4: "III/d"})+"\n"))
		require.NoError(t, err)

		rs := l.store.(backoffice.RenewalStore)
		staged, err := rs.StagedRenewal(ctx, "196608011988031001")
		require.NoError(t, err)
		assert.Equal(t, second.Updates[0].ID, staged.ID)
		e, err := kpedata.ParseEmployment(staged.Groups[2])
		require.NoError(t, err)
		assert.Equal(t, "III/d", e.GolonganRuang)

		old, err := l.svc.RenewalUpdates(ctx, backoffice.RenewalFilter{Status: backoffice.RenewalSuperseded})
		require.NoError(t, err)
		require.Len(t, old, 1)
		assert.Equal(t, first.Updates[0].ID, old[0].ID)
		other, err := l.svc.RenewalUpdates(ctx, backoffice.RenewalFilter{NIP: "197501152000122002"})
		require.NoError(t, err)
		require.Len(t, other, 1)
		assert.Equal(t, backoffice.RenewalStaged, other[0].Status)
		_, err = rs.StagedRenewal(ctx, "199001012015011001")
		assert.ErrorIs(t, err, backoffice.ErrNotFound)
	})
}

func FuzzParseRenewals(f *testing.F) {
	for _, name := range []string{"changes.csv", "changes.json"} {
		b, err := os.ReadFile("testdata/renewal/" + name)
		require.NoError(f, err)
		f.Add(strings.TrimPrefix(name[len(name)-4:], "."), b)
	}
	f.Add("csv", []byte(csvHeader+"\n"+csvGood+"\n"))
	f.Add("json", []byte(`[`+jsonRow("196608011988031001", `"employment":`+jsonEmployment)+`]`))
	// the strict JSON keys and the CSV spellings
	f.Add("json", []byte(`[`+jsonRow("196608011988031001", `"nip":"196608011988031001","employment":`+jsonEmployment)+`]`))
	f.Add("json", []byte(`[{"NIP":"196608011988031001","Employment":`+jsonEmployment+`}]`))
	f.Add("json", []byte(`[`+jsonRow("196608011988031001", `"employment":`+strings.Replace(jsonEmployment, `"status"`, `"ſtatus"`, 1))+`]`))
	f.Add("json", []byte(`[`+jsonRow("196608011988031001", `"family":[{"kind":"child","kind":"spouse","name":"A","nik":"3404011203100003","birth_date":"20100312","relation":"Anak"}]`)+`]`))
	f.Add("json", []byte(`[`+jsonRow("196608011988031001", `"employment":`+strings.ReplaceAll(jsonEmployment, `":"`, `":" `))+`]`))
	f.Add("csv", []byte(dependantCSV("yes")))
	f.Add("csv", []byte(dependantCSV(" Y ")))
	f.Fuzz(func(t *testing.T, format string, in []byte) {
		if format != "csv" && format != "json" {
			format = "json"
		}
		changes, err := backoffice.ParseRenewals(format, strings.NewReader(string(in)))
		if err != nil {
			var ie *backoffice.ImportError
			if !errors.As(err, &ie) || len(ie.Problems) == 0 || len(ie.Problems) > backoffice.MaxImportProblems {
				t.Fatalf("a refusal is an ImportError with 1..%d problems: %v", backoffice.MaxImportProblems, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, c := range changes {
			if len(c.NIP) != 18 || seen[c.NIP] {
				t.Fatalf("accepted NIP %q", c.NIP)
			}
			seen[c.NIP] = true
			g := c.Groups()
			if len(g) == 0 {
				t.Fatal("accepted a change without a group")
			}
			// what is staged parses as a card reader parses it
			if b, ok := g[2]; ok {
				if _, err := kpedata.ParseEmployment(b); err != nil {
					t.Fatal(err)
				}
			}
			if b, ok := g[3]; ok {
				if _, err := kpedata.ParseFamily(b); err != nil {
					t.Fatal(err)
				}
			}
			if b, ok := g[4]; ok {
				if _, err := kpedata.ParseBenefits(b); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}
