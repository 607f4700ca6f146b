package backoffice_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"kpe-agent/internal/pgtest"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// conflict sends a record of t-01 whose counter (2) is taken by a stored
// record with other content (service svc): a counter-conflict alarm.
func (l *lab) conflict(svc string) []byte {
	r := baseRecord("t-01")
	r.Service = svc
	r.PrevHash = l.prev["t-01"]
	r.Signer, r.SAMSerial = record.SignerSAM, samSerial
	r.Time = time.UnixMilli(time.Now().UnixMilli()).UTC()
	d, err := r.Digest()
	require.NoError(l.t, err)
	r.Counter, r.Signature = 2, l.sam.SignAt(d, 2)
	enc, err := r.Encode()
	require.NoError(l.t, err)
	assert.Equal(l.t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonConflict}, l.ingest(enc)[0])
	return enc
}

// staffCall sends method path with body (JSON) to h as a same-origin
// client without browser headers, on Host localhost.
func staffCall(h http.Handler, method, path, body string, hdr ...string) answer {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host = "localhost"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return answer{rec.Code, rec.Result().Header, rec.Body.String()}
}

func alarmList(t *testing.T, h http.Handler, query string) []wire.Alarm {
	t.Helper()
	a := staffCall(h, http.MethodGet, wire.PathAlarms+query, "")
	require.Equal(t, http.StatusOK, a.status, a.body)
	var out struct{ Alarms []wire.Alarm }
	require.NoError(t, json.Unmarshal([]byte(a.body), &out))
	for _, al := range out.Alarms {
		assert.Nil(t, al.History, "lists carry no history")
	}
	return out.Alarms
}

func alarmOf(t *testing.T, h http.Handler, id int64) wire.Alarm {
	t.Helper()
	a := staffCall(h, http.MethodGet, fmt.Sprintf("%s/%d", wire.PathAlarms, id), "")
	require.Equal(t, http.StatusOK, a.status, a.body)
	var out wire.Alarm
	require.NoError(t, json.Unmarshal([]byte(a.body), &out))
	return out
}

