package backoffice

import (
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"kpe-agent/internal/kpedata"
	"kpe-agent/internal/strictjson"
)

// The import of personnel changes for card data renewal (docs/renewal.md,
// "Import format"): per NIP, the new contents of the data groups that
// changed in SAPK (DG2 employment, DG3 family, DG4 benefits). A change
// replaces each group it names, whole; a group it does not name stays as
// the card holds it. Parsing is strict and all-or-nothing: every problem
// is reported with its row, and a file with any problem stages nothing.

// Limits of one import.
const (
	// MaxRenewalImportBytes bounds an import file.
	MaxRenewalImportBytes = 8 << 20
	// MaxRenewalImportRows bounds the changes in one file.
	MaxRenewalImportRows = 20000
	// MaxImportProblems is how many problems an ImportError lists; More
	// counts the ones left off.
	MaxImportProblems = 100
	// MaxFamilyMembers bounds the members of a DG3 in an import.
	MaxFamilyMembers = 16
	// maxImportText bounds a text field, in characters.
	maxImportText = 200
)

// ErrImport is matched by every refused import (*ImportError).
var ErrImport = errors.New("backoffice: renewal import refused")

// RowProblem is one reason an import was refused. Row is the CSV line (the
// header is line 1) or the JSON array index (from 0); -1 for the file as a
// whole.
type RowProblem struct {
	Row    int
	Field  string
	Reason string
}

func (p RowProblem) String() string {
	where := "file"
	if p.Row >= 0 {
		where = "row " + strconv.Itoa(p.Row)
	}
	if p.Field != "" {
		where += " " + p.Field
	}
	return where + ": " + p.Reason
}

// ImportError lists why an import was refused (at most
// MaxImportProblems; More counts the others). Nothing was staged.
type ImportError struct {
	Problems []RowProblem
	More     int
}

func (e *ImportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "backoffice: renewal import refused (%d problems)", len(e.Problems)+e.More)
	for i, p := range e.Problems {
		if i == 3 {
			b.WriteString("; …")
			break
		}
		b.WriteString("; " + p.String())
	}
	return b.String()
}

func (e *ImportError) Unwrap() error { return ErrImport }

// problems collects RowProblems up to MaxImportProblems.
type problems struct{ e ImportError }

