package fleet_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/pgtest"
	"kpe-agent/lab/fleet"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/wire"
)

// A storm of 200 terminals × 10 records against a back office on
// PostgreSQL in this process, over mutual TLS: every record is stored
// exactly once (the rows, and a sample of codes verified on the staff
// listener), none is rejected, and the report's figures are sane.
func TestStorm(t *testing.T) {
	const terminals, records = 200, 10
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := fleet.StartLocal(ctx, pgtest.DB(t), fleet.LocalOptions{})
	require.NoError(t, err)
	defer l.Close()

	cfg := l.Config()
	cfg.Terminals, cfg.Records, cfg.Scenario = terminals, records, fleet.Storm
	cfg.ProbeRate = 200
	f, err := fleet.New(ctx, cfg)
	require.NoError(t, err)
	rep, err := f.Run(ctx)
	require.NoError(t, err)
	t.Logf("\n%s", rep)

	const n = terminals * records
	assert.Equal(t, n, rep.Records)
	assert.Equal(t, n, rep.Accepted+rep.Duplicate, "every record taken")
	assert.Zero(t, rep.Rejected, "%v", rep.RejectReasons)
	assert.GreaterOrEqual(t, rep.Sent, n)
	assert.Greater(t, rep.Rate, 0.0)
	assert.Greater(t, rep.Batches, 0)
	assert.Positive(t, rep.UploadP50)
	assert.GreaterOrEqual(t, rep.UploadP99, rep.UploadP50)
	assert.GreaterOrEqual(t, rep.UploadMax, rep.UploadP99)
	assert.Positive(t, rep.Verifies, "the prober verified codes during the storm")
	assert.GreaterOrEqual(t, rep.VerifyP99, rep.VerifyP50)
	assert.Zero(t, rep.VerifyWrong, "a code the back office accepted was not found")
	assert.Zero(t, rep.VerifyErr, "verification errors: %v", rep.VerifyErrReasons)
	assert.Positive(t, rep.DBAfter-rep.DBBefore)
	assert.Positive(t, rep.BytesPerRecord)

	var rows, distinct, terms int
	require.NoError(t, l.Store.Pool().QueryRow(ctx, "SELECT count(*), count(DISTINCT code), count(DISTINCT terminal_id) FROM records").Scan(&rows, &distinct, &terms))
	assert.Equal(t, n, rows, "stored exactly once")
	assert.Equal(t, n, distinct)
	assert.Equal(t, terminals, terms)

	codes, err := f.Codes()
	require.NoError(t, err)
	require.Len(t, codes, n)
	staff := &http.Client{}
	require.NoError(t, backoffice.SignInClient(ctx, staff, l.StaffURL, l.StaffUser, l.StaffPassword))
	for i := 0; i < n; i += 97 { // a sample, on the staff listener
		resp, err := staff.Get(l.StaffURL + wire.PathVerify + codes[i])
		require.NoError(t, err)
		var v wire.Verdict
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
		resp.Body.Close()
		assert.True(t, v.Valid, "code %s: %+v", codes[i], v)
		assert.Contains(t, fleet.Services, v.Service)
		assert.Equal(t, "pass", v.Checks.CardAuth)
	}

	// the same fleet again: the back office has every record already
	rep2, err := f.Run(ctx)
	require.NoError(t, err)
	assert.Equal(t, n, rep2.Duplicate, "a resent backlog is all duplicates")
	assert.Zero(t, rep2.Accepted+rep2.Rejected, "the second run took or refused records: %s", rep2)
}

// A fleet it cannot run is a typed error before anything is made.
func TestBadConfig(t *testing.T) {
	l := &fleet.Config{}
	_, err := fleet.New(context.Background(), *l)
	assert.ErrorIs(t, err, fleet.ErrConfig)
	_, err = fleet.ParseScenario("tsunami")
	assert.ErrorIs(t, err, fleet.ErrConfig)
	s, err := fleet.ParseScenario("steady")
	require.NoError(t, err)
	assert.Equal(t, fleet.Steady, s)
	_, err = fleet.New(context.Background(), fleet.Config{URL: "https://127.0.0.1:1", Terminals: 1, Records: 1})
	assert.True(t, errors.Is(err, fleet.ErrConfig), "no PKI: %v", err)
}

