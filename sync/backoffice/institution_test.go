package backoffice_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/pgtest"
	"kpe-agent/lab/labpki"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// institutions registers askes (service askes) and taspen (service
// taspen) in l's store and returns their API keys.
func institutions(t *testing.T, l *lab, certs map[string][32]byte) (askesKey, taspenKey string) {
	is := l.store.(backoffice.InstitutionStore)
	now := time.Now()
	for _, c := range []struct {
		name, svc string
		key       *string
	}{{"askes", "askes", &askesKey}, {"taspen", "taspen", &taspenKey}} {
		k, stored := backoffice.NewAPIKey(now)
		*c.key = k
		in := backoffice.Institution{Name: c.name, Services: []string{c.svc}, Enabled: true, Keys: []backoffice.APIKey{stored}}
		if fp, ok := certs[c.name]; ok {
			in.Certs = [][32]byte{fp}
		}
		require.NoError(t, is.AddInstitution(context.Background(), in))
	}
	return
}

// serviceRecords seals n records of service at terminal.
func (l *lab) serviceRecords(n int, terminal, service string) [][]byte {
	var out [][]byte
	for i := 0; i < n; i++ {
		r := baseRecord(terminal)
		r.Service = service
		out = append(out, l.seal(r, l.sam))
	}
	return out
}

func codesOf(t *testing.T, res []wire.Result) []string {
	var out []string
	for _, r := range res {
		require.Equal(t, wire.Accepted, r.Status, r.Reason)
		out = append(out, r.Code)
	}
	return out
}

type apiClient struct {
	t    *testing.T
	url  string
	http *http.Client
}

