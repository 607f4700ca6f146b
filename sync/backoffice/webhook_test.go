package backoffice_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/pgtest"
	"kpe-agent/sync/backoffice"
)

// receiver is an institution's webhook endpoint: it checks every
// signature, refuses the first fail deliveries (500), and keeps the
// records of the events it acknowledges.
type receiver struct {
	t      *testing.T
	secret []byte
	delay  time.Duration

	mu       sync.Mutex
	fail     int
	refused  []string // event ids answered 500
	events   []string // event ids acknowledged
	codes    []string // records acknowledged, in order
	inFlight int
	overlap  bool // two deliveries at once
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	require.NoError(rc.t, err)
	if err := backoffice.VerifyWebhookSignature(rc.secret, []byte(r.Header.Get(backoffice.SignatureHeader)), body, 5*time.Minute, time.Now()); err != nil {
		rc.t.Errorf("a delivery's signature: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ev backoffice.WebhookEvent
	require.NoError(rc.t, json.Unmarshal(body, &ev))
	rc.mu.Lock()
	rc.inFlight++
	if rc.inFlight > 1 {
		rc.overlap = true
	}
	rc.mu.Unlock()
	time.Sleep(rc.delay)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.inFlight--
	if rc.fail > 0 {
		rc.fail--
		rc.refused = append(rc.refused, ev.ID)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	rc.events = append(rc.events, ev.ID)
	for _, v := range ev.Records {
		rc.codes = append(rc.codes, v.Code)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) got() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.codes...)
}

// waitFor waits until the receiver has n records.
func (rc *receiver) waitFor(t *testing.T, n int) {
	deadline := time.Now().Add(30 * time.Second)
	for len(rc.got()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver has %d records, want %d", len(rc.got()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func register(t *testing.T, st backoffice.Store, name, service, hook string, secret []byte) {
	_, key := backoffice.NewAPIKey(time.Now())
	require.NoError(t, st.(backoffice.InstitutionStore).AddInstitution(context.Background(), backoffice.Institution{Name: name,
		Services: []string{service}, Enabled: true, Keys: []backoffice.APIKey{key}, WebhookURL: hook, WebhookSecret: secret,
		InsecureWebhook: strings.HasPrefix(hook, "http:")}))
}

var fastHooks = backoffice.WebhookConfig{Poll: 10 * time.Millisecond, Batch: 4, MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}

// A receiver that fails three times and then succeeds gets every record
// of its service exactly once, in order, signed; the refused event is
// sent again unchanged (the same id); records ingested later follow.
func TestWebhookRetriesUntilAcknowledged(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		secret := backoffice.NewWebhookSecret()
		rc := &receiver{t: t, secret: secret, fail: 3}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		register(t, l.store, "askes", "askes", srv.URL+"/hook", secret)
		want := codesOf(t, l.ingest(l.serviceRecords(6, "t-01", "askes")...))
		l.ingest(l.serviceRecords(3, "t-01", "taspen")...)
		want = append(want, codesOf(t, l.ingest(l.serviceRecords(3, "t-01", "askes")...))...)

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- l.svc.RunWebhooks(ctx, fastHooks) }()
		rc.waitFor(t, len(want))
		want = append(want, codesOf(t, l.ingest(l.serviceRecords(5, "t-01", "askes")...))...)
		rc.waitFor(t, len(want))
		// the receiver has the records before the dispatcher has its
		// answer: wait until the last acknowledgement is stored and
		// counted, else the cancel below can cut it off on a loaded
		// machine
		pendingZero := `kpe_backoffice_webhook_pending_records{institution="askes"} 0`
		require.Eventually(t, func() bool {
			in, err := l.store.(backoffice.InstitutionStore).Institution(context.Background(), "askes")
			if err != nil {
				t.Error(err)
				return false
			}
			rec := httptest.NewRecorder()
			l.svc.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			return in.Pending == (backoffice.Cursor{}) && strings.Contains(rec.Body.String(), pendingZero)
		}, 30*time.Second, 10*time.Millisecond, "the last acknowledgement is not stored")
		time.Sleep(50 * time.Millisecond) // a few more rounds: nothing more may come
		cancel()
		require.NoError(t, <-done)

		assert.Equal(t, want, rc.got())
		require.Len(t, rc.refused, 3)
		assert.Equal(t, rc.refused[0], rc.refused[2], "a refused event is sent again unchanged")
		assert.Equal(t, rc.refused[0], rc.events[0])
		in, err := l.store.(backoffice.InstitutionStore).Institution(context.Background(), "askes")
		require.NoError(t, err)
		assert.NotEqual(t, backoffice.Cursor{}, in.Delivered, "the delivery cursor is stored")

		rec := httptest.NewRecorder()
		l.svc.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		assert.Contains(t, rec.Body.String(), `kpe_backoffice_webhook_deliveries_total{outcome="refused"} 3`)
		assert.Contains(t, rec.Body.String(), pendingZero)
	})
}

