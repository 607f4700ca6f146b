package backoffice

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// A fleet naming more services than MaxServiceLabels grows the series
// no further: the rest count under "other". Rejection reasons lose their
// detail, and an unknown reason or flag adds no series.
func TestMetricsLabelsBounded(t *testing.T) {
	m := newServiceMetrics(&Service{})
	n := MaxServiceLabels + 6
	entries := make([]Entry, n)
	results := make([]wire.Result, n)
	for i := range entries {
		entries[i].Rec = &record.Record{Service: fmt.Sprintf("svc-%02d", i)}
		results[i] = wire.Result{Status: wire.Accepted, Flags: []string{"made-up-flag"}}
	}
	m.observeIngest(entries, results)
	m.observeIngest(entries[:1], results[:1])
	assert.Equal(t, MaxServiceLabels+1, count(t, m.services))
	assert.Equal(t, 6.0, value(t, m.services.WithLabelValues("other")))
	assert.Equal(t, 2.0, value(t, m.services.WithLabelValues("svc-00")))
	assert.Equal(t, len(recordFlags), count(t, m.flags))

	before := count(t, m.records)
	m.observeIngest(make([]Entry, 3), []wire.Result{
		{Status: wire.Rejected, Reason: wire.ReasonMalformed + ": truncated"},
		{Status: wire.Rejected, Reason: "something new"},
		{Status: wire.Retry},
	})
	require.Equal(t, before, count(t, m.records))
	assert.Equal(t, 1.0, value(t, m.records.WithLabelValues("rejected", wire.ReasonMalformed)))
	assert.Equal(t, 1.0, value(t, m.records.WithLabelValues("rejected", "other")))
	assert.Equal(t, "24h", durationLabel(SilentAfter[1]))
	assert.Equal(t, "1h30m0s", durationLabel(90*60*1e9))
}

// count is how many series c collects.
func count(t *testing.T, c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 1000)
	c.Collect(ch)
	close(ch)
	return len(ch)
}

// value is a counter's value.
func value(t *testing.T, c prometheus.Counter) float64 {
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}
