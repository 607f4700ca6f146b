package backoffice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Renewals in bbolt (RenewalStore).
var (
	bbRenewals    = []byte("renewal-updates")    // update id → boltRenewal (JSON)
	bbRenewalNIP  = []byte("renewal-staged-nip") // NIP → id of its staged update
	bbOffers      = []byte("renewal-offers")     // card serial ‖ new SOD hash → boltOffer (JSON)
	bbOffersState = []byte("renewal-offer-base") // card serial ‖ base SOD hash ‖ update id ‖ sequence → new SOD hash of the latest offer
)

func renewalBuckets(tx *bolt.Tx) error {
	for _, b := range [][]byte{bbRenewals, bbRenewalNIP, bbOffers, bbOffersState} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

type boltRenewal struct {
	ID              []byte            `json:"id"`
	NIP             string            `json:"nip"`
	Groups          map[string][]byte `json:"groups"`
	ImportID        []byte            `json:"import_id"`
	ImportedAt      time.Time         `json:"imported_at"`
	Status          RenewalStatus     `json:"status"`
	AppliedAt       time.Time         `json:"applied_at,omitzero"`
	AppliedCode     string            `json:"applied_code,omitempty"`
	AppliedSerial   []byte            `json:"applied_serial,omitempty"`
	AppliedTerminal string            `json:"applied_terminal,omitempty"`
}

func toBoltRenewal(u RenewalUpdate) boltRenewal {
	b := boltRenewal{ID: u.ID[:], NIP: u.NIP, Groups: map[string][]byte{}, ImportID: u.ImportID[:], ImportedAt: u.ImportedAt.UTC(),
		Status: u.Status, AppliedAt: u.AppliedAt.UTC(), AppliedCode: u.AppliedCode, AppliedTerminal: u.AppliedTerminal}
	if u.Status == RenewalApplied {
		b.AppliedSerial = u.AppliedSerial[:]
	} else {
		b.AppliedAt = time.Time{}
	}
	for dg, c := range u.Groups {
		b.Groups[strconv.Itoa(dg)] = c
	}
	return b
}

func (b boltRenewal) update() (RenewalUpdate, error) {
	if len(b.ID) != 16 || len(b.ImportID) != 16 || (b.AppliedSerial != nil && len(b.AppliedSerial) != 8) {
		return RenewalUpdate{}, errors.New("backoffice: damaged renewal update")
	}
	u := RenewalUpdate{ID: [16]byte(b.ID), NIP: b.NIP, Groups: map[int][]byte{}, ImportID: [16]byte(b.ImportID), ImportedAt: b.ImportedAt,
		Status: b.Status, AppliedAt: b.AppliedAt, AppliedCode: b.AppliedCode, AppliedTerminal: b.AppliedTerminal}
	if b.AppliedSerial != nil {
		u.AppliedSerial = [8]byte(b.AppliedSerial)
	}
	for k, c := range b.Groups {
		dg, err := strconv.Atoi(k)
		if err != nil {
			return RenewalUpdate{}, fmt.Errorf("backoffice: damaged renewal update: group %q", k)
		}
		u.Groups[dg] = c
	}
	return u, nil
}

type boltOffer struct {
	UpdateID []byte          `json:"update_id"`
	Serial   []byte          `json:"serial"`
	Sequence uint32          `json:"sequence"`
	BaseSOD  []byte          `json:"base_sod"`
	NewSOD   []byte          `json:"new_sod"`
	NotAfter time.Time       `json:"not_after"`
	IssuedAt time.Time       `json:"issued_at"`
	Offer    json.RawMessage `json:"offer"`
}

func (b boltOffer) offer() (*IssuedOffer, error) {
	if len(b.UpdateID) != 16 || len(b.Serial) != 8 || len(b.BaseSOD) != 32 || len(b.NewSOD) != 32 {
		return nil, errors.New("backoffice: damaged renewal offer")
	}
	return &IssuedOffer{UpdateID: [16]byte(b.UpdateID), Serial: [8]byte(b.Serial), Sequence: b.Sequence, BaseSOD: [32]byte(b.BaseSOD),
		NewSOD: [32]byte(b.NewSOD), NotAfter: b.NotAfter, IssuedAt: b.IssuedAt, JSON: b.Offer}, nil
}

func getRenewal(b *bolt.Bucket, id []byte) (*RenewalUpdate, error) {
	var br boltRenewal
	found, err := getJSON(b, id, &br)
	if err != nil || !found {
		return nil, err
	}
	u, err := br.update()
	return &u, err
}

// StageRenewals implements RenewalStore, in one transaction.
func (s *BoltStore) StageRenewals(_ context.Context, updates []RenewalUpdate) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		ups, byNIP := tx.Bucket(bbRenewals), tx.Bucket(bbRenewalNIP)
		for _, u := range updates {
			if prev := byNIP.Get([]byte(u.NIP)); prev != nil {
				old, err := getRenewal(ups, prev)
				if err != nil {
					return err
				}
				if old != nil && old.Status == RenewalStaged {
					old.Status = RenewalSuperseded
					if err := putJSON(ups, prev, toBoltRenewal(*old)); err != nil {
						return err
					}
				}
			}
			if ups.Get(u.ID[:]) != nil {
				return fmt.Errorf("backoffice: renewal update %x exists", u.ID)
			}
			if err := putJSON(ups, u.ID[:], toBoltRenewal(u)); err != nil {
				return err
			}
			if err := byNIP.Put([]byte(u.NIP), u.ID[:]); err != nil {
				return err
			}
		}
		return nil
	})
}

