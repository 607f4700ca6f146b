// Package uploader sends the outbox's records to the back office: HTTPS
// with mutual TLS, through the proxy the environment names, gzip batches
// bounded by count and bytes, an attempt as soon as a record is new and,
// after a failure, retries with capped exponential backoff and full jitter
// that honour Retry-After. Each record's answer settles it in the outbox:
// accepted and duplicate acknowledge it, rejected moves it to the dead
// letters with the reason, retry leaves it pending (docs/backoffice.md, "The uploader").
// After each batch that acknowledged records, the acknowledged records
// past the outbox's retention are pruned (docs/outbox.md).
package uploader

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"kpe-agent/internal/buildinfo"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/wire"
)

// Config configures an Uploader. Zero values take the defaults.
type Config struct {
	URL string // the back office's base URL, e.g. https://backoffice.example:8443
	// TLS holds the terminal's client certificate and the roots the
	// back office's certificate must chain to.
	TLS *tls.Config
	// Certificates are the SAM terminal certificates sent with each
	// batch.
	Certificates [][]byte
	MaxRecords   int           // per batch (default 200, at most wire.MaxBatchRecords)
	MaxBytes     int           // record bytes per batch before compression (default 512 KiB)
	MinBackoff   time.Duration // first retry delay ceiling (default 1 s)
	MaxBackoff   time.Duration // cap of the delay, Retry-After and its jitter included (default 5 min)
	Interval     time.Duration // look at the outbox this often when idle (default 30 s)
	Timeout      time.Duration // one request (default 30 s)
	// Proxy chooses the proxy (default http.ProxyFromEnvironment:
	// HTTPS_PROXY, NO_PROXY).
	Proxy func(*http.Request) (*url.URL, error)
	Log   *slog.Logger
	// OnSend, when set, is told each batch's round trip and outcome (the
	// agent's sync metrics).
	OnSend func(records int, took time.Duration, err error)
	// Rand returns a number in [0, 1) for the jitter (default math/rand).
	Rand func() float64
}

