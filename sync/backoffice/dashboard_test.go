package backoffice_test

import (
	"cmp"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/wire"
)

// wib is the report zone of these tests: UTC+7, like Asia/Jakarta.
var wib = time.FixedZone("WIB", 7*3600)

// pageSeed is one seeded record: its terminal, site, service and time.
type pageSeed struct {
	terminal, site, service string
	at                      time.Time
}

// seedPages stores records over three days before today (in WIB), of
// three terminals, three sites and three services, one of them at 00:30
// WIB (the previous day in UTC), and returns the first day and the seeds.
func seedPages(t *testing.T, l *lab) (time.Time, []pageSeed) {
	now := time.Now().In(wib)
	day0 := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, wib).AddDate(0, 0, -3)
	at := func(day int, hour, minute int) time.Time {
		return day0.AddDate(0, 0, day).Add(time.Duration(hour)*time.Hour + time.Duration(minute)*time.Minute)
	}
	seeds := []pageSeed{
		{"t-01", "pkm-a", "askes", at(0, 1, 0)},
		{"t-01", "pkm-a", "askes", at(0, 9, 15)},
		{"t-01", "pkm-a", "taspen", at(0, 23, 59)},
		{"t-02", "pkm-b", "askes", at(1, 0, 30)}, // 17:30 UTC the day before
		{"t-02", "pkm-b", "bapertarum", at(1, 12, 0)},
		{"t-03", "rs-c", "askes", at(2, 8, 0)},
		{"t-03", "rs-c", "taspen", at(2, 8, 30)},
		{"t-03", "rs-c", "taspen", at(2, 10, 0)},
	}
	for _, s := range seeds {
		r := baseRecord(s.terminal)
		r.SiteID, r.Service, r.Time = s.site, s.service, s.at
		l.ingest(l.seal(r, l.sam))
	}
	return day0, seeds
}

// The dashboard's numbers on both stores: per day (in the report zone)
// by service, by institution and by site, each adding up to the seeded
// records; a service scope; the verification hit rate from verified
// codes; the open alarms.
func TestDashboardCounts(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		day0, seeds := seedPages(t, l)
		today := day0.AddDate(0, 0, 3)
		d, err := l.svc.Dashboard(ctx, backoffice.DashboardQuery{From: day0, To: today, Zone: wib}, true, true)
		require.NoError(t, err)
		require.Len(t, d.Days, 4)
		assert.Equal(t, day0, d.Days[0])
		assert.Equal(t, int64(len(seeds)), d.Total)
		assert.Equal(t, map[string][]int64{"askes": {2, 1, 1, 0}, "taspen": {1, 0, 2, 0}, "bapertarum": {0, 1, 0, 0}}, d.ByService)
		assert.Equal(t, map[string][]int64{"pkm-a": {3, 0, 0, 0}, "pkm-b": {0, 2, 0, 0}, "rs-c": {0, 0, 3, 0}}, d.BySite)
		// pkm-a and pkm-b report under one institution (Config.Institutions)
		assert.Equal(t, map[string][]int64{"Dinkes Kota A": {3, 2, 0, 0}, "rs-c": {0, 0, 3, 0}}, d.ByInstitution)
		for _, m := range []map[string][]int64{d.ByService, d.BySite, d.ByInstitution} {
			var sum int64
			for _, days := range m {
				for _, n := range days {
					sum += n
				}
			}
			assert.Equal(t, int64(len(seeds)), sum, "the per-day counts add up to the records")
		}
		assert.Equal(t, int64(0), d.OpenAlarms)
		assert.Equal(t, []int64{0, 0, 0, 0}, d.Found)

		// a scoped view: only its service
		d, err = l.svc.Dashboard(ctx, backoffice.DashboardQuery{From: day0, To: today, Zone: wib, Services: []string{"taspen"}}, false, false)
		require.NoError(t, err)
		assert.Equal(t, map[string][]int64{"taspen": {1, 0, 2, 0}}, d.ByService)
		assert.Equal(t, int64(3), d.Total)
		assert.Nil(t, d.Found)
		assert.Equal(t, int64(-1), d.OpenAlarms)

		// one day only: the 00:30 record is on its WIB day
		d, err = l.svc.Dashboard(ctx, backoffice.DashboardQuery{From: day0.AddDate(0, 0, 1), To: day0.AddDate(0, 0, 1), Zone: wib}, false, false)
		require.NoError(t, err)
		assert.Equal(t, map[string][]int64{"askes": {1}, "bapertarum": {1}}, d.ByService)

		// verifications today: two found, one unknown; a typo is no lookup
		recs := l.records(1, "t-01")
		l.ingest(recs...)
		code := codeOf(t, recs[0])
		for _, c := range []string{code, code, "0000-0000-0000-0000", typo(code)} {
			_, err := l.svc.Verify(ctx, c)
			require.NoError(t, err)
		}
		l.conflict("taspen")
		d, err = l.svc.Dashboard(ctx, backoffice.DashboardQuery{From: day0, To: today, Zone: wib}, true, true)
		require.NoError(t, err)
		assert.Equal(t, []int64{0, 0, 0, 2}, d.Found)
		assert.Equal(t, []int64{0, 0, 0, 1}, d.NotFound)
		assert.Equal(t, int64(1), d.OpenAlarms)

		_, err = l.svc.Dashboard(ctx, backoffice.DashboardQuery{From: today, To: day0, Zone: wib}, false, false)
		assert.ErrorIs(t, err, backoffice.ErrRange)
		_, err = l.svc.Dashboard(ctx, backoffice.DashboardQuery{From: today.AddDate(-2, 0, 0), To: today, Zone: wib}, false, false)
		assert.ErrorIs(t, err, backoffice.ErrRange)
	})
}

