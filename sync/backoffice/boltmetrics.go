package backoffice

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"kpe-agent/sync/wire"
)

// Gauges reports the store's gauges for the metrics (StoreGauges), from
// one read transaction.
func (s *BoltStore) Gauges(_ context.Context, now time.Time, silent []time.Duration) (StoreGauges, error) {
	g := StoreGauges{Silent: make([]int64, len(silent)), Alarms: map[string]int64{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bbTerminals).ForEach(func(_, v []byte) error {
			var t terminalState
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("terminal: %w", err)
			}
			g.Terminals++
			for i, d := range silent {
				if t.LastSeen.Before(now.Add(-d)) {
					g.Silent[i]++
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bbSAMs).ForEach(func(_, v []byte) error {
			var st samState
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("SAM: %w", err)
			}
			g.add(&st.Counters)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bbAlarms).ForEach(func(k, v []byte) error {
			a, err := decodeBoltAlarm(k, v)
			if err != nil {
				return err
			}
			if a.State == wire.AlarmOpen {
				g.Alarms[a.Kind]++
			}
			return nil
		})
	})
	if err != nil {
		return g, fmt.Errorf("backoffice: metrics: %w", err)
	}
	return g, nil
}
