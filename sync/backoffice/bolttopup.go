package backoffice

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Top-ups in bbolt (TopUpStore).
var (
	bbTopUps    = []byte("topups")      // top-up id → boltTopUp (JSON)
	bbTopUpRefs = []byte("topup-refs")  // source reference → top-up id
	bbTopUpNIP  = []byte("topup-nip")   // NIP ‖ staged at (Unix ns, 8) ‖ id → nil
	bbTopUpAuth = []byte("topup-authz") // card serial ‖ PTC (4) ‖ id → nil, for the authorised ones
)

func topUpBuckets(tx *bolt.Tx) error {
	for _, b := range [][]byte{bbTopUps, bbTopUpRefs, bbTopUpNIP, bbTopUpAuth} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

type boltTopUp struct {
	ID              []byte      `json:"id"`
	NIP             string      `json:"nip"`
	Amount          uint32      `json:"amount"`
	Ref             string      `json:"ref"`
	StagedAt        time.Time   `json:"staged_at"`
	StagedBy        string      `json:"staged_by,omitempty"`
	Status          TopUpStatus `json:"status"`
	AuthSerial      []byte      `json:"auth_serial,omitempty"`
	AuthPTC         uint32      `json:"auth_ptc,omitempty"`
	AuthNotAfter    time.Time   `json:"auth_not_after,omitzero"`
	AuthorisedAt    time.Time   `json:"authorised_at,omitzero"`
	Authorisations  int         `json:"authorisations,omitempty"`
	AppliedAt       time.Time   `json:"applied_at,omitzero"`
	AppliedCode     string      `json:"applied_code,omitempty"`
	AppliedTerminal string      `json:"applied_terminal,omitempty"`
	AppliedSerial   []byte      `json:"applied_serial,omitempty"`
	AppliedPTC      uint32      `json:"applied_ptc,omitempty"`
	AppliedAmount   uint32      `json:"applied_amount,omitempty"`
}

func toBoltTopUp(t TopUp) boltTopUp {
	b := boltTopUp{ID: t.ID[:], NIP: t.NIP, Amount: t.Amount, Ref: t.Ref, StagedAt: t.StagedAt.UTC(), StagedBy: t.StagedBy, Status: t.Status,
		AuthorisedAt: t.AuthorisedAt.UTC(), Authorisations: t.Authorisations}
	if t.AuthorisedAt.IsZero() {
		b.AuthorisedAt = time.Time{}
	}
	if t.Status == TopUpAuthorised {
		b.AuthSerial, b.AuthPTC, b.AuthNotAfter = t.AuthSerial[:], t.AuthPTC, t.AuthNotAfter.UTC()
	}
	if t.Status == TopUpApplied {
		b.AppliedAt, b.AppliedCode, b.AppliedTerminal = t.AppliedAt.UTC(), t.AppliedCode, t.AppliedTerminal
		b.AppliedSerial, b.AppliedPTC, b.AppliedAmount = t.AppliedSerial[:], t.AppliedPTC, t.AppliedAmount
		b.AuthSerial, b.AuthPTC, b.AuthNotAfter = t.AuthSerial[:], t.AuthPTC, t.AuthNotAfter.UTC()
	}
	return b
}

func (b boltTopUp) topUp() (TopUp, error) {
	if len(b.ID) != 16 || (b.AuthSerial != nil && len(b.AuthSerial) != 8) || (b.AppliedSerial != nil && len(b.AppliedSerial) != 8) {
		return TopUp{}, errors.New("backoffice: damaged top-up")
	}
	t := TopUp{ID: [16]byte(b.ID), NIP: b.NIP, Amount: b.Amount, Ref: b.Ref, StagedAt: b.StagedAt, StagedBy: b.StagedBy, Status: b.Status,
		AuthPTC: b.AuthPTC, AuthNotAfter: b.AuthNotAfter, AuthorisedAt: b.AuthorisedAt, Authorisations: b.Authorisations,
		AppliedAt: b.AppliedAt, AppliedCode: b.AppliedCode, AppliedTerminal: b.AppliedTerminal, AppliedPTC: b.AppliedPTC, AppliedAmount: b.AppliedAmount}
	if b.AuthSerial != nil {
		t.AuthSerial = [8]byte(b.AuthSerial)
	}
	if b.AppliedSerial != nil {
		t.AppliedSerial = [8]byte(b.AppliedSerial)
	}
	return t, nil
}

func getTopUp(b *bolt.Bucket, id []byte) (*TopUp, error) {
	var bt boltTopUp
	found, err := getJSON(b, id, &bt)
	if err != nil || !found {
		return nil, err
	}
	t, err := bt.topUp()
	return &t, err
}

func topUpNIPKey(nip string, at time.Time, id [16]byte) []byte {
	k := append([]byte(nip), 0)
	k = binary.BigEndian.AppendUint64(k, uint64(at.UnixNano()))
	return append(k, id[:]...)
}

func topUpAuthKey(serial [8]byte, ptc uint32, id [16]byte) []byte {
	k := binary.BigEndian.AppendUint32(append([]byte{}, serial[:]...), ptc)
	return append(k, id[:]...)
}

// putTopUp writes t over old (nil: new), keeping the authorisation index.
func putTopUp(tx *bolt.Tx, old, t *TopUp) error {
	auth := tx.Bucket(bbTopUpAuth)
	if old != nil && old.Status == TopUpAuthorised {
		if err := auth.Delete(topUpAuthKey(old.AuthSerial, old.AuthPTC, old.ID)); err != nil {
			return err
		}
	}
	if t.Status == TopUpAuthorised {
		if err := auth.Put(topUpAuthKey(t.AuthSerial, t.AuthPTC, t.ID), nil); err != nil {
			return err
		}
	}
	return putJSON(tx.Bucket(bbTopUps), t.ID[:], toBoltTopUp(*t))
}

// nipTopUps are the NIP's top-ups, the oldest staged first.
func nipTopUps(tx *bolt.Tx, nip string) ([]TopUp, error) {
	prefix := append([]byte(nip), 0)
	ts := tx.Bucket(bbTopUps)
	var out []TopUp
	c := tx.Bucket(bbTopUpNIP).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		t, err := getTopUp(ts, k[len(k)-16:])
		if err != nil {
			return nil, err
		}
		if t == nil {
			return nil, fmt.Errorf("backoffice: top-up index names a missing top-up %x", k[len(k)-16:])
		}
		out = append(out, *t)
	}
	return out, nil
}

