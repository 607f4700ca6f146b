package outbox

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Alarm levels: the fullness (the larger of the count and age ratios) at
// which the agent raises an alarm.
var AlarmLevels = []float64{0.50, 0.80, 0.95}

// Stats describes the outbox.
type Stats struct {
	Pending, Sending, Acknowledged, Dead int
	Unsynced                             int           // pending + sending
	OldestUnsynced                       time.Duration // age of the oldest unsynced record (0 when none)
	CountUsed, AgeUsed                   float64       // against MaxRecords and MaxAge; 1 is the hard limit
	Alarm                                float64       // highest AlarmLevels crossed (0 none, 1 full)
	MovedAside                           []string      // damaged files moved aside (kept for salvage)
	FileBytes                            int64
}

// Used is the larger of the two limits' use.
func (s Stats) Used() float64 { return max(s.CountUsed, s.AgeUsed) }

func stats(tx *bolt.Tx, now time.Time, o Options) (Stats, error) {
	var st Stats
	var oldest int64
	err := tx.Bucket(bRecords).ForEach(func(k, v []byte) error {
		e, err := decodeEntry(v)
		if err != nil {
			return fmt.Errorf("%w: record %d: %v", ErrCorrupt, binary.BigEndian.Uint64(k), err)
		}
		switch e.state {
		case Pending:
			st.Pending++
		case Sending:
			st.Sending++
		case Acknowledged:
			st.Acknowledged++
			return nil
		}
		if oldest == 0 || e.enqueued < oldest {
			oldest = e.enqueued
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	st.Dead = tx.Bucket(bDead).Stats().KeyN
	st.Unsynced = st.Pending + st.Sending
	if oldest != 0 {
		st.OldestUnsynced = max(now.Sub(time.UnixMilli(oldest)), 0)
	}
	st.CountUsed = float64(st.Unsynced) / float64(o.MaxRecords)
	st.AgeUsed = float64(st.OldestUnsynced) / float64(o.MaxAge)
	for _, l := range AlarmLevels {
		if st.Used() >= l {
			st.Alarm = l
		}
	}
	if st.Used() >= 1 {
		st.Alarm = 1
	}
	if a := tx.Bucket(bMeta).Get(kAside); len(a) > 0 {
		st.MovedAside = strings.Fields(string(a))
	}
	st.FileBytes = tx.Size()
	return st, nil
}

// Stats reads the outbox's counts, age and alarm level.
func (ob *Outbox) Stats() (Stats, error) {
	var st Stats
	err := ob.db.View(func(tx *bolt.Tx) error {
		var err error
		st, err = stats(tx, ob.o.Now(), ob.o)
		return err
	})
	return st, err
}

// ClearMovedAside acknowledges the moved-aside alarm (after salvage).
func (ob *Outbox) ClearMovedAside() error {
	return ob.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Delete(kAside) })
}

// DeadItem is a record the back office rejected permanently.
type DeadItem struct {
	Seq     uint64
	Reason  string
	Encoded []byte
}

// Dead lists the dead-letter bucket.
func (ob *Outbox) Dead() ([]DeadItem, error) {
	var out []DeadItem
	err := ob.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bDead).ForEach(func(k, v []byte) error {
			if len(v) < 2 || len(v) < 2+int(binary.BigEndian.Uint16(v)) {
				return fmt.Errorf("%w: dead record %d", ErrCorrupt, binary.BigEndian.Uint64(k))
			}
			n := int(binary.BigEndian.Uint16(v))
			e, err := decodeEntry(v[2+n:])
			if err != nil {
				return fmt.Errorf("%w: dead record %d: %v", ErrCorrupt, binary.BigEndian.Uint64(k), err)
			}
			out = append(out, DeadItem{Seq: binary.BigEndian.Uint64(k), Reason: string(v[2 : 2+n]), Encoded: append([]byte(nil), e.rec...)})
			return nil
		})
	})
	return out, err
}