func (c *Config) defaults() {
	if c.MaxRecords <= 0 || c.MaxRecords > wire.MaxBatchRecords {
		c.MaxRecords = 200
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 512 << 10
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	if c.Interval <= 0 {
		c.Interval = 30 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Proxy == nil {
		c.Proxy = http.ProxyFromEnvironment
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
}

// Status is what the uploader knows about the link to the back office.
type Status struct {
	LastAttempt time.Time
	LastSuccess time.Time
	LastError   string
	Failures    int // consecutive failed attempts
	NextAttempt time.Time
	// ClockSkewed: the back office said this terminal's clock is beyond
	// its tolerance; ClockSkew is its time minus ours.
	ClockSkewed bool
	ClockSkew   time.Duration
	Accepted    uint64
	Duplicates  uint64
	Rejected    uint64
}

// Uploader drains an outbox to the back office. Run it in one goroutine.
type Uploader struct {
	ob     *outbox.Outbox
	cfg    Config
	client *http.Client
	kick   chan struct{}
	drain  chan struct{} // one Drain at a time (Run's and "sync now"); a wait bounded by its context
	maxN   int           // shrinks after a 413; guarded by drain
	every  atomic.Int64  // Interval, changeable by SetInterval

	mu sync.Mutex
	st Status
}

// New makes an Uploader.
func New(ob *outbox.Outbox, cfg Config) (*Uploader, error) {
	cfg.defaults()
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("uploader: back-office URL %q: want https://host[:port]", cfg.URL)
	}
	tr := &http.Transport{Proxy: cfg.Proxy, TLSClientConfig: cfg.TLS, ForceAttemptHTTP2: true,
		MaxIdleConns: 2, IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 15 * time.Second, ResponseHeaderTimeout: cfg.Timeout}
	up := &Uploader{ob: ob, cfg: cfg, client: &http.Client{Transport: tr, Timeout: cfg.Timeout},
		kick: make(chan struct{}, 1), drain: make(chan struct{}, 1), maxN: cfg.MaxRecords}
	up.every.Store(int64(cfg.Interval))
	return up, nil
}

// SetCertificates replaces the SAM certificates sent with each batch (the
// agent learns its SAM's certificate when the SAM is inserted).
func (u *Uploader) SetCertificates(certs [][]byte) {
	u.mu.Lock()
	u.cfg.Certificates = certs
	u.mu.Unlock()
}

// SetInterval changes how often an idle uploader looks at the outbox (a
// configuration reload); it takes effect after the current wait.
func (u *Uploader) SetInterval(d time.Duration) {
	if d > 0 {
		u.every.Store(int64(d))
	}
}

// Kick asks for an attempt now (a record is new). It never blocks; while
// the uploader is backing off after a failure, kicks wait for the backoff.
func (u *Uploader) Kick() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// Status returns a copy of the status.
func (u *Uploader) Status() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.st
}

// ClockSkewed says whether the back office last said the clock is off;
// the agent then gives new records the clock quality "skewed".
func (u *Uploader) ClockSkewed() bool { return u.Status().ClockSkewed }

// Run sends until ctx ends.
func (u *Uploader) Run(ctx context.Context) error {
	for {
		_, err := u.Drain(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var wait time.Duration
		idle := err == nil
		if idle {
			wait = time.Duration(u.every.Load())
		} else {
			wait = u.backoff(err)
			u.cfg.Log.Warn("back office not reached; records stay queued", "err", err, "retry_in", wait.Round(time.Millisecond))
		}
		u.mu.Lock()
		u.st.NextAttempt = time.Now().Add(wait)
		u.mu.Unlock()
		t := time.NewTimer(wait)
		kick := u.kick
		if !idle {
			kick = nil // no hot loop: new records wait for the backoff
		}
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		case <-kick:
			t.Stop()
		}
	}
}

// backoff is the delay after a failure: the server's Retry-After plus
// full jitter over as long again when it gave one (never sooner than
// asked; the terminals a busy node refused in the same second do not all
// come back in the same second), else full jitter over an exponential
// ceiling; both capped at MaxBackoff.
func (u *Uploader) backoff(err error) time.Duration {
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > 0 {
		return min(ra.After+time.Duration(u.cfg.Rand()*float64(ra.After)), u.cfg.MaxBackoff)
	}
	u.mu.Lock()
	n := u.st.Failures
	u.mu.Unlock()
	ceil := u.cfg.MinBackoff
	for i := 1; i < n && ceil < u.cfg.MaxBackoff; i++ {
		ceil *= 2
	}
	ceil = min(ceil, u.cfg.MaxBackoff)
	return time.Duration(u.cfg.Rand() * float64(ceil))
}

// Report counts one Drain's results.
type Report struct {
	Batches                        int
	Accepted, Duplicates, Rejected int
	// Pruned: acknowledged records past the outbox's retention deleted
	// after the batches (outbox.Prune).
	Pruned int
}

// Errors.
var (
	// ErrNoProgress: the back office took none of a batch (every record
	// "retry"); the uploader backs off rather than asking again at once.
	ErrNoProgress = errors.New("uploader: the back office took none of the batch")
	// ErrRefused: the back office refused the batch as a whole (4xx); a
	// configuration problem (certificate, URL) or a bug, not the records.
	ErrRefused = errors.New("uploader: the back office refused the batch")
)

// RetryAfterError: the back office is busy or down and said when to come
// back.
type RetryAfterError struct {
	Status int
	After  time.Duration
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("uploader: back office answered %d, retry after %s", e.Status, e.After)
}

// Drain sends batches until the outbox has no pending record or an attempt
// fails. Claimed records that were not settled by an answer go back to
// pending.
func (u *Uploader) Drain(ctx context.Context) (Report, error) {
	select {
	case u.drain <- struct{}{}:
	case <-ctx.Done():
		return Report{}, ctx.Err()
	}
	defer func() { <-u.drain }()
	var rep Report
	for {
		items, err := u.ob.Claim(u.maxN, u.cfg.MaxBytes)
		if err != nil {
			return rep, err
		}
		if len(items) == 0 {
			return rep, nil
		}
		t0 := time.Now()
		res, err := u.send(ctx, items)
		if u.cfg.OnSend != nil {
			u.cfg.OnSend(len(items), time.Since(t0), err)
		}
		u.note(err)
		if err != nil {
			if errors.Is(err, errTooLarge) && u.maxN > 1 {
				u.maxN = max(1, u.maxN/2)
				err = nil
			}
			if serr := u.settleRetry(items); serr != nil {
				return rep, serr
			}
			if err != nil {
				return rep, err
			}
			continue
		}
		rep.Batches++
		var batch Report // this batch's counts
		results := make([]outbox.Result, len(items))
		for i, r := range res.Results {
			results[i] = outbox.Result{Seq: items[i].Seq}
			switch r.Status {
			case wire.Accepted:
				results[i].Outcome = outbox.Accepted
				batch.Accepted++
			case wire.Duplicate:
				results[i].Outcome = outbox.Duplicate
				batch.Duplicates++
			case wire.Rejected:
				results[i].Outcome, results[i].Reason = outbox.Rejected, r.Reason
				batch.Rejected++
				u.cfg.Log.Error("the back office rejected a record; it is kept in the dead letters", "seq", items[i].Seq, "reason", r.Reason)
			default:
				results[i].Outcome = outbox.Retry
			}
		}
		if err := u.ob.Settle(results); err != nil {
			return rep, err
		}
		if batch.Accepted+batch.Duplicates > 0 {
			// the outbox's records past the retention go with each
			// acknowledged batch; a failure is logged, the batch stands
			n, err := u.ob.Prune()
			if err != nil {
				u.cfg.Log.Error("pruning acknowledged records failed", "err", err)
			} else if n > 0 {
				rep.Pruned += n
				u.cfg.Log.Debug("pruned acknowledged records past the retention", "records", n)
			}
		}
		rep.Accepted += batch.Accepted
		rep.Duplicates += batch.Duplicates
		rep.Rejected += batch.Rejected
		skew := time.Duration(res.ClockSkewMillis) * time.Millisecond
		u.mu.Lock()
		u.st.Accepted += uint64(batch.Accepted)
		u.st.Duplicates += uint64(batch.Duplicates)
		u.st.Rejected += uint64(batch.Rejected)
		u.st.ClockSkewed, u.st.ClockSkew = res.ClockSkewed, skew
		u.mu.Unlock()
		if res.ClockSkewed {
			u.cfg.Log.Warn("the back office says this terminal's clock is off; new records are marked clock-skewed", "skew", skew.String())
		}
		if batch.Accepted+batch.Duplicates+batch.Rejected == 0 {
			return rep, ErrNoProgress
		}
		if u.maxN < u.cfg.MaxRecords {
			u.maxN = min(u.cfg.MaxRecords, u.maxN*2)
		}
	}
}

func (u *Uploader) settleRetry(items []outbox.Item) error {
	results := make([]outbox.Result, len(items))
	for i, it := range items {
		results[i] = outbox.Result{Seq: it.Seq, Outcome: outbox.Retry}
	}
	return u.ob.Settle(results)
}

func (u *Uploader) note(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := time.Now()
	u.st.LastAttempt = now
	if err != nil && !errors.Is(err, errTooLarge) {
		u.st.Failures++
		u.st.LastError = err.Error()
		return
	}
	u.st.Failures, u.st.LastError, u.st.LastSuccess = 0, "", now
}

var errTooLarge = errors.New("uploader: batch too large for the back office")

// agentVersion is the running agent's version, as batches carry it.
var agentVersion = sync.OnceValue(func() string { return buildinfo.Read().Version })

// send posts one batch and reads the per-record answer.
func (u *Uploader) send(ctx context.Context, items []outbox.Item) (*wire.BatchResult, error) {
	u.mu.Lock()
	certs := u.cfg.Certificates
	u.mu.Unlock()
	b := wire.Batch{Certificates: certs, SentAt: time.Now().UTC(), Agent: agentVersion()}
	for _, it := range items {
		b.Records = append(b.Records, it.Encoded)
	}
	// what is still queued besides this batch, for the back office's
	// terminals page; an outbox that cannot say sends without it
	if n, oldest, err := u.ob.Backlog(); err == nil {
		backlog := int64(max(n-len(items), 0))
		b.Backlog = &backlog
		if oldest > 0 {
			b.OldestQueued = b.SentAt.Add(-oldest).Truncate(time.Second)
		}
	}
	req, err := wire.NewBatchRequest(ctx, u.cfg.URL, &b)
	if err != nil {
		return nil, err
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("uploader: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, wire.MaxBatchAnswer))
	if err != nil {
		return nil, fmt.Errorf("uploader: reading the answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return wire.DecodeBatchResult(raw, len(items))
	case resp.StatusCode == http.StatusRequestEntityTooLarge:
		return nil, errTooLarge
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return nil, &RetryAfterError{Status: resp.StatusCode, After: wire.RetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	case resp.StatusCode >= 500:
		if d := wire.RetryAfter(resp.Header.Get("Retry-After"), time.Now()); d > 0 {
			return nil, &RetryAfterError{Status: resp.StatusCode, After: d}
		}
		return nil, fmt.Errorf("uploader: back office answered %s", resp.Status)
	default:
		return nil, fmt.Errorf("%w: %s: %s", ErrRefused, resp.Status, problemText(raw))
	}
}

func problemText(raw []byte) string {
	var p wire.Problem
	if json.Unmarshal(raw, &p) == nil && p.Error != "" {
		return strings.TrimSpace(p.Error + " " + p.Detail)
	}
	if len(raw) > 200 {
		raw = raw[:200]
	}
	return strings.ToValidUTF8(string(raw), "?")
}