// StageTopUp implements TopUpStore in one transaction (bbolt has one
// writer, so the limit check and the insert are atomic).
func (s *BoltStore) StageTopUp(_ context.Context, t TopUp, from, to time.Time, limit uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		refs := tx.Bucket(bbTopUpRefs)
		if refs.Get([]byte(t.Ref)) != nil {
			return fmt.Errorf("%w: %q", ErrTopUpRef, t.Ref)
		}
		all, err := nipTopUps(tx, t.NIP)
		if err != nil {
			return err
		}
		var used uint64
		for _, o := range all {
			if o.Status != TopUpCancelled && !o.StagedAt.Before(from) && o.StagedAt.Before(to) {
				used += uint64(o.Amount)
			}
		}
		if err := limitError(used, uint64(t.Amount), limit, from); err != nil {
			return err
		}
		if tx.Bucket(bbTopUps).Get(t.ID[:]) != nil {
			return fmt.Errorf("backoffice: top-up %x exists", t.ID)
		}
		if err := refs.Put([]byte(t.Ref), t.ID[:]); err != nil {
			return err
		}
		if err := tx.Bucket(bbTopUpNIP).Put(topUpNIPKey(t.NIP, t.StagedAt, t.ID), nil); err != nil {
			return err
		}
		return putTopUp(tx, nil, &t)
	})
}

// TopUp implements TopUpStore.
func (s *BoltStore) TopUp(_ context.Context, id [16]byte) (*TopUp, error) {
	var t *TopUp
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		t, err = getTopUp(tx.Bucket(bbTopUps), id[:])
		return err
	})
	if err == nil && t == nil {
		err = ErrNotFound
	}
	return t, err
}

