package backoffice

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The bbolt side of AccountStore. The buckets are made on first write,
// so OpenBolt's list stays the records' own.
var (
	bbAccounts = []byte("accounts")       // name → Account (JSON)
	bbSessions = []byte("sessions")       // token → expiry (8, Unix ns) ‖ data
	bbAudit    = []byte("audit")          // id (the bucket's sequence, 8 big-endian) → AuditEntry (JSON); only ever appended
	bbUnknown  = []byte("signin-unknown") // unknownBucket (2, big-endian) → failed sign-ins of unknown names (8, big-endian)
)

var _ AccountStore = (*BoltStore)(nil)

func (s *BoltStore) update(bucket []byte, f func(b *bolt.Bucket) error) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return f(b)
	})
}

// view runs f on bucket, or not at all when nothing was written to it yet.
func (s *BoltStore) view(bucket []byte, f func(b *bolt.Bucket) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucket); b != nil {
			return f(b)
		}
		return nil
	})
}

// CreateAccount implements AccountStore.
func (s *BoltStore) CreateAccount(_ context.Context, a *Account) error {
	return s.update(bbAccounts, func(b *bolt.Bucket) error {
		if b.Get([]byte(a.Name)) != nil {
			return fmt.Errorf("%w: %s", ErrAccountExists, a.Name)
		}
		return putJSON(b, []byte(a.Name), a)
	})
}

// Account implements AccountStore.
func (s *BoltStore) Account(_ context.Context, name string) (*Account, error) {
	var a Account
	found := false
	err := s.view(bbAccounts, func(b *bolt.Bucket) (err error) {
		found, err = getJSON(b, []byte(name), &a)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%w: account %s", ErrNotFound, name)
	}
	return &a, nil
}

// Accounts implements AccountStore.
func (s *BoltStore) Accounts(_ context.Context) ([]Account, error) {
	var out []Account
	err := s.view(bbAccounts, func(b *bolt.Bucket) error {
		return b.ForEach(func(_, v []byte) error {
			var a Account
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			out = append(out, a)
			return nil
		})
	})
	return out, err
}

// UpdateAccount implements AccountStore.
func (s *BoltStore) UpdateAccount(_ context.Context, name string, f func(*Account) error) error {
	return s.update(bbAccounts, func(b *bolt.Bucket) error {
		var a Account
		found, err := getJSON(b, []byte(name), &a)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: account %s", ErrNotFound, name)
		}
		if err := f(&a); err != nil {
			return err
		}
		a.Name = name
		return putJSON(b, []byte(name), &a)
	})
}

// LoginFailed implements AccountStore: one transaction that writes one
// key, the account's or, for an unknown name, its bucket's in
// "signin-unknown".
func (s *BoltStore) LoginFailed(_ context.Context, name string, now time.Time) (time.Time, error) {
	var until time.Time
	err := s.update(bbAccounts, func(b *bolt.Bucket) error {
		var a Account
		found, err := getJSON(b, []byte(name), &a)
		if err != nil {
			return err
		}
		if !found {
			u, err := b.Tx().CreateBucketIfNotExists(bbUnknown)
			if err != nil {
				return err
			}
			k := binary.BigEndian.AppendUint16(nil, uint16(unknownBucket(name)))
			var n uint64
			if v := u.Get(k); len(v) == 8 {
				n = binary.BigEndian.Uint64(v)
			}
			return u.Put(k, binary.BigEndian.AppendUint64(nil, n+1))
		}
		lockAfterFailure(&a, now)
		if a.LockedUntil.After(now) {
			until = a.LockedUntil
		}
		return putJSON(b, []byte(name), &a)
	})
	return until, err
}

// LoginSucceeded implements AccountStore: the check and the reset in one
// transaction.
func (s *BoltStore) LoginSucceeded(_ context.Context, name, hash string, now time.Time) (bool, error) {
	ok := false
	err := s.update(bbAccounts, func(b *bolt.Bucket) error {
		var a Account
		found, err := getJSON(b, []byte(name), &a)
		if err != nil || !found || !loginAllowed(&a, hash, now) {
			return err
		}
		ok = true
		a.Failures = 0
		return putJSON(b, []byte(name), &a)
	})
	return ok, err
}

// SessionFind implements AccountStore.
func (s *BoltStore) SessionFind(_ context.Context, token string, now time.Time) ([]byte, bool, error) {
	var data []byte
	err := s.view(bbSessions, func(b *bolt.Bucket) error {
		v := b.Get([]byte(token))
		if len(v) < 8 || int64(binary.BigEndian.Uint64(v)) <= now.UnixNano() {
			return nil
		}
		data = bytes.Clone(v[8:])
		return nil
	})
	return data, data != nil, err
}

// SessionCommit implements AccountStore. The expired sessions are
// dropped on the way, at most once a minute (a
// walk of every session on each commit would make every staff request
// cost in the number of sessions); SessionFind never answers an expired
// one meanwhile.
func (s *BoltStore) SessionCommit(_ context.Context, token string, data []byte, expiry time.Time) error {
	now := time.Now().UnixNano()
	last := s.sessionSweep.Load()
	sweep := now-last >= int64(time.Minute) && s.sessionSweep.CompareAndSwap(last, now)
	return s.update(bbSessions, func(b *bolt.Bucket) error {
		if sweep {
			var expired [][]byte
			err := b.ForEach(func(k, v []byte) error {
				if len(v) < 8 || int64(binary.BigEndian.Uint64(v)) <= now {
					expired = append(expired, k)
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range expired {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		v := binary.BigEndian.AppendUint64(nil, uint64(expiry.UnixNano()))
		return b.Put([]byte(token), append(v, data...))
	})
}

// SessionDelete implements AccountStore.
func (s *BoltStore) SessionDelete(_ context.Context, token string) error {
	return s.update(bbSessions, func(b *bolt.Bucket) error { return b.Delete([]byte(token)) })
}

// AppendAudit implements AccountStore.
func (s *BoltStore) AppendAudit(_ context.Context, e *AuditEntry) error {
	return s.update(bbAudit, func(b *bolt.Bucket) error {
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.ID = int64(id)
		return putJSON(b, binary.BigEndian.AppendUint64(nil, id), e)
	})
}

// AuditLog implements AccountStore.
func (s *BoltStore) AuditLog(_ context.Context, q AuditQuery) ([]AuditEntry, error) {
	var out []AuditEntry
	err := s.view(bbAudit, func(b *bolt.Bucket) error {
		c := b.Cursor()
		var k, v []byte
		if q.Before > 0 {
			// the first key at or after Before, then the one before it
			if k, _ = c.Seek(binary.BigEndian.AppendUint64(nil, uint64(q.Before))); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Last()
		}
		for ; k != nil && len(out) < q.Limit; k, v = c.Prev() {
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if q.matches(&e) {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}