// StagedRenewal implements RenewalStore.
func (s *BoltStore) StagedRenewal(_ context.Context, nip string) (*RenewalUpdate, error) {
	var u *RenewalUpdate
	err := s.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bbRenewalNIP).Get([]byte(nip))
		if id == nil {
			return nil
		}
		var err error
		u, err = getRenewal(tx.Bucket(bbRenewals), id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if u == nil || u.Status != RenewalStaged {
		return nil, ErrNotFound
	}
	return u, nil
}

// RenewalUpdate implements RenewalStore.
func (s *BoltStore) RenewalUpdate(_ context.Context, id [16]byte) (*RenewalUpdate, error) {
	var u *RenewalUpdate
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		u, err = getRenewal(tx.Bucket(bbRenewals), id[:])
		return err
	})
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, ErrNotFound
	}
	return u, nil
}

// RenewalUpdates implements RenewalStore.
func (s *BoltStore) RenewalUpdates(_ context.Context, f RenewalFilter) ([]RenewalUpdate, error) {
	var out []RenewalUpdate
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bbRenewals).ForEach(func(k, v []byte) error {
			var br boltRenewal
			if err := json.Unmarshal(v, &br); err != nil {
				return fmt.Errorf("backoffice: damaged renewal update %x: %w", k, err)
			}
			if (f.Status != "" && br.Status != f.Status) || (f.NIP != "" && br.NIP != f.NIP) {
				return nil
			}
			u, err := br.update()
			if err != nil {
				return err
			}
			out = append(out, u)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sortRenewals(out)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// sortRenewals: the newest import first, then the NIP.
func sortRenewals(us []RenewalUpdate) {
	slices.SortFunc(us, func(a, b RenewalUpdate) int {
		if c := b.ImportedAt.Compare(a.ImportedAt); c != 0 {
			return c
		}
		if a.NIP != b.NIP {
			if a.NIP < b.NIP {
				return -1
			}
			return 1
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
}

// RenewalCounts implements RenewalStore.
func (s *BoltStore) RenewalCounts(_ context.Context) (map[RenewalStatus]int64, error) {
	out := map[RenewalStatus]int64{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bbRenewals).ForEach(func(k, v []byte) error {
			var st struct {
				Status RenewalStatus `json:"status"`
			}
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("backoffice: damaged renewal update %x: %w", k, err)
			}
			out[st.Status]++
			return nil
		})
	})
	return out, err
}

func offerStateKey(serial [8]byte, base [32]byte, update [16]byte, seq uint32) []byte {
	k := append(append(append([]byte{}, serial[:]...), base[:]...), update[:]...)
	return append(k, byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq))
}

// PutRenewalOffer implements RenewalStore.
func (s *BoltStore) PutRenewalOffer(_ context.Context, o IssuedOffer) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		key := append(append([]byte{}, o.Serial[:]...), o.NewSOD[:]...)
		if err := putJSON(tx.Bucket(bbOffers), key, boltOffer{UpdateID: o.UpdateID[:], Serial: o.Serial[:], Sequence: o.Sequence,
			BaseSOD: o.BaseSOD[:], NewSOD: o.NewSOD[:], NotAfter: o.NotAfter.UTC(), IssuedAt: o.IssuedAt.UTC(), Offer: o.JSON}); err != nil {
			return err
		}
		return tx.Bucket(bbOffersState).Put(offerStateKey(o.Serial, o.BaseSOD, o.UpdateID, o.Sequence), o.NewSOD[:])
	})
}

