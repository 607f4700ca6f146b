package daemon

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"kpe-agent/internal/buildinfo"
	"kpe-agent/sync/uploader"
)

// Metrics are the agent's Prometheus metrics, served on the local API's
// /metrics. None carries personal data: labels are outcomes, status words
// and results.
type Metrics struct {
	Registry *prometheus.Registry

	sessions   *prometheus.CounterVec
	apduErrors *prometheus.CounterVec
	readers    prometheus.Gauge
	samCounter prometheus.Gauge
	syncTime   prometheus.Histogram
	syncSends  *prometheus.CounterVec
	commit     prometheus.Histogram
	tapToCode  prometheus.Histogram
	buildInfo  *prometheus.GaugeVec
}

// latency buckets from 1 ms to about 16 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.001, 2, 15)

// NewMetrics makes the registry with every metric but the outbox gauges
// (added by New).
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kpe_card_sessions_total",
			Help: "Card workflows by outcome: recorded, or the symbolic error code."}, []string{"outcome"}),
		apduErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kpe_apdu_errors_total",
			Help: "Failed card or SAM exchanges by status word (hex) or transport error kind."}, []string{"status"}),
		readers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kpe_readers", Help: "PC/SC readers present."}),
		samCounter: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kpe_sam_signature_counter",
			Help: "The terminal SAM's signature counter (last value read or used)."}),
		syncTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kpe_sync_request_seconds",
			Help: "Round trip of one batch to the back office.", Buckets: latencyBuckets}),
		syncSends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kpe_sync_requests_total",
			Help: "Batches sent to the back office by result (ok or error)."}, []string{"result"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kpe_outbox_commit_seconds",
			Help: "Durable commit of one record to the outbox.", Buckets: latencyBuckets}),
		tapToCode: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kpe_tap_to_code_seconds",
			Help: "Card detected to record committed, for workflows that waited for the card (human steps included).", Buckets: latencyBuckets}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kpe_build_info",
			Help: "Always 1; the labels say which build runs: its version, commit and Go version."}, []string{"version", "commit", "go_version"}),
	}
	bi := buildinfo.Read()
	m.buildInfo.WithLabelValues(bi.Version, bi.Commit, bi.GoVersion).Set(1)
	m.Registry.MustRegister(m.sessions, m.apduErrors, m.readers, m.samCounter, m.syncTime, m.syncSends, m.commit, m.tapToCode, m.buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// registerOutbox adds the gauges read from the outbox and the uploader at
// scrape time: numbers reads the outbox, status the uploader (nil: no
// uploader).
func (m *Metrics) registerOutbox(numbers func() queueNumbers, status func() uploader.Status) {
	stats := func(f func(q queueNumbers) float64) func() float64 {
		return func() float64 { return f(numbers()) }
	}
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kpe_outbox_unsynced", Help: "Records not yet acknowledged by the back office."},
			stats(func(q queueNumbers) float64 { return float64(q.unsynced) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kpe_outbox_oldest_unsynced_seconds", Help: "Age of the oldest unsynced record."},
			stats(func(q queueNumbers) float64 { return q.oldest.Seconds() })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kpe_outbox_dead", Help: "Records the back office rejected (dead letters)."},
			stats(func(q queueNumbers) float64 { return float64(q.dead) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kpe_outbox_file_bytes",
			Help: "Size of the outbox file. It stays flat under a steady load once the retention has passed (docs/outbox.md); bbolt never shrinks it (kpectl queue compact does)."},
			stats(func(q queueNumbers) float64 { return float64(q.stats.FileBytes) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kpe_outbox_free_bytes",
			Help: "Free pages in the outbox file, reused by new records."},
			stats(func(q queueNumbers) float64 { return float64(q.stats.FreeBytes) })),
	)
	if status != nil {
		for _, r := range []struct {
			name string
			f    func() uint64
		}{
			{"accepted", func() uint64 { return status().Accepted }},
			{"duplicate", func() uint64 { return status().Duplicates }},
			{"rejected", func() uint64 { return status().Rejected }},
		} {
			f := r.f
			m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kpe_sync_records_total",
				Help: "Records the back office answered, by result.", ConstLabels: prometheus.Labels{"result": r.name}},
				func() float64 { return float64(f()) }))
		}
	}
}

func (m *Metrics) observeSend(_ int, took time.Duration, err error) {
	m.syncTime.Observe(took.Seconds())
	if err != nil {
		m.syncSends.WithLabelValues("error").Inc()
		return
	}
	m.syncSends.WithLabelValues("ok").Inc()
}

// MetricNames lists every series name the agent's /metrics can carry,
// histograms with their _bucket, _sum and _count series: what the
// dashboards and alert rules in installer/ may use. It gathers a
// throwaway registry holding a zero snapshot (each labelled metric with
// one placeholder series), without a daemon, a reader or an outbox.
func MetricNames() ([]string, error) {
	m := NewMetrics()
	m.registerOutbox(func() queueNumbers { return queueNumbers{} }, func() uploader.Status { return uploader.Status{} })
	m.sessions.WithLabelValues("")
	m.apduErrors.WithLabelValues("")
	m.syncSends.WithLabelValues("")
	fams, err := m.Registry.Gather()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range fams {
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			out = append(out, f.GetName()+"_bucket", f.GetName()+"_sum", f.GetName()+"_count")
		case dto.MetricType_SUMMARY:
			out = append(out, f.GetName(), f.GetName()+"_sum", f.GetName()+"_count")
		default:
			out = append(out, f.GetName())
		}
	}
	return out, nil
}

// OnSend is the uploader hook feeding the sync metrics.
func (m *Metrics) OnSend() func(int, time.Duration, error) { return m.observeSend }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
