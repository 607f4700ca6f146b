package backoffice

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"kpe-agent/sync/record"
)

// The purse ledger in bbolt (purseledger.go).
var (
	bbPurses     = []byte("purses")          // card serial → purseState (JSON)
	bbPurseRows  = []byte("purse-rows")      // card serial ‖ PTC ‖ SAM serial ‖ counter → PurseRow (JSON)
	bbPursePaid  = []byte("purse-payments")  // settlement date ‖ 0 ‖ merchant ‖ 0 ‖ txn time (8) ‖ code → row key: the settled payments
	bbSettleDays = []byte("settlement-days") // settlement date → closed at (RFC 3339): the closed days
	bbUnchecked  = []byte("purse-unchecked") // row key → nil: the rows whose proof is unchecked
	bbPurseIndex = [][]byte{bbPurses, bbPurseRows, bbPursePaid, bbSettleDays, bbUnchecked}
)

func purseBuckets(tx *bolt.Tx) error {
	for _, b := range bbPurseIndex {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

// ledgerPurseBolt puts an accepted entry with a purse field into the
// ledger, inside Ingest's transaction (ledgerPurse), raises its alarms
// and returns the row as stored (nil: the record has no purse field).
// The settlement day is stamped here, against the closed days: bbolt
// has one writer, so no settlement closes a day meanwhile.
func ledgerPurseBolt(tx *bolt.Tx, e Entry, now time.Time) (*PurseRow, error) {
	row := purseRowOf(e, now)
	if row == nil {
		return nil, nil
	}
	day, err := openDay(now, func(d string) (bool, error) { return tx.Bucket(bbSettleDays).Get([]byte(d)) != nil, nil })
	if err != nil {
		return nil, err
	}
	row.SettlementDate = day
	purses, rows := tx.Bucket(bbPurses), tx.Bucket(bbPurseRows)
	st := &purseState{}
	if _, err := getJSON(purses, row.CardSerial[:], st); err != nil {
		return nil, err
	}
	alarms, err := ledgerPurse(st, row, func(serial [8]byte, ptc uint32) (*PurseRow, int, error) { return boltRowsAt(rows, serial, ptc) }, now)
	if err != nil {
		return nil, err
	}
	key := purseRowKey(row)
	if err := putJSON(rows, key, row); err != nil {
		return nil, err
	}
	if err := putJSON(purses, row.CardSerial[:], st); err != nil {
		return nil, err
	}
	if row.Settled() {
		if err := tx.Bucket(bbPursePaid).Put(paidKey(row), key); err != nil {
			return nil, err
		}
	}
	if row.Proof == ProofUnchecked {
		if err := tx.Bucket(bbUnchecked).Put(key, nil); err != nil {
			return nil, err
		}
	}
	for _, a := range alarms {
		if err := raiseBolt(tx.Bucket(bbAlarms), a); err != nil {
			return nil, err
		}
	}
	return row, nil
}

// CloseSettlementDay implements PurseStore: the marker, once.
func (s *BoltStore) CloseSettlementDay(_ context.Context, date string, at time.Time) error {
	if _, _, err := settlementBounds(date); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bbSettleDays)
		if b.Get([]byte(date)) != nil {
			return nil
		}
		return b.Put([]byte(date), []byte(at.UTC().Format(time.RFC3339Nano)))
	})
}

// paidKey orders a day's settled payments by merchant, transaction time
// and code (merchant ids hold no control characters).
func paidKey(r *PurseRow) []byte {
	k := append([]byte(r.settlementDay()), 0)
	k = append(append(k, r.Merchant...), 0)
	// txn times are after 1970 (record.validatePurse): big-endian sorts
	k = binary.BigEndian.AppendUint64(k, uint64(r.TxnTime.UnixMilli()))
	return append(k, r.Code...)
}

// boltRowsAt is the counted row at a card serial and PTC, and how many
// rows whose proof is not bad name it.
func boltRowsAt(rows *bolt.Bucket, serial [8]byte, ptc uint32) (*PurseRow, int, error) {
	prefix := append(serial[:0:0], serial[:]...)
	prefix = binary.BigEndian.AppendUint32(prefix, ptc)
	var counted *PurseRow
	n := 0
	c := rows.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var r PurseRow
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, 0, fmt.Errorf("backoffice: damaged purse row %x: %w", k, err)
		}
		if r.Proof != ProofBad {
			n++
		}
		if r.Counted {
			counted = &r
		}
	}
	return counted, n, nil
}

// Purse implements PurseStore.
func (s *BoltStore) Purse(_ context.Context, serial [8]byte) (*PurseView, error) {
	var v *PurseView
	err := s.db.View(func(tx *bolt.Tx) error {
		st := &purseState{}
		ok, err := getJSON(tx.Bucket(bbPurses), serial[:], st)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		v = st.view(serial)
		return nil
	})
	return v, err
}

