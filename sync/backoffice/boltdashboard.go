package backoffice

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"kpe-agent/sync/wire"
)

// bbolt's side of PageStore (dashboard.go). It walks the records, as
// Usage does: the bbolt store is for single sites.

var _ PageStore = (*BoltStore)(nil)

var (
	bbVerifications = []byte("verifications") // UTC hour (Unix seconds, 8 bytes) → found (8) ‖ not found (8)
	bbUploads       = []byte("uploads")       // terminal id → uploadState (JSON)
)

type uploadState struct {
	LastContact  time.Time `json:"last_contact"`
	Agent        string    `json:"agent,omitempty"`
	Backlog      *int64    `json:"backlog,omitempty"`
	OldestQueued time.Time `json:"oldest_queued,omitzero"`
	LastRecord   time.Time `json:"last_record,omitzero"`
}

// pageBuckets makes the buckets of the staff pages (OpenBolt's second
// step: files made before them get them on open).
func pageBuckets(tx *bolt.Tx) error {
	for _, b := range [][]byte{bbVerifications, bbUploads} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	if tx.Bucket(bbAuthHours) != nil {
		return nil
	}
	// the rollup starts with every record stored so far, once
	hours, err := tx.CreateBucket(bbAuthHours)
	if err != nil {
		return err
	}
	return tx.Bucket(bbRecords).ForEach(func(_, v []byte) error {
		st, err := decodeStored(v)
		if err != nil {
			return err
		}
		return addAuthHour(hours, st.Rec.Time, st.Rec.Service, st.Rec.SiteID, 1)
	})
}

// bbAuthHours is the dashboard's hourly rollup of the records, kept in
// the ingest transaction: UTC hour (Unix seconds, 8) ‖ len(service) (1) ‖
// service ‖ site → count (8).
var bbAuthHours = []byte("auth-hours")

func authHourKey(hour time.Time, service, site string) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(hour.UTC().Truncate(time.Hour).Unix()))
	k = append(k, byte(len(service)))
	return append(append(k, service...), site...)
}

// addAuthHour counts n records of service at site at t.
func addAuthHour(b *bolt.Bucket, t time.Time, service, site string, n int64) error {
	if len(service) > 255 {
		return fmt.Errorf("backoffice: service name of %d bytes", len(service))
	}
	k := authHourKey(t, service, site)
	var c uint64
	if v := b.Get(k); len(v) == 8 {
		c = binary.BigEndian.Uint64(v)
	}
	return b.Put(k, binary.BigEndian.AppendUint64(nil, c+uint64(n)))
}

// AuthHours implements PageStore from the rollup (bbAuthHours).
func (s *BoltStore) AuthHours(_ context.Context, from, to time.Time, services []string) ([]HourCount, error) {
	var out []HourCount
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bbAuthHours).Cursor()
		lo := binary.BigEndian.AppendUint64(nil, uint64(from.UTC().Truncate(time.Hour).Unix()))
		for k, v := c.Seek(lo); k != nil; k, v = c.Next() {
			if len(k) < 9 || len(k) < 9+int(k[8]) || len(v) != 8 {
				return fmt.Errorf("backoffice: damaged dashboard entry %x", k)
			}
			h := time.Unix(int64(binary.BigEndian.Uint64(k)), 0).UTC()
			if !h.Before(to) {
				break
			}
			svc, site := string(k[9:9+int(k[8])]), string(k[9+int(k[8]):])
			if services != nil && !slices.Contains(services, svc) {
				continue
			}
			out = append(out, HourCount{Hour: h, Service: svc, Site: site, Count: int64(binary.BigEndian.Uint64(v))})
		}
		return nil
	})
	return out, err
}

// boltVerifyCounts are the verification counters not yet written.
// bbolt has one writer: a verification that wrote its counter itself
// would wait behind every ingest transaction. CountVerification adds to
// memory and one goroutine at a time writes what gathered, as a
// numbered batch in one transaction that also stores the batch's number
// (bbVerifyFlushed); VerificationHours adds the batches the file it
// reads does not have yet, so no count is shown twice or missed. Best
// effort: the counts of a process that dies before its flush are lost
// (Close flushes).
type boltVerifyCounts struct {
	mu       sync.Mutex
	pending  map[int64][2]int64 // UTC hour (Unix) → found, not found
	taken    map[int64][2]int64 // the batch being written
	takenN   uint64             // its number
	last     uint64             // the last batch number given
	flushing bool
	idle     *sync.Cond // signalled when flushing ends
	write    sync.Mutex // one writer of batches at a time
}