func ids(as []wire.Alarm) []int64 {
	out := []int64{}
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

// The life of an alarm on both stores, over the staff API: two conflicts
// raise two open alarms (newest first); one is acknowledged with a
// comment (204), moves from the open list to the acknowledged one, shows
// who and what in the list and its history in GET /v1/alarms/{id}; a
// second acknowledgement is 409 and changes nothing; the same conflict
// sent again raises nothing and does not reopen it; the open-alarms gauge
// counts only the open one. After a restart (the store opened again) the
// state, the history and the ids are the same, and a new alarm gets a new
// id.
func TestAlarmAcknowledged(t *testing.T) {
	reopenable(t, func(t *testing.T, open func() backoffice.Store) {
		st := open()
		l := newLab(t, st)
		hs := l.svc.StaffHandler(backoffice.StaffConfig{})
		h := signInAs(t, l.svc, hs, "siti.rahayu", []backoffice.Role{backoffice.RoleAuditor}).as(hs)
		l.ingest(l.records(2, "t-01")...)
		first := l.conflict("taspen")
		l.conflict("bapertarum")

		all := alarmList(t, h, "")
		require.Len(t, all, 2)
		assert.Greater(t, all[0].ID, all[1].ID, "newest first")
		assert.Equal(t, ids(all), ids(alarmList(t, h, "?state=open")))
		assert.Equal(t, ids(all), ids(alarmList(t, h, "?state=all")))
		assert.Empty(t, alarmList(t, h, "?state=acknowledged"))
		for _, a := range all {
			assert.Equal(t, wire.AlarmOpen, a.State)
			assert.Equal(t, wire.ReasonConflict, a.Kind)
			assert.Nil(t, a.Acknowledged)
		}
		older, newer := all[1], all[0]
		m := scrape(t, l.svc)
		assert.Equal(t, 2.0, m[`kpe_backoffice_alarms_open{kind="counter-conflict"}`])

		before := time.Now().UTC().Truncate(time.Millisecond)
		ack := `{"comment": "SAM t-01 diganti; kartu lama dikembalikan ke BKN"}`
		a := staffCall(h, http.MethodPost, fmt.Sprintf("%s/%d/ack", wire.PathAlarms, older.ID), ack)
		require.Equal(t, http.StatusNoContent, a.status, a.body)
		assert.Empty(t, a.body)

		check := func(t *testing.T, h http.Handler) {
			assert.Equal(t, []int64{newer.ID}, ids(alarmList(t, h, "?state=open")))
			acked := alarmList(t, h, "?state=acknowledged")
			require.Len(t, acked, 1)
			assert.Equal(t, older.ID, acked[0].ID)
			assert.Equal(t, wire.AlarmAcknowledged, acked[0].State)
			require.NotNil(t, acked[0].Acknowledged)
			assert.Equal(t, "siti.rahayu", acked[0].Acknowledged.By)
			assert.Equal(t, "SAM t-01 diganti; kartu lama dikembalikan ke BKN", acked[0].Acknowledged.Comment)
			assert.Equal(t, []int64{newer.ID, older.ID}, ids(alarmList(t, h, "")))
			assert.Equal(t, []int64{newer.ID}, ids(alarmList(t, h, "?limit=1")))

			full := alarmOf(t, h, older.ID)
			assert.Equal(t, older.ID, full.ID)
			assert.Equal(t, older.Kind, full.Kind)
			assert.Equal(t, older.Counter, full.Counter)
			assert.Equal(t, wire.AlarmAcknowledged, full.State)
			require.Len(t, full.History, 2, "%+v", full.History)
			assert.Equal(t, wire.AlarmEvent{Type: wire.AlarmEventRaised, At: older.At}, full.History[0])
			assert.Equal(t, wire.AlarmEventAcknowledged, full.History[1].Type)
			assert.Equal(t, "siti.rahayu", full.History[1].By)
			assert.Equal(t, "SAM t-01 diganti; kartu lama dikembalikan ke BKN", full.History[1].Comment)
			assert.False(t, full.History[1].At.Before(before), "%v before %v", full.History[1].At, before)
			assert.WithinDuration(t, time.Now(), full.History[1].At, time.Minute)
			assert.Equal(t, full.History[1], *full.Acknowledged)

			open := alarmOf(t, h, newer.ID)
			assert.Equal(t, wire.AlarmOpen, open.State)
			assert.Equal(t, []wire.AlarmEvent{{Type: wire.AlarmEventRaised, At: newer.At}}, open.History)
		}
		check(t, h)

		// a second acknowledgement, by someone else: 409, nothing kept
		a = staffCall(h, http.MethodPost, fmt.Sprintf("%s/%d/ack", wire.PathAlarms, older.ID), `{"comment": "cek ulang"}`)
		assert.Equal(t, http.StatusConflict, a.status, a.body)
		assert.Equal(t, "already-acknowledged", problemCode(t, []byte(a.body)))
		// the same conflict again: no new alarm, not reopened
		assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonConflict}, l.ingest(first)[0])
		check(t, h)
		m = scrape(t, l.svc)
		assert.Equal(t, 1.0, m[`kpe_backoffice_alarms_open{kind="counter-conflict"}`], "only the open alarm counts")

		// restart
		require.NoError(t, st.Close())
		st = open()
		t.Cleanup(func() { st.Close() })
		l2 := newLab(t, st)
		l2.ca, l2.sam, l2.prev = l.ca, l.sam, l.prev
		svc, err := backoffice.New(st, backoffice.Config{CA: l.ca.Pool(), Password: cheap})
		require.NoError(t, err)
		l2.svc = svc
		h = asStaff(t, l2, svc.StaffHandler(backoffice.StaffConfig{}))
		check(t, h)
		a = staffCall(h, http.MethodPost, fmt.Sprintf("%s/%d/ack", wire.PathAlarms, older.ID), `{"comment": "cek ulang"}`)
		assert.Equal(t, http.StatusConflict, a.status, "still acknowledged after the restart")
		assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonConflict}, l2.ingest(first)[0])
		assert.Len(t, alarmList(t, h, ""), 2, "a repeat after the restart raises nothing either")

		// a third conflicting content: a new alarm with a new id
		l2.conflict("askes-gigi")
		all = alarmList(t, h, "?state=open")
		require.Len(t, all, 2)
		assert.Greater(t, all[0].ID, newer.ID)
		assert.Equal(t, newer.ID, all[1].ID)

		// the store's own answers for unknown ids
		_, err = st.Alarm(context.Background(), 999999)
		assert.ErrorIs(t, err, backoffice.ErrNotFound)
		assert.ErrorIs(t, st.AckAlarm(context.Background(), 999999, wire.AlarmEvent{By: "x", Comment: "y", At: time.Now()}), backoffice.ErrNotFound)
	})
}

