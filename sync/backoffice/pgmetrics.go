package backoffice

import (
	"context"
	"fmt"
	"time"
)

// Gauges reports the store's gauges for the metrics (StoreGauges), in
// one read-only transaction so the figures agree with each other.
func (s *PGStore) Gauges(ctx context.Context, now time.Time, silent []time.Duration) (StoreGauges, error) {
	g := StoreGauges{Silent: make([]int64, len(silent)), Alarms: map[string]int64{}}
	tx, err := s.staff.Begin(ctx)
	if err != nil {
		return g, fmt.Errorf("backoffice: metrics: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM terminals").Scan(&g.Terminals); err != nil {
		return g, fmt.Errorf("backoffice: metrics: terminals: %w", err)
	}
	for i, d := range silent {
		// a terminal never seen (no last_seen) counts as silent
		err := tx.QueryRow(ctx, "SELECT count(*) FROM terminals WHERE last_seen IS NULL OR last_seen < $1", now.Add(-d)).Scan(&g.Silent[i])
		if err != nil {
			return g, fmt.Errorf("backoffice: metrics: silent terminals: %w", err)
		}
	}
	err = eachCounters(tx.Query(ctx, "SELECT serial, counters FROM sams WHERE jsonb_array_length(COALESCE(counters->'gaps', '[]'::jsonb)) > 0"))(
		func(_ []byte, l *counters) { g.add(l) })
	if err != nil {
		return g, fmt.Errorf("backoffice: metrics: counter gaps: %w", err)
	}
	rows, err := tx.Query(ctx, "SELECT kind, count(*) FROM alarms WHERE state = 'open' GROUP BY kind")
	if err != nil {
		return g, fmt.Errorf("backoffice: metrics: alarms: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var n int64
		if err := rows.Scan(&kind, &n); err != nil {
			return g, fmt.Errorf("backoffice: metrics: alarms: %w", err)
		}
		g.Alarms[kind] = n
	}
	if err := rows.Err(); err != nil {
		return g, fmt.Errorf("backoffice: metrics: alarms: %w", err)
	}
	return g, nil
}

// poolStats is the connection pool's state for the metrics.
func (s *PGStore) poolStats() PoolStats {
	st := s.pool.Stat()
	return PoolStats{Acquired: st.AcquiredConns(), Idle: st.IdleConns(), Total: st.TotalConns(), Max: st.MaxConns(),
		Acquires: st.AcquireCount(), EmptyAcquires: st.EmptyAcquireCount(), AcquireWait: st.AcquireDuration()}
}

// add counts a SAM's counter ledger into the gap gauges.
func (g *StoreGauges) add(l *counters) {
	if len(l.Gaps) == 0 {
		return
	}
	g.SAMsWithGaps++
	for _, r := range l.Gaps {
		g.MissingCounters += int64(r.To) - int64(r.From) + 1
	}
}
