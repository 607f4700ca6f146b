package backoffice

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"
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
	return nil
}

// AuthHours implements PageStore.
func (s *BoltStore) AuthHours(_ context.Context, from, to time.Time, services []string) ([]HourCount, error) {
	type key struct {
		hour      int64
		svc, site string
	}
	counts := map[key]int64{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bbRecords).ForEach(func(_, v []byte) error {
			st, err := decodeStored(v)
			if err != nil {
				return err
			}
			r := st.Rec
			if r.Time.Before(from) || !r.Time.Before(to) || (services != nil && !slices.Contains(services, r.Service)) {
				return nil
			}
			counts[key{r.Time.UTC().Truncate(time.Hour).Unix(), r.Service, r.SiteID}]++
			return nil
		})
	})
	out := make([]HourCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, HourCount{Hour: time.Unix(k.hour, 0).UTC(), Service: k.svc, Site: k.site, Count: n})
	}
	return out, err
}

// CountVerification implements PageStore.
func (s *BoltStore) CountVerification(_ context.Context, at time.Time, found bool) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bbVerifications)
		k := binary.BigEndian.AppendUint64(nil, uint64(at.UTC().Truncate(time.Hour).Unix()))
		v := make([]byte, 16)
		if old := b.Get(k); len(old) == 16 {
			copy(v, old)
		}
		i := 8
		if found {
			i = 0
		}
		binary.BigEndian.PutUint64(v[i:], binary.BigEndian.Uint64(v[i:])+1)
		return b.Put(k, v)
	})
}

// VerificationHours implements PageStore.
func (s *BoltStore) VerificationHours(_ context.Context, from, to time.Time) ([]VerifyHour, error) {
	var out []VerifyHour
	err := s.db.View(func(tx *bolt.Tx) error {
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
	return out, err
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
