package backoffice

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"kpe-agent/internal/buildinfo"
	"kpe-agent/sync/wire"
)

// The back office's Prometheus metrics (docs/backoffice.md, "Metrics").
// The counters are this process's (several nodes: Prometheus sums them);
// the store gauges are read from the database at scrape time and are the
// same on every node. No label carries a terminal, SAM or record: labels
// are results, reasons, flags, alarm kinds and services, each a bounded
// set.

// MaxServiceLabels bounds the distinct service labels of
// kpe_backoffice_records_ingested_total: services are configured on the
// terminals, so a misconfigured fleet could otherwise grow the series
// without end. Services beyond the bound count under "other".
const MaxServiceLabels = 64

// SilentAfter are the silences kpe_backoffice_terminals_silent counts
// terminals over (its "over" label).
var SilentAfter = []time.Duration{time.Hour, 24 * time.Hour, 72 * time.Hour}

// storeGaugeTimeout bounds the store queries of one scrape.
const storeGaugeTimeout = 5 * time.Second

// rejectReasons are the rejection reasons counted by name; any other
// (none today) counts as "other".
var rejectReasons = []string{wire.ReasonMalformed, wire.ReasonUnknownSAM, wire.ReasonSignature, wire.ReasonSoftwareSigner,
	wire.ReasonTerminal, wire.ReasonConflict, wire.ReasonNonCanonical, wire.ReasonSAMExpired, wire.ReasonSAMNotYetValid,
	wire.ReasonRevoked}

// recordFlags are the flags counted on taken records.
var recordFlags = []string{wire.FlagGapBefore, wire.FlagFillsGap, wire.FlagChainBreak, wire.FlagChainStart, wire.FlagClockSkewed}

// verifyResults are the results of a code verification: valid, the
// verdict's reasons, and error (the store failed).
var verifyResults = []string{"valid", "unknown", "length", "symbol", "check-symbol", "error"}

// AlarmKinds are the kinds of alarm the back office raises; the gauge
// kpe_backoffice_alarms_open has a series for each, zero included.
var AlarmKinds = append([]string{wire.ReasonConflict, "chain-restart", AlarmSAMConflict, AlarmRenewalUnmatched}, purseAlarmKinds...)

// latencyBuckets: 0.5 ms to about 8 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0005, 2, 15)

type serviceMetrics struct {
	reg *prometheus.Registry

	records  *prometheus.CounterVec // result, reason
	flags    *prometheus.CounterVec // flag
	services *prometheus.CounterVec // service
	batches  *prometheus.CounterVec // result
	batchDur prometheus.Histogram
	verify   *prometheus.CounterVec // result
	verDur   prometheus.Histogram
	renewal  *prometheus.CounterVec // result (renewalOfferResults)
	webhook  *webhookMetrics        // webhook.go

	// admission control (admission.go)
	admitted, busy       prometheus.Counter
	inflight, admitLimit prometheus.Gauge
	waiting              prometheus.Gauge

	mu    sync.Mutex
	named map[string]bool // service labels in use
}

// StoreGauges are what a store can say about its contents for the
// metrics, computed at scrape time.
type StoreGauges struct {
	Terminals int64
	// Silent counts terminals whose last batch with records arrived
	// more than SilentAfter[i] ago, index for index.
	Silent []int64
	// SAMsWithGaps counts SAMs with counters missing below their
	// highest; MissingCounters is how many are missing in all.
	SAMsWithGaps, MissingCounters int64
	// Alarms counts the open alarms by kind (acknowledged ones are not
	// counted).
	Alarms map[string]int64
}

// gaugeStore is implemented by the stores that report StoreGauges.
type gaugeStore interface {
	Gauges(ctx context.Context, now time.Time, silent []time.Duration) (StoreGauges, error)
}

// poolStore is implemented by the stores with a connection pool.
type poolStore interface {
	poolStats() PoolStats
}

// PoolStats is a database connection pool's state.
type PoolStats struct {
	Acquired, Idle, Total, Max int32
	Acquires, EmptyAcquires    int64
	AcquireWait                time.Duration
}