func (c apiClient) get(key, path string, v any) int {
	req, err := http.NewRequest(http.MethodGet, c.url+path, nil)
	require.NoError(c.t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	if v != nil {
		require.NoError(c.t, json.Unmarshal(body, v), string(body))
	}
	return resp.StatusCode
}

// allOf waits until the feed as key sees it holds n records (on
// PostgreSQL a writing transaction anywhere on the server holds the feed
// back while it is open: other tests' too), and returns them.
func (c apiClient) allOf(key string, limit, n int) []string {
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := c.all(key, limit)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// page walks the whole feed as key sees it, limit records a page.
func (c apiClient) all(key string, limit int) []string {
	var codes []string
	cursor := ""
	for i := 0; i < 1000; i++ {
		var p backoffice.RecordPage
		require.Equal(c.t, http.StatusOK, c.get(key, "/institution/v1/records?limit="+strconv.Itoa(limit)+"&cursor="+url.QueryEscape(cursor), &p))
		for _, v := range p.Records {
			codes = append(codes, v.Code)
		}
		cursor = p.NextCursor
		if !p.HasMore {
			return codes
		}
	}
	c.t.Fatal("the feed does not end")
	return nil
}

// One institution sees only its own services' records: ASKES cannot
// verify or list Taspen's records, nor the reverse; a record of another
// service answers exactly as an unknown code. Unknown, disabled and
// rotated keys are refused.
func TestInstitutionScoping(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		askesKey, taspenKey := institutions(t, l, nil)
		askes := codesOf(t, l.ingest(l.serviceRecords(5, "t-01", "askes")...))
		taspen := codesOf(t, l.ingest(l.serviceRecords(4, "t-01", "taspen")...))
		askes = append(askes, codesOf(t, l.ingest(l.serviceRecords(3, "t-01", "askes")...))...)
		h, err := l.svc.InstitutionHandler(backoffice.InstitutionConfig{})
		require.NoError(t, err)
		srv := httptest.NewServer(h)
		defer srv.Close()
		c := apiClient{t: t, url: srv.URL, http: srv.Client()}

		var v wire.Verdict
		require.Equal(t, http.StatusOK, c.get(askesKey, "/institution/v1/verify/"+askes[0], &v))
		assert.True(t, v.Valid)
		assert.Equal(t, "askes", v.Service)
		require.Equal(t, http.StatusOK, c.get(taspenKey, "/institution/v1/verify/"+taspen[0], &v))
		assert.Equal(t, "taspen", v.Service)

		// another service's record: the same 404 and body as an unknown code
		unknown := record.CodeOf(sha256.Sum256([]byte("never stored"))).String()
		rawOf := func(key, code string) (int, string) {
			var m map[string]any
			st := c.get(key, "/institution/v1/verify/"+code, &m)
			delete(m, "code")
			b, _ := json.Marshal(m)
			return st, string(b)
		}
		stU, bodyU := rawOf(askesKey, unknown)
		require.Equal(t, http.StatusNotFound, stU)
		for _, c := range []struct{ key, code string }{{askesKey, taspen[1]}, {taspenKey, askes[1]}} {
			st, body := rawOf(c.key, c.code)
			assert.Equal(t, stU, st)
			assert.Equal(t, bodyU, body)
		}
		var raw map[string]any
		c.get(askesKey, "/institution/v1/verify/"+taspen[2], &raw)
		assert.Equal(t, map[string]any{"valid": false, "code": taspen[2], "reason": "unknown"}, raw)
		assert.Equal(t, http.StatusBadRequest, c.get(askesKey, "/institution/v1/verify/ABC", nil))

		// listing: each its own records, all of them, in commit order
		assert.Equal(t, askes, c.allOf(askesKey, 3, len(askes)))
		assert.Equal(t, taspen, c.allOf(taspenKey, 1, len(taspen)))
		assert.Equal(t, taspen, c.all(taspenKey, 1000))

		// bad cursors and limits
		for _, q := range []string{"cursor=abc", "cursor=" + url.QueryEscape("AQAAAAAAAAAAAAAAAAAAAAA="), "cursor=AQAAAAAAAAAAAAAAAAAAAAAB%20", "limit=0", "limit=1001", "limit=x"} {
			var p wire.Problem
			assert.Equal(t, http.StatusBadRequest, c.get(askesKey, "/institution/v1/records?"+q, &p), q)
		}

		// refused: no key, an unknown key, a key of another scheme
		for _, key := range []string{"", "kpei_nothing", askesKey + "x"} {
			var p wire.Problem
			assert.Equal(t, http.StatusUnauthorized, c.get(key, "/institution/v1/records", &p), key)
			assert.Equal(t, "unauthenticated", p.Error)
		}
		is := l.store.(backoffice.InstitutionStore)
		ctx := context.Background()
		// rotation without grace: the old key stops at once
		newKey, stored := backoffice.NewAPIKey(time.Now())
		require.NoError(t, is.RotateInstitutionKey(ctx, "askes", stored, time.Now()))
		assert.Equal(t, http.StatusUnauthorized, c.get(askesKey, "/institution/v1/records", nil))
		assert.Equal(t, http.StatusOK, c.get(newKey, "/institution/v1/records", nil))
		// rotation with grace: the old key works until then
		graceKey, stored := backoffice.NewAPIKey(time.Now())
		require.NoError(t, is.RotateInstitutionKey(ctx, "askes", stored, time.Now().Add(time.Hour)))
		assert.Equal(t, http.StatusOK, c.get(newKey, "/institution/v1/records", nil))
		assert.Equal(t, http.StatusOK, c.get(graceKey, "/institution/v1/records", nil))
		// disabled: refused
		require.NoError(t, is.SetInstitutionEnabled(ctx, "taspen", false))
		assert.Equal(t, http.StatusUnauthorized, c.get(taspenKey, "/institution/v1/verify/"+taspen[0], nil))
		assert.ErrorIs(t, is.SetInstitutionEnabled(ctx, "bapertarum", false), backoffice.ErrNotFound)
		assert.ErrorIs(t, is.AddInstitution(ctx, backoffice.Institution{Name: "askes", Services: []string{"x"}}), backoffice.ErrInstitutionExists)
		assert.ErrorIs(t, is.AddInstitution(ctx, backoffice.Institution{Name: "Bad Name", Services: []string{"x"}}), backoffice.ErrInstitution)
		assert.ErrorIs(t, is.AddInstitution(ctx, backoffice.Institution{Name: "none"}), backoffice.ErrInstitution)
	})
}

