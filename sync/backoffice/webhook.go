package backoffice

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"kpe-agent/sync/wire"
)

// Webhooks (docs/institutions.md): for each enabled institution with a
// webhook URL, a dispatcher posts the records of its services in feed
// order, in batches, as JSON events signed Stripe-style:
//
//	KPE-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256(secret, "<t>.<body>")>
//
// A 2xx answer acknowledges the event and advances the institution's
// delivery cursor in the store; anything else is retried, with
// exponential backoff and jitter, until acknowledged. One dispatcher at a
// time delivers to an institution, whatever the number of nodes
// (InstitutionStore.DeliveryLease).

// SignatureHeader is the header carrying an event's signature.
const SignatureHeader = "KPE-Signature"

// WebhookEvent is the body of a webhook delivery.
type WebhookEvent struct {
	// ID names the event: the same records from the same cursor make the
	// same ID, so a receiver can drop an event it has acknowledged
	// already (a delivery whose acknowledgement was lost).
	ID          string          `json:"id"`
	Type        string          `json:"type"` // "records"
	Institution string          `json:"institution"`
	Created     time.Time       `json:"created"`
	Records     []*wire.Verdict `json:"records"`
	// Cursor is the feed position after the last record: the same as
	// GET /institution/v1/records?cursor= takes.
	Cursor string `json:"cursor"`
}

// Webhook signature errors.
var (
	// ErrSignatureHeader: the header is missing or malformed.
	ErrSignatureHeader = errors.New("webhook: signature header malformed")
	// ErrSignatureTimestamp: the signed time is outside the tolerance
	// (a replay, or a clock far off).
	ErrSignatureTimestamp = errors.New("webhook: signature timestamp outside the tolerance")
	// ErrSignatureMismatch: no v1 signature matches the body and secret.
	ErrSignatureMismatch = errors.New("webhook: signature does not match")
)

// SignWebhook is the KPE-Signature header of body sent at t.
func SignWebhook(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(webhookMAC(secret, ts, body))
}

func webhookMAC(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifyWebhookSignature checks a webhook the receiver got: header is the
// KPE-Signature header, body the raw request body (before any JSON
// decoding), tolerance how far the signed time may be from now (a
// replay window; 5 minutes is usual). One v1 signature must match, in
// constant time. Errors: ErrSignatureHeader, ErrSignatureTimestamp,
// ErrSignatureMismatch.
func VerifyWebhookSignature(secret, header, body []byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(string(header), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: %q", ErrSignatureHeader, part)
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: two timestamps", ErrSignatureHeader)
			}
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return fmt.Errorf("%w: v1 is not a hex HMAC-SHA-256", ErrSignatureHeader)
			}
			sigs = append(sigs, b)
		}
		// other schemes are ignored: a later version may add them
	}
	if ts == "" || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=…,v1=…", ErrSignatureHeader)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(sec, 10) != ts {
		return fmt.Errorf("%w: timestamp %q", ErrSignatureHeader, ts)
	}
	if !withinSeconds(sec, now.Unix(), tolerance) {
		return fmt.Errorf("%w: signed at %d, now %d", ErrSignatureTimestamp, sec, now.Unix())
	}
	want := webhookMAC(secret, ts, body)
	ok := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			ok = true
		}
	}
	if !ok {
		return ErrSignatureMismatch
	}
	return nil
}

// withinSeconds reports whether the signed second sec is at most
// tolerance (whole seconds) from now, in integers: a time.Duration of the
// difference overflows for timestamps some 292 years away (t=2^40 would
// pass), the difference of two int64 fits in a uint64.
func withinSeconds(sec, now int64, tolerance time.Duration) bool {
	if tolerance < 0 {
		return false
	}
	tol := uint64(tolerance / time.Second)
	if sec >= now {
		return uint64(sec)-uint64(now) <= tol
	}
	return uint64(now)-uint64(sec) <= tol
}

// checkWebhookURL accepts absolute https URLs without credentials, and
// http ones only when insecure (a lab, registered with
// --insecure-webhook).
func checkWebhookURL(s string, insecure bool) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("webhook URL: %v", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("webhook URL %q: want https://host/path (no user, no fragment)", s)
	}
	if u.Scheme == "http" && !insecure {
		return fmt.Errorf("webhook URL %q: https is required (http only when registered as insecure, for a lab)", s)
	}
	return nil
}

// WebhookConfig configures the dispatcher.
type WebhookConfig struct {
	// Client posts the events (default: 30 s timeout). Redirects are
	// never followed, whatever its CheckRedirect: a 3xx is a refusal.
	Client *http.Client
	// Poll is how often new records and new institutions are looked for
	// (default 2 s).
	Poll time.Duration
	// Batch is the most records in one event (default 100).
	Batch int
	// MinBackoff and MaxBackoff bound the wait after a failed delivery:
	// it doubles from MinBackoff to MaxBackoff, with jitter (defaults
	// 1 s, 1 h).
	MinBackoff, MaxBackoff time.Duration
	Log                    *slog.Logger
	Now                    func() time.Time
}

