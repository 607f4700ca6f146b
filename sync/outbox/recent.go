package outbox

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Recent returns the records (in any state; the dead-letter bucket is
// Dead's) enqueued at or after since, newest first, at most limit of them
// (every one when limit <= 0). It only reads, and walks back from the
// newest record only as far as since: the agent's list of today's codes
// costs what today holds, not what the outbox holds.
func (ob *Outbox) Recent(since time.Time, limit int) ([]ListItem, error) {
	var out []ListItem
	from := since.UnixMilli()
	err := ob.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRecords).Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			e, err := decodeEntry(v)
			if err != nil {
				return fmt.Errorf("%w: record %d: %v", ErrCorrupt, binary.BigEndian.Uint64(k), err)
			}
			if e.enqueued < from {
				// seqs follow the enqueue order: the rest is older
				break
			}
			out = append(out, e.item(k))
		}
		return nil
	})
	return out, err
}