// Bad requests on both stores: unknown and malformed ids, bad states and
// limits, and every kind of bad body are refused with a typed problem,
// and the alarm stays open.
func TestAlarmAckRefused(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		h := asStaff(t, l, l.svc.StaffHandler(backoffice.StaffConfig{}))
		l.ingest(l.records(2, "t-01")...)
		l.conflict("taspen")
		as := alarmList(t, h, "")
		require.Len(t, as, 1)
		ackPath := fmt.Sprintf("%s/%d/ack", wire.PathAlarms, as[0].ID)
		good := `{"comment":"diperiksa"}`

		for _, c := range []struct {
			method, path, body string
			status             int
			code               string
		}{
			{"GET", wire.PathAlarms + "/999999", "", 404, "unknown-alarm"},
			{"POST", wire.PathAlarms + "/999999/ack", good, 404, "unknown-alarm"},
			{"GET", wire.PathAlarms + "/abc", "", 400, "bad-alarm-id"},
			{"GET", wire.PathAlarms + "/0", "", 400, "bad-alarm-id"},
			{"GET", wire.PathAlarms + "/-1", "", 400, "bad-alarm-id"},
			{"POST", wire.PathAlarms + "/99999999999999999999/ack", good, 400, "bad-alarm-id"},
			{"GET", wire.PathAlarms + "?state=closed", "", 400, "bad-state"},
			{"GET", wire.PathAlarms + "?state=open&limit=0", "", 400, "bad-limit"},
		} {
			a := staffCall(h, c.method, c.path, c.body)
			assert.Equal(t, c.status, a.status, "%s %s: %s", c.method, c.path, a.body)
			assert.Equal(t, c.code, problemCode(t, []byte(a.body)), "%s %s", c.method, c.path)
		}

		long := func(n int) string { return strings.Repeat("é", n) }
		for name, body := range map[string]string{
			"empty":            ``,
			"null":             `null`,
			"array":            `[{"comment":"x"}]`,
			"string":           `"ok"`,
			"not JSON":         `by=Siti&comment=x`,
			"truncated":        `{"comment":"x"`,
			"two objects":      good + good,
			"trailing garbage": good + ` x`,
			"unknown key":      `{"comment":"x","state":"open"}`,
			"wrong type":       `{"comment":42}`,
			"no comment":       `{}`,
			"empty comment":    `{"comment":""}`,
			"by in the body":   `{"by":"Siti","comment":"x"}`, // who acknowledges is the session's account
			"comment too long": fmt.Sprintf(`{"comment":%q}`, long(501)),
			"control":          `{"comment":"a\u0007"}`,
			"newline":          `{"comment":"a\nb"}`,
			"invalid UTF-8":    "{\"comment\":\"\xff\"}",
			"huge":             fmt.Sprintf(`{"comment":%q}`, strings.Repeat("x", 20000)),
		} {
			a := staffCall(h, http.MethodPost, ackPath, body)
			if body == "" {
				a = staffCall(h, http.MethodPost, ackPath, body, "Content-Type", "application/json")
			}
			assert.Equal(t, http.StatusBadRequest, a.status, "%s: %s", name, a.body)
			assert.Equal(t, "bad-ack", problemCode(t, []byte(a.body)), name)
		}
		a := staffCall(h, http.MethodPost, ackPath, good, "Content-Type", "text/plain")
		assert.Equal(t, http.StatusUnsupportedMediaType, a.status, a.body)
		assert.Equal(t, "bad-ack", problemCode(t, []byte(a.body)))

		assert.Equal(t, wire.AlarmOpen, alarmOf(t, h, as[0].ID).State, "nothing refused changed the alarm")
		// the limits are inclusive, counted in characters
		a = staffCall(h, http.MethodPost, ackPath, fmt.Sprintf(`{"comment":%q}`, long(500)))
		assert.Equal(t, http.StatusNoContent, a.status, a.body)
		got := alarmOf(t, h, as[0].ID)
		assert.Regexp(t, `^admin-[0-9]+$`, got.History[1].By, "the signed-in account")
		assert.Equal(t, long(500), got.History[1].Comment)
	})
}