// webhookMetrics are the dispatcher's, in the back office's registry.
type webhookMetrics struct {
	deliveries *prometheus.CounterVec // outcome
	pending    *prometheus.GaugeVec   // institution
}

var webhookOutcomes = []string{"delivered", "refused", "failed", "error"}

func newWebhookMetrics(reg *prometheus.Registry) *webhookMetrics {
	m := &webhookMetrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kpe_backoffice_webhook_deliveries_total",
			Help: "Webhook deliveries by outcome: delivered (2xx), refused (another status), failed (no answer), error (the store)."}, []string{"outcome"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kpe_backoffice_webhook_pending_records",
			Help: "Records of the event being delivered to an institution and not yet acknowledged (0: caught up)."}, []string{"institution"}),
	}
	for _, o := range webhookOutcomes {
		m.deliveries.WithLabelValues(o)
	}
	reg.MustRegister(m.deliveries, m.pending)
	return m
}

// dispatcher is one node's webhook dispatcher. Its state is in the
// store: the delivery cursor, the event in flight and the backoff.
type dispatcher struct {
	s     *Service
	store InstitutionStore
	cfg   WebhookConfig
}

// RunWebhooks delivers the institutions' webhooks until ctx ends. Run one
// per node; the nodes share the work through the store's leases.
func (s *Service) RunWebhooks(ctx context.Context, cfg WebhookConfig) error {
	is, ok := s.store.(InstitutionStore)
	if !ok {
		return ErrNoInstitutions
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	// never follow a redirect: a client would turn the POST into a GET
	// on 301/302/303 and take the final 2xx of another URL for the
	// institution's acknowledgement; a 3xx is a refusal. A supplied
	// client is copied, not changed.
	noRedirects := *cfg.Client
	noRedirects.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg.Client = &noRedirects
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(time.Hour, cfg.MinBackoff)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &dispatcher{s: s, store: is, cfg: cfg}
	t := time.NewTicker(cfg.Poll)
	defer t.Stop()
	for {
		d.round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// round delivers to every institution that is due, one after the other.
func (d *dispatcher) round(ctx context.Context) {
	all, err := d.store.Institutions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Log.Error("webhooks: institutions", "err", err)
			d.s.metrics.webhook.deliveries.WithLabelValues("error").Inc()
		}
		return
	}
	for i := range all {
		in := &all[i]
		if !in.Enabled || in.WebhookURL == "" || ctx.Err() != nil || d.cfg.Now().Before(in.NextAttempt) {
			continue
		}
		if in.Pending == (Cursor{}) {
			// nothing in flight: take the lease (a session of its
			// own on PostgreSQL) only when there is something to send
			recs, _, _, err := d.store.Feed(ctx, in.Services, in.Delivered, 1)
			if err != nil {
				d.storeError(ctx, nil, in, err)
				continue
			}
			if len(recs) == 0 {
				d.s.metrics.webhook.pending.WithLabelValues(in.Name).Set(0)
				continue
			}
		}
		d.deliver(ctx, in.Name)
	}
}

// eventsPerRound bounds the events one institution gets in a round.
const eventsPerRound = 20

// deliver takes the institution's lease and posts events until it is
// caught up, a delivery fails or it had eventsPerRound.
func (d *dispatcher) deliver(ctx context.Context, name string) {
	lease, err := d.store.DeliveryLease(ctx, name)
	if errors.Is(err, ErrLeaseHeld) {
		return // another node delivers
	}
	if err != nil {
		d.storeError(ctx, nil, &Institution{Name: name}, err)
		return
	}
	defer lease.Release()
	// at most eventsPerRound, so one institution's backlog does not hold
	// up the others
	for n := 0; n < eventsPerRound && ctx.Err() == nil; n++ {
		// the state as the store has it now: another node may have
		// delivered, or failed, since this one last looked
		in, err := d.store.Institution(ctx, name)
		if err != nil {
			d.storeError(ctx, lease, &Institution{Name: name}, err)
			return
		}
		if !in.Enabled || in.WebhookURL == "" || d.cfg.Now().Before(in.NextAttempt) {
			return
		}
		page, to, err := d.event(ctx, lease, in)
		if err != nil {
			d.storeError(ctx, lease, in, err)
			return
		}
		d.s.metrics.webhook.pending.WithLabelValues(name).Set(float64(len(page.Records)))
		if len(page.Records) == 0 {
			return
		}
		if !d.post(ctx, lease, in, page, to) {
			return
		}
		if err := lease.SetDelivered(ctx, in.Delivered, to); err != nil {
			d.storeError(ctx, lease, in, err)
			return
		}
		d.s.metrics.webhook.pending.WithLabelValues(name).Set(0)
		if !page.HasMore {
			return
		}
	}
}

// event is the next event of in and the cursor it ends at: the one in
// flight when there is one (the same records, so the same id), else the
// next page of the feed, stored as in flight before it is first posted.
func (d *dispatcher) event(ctx context.Context, lease DeliveryLease, in *Institution) (*RecordPage, Cursor, error) {
	if in.Pending != (Cursor{}) && in.Delivered.Less(in.Pending) {
		page, err := feedRange(ctx, d.store, in.Services, in.Delivered, in.Pending)
		return page, in.Pending, err
	}
	page, err := feedPage(ctx, d.store, in.Services, in.Delivered, d.cfg.Batch)
	if err != nil || len(page.Records) == 0 {
		return page, Cursor{}, err
	}
	to, err := ParseCursor(page.NextCursor)
	if err != nil {
		return nil, Cursor{}, err
	}
	if err := lease.SetPending(ctx, in.Delivered, to); err != nil {
		return nil, Cursor{}, err
	}
	return page, to, nil
}

// feedRange is the records of services in (from, to]: an event in
// flight. Those records are fixed once the feed passed to (the feed
// never shows a record before one it passed).
func feedRange(ctx context.Context, st InstitutionStore, services []string, from, to Cursor) (*RecordPage, error) {
	page := &RecordPage{Records: []*wire.Verdict{}, NextCursor: to.String()}
	for after := from; ; {
		recs, _, more, err := st.Feed(ctx, services, after, MaxPageSize)
		if err != nil {
			return nil, err
		}
		for i := range recs {
			if to.Less(recs[i].Cursor) {
				page.HasMore = true
				return page, nil
			}
			page.Records = append(page.Records, verdictOf(recs[i].Code, &recs[i].Stored))
			after = recs[i].Cursor
		}
		if !more || len(recs) == 0 {
			return page, nil
		}
	}
}

// post sends one event; false when it was not acknowledged (the backoff
// is set).
func (d *dispatcher) post(ctx context.Context, lease DeliveryLease, in *Institution, page *RecordPage, to Cursor) bool {
	id := sha256.Sum256([]byte(in.Name + "\x00" + in.Delivered.String() + "\x00" + to.String()))
	now := d.cfg.Now()
	body, err := json.Marshal(WebhookEvent{ID: "evt_" + hex.EncodeToString(id[:16]), Type: "records", Institution: in.Name,
		Created: now.UTC(), Records: page.Records, Cursor: page.NextCursor})
	if err != nil {
		d.storeError(ctx, lease, in, err)
		return false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.WebhookURL, bytes.NewReader(body))
	if err != nil {
		d.fail(ctx, lease, in, "failed", err)
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kpe-backoffice-webhook/1")
	req.Header.Set(SignatureHeader, SignWebhook(in.WebhookSecret, body, now))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			d.fail(ctx, lease, in, "failed", err)
		}
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		d.fail(ctx, lease, in, "refused", fmt.Errorf("status %d", resp.StatusCode))
		return false
	}
	d.s.metrics.webhook.deliveries.WithLabelValues("delivered").Inc()
	return true
}

