// Package outbox is the terminal's crash-safe store of sealed records
// waiting for the back office, on bbolt.
//
// A record is committed and fsynced (bbolt's commit) before Append returns;
// only then may the agent tell anyone it exists. Records move from pending
// to sending (claimed by the uploader) to acknowledged, and are deleted only
// after the back office has acknowledged them and the retention period has
// passed. Nothing is dropped: at the hard limit new records are refused,
// a record the back office rejects goes to the dead-letter bucket with the
// reason, and a database that cannot be opened is moved aside, never
// deleted (docs/outbox.md).
package outbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"kpe-agent/sync/record"
)

// State of a record in the outbox.
type State uint8

// States.
const (
	Pending      State = 1
	Sending      State = 2
	Acknowledged State = 3
)

func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Sending:
		return "sending"
	case Acknowledged:
		return "acknowledged"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Options configure an outbox. Zero values take the defaults.
type Options struct {
	MaxRecords int           // unsynced records at the hard limit (default 100,000)
	MaxAge     time.Duration // age of the oldest unsynced record at the hard limit (default 30 days)
	Retention  time.Duration // acknowledged records are kept this long (default 30 days; Prune)
	Now        func() time.Time
	// OpenTimeout bounds the wait for the file lock (another process has
	// the outbox open). Default 5 s.
	OpenTimeout time.Duration
	// ReadOnly opens an existing outbox for reading only (kpectl queue
	// stats and list): nothing in the file changes. A missing file is
	// ErrNoOutbox and a damaged one ErrDamaged (it is not moved aside);
	// records being sent stay in sending. It takes a shared lock, so an
	// agent that has the outbox open still makes it ErrLocked after
	// OpenTimeout. Methods that write fail.
	ReadOnly bool
}

func (o *Options) defaults() {
	if o.MaxRecords <= 0 {
		o.MaxRecords = 100_000
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 30 * 24 * time.Hour
	}
	if o.Retention <= 0 {
		o.Retention = 30 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = 5 * time.Second
	}
}

// Errors.
var (
	// ErrNotRecorded: the record could not be committed (disk full, I/O
	// error, refused). The clerk must be told "not recorded" and shown no
	// code.
	ErrNotRecorded = errors.New("outbox: not recorded")
	// ErrFull: a hard limit is reached; new records are refused until the
	// back office has taken the backlog.
	ErrFull = errors.New("outbox: full")
	// ErrChain: the record's previous hash is not the last record's hash.
	ErrChain = errors.New("outbox: record does not follow the last record")
	// ErrLocked: another process has the outbox open.
	ErrLocked = errors.New("outbox: in use by another process")
	// ErrCorrupt: an entry in the store cannot be read.
	ErrCorrupt = errors.New("outbox: corrupt entry")
	// ErrDamaged: the file is not a sound outbox (bbolt cannot open it,
	// its consistency check fails, or it lacks the outbox's buckets).
	// Open moves such a file aside; a ReadOnly Open reports it.
	ErrDamaged = errors.New("outbox: file damaged")
	// ErrNoOutbox: a ReadOnly Open of a file that does not exist.
	ErrNoOutbox = errors.New("outbox: no such outbox file")
)

// LimitError says which limit refused a record.
type LimitError struct {
	Limit string // "count" or "age"
	Used  float64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("outbox: full (%s limit, %.0f %%): records are refused until the back office takes the backlog", e.Limit, e.Used*100)
}

func (e *LimitError) Unwrap() error { return ErrFull }

var (
	bRecords  = []byte("records")  // seq → entry
	bUnsynced = []byte("unsynced") // seq → nothing: the pending and sending records, oldest first
	bDead     = []byte("dead")     // seq → reason length (2) ‖ reason ‖ entry
	bMeta     = []byte("meta")
	kLast     = []byte("last-hash")
	kAside    = []byte("moved-aside") // newline-separated file names
	// Counters kept with every change, so that Append and Stats need not
	// walk the records.
	kUnsynced = []byte("n-unsynced")
	kAcked    = []byte("n-acknowledged")
)

