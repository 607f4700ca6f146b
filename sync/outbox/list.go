package outbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"kpe-agent/sync/record"
)

// ErrNotDead: Requeue was given a seq that is not in the dead-letter
// bucket.
var ErrNotDead = errors.New("outbox: no such record in the dead-letter bucket")

// ListItem is one record in the outbox with its bookkeeping, for a
// technician's listing (kpectl queue list).
type ListItem struct {
	Seq      uint64
	State    State
	Enqueued time.Time
	Attempts uint32    // claims so far
	Acked    time.Time // when it was acknowledged; zero before
	Encoded  []byte
}

// item is e, stored under key k, as List and Recent give it (a copy of
// the record's bytes).
func (e entry) item(k []byte) ListItem {
	it := ListItem{Seq: binary.BigEndian.Uint64(k), State: e.state, Enqueued: time.UnixMilli(e.enqueued),
		Attempts: e.attempts, Encoded: bytes.Clone(e.rec)}
	if e.acked != 0 {
		it.Acked = time.UnixMilli(e.acked)
	}
	return it
}

// List returns up to limit records (every one when limit <= 0) in state,
// or in any state when state is 0, oldest first. It only reads. The
// dead-letter bucket is listed by Dead.
func (ob *Outbox) List(state State, limit int) ([]ListItem, error) {
	if state != 0 && (state < Pending || state > Acknowledged) {
		return nil, fmt.Errorf("outbox: list: no state %d", state)
	}
	var out []ListItem
	err := ob.db.View(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bRecords)
		// pending and sending records are all in the unsynced index
		indexed := state == Pending || state == Sending
		c := recs.Cursor()
		if indexed {
			c = tx.Bucket(bUnsynced).Cursor()
		}
		for k, v := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			var e entry
			var err error
			if indexed {
				e, err = getEntry(recs, k)
			} else if e, err = decodeEntry(v); err != nil {
				err = fmt.Errorf("%w: record %d: %v", ErrCorrupt, binary.BigEndian.Uint64(k), err)
			}
			if err != nil {
				return err
			}
			if state != 0 && e.state != state {
				continue
			}
			out = append(out, e.item(k))
		}
		return nil
	})
	return out, err
}

// Requeue moves records from the dead-letter bucket back to pending (after
// whatever made the back office reject them has been fixed) and returns
// how many it moved. It is one transaction: a seq that is not in the
// dead-letter bucket is ErrNotDead and nothing moves. A record keeps its
// seq, enqueue time and attempts, so the unsynced index stays in enqueue
// order; it counts toward the limits from its first enqueue, and a record
// rejected long ago can raise the age alarm until the back office takes it.
func (ob *Outbox) Requeue(seqs []uint64) (int, error) {
	seqs = slices.Clone(seqs)
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	err := ob.db.Update(func(tx *bolt.Tx) error {
		recs, unsynced, dead, meta := tx.Bucket(bRecords), tx.Bucket(bUnsynced), tx.Bucket(bDead), tx.Bucket(bMeta)
		for _, seq := range seqs {
			k := seqKey(seq)
			v := dead.Get(k)
			if v == nil {
				return fmt.Errorf("%w: %d", ErrNotDead, seq)
			}
			_, e, err := decodeDead(k, v)
			if err != nil {
				return err
			}
			if recs.Get(k) != nil {
				return fmt.Errorf("%w: dead record %d is also in the records", ErrCorrupt, seq)
			}
			e.state, e.acked = Pending, 0
			if err := recs.Put(k, e.encode()); err != nil {
				return err
			}
			if err := unsynced.Put(k, nil); err != nil {
				return err
			}
			if err := addCount(meta, kUnsynced, 1); err != nil {
				return err
			}
			if err := dead.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(seqs), nil
}

// Import adds records recovered by Salvage from a damaged outbox as
// pending, oldest seq first in the order given, and returns how many it
// added; one transaction. A record whose hash is already in the outbox
// (in any state, or dead) is skipped, so importing twice adds nothing.
//
// Unlike Append, Import does not check that a record follows the last
// one and does not move the last-hash key: the records belong to the
// damaged file's chain, not to this file's, and the agent's next record
// must still follow the agent's last one. The back office checks every
// terminal's chain itself and finds these records' place in it. The
// limits do not refuse an import (nothing recovered is dropped), but the
// records count toward them, enqueued now. Last reports the record with
// the highest seq, which after an import is an imported one until the
// next Append; import into a file of its own (kpectl queue salvage --out).
func (ob *Outbox) Import(rs []*record.Record) (int, error) {
	encs := make([][]byte, len(rs))
	hashes := make([][32]byte, len(rs))
	for i, r := range rs {
		if r == nil {
			return 0, fmt.Errorf("outbox: import: record %d is nil", i)
		}
		enc, err := r.Encode()
		if err != nil {
			return 0, fmt.Errorf("outbox: import: record %d: %w", i, err)
		}
		if hashes[i], _, err = record.HashesOf(enc); err != nil {
			return 0, fmt.Errorf("outbox: import: record %d: %w", i, err)
		}
		encs[i] = enc
	}
	// have notes the hash of a stored encoding (record.Hash, the one rule);
	// one that does not decode is no record an import could repeat
	have := map[[32]byte]bool{}
	note := func(enc []byte) {
		if h, err := record.HashOf(enc); err == nil {
			have[h] = true
		}
	}
	now := ob.o.Now().UnixMilli()
	n := 0
	err := ob.db.Update(func(tx *bolt.Tx) error {
		recs, meta := tx.Bucket(bRecords), tx.Bucket(bMeta)
		err := recs.ForEach(func(k, v []byte) error {
			e, err := decodeEntry(v)
			if err != nil {
				return fmt.Errorf("%w: record %d: %v", ErrCorrupt, binary.BigEndian.Uint64(k), err)
			}
			note(e.rec)
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bDead).ForEach(func(k, v []byte) error {
			_, e, err := decodeDead(k, v)
			if err == nil {
				note(e.rec)
			}
			return err
		})
		if err != nil {
			return err
		}
		for i, enc := range encs {
			h := hashes[i]
			if have[h] {
				continue
			}
			have[h] = true
			seq, err := recs.NextSequence()
			if err != nil {
				return err
			}
			if err := recs.Put(seqKey(seq), entry{state: Pending, enqueued: now, rec: enc}.encode()); err != nil {
				return err
			}
			if err := tx.Bucket(bUnsynced).Put(seqKey(seq), nil); err != nil {
				return err
			}
			n++
		}
		return addCount(meta, kUnsynced, n)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