// CSRF: besides the session's token, a browser's cross-site POST (by
// Sec-Fetch-Site, or by an Origin other than the Host) is refused with
// 403 cross-site before anything is read or changed; a same-origin one
// and one without browser headers (a script) pass; GETs are not affected.
// The Host check and the security headers still apply to the POST.
func TestAlarmAckCrossSiteRefused(t *testing.T) {
	l, _ := staffLab(t)
	h := asStaff(t, l, l.svc.StaffHandler(backoffice.StaffConfig{}))
	l.conflict("taspen")
	as := alarmList(t, h, "")
	require.Len(t, as, 1)
	ackPath := fmt.Sprintf("%s/%d/ack", wire.PathAlarms, as[0].ID)
	good := `{"comment":"diperiksa"}`

	for name, hdr := range map[string][]string{
		"cross-site fetch":        {"Sec-Fetch-Site", "cross-site"},
		"same-site other origin":  {"Sec-Fetch-Site", "same-site", "Origin", "http://other.localhost"},
		"foreign origin, no SFS":  {"Origin", "https://evil.example"},
		"null origin (sandboxed)": {"Origin", "null"},
		"other port":              {"Origin", "http://localhost:9999"},
	} {
		a := staffCall(h, http.MethodPost, ackPath, good, hdr...)
		assert.Equal(t, http.StatusForbidden, a.status, "%s: %s", name, a.body)
		assert.Equal(t, "cross-site", problemCode(t, []byte(a.body)), name)
		assert.Equal(t, "nosniff", a.header.Get("X-Content-Type-Options"), name)
	}
	assert.Equal(t, wire.AlarmOpen, alarmOf(t, h, as[0].ID).State, "no refused POST acknowledged it")

	// a GET from another site is still answered (reading is not a change;
	// CORP and the missing CORS headers keep the answer from that site)
	a := staffCall(h, http.MethodGet, wire.PathAlarms, "", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	assert.Equal(t, http.StatusOK, a.status)

	// a foreign Host is refused before anything else
	req := httptest.NewRequest(http.MethodPost, ackPath, strings.NewReader(good))
	req.Host = "evil.example"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusForbidden, rec.Code)
	assert.Equal(t, "forbidden-host", problemCode(t, rec.Body.Bytes()))

	// the page's own origin passes
	a = staffCall(h, http.MethodPost, ackPath, good, "Sec-Fetch-Site", "same-origin", "Origin", "http://localhost")
	assert.Equal(t, http.StatusNoContent, a.status, a.body)
	assert.Equal(t, wire.AlarmAcknowledged, alarmOf(t, h, as[0].ID).State)
}

