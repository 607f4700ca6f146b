package backoffice_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"

	"kpe-agent/internal/i18n"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

func TestSemesterReport(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		wib := time.FixedZone("WIB", 7*3600)
		key := []byte("institution key")
		ktp := func(site, terminal, service, nik string, fp record.Outcome, at time.Time) []byte {
			r := baseRecord(terminal)
			r.SiteID, r.Service, r.CardType = site, service, record.CardKTPel
			r.SubjectKind, r.Subject = record.SubjectNIKHash, record.NIKHash(key, nik)
			r.Fingerprint = record.Check{Outcome: fp}
			if fp != record.Pass {
				r.Fingerprint.Reason = "no-match"
			}
			r.Time = at
			return l.seal(r, l.sam)
		}
		in := time.Date(2026, 8, 3, 9, 0, 0, 0, wib)
		recs := [][]byte{
			ktp("pkm-a", "a-1", "askes", "3171010101900001", record.Pass, in),
			ktp("pkm-a", "a-1", "askes", "3171010101900001", record.Pass, in.Add(time.Hour)), // the same NIK again
			ktp("pkm-a", "a-1", "askes", "3171010101900002", record.Fail, in),
			ktp("pkm-a", "a-2", "taspen", "3171010101900001", record.Pass, in),
			ktp("pkm-b", "b-1", "askes", "3171010101900003", record.Skipped, in),
			ktp("pkm-c", "c-1", "askes", "3171010101900004", record.Pass, time.Date(2026, 12, 31, 23, 59, 0, 0, wib)),
			// outside the semester (in WIB): not counted
			ktp("pkm-c", "c-1", "askes", "3171010101900005", record.Pass, time.Date(2026, 6, 30, 23, 30, 0, 0, wib)),
			ktp("pkm-c", "c-1", "askes", "3171010101900006", record.Pass, time.Date(2027, 1, 1, 0, 0, 0, 0, wib)),
		}
		kpe := baseRecord("a-1") // a KPE: not in a KTP-el report
		kpe.Time = in
		recs = append(recs, l.seal(kpe, l.sam))
		for _, rec := range recs { // each from its own terminal
			for _, r := range l.ingest(rec) {
				require.Equal(t, "accepted", string(r.Status), r.Reason)
			}
		}

		sem, err := backoffice.ParseSemester("2026-2")
		require.NoError(t, err)
		lines, err := l.svc.Report(context.Background(), sem, wib)
		require.NoError(t, err)
		var buf bytes.Buffer
		require.NoError(t, backoffice.WriteReportCSV(&buf, lines))
		rows, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll() // buf stays whole for the checks below
		require.NoError(t, err)
		require.Equal(t, backoffice.ReportHeader, rows[0])
		got := map[string][]string{}
		for _, r := range rows[1:] {
			got[r[1]+"|"+r[2]+"|"+r[3]+"|"+r[4]] = r[5:]
		}
		want := map[string][]string{
			// uses, distinct NIK, fingerprint pass, fail, skipped
			"Dinkes Kota A|pkm-a|a-1|askes":  {"3", "2", "2", "1", "0"},
			"Dinkes Kota A|pkm-a|a-2|taspen": {"1", "1", "1", "0", "0"},
			"Dinkes Kota A|pkm-b|b-1|askes":  {"1", "1", "0", "0", "1"},
			"Dinkes Kota A||TOTAL|":          {"5", "3", "3", "1", "1"}, // NIK …01 at two terminals counts once
			"pkm-c|pkm-c|c-1|askes":          {"1", "1", "1", "0", "0"},
			"pkm-c||TOTAL|":                  {"1", "1", "1", "0", "0"},
			"TOTAL|||":                       {"6", "4", "4", "1", "1"},
		}
		assert.Equal(t, want, got)
		assert.Equal(t, "TOTAL", rows[len(rows)-1][1], "the grand total comes last")
		// the sum of the terminal lines is the grand total
		var sum int64
		for k, v := range got {
			if k != "TOTAL|||" && !bytes.Contains([]byte(k), []byte("TOTAL")) {
				n, _ := strconv.ParseInt(v[0], 10, 64)
				sum += n
			}
		}
		assert.Equal(t, int64(6), sum)
		assert.NotContains(t, buf.String(), "3171010101900001", "no NIK in the report")
		assert.NotContains(t, buf.String(), record.NIKHash(key, "3171010101900001"), "nor its hash")

		// the same over HTTP
		srv := httptest.NewServer(asStaff(t, l, l.svc.StaffHandler(backoffice.StaffConfig{Zone: wib})))
		defer srv.Close()
		resp, err := srv.Client().Get(srv.URL + "/v1/reports/semester?semester=2026-2")
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
		resp2, err := srv.Client().Get(srv.URL + "/v1/reports/semester?semester=2026-3")
		require.NoError(t, err)
		resp2.Body.Close()
		assert.Equal(t, 400, resp2.StatusCode)

		// The XLSX of the same lines: its cells are the CSV's rows.
		var xb bytes.Buffer
		require.NoError(t, backoffice.WriteReportXLSX(&xb, backoffice.ReportMeta{Semester: sem, Zone: wib}, lines))
		assert.Equal(t, rows, readReportXLSX(t, xb.Bytes(), sem))

		// and over HTTP, with the staff listener's headers
		body, h := getReport(t, srv, "semester=2026-2&format=xlsx", 200)
		assert.Equal(t, backoffice.XLSXType, h.Get("Content-Type"))
		assert.Equal(t, `attachment; filename="ktpel-usage-2026-2.xlsx"`, h.Get("Content-Disposition"))
		assert.Equal(t, "no-store", h.Get("Cache-Control"))
		assert.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
		assert.Equal(t, rows, readReportXLSX(t, body, sem))
		for q, title := range map[string]string{"": "Laporan Semester Penggunaan NIK dan KTP-el 2026-2", "&lang=en": "Semester Report on NIK and KTP-el Use 2026-2"} {
			body, _ := getReport(t, srv, "semester=2026-2&format=xlsx"+q, 200)
			f, err := excelize.OpenReader(bytes.NewReader(body))
			require.NoError(t, err)
			props, err := f.GetDocProps()
			require.NoError(t, err)
			f.Close()
			assert.Equal(t, title, props.Title, q)
			assert.Equal(t, "Institutions: Dinkes Kota A, pkm-c", strings.Replace(props.Subject, "Instansi:", "Institutions:", 1), q)
			assert.Contains(t, props.Description, "2026-07-01", q)
			assert.Contains(t, props.Description, "2026-12-31 (WIB, UTC+07:00)", q)
		}
		csvBody, h := getReport(t, srv, "semester=2026-2&format=csv", 200)
		assert.Equal(t, "text/csv; charset=utf-8", h.Get("Content-Type"))
		assert.Equal(t, `attachment; filename="ktpel-usage-2026-2.csv"`, h.Get("Content-Disposition"))
		assert.Equal(t, buf.String(), string(csvBody), "format=csv is the default's CSV")
	})
}

