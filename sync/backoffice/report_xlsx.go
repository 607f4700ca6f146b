package backoffice

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"kpe-agent/internal/i18n"
)

// ReportMeta describes a semester report for its XLSX document
// properties: the semester and its zone (for the period's bounds), the
// language of the title and description, and when the file was made.
type ReportMeta struct {
	Semester Semester
	Zone     *time.Location // nil: UTC
	Lang     i18n.Lang      // of the title and description; "" is the default language
	Created  time.Time      // zero: now
}

// ReportSheetName is the name of the report's one sheet: it says the
// semester ("KTP-el 2026-2").
func ReportSheetName(s Semester) string { return "KTP-el " + s.String() }

// The column widths of the XLSX report, in characters: each column is as
// wide as its longest cell, within these bounds.
const (
	reportMinWidth = 8
	reportMaxWidth = 48
)

// WriteReportXLSX writes the report as an XLSX workbook of one sheet
// (ReportSheetName): row 1 is ReportHeader, then one row per line with
// the cells of ReportLine.Cells, in the same order as WriteReportCSV.
// Text cells are text (a spreadsheet never reads them as a formula, so
// they are not quoted as in the CSV); counts are numbers. There is no
// date cell: the semester is the text YEAR-1 or YEAR-2, and the period's
// bounds are ISO 8601 dates in the document's description. The title
// names the semester, the subject the institutions in the report. The
// header row is bold, frozen and filterable, total rows are bold, and
// each column is as wide as its longest cell.
//
// A semester that ParseSemester would not give, or a line of another
// semester, is an error and writes nothing.
func WriteReportXLSX(w io.Writer, m ReportMeta, lines []ReportLine) (err error) {
	if _, err := ParseSemester(m.Semester.String()); err != nil {
		return err
	}
	for _, l := range lines {
		if l.Semester != m.Semester.String() {
			return fmt.Errorf("backoffice: XLSX report of semester %s: a line of semester %q", m.Semester, l.Semester)
		}
	}
	loc := cmp.Or(m.Zone, time.UTC)
	created := m.Created
	if created.IsZero() {
		created = time.Now()
	}
	f := excelize.NewFile()
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("backoffice: XLSX report: %w", cerr)
		}
	}()
	wrap := func(err error) error { return fmt.Errorf("backoffice: XLSX report: %w", err) }

	sheet := ReportSheetName(m.Semester)
	if err := f.SetSheetName(f.GetSheetName(0), sheet); err != nil {
		return wrap(err)
	}
	from, to := m.Semester.Bounds(loc)
	zone, _ := from.Zone()
	var institutions []string
	for _, l := range lines {
		if l.Institution != "TOTAL" && !slices.Contains(institutions, l.Institution) {
			institutions = append(institutions, l.Institution)
		}
	}
	lang := m.Lang.OrDefault()
	if err := f.SetDocProps(&excelize.DocProperties{
		Title:   lang.T("staff.report.title", m.Semester.String()),
		Subject: lang.T("staff.report.subject", strings.Join(institutions, ", ")),
		Description: lang.T("staff.report.period", from.Format(time.DateOnly), to.AddDate(0, 0, -1).Format(time.DateOnly),
			zone, from.Format("-07:00")),
		Creator:  "kpe-backoffice",
		Created:  created.UTC().Format(time.RFC3339),
		Modified: created.UTC().Format(time.RFC3339),
		Language: map[i18n.Lang]string{i18n.Indonesian: "id-ID", i18n.English: "en"}[lang],
	}); err != nil {
		return wrap(err)
	}

	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return wrap(err)
	}
	// Counts with a thousands separator (built-in format 3, "#,##0"),
	// which the spreadsheet shows in its reader's locale.
	count, err := f.NewStyle(&excelize.Style{NumFmt: 3})
	if err != nil {
		return wrap(err)
	}
	boldCount, err := f.NewStyle(&excelize.Style{NumFmt: 3, Font: &excelize.Font{Bold: true}})
	if err != nil {
		return wrap(err)
	}

	rows := make([][]any, 0, len(lines))
	widths := make([]int, len(ReportHeader))
	for i, h := range ReportHeader {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, l := range lines {
		row := l.Cells()
		for i, c := range row {
			n := 0
			switch c := c.(type) {
			case string:
				n = utf8.RuneCountInString(c)
			case int64:
				d := len(strconv.FormatInt(c, 10))
				n = d + (d-1)/3 // with the thousands separators
			default:
				return wrap(fmt.Errorf("cell %d of type %T", i, c))
			}
			widths[i] = max(widths[i], n)
		}
		rows = append(rows, row)
	}

	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		return wrap(err)
	}
	for i, n := range widths {
		if err := sw.SetColWidth(i+1, i+1, float64(min(max(n+2, reportMinWidth), reportMaxWidth))); err != nil {
			return wrap(err)
		}
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return wrap(err)
	}
	header := make([]any, len(ReportHeader))
	for i, h := range ReportHeader {
		header[i] = excelize.Cell{StyleID: bold, Value: h}
	}
	if err := sw.SetRow("A1", header); err != nil {
		return wrap(err)
	}
	style := map[[2]bool]int{{false, false}: 0, {true, false}: bold, {false, true}: count, {true, true}: boldCount} // by {total, number}
	for r, row := range rows {
		total := lines[r].Institution == "TOTAL" || lines[r].Terminal == "TOTAL"
		cells := make([]any, len(row))
		for i, c := range row {
			_, number := c.(int64)
			cells[i] = excelize.Cell{StyleID: style[[2]bool{total, number}], Value: c}
		}
		ref, err := excelize.CoordinatesToCellName(1, r+2)
		if err != nil {
			return wrap(err)
		}
		if err := sw.SetRow(ref, cells); err != nil {
			return wrap(err)
		}
	}
	if err := sw.Flush(); err != nil {
		return wrap(err)
	}
	last, err := excelize.CoordinatesToCellName(len(ReportHeader), len(rows)+1)
	if err != nil {
		return wrap(err)
	}
	if err := f.AutoFilter(sheet, "A1:"+last, nil); err != nil {
		return wrap(err)
	}
	if _, err := f.WriteTo(w); err != nil {
		return wrap(err)
	}
	return nil
}

// XLSXType is the media type of an XLSX workbook.
const XLSXType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