// PurseRows implements PurseStore.
func (s *BoltStore) PurseRows(_ context.Context, serial [8]byte, limit int) ([]PurseRow, error) {
	var out []PurseRow
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bbPurseRows).Cursor()
		var ptc []PurseRow // the rows of one PTC, counted first
		flush := func() {
			for _, r := range ptc {
				if r.Counted {
					out = append(out, r)
				}
			}
			for _, r := range ptc {
				if !r.Counted {
					out = append(out, r)
				}
			}
			ptc = ptc[:0]
		}
		for k, v := c.Seek(serial[:]); k != nil && bytes.HasPrefix(k, serial[:]); k, v = c.Next() {
			var r PurseRow
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("backoffice: damaged purse row %x: %w", k, err)
			}
			if len(ptc) > 0 && ptc[0].PTC != r.PTC {
				flush()
			}
			ptc = append(ptc, r)
		}
		flush()
		return nil
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

// EachPayment implements PurseStore.
func (s *BoltStore) EachPayment(ctx context.Context, date string, f func(*PurseRow) error) error {
	if _, _, err := settlementBounds(date); err != nil {
		return err
	}
	prefix := append([]byte(date), 0)
	return s.db.View(func(tx *bolt.Tx) error {
		rows := tx.Bucket(bbPurseRows)
		c := tx.Bucket(bbPursePaid).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var r PurseRow
			raw := rows.Get(v)
			if raw == nil {
				return fmt.Errorf("backoffice: settled payment %q names no purse row", k)
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("backoffice: damaged purse row %x: %w", v, err)
			}
			if err := f(&r); err != nil {
				return err
			}
		}
		return nil
	})
}

var _ PurseStore = (*BoltStore)(nil)

// UncheckedPurseRows implements PurseStore.
func (s *BoltStore) UncheckedPurseRows(ctx context.Context) ([]PurseRow, error) {
	var out []PurseRow
	err := s.db.View(func(tx *bolt.Tx) error {
		rows := tx.Bucket(bbPurseRows)
		return tx.Bucket(bbUnchecked).ForEach(func(k, _ []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			var r PurseRow
			if _, err := getJSON(rows, k, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// RecheckPurseRow implements PurseStore in one transaction (bbolt's one
// writer: no settlement closes a day meanwhile).
func (s *BoltStore) RecheckPurseRow(_ context.Context, row PurseRow, check func(*record.Record) ProofStatus, now time.Time) (ProofStatus, error) {
	var out ProofStatus
	err := s.db.Update(func(tx *bolt.Tx) error {
		rowsB, paid, closedB := tx.Bucket(bbPurseRows), tx.Bucket(bbPursePaid), tx.Bucket(bbSettleDays)
		key := purseRowKey(&row)
		var cur PurseRow
		found, err := getJSON(rowsB, key, &cur)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("backoffice: no purse row %x", key)
		}
		if out = cur.Proof; out != ProofUnchecked {
			return tx.Bucket(bbUnchecked).Delete(key)
		}
		raw := tx.Bucket(bbRecords).Get(recKey(cur.SAMSerial, cur.Counter))
		if raw == nil {
			return fmt.Errorf("backoffice: purse row %x names no record", key)
		}
		stored, err := decodeStored(raw)
		if err != nil {
			return err
		}
		if out = check(stored.Rec); out == ProofUnchecked {
			return nil
		}
		var all []PurseRow
		c := rowsB.Cursor()
		for k, v := c.Seek(cur.CardSerial[:]); k != nil && bytes.HasPrefix(k, cur.CardSerial[:]); k, v = c.Next() {
			var r PurseRow
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("backoffice: damaged purse row %x: %w", k, err)
			}
			all = append(all, r)
		}
		sortPurseRows(all)
		before := map[string]PurseRow{}
		for i := range all {
			before[string(purseRowKey(&all[i]))] = all[i]
			if all[i].SAMSerial == cur.SAMSerial && all[i].Counter == cur.Counter {
				all[i].Proof = out
			}
		}
		st, _ := rebuildPurse(all)
		closed := func(d string) (bool, error) { return closedB.Get([]byte(d)) != nil, nil }
		for i := range all {
			r := &all[i]
			k := purseRowKey(r)
			old := before[string(k)]
			if old.Proof == r.Proof && old.Counted == r.Counted {
				continue
			}
			if old.Settled() {
				if err := paid.Delete(paidKey(&old)); err != nil {
					return err
				}
			}
			if r.Settled() {
				if closedB.Get([]byte(r.settlementDay())) != nil {
					if r.SettlementDate, err = openDay(now, closed); err != nil {
						return err
					}
				}
				if err := paid.Put(paidKey(r), k); err != nil {
					return err
				}
			}
			if err := putJSON(rowsB, k, r); err != nil {
				return err
			}
		}
		if err := putJSON(tx.Bucket(bbPurses), cur.CardSerial[:], st); err != nil {
			return err
		}
		if out == ProofBad {
			if err := raiseBolt(tx.Bucket(bbAlarms), badProofAlarm(&cur, now)); err != nil {
				return err
			}
		}
		return tx.Bucket(bbUnchecked).Delete(key)
	})
	return out, err
}