func (p *problems) add(row int, field, format string, args ...any) {
	if len(p.e.Problems) == MaxImportProblems {
		p.e.More++
		return
	}
	p.e.Problems = append(p.e.Problems, RowProblem{Row: row, Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (p *problems) err() error {
	if len(p.e.Problems) == 0 {
		return nil
	}
	e := p.e
	return &e
}

// RenewalChange is one NIP's change: the groups it replaces (nil: left as
// on the card).
type RenewalChange struct {
	Row        int // where it was in the file (RowProblem.Row)
	NIP        string
	Employment *kpedata.Employment
	Family     *kpedata.Family
	Benefits   *kpedata.Benefits
}

// Groups encodes the groups the change names (DG number → EF content).
func (c RenewalChange) Groups() map[int][]byte {
	g := map[int][]byte{}
	if c.Employment != nil {
		g[kpedata.DGEmployment] = c.Employment.Encode()
	}
	if c.Family != nil {
		g[kpedata.DGFamily] = c.Family.Encode()
	}
	if c.Benefits != nil {
		g[kpedata.DGBenefits] = c.Benefits.Encode()
	}
	return g
}

// Import formats.
const (
	FormatCSV  = "csv"
	FormatJSON = "json"
)

// ParseRenewals reads an import in format (FormatCSV or FormatJSON).
// Every problem found is in the *ImportError (ErrImport).
func ParseRenewals(format string, r io.Reader) ([]RenewalChange, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxRenewalImportBytes+1))
	if err != nil {
		return nil, err
	}
	var p problems
	switch {
	case len(raw) > MaxRenewalImportBytes:
		p.add(-1, "", "larger than %d bytes", MaxRenewalImportBytes)
		return nil, p.err()
	case len(bytes.TrimSpace(raw)) == 0:
		p.add(-1, "", "empty")
		return nil, p.err()
	case !utf8.Valid(raw):
		p.add(-1, "", "not UTF-8")
		return nil, p.err()
	}
	var changes []RenewalChange
	switch format {
	case FormatCSV:
		changes = parseCSV(raw, &p)
	case FormatJSON:
		changes = parseJSON(raw, &p)
	default:
		return nil, fmt.Errorf("backoffice: import format %q: csv or json", format)
	}
	if len(changes) > MaxRenewalImportRows {
		p.add(-1, "", "%d changes, at most %d in one file", len(changes), MaxRenewalImportRows)
	}
	if len(changes) == 0 && len(p.e.Problems) == 0 {
		p.add(-1, "", "no changes")
	}
	seen := map[string]int{}
	for _, c := range changes {
		if c.NIP == "" {
			continue
		}
		if first, dup := seen[c.NIP]; dup {
			p.add(c.Row, "nip", "NIP also in row %d", first)
			continue
		}
		seen[c.NIP] = c.Row
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return changes, nil
}

// Group names, in CSV's groups column and as JSON keys.
const (
	groupEmployment = "employment"
	groupFamily     = "family"
	groupBenefits   = "benefits"
)

// The import's field names (CSV columns; JSON keys within their group).
var (
	employmentFields = []string{"status", "pangkat", "golongan_ruang", "tmt_pangkat", "jabatan", "tmt_jabatan",
		"parent_agency", "working_agency", "unit_1", "unit_2", "unit_3", "unit_4", "work_location"}
	memberFields   = []string{"kind", "name", "nik", "birth_date", "relation", "dependant", "kpe_tambahan"}
	benefitsFields = []string{"bpjs_number", "taspen_number", "taperum_number", "taperum_status", "bank", "account_masked"}
)

// memberColumn is the CSV column of field f of family member n (from 1).
func memberColumn(n int, f string) string { return "member_" + strconv.Itoa(n) + "_" + f }

// csvColumns: every column a CSV may have → its group ("" for nip and
// groups).
var csvColumns = func() map[string]string {
	m := map[string]string{"nip": "", "groups": ""}
	for _, f := range employmentFields {
		m[f] = groupEmployment
	}
	for n := 1; n <= MaxFamilyMembers; n++ {
		for _, f := range memberFields {
			m[memberColumn(n, f)] = groupFamily
		}
	}
	for _, f := range benefitsFields {
		m[f] = groupBenefits
	}
	return m
}()

func parseCSV(raw []byte, p *problems) []RenewalChange {
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")) // a spreadsheet's BOM
	r := csv.NewReader(bytes.NewReader(raw))
	r.FieldsPerRecord = 0 // every row as long as the header
	header, err := r.Read()
	if err != nil {
		p.add(1, "", "header: %v", csvReason(err))
		return nil
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if _, ok := csvColumns[h]; !ok {
			p.add(1, h, "unknown column")
			continue
		}
		if _, dup := col[h]; dup {
			p.add(1, h, "column given twice")
			continue
		}
		col[h] = i
	}
	for _, need := range []string{"nip", "groups"} {
		if _, ok := col[need]; !ok {
			p.add(1, need, "missing column")
		}
	}
	if len(p.e.Problems) > 0 {
		return nil
	}
	var out []RenewalChange
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// FieldPos has nothing to say about a line the reader refused
			line := -1
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
			}
			p.add(line, "", "%s", csvReason(err))
			if !errors.Is(err, csv.ErrFieldCount) {
				return out // the reader cannot go on reliably
			}
			continue
		}
		line, _ := r.FieldPos(0)
		if len(out) == MaxRenewalImportRows {
			p.add(line, "", "more than %d changes in one file", MaxRenewalImportRows)
			return out
		}
		get := func(name string) string {
			if i, ok := col[name]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		c := RenewalChange{Row: line, NIP: get("nip")}
		checkNIP(p, line, "nip", c.NIP)
		named := map[string]bool{}
		for _, g := range strings.FieldsFunc(get("groups"), func(r rune) bool { return r == ';' || r == ',' || unicode.IsSpace(r) }) {
			switch g {
			case groupEmployment, groupFamily, groupBenefits:
				if named[g] {
					p.add(line, "groups", "%s named twice", g)
				}
				named[g] = true
			default:
				p.add(line, "groups", "unknown group %q (employment, family, benefits)", g)
			}
		}
		if len(named) == 0 {
			p.add(line, "groups", "names no group")
		}
		for name, i := range col {
			if g := csvColumns[name]; g != "" && !named[g] && strings.TrimSpace(rec[i]) != "" {
				p.add(line, name, "given, but the row does not name the %s group", g)
			}
		}
		if named[groupEmployment] {
			e := employmentOf(get)
			checkEmployment(p, line, "", &e)
			c.Employment = &e
		}
		if named[groupFamily] {
			f := kpedata.Family{}
			for n := 1; n <= MaxFamilyMembers; n++ {
				given := false
				for _, fl := range memberFields {
					given = given || get(memberColumn(n, fl)) != ""
				}
				if !given {
					continue
				}
				m := memberJSON{Kind: get(memberColumn(n, "kind")), Name: get(memberColumn(n, "name")), NIK: get(memberColumn(n, "nik")),
					BirthDate: get(memberColumn(n, "birth_date")), Relation: get(memberColumn(n, "relation")),
					KPETambahan: get(memberColumn(n, "kpe_tambahan"))}
				prefix := "member_" + strconv.Itoa(n) + "_"
				switch d := get(memberColumn(n, "dependant")); d { // exactly as docs/renewal.md spells them
				case "1", "Y", "ya":
					m.Dependant = true
				case "", "0", "N", "tidak":
				default:
					p.add(line, prefix+"dependant", "%q: want 1, Y or ya (dependant), or 0, N, tidak or empty (not)", d)
				}
				f.Members = append(f.Members, memberOf(p, line, prefix, m))
			}
			c.Family = &f
		}
		if named[groupBenefits] {
			b := kpedata.Benefits{BPJSNumber: get("bpjs_number"), TaspenNumber: get("taspen_number"), TaperumNumber: get("taperum_number"),
				TaperumStatus: get("taperum_status"), BankName: get("bank"), AccountMasked: get("account_masked")}
			checkBenefits(p, line, "", &b)
			c.Benefits = &b
		}
		out = append(out, c)
	}
	return out
}