// bbVerifyFlushed holds the number of the last batch of verification
// counters written (key "n", 8 bytes).
var bbVerifyFlushed = []byte("verifications-flushed")

// flushedBatch is the number of the last batch written in tx's view.
func flushedBatch(tx *bolt.Tx) uint64 {
	if b := tx.Bucket(bbVerifyFlushed); b != nil {
		if v := b.Get([]byte("n")); len(v) == 8 {
			return binary.BigEndian.Uint64(v)
		}
	}
	return 0
}

// CountVerification implements PageStore, in memory (boltVerifyCounts).
func (s *BoltStore) CountVerification(_ context.Context, at time.Time, found bool) error {
	h := at.UTC().Truncate(time.Hour).Unix()
	s.vc.mu.Lock()
	defer s.vc.mu.Unlock()
	c := s.vc.pending[h]
	if found {
		c[0]++
	} else {
		c[1]++
	}
	s.vc.pending[h] = c
	if !s.vc.flushing {
		s.vc.flushing = true
		go s.flushVerifyLoop()
	}
	return nil
}

// flushVerifyLoop writes the pending counters until none are left, or
// a write fails (they wait for the next count, or Close).
func (s *BoltStore) flushVerifyLoop() {
	for s.writeVerifyCounts() {
	}
	s.vc.mu.Lock()
	s.vc.flushing = false
	s.vc.idle.Broadcast()
	s.vc.mu.Unlock()
}

// writeVerifyCounts writes what is pending as the next batch; false when
// nothing was, or the write failed (the counts go back to pending).
func (s *BoltStore) writeVerifyCounts() bool {
	s.vc.write.Lock()
	defer s.vc.write.Unlock()
	s.vc.mu.Lock()
	if len(s.vc.pending) == 0 {
		s.vc.mu.Unlock()
		return false
	}
	s.vc.last++
	taken, n := s.vc.pending, s.vc.last
	s.vc.taken, s.vc.takenN, s.vc.pending = taken, n, map[int64][2]int64{}
	s.vc.mu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bbVerifications)
		for h, c := range taken {
			k := binary.BigEndian.AppendUint64(nil, uint64(h))
			v := make([]byte, 16)
			if old := b.Get(k); len(old) == 16 {
				copy(v, old)
			}
			binary.BigEndian.PutUint64(v, binary.BigEndian.Uint64(v)+uint64(c[0]))
			binary.BigEndian.PutUint64(v[8:], binary.BigEndian.Uint64(v[8:])+uint64(c[1]))
			if err := b.Put(k, v); err != nil {
				return err
			}
		}
		f, err := tx.CreateBucketIfNotExists(bbVerifyFlushed)
		if err != nil {
			return err
		}
		return f.Put([]byte("n"), binary.BigEndian.AppendUint64(nil, n))
	})
	s.vc.mu.Lock()
	defer s.vc.mu.Unlock()
	if err != nil {
		for h, c := range taken {
			p := s.vc.pending[h]
			s.vc.pending[h] = [2]int64{p[0] + c[0], p[1] + c[1]}
		}
	}
	s.vc.taken = nil
	return err == nil
}

// flushVerifyCounts waits for a flush under way and writes the rest.
func (s *BoltStore) flushVerifyCounts() {
	s.vc.mu.Lock()
	for s.vc.flushing {
		s.vc.idle.Wait()
	}
	s.vc.mu.Unlock()
	s.writeVerifyCounts()
}

