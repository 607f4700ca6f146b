package backoffice

import (
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"kpe-agent/sync/record"
)

// Semester is half a calendar year (the institution reports its use of NIK
// and KTP-el to Dukcapil every semester: docs/background.md §4).
type Semester struct {
	Year int
	Half int // 1: January–June, 2: July–December
}

// ParseSemester reads "2026-1" or "2026-2".
func ParseSemester(s string) (Semester, error) {
	var sem Semester
	if _, err := fmt.Sscanf(s, "%d-%d", &sem.Year, &sem.Half); err != nil || sem.Half < 1 || sem.Half > 2 || sem.Year < 2000 || sem.Year > 9999 ||
		s != fmt.Sprintf("%d-%d", sem.Year, sem.Half) {
		return Semester{}, fmt.Errorf("backoffice: semester %q: want YEAR-1 (January–June) or YEAR-2 (July–December)", s)
	}
	return sem, nil
}

func (s Semester) String() string { return fmt.Sprintf("%d-%d", s.Year, s.Half) }

// Bounds is the semester's [from, to) in the given zone (Indonesia reports
// in its own time; WIB by default).
func (s Semester) Bounds(loc *time.Location) (time.Time, time.Time) {
	from := time.Date(s.Year, time.Month(1+6*(s.Half-1)), 1, 0, 0, 0, 0, loc)
	return from, from.AddDate(0, 6, 0)
}

// ReportLine is one line of the semester report: a terminal's KTP-el use
// for one service, or a total (Terminal "TOTAL" per institution, and
// Institution "TOTAL" for everything).
type ReportLine struct {
	Semester               string
	Institution, Site      string
	Terminal, Service      string
	Uses                   int64 // authentications with a KTP-el
	DistinctNIK            int64 // distinct NIKs (by keyed hash)
	FingerPass, FingerFail int64
	FingerSkipped          int64
}

// Report builds the semester report: one line per institution, site,
// terminal and service, then a total per institution and a grand total.
// Distinct NIKs are counted over the line's scope (a NIK used at two
// terminals counts once in the institution's total).
func (s *Service) Report(ctx context.Context, sem Semester, loc *time.Location) ([]ReportLine, error) {
	from, to := sem.Bounds(loc)
	rows, err := s.store.Usage(ctx, from, to)
	if err != nil {
		return nil, err
	}
	type key struct{ inst, site, term, svc string }
	lines := map[key]*ReportLine{}
	subjects := map[key]map[string]bool{}
	add := func(k key, u UsageRow) {
		l := lines[k]
		if l == nil {
			l = &ReportLine{Semester: sem.String(), Institution: k.inst, Site: k.site, Terminal: k.term, Service: k.svc}
			lines[k], subjects[k] = l, map[string]bool{}
		}
		l.Uses += u.Count
		subjects[k][u.Subject] = true
		switch u.Fingerprint {
		case record.Pass:
			l.FingerPass += u.Count
		case record.Fail:
			l.FingerFail += u.Count
		default:
			l.FingerSkipped += u.Count
		}
	}
	for _, u := range rows {
		inst := s.cfg.Institutions[u.Site]
		if inst == "" {
			inst = u.Site
		}
		add(key{inst, u.Site, u.Terminal, u.Service}, u)
		add(key{inst, "", "TOTAL", ""}, u)
		add(key{"TOTAL", "", "", ""}, u)
	}
	var out []ReportLine
	for k, l := range lines {
		l.DistinctNIK = int64(len(subjects[k]))
		out = append(out, *l)
	}
	rank := func(l ReportLine) int {
		switch {
		case l.Institution == "TOTAL":
			return 2
		case l.Terminal == "TOTAL":
			return 1
		}
		return 0
	}
	slices.SortFunc(out, func(a, b ReportLine) int {
		if a.Institution == "TOTAL" || b.Institution == "TOTAL" {
			return cmp.Compare(rank(a), rank(b))
		}
		return cmp.Or(cmp.Compare(a.Institution, b.Institution), cmp.Compare(rank(a), rank(b)),
			cmp.Compare(a.Site, b.Site), cmp.Compare(a.Terminal, b.Terminal), cmp.Compare(a.Service, b.Service))
	})
	return out, nil
}

// ReportHeader is the CSV header of the semester report.
var ReportHeader = []string{"semester", "institution", "site", "terminal", "service", "ktpel_uses", "distinct_nik",
	"fingerprint_pass", "fingerprint_fail", "fingerprint_skipped"}

// Cells are a report line's cells in ReportHeader's order: text as
// string, counts as int64. It is the one place that turns a line into a
// row; WriteReportCSV and WriteReportXLSX both write what it returns.
func (l ReportLine) Cells() []any {
	return []any{l.Semester, l.Institution, l.Site, l.Terminal, l.Service, l.Uses, l.DistinctNIK,
		l.FingerPass, l.FingerFail, l.FingerSkipped}
}

// WriteReportCSV writes the report as CSV (RFC 4180) with a header line.
// It holds counts only: no NIK, no hash, no name. A text cell that would
// start a spreadsheet formula is quoted (cell).
func WriteReportCSV(w io.Writer, lines []ReportLine) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(ReportHeader); err != nil {
		return err
	}
	row := make([]string, len(ReportHeader))
	for _, l := range lines {
		for i, c := range l.Cells() {
			switch c := c.(type) {
			case string:
				row[i] = cell(c)
			case int64:
				row[i] = strconv.FormatInt(c, 10)
			default:
				return fmt.Errorf("backoffice: report cell %d of type %T", i, c)
			}
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// cell keeps a spreadsheet from reading a text cell as a formula (ids
// come from terminal configuration).
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