// Two nodes' dispatchers on one PostgreSQL deliver each record once: the
// advisory-lock lease lets one deliver at a time, and each reads the
// stored cursor after taking it.
func TestWebhookTwoDispatchersDeliverOnce(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DB(t)
	var svcs []*backoffice.Service
	var l *lab
	for i := 0; i < 2; i++ {
		st, err := backoffice.OpenPostgres(ctx, dsn)
		require.NoError(t, err)
		defer st.Close()
		if l == nil {
			l = newLab(t, st)
			svcs = append(svcs, l.svc)
			continue
		}
		svc, err := backoffice.New(st, backoffice.Config{CA: l.ca.Pool()})
		require.NoError(t, err)
		svcs = append(svcs, svc)
	}
	secret := backoffice.NewWebhookSecret()
	rc := &receiver{t: t, secret: secret, fail: 2, delay: 5 * time.Millisecond}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	register(t, l.store, "askes", "askes", srv.URL, secret)

	run, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, svc := range svcs {
		wg.Add(1)
		go func() { defer wg.Done(); svc.RunWebhooks(run, fastHooks) }()
	}
	var want []string
	for b := 0; b < 8; b++ {
		want = append(want, codesOf(t, l.ingest(l.serviceRecords(5, "t-01", "askes")...))...)
		time.Sleep(15 * time.Millisecond)
	}
	rc.waitFor(t, len(want))
	time.Sleep(100 * time.Millisecond)
	cancel()
	wg.Wait()
	assert.Equal(t, want, rc.got())
	assert.False(t, rc.overlap, "two deliveries to one institution at once")
}

// VerifyWebhookSignature accepts what the dispatcher signs and refuses a
// tampered body, a wrong secret, an old or future timestamp and
// malformed headers, each with its typed error.
func TestVerifyWebhookSignature(t *testing.T) {
	secret := []byte("kpew_secret-of-the-institution")
	body := []byte(`{"id":"evt_1","records":[]}`)
	now := time.Unix(1_790_000_000, 0)
	h := backoffice.SignWebhook(secret, body, now)
	require.True(t, strings.HasPrefix(h, "t=1790000000,v1="), h)
	ok := func(header string, at time.Time) error {
		return backoffice.VerifyWebhookSignature(secret, []byte(header), body, 5*time.Minute, at)
	}
	assert.NoError(t, ok(h, now))
	assert.NoError(t, ok(h, now.Add(4*time.Minute)))
	// a second v1 (a rotated secret) and an unknown scheme are fine
	other := backoffice.SignWebhook([]byte("another secret"), body, now)
	assert.NoError(t, ok(other+","+strings.Split(h, ",")[1]+",v0=zz", now))

	assert.ErrorIs(t, backoffice.VerifyWebhookSignature(secret, []byte(h), []byte(`{"id":"evt_2","records":[]}`), 5*time.Minute, now),
		backoffice.ErrSignatureMismatch)
	assert.ErrorIs(t, backoffice.VerifyWebhookSignature([]byte("wrong"), []byte(h), body, 5*time.Minute, now), backoffice.ErrSignatureMismatch)
	assert.ErrorIs(t, ok(h, now.Add(6*time.Minute)), backoffice.ErrSignatureTimestamp)
	assert.ErrorIs(t, ok(h, now.Add(-6*time.Minute)), backoffice.ErrSignatureTimestamp)
	// far-future and far-past timestamps, signed with the right secret: a
	// time.Duration of the difference would overflow and pass
	for _, ts := range []int64{1 << 40, 1<<62 + 12345, math.MaxInt64, -(1 << 40), math.MinInt64} {
		far := backoffice.SignWebhook(secret, body, time.Unix(ts, 0))
		assert.ErrorIs(t, ok(far, now), backoffice.ErrSignatureTimestamp, far)
	}
	// the timestamp is signed: moving it breaks the signature
	moved := strings.Replace(h, "t=1790000000", "t=1790000001", 1)
	assert.ErrorIs(t, ok(moved, now), backoffice.ErrSignatureMismatch)
	for _, bad := range []string{"", "t=1790000000", strings.Split(h, ",")[1], "t=x," + strings.Split(h, ",")[1],
		"t=+1790000000," + strings.Split(h, ",")[1], "t=1790000000,v1=abc", "t=1,t=2," + strings.Split(h, ",")[1], "garbage"} {
		assert.ErrorIs(t, ok(bad, now), backoffice.ErrSignatureHeader, bad)
	}
}