// The terminals' rows on both stores: records, SAM serial and counter,
// gaps, the agent version and backlog an upload carried, and the silent
// filter on the last contact.
func TestTerminalRows(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		seedPages(t, l)
		// t-01 skips a counter: a gap on its SAM
		l.seal(baseRecord("t-01"), l.sam) // sealed, never sent
		r := baseRecord("t-01")
		last := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		r.Time = last
		backlog := int64(42)
		oldest := time.Now().Add(-26 * time.Hour).UTC().Truncate(time.Second)
		res, err := l.svc.Ingest(ctx, &wire.Batch{Certificates: [][]byte{l.sam.Cert}, Records: [][]byte{l.seal(r, l.sam)}, SentAt: time.Now(),
			Agent: "1.4.0", Backlog: &backlog, OldestQueued: oldest}, t01)
		require.NoError(t, err)
		assert.Equal(t, wire.Accepted, res.Results[0].Status)

		// t-04 was last heard two days ago (a back office whose clock
		// says so), with an empty batch
		old := time.Now().Add(-48 * time.Hour)
		past, err := backoffice.New(l.store, backoffice.Config{CA: l.ca.Pool(), Now: func() time.Time { return old }})
		require.NoError(t, err)
		_, err = past.Ingest(ctx, &wire.Batch{SentAt: old, Agent: "1.3.9"}, backoffice.Identity{Terminal: "t-04"})
		require.NoError(t, err)

		rows, err := l.svc.Terminals(ctx, backoffice.TerminalQuery{})
		require.NoError(t, err)
		require.Len(t, rows, 4)
		ids := []string{}
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
		assert.Equal(t, []string{"t-01", "t-02", "t-03", "t-04"}, ids)
		t1 := rows[0]
		assert.Equal(t, "pkm-a", t1.Site)
		assert.Equal(t, int64(4), t1.Records)
		assert.Equal(t, "1.4.0", t1.Agent)
		require.NotNil(t, t1.Backlog)
		assert.Equal(t, int64(42), *t1.Backlog)
		assert.True(t, oldest.Equal(t1.OldestQueued), "%v", t1.OldestQueued)
		assert.True(t, last.Equal(t1.LastRecord), "%v vs %v", t1.LastRecord, last)
		assert.WithinDuration(t, time.Now(), t1.LastContact, time.Minute)
		require.Len(t, t1.SAMs, 1)
		assert.Equal(t, "53414d0000000007", t1.SAMs[0].Serial)
		assert.Equal(t, uint32(10), t1.SAMs[0].LastCounter) // 8 seeded, one skipped, one sent
		assert.Equal(t, []wire.Range{{From: 9, To: 9}}, t1.SAMs[0].Gaps)
		ranges, missing := t1.Gaps()
		assert.Equal(t, 1, ranges)
		assert.Equal(t, int64(1), missing)
		assert.Nil(t, rows[1].Backlog, "t-02 sent no backlog")
		assert.Equal(t, "", rows[1].Agent)
		assert.WithinDuration(t, old, rows[3].LastContact, time.Second)
		assert.Equal(t, "1.3.9", rows[3].Agent)
		assert.Equal(t, int64(0), rows[3].Records)

		silent, err := l.svc.Terminals(ctx, backoffice.TerminalQuery{SilentSince: time.Now().Add(-24 * time.Hour)})
		require.NoError(t, err)
		require.Len(t, silent, 1)
		assert.Equal(t, "t-04", silent[0].ID)
		none, err := l.svc.Terminals(ctx, backoffice.TerminalQuery{SilentSince: time.Now().Add(-72 * time.Hour)})
		require.NoError(t, err)
		assert.Empty(t, none)

		// a later batch without the optional fields keeps what was said
		l.ingest(l.seal(baseRecord("t-01"), l.sam))
		rows, err = l.svc.Terminals(ctx, backoffice.TerminalQuery{})
		require.NoError(t, err)
		assert.Equal(t, "1.4.0", rows[0].Agent)
		require.NotNil(t, rows[0].Backlog)
		assert.Equal(t, int64(42), *rows[0].Backlog)
	})
}