func csvReason(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	if err == io.EOF {
		return "missing"
	}
	return err.Error()
}

func employmentOf(get func(string) string) kpedata.Employment {
	e := kpedata.Employment{Status: get("status"), Pangkat: get("pangkat"), GolonganRuang: get("golongan_ruang"),
		TMTPangkat: get("tmt_pangkat"), Jabatan: get("jabatan"), TMTJabatan: get("tmt_jabatan"),
		ParentAgency: get("parent_agency"), WorkingAgency: get("working_agency"), WorkLocation: get("work_location")}
	for level := 1; level <= 4; level++ {
		if name := get("unit_" + strconv.Itoa(level)); name != "" {
			e.WorkUnits = append(e.WorkUnits, kpedata.WorkUnit{Level: level, Name: name})
		}
	}
	return e
}

// The JSON format: an array of changes.
type changeJSON struct {
	NIP        string          `json:"nip"`
	Employment json.RawMessage `json:"employment"`
	Family     json.RawMessage `json:"family"`
	Benefits   json.RawMessage `json:"benefits"`
}

type employmentJSON struct {
	Status        string         `json:"status"`
	Pangkat       string         `json:"pangkat"`
	GolonganRuang string         `json:"golongan_ruang"`
	TMTPangkat    string         `json:"tmt_pangkat"`
	Jabatan       string         `json:"jabatan"`
	TMTJabatan    string         `json:"tmt_jabatan"`
	ParentAgency  string         `json:"parent_agency"`
	WorkingAgency string         `json:"working_agency"`
	WorkUnits     []workUnitJSON `json:"work_units"`
	WorkLocation  string         `json:"work_location"`
}

