package outbox

import (
	"encoding/binary"
	"fmt"
	"os"
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
	// FileBytes is the size of the file on disk. bbolt grows it ahead of
	// use and never shrinks it (Compact does). DataBytes is the part in
	// use up to the last page written (bbolt's high-water mark), FreeBytes
	// the free pages below it that new records reuse.
	FileBytes, DataBytes, FreeBytes int64
}

// Used is the larger of the two limits' use.
func (s Stats) Used() float64 { return max(s.CountUsed, s.AgeUsed) }

// backlog is what the limits look at: the unsynced records' count (a
// counter) and the age of the oldest (the first of the unsynced index).
type backlog struct {
	count              int
	oldest             time.Duration
	countUsed, ageUsed float64
}

func unsynced(tx *bolt.Tx, now time.Time, o Options) (backlog, error) {
	b := backlog{count: count(tx.Bucket(bMeta), kUnsynced)}
	if k, _ := tx.Bucket(bUnsynced).Cursor().First(); k != nil {
		e, err := getEntry(tx.Bucket(bRecords), k)
		if err != nil {
			return b, err
		}
		b.oldest = max(now.Sub(time.UnixMilli(e.enqueued)), 0)
	}
	b.countUsed = float64(b.count) / float64(o.MaxRecords)
	b.ageUsed = float64(b.oldest) / float64(o.MaxAge)
	return b, nil
}

func stats(tx *bolt.Tx, now time.Time, o Options) (Stats, error) {
	u, err := unsynced(tx, now, o)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Unsynced: u.count, OldestUnsynced: u.oldest, CountUsed: u.countUsed, AgeUsed: u.ageUsed,
		Acknowledged: count(tx.Bucket(bMeta), kAcked), Dead: tx.Bucket(bDead).Stats().KeyN, DataBytes: tx.Size()}
	recs := tx.Bucket(bRecords)
	err = tx.Bucket(bUnsynced).ForEach(func(k, _ []byte) error {
		e, err := getEntry(recs, k)
		if err != nil {
			return err
		}
		if e.state == Sending {
			st.Sending++
		} else {
			st.Pending++
		}
		return nil
	})
	if err != nil {
		return st, err
	}
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
	st.FileBytes = st.DataBytes // what bbolt maps, when the file cannot be stat'ed
	if fi, serr := os.Stat(ob.path); serr == nil {
		st.FileBytes = fi.Size()
	}
	bs := ob.db.Stats()
	st.FreeBytes = int64(bs.FreePageN+bs.PendingPageN) * int64(ob.db.Info().PageSize)
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

// encodeDead makes a dead-letter value: reason length (2) ‖ reason (at
// most 1 KiB) ‖ entry.
func encodeDead(reason string, e entry) []byte {
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	v := binary.BigEndian.AppendUint16(nil, uint16(len(reason)))
	return append(append(v, reason...), e.encode()...)
}

// decodeDead reads a dead-letter value: reason length (2) ‖ reason ‖
// entry.
func decodeDead(k, v []byte) (reason string, e entry, err error) {
	if len(v) < 2 || len(v) < 2+int(binary.BigEndian.Uint16(v)) {
		return "", entry{}, fmt.Errorf("%w: dead record %d", ErrCorrupt, binary.BigEndian.Uint64(k))
	}
	n := int(binary.BigEndian.Uint16(v))
	e, err = decodeEntry(v[2+n:])
	if err != nil {
		return "", entry{}, fmt.Errorf("%w: dead record %d: %v", ErrCorrupt, binary.BigEndian.Uint64(k), err)
	}
	return string(v[2 : 2+n]), e, nil
}

// Dead lists the dead-letter bucket.
func (ob *Outbox) Dead() ([]DeadItem, error) {
	var out []DeadItem
	err := ob.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bDead).ForEach(func(k, v []byte) error {
			reason, e, err := decodeDead(k, v)
			if err != nil {
				return err
			}
			out = append(out, DeadItem{Seq: binary.BigEndian.Uint64(k), Reason: reason, Encoded: append([]byte(nil), e.rec...)})
			return nil
		})
	})
	return out, err
}

// Backlog is Stats' Unsynced and OldestUnsynced alone, read from the
// counter and the first unsynced entry (Stats walks every unsynced entry:
// too much to do for each batch of a large backlog).
func (ob *Outbox) Backlog() (count int, oldest time.Duration, err error) {
	err = ob.db.View(func(tx *bolt.Tx) error {
		b, err := unsynced(tx, ob.o.Now(), ob.o)
		count, oldest = b.count, b.oldest
		return err
	})
	return count, oldest, err
}