// The API's rate limit is per institution: one at its limit does not
// hold up another.
func TestInstitutionRateLimit(t *testing.T) {
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	askesKey, taspenKey := institutions(t, l, nil)
	h, err := l.svc.InstitutionHandler(backoffice.InstitutionConfig{Rate: backoffice.Limit{Rate: 0.001, Burst: 2}})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := apiClient{t: t, url: srv.URL, http: srv.Client()}
	for i := 0; i < 2; i++ {
		require.Equal(t, http.StatusOK, c.get(askesKey, "/institution/v1/records", nil))
	}
	var p wire.Problem
	assert.Equal(t, http.StatusTooManyRequests, c.get(askesKey, "/institution/v1/records", &p))
	assert.Equal(t, "rate-limited", p.Error)
	assert.Equal(t, http.StatusOK, c.get(taspenKey, "/institution/v1/records", nil))
}

// Client certificates: a registered certificate (verified by the
// institutions' CA) authenticates its institution; a verified but
// unregistered one is refused; one of another CA fails the handshake.
func TestInstitutionClientCertificate(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ca, err := labpki.NewCA("institutions CA")
		require.NoError(t, err)
		askesCert, err := ca.Terminal("askes-system")
		require.NoError(t, err)
		strangerCert, err := ca.Terminal("someone-else")
		require.NoError(t, err)
		otherCA, err := labpki.NewCA("another CA")
		require.NoError(t, err)
		foreignCert, err := otherCA.Terminal("askes-system")
		require.NoError(t, err)
		institutions(t, l, map[string][32]byte{"askes": sha256.Sum256(askesCert.Certificate[0])})
		askes := codesOf(t, l.ingest(l.serviceRecords(2, "t-01", "askes")...))
		taspen := codesOf(t, l.ingest(l.serviceRecords(1, "t-01", "taspen")...))

		h, err := l.svc.InstitutionHandler(backoffice.InstitutionConfig{})
		require.NoError(t, err)
		srv := httptest.NewUnstartedServer(h)
		server, err := ca.Server("127.0.0.1")
		require.NoError(t, err)
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{server}, ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}
		srv.StartTLS()
		defer srv.Close()
		client := func(cert *tls.Certificate) apiClient {
			cfg := &tls.Config{RootCAs: ca.Pool()}
			if cert != nil {
				cfg.Certificates = []tls.Certificate{*cert}
			}
			return apiClient{t: t, url: srv.URL, http: &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}}
		}
		c := client(&askesCert)
		assert.Equal(t, askes, c.allOf("", 10, len(askes)))
		assert.Equal(t, http.StatusOK, c.get("", "/institution/v1/verify/"+askes[0], nil))
		assert.Equal(t, http.StatusNotFound, c.get("", "/institution/v1/verify/"+taspen[0], nil))
		assert.Equal(t, http.StatusUnauthorized, client(&strangerCert).get("", "/institution/v1/records", nil))
		assert.Equal(t, http.StatusUnauthorized, client(nil).get("", "/institution/v1/records", nil))
		// offered whatever CAs the server names: the server's check refuses it
		foreign := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(),
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreignCert, nil }}}}
		_, err = foreign.Get(srv.URL + "/institution/v1/records")
		assert.ErrorContains(t, err, "certificate", "a certificate of another CA must fail the handshake")
		// the same certificate cannot be registered for a second institution
		err = l.store.(backoffice.InstitutionStore).AddInstitution(context.Background(), backoffice.Institution{Name: "bapertarum",
			Services: []string{"bapertarum"}, Enabled: true, Certs: [][32]byte{sha256.Sum256(askesCert.Certificate[0])}})
		assert.ErrorIs(t, err, backoffice.ErrInstitution)
	})
}

// Cursors are strict: what String gave parses back, anything else is
// ErrCursor.
func TestCursor(t *testing.T) {
	for _, c := range []backoffice.Cursor{{Seq: 1}, {XID: 748, Seq: 3}, {XID: 1 << 40, Seq: 1 << 50}} {
		got, err := backoffice.ParseCursor(c.String())
		require.NoError(t, err)
		assert.Equal(t, c, got)
	}
	got, err := backoffice.ParseCursor("")
	require.NoError(t, err)
	assert.Equal(t, backoffice.Cursor{}, got)
	good := backoffice.Cursor{XID: 5, Seq: 6}.String()
	for _, bad := range []string{"x", good + "A", good[:len(good)-1], good + "=", "\r" + good, good[:5] + "\n" + good[5:], "AgAAAAAAAAAFAAAAAAAAAAY", "AQAAAAAAAAAAAAAAAAAAAAA", "/wAAAAAAAAAFAAAAAAAAAAY"} {
		_, err := backoffice.ParseCursor(bad)
		assert.ErrorIs(t, err, backoffice.ErrCursor, bad)
	}
}