type workUnitJSON struct {
	Level int    `json:"level"`
	Name  string `json:"name"`
}

type memberJSON struct {
	Kind        string `json:"kind"` // spouse, child
	Name        string `json:"name"`
	NIK         string `json:"nik"`
	BirthDate   string `json:"birth_date"`
	Relation    string `json:"relation"`
	Dependant   bool   `json:"dependant"`
	KPETambahan string `json:"kpe_tambahan"`
}

type benefitsJSON struct {
	BPJSNumber    string `json:"bpjs_number"`
	TaspenNumber  string `json:"taspen_number"`
	TaperumNumber string `json:"taperum_number"`
	TaperumStatus string `json:"taperum_status"`
	Bank          string `json:"bank"`
	AccountMasked string `json:"account_masked"`
}

func present(raw json.RawMessage) bool { return len(raw) > 0 }

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func parseJSON(raw []byte, p *problems) []RenewalChange {
	var rows []json.RawMessage
	if err := strictjson.DecodeOne(raw, &rows); err != nil { // each row's keys are checked with the row
		p.add(-1, "", "want one JSON array of changes: %v", err)
		return nil
	}
	if len(rows) > MaxRenewalImportRows {
		p.add(-1, "", "%d changes, at most %d in one file", len(rows), MaxRenewalImportRows)
		return nil
	}
	var out []RenewalChange
	for i, row := range rows {
		if ps := strictjson.KeyProblems(row); len(ps) > 0 {
			for _, kp := range ps {
				p.add(i, kp.Field, "%s", kp.Reason)
			}
			out = append(out, RenewalChange{Row: i})
			continue
		}
		var cj changeJSON
		if err := strictjson.Decode(row, &cj); err != nil {
			p.add(i, "", "%v", err)
			out = append(out, RenewalChange{Row: i})
			continue
		}
		c := RenewalChange{Row: i, NIP: strings.TrimSpace(cj.NIP)}
		checkNIP(p, i, "nip", c.NIP)
		if !present(cj.Employment) && !present(cj.Family) && !present(cj.Benefits) {
			p.add(i, "", "names no group (employment, family, benefits)")
		}
		for _, g := range []struct {
			name string
			raw  json.RawMessage
		}{{groupEmployment, cj.Employment}, {groupFamily, cj.Family}, {groupBenefits, cj.Benefits}} {
			if present(g.raw) && isNull(g.raw) {
				p.add(i, g.name, "null: leave the group out to keep it as on the card")
			}
		}
		if present(cj.Employment) && !isNull(cj.Employment) {
			var ej employmentJSON
			if err := strictjson.Decode(cj.Employment, &ej); err != nil {
				p.add(i, groupEmployment, "%v", err)
			} else {
				trimText(&ej.Status, &ej.Pangkat, &ej.GolonganRuang, &ej.TMTPangkat, &ej.Jabatan, &ej.TMTJabatan,
					&ej.ParentAgency, &ej.WorkingAgency, &ej.WorkLocation)
				for k := range ej.WorkUnits {
					trimText(&ej.WorkUnits[k].Name)
				}
				e := kpedata.Employment{Status: ej.Status, Pangkat: ej.Pangkat, GolonganRuang: ej.GolonganRuang, TMTPangkat: ej.TMTPangkat,
					Jabatan: ej.Jabatan, TMTJabatan: ej.TMTJabatan, ParentAgency: ej.ParentAgency, WorkingAgency: ej.WorkingAgency,
					WorkLocation: ej.WorkLocation}
				levels := map[int]bool{}
				for k, u := range ej.WorkUnits {
					field := fmt.Sprintf("employment.work_units[%d]", k)
					if u.Level < 1 || u.Level > 4 {
						p.add(i, field, "level %d: want 1 to 4 (echelon)", u.Level)
					} else if levels[u.Level] {
						p.add(i, field, "level %d given twice", u.Level)
					}
					levels[u.Level] = true
					checkField(p, i, field+".name", u.Name, true)
					e.WorkUnits = append(e.WorkUnits, kpedata.WorkUnit{Level: u.Level, Name: u.Name})
				}
				slices.SortStableFunc(e.WorkUnits, func(a, b kpedata.WorkUnit) int { return a.Level - b.Level })
				checkEmployment(p, i, "employment.", &e)
				c.Employment = &e
			}
		}
		if present(cj.Family) && !isNull(cj.Family) {
			var members []memberJSON
			if err := strictjson.Decode(cj.Family, &members); err != nil {
				p.add(i, groupFamily, "want an array of members: %v", err)
			} else {
				f := kpedata.Family{}
				if len(members) > MaxFamilyMembers {
					p.add(i, groupFamily, "%d members, at most %d", len(members), MaxFamilyMembers)
				}
				for k, m := range members {
					trimText(&m.Kind, &m.Name, &m.NIK, &m.BirthDate, &m.Relation, &m.KPETambahan)
					f.Members = append(f.Members, memberOf(p, i, fmt.Sprintf("family[%d].", k), m))
				}
				c.Family = &f
			}
		}
		if present(cj.Benefits) && !isNull(cj.Benefits) {
			var bj benefitsJSON
			if err := strictjson.Decode(cj.Benefits, &bj); err != nil {
				p.add(i, groupBenefits, "%v", err)
			} else {
				trimText(&bj.BPJSNumber, &bj.TaspenNumber, &bj.TaperumNumber, &bj.TaperumStatus, &bj.Bank, &bj.AccountMasked)
				b := kpedata.Benefits{BPJSNumber: bj.BPJSNumber, TaspenNumber: bj.TaspenNumber, TaperumNumber: bj.TaperumNumber,
					TaperumStatus: bj.TaperumStatus, BankName: bj.Bank, AccountMasked: bj.AccountMasked}
				checkBenefits(p, i, "benefits.", &b)
				c.Benefits = &b
			}
		}
		out = append(out, c)
	}
	return out
}