// TopUps implements TopUpStore.
func (s *BoltStore) TopUps(_ context.Context, f TopUpFilter) ([]TopUp, error) {
	var out []TopUp
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bbTopUps).ForEach(func(k, v []byte) error {
			t, err := getTopUp(tx.Bucket(bbTopUps), k)
			if err != nil {
				return err
			}
			if (f.Status == "" || t.Status == f.Status) && (f.NIP == "" || t.NIP == f.NIP) {
				out = append(out, *t)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sortTopUps(out)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// sortTopUps: the newest staged first, then the id.
func sortTopUps(ts []TopUp) {
	slices.SortFunc(ts, func(a, b TopUp) int {
		if c := b.StagedAt.Compare(a.StagedAt); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
}

// PendingTopUps implements TopUpStore.
func (s *BoltStore) PendingTopUps(_ context.Context, nip string) ([]TopUp, error) {
	var out []TopUp
	err := s.db.View(func(tx *bolt.Tx) error {
		all, err := nipTopUps(tx, nip)
		for _, t := range all {
			if t.Status == TopUpStaged || t.Status == TopUpAuthorised {
				out = append(out, t)
			}
		}
		return err
	})
	return out, err
}

// authorisable: staged, or authorised for this card at this PTC.
func authorisable(t *TopUp, serial [8]byte, ptc uint32) bool {
	return t.Status == TopUpStaged || (t.Status == TopUpAuthorised && t.AuthSerial == serial && t.AuthPTC == ptc)
}

// AuthoriseTopUp implements TopUpStore.
func (s *BoltStore) AuthoriseTopUp(_ context.Context, id [16]byte, serial [8]byte, ptc uint32, notAfter, at time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		t, err := getTopUp(tx.Bucket(bbTopUps), id[:])
		if err != nil {
			return err
		}
		if t == nil {
			return ErrNotFound
		}
		if !authorisable(t, serial, ptc) {
			return fmt.Errorf("%w: %s", ErrTopUpState, t.Status)
		}
		old := *t
		t.Status, t.AuthSerial, t.AuthPTC, t.AuthNotAfter, t.AuthorisedAt = TopUpAuthorised, serial, ptc, notAfter.UTC(), at.UTC()
		t.Authorisations++
		return putTopUp(tx, &old, t)
	})
}

// CancelTopUp implements TopUpStore.
func (s *BoltStore) CancelTopUp(_ context.Context, id [16]byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		t, err := getTopUp(tx.Bucket(bbTopUps), id[:])
		if err != nil {
			return err
		}
		if t == nil {
			return ErrNotFound
		}
		if t.Status != TopUpStaged {
			return fmt.Errorf("%w: %s", ErrTopUpState, t.Status)
		}
		old := *t
		t.Status = TopUpCancelled
		return putTopUp(tx, &old, t)
	})
}

// topUpIngestBolt decides on a record with a purse field inside Ingest's
// transaction, after the ledger stored its row: a top-up record applies
// its top-up (applyTopUp) unless its proof is bad (mayApply); a purse
// record the ledger counted releases the top-ups authorised for its card
// at the PTC it moved the card from (mayRelease, released). Alarms go
// with the record.
func topUpIngestBolt(tx *bolt.Tx, e Entry, row *PurseRow, now time.Time) error {
	x := purseTxnOf(e)
	if x == nil {
		return nil
	}
	ts := tx.Bucket(bbTopUps)
	if x.TopUp && mayApply(row) {
		t, err := getTopUp(ts, x.Request[:])
		if err != nil {
			return err
		}
		var old TopUp
		if t != nil {
			old = *t
		}
		alarms, changed := applyTopUp(x, t, now)
		for _, a := range alarms {
			if err := raiseBolt(tx.Bucket(bbAlarms), a); err != nil {
				return err
			}
		}
		if changed {
			if err := putTopUp(tx, &old, t); err != nil {
				return err
			}
		}
	}
	if x.PTC == 0 || !mayRelease(row) {
		return nil
	}
	prefix := binary.BigEndian.AppendUint32(append([]byte{}, x.Serial[:]...), x.PTC-1)
	var ids [][]byte
	c := tx.Bucket(bbTopUpAuth).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, bytes.Clone(k[len(prefix):]))
	}
	for _, id := range ids {
		t, err := getTopUp(ts, id)
		if err != nil {
			return err
		}
		if t == nil {
			return fmt.Errorf("backoffice: top-up index names a missing top-up %x", id)
		}
		old := *t
		if released(x, t) {
			if err := putTopUp(tx, &old, t); err != nil {
				return err
			}
		}
	}
	return nil
}

var _ TopUpStore = (*BoltStore)(nil)

// bbTopUpSettings holds serve's top-up limits under one key.
var (
	bbTopUpSettings  = []byte("topup-settings")
	topUpSettingsKey = []byte("limits")
)

// SaveTopUpSettings implements TopUpSettingsStore.
func (s *BoltStore) SaveTopUpSettings(_ context.Context, ts TopUpSettings) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bbTopUpSettings)
		if err != nil {
			return err
		}
		return putJSON(b, topUpSettingsKey, ts)
	})
}

// TopUpSettings implements TopUpSettingsStore.
func (s *BoltStore) TopUpSettings(_ context.Context) (*TopUpSettings, error) {
	var out *TopUpSettings
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bbTopUpSettings)
		if b == nil {
			return nil
		}
		var ts TopUpSettings
		found, err := getJSON(b, topUpSettingsKey, &ts)
		if found {
			out = &ts
		}
		return err
	})
	return out, err
}

var _ TopUpSettingsStore = (*BoltStore)(nil)