// On bbolt a verification does not wait for the one writer (an ingest
// holding it): its counter is kept in memory, shown at once, written
// when the writer is free, and kept across a reopen.
func TestBoltVerificationCounterDoesNotWaitForIngest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bo.db")
	st, err := backoffice.OpenBolt(path)
	require.NoError(t, err)
	l := newLab(t, st)
	code := codesOf(t, l.ingest(l.serviceRecords(1, "t-01", "askes")...))[0]
	release := st.HoldWriter()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 5; i++ {
			v, err := l.svc.Verify(context.Background(), code)
			assert.NoError(t, err)
			assert.True(t, v.Valid)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // the writer is held for good: any bound tells
		t.Fatal("verifications wait for the writer")
	}
	total := func(st *backoffice.BoltStore) int64 {
		hours, err := st.VerificationHours(context.Background(), time.Now().Add(-2*time.Hour), time.Now().Add(time.Hour))
		require.NoError(t, err)
		var n int64
		for _, h := range hours {
			n += h.Found
		}
		return n
	}
	assert.EqualValues(t, 5, total(st), "counts not written yet are shown")
	release()
	require.NoError(t, st.Close())
	st, err = backoffice.OpenBolt(path)
	require.NoError(t, err)
	defer st.Close()
	assert.EqualValues(t, 5, total(st), "counts written by Close")
}

// The dashboard reads an hourly rollup kept in the ingest transaction;
// built once from the records already stored (PostgreSQL: migration 010,
// which also drops records_rec_time; bbolt: when the file is opened), it
// gives the same counts as the one kept by ingest, and ingest after it
// adds to it.
func TestAuthHoursRollupBackfill(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		day0, seeds := seedPages(t, l)
		from, to := day0.AddDate(0, 0, -1), day0.AddDate(0, 0, 5)
		hours := func(st backoffice.Store) []backoffice.HourCount {
			rows, err := st.(backoffice.PageStore).AuthHours(ctx, from, to, nil)
			require.NoError(t, err)
			slices.SortFunc(rows, func(a, b backoffice.HourCount) int {
				return cmp.Or(a.Hour.Compare(b.Hour), strings.Compare(a.Service, b.Service), strings.Compare(a.Site, b.Site))
			})
			return rows
		}
		kept := hours(l.store)
		var n int64
		for _, h := range kept {
			n += h.Count
		}
		require.Equal(t, int64(len(seeds)), n)

		var rebuilt backoffice.Store
		switch st := l.store.(type) {
		case *backoffice.BoltStore:
			re, err := st.ReopenWithoutAuthHours()
			require.NoError(t, err)
			t.Cleanup(func() { re.Close() })
			rebuilt = re
		case *backoffice.PGStore:
			require.NoError(t, st.UndoMigration010(ctx))
			re, err := backoffice.OpenPostgres(ctx, st.Pool().Config().ConnString())
			require.NoError(t, err)
			t.Cleanup(func() { re.Close() })
			var idx int
			require.NoError(t, re.Pool().QueryRow(ctx, "SELECT count(*) FROM pg_class WHERE relname = 'records_rec_time'").Scan(&idx))
			assert.Zero(t, idx, "migration 010 drops records_rec_time")
			rebuilt = re
		}
		assert.Equal(t, kept, hours(rebuilt), "the backfilled rollup")

		l.store = rebuilt
		var err error
		l.svc, err = backoffice.New(rebuilt, backoffice.Config{CA: l.ca.Pool()})
		require.NoError(t, err)
		before := len(hours(rebuilt))
		l.ingest(l.sealAt("t-01", day0.Add(-20*time.Hour), l.sam)) // an hour with no record yet
		after := hours(rebuilt)
		assert.Len(t, after, before+1, "ingest adds to the rebuilt rollup")
	})
}