// TestSemesterReportEmpty: a semester with no KTP-el use is a header and
// nothing else, in both formats, over both stores.
func TestSemesterReportEmpty(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		kpe := baseRecord("a-1") // a KPE in the semester: not in the report
		kpe.Time = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
		for _, r := range l.ingest(l.seal(kpe, l.sam)) {
			require.Equal(t, "accepted", string(r.Status), r.Reason)
		}
		sem, err := backoffice.ParseSemester("2026-1")
		require.NoError(t, err)
		lines, err := l.svc.Report(context.Background(), sem, time.UTC)
		require.NoError(t, err)
		assert.Empty(t, lines)

		srv := httptest.NewServer(asStaff(t, l, l.svc.StaffHandler(backoffice.StaffConfig{})))
		defer srv.Close()
		csvBody, _ := getReport(t, srv, "semester=2026-1", 200)
		rows, err := csv.NewReader(bytes.NewReader(csvBody)).ReadAll()
		require.NoError(t, err)
		assert.Equal(t, [][]string{backoffice.ReportHeader}, rows)
		body, h := getReport(t, srv, "format=xlsx&semester=2026-1", 200)
		assert.Equal(t, backoffice.XLSXType, h.Get("Content-Type"))
		assert.Equal(t, [][]string{backoffice.ReportHeader}, readReportXLSX(t, body, sem))
	})
}