func (d *dispatcher) storeError(ctx context.Context, lease DeliveryLease, in *Institution, err error) {
	if ctx.Err() != nil {
		return
	}
	d.fail(ctx, lease, in, "error", err)
}

// webhookBackoff is the wait after failures deliveries in a row (at
// least 1): minB doubled per failure after the first, at most maxB. It
// doubles step by step, never by a shift that overflows (a shift by
// failures-1 went negative after some thirty failures).
func webhookBackoff(failures int, minB, maxB time.Duration) time.Duration {
	wait := minB
	for i := 1; i < failures && wait < maxB; i++ {
		wait *= 2
	}
	return min(wait, maxB)
}

// fail counts a failed delivery and, under the lease, stores the
// institution's next attempt: MinBackoff doubled per failure in a row,
// at most MaxBackoff, then a random point in its upper half (jitter:
// institutions do not retry in step). In the store, so every node waits
// for it and a restart keeps it. Without a lease (the lease itself
// failed) only the metrics and the log see it.
func (d *dispatcher) fail(ctx context.Context, lease DeliveryLease, in *Institution, outcome string, err error) {
	d.s.metrics.webhook.deliveries.WithLabelValues(outcome).Inc()
	failures := in.Failures + 1
	wait := webhookBackoff(failures, d.cfg.MinBackoff, d.cfg.MaxBackoff)
	wait = wait/2 + rand.N(wait/2+1)
	d.cfg.Log.Warn("webhook delivery failed", "institution", in.Name, "outcome", outcome, "failures", failures, "retry_in", wait, "err", err)
	if lease == nil {
		return
	}
	if err := lease.SetBackoff(ctx, failures, d.cfg.Now().Add(wait)); err != nil && ctx.Err() == nil {
		d.cfg.Log.Error("webhook: storing the backoff", "institution", in.Name, "err", err)
	}
}