// A webhook URL that redirects is refused, never acknowledged: not by
// the default client, nor by a supplied one that follows redirects (a
// POST turned into a GET on 302/303 answered 200 elsewhere). The
// delivery cursor stays where it was, and the metrics count refusals.
func TestWebhookRedirectIsNotAnAck(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		var mu sync.Mutex
		got := map[string]int{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got[r.Method+" "+r.URL.Path]++
			mu.Unlock()
			switch r.URL.Path {
			case "/hook":
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			case "/hook303":
				http.Redirect(w, r, "/elsewhere", http.StatusSeeOther)
			default:
				w.WriteHeader(http.StatusOK)
			}
		}))
		defer srv.Close()
		register(t, l.store, "askes", "askes", srv.URL+"/hook", backoffice.NewWebhookSecret())
		register(t, l.store, "taspen", "taspen", srv.URL+"/hook303", backoffice.NewWebhookSecret())
		l.ingest(l.serviceRecords(2, "t-01", "askes")...)
		l.ingest(l.serviceRecords(2, "t-01", "taspen")...)
		failures := func(name string) int {
			in, err := l.store.(backoffice.InstitutionStore).Institution(context.Background(), name)
			if err != nil { // called from Eventually's goroutine: no require
				t.Error(err)
				return -1
			}
			return in.Failures
		}
		for _, client := range []*http.Client{nil, {Timeout: 5 * time.Second}} {
			cfg := fastHooks
			cfg.Client = client
			// run until both institutions had a whole attempt refused
			// (its failure stored after the answer, so after any
			// redirect it followed), not for a fixed time a loaded
			// machine may spend before the first post
			askes, taspen := failures("askes"), failures("taspen")
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- l.svc.RunWebhooks(ctx, cfg) }()
			assert.Eventually(t, func() bool { return failures("askes") > askes && failures("taspen") > taspen },
				30*time.Second, 10*time.Millisecond, "both deliveries refused")
			cancel()
			require.NoError(t, <-done)
		}
		mu.Lock()
		assert.Zero(t, got["GET /elsewhere"]+got["POST /elsewhere"], "a redirect was followed: %v", got)
		assert.NotZero(t, got["POST /hook"])
		assert.NotZero(t, got["POST /hook303"])
		mu.Unlock()
		for _, name := range []string{"askes", "taspen"} {
			in, err := l.store.(backoffice.InstitutionStore).Institution(context.Background(), name)
			require.NoError(t, err)
			assert.Equal(t, backoffice.Cursor{}, in.Delivered, "%s: a redirect moved the cursor", name)
		}
		rec := httptest.NewRecorder()
		l.svc.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		assert.Contains(t, rec.Body.String(), `kpe_backoffice_webhook_deliveries_total{outcome="delivered"} 0`)
	})
}

// A lost acknowledgement (the receiver stores the event, then answers
// 500) while new records arrive: the retry is the same event, the same
// id and exactly the same records, so the receiver can drop it; the new
// records come in the next event. Both stores.
func TestWebhookRetryIsTheSameEvent(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		secret := backoffice.NewWebhookSecret()
		type event struct {
			id    string
			codes []string
		}
		var mu sync.Mutex
		var events []event
		lost := 1
		ingested := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var ev backoffice.WebhookEvent
			require.NoError(t, json.NewDecoder(r.Body).Decode(&ev))
			var codes []string
			for _, v := range ev.Records {
				codes = append(codes, v.Code)
			}
			mu.Lock()
			events = append(events, event{ev.ID, codes})
			first := lost > 0
			lost--
			mu.Unlock()
			if first {
				<-ingested // new records while the ack is lost
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusOK)
		}))
		defer srv.Close()
		register(t, l.store, "askes", "askes", srv.URL, secret)
		first := codesOf(t, l.ingest(l.serviceRecords(2, "t-01", "askes")...))

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- l.svc.RunWebhooks(ctx, fastHooks) }()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			n := len(events)
			mu.Unlock()
			if n > 0 {
				break
			}
			require.True(t, time.Now().Before(deadline), "no delivery")
			time.Sleep(5 * time.Millisecond)
		}
		later := codesOf(t, l.ingest(l.serviceRecords(1, "t-01", "askes")...))
		close(ingested)
		for {
			mu.Lock()
			n := 0
			for _, e := range events {
				n += len(e.codes)
			}
			mu.Unlock()
			if n >= 5 {
				break
			}
			require.True(t, time.Now().Before(deadline), "the retry and the new records did not come")
			time.Sleep(5 * time.Millisecond)
		}
		// the last acknowledgement reaches the store
		for {
			in, err := l.store.(backoffice.InstitutionStore).Institution(context.Background(), "askes")
			require.NoError(t, err)
			if in.Pending == (backoffice.Cursor{}) {
				break
			}
			require.True(t, time.Now().Before(deadline), "the event in flight is not cleared")
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		require.NoError(t, <-done)
		mu.Lock()
		defer mu.Unlock()
		require.GreaterOrEqual(t, len(events), 3, "%v", events)
		assert.Equal(t, events[0], events[1], "the retry after a lost ack is the same event")
		assert.Equal(t, first, events[0].codes)
		assert.Equal(t, later, events[2].codes)
		assert.NotEqual(t, events[0].id, events[2].id)
		in, err := l.store.(backoffice.InstitutionStore).Institution(context.Background(), "askes")
		require.NoError(t, err)
		assert.Equal(t, backoffice.Cursor{}, in.Pending, "nothing in flight once acknowledged")
		assert.Zero(t, in.Failures)
	})
}