// A steady run: each terminal's records one by one over the period,
// through a front that answers every terminal's first batch 503 and its
// second 429, both with Retry-After: 1 (a node going down, then a
// limiter). The terminals wait as told and send again; every record is
// stored once, and the busy answers are counted.
func TestSteadyBusyRetryAfter(t *testing.T) {
	const terminals, records = 20, 3
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	seen := map[string]int{}
	var lastBusy sync.Map // terminal → when it was last told to wait
	early := 0
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.TLS.PeerCertificates[0].Subject.CommonName
			mu.Lock()
			seen[id]++
			n := seen[id]
			if at, ok := lastBusy.Load(id); ok && n <= 3 && time.Since(at.(time.Time)) < 900*time.Millisecond {
				early++ // came back before the Retry-After
			}
			mu.Unlock()
			switch n {
			case 1, 2:
				lastBusy.Store(id, time.Now())
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(map[int]int{1: http.StatusServiceUnavailable, 2: http.StatusTooManyRequests}[n])
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	l, err := fleet.StartLocal(ctx, pgtest.DB(t), fleet.LocalOptions{Wrap: wrap})
	require.NoError(t, err)
	defer l.Close()
	cfg := l.Config()
	cfg.Terminals, cfg.Records, cfg.Scenario, cfg.Period = terminals, records, fleet.Steady, 2*time.Second
	f, err := fleet.New(ctx, cfg)
	require.NoError(t, err)
	t0 := time.Now()
	rep, err := f.Run(ctx)
	require.NoError(t, err)
	t.Logf("\n%s", rep)
	const n = terminals * records
	assert.GreaterOrEqual(t, time.Since(t0), 2*time.Second, "two Retry-After waits")
	assert.Equal(t, terminals, rep.Answers503)
	assert.Equal(t, terminals, rep.Answers429)
	assert.Equal(t, 2*terminals, rep.RetryAfter)
	assert.Zero(t, early, "a terminal came back before its Retry-After")
	assert.Equal(t, n, rep.Accepted)
	assert.Zero(t, rep.Duplicate+rep.Rejected)
	assert.Equal(t, n+2*terminals, rep.Sent, "one record a batch, the first twice refused")
	assert.Equal(t, n, rep.Batches)
	var rows int
	require.NoError(t, l.Store.Pool().QueryRow(ctx, "SELECT count(*) FROM records").Scan(&rows))
	assert.Equal(t, n, rows)
}

// A storm through the back office's admission control (MaxIngest 2):
// most batches are answered 503 busy with Retry-After at first; the
// terminals come back as told until every record is stored, once.
func TestStormAdmissionControl(t *testing.T) {
	const terminals, records = 30, 5
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := fleet.StartLocal(ctx, pgtest.DB(t), fleet.LocalOptions{MaxIngest: 2})
	require.NoError(t, err)
	defer l.Close()
	cfg := l.Config()
	cfg.Terminals, cfg.Records, cfg.MaxBackoff = terminals, records, 3*time.Second
	f, err := fleet.New(ctx, cfg)
	require.NoError(t, err)
	rep, err := f.Run(ctx)
	require.NoError(t, err)
	t.Logf("\n%s", rep)
	assert.Positive(t, rep.Answers503, "30 terminals at once through 2 slots")
	assert.Equal(t, rep.Answers503, rep.RetryAfter)
	assert.Equal(t, terminals*records, rep.Accepted)
	assert.Equal(t, terminals*records+records*rep.Answers503, rep.Sent)
	var rows int
	require.NoError(t, l.Store.Pool().QueryRow(ctx, "SELECT count(*) FROM records").Scan(&rows))
	assert.Equal(t, terminals*records, rows)
}
