package backoffice_test

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// series is a scrape: each series ("name{label="v",…}", labels sorted as
// the exposition writes them) and its value.
type series map[string]float64

func scrape(t *testing.T, svc *backoffice.Service) series {
	t.Helper()
	a := get(svc.MetricsHandler(), "localhost", "", "/metrics") // the staff listener serves it as it is, without sign-in (TestSignIn)
	require.Equal(t, 200, a.status, a.body)
	require.Contains(t, a.header.Get("Content-Type"), "text/plain")
	out := series{}
	sc := bufio.NewScanner(strings.NewReader(a.body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		require.Positive(t, i, line)
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out
}

// The back office's /metrics after a known history, on both stores: the
// counters of ingest by result and reason, per service and per flag, the
// verifications and their latency, and the store gauges (terminals,
// silent terminals, SAM counter gaps, alarms by kind), and the pool on
// PostgreSQL. No series names a terminal or SAM.
func TestBackofficeMetrics(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		recs := l.records(3, "t-01") // askes, counters 1..3
		l.ingest(recs...)
		l.ingest(recs[0]) // a duplicate
		taspen := baseRecord("t-01")
		taspen.Service = "taspen"
		l.ingest(l.seal(taspen, l.sam)) // counter 4
		l.ingest([]byte("not a record"))

		// the same counter (4) on other content: rejected, an alarm
		r := baseRecord("t-01")
		r.Service = "bapertarum"
		r.PrevHash = l.prev["t-01"]
		r.Signer, r.SAMSerial = record.SignerSAM, samSerial
		r.Time = time.UnixMilli(time.Now().UnixMilli()).UTC()
		d, err := r.Digest()
		require.NoError(t, err)
		r.Counter, r.Signature = 4, l.sam.SignAt(d, 4)
		twin, err := r.Encode()
		require.NoError(t, err)
		assert.Equal(t, wire.Rejected, l.ingest(twin)[0].Status)

		// counters 5 and 6 lost: 7 opens a gap of two
		l.sam.SetCounter(6)
		res := l.ingest(l.records(1, "t-01")...)
		require.Contains(t, res[0].Flags, wire.FlagGapBefore)

		code := codeOf(t, recs[1])
		for _, c := range []string{code, typo(code)} {
			_, err := l.svc.Verify(ctx, c)
			require.NoError(t, err)
		}
		_, err = l.svc.Verify(ctx, "0000")
		require.NoError(t, err)

		m := scrape(t, l.svc)
		want := map[string]float64{
			`kpe_backoffice_records_total{reason="",result="accepted"}`:                 5,
			`kpe_backoffice_records_total{reason="",result="duplicate"}`:                1,
			`kpe_backoffice_records_total{reason="malformed",result="rejected"}`:        1,
			`kpe_backoffice_records_total{reason="counter-conflict",result="rejected"}`: 1,
			`kpe_backoffice_records_total{reason="bad-signature",result="rejected"}`:    0,
			`kpe_backoffice_records_ingested_total{service="askes"}`:                    4,
			`kpe_backoffice_records_ingested_total{service="taspen"}`:                   1,
			`kpe_backoffice_record_flags_total{flag="gap-before"}`:                      1,
			`kpe_backoffice_record_flags_total{flag="chain-start"}`:                     1,
			`kpe_backoffice_ingest_batches_total{result="ok"}`:                          6,
			`kpe_backoffice_ingest_batch_seconds_count`:                                 6,
			`kpe_backoffice_verifications_total{result="valid"}`:                        1,
			`kpe_backoffice_verifications_total{result="check-symbol"}`:                 1,
			`kpe_backoffice_verifications_total{result="length"}`:                       1,
			`kpe_backoffice_verifications_total{result="unknown"}`:                      0,
			`kpe_backoffice_verification_seconds_count`:                                 3,
			`kpe_backoffice_terminals`:                                                  1,
			`kpe_backoffice_terminals_silent{over="1h"}`:                                0,
			`kpe_backoffice_terminals_silent{over="24h"}`:                               0,
			`kpe_backoffice_sams_with_gaps`:                                             1,
			`kpe_backoffice_sam_counters_missing`:                                       2,
			`kpe_backoffice_alarms_open{kind="counter-conflict"}`:                       1,
			`kpe_backoffice_alarms_open{kind="sam-certificate-conflict"}`:               0,
			`kpe_backoffice_store_up`:                                                   1,
		}
		for k, v := range want {
			got, ok := m[k]
			if assert.True(t, ok, "no series %s", k) {
				assert.Equal(t, v, got, k)
			}
		}
		assert.Contains(t, m, `kpe_backoffice_verification_seconds_bucket{le="+Inf"}`)
		_, pool := m["kpe_backoffice_db_pool_max_conns"]
		assert.Equal(t, t.Name() == "TestBackofficeMetrics/postgres", pool, "pool gauges on PostgreSQL only")
		if pool {
			assert.Positive(t, m["kpe_backoffice_db_pool_max_conns"])
			assert.Positive(t, m["kpe_backoffice_db_pool_acquires_total"])
		}
		for k := range m {
			assert.NotContains(t, k, "t-01", "a terminal in a label")
			assert.NotContains(t, k, "53414d", "a SAM serial in a label")
		}

		// a day and a bit later, the terminal is silent (the store's
		// gauges are computed at scrape time, the same from every node)
		later, err := backoffice.New(l.store, backoffice.Config{CA: l.ca.Pool(), Now: func() time.Time { return time.Now().Add(25 * time.Hour) }})
		require.NoError(t, err)
		m = scrape(t, later)
		assert.Equal(t, 1.0, m[`kpe_backoffice_terminals_silent{over="24h"}`])
		assert.Equal(t, 0.0, m[`kpe_backoffice_terminals_silent{over="72h"}`])
		assert.Equal(t, 0.0, m[`kpe_backoffice_records_total{reason="",result="accepted"}`], "counters are the node's own")

		// the staff listener's Host check holds for /metrics too
		assert.Equal(t, 403, get(l.svc.StaffHandler(backoffice.StaffConfig{}), "evil.example", "", "/metrics").status)
	})
}

// A store that fails its queries: the scrape still answers, with the
// counters and kpe_backoffice_store_up 0.
func TestBackofficeMetricsStoreDown(t *testing.T) {
	l, _ := staffLab(t)
	require.NoError(t, l.store.Close())
	m := scrape(t, l.svc)
	assert.Equal(t, 0.0, m["kpe_backoffice_store_up"])
	assert.NotContains(t, m, "kpe_backoffice_terminals")
	assert.Equal(t, 3.0, m[`kpe_backoffice_records_total{reason="",result="accepted"}`])
}