// TestSemesterReportBadFormat: a format other than csv and xlsx is a 400
// problem, and so is a bad semester whatever the format.
func TestSemesterReportBadFormat(t *testing.T) {
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	srv := httptest.NewServer(asStaff(t, l, l.svc.StaffHandler(backoffice.StaffConfig{})))
	defer srv.Close()
	for _, q := range []string{"format=pdf", "format=XLSX", "format=xls", "format=csv%00", "format=+xlsx"} {
		body, h := getReport(t, srv, "semester=2026-2&"+q, 400)
		var p wire.Problem
		require.NoError(t, json.Unmarshal(body, &p), q)
		assert.Equal(t, "bad-format", p.Error, q)
		assert.Equal(t, "application/json", h.Get("Content-Type"), q)
		assert.Empty(t, h.Get("Content-Disposition"), q)
	}
	body, _ := getReport(t, srv, "semester=2026-7&format=xlsx", 400)
	assert.Contains(t, string(body), "bad-semester")
}

// TestReportXLSXCells: the workbook's make-up, from lines written
// directly: typed cells (text as text, a formula-like id as plain text,
// counts as numbers), the sheet name, the frozen and filtered header,
// readable column widths, and the document properties in the asked
// language.
func TestReportXLSXCells(t *testing.T) {
	sem := backoffice.Semester{Year: 2026, Half: 2}
	long := strings.Repeat("Puskesmas Kecamatan ", 5)
	lines := []backoffice.ReportLine{
		{Semester: "2026-2", Institution: "Dinas Kesehatan Kota A", Site: "=cmd|' /C calc'!A0", Terminal: "a-1", Service: "askes",
			Uses: 1234567, DistinctNIK: 1000, FingerPass: 1200000, FingerFail: 34567},
		{Semester: "2026-2", Institution: "Taspen KC B", Site: long, Terminal: "-b-1", Service: "taspen", Uses: 2, DistinctNIK: 2, FingerSkipped: 2},
		{Semester: "2026-2", Institution: "Dinas Kesehatan Kota A", Terminal: "TOTAL", Uses: 1234567, DistinctNIK: 1000, FingerPass: 1200000, FingerFail: 34567},
		{Semester: "2026-2", Institution: "Taspen KC B", Terminal: "TOTAL", Uses: 2, DistinctNIK: 2, FingerSkipped: 2},
		{Semester: "2026-2", Institution: "TOTAL", Uses: 1234569, DistinctNIK: 1002, FingerPass: 1200000, FingerFail: 34567, FingerSkipped: 2},
	}
	var cb bytes.Buffer
	require.NoError(t, backoffice.WriteReportCSV(&cb, lines))
	want, err := csv.NewReader(&cb).ReadAll()
	require.NoError(t, err)
	assert.Equal(t, "'=cmd|' /C calc'!A0", want[1][2], "the CSV quotes a formula")
	for _, r := range want { // the XLSX holds the text itself, as text
		for i, c := range r {
			if len(c) > 1 && c[0] == '\'' && strings.ContainsRune("=+-@\t\r", rune(c[1])) {
				r[i] = c[1:]
			}
		}
	}
	created := time.Date(2027, 1, 5, 8, 30, 0, 0, time.UTC)
	var xb bytes.Buffer
	wib := time.FixedZone("WIB", 7*3600)
	require.NoError(t, backoffice.WriteReportXLSX(&xb, backoffice.ReportMeta{Semester: sem, Zone: wib, Lang: i18n.English, Created: created}, lines))
	assert.Equal(t, want, readReportXLSX(t, xb.Bytes(), sem))

	f, err := excelize.OpenReader(bytes.NewReader(xb.Bytes()))
	require.NoError(t, err)
	defer f.Close()
	sheet := backoffice.ReportSheetName(sem)
	assert.Equal(t, "KTP-el 2026-2", sheet)
	formula, err := f.GetCellFormula(sheet, "C2")
	require.NoError(t, err)
	assert.Empty(t, formula, "an id is never a formula")
	// a count is a number, shown with thousands separators
	v, err := f.GetCellValue(sheet, "F2")
	require.NoError(t, err)
	assert.Equal(t, "1,234,567", v)
	// readable widths: each column fits its longest cell, within bounds
	for i, min := range map[string]float64{"A": 8, "B": float64(len("Dinas Kesehatan Kota A")), "C": 48, "F": float64(len("1,234,567")), "J": float64(len("fingerprint_skipped"))} {
		w, err := f.GetColWidth(sheet, i)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, w, min, i)
		assert.LessOrEqual(t, w, 48.0, i)
	}
	panes, err := f.GetPanes(sheet)
	require.NoError(t, err)
	assert.True(t, panes.Freeze)
	assert.Equal(t, 1, panes.YSplit)
	// the header and the total rows are bold
	for _, ref := range []string{"A1", "J1", "D4", "F6", "B6"} {
		id, err := f.GetCellStyle(sheet, ref)
		require.NoError(t, err)
		st, err := f.GetStyle(id)
		require.NoError(t, err)
		require.NotNil(t, st.Font, ref)
		assert.True(t, st.Font.Bold, ref)
	}
	id, err := f.GetCellStyle(sheet, "F2")
	require.NoError(t, err)
	st, err := f.GetStyle(id)
	require.NoError(t, err)
	assert.True(t, st.Font == nil || !st.Font.Bold, "a terminal's line is not bold")

	props, err := f.GetDocProps()
	require.NoError(t, err)
	assert.Equal(t, "Semester Report on NIK and KTP-el Use 2026-2", props.Title)
	assert.Equal(t, "Institutions: Dinas Kesehatan Kota A, Taspen KC B", props.Subject)
	assert.Equal(t, "Period 2026-07-01 to 2026-12-31 (WIB, UTC+07:00)", props.Description)
	assert.Equal(t, "kpe-backoffice", props.Creator)
	assert.Equal(t, "2027-01-05T08:30:00Z", props.Created)
	assert.Equal(t, "en", props.Language)

	// Bahasa Indonesia by default
	xb.Reset()
	require.NoError(t, backoffice.WriteReportXLSX(&xb, backoffice.ReportMeta{Semester: backoffice.Semester{Year: 2026, Half: 1}}, nil))
	g, err := excelize.OpenReader(&xb)
	require.NoError(t, err)
	defer g.Close()
	props, err = g.GetDocProps()
	require.NoError(t, err)
	assert.Equal(t, "Laporan Semester Penggunaan NIK dan KTP-el 2026-1", props.Title)
	assert.Equal(t, "Periode 2026-01-01 s.d. 2026-06-30 (UTC, UTC+00:00)", props.Description)
	assert.Equal(t, "id-ID", props.Language)

	// bad input: an error, and nothing written
	xb.Reset()
	assert.Error(t, backoffice.WriteReportXLSX(&xb, backoffice.ReportMeta{}, nil), "no semester")
	assert.Error(t, backoffice.WriteReportXLSX(&xb, backoffice.ReportMeta{Semester: backoffice.Semester{Year: 2026, Half: 3}}, nil))
	assert.Error(t, backoffice.WriteReportXLSX(&xb, backoffice.ReportMeta{Semester: backoffice.Semester{Year: 2026, Half: 1}}, lines), "lines of 2026-2")
	assert.Zero(t, xb.Len())
}