func newServiceMetrics(s *Service) *serviceMetrics {
	m := &serviceMetrics{
		reg: prometheus.NewRegistry(),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kpe_backoffice_records_total",
			Help: "Records answered by ingest, by result (accepted, duplicate, rejected) and, when rejected, the reason."}, []string{"result", "reason"}),
		flags: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kpe_backoffice_record_flags_total",
			Help: "Flags set on accepted records (gap-before, fills-gap, chain-break, chain-start, clock-skewed)."}, []string{"flag"}),
		services: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kpe_backoffice_records_ingested_total",
			Help: "Records newly stored, by the service the record names (at most 64 services; the rest count as other)."}, []string{"service"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kpe_backoffice_ingest_batches_total",
			Help: "Batches taken from terminals, by result: ok, refused (beyond the limits), error (the store or a check failed)."}, []string{"result"}),
		batchDur: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kpe_backoffice_ingest_batch_seconds",
			Help: "Time to verify and store one batch.", Buckets: latencyBuckets}),
		verify: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kpe_backoffice_verifications_total",
			Help: "Code verifications by result: valid, unknown, length, symbol, check-symbol (a typo), error."}, []string{"result"}),
		verDur: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kpe_backoffice_verification_seconds",
			Help: "Time to answer one code verification.", Buckets: latencyBuckets}),
		renewal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kpe_backoffice_renewal_offers_total",
			Help: "Renewal offer queries by result: issued, served-again (the stored offer for the same card state), applied-again (the card holds an offer's data already), none (nothing staged or nothing changes), refused (no issuer, bad query, bad EF.SOD, store failure)."}, []string{"result"}),
		admitted: prometheus.NewCounter(prometheus.CounterOpts{Name: "kpe_backoffice_ingest_admitted_total",
			Help: "Batches admitted by the terminal API's admission control."}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{Name: "kpe_backoffice_ingest_busy_total",
			Help: "Batches answered 503 busy (with Retry-After) because the node took its limit of batches at once."}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kpe_backoffice_ingest_inflight",
			Help: "Batches being read, verified and stored now."}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kpe_backoffice_ingest_waiting",
			Help: "Batches waiting for an ingest slot now."}),
		admitLimit: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kpe_backoffice_ingest_limit",
			Help: "The most batches taken at once (--max-ingest; 0: no limit)."}),
		named: map[string]bool{},
	}
	for _, r := range []wire.Status{wire.Accepted, wire.Duplicate} {
		m.records.WithLabelValues(string(r), "")
	}
	for _, r := range append(rejectReasons, "other") {
		m.records.WithLabelValues(string(wire.Rejected), r)
	}
	for _, f := range recordFlags {
		m.flags.WithLabelValues(f)
	}
	for _, r := range []string{"ok", "refused", "error"} {
		m.batches.WithLabelValues(r)
	}
	for _, r := range verifyResults {
		m.verify.WithLabelValues(r)
	}
	for _, r := range renewalOfferResults {
		m.renewal.WithLabelValues(r)
	}
	bi := buildinfo.Read()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kpe_backoffice_build_info",
		Help: "Always 1; the labels say which build runs: its version, commit and Go version."}, []string{"version", "commit", "go_version"})
	build.WithLabelValues(bi.Version, bi.Commit, bi.GoVersion).Set(1)
	m.reg.MustRegister(m.records, m.flags, m.services, m.batches, m.batchDur, m.verify, m.verDur, m.renewal, build,
		m.admitted, m.busy, m.inflight, m.waiting, m.admitLimit,
		&storeCollector{s: s}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.webhook = newWebhookMetrics(m.reg)
	return m
}

// serviceLabel is the label of a record's service, bounded by
// MaxServiceLabels.
func (m *serviceMetrics) serviceLabel(svc string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.named[svc] {
		return svc
	}
	if len(m.named) >= MaxServiceLabels {
		return "other"
	}
	m.named[svc] = true
	return svc
}