// The backoff is the institution's, in the store: after a refusal the
// failures and the next attempt are stored, and a dispatcher started
// afterwards (a restart, another node) waits for it instead of posting
// at once.
func TestWebhookBackoffIsStored(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		secret := backoffice.NewWebhookSecret()
		rc := &receiver{t: t, secret: secret, fail: 1}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		register(t, l.store, "askes", "askes", srv.URL, secret)
		l.ingest(l.serviceRecords(2, "t-01", "askes")...)
		cfg := fastHooks
		cfg.MinBackoff, cfg.MaxBackoff = time.Hour, 2*time.Hour
		institution := func() backoffice.Institution {
			in, err := l.store.(backoffice.InstitutionStore).Institution(context.Background(), "askes")
			if err != nil { // called from Eventually's goroutine: no require
				t.Error(err)
				return backoffice.Institution{}
			}
			return *in
		}
		run := func(until func() bool) {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- l.svc.RunWebhooks(ctx, cfg) }()
			if until != nil {
				assert.Eventually(t, until, 30*time.Second, 10*time.Millisecond, "the refusal is not stored")
			} else {
				time.Sleep(500 * time.Millisecond) // a few rounds
			}
			cancel()
			require.NoError(t, <-done)
		}
		// until the refusal is stored, not for a fixed time: a loaded
		// machine may not have posted yet
		run(func() bool { return institution().Failures > 0 })
		in := institution()
		assert.Equal(t, 1, in.Failures)
		assert.True(t, in.NextAttempt.After(time.Now().Add(29*time.Minute)), "next attempt %v", in.NextAttempt)
		assert.NotEqual(t, backoffice.Cursor{}, in.Pending, "the event in flight is stored")
		run(nil) // restarted: still within the backoff
		rc.mu.Lock()
		assert.Len(t, rc.refused, 1, "a new dispatcher retried within the stored backoff")
		assert.Empty(t, rc.events)
		rc.mu.Unlock()
	})
}

// The PostgreSQL delivery lease is a session of its own: holding it takes
// no ingest connection (ingest works on a one-connection pool while it is
// held), and when its session is lost (terminated) the lock is gone and
// the lease can no longer move the cursor, while another node can take
// the lease.
func TestPGDeliveryLeaseOwnSession(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DB(t)
	st, err := backoffice.OpenPostgresWith(ctx, dsn, backoffice.PGOptions{Conns: 1})
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	register(t, st, "askes", "askes", "https://askes.example/hook", backoffice.NewWebhookSecret())
	lease, err := st.DeliveryLease(ctx, "askes")
	require.NoError(t, err)
	defer lease.Release()
	_, err = st.DeliveryLease(ctx, "askes")
	require.ErrorIs(t, err, backoffice.ErrLeaseHeld)

	done := make(chan struct{})
	go func() { defer close(done); l.ingest(l.serviceRecords(2, "t-01", "askes")...) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ingest waits for the connection the lease holds")
	}
	// the feed serves transactions below the cluster's snapshot xmin: a
	// transaction another test holds open in another database delays them
	var recs []backoffice.FeedRecord
	require.Eventually(t, func() bool {
		recs, _, _, err = st.Feed(ctx, []string{"askes"}, backoffice.Cursor{}, 10)
		return err != nil || len(recs) == 2
	}, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.NoError(t, lease.SetPending(ctx, backoffice.Cursor{}, recs[1].Cursor))

	// the lease's session ends behind its back
	other, err := backoffice.OpenPostgres(ctx, dsn)
	require.NoError(t, err)
	defer other.Close()
	killed, err := other.TerminateAdvisoryHolders(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, killed)
	assert.Error(t, lease.SetDelivered(ctx, backoffice.Cursor{}, recs[1].Cursor), "a lost lease moved the cursor")
	in, err := st.Institution(ctx, "askes")
	require.NoError(t, err)
	assert.Equal(t, backoffice.Cursor{}, in.Delivered)
	again, err := other.DeliveryLease(ctx, "askes")
	require.NoError(t, err, "the lock ended with the session")
	require.NoError(t, again.SetDelivered(ctx, backoffice.Cursor{}, recs[1].Cursor))
	again.Release()
}