// The field rules, shared by both formats.

// trimText trims the white space around text values, as the CSV reader's
// get does: in both formats a value is what is between its surrounding
// spaces, so " PNS " is PNS and "  " is missing.
func trimText(vs ...*string) {
	for _, v := range vs {
		*v = strings.TrimSpace(*v)
	}
}

var (
	golonganRE = regexp.MustCompile(`^(I|II|III)/[a-d]$|^IV/[a-e]$`)
	maskedRE   = regexp.MustCompile(`^\*{4,16}[0-9]{4}$`)
	digitsRE   = regexp.MustCompile(`^[0-9]+$`)
)

// Employment statuses.
var employmentStatuses = []string{"CPNS", "PNS", "PENSIUN"}

func checkNIP(p *problems, row int, field, nip string) {
	switch {
	case nip == "":
		p.add(row, field, "missing")
	case len(nip) != 18 || !digitsRE.MatchString(nip):
		p.add(row, field, "want 18 digits")
	}
}

// checkField: a required (or optional, when empty) text field of at most
// maxImportText characters without control characters.
func checkField(p *problems, row int, field, v string, required bool) {
	switch {
	case v == "":
		if required {
			p.add(row, field, "missing")
		}
	case utf8.RuneCountInString(v) > maxImportText:
		p.add(row, field, "longer than %d characters", maxImportText)
	case strings.ContainsFunc(v, unicode.IsControl):
		p.add(row, field, "contains a control character")
	}
}