// VerificationHours implements PageStore.
func (s *BoltStore) VerificationHours(_ context.Context, from, to time.Time) ([]VerifyHour, error) {
	var out []VerifyHour
	// the counts not in the file yet: the batch being written (its
	// number) and the pending ones (the next number, taken whole)
	s.vc.mu.Lock()
	taken, takenN := maps.Clone(s.vc.taken), s.vc.takenN
	pending, pendingN := maps.Clone(s.vc.pending), s.vc.last+1
	s.vc.mu.Unlock()
	var flushed uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		flushed = flushedBatch(tx)
		c := tx.Bucket(bbVerifications).Cursor()
		lo := binary.BigEndian.AppendUint64(nil, uint64(from.UTC().Truncate(time.Hour).Unix()))
		for k, v := c.Seek(lo); k != nil; k, v = c.Next() {
			h := time.Unix(int64(binary.BigEndian.Uint64(k)), 0).UTC()
			if h.Before(from) {
				continue // from is not on the hour
			}
			if !h.Before(to) {
				break
			}
			if len(v) != 16 {
				continue
			}
			out = append(out, VerifyHour{Hour: h, Found: int64(binary.BigEndian.Uint64(v)), NotFound: int64(binary.BigEndian.Uint64(v[8:]))})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	unwritten := map[int64][2]int64{}
	for _, b := range []struct {
		counts map[int64][2]int64
		n      uint64
	}{{taken, takenN}, {pending, pendingN}} {
		if flushed >= b.n {
			continue // in the file read
		}
		for h, c := range b.counts {
			u := unwritten[h]
			unwritten[h] = [2]int64{u[0] + c[0], u[1] + c[1]}
		}
	}
	for hu, c := range unwritten {
		h := time.Unix(hu, 0).UTC()
		if h.Before(from) || !h.Before(to) {
			continue
		}
		i := slices.IndexFunc(out, func(v VerifyHour) bool { return v.Hour.Equal(h) })
		if i < 0 {
			out = append(out, VerifyHour{Hour: h})
			i = len(out) - 1
		}
		out[i].Found += c[0]
		out[i].NotFound += c[1]
	}
	slices.SortFunc(out, func(a, b VerifyHour) int { return a.Hour.Compare(b.Hour) })
	return out, nil
}

// NoteUpload implements PageStore.
func (s *BoltStore) NoteUpload(_ context.Context, terminal string, u Upload) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bbUploads)
		var st uploadState
		if _, err := getJSON(b, []byte(terminal), &st); err != nil {
			return err
		}
		if u.At.After(st.LastContact) {
			st.LastContact = u.At.UTC()
		}
		if u.Agent != "" {
			st.Agent = u.Agent
		}
		if u.Backlog != nil {
			st.Backlog, st.OldestQueued = u.Backlog, u.OldestQueued.UTC()
		}
		if u.LastRecord.After(st.LastRecord) {
			st.LastRecord = u.LastRecord.UTC()
		}
		return putJSON(b, []byte(terminal), st)
	})
}

// Terminals implements PageStore.
func (s *BoltStore) Terminals(_ context.Context, q TerminalQuery) ([]TerminalRow, error) {
	var out []TerminalRow
	err := s.db.View(func(tx *bolt.Tx) error {
		rows := map[string]*TerminalRow{}
		row := func(id string) *TerminalRow {
			if rows[id] == nil {
				rows[id] = &TerminalRow{ID: id}
			}
			return rows[id]
		}
		err := tx.Bucket(bbTerminals).ForEach(func(k, v []byte) error {
			var ts terminalState
			if _, err := getJSON(tx.Bucket(bbTerminals), k, &ts); err != nil {
				return err
			}
			t := row(string(k))
			t.Site, t.Records, t.ChainBreaks, t.LastSeen = ts.Site, ts.Records, ts.ChainBreaks, ts.LastSeen.UTC()
			for _, sn := range ts.SAMs {
				serial, _ := hex.DecodeString(sn)
				var st samState
				if _, err := getJSON(tx.Bucket(bbSAMs), serial, &st); err != nil {
					return err
				}
				t.SAMs = append(t.SAMs, wire.SAMInfo{Serial: sn, LastCounter: st.Counters.Max, Gaps: st.Counters.Gaps})
			}
			slices.SortFunc(t.SAMs, func(a, b wire.SAMInfo) int { return strings.Compare(a.Serial, b.Serial) })
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bbUploads).ForEach(func(k, _ []byte) error {
			var u uploadState
			if _, err := getJSON(tx.Bucket(bbUploads), k, &u); err != nil {
				return err
			}
			t := row(string(k))
			t.LastContact, t.Agent, t.Backlog, t.OldestQueued, t.LastRecord = u.LastContact, u.Agent, u.Backlog, u.OldestQueued, u.LastRecord
			return nil
		})
		if err != nil {
			return err
		}
		for _, t := range rows {
			if t.LastContact.IsZero() {
				t.LastContact = t.LastSeen
			}
			if !q.SilentSince.IsZero() && !t.LastContact.Before(q.SilentSince) {
				continue
			}
			out = append(out, *t)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b TerminalRow) int { return strings.Compare(a.ID, b.ID) })
	return out, err
}

// OpenAlarms implements PageStore.
func (s *BoltStore) OpenAlarms(_ context.Context) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bbAlarms).ForEach(func(k, v []byte) error {
			a, err := decodeBoltAlarm(k, v)
			if err == nil && a.State == wire.AlarmOpen {
				n++
			}
			return err
		})
	})
	return n, err
}