// Outbox is an open outbox. Its methods are safe for concurrent use;
// appends are serialised by bbolt's single writer.
type Outbox struct {
	db   *bolt.DB
	path string
	o    Options
	// MovedAside names the damaged file this Open moved aside, if any.
	MovedAside string
}

// Open opens or creates the outbox at path. A file that bbolt cannot open
// or whose consistency check fails is renamed to path.corrupt-<time> (kept
// for `kpectl queue salvage`) and a fresh outbox is created; MovedAside
// says so, and Stats reports it until the alarm is cleared. Records that
// were being sent when the process stopped become pending again. With
// Options.ReadOnly none of this happens (see there).
func Open(path string, o Options) (*Outbox, error) {
	o.defaults()
	if o.ReadOnly {
		return openReadOnly(path, o)
	}
	db, err := openChecked(path, o)
	aside := ""
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, err
		}
		aside = fmt.Sprintf("%s.corrupt-%s", path, o.Now().UTC().Format("20060102T150405.000"))
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("outbox: %v, and moving it aside failed: %w", err, rerr)
		}
		syncDir(filepath.Dir(path))
		db, err = openChecked(path, o)
		if err != nil {
			return nil, err
		}
	}
	ob := &Outbox{db: db, path: path, o: o, MovedAside: aside}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bRecords, bUnsynced, bDead, bMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if aside != "" {
			m := tx.Bucket(bMeta)
			old := m.Get(kAside)
			v := append(append([]byte{}, old...), filepath.Base(aside)+"\n"...)
			if err := m.Put(kAside, v); err != nil {
				return err
			}
		}
		// sending → pending: the upload in flight died with the process
		recs := tx.Bucket(bRecords)
		return tx.Bucket(bUnsynced).ForEach(func(k, _ []byte) error {
			e, err := getEntry(recs, k)
			if err != nil || e.state != Sending {
				return err
			}
			e.state = Pending
			return recs.Put(k, e.encode())
		})
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return ob, nil
}

// openReadOnly opens an existing outbox without changing it.
func openReadOnly(path string, o Options) (*Outbox, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %w", ErrNoOutbox, err)
		}
		return nil, fmt.Errorf("outbox: %w", err)
	}
	db, err := openChecked(path, o)
	if err != nil {
		var pe *fs.PathError
		if errors.Is(err, ErrLocked) || errors.Is(err, ErrDamaged) || errors.As(err, &pe) {
			return nil, err // locked, checked, or the operating system's error (permission)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrDamaged, path, err) // bbolt's: not a database, checksum
	}
	err = db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bRecords, bUnsynced, bDead, bMeta} {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("%w: %s has no %q bucket: not an outbox", ErrDamaged, path, b)
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Outbox{db: db, path: path, o: o}, nil
}

func openChecked(path string, o Options) (*bolt.DB, error) {
	db, err := openLocked(path, o)
	if err != nil {
		return nil, err
	}
	var cerr error
	db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			cerr = errors.Join(cerr, e)
		}
		return nil
	})
	if cerr != nil {
		db.Close()
		return nil, fmt.Errorf("%w: consistency check of %s: %w", ErrDamaged, path, cerr)
	}
	return db, nil
}

// openLocked opens path with bbolt and its file lock, and makes sure the
// file it locked is still the one at path: a process that held the lock
// may have replaced the file before letting go (Compact renames the
// compacted copy over it), and what is written to a replaced file is
// lost. Then it opens again, within OpenTimeout.
func openLocked(path string, o Options) (*bolt.DB, error) {
	deadline := time.Now().Add(o.OpenTimeout)
	for {
		var f *os.File
		openFile := func(name string, flag int, perm os.FileMode) (*os.File, error) {
			var err error
			f, err = os.OpenFile(name, flag, perm)
			return f, err
		}
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: max(time.Until(deadline), time.Millisecond), ReadOnly: o.ReadOnly, OpenFile: openFile})
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		if err != nil {
			return nil, err
		}
		held, herr := f.Stat()
		now, nerr := os.Stat(path)
		if herr == nil && nerr == nil && os.SameFile(held, now) {
			return db, nil
		}
		db.Close()
		if herr != nil {
			return nil, fmt.Errorf("outbox: %w", herr)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %s (the file was replaced while waiting for it)", ErrLocked, path)
		}
		// replaced (or removed: the next open creates it, or a read-only
		// one reports it) while waiting for the lock: open what is there now
	}
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Close closes the database.
func (ob *Outbox) Close() error { return ob.db.Close() }