// checkDate: YYYYMMDD, a real calendar date.
func checkDate(p *problems, row int, field, v string, required bool) {
	if v == "" {
		if required {
			p.add(row, field, "missing")
		}
		return
	}
	t, err := time.Parse("20060102", v)
	if err != nil || len(v) != 8 || t.Format("20060102") != v || t.Year() < 1900 {
		p.add(row, field, "%q: want a real date as YYYYMMDD", v)
	}
}

func checkEmployment(p *problems, row int, prefix string, e *kpedata.Employment) {
	switch {
	case e.Status == "":
		p.add(row, prefix+"status", "missing")
	case !slices.Contains(employmentStatuses, e.Status):
		p.add(row, prefix+"status", "%q: want CPNS, PNS or PENSIUN", e.Status)
	}
	checkField(p, row, prefix+"pangkat", e.Pangkat, true)
	switch {
	case e.GolonganRuang == "":
		p.add(row, prefix+"golongan_ruang", "missing")
	case !golonganRE.MatchString(e.GolonganRuang):
		p.add(row, prefix+"golongan_ruang", "%q: want I/a to IV/e", e.GolonganRuang)
	}
	checkDate(p, row, prefix+"tmt_pangkat", e.TMTPangkat, true)
	checkField(p, row, prefix+"jabatan", e.Jabatan, true)
	checkDate(p, row, prefix+"tmt_jabatan", e.TMTJabatan, false)
	checkField(p, row, prefix+"parent_agency", e.ParentAgency, true)
	checkField(p, row, prefix+"working_agency", e.WorkingAgency, true)
	checkField(p, row, prefix+"work_location", e.WorkLocation, false)
	if prefix == "" { // CSV: the unit columns
		for _, u := range e.WorkUnits {
			checkField(p, row, "unit_"+strconv.Itoa(u.Level), u.Name, true)
		}
	}
}

func memberOf(p *problems, row int, prefix string, m memberJSON) kpedata.Member {
	switch m.Kind {
	case "spouse", "child":
	case "":
		p.add(row, prefix+"kind", "missing")
	default:
		p.add(row, prefix+"kind", "%q: want spouse or child", m.Kind)
	}
	checkField(p, row, prefix+"name", m.Name, true)
	switch {
	case m.NIK == "":
		p.add(row, prefix+"nik", "missing")
	case len(m.NIK) != 16 || !digitsRE.MatchString(m.NIK):
		p.add(row, prefix+"nik", "want 16 digits")
	}
	checkDate(p, row, prefix+"birth_date", m.BirthDate, true)
	checkField(p, row, prefix+"relation", m.Relation, true)
	if m.KPETambahan != "" {
		if b, err := hex.DecodeString(m.KPETambahan); err != nil || len(b) != 8 {
			p.add(row, prefix+"kpe_tambahan", "want the card serial as 16 hex digits")
		}
	}
	return kpedata.Member{Spouse: m.Kind == "spouse", Name: m.Name, NIK: m.NIK, BirthDate: m.BirthDate, Relation: m.Relation,
		Dependant: m.Dependant, TambahanCard: strings.ToLower(m.KPETambahan)}
}

func checkBenefits(p *problems, row int, prefix string, b *kpedata.Benefits) {
	checkField(p, row, prefix+"bpjs_number", b.BPJSNumber, true)
	checkField(p, row, prefix+"taspen_number", b.TaspenNumber, false)
	checkField(p, row, prefix+"taperum_number", b.TaperumNumber, false)
	checkField(p, row, prefix+"taperum_status", b.TaperumStatus, false)
	checkField(p, row, prefix+"bank", b.BankName, false)
	switch {
	case b.AccountMasked == "":
		if b.BankName != "" {
			p.add(row, prefix+"account_masked", "missing (a bank is given)")
		}
	case !maskedRE.MatchString(b.AccountMasked):
		p.add(row, prefix+"account_masked", "want the account masked but its last four digits (****1234)")
	}
	if b.AccountMasked != "" && b.BankName == "" {
		p.add(row, prefix+"bank", "missing (an account is given)")
	}
}
