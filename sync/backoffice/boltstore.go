package backoffice

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// BoltStore keeps the back office in one bbolt file: the zero-setup store
// for `make run` and single-site use.
type BoltStore struct {
	db *bolt.DB
	vc boltVerifyCounts // boltdashboard.go
	// sessionSweep is when SessionCommit last dropped the expired
	// sessions (Unix ns; boltaccounts.go)
	sessionSweep atomic.Int64
}

var (
	bbSAMs      = []byte("sams")      // serial → samState (JSON)
	bbRecords   = []byte("records")   // serial ‖ counter → received (8) ‖ flags length (1) ‖ flags ‖ encoding
	bbByHash    = []byte("by-hash")   // hash → serial ‖ counter (a version-1 twin's hash too)
	bbByCode    = []byte("by-code")   // code → serial ‖ counter (a version-1 twin's code too)
	bbWaiting   = []byte("waiting")   // previous hash ‖ serial ‖ counter: records whose predecessor is not here yet
	bbTerminals = []byte("terminals") // id → terminalState (JSON)
	bbAlarms    = []byte("alarms")    // id (the bucket's sequence) → wire.Alarm with state and history (JSON; boltalarms.go)
	// serial ‖ SHA-256 of a certificate that conflicted with the pinned
	// one → nothing: its alarm is raised
	bbSAMConflicts = []byte("sam-conflicts")
	bbConflicts    = []byte("conflicts") // serial ‖ counter ‖ content hash → nil: the counter-conflict alarms raised
)

type samState struct {
	Cert     []byte   `json:"cert"`
	Counters counters `json:"counters"`
}

type terminalState struct {
	Site        string    `json:"site"`
	Records     int64     `json:"records"`
	LastSeen    time.Time `json:"last_seen"`
	SkewMillis  int64     `json:"skew_ms"`
	ChainBreaks int64     `json:"chain_breaks"`
	SAMs        []string  `json:"sams"`
}

// OpenBolt opens or creates the store at path.
func OpenBolt(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("backoffice: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bbSAMs, bbRecords, bbByHash, bbByCode, bbWaiting, bbTerminals, bbAlarms, bbSAMConflicts, bbConflicts} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := renewalBuckets(tx); err != nil { // boltrenewal.go
			return err
		}
		if err := topUpBuckets(tx); err != nil { // bolttopup.go
			return err
		}
		if err := purseBuckets(tx); err != nil { // boltpurse.go
			return err
		}
		return pageBuckets(tx)
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &BoltStore{db: db}
	s.vc.pending = map[int64][2]int64{}
	s.vc.idle = sync.NewCond(&s.vc.mu)
	db.View(func(tx *bolt.Tx) error { s.vc.last = flushedBatch(tx); return nil })
	return s, nil
}

// Close closes the file.
func (s *BoltStore) Close() error {
	s.flushVerifyCounts()
	return s.db.Close()
}

func recKey(serial [8]byte, counter uint32) []byte {
	return binary.BigEndian.AppendUint32(serial[:], counter)
}

func getJSON(b *bolt.Bucket, k []byte, v any) (bool, error) {
	raw := b.Get(k)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("backoffice: damaged entry %x in %s: %w", k, b, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, raw)
}

// SAMCertificate implements Store.
func (s *BoltStore) SAMCertificate(_ context.Context, serial [8]byte) ([]byte, error) {
	var st samState
	err := s.db.View(func(tx *bolt.Tx) error {
		_, err := getJSON(tx.Bucket(bbSAMs), serial[:], &st)
		return err
	})
	return st.Cert, err
}

// PinSAMCertificate implements Store, in one transaction.
func (s *BoltStore) PinSAMCertificate(_ context.Context, serial [8]byte, der []byte, conflict wire.Alarm) ([]byte, error) {
	var pinned []byte
	err := s.db.Update(func(tx *bolt.Tx) error {
		var st samState
		b := tx.Bucket(bbSAMs)
		if _, err := getJSON(b, serial[:], &st); err != nil {
			return err
		}
		if st.Cert == nil {
			st.Cert, pinned = der, der
			return putJSON(b, serial[:], st)
		}
		pinned = st.Cert
		if bytes.Equal(st.Cert, der) {
			return nil
		}
		h := sha256.Sum256(der)
		seen, k := tx.Bucket(bbSAMConflicts), append(serial[:], h[:]...)
		if seen.Get(k) != nil {
			return nil
		}
		if err := seen.Put(k, []byte{1}); err != nil {
			return err
		}
		return raiseBolt(tx.Bucket(bbAlarms), conflict)
	})
	return bytes.Clone(pinned), err
}