// A script without browser headers acknowledges too, over a real
// connection; two acknowledgements racing: exactly one wins.
func TestAlarmAckRace(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		l.ingest(l.records(2, "t-01")...)
		l.conflict("taspen")
		as, err := l.svc.Alarms(context.Background(), backoffice.AlarmQuery{Limit: 10})
		require.NoError(t, err)
		require.Len(t, as, 1)
		srv := httptest.NewServer(asStaff(t, l, l.svc.StaffHandler(backoffice.StaffConfig{})))
		t.Cleanup(srv.Close)
		const n = 8
		codes := make(chan int, n)
		for i := range n {
			go func() {
				body := fmt.Sprintf(`{"comment":"diperiksa %d"}`, i)
				resp, err := http.Post(fmt.Sprintf("%s%s/%d/ack", srv.URL, wire.PathAlarms, as[0].ID), "application/json", strings.NewReader(body))
				if err != nil {
					codes <- 0
					return
				}
				resp.Body.Close()
				codes <- resp.StatusCode
			}()
		}
		got := map[int]int{}
		for range n {
			got[<-codes]++
		}
		assert.Equal(t, map[int]int{204: 1, 409: n - 1}, got)
		a, err := l.svc.Alarm(context.Background(), as[0].ID)
		require.NoError(t, err)
		assert.Len(t, a.History, 2, "one acknowledgement in the history")
	})
}

// Alarms stored before alarms had a state: a PostgreSQL database left by
// version 4 and a bbolt file written without state or history. Both read
// as open, raised at their time, keep their ids, count in the gauge and
// can be acknowledged.
func TestAlarmsFromBeforeStates(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 10, 1, 8, 30, 0, 0, time.UTC)
	check := func(t *testing.T, st backoffice.Store, id int64) {
		l := newLab(t, st)
		h := asStaff(t, l, l.svc.StaffHandler(backoffice.StaffConfig{}))
		open := alarmList(t, h, "?state=open")
		require.Len(t, open, 1)
		assert.Equal(t, id, open[0].ID)
		assert.Equal(t, "chain-restart", open[0].Kind)
		assert.Equal(t, "t-07", open[0].TerminalID)
		assert.Equal(t, at, open[0].At)
		assert.Equal(t, 1.0, scrape(t, l.svc)[`kpe_backoffice_alarms_open{kind="chain-restart"}`])
		assert.Equal(t, []wire.AlarmEvent{{Type: wire.AlarmEventRaised, At: at}}, alarmOf(t, h, id).History)
		a := staffCall(h, http.MethodPost, fmt.Sprintf("%s/%d/ack", wire.PathAlarms, id), `{"comment":"outbox dipulihkan"}`)
		require.Equal(t, http.StatusNoContent, a.status, a.body)
		full := alarmOf(t, h, id)
		assert.Equal(t, wire.AlarmAcknowledged, full.State)
		require.Len(t, full.History, 2)
		assert.Equal(t, wire.AlarmEvent{Type: wire.AlarmEventRaised, At: at}, full.History[0])
		assert.Equal(t, "outbox dipulihkan", full.History[1].Comment)
		assert.Equal(t, 0.0, scrape(t, l.svc)[`kpe_backoffice_alarms_open{kind="chain-restart"}`])
	}
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.DB(t)
		require.NoError(t, backoffice.MigratePostgres(ctx, dsn, 4))
		pool, err := pgxpool.New(ctx, dsn)
		require.NoError(t, err)
		var id int64
		require.NoError(t, pool.QueryRow(ctx, "INSERT INTO alarms (kind, terminal_id, detail, at) VALUES ('chain-restart', 't-07', 'a second chain start', $1) RETURNING id", at).Scan(&id))
		pool.Close()
		st, err := backoffice.OpenPostgres(ctx, dsn)
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		check(t, st, id)
	})
	t.Run("bolt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bo.db")
		st, err := backoffice.OpenBolt(path)
		require.NoError(t, err)
		require.NoError(t, st.Close())
		db, err := bbolt.Open(path, 0o600, nil)
		require.NoError(t, err)
		var id int64
		require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte("alarms"))
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			id = int64(seq)
			// the JSON of the alarm as written before alarms had a state
			return b.Put(binary.BigEndian.AppendUint64(nil, seq), []byte(`{"kind":"chain-restart","terminal_id":"t-07","detail":"a second chain start","at":"2026-10-01T08:30:00Z"}`))
		}))
		require.NoError(t, db.Close())
		st, err = backoffice.OpenBolt(path)
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		check(t, st, id)
	})
}