// On bbolt the cursor survives closing and opening the file.
func TestFeedCursorSurvivesReopenBolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bo.db")
	st, err := backoffice.OpenBolt(path)
	require.NoError(t, err)
	l := newLab(t, st)
	codes := codesOf(t, l.ingest(l.serviceRecords(7, "t-01", "askes")...))
	recs, _, more, err := st.Feed(context.Background(), []string{"askes"}, backoffice.Cursor{}, 4)
	require.NoError(t, err)
	require.True(t, more)
	cursor := recs[3].Cursor.String()
	require.NoError(t, st.Close())
	st, err = backoffice.OpenBolt(path)
	require.NoError(t, err)
	defer st.Close()
	after, err := backoffice.ParseCursor(cursor)
	require.NoError(t, err)
	rest, _, more, err := st.Feed(context.Background(), []string{"askes"}, after, 100)
	require.NoError(t, err)
	assert.False(t, more)
	var got []string
	for _, r := range append(recs, rest...) {
		got = append(got, r.Code)
	}
	assert.Equal(t, codes, got)
	_, _, _, err = st.Feed(context.Background(), []string{"askes"}, backoffice.Cursor{XID: 9, Seq: 1}, 10)
	assert.ErrorIs(t, err, backoffice.ErrCursor)
}

// makeEntries seals n records of its own SAM and terminal as verified
// entries.
func makeEntries(t *testing.T, sam *labpki.SAM, terminal string, n int, prev *[32]byte) []backoffice.Entry {
	var out []backoffice.Entry
	for i := 0; i < n; i++ {
		r := baseRecord(terminal)
		r.PrevHash = *prev
		require.NoError(t, record.Seal(context.Background(), r, sam))
		enc, err := r.Encode()
		require.NoError(t, err)
		h, content, err := record.HashesOf(enc)
		require.NoError(t, err)
		*prev = h
		out = append(out, backoffice.Entry{Rec: r, Encoded: enc, Hash: h, Content: content, Code: record.CodeOf(h).String()})
	}
	return out
}

