package backoffice

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bbInstitutions = []byte("institutions") // name → institutionJSON
	// the record feed: sequence (8, big-endian; the bucket's sequence,
	// taken in the ingest transaction) → serial ‖ counter ‖ service.
	// bbolt has one writer at a time, so sequence order is commit order.
	bbFeed = []byte("feed")
)

// feedBolt appends the record under key (serial ‖ counter) of service to
// the feed, in the ingest transaction. The first time (a file written
// before the feed existed), the feed starts with every record stored so
// far, in key order.
func feedBolt(tx *bolt.Tx, key []byte, service string) error {
	feed := tx.Bucket(bbFeed)
	if feed == nil {
		var err error
		if feed, err = tx.CreateBucket(bbFeed); err != nil {
			return err
		}
		err = tx.Bucket(bbRecords).ForEach(func(k, v []byte) error {
			st, err := decodeStored(v)
			if err != nil {
				return err
			}
			return appendFeed(feed, k, st.Rec.Service)
		})
		if err != nil {
			return err
		}
	}
	return appendFeed(feed, key, service)
}

func appendFeed(feed *bolt.Bucket, key []byte, service string) error {
	seq, err := feed.NextSequence()
	if err != nil {
		return err
	}
	return feed.Put(binary.BigEndian.AppendUint64(nil, seq), append(bytes.Clone(key), service...))
}

// Feed implements InstitutionStore: the feed bucket in sequence order.
// The horizon is the last sequence given out (every record up to it is
// committed: bbolt has one writer).
func (s *BoltStore) Feed(_ context.Context, services []string, after Cursor, limit int) ([]FeedRecord, Cursor, bool, error) {
	if after.XID != 0 {
		return nil, Cursor{}, false, fmt.Errorf("%w: not a cursor of this store", ErrCursor)
	}
	var out []FeedRecord
	next := after
	more := false
	err := s.db.View(func(tx *bolt.Tx) error {
		feed := tx.Bucket(bbFeed)
		if feed == nil {
			return nil
		}
		recs := tx.Bucket(bbRecords)
		c := feed.Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, after.Seq+1)); k != nil; k, v = c.Next() {
			if len(k) != 8 || len(v) < 12 {
				return fmt.Errorf("backoffice: damaged feed entry %x", k)
			}
			if !slices.Contains(services, string(v[12:])) {
				continue
			}
			if len(out) == limit {
				more = true
				return nil
			}
			st, err := decodeStored(recs.Get(v[:12]))
			if err != nil {
				return err
			}
			code, err := codeOf(st.Rec)
			if err != nil {
				return err
			}
			out = append(out, FeedRecord{Stored: *st, Code: code, Cursor: Cursor{Seq: binary.BigEndian.Uint64(k)}})
			next = out[len(out)-1].Cursor
		}
		// read to the end: the horizon
		next.Seq = max(next.Seq, feed.Sequence())
		return nil
	})
	if err != nil {
		return nil, Cursor{}, false, err
	}
	return out, next, more, nil
}

// AddInstitution implements InstitutionStore.
func (s *BoltStore) AddInstitution(_ context.Context, in Institution) error {
	if err := CheckInstitution(in); err != nil {
		return err
	}
	raw, err := in.toJSON()
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bbInstitutions)
		if err != nil {
			return err
		}
		if b.Get([]byte(in.Name)) != nil {
			return fmt.Errorf("%w: %s", ErrInstitutionExists, in.Name)
		}
		// a certificate is one institution's
		err = b.ForEach(func(_, v []byte) error {
			other, err := institutionFromJSON(v)
			if err != nil {
				return err
			}
			for _, c := range in.Certs {
				if slices.Contains(other.Certs, c) {
					return fmt.Errorf("%w: %s: the client certificate is registered for %s", ErrInstitution, in.Name, other.Name)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		return b.Put([]byte(in.Name), raw)
	})
}

// Institutions implements InstitutionStore.
func (s *BoltStore) Institutions(_ context.Context) ([]Institution, error) {
	var out []Institution
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bbInstitutions)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			in, err := institutionFromJSON(v)
			if err != nil {
				return err
			}
			out = append(out, *in)
			return nil
		})
	})
	return out, err
}