func encodeStored(received time.Time, flags []string, enc []byte) []byte {
	f := strings.Join(flags, ",")
	v := binary.BigEndian.AppendUint64(nil, uint64(received.UnixMilli()))
	v = append(v, byte(len(f)))
	return append(append(v, f...), enc...)
}

func decodeStored(v []byte) (*Stored, error) {
	if len(v) < 9 || len(v) < 9+int(v[8]) {
		return nil, fmt.Errorf("backoffice: damaged record entry")
	}
	st := &Stored{ReceivedAt: time.UnixMilli(int64(binary.BigEndian.Uint64(v)))}
	if f := string(v[9 : 9+int(v[8])]); f != "" {
		st.Flags = strings.Split(f, ",")
	}
	r, err := record.Decode(v[9+int(v[8]):])
	if err != nil {
		return nil, err
	}
	st.Rec = r
	return st, nil
}

// Ingest implements Store, in one transaction.
func (s *BoltStore) Ingest(_ context.Context, entries []Entry, m Meta) ([]wire.Result, error) {
	out := make([]wire.Result, len(entries))
	err := s.db.Update(func(tx *bolt.Tx) error {
		sams, recs, byHash, byCode := tx.Bucket(bbSAMs), tx.Bucket(bbRecords), tx.Bucket(bbByHash), tx.Bucket(bbByCode)
		waiting, terms, alarms := tx.Bucket(bbWaiting), tx.Bucket(bbTerminals), tx.Bucket(bbAlarms)
		ledgers := map[[8]byte]*samState{}
		terminals := map[string]*terminalState{}
		alarm := func(a wire.Alarm) error { return raiseBolt(alarms, a) }
		terminal := func(id string) (*terminalState, error) {
			ts := terminals[id]
			if ts == nil {
				ts = &terminalState{}
				if _, err := getJSON(terms, []byte(id), ts); err != nil {
					return nil, err
				}
				terminals[id] = ts
			}
			return ts, nil
		}
		for i, e := range entries {
			r := e.Rec
			key := recKey(r.SAMSerial, r.Counter)
			if old := recs.Get(key); old != nil {
				prev, err := decodeStored(old)
				if err != nil {
					return err
				}
				res, err := s.again(tx, prev.Rec, key, e, m.Now, terminal, alarm)
				if err != nil {
					return err
				}
				out[i] = res
				continue
			}
			led := ledgers[r.SAMSerial]
			if led == nil {
				led = &samState{}
				if _, err := getJSON(sams, r.SAMSerial[:], led); err != nil {
					return err
				}
				ledgers[r.SAMSerial] = led
			}
			ts, err := terminal(r.TerminalID)
			if err != nil {
				return err
			}
			flags, broken, raised := linkage(r, &led.Counters, s.follows(recs, byHash, r), ts.Records, m.Now, e.Flags)
			if raised != nil {
				if err := alarm(*raised); err != nil {
					return err
				}
			}
			if broken {
				ts.ChainBreaks++
				if err := waiting.Put(append(r.PrevHash[:], key...), nil); err != nil {
					return err
				}
			}
			if err := feedBolt(tx, key, r.Service); err != nil { // boltinstitution.go
				return err
			}
			if err := addAuthHour(tx.Bucket(bbAuthHours), r.Time, r.Service, r.SiteID, 1); err != nil { // boltdashboard.go
				return err
			}
			if a := renewalOf(e); a != nil { // boltrenewal.go: applied with the record, atomically
				if err := applyRenewalBolt(tx, a, m.Now); err != nil {
					return err
				}
			}
			row, err := ledgerPurseBolt(tx, e, m.Now) // boltpurse.go: the purse ledger, before the top-ups
			if err != nil {
				return err
			}
			if err := topUpIngestBolt(tx, e, row, m.Now); err != nil { // bolttopup.go: applied with the record, atomically
				return err
			}
			if err := recs.Put(key, encodeStored(m.Now, flags, e.Encoded)); err != nil {
				return err
			}
			if err := byHash.Put(e.Hash[:], key); err != nil {
				return err
			}
			if err := byCode.Put([]byte(e.Code), key); err != nil {
				return err
			}
			// records that were waiting for this one
			resolved, err := s.resolve(recs, waiting, e.Hash, r.TerminalID)
			if err != nil {
				return err
			}
			ts.ChainBreaks -= resolved
			ts.Site, ts.LastSeen, ts.SkewMillis = r.SiteID, m.Now, m.SkewMillis
			ts.Records++
			if sn := hex.EncodeToString(r.SAMSerial[:]); !slices.Contains(ts.SAMs, sn) {
				ts.SAMs = append(ts.SAMs, sn)
			}
			out[i] = wire.Result{Status: wire.Accepted, Code: e.Code, Flags: flags}
		}
		for serial, led := range ledgers {
			if err := putJSON(sams, serial[:], led); err != nil {
				return err
			}
		}
		for id, ts := range terminals {
			if err := putJSON(terms, []byte(id), ts); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// again decides on an entry whose SAM serial and counter are stored
// already (stored, under key). The same content hash is the same record: a
// duplicate. When its Hash differs (a version-1 record with the other
// signature) its hash and code are added as aliases of the stored record,
// and records of its terminal that waited for that hash are no longer
// chain breaks. Another content is a counter conflict: rejected, with one
// alarm per SAM serial, counter and content hash (the conflicts bucket, in
// bbolt's one write transaction).
func (s *BoltStore) again(tx *bolt.Tx, stored *record.Record, key []byte, e Entry, now time.Time,
	terminal func(string) (*terminalState, error), alarm func(wire.Alarm) error) (wire.Result, error) {
	h, err := stored.Hash()
	if err != nil {
		return wire.Result{}, err
	}
	c, err := stored.ContentHash()
	if err != nil {
		return wire.Result{}, err
	}
	switch {
	case h == e.Hash:
		return wire.Result{Status: wire.Duplicate, Code: e.Code}, nil
	case c == e.Content:
		byHash, byCode := tx.Bucket(bbByHash), tx.Bucket(bbByCode)
		if byHash.Get(e.Hash[:]) == nil {
			if err := byHash.Put(e.Hash[:], key); err != nil {
				return wire.Result{}, err
			}
			if err := byCode.Put([]byte(e.Code), key); err != nil {
				return wire.Result{}, err
			}
			ts, err := terminal(stored.TerminalID)
			if err != nil {
				return wire.Result{}, err
			}
			resolved, err := s.resolve(tx.Bucket(bbRecords), tx.Bucket(bbWaiting), e.Hash, stored.TerminalID)
			if err != nil {
				return wire.Result{}, err
			}
			ts.ChainBreaks -= resolved
		}
		return wire.Result{Status: wire.Duplicate, Code: e.Code}, nil
	}
	once := append(append([]byte(nil), key...), e.Content[:]...)
	conflicts := tx.Bucket(bbConflicts)
	if conflicts.Get(once) == nil {
		if err := conflicts.Put(once, nil); err != nil {
			return wire.Result{}, err
		}
		if err := alarm(conflictAlarm(e.Rec, now)); err != nil {
			return wire.Result{}, err
		}
	}
	return wire.Result{Status: wire.Rejected, Reason: wire.ReasonConflict}, nil
}

// follows says whether r's previous record is stored and from the same
// terminal.
func (s *BoltStore) follows(recs, byHash *bolt.Bucket, r *record.Record) bool {
	k := byHash.Get(r.PrevHash[:])
	if k == nil {
		return false
	}
	prev, err := decodeStored(recs.Get(k))
	return err == nil && prev.Rec.TerminalID == r.TerminalID
}

// resolve clears chain-break on the records of terminal that waited for
// the record with hash, and returns how many.
func (s *BoltStore) resolve(recs, waiting *bolt.Bucket, hash [32]byte, terminal string) (int64, error) {
	var keys [][]byte
	c := waiting.Cursor()
	for k, _ := c.Seek(hash[:]); k != nil && bytes.HasPrefix(k, hash[:]); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	var n int64
	for _, k := range keys {
		rk := k[32:]
		st, err := decodeStored(recs.Get(rk))
		if err != nil {
			return n, err
		}
		if st.Rec.TerminalID != terminal {
			continue // a record naming another terminal's record as its predecessor stays broken
		}
		if err := waiting.Delete(k); err != nil {
			return n, err
		}
		flags := slices.DeleteFunc(st.Flags, func(f string) bool { return f == wire.FlagChainBreak })
		enc, _ := st.Rec.Encode()
		if err := recs.Put(rk, encodeStored(st.ReceivedAt, flags, enc)); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func conflictAlarm(r *record.Record, now time.Time) wire.Alarm {
	return wire.Alarm{Kind: "counter-conflict", TerminalID: r.TerminalID, SAMSerial: hex.EncodeToString(r.SAMSerial[:]), Counter: r.Counter,
		Detail: "a different record with the same SAM serial and counter: a SAM signed two records with one counter, or a key is compromised", At: now}
}

// ByCode implements Store.
func (s *BoltStore) ByCode(_ context.Context, code string) (*Stored, error) {
	var st *Stored
	err := s.db.View(func(tx *bolt.Tx) error {
		k := tx.Bucket(bbByCode).Get([]byte(code))
		if k == nil {
			return ErrNotFound
		}
		var err error
		st, err = decodeStored(tx.Bucket(bbRecords).Get(k))
		return err
	})
	return st, err
}

// Terminal implements Store.
func (s *BoltStore) Terminal(_ context.Context, id string) (*wire.TerminalStatus, error) {
	var out *wire.TerminalStatus
	err := s.db.View(func(tx *bolt.Tx) error {
		var ts terminalState
		found, err := getJSON(tx.Bucket(bbTerminals), []byte(id), &ts)
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound
		}
		out = &wire.TerminalStatus{TerminalID: id, SiteID: ts.Site, Records: ts.Records, LastSeen: ts.LastSeen.UTC(),
			ClockSkewMillis: ts.SkewMillis, ChainBreaks: ts.ChainBreaks}
		for _, sn := range ts.SAMs {
			serial, _ := hex.DecodeString(sn)
			var st samState
			if _, err := getJSON(tx.Bucket(bbSAMs), serial, &st); err != nil {
				return err
			}
			out.SAMs = append(out.SAMs, wire.SAMInfo{Serial: sn, LastCounter: st.Counters.Max, Gaps: st.Counters.Gaps})
		}
		return tx.Bucket(bbAlarms).ForEach(func(k, v []byte) error {
			a, err := decodeBoltAlarm(k, v)
			if err != nil {
				return err
			}
			if a.TerminalID == id {
				out.Alarms = append(out.Alarms, a.listed())
			}
			return nil
		})
	})
	return out, err
}

// Usage implements Store. It walks the records (the bbolt store is for
// single sites; PostgreSQL groups in SQL).
func (s *BoltStore) Usage(_ context.Context, from, to time.Time) ([]UsageRow, error) {
	type k struct {
		site, term, svc, subj string
		fp                    record.Outcome
	}
	counts := map[k]int64{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bbRecords).ForEach(func(_, v []byte) error {
			st, err := decodeStored(v)
			if err != nil {
				return err
			}
			r := st.Rec
			if r.CardType != record.CardKTPel || r.Time.Before(from) || !r.Time.Before(to) {
				return nil
			}
			counts[k{r.SiteID, r.TerminalID, r.Service, r.Subject, r.Fingerprint.Outcome}]++
			return nil
		})
	})
	var rows []UsageRow
	for key, n := range counts {
		rows = append(rows, UsageRow{Site: key.site, Terminal: key.term, Service: key.svc, Subject: key.subj, Fingerprint: key.fp, Count: n})
	}
	return rows, err
}