func getOffer(b *bolt.Bucket, serial [8]byte, newSOD []byte) (*IssuedOffer, error) {
	var bo boltOffer
	found, err := getJSON(b, append(append([]byte{}, serial[:]...), newSOD...), &bo)
	if err != nil || !found {
		return nil, err
	}
	return bo.offer()
}

// RenewalOfferByNewSOD implements RenewalStore.
func (s *BoltStore) RenewalOfferByNewSOD(_ context.Context, serial [8]byte, newSOD [32]byte) (*IssuedOffer, error) {
	var o *IssuedOffer
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		o, err = getOffer(tx.Bucket(bbOffers), serial, newSOD[:])
		return err
	})
	if err == nil && o == nil {
		err = ErrNotFound
	}
	return o, err
}

// RenewalOfferFor implements RenewalStore.
func (s *BoltStore) RenewalOfferFor(_ context.Context, serial [8]byte, base [32]byte, update [16]byte, seq uint32) (*IssuedOffer, error) {
	var o *IssuedOffer
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		newSOD := tx.Bucket(bbOffersState).Get(offerStateKey(serial, base, update, seq))
		if newSOD == nil {
			return nil
		}
		o, err = getOffer(tx.Bucket(bbOffers), serial, newSOD)
		return err
	})
	if err == nil && o == nil {
		err = ErrNotFound
	}
	return o, err
}

// applyRenewalBolt applies a renewal record inside Ingest's transaction
// (applyRenewal), raising its alarm when it matches nothing.
func applyRenewalBolt(tx *bolt.Tx, a *RenewalApplication, now time.Time) error {
	ups := tx.Bucket(bbRenewals)
	u, err := getRenewal(ups, a.UpdateID[:])
	if err != nil {
		return err
	}
	o, err := getOffer(tx.Bucket(bbOffers), a.Serial, a.NewSOD[:])
	if err != nil {
		return err
	}
	alarm, applied := applyRenewal(a, u, o, now)
	if alarm != nil {
		return raiseBolt(tx.Bucket(bbAlarms), *alarm)
	}
	if !applied {
		return nil
	}
	if err := putJSON(ups, a.UpdateID[:], toBoltRenewal(*u)); err != nil {
		return err
	}
	// a superseded update applied: the NIP's newer staged one stays
	// staged (it is built on the card's new EF.SOD next time)
	byNIP := tx.Bucket(bbRenewalNIP)
	if bytes.Equal(byNIP.Get([]byte(u.NIP)), u.ID[:]) {
		return byNIP.Delete([]byte(u.NIP))
	}
	return nil
}

var _ RenewalStore = (*BoltStore)(nil)