// Exactly-once paging on PostgreSQL under concurrent ingest: several
// writers commit while one holds its ingest transaction open across their
// commits; a reader pages all the while. Its pages hold every record
// exactly once (the late commit's records too), and while the late
// transaction is open the reader does not pass it. The cursor survives
// closing and reopening the store.
func TestFeedExactlyOnceUnderConcurrentIngest(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DB(t)
	st, err := backoffice.OpenPostgres(ctx, dsn)
	require.NoError(t, err)
	ca, err := labpki.NewCA("test SAM CA")
	require.NoError(t, err)
	const writers, batches, per = 4, 6, 5
	sams := make([]*labpki.SAM, writers+1)
	for i := range sams {
		sams[i], err = ca.NewSAM([8]byte{0x53, 0x41, 0x4d, 1, 0, 0, 0, byte(i + 1)})
		require.NoError(t, err)
		_, err = st.PinSAMCertificate(ctx, sams[i].Serial(), sams[i].Cert, wire.Alarm{})
		require.NoError(t, err)
	}
	svc := []string{"askes"}
	want := map[string]bool{}
	var wantMu sync.Mutex
	add := func(es []backoffice.Entry) {
		wantMu.Lock()
		defer wantMu.Unlock()
		for _, e := range es {
			want[e.Code] = true
		}
	}

	// the late writer: its transaction opens (and takes its xid) first
	var latePrev [32]byte
	late := makeEntries(t, sams[writers], "t-late", per, &latePrev)
	commitLate, err := st.IngestOpen(ctx, late, backoffice.Meta{Now: time.Now()})
	require.NoError(t, err)
	add(late)

	var got []string
	cursor := backoffice.Cursor{}
	read := func() {
		recs, next, _, err := st.Feed(ctx, svc, cursor, 7)
		require.NoError(t, err)
		for _, r := range recs {
			got = append(got, r.Code)
		}
		require.False(t, next.Less(cursor), "the feed went back")
		cursor = next // the horizon too, when caught up
	}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev [32]byte
			for b := 0; b < batches; b++ {
				es := makeEntries(t, sams[w], "t-w"+strconv.Itoa(w), per, &prev)
				if _, err := st.Ingest(ctx, es, backoffice.Meta{Now: time.Now()}); err != nil {
					t.Error(err)
					return
				}
				add(es)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		read()
	}
	read()
	// the late transaction's xid is below every other writer's: the
	// reader has not passed it, so it has seen none of theirs either
	assert.Empty(t, got, "the reader passed a transaction still open")
	require.NoError(t, commitLate())

	// part of the rest, then the store is closed and opened again
	read()
	require.NoError(t, st.Close())
	st, err = backoffice.OpenPostgres(ctx, dsn)
	require.NoError(t, err)
	defer st.Close()
	resumed, err := backoffice.ParseCursor(cursor.String())
	require.NoError(t, err)
	cursor = resumed
	total := writers*batches*per + per
	for deadline := time.Now().Add(30 * time.Second); len(got) < total && time.Now().Before(deadline); {
		read()
		time.Sleep(5 * time.Millisecond)
	}
	read() // and nothing more
	seen := map[string]int{}
	for _, c := range got {
		seen[c]++
	}
	for c, n := range seen {
		assert.Equal(t, 1, n, "record %s paged %d times", c, n)
	}
	assert.Len(t, got, total)
	for c := range want {
		assert.Contains(t, seen, c)
	}
	for i, e := range late {
		assert.Equal(t, e.Code, got[i], "the late transaction's records come first (its xid is the lowest)")
	}
}

// Every verification and every page of records an institution asks for
// is in the audit log, as institution:NAME, with the code or cursor and
// the outcome (another service's record is "not-visible", though the
// institution is answered as for an unknown code).
func TestInstitutionRequestsAudited(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		askesKey, _ := institutions(t, l, nil)
		askes := codesOf(t, l.ingest(l.serviceRecords(2, "t-01", "askes")...))
		taspen := codesOf(t, l.ingest(l.serviceRecords(1, "t-01", "taspen")...))
		h, err := l.svc.InstitutionHandler(backoffice.InstitutionConfig{})
		require.NoError(t, err)
		srv := httptest.NewServer(h)
		defer srv.Close()
		c := apiClient{t: t, url: srv.URL, http: srv.Client()}
		require.Equal(t, http.StatusOK, c.get(askesKey, "/institution/v1/verify/"+askes[0], nil))
		require.Equal(t, http.StatusNotFound, c.get(askesKey, "/institution/v1/verify/"+taspen[0], nil))
		require.Equal(t, http.StatusBadRequest, c.get(askesKey, "/institution/v1/verify/ABC", nil))
		var page backoffice.RecordPage
		require.Equal(t, http.StatusOK, c.get(askesKey, "/institution/v1/records?limit=1", &page))

		log, err := l.store.(backoffice.AccountStore).AuditLog(context.Background(), backoffice.AuditQuery{Account: "institution:askes", Limit: 10})
		require.NoError(t, err)
		require.Len(t, log, 4)
		type row struct{ action, target, outcome string }
		var got []row
		for i := len(log) - 1; i >= 0; i-- { // oldest first
			got = append(got, row{log[i].Action, log[i].Target, log[i].Outcome})
			assert.Equal(t, "institution:askes", log[i].Actor)
			assert.NotEmpty(t, log[i].Client)
		}
		assert.Equal(t, []row{
			{backoffice.AuditVerify, askes[0], "valid"},
			{backoffice.AuditVerify, taspen[0], "not-visible"},
			{backoffice.AuditVerify, "ABC", "invalid: length"},
			{backoffice.AuditInstitutionRecords, "", "ok"},
		}, got)
		assert.Contains(t, log[0].Detail, "1 records, next cursor "+page.NextCursor)
	})
}