// Path is the database file.
func (ob *Outbox) Path() string { return ob.path }

// entry is a record with its bookkeeping: version 1 ‖ state ‖ enqueued
// (ms) ‖ attempts (4) ‖ acknowledged (ms) ‖ record encoding.
type entry struct {
	state    State
	enqueued int64
	attempts uint32
	acked    int64
	rec      []byte
}

const entryHead = 1 + 1 + 8 + 4 + 8

func (e entry) encode() []byte {
	b := make([]byte, entryHead, entryHead+len(e.rec))
	b[0] = 1
	b[1] = byte(e.state)
	binary.BigEndian.PutUint64(b[2:], uint64(e.enqueued))
	binary.BigEndian.PutUint32(b[10:], e.attempts)
	binary.BigEndian.PutUint64(b[14:], uint64(e.acked))
	return append(b, e.rec...)
}

func decodeEntry(b []byte) (entry, error) {
	if len(b) < entryHead || b[0] != 1 {
		return entry{}, errors.New("bad entry header")
	}
	e := entry{state: State(b[1]), enqueued: int64(binary.BigEndian.Uint64(b[2:])),
		attempts: binary.BigEndian.Uint32(b[10:]), acked: int64(binary.BigEndian.Uint64(b[14:])),
		rec: b[entryHead:]}
	if e.state < Pending || e.state > Acknowledged {
		return entry{}, fmt.Errorf("state %d", e.state)
	}
	return e, nil
}

func seqKey(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// getEntry reads the entry of seq key k.
func getEntry(recs *bolt.Bucket, k []byte) (entry, error) {
	v := recs.Get(k)
	if v == nil {
		return entry{}, fmt.Errorf("%w: record %d is indexed but missing", ErrCorrupt, binary.BigEndian.Uint64(k))
	}
	e, err := decodeEntry(v)
	if err != nil {
		return entry{}, fmt.Errorf("%w: record %d: %v", ErrCorrupt, binary.BigEndian.Uint64(k), err)
	}
	return e, nil
}

func count(m *bolt.Bucket, key []byte) int {
	if v := m.Get(key); len(v) == 8 {
		return int(binary.BigEndian.Uint64(v))
	}
	return 0
}

func addCount(m *bolt.Bucket, key []byte, delta int) error {
	return m.Put(key, binary.BigEndian.AppendUint64(nil, uint64(count(m, key)+delta)))
}

// LastHash is the Hash of the last record appended (zero when none): the
// next record's PrevHash.
func (ob *Outbox) LastHash() ([32]byte, error) {
	var h [32]byte
	err := ob.db.View(func(tx *bolt.Tx) error {
		copy(h[:], tx.Bucket(bMeta).Get(kLast))
		return nil
	})
	return h, err
}

// Last returns the last record appended that is still in the outbox (nil
// when it is empty). At start the agent compares its counter with the
// SAM's: a SAM ahead of it signed a record whose commit never happened.
func (ob *Outbox) Last() (*record.Record, error) {
	var r *record.Record
	err := ob.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bRecords).Cursor().Last()
		if k == nil {
			return nil
		}
		e, err := decodeEntry(v)
		if err != nil {
			return fmt.Errorf("%w: record %d: %v", ErrCorrupt, binary.BigEndian.Uint64(k), err)
		}
		r, err = record.Decode(e.rec)
		return err
	})
	return r, err
}

// Append commits a sealed record. When it returns nil the record is on
// disk (fsynced) and survives kill -9 and power loss; any error means the
// record is not stored (ErrNotRecorded, with ErrFull or ErrChain where that
// is the cause).
func (ob *Outbox) Append(r *record.Record) (uint64, error) { return ob.appendWith(r, nil) }

