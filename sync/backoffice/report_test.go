package backoffice_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
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
		rows, err := csv.NewReader(&buf).ReadAll()
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
		srv := httptest.NewServer(l.svc.StaffHandler(backoffice.StaffConfig{Zone: wib}))
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
	})
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