// readReportXLSX opens a report workbook, checks it has the semester's
// one sheet and typed cells (the first five columns text, the rest
// numbers), and returns its rows as text.
func readReportXLSX(t *testing.T, body []byte, sem backoffice.Semester) [][]string {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(body))
	require.NoError(t, err)
	defer f.Close()
	sheet := backoffice.ReportSheetName(sem)
	require.Equal(t, []string{sheet}, f.GetSheetList())
	rows, err := f.GetRows(sheet, excelize.Options{RawCellValue: true})
	require.NoError(t, err)
	for r := range rows {
		for c := range backoffice.ReportHeader {
			ref, err := excelize.CoordinatesToCellName(c+1, r+1)
			require.NoError(t, err)
			typ, err := f.GetCellType(sheet, ref)
			require.NoError(t, err)
			if r == 0 || c < 5 {
				assert.NotContains(t, []excelize.CellType{excelize.CellTypeNumber, excelize.CellTypeUnset}, typ, "%s is text", ref)
			} else { // no t attribute: a number (ECMA-376 §18.18.11)
				assert.Contains(t, []excelize.CellType{excelize.CellTypeNumber, excelize.CellTypeUnset}, typ, "%s is a number", ref)
			}
		}
	}
	return rows
}

func getReport(t *testing.T, srv *httptest.Server, query string, status int) ([]byte, http.Header) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + "/v1/reports/semester?" + query)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, status, resp.StatusCode, "%s: %s", query, body)
	return body, resp.Header
}

func TestParseSemester(t *testing.T) {
	for _, bad := range []string{"", "2026", "2026-0", "2026-3", "26-1", "2026-1x", "2026-01"} {
		_, err := backoffice.ParseSemester(bad)
		assert.Error(t, err, bad)
	}
	s, err := backoffice.ParseSemester("2026-1")
	require.NoError(t, err)
	from, to := s.Bounds(time.UTC)
	assert.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), from)
	assert.Equal(t, time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), to)
}