// appendWith is Append; also, when not nil, runs in the same transaction
// (its error undoes the append).
func (ob *Outbox) appendWith(r *record.Record, also func(*bolt.Tx) error) (uint64, error) {
	return ob.appendRecord(r, also, true)
}

// limitOf is the limit the backlog u is at (a *LimitError), nil when a
// record may be added.
func (ob *Outbox) limitOf(u backlog) error {
	if u.count >= ob.o.MaxRecords {
		return &LimitError{"count", u.countUsed}
	}
	if u.ageUsed >= 1 {
		return &LimitError{"age", u.ageUsed}
	}
	return nil
}

// Room reports whether Append would take a record now: nil, or the
// *LimitError (wrapping ErrFull) that would refuse it. The purse engine
// asks before it moves money, since the record of money that moved is
// stored past the limits (AppendPurse).
func (ob *Outbox) Room() error {
	return ob.db.View(func(tx *bolt.Tx) error {
		u, err := unsynced(tx, ob.o.Now(), ob.o)
		if err != nil {
			return err
		}
		return ob.limitOf(u)
	})
}

// appendRecord is appendWith; limits false stores the record past the
// count and age limits.
func (ob *Outbox) appendRecord(r *record.Record, also func(*bolt.Tx) error, limits bool) (uint64, error) {
	enc, err := r.Encode()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNotRecorded, err)
	}
	hash, _, err := record.HashesOf(enc) // the record's rule (record.Hash): the next record's PrevHash
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNotRecorded, err)
	}
	now := ob.o.Now()
	var seq uint64
	err = ob.db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bMeta)
		if last := m.Get(kLast); !bytes.Equal(r.PrevHash[:], last) && !(last == nil && r.PrevHash == [32]byte{}) {
			return ErrChain
		}
		if limits {
			u, err := unsynced(tx, now, ob.o)
			if err != nil {
				return err
			}
			if err := ob.limitOf(u); err != nil {
				return err
			}
		}
		recs := tx.Bucket(bRecords)
		seq, err = recs.NextSequence()
		if err != nil {
			return err
		}
		if err := recs.Put(seqKey(seq), entry{state: Pending, enqueued: now.UnixMilli(), rec: enc}.encode()); err != nil {
			return err
		}
		if err := tx.Bucket(bUnsynced).Put(seqKey(seq), nil); err != nil {
			return err
		}
		if err := addCount(m, kUnsynced, 1); err != nil {
			return err
		}
		if also != nil {
			if err := also(tx); err != nil {
				return err
			}
		}
		return m.Put(kLast, hash[:])
	})
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNotRecorded, err)
	}
	return seq, nil
}

// Item is a claimed record on its way to the back office.
type Item struct {
	Seq      uint64
	Encoded  []byte
	Attempts uint32 // earlier attempts
}