// A verification counter that cannot be written (its table gone) does
// not fail the verification: it is logged.
func TestVerificationCounterFailureDoesNotFailVerify(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DB(t)
	st, err := backoffice.OpenPostgres(ctx, dsn)
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	code := codesOf(t, l.ingest(l.serviceRecords(1, "t-01", "askes")...))[0]
	require.NoError(t, st.DropVerificationCounts(ctx))
	v, err := l.svc.Verify(ctx, code)
	require.NoError(t, err)
	assert.True(t, v.Valid)
}

// Requests are limited per client address before authentication: a
// flood of bad keys from one address is answered 429 without a lookup,
// and the limit is the address's, not the institution's.
func TestInstitutionClientRateBeforeAuth(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		askesKey, _ := institutions(t, l, nil)
		h, err := l.svc.InstitutionHandler(backoffice.InstitutionConfig{ClientRate: backoffice.Limit{Rate: 0.001, Burst: 3}})
		require.NoError(t, err)
		call := func(remote, key string) int {
			r := httptest.NewRequest("GET", "/institution/v1/records", nil)
			r.RemoteAddr = remote
			if key != "" {
				r.Header.Set("Authorization", "Bearer "+key)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w.Code
		}
		for i := 0; i < 3; i++ {
			assert.Equal(t, http.StatusUnauthorized, call("192.0.2.7:4000", "kpei_guess"))
		}
		assert.Equal(t, http.StatusTooManyRequests, call("192.0.2.7:4001", "kpei_guess"))
		assert.Equal(t, http.StatusTooManyRequests, call("192.0.2.7:4002", askesKey), "the address's limit holds for a good key too")
		assert.Equal(t, http.StatusOK, call("192.0.2.8:4000", askesKey), "another address is not limited")
	})
}

// A caught-up institution's cursor moves past the other services'
// records: the page is empty but next_cursor is the scan's horizon, so
// the next poll starts there; a record of its own written later still
// comes, once. Both stores.
func TestFeedHorizonWhenCaughtUp(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		st := l.store.(backoffice.InstitutionStore)
		ctx := context.Background()
		mine := codesOf(t, l.ingest(l.serviceRecords(2, "t-01", "askes")...))
		deadline := time.Now().Add(30 * time.Second)
		var recs []backoffice.FeedRecord
		var next backoffice.Cursor
		var more bool
		var err error
		for len(recs) < 2 {
			require.True(t, time.Now().Before(deadline), "the records never reach the feed")
			recs, next, more, err = st.Feed(ctx, []string{"askes"}, backoffice.Cursor{}, 10)
			require.NoError(t, err)
		}
		require.False(t, more)
		require.Len(t, recs, 2)
		assert.False(t, next.Less(recs[1].Cursor))
		caughtUp := next

		l.ingest(l.serviceRecords(3, "t-01", "taspen")...)
		// on PostgreSQL the feed waits for every older transaction of the
		// cluster to end (xmin): poll until taspen's records are readable
		var taspen []backoffice.FeedRecord
		for len(taspen) < 3 {
			require.True(t, time.Now().Before(deadline), "taspen's records never reach the feed")
			taspen, _, _, err = st.Feed(ctx, []string{"taspen"}, backoffice.Cursor{}, 10)
			require.NoError(t, err)
			time.Sleep(10 * time.Millisecond)
		}
		recs, next, more, err = st.Feed(ctx, []string{"askes"}, caughtUp, 10)
		require.NoError(t, err)
		assert.Empty(t, recs)
		assert.False(t, more)
		assert.True(t, caughtUp.Less(next), "the cursor stays before taspen's records: %v", next)
		assert.False(t, next.Less(taspen[2].Cursor), "the horizon is past the records scanned")

		later := codesOf(t, l.ingest(l.serviceRecords(1, "t-01", "askes")...))
		for recs = nil; len(recs) == 0; time.Sleep(10 * time.Millisecond) {
			require.True(t, time.Now().Before(deadline), "the later record never reaches the feed")
			recs, _, _, err = st.Feed(ctx, []string{"askes"}, next, 10)
			require.NoError(t, err)
		}
		require.Len(t, recs, 1)
		assert.Equal(t, later[0], recs[0].Code)
		assert.NotEqual(t, mine[1], recs[0].Code)
	})
}