// observeIngest counts a batch's results; entries are the batch's
// records as Ingest decoded them, index for index (nil Rec: rejected
// before storage). The counts are summed over the batch first, so each
// series is looked up once a batch, not once a record.
func (m *serviceMetrics) observeIngest(entries []Entry, results []wire.Result) {
	var accepted, duplicate int
	var order []string // services in the order they came: the first MaxServiceLabels get names
	services, flags, rejected := map[string]int{}, map[string]int{}, map[string]int{}
	for i, r := range results {
		switch r.Status {
		case wire.Accepted:
			accepted++
			if i < len(entries) && entries[i].Rec != nil {
				svc := entries[i].Rec.Service
				if services[svc] == 0 {
					order = append(order, svc)
				}
				services[svc]++
			}
			for _, f := range r.Flags {
				if slices.Contains(recordFlags, f) {
					flags[f]++
				}
			}
		case wire.Duplicate:
			duplicate++
		case wire.Rejected:
			rejected[reasonLabel(r.Reason)]++
		}
	}
	if accepted > 0 {
		m.records.WithLabelValues(string(wire.Accepted), "").Add(float64(accepted))
	}
	if duplicate > 0 {
		m.records.WithLabelValues(string(wire.Duplicate), "").Add(float64(duplicate))
	}
	for _, svc := range order {
		m.services.WithLabelValues(m.serviceLabel(svc)).Add(float64(services[svc]))
	}
	for f, n := range flags {
		m.flags.WithLabelValues(f).Add(float64(n))
	}
	for reason, n := range rejected {
		m.records.WithLabelValues(string(wire.Rejected), reason).Add(float64(n))
	}
}

// renewalOfferResults are the results of a renewal offer query.
var renewalOfferResults = []string{offerIssued, offerAgain, offerApplied, offerNone, offerRefused}

// renewalOffer counts one renewal offer query.
func (m *serviceMetrics) renewalOffer(result string) {
	m.renewal.WithLabelValues(result).Inc()
}

// reasonLabel is a rejection reason without its detail ("malformed: …").
func reasonLabel(reason string) string {
	if head, _, _ := strings.Cut(reason, ":"); slices.Contains(rejectReasons, head) {
		return head
	}
	return "other"
}

func verifyLabel(v *wire.Verdict, err error) string {
	switch {
	case err != nil:
		return "error"
	case v.Valid:
		return "valid"
	}
	if slices.Contains(verifyResults, v.Reason) {
		return v.Reason
	}
	return "unknown"
}

// MetricsHandler serves the back office's metrics in the Prometheus text
// format. StaffHandler serves it on GET /metrics.
func (s *Service) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// storeCollector reads the store's gauges and its pool at scrape time.
type storeCollector struct{ s *Service }