// Claim marks up to maxN pending records, at most maxBytes of encodings
// (at least one record), as sending and returns them, oldest first.
func (ob *Outbox) Claim(maxN, maxBytes int) ([]Item, error) {
	var out []Item
	err := ob.db.Update(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bRecords)
		c := tx.Bucket(bUnsynced).Cursor()
		size := 0
		for k, _ := c.First(); k != nil && len(out) < maxN; k, _ = c.Next() {
			e, err := getEntry(recs, k)
			if err != nil {
				return err
			}
			if e.state != Pending {
				continue
			}
			if len(out) > 0 && size+len(e.rec) > maxBytes {
				break
			}
			size += len(e.rec)
			out = append(out, Item{Seq: binary.BigEndian.Uint64(k), Encoded: bytes.Clone(e.rec), Attempts: e.attempts})
			e.state = Sending
			e.attempts++
			if err := recs.Put(k, e.encode()); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// Outcome is the back office's answer for one record.
type Outcome uint8

// Outcomes. A duplicate counts as accepted: the back office has it.
const (
	Accepted  Outcome = 1
	Duplicate Outcome = 2
	Rejected  Outcome = 3 // permanently: to the dead-letter bucket
	Retry     Outcome = 4 // not taken this time: pending again
)

// Result settles one claimed record.
type Result struct {
	Seq     uint64
	Outcome Outcome
	Reason  string // for Rejected
}

// Settle records the back office's answers in one transaction.
func (ob *Outbox) Settle(results []Result) error {
	now := ob.o.Now().UnixMilli()
	return ob.db.Update(func(tx *bolt.Tx) error {
		recs, unsynced, meta := tx.Bucket(bRecords), tx.Bucket(bUnsynced), tx.Bucket(bMeta)
		// leave takes a record out of its state's count (and index).
		leave := func(k []byte, e entry) error {
			if e.state == Acknowledged {
				return addCount(meta, kAcked, -1)
			}
			if err := unsynced.Delete(k); err != nil {
				return err
			}
			return addCount(meta, kUnsynced, -1)
		}
		for _, r := range results {
			k := seqKey(r.Seq)
			if recs.Get(k) == nil {
				continue // settled before
			}
			e, err := getEntry(recs, k)
			if err != nil {
				return err
			}
			switch r.Outcome {
			case Accepted, Duplicate:
				if e.state == Acknowledged {
					continue
				}
				if err := leave(k, e); err != nil {
					return err
				}
				if err := addCount(meta, kAcked, 1); err != nil {
					return err
				}
				e.state, e.acked = Acknowledged, now
			case Retry:
				if e.state != Sending {
					continue
				}
				e.state = Pending
			case Rejected:
				if err := tx.Bucket(bDead).Put(k, encodeDead(r.Reason, e)); err != nil {
					return err
				}
				if err := leave(k, e); err != nil {
					return err
				}
				if err := recs.Delete(k); err != nil {
					return err
				}
				continue
			default:
				return fmt.Errorf("outbox: unknown outcome %d for record %d", r.Outcome, r.Seq)
			}
			if err := recs.Put(k, e.encode()); err != nil {
				return err
			}
		}
		return nil
	})
}

// Prune deletes acknowledged records older than the retention period and
// returns how many it deleted. Pending and sending records are never
// deleted, nor are the dead letters (another bucket) or the last record
// appended, which Last returns for the agent's SAM counter check (the
// chain's last hash is kept apart, in the meta bucket). The records are
// walked oldest first and the walk stops at the first one enqueued after
// the cut: a record cannot be acknowledged before it was enqueued (after
// the clock was set back, a record behind that one waits for a later
// Prune). When nothing is due it only reads.
func (ob *Outbox) Prune() (int, error) {
	cut := ob.o.Now().Add(-ob.o.Retention).UnixMilli()
	var due [][]byte
	err := ob.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRecords).Cursor()
		last, _ := c.Last()
		for k, v := c.First(); k != nil && !bytes.Equal(k, last); k, v = c.Next() {
			e, err := decodeEntry(v)
			if err != nil {
				return fmt.Errorf("%w: record %d: %v", ErrCorrupt, binary.BigEndian.Uint64(k), err)
			}
			if e.enqueued > cut {
				break
			}
			if e.state == Acknowledged && e.acked <= cut {
				due = append(due, bytes.Clone(k))
			}
		}
		return nil
	})
	if err != nil || len(due) == 0 {
		return 0, err
	}
	n := 0
	err = ob.db.Update(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bRecords)
		last, _ := recs.Cursor().Last()
		for _, k := range due {
			v := recs.Get(k)
			if v == nil || bytes.Equal(k, last) {
				continue // settled or pruned since, or the last one now
			}
			e, err := decodeEntry(v)
			if err != nil {
				return fmt.Errorf("%w: record %d: %v", ErrCorrupt, binary.BigEndian.Uint64(k), err)
			}
			if e.state != Acknowledged || e.acked > cut {
				continue
			}
			if err := recs.Delete(k); err != nil {
				return err
			}
			n++
		}
		return addCount(tx.Bucket(bMeta), kAcked, -n)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