// Institution implements InstitutionStore.
func (s *BoltStore) Institution(_ context.Context, name string) (*Institution, error) {
	var in *Institution
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bbInstitutions)
		if b == nil || b.Get([]byte(name)) == nil {
			return fmt.Errorf("%w: institution %s", ErrNotFound, name)
		}
		var err error
		in, err = institutionFromJSON(b.Get([]byte(name)))
		return err
	})
	return in, err
}

// InstitutionByCredential implements InstitutionStore: the bbolt store
// has few institutions, read from memory-mapped pages.
func (s *BoltStore) InstitutionByCredential(ctx context.Context, hash [32]byte, cert bool) (*Institution, error) {
	all, err := s.Institutions(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if cert && slices.Contains(all[i].Certs, hash) ||
			!cert && slices.ContainsFunc(all[i].Keys, func(k APIKey) bool { return k.Hash == hash }) {
			return &all[i], nil
		}
	}
	return nil, fmt.Errorf("%w: credential", ErrNotFound)
}

// updateInstitution changes one institution in one transaction.
func (s *BoltStore) updateInstitution(name string, f func(*Institution) error) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bbInstitutions)
		if b == nil || b.Get([]byte(name)) == nil {
			return fmt.Errorf("%w: institution %s", ErrNotFound, name)
		}
		in, err := institutionFromJSON(b.Get([]byte(name)))
		if err != nil {
			return err
		}
		if err := f(in); err != nil {
			return err
		}
		raw, err := in.toJSON()
		if err != nil {
			return err
		}
		return b.Put([]byte(name), raw)
	})
}

// RotateInstitutionKey implements InstitutionStore.
func (s *BoltStore) RotateInstitutionKey(_ context.Context, name string, key APIKey, oldExpires time.Time) error {
	return s.updateInstitution(name, func(in *Institution) error {
		rotateKeys(in, key, oldExpires)
		return nil
	})
}

// SetInstitutionEnabled implements InstitutionStore.
func (s *BoltStore) SetInstitutionEnabled(_ context.Context, name string, enabled bool) error {
	return s.updateInstitution(name, func(in *Institution) error {
		in.Enabled = enabled
		return nil
	})
}

// boltLeases are the delivery leases of the bbolt stores: a bbolt file
// is open in one process only, so a lease in memory is enough.
var boltLeases sync.Map // boltLeaseKey → struct{}

type boltLeaseKey struct {
	s    *BoltStore
	name string
}

type boltLease struct {
	k    boltLeaseKey
	once sync.Once
}

// DeliveryLease implements InstitutionStore.
func (s *BoltStore) DeliveryLease(_ context.Context, name string) (DeliveryLease, error) {
	k := boltLeaseKey{s, name}
	if _, held := boltLeases.LoadOrStore(k, struct{}{}); held {
		return nil, ErrLeaseHeld
	}
	return &boltLease{k: k}, nil
}

// Release implements DeliveryLease.
func (l *boltLease) Release() { l.once.Do(func() { boltLeases.Delete(l.k) }) }

// SetPending implements DeliveryLease.
func (l *boltLease) SetPending(_ context.Context, from, to Cursor) error {
	return l.k.s.updateInstitution(l.k.name, func(in *Institution) error {
		if in.Delivered != from {
			return ErrDeliveryMoved
		}
		in.Pending = to
		return nil
	})
}

// SetDelivered implements DeliveryLease.
func (l *boltLease) SetDelivered(_ context.Context, from, to Cursor) error {
	return l.k.s.updateInstitution(l.k.name, func(in *Institution) error {
		if in.Delivered != from {
			return ErrDeliveryMoved
		}
		in.Delivered, in.Pending, in.Failures, in.NextAttempt = to, Cursor{}, 0, time.Time{}
		return nil
	})
}

// SetBackoff implements DeliveryLease.
func (l *boltLease) SetBackoff(_ context.Context, failures int, next time.Time) error {
	return l.k.s.updateInstitution(l.k.name, func(in *Institution) error {
		in.Failures, in.NextAttempt = failures, next.UTC()
		return nil
	})
}