var (
	descTerminals = prometheus.NewDesc("kpe_backoffice_terminals",
		"Terminals that have sent records.", nil, nil)
	descSilent = prometheus.NewDesc("kpe_backoffice_terminals_silent",
		"Terminals whose last batch with records arrived longer ago than the over label (1h, 24h, 72h).", []string{"over"}, nil)
	descSAMGaps = prometheus.NewDesc("kpe_backoffice_sams_with_gaps",
		"SAMs with signature counters missing below their highest counter received.", nil, nil)
	descMissing = prometheus.NewDesc("kpe_backoffice_sam_counters_missing",
		"Signature counters missing below each SAM's highest, over all SAMs.", nil, nil)
	descAlarms = prometheus.NewDesc("kpe_backoffice_alarms_open",
		"Open (not yet acknowledged) alarms by kind.", []string{"kind"}, nil)
	descRenewals = prometheus.NewDesc("kpe_backoffice_renewal_updates",
		"Staged card data renewal updates by status (staged, applied, superseded).", []string{"status"}, nil)
	descStoreSeconds = prometheus.NewDesc("kpe_backoffice_store_scrape_seconds",
		"Time the store took to compute the gauges of this scrape.", nil, nil)
	descStoreUp = prometheus.NewDesc("kpe_backoffice_store_up",
		"1 when the store answered this scrape's queries, else 0.", nil, nil)

	descPoolAcquired = prometheus.NewDesc("kpe_backoffice_db_pool_acquired_conns", "Database connections in use.", nil, nil)
	descPoolIdle     = prometheus.NewDesc("kpe_backoffice_db_pool_idle_conns", "Idle database connections.", nil, nil)
	descPoolTotal    = prometheus.NewDesc("kpe_backoffice_db_pool_conns", "Database connections open.", nil, nil)
	descPoolMax      = prometheus.NewDesc("kpe_backoffice_db_pool_max_conns", "The pool's bound on connections.", nil, nil)
	descPoolAcquires = prometheus.NewDesc("kpe_backoffice_db_pool_acquires_total", "Connections taken from the pool.", nil, nil)
	descPoolEmpty    = prometheus.NewDesc("kpe_backoffice_db_pool_empty_acquires_total",
		"Connections taken when none was idle (waited or opened one).", nil, nil)
	descPoolWait = prometheus.NewDesc("kpe_backoffice_db_pool_acquire_seconds_total",
		"Time spent taking connections from the pool.", nil, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTerminals, descSilent, descSAMGaps, descMissing, descAlarms, descRenewals, descStoreSeconds, descStoreUp,
		descPoolAcquired, descPoolIdle, descPoolTotal, descPoolMax, descPoolAcquires, descPoolEmpty, descPoolWait} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if ps, ok := c.s.store.(poolStore); ok {
		p := ps.poolStats()
		gauge(descPoolAcquired, float64(p.Acquired))
		gauge(descPoolIdle, float64(p.Idle))
		gauge(descPoolTotal, float64(p.Total))
		gauge(descPoolMax, float64(p.Max))
		ch <- prometheus.MustNewConstMetric(descPoolAcquires, prometheus.CounterValue, float64(p.Acquires))
		ch <- prometheus.MustNewConstMetric(descPoolEmpty, prometheus.CounterValue, float64(p.EmptyAcquires))
		ch <- prometheus.MustNewConstMetric(descPoolWait, prometheus.CounterValue, p.AcquireWait.Seconds())
	}
	gs, ok := c.s.store.(gaugeStore)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeGaugeTimeout)
	defer cancel()
	start := time.Now()
	g, err := gs.Gauges(ctx, c.s.cfg.Now(), SilentAfter)
	gauge(descStoreSeconds, time.Since(start).Seconds())
	if err != nil {
		gauge(descStoreUp, 0) // the other store gauges are left out
		return
	}
	var counts map[RenewalStatus]int64
	if rs, ok := c.s.store.(RenewalStore); ok {
		if counts, err = rs.RenewalCounts(ctx); err != nil {
			gauge(descStoreUp, 0)
			return
		}
	}
	gauge(descStoreUp, 1)
	if counts != nil {
		for _, st := range RenewalStatuses {
			gauge(descRenewals, float64(counts[st]), string(st))
		}
	}
	gauge(descTerminals, float64(g.Terminals))
	for i, d := range SilentAfter {
		var n int64
		if i < len(g.Silent) {
			n = g.Silent[i]
		}
		gauge(descSilent, float64(n), durationLabel(d))
	}
	gauge(descSAMGaps, float64(g.SAMsWithGaps))
	gauge(descMissing, float64(g.MissingCounters))
	for _, k := range AlarmKinds {
		gauge(descAlarms, float64(g.Alarms[k]), k)
	}
	var other int64
	for k, n := range g.Alarms {
		if !slices.Contains(AlarmKinds, k) {
			other += n
		}
	}
	gauge(descAlarms, float64(other), "other")
}

// durationLabel writes whole hours as "24h", as Prometheus durations do.
func durationLabel(d time.Duration) string {
	if d%time.Hour == 0 {
		return strings.TrimSuffix(d.String(), "0m0s")
	}
	return d.String()
}

// Ingest verifies and stores a batch sent by peer: records are bound to
// the sender and their SAM by bindRecord. The results and the time taken
// go into the metrics.
func (s *Service) Ingest(ctx context.Context, b *wire.Batch, peer Identity) (*wire.BatchResult, error) {
	start := time.Now()
	out, entries, err := s.ingest(ctx, b, peer)
	s.metrics.batchDur.Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, ErrBatch) || errors.Is(err, ErrCertificate):
		s.metrics.batches.WithLabelValues("refused").Inc()
	case err != nil:
		s.metrics.batches.WithLabelValues("error").Inc()
	default:
		s.metrics.batches.WithLabelValues("ok").Inc()
		s.metrics.observeIngest(entries, out.Results)
	}
	return out, err
}

// Verify answers a printed code: valid or not, and what the record says.
// A code whose check symbol is wrong is reported as such (a typo) without
// a lookup. The result and the time taken go into the metrics.
func (s *Service) Verify(ctx context.Context, typed string) (*wire.Verdict, error) {
	start := time.Now()
	v, err := s.verify(ctx, typed)
	s.metrics.verDur.Observe(time.Since(start).Seconds())
	s.metrics.verify.WithLabelValues(verifyLabel(v, err)).Inc()
	return v, err
}
