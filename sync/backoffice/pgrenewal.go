package backoffice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Renewals in PostgreSQL (RenewalStore; migration 011).

func groupsJSON(g map[int][]byte) ([]byte, []int16, error) {
	m := map[string][]byte{}
	var changed []int16
	for dg, c := range g {
		m[strconv.Itoa(dg)] = c
		changed = append(changed, int16(dg))
	}
	raw, err := json.Marshal(m)
	return raw, changed, err
}

// StageRenewals implements RenewalStore in one transaction; the table lock
// serialises imports, so two imports for one NIP supersede in order.
func (s *PGStore) StageRenewals(ctx context.Context, updates []RenewalUpdate) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "LOCK TABLE renewal_updates IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return err
		}
		b := &pgx.Batch{}
		for _, u := range updates {
			groups, changed, err := groupsJSON(u.Groups)
			if err != nil {
				return err
			}
			b.Queue("UPDATE renewal_updates SET status = 'superseded' WHERE nip = $1 AND status = 'staged'", u.NIP)
			b.Queue(`INSERT INTO renewal_updates (update_id, nip, groups, changed, import_id, imported_at, status)
				VALUES ($1, $2, $3, $4, $5, $6, 'staged')`, u.ID[:], u.NIP, groups, changed, u.ImportID[:], u.ImportedAt)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("backoffice: store: %w", err)
	}
	return nil
}

const renewalColumns = `update_id, nip, groups, import_id, imported_at, status, applied_at, coalesce(applied_code, ''),
	applied_serial, coalesce(applied_terminal, '')`

func scanRenewal(row pgx.CollectableRow) (RenewalUpdate, error) {
	var u RenewalUpdate
	var id, imp, serial, groups []byte
	var applied *time.Time
	var status string
	if err := row.Scan(&id, &u.NIP, &groups, &imp, &u.ImportedAt, &status, &applied, &u.AppliedCode, &serial, &u.AppliedTerminal); err != nil {
		return u, err
	}
	if len(id) != 16 || len(imp) != 16 || (serial != nil && len(serial) != 8) {
		return u, errors.New("backoffice: damaged renewal update")
	}
	u.ID, u.ImportID, u.Status = [16]byte(id), [16]byte(imp), RenewalStatus(status)
	if serial != nil {
		u.AppliedSerial = [8]byte(serial)
	}
	if applied != nil {
		u.AppliedAt = applied.UTC()
	}
	u.ImportedAt = u.ImportedAt.UTC()
	var m map[string][]byte
	if err := json.Unmarshal(groups, &m); err != nil {
		return u, fmt.Errorf("backoffice: damaged renewal update groups: %w", err)
	}
	u.Groups = map[int][]byte{}
	for k, c := range m {
		dg, err := strconv.Atoi(k)
		if err != nil {
			return u, fmt.Errorf("backoffice: damaged renewal update: group %q", k)
		}
		u.Groups[dg] = c
	}
	return u, nil
}

// StagedRenewal implements RenewalStore.
func (s *PGStore) StagedRenewal(ctx context.Context, nip string) (*RenewalUpdate, error) {
	rows, _ := s.pool.Query(ctx, "SELECT "+renewalColumns+" FROM renewal_updates WHERE nip = $1 AND status = 'staged'", nip)
	u, err := pgx.CollectExactlyOneRow(rows, scanRenewal)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("backoffice: store: %w", err)
	}
	return &u, nil
}

// RenewalUpdate implements RenewalStore (on the main pool: terminals ask).
func (s *PGStore) RenewalUpdate(ctx context.Context, id [16]byte) (*RenewalUpdate, error) {
	rows, _ := s.pool.Query(ctx, "SELECT "+renewalColumns+" FROM renewal_updates WHERE update_id = $1", id[:])
	u, err := pgx.CollectExactlyOneRow(rows, scanRenewal)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("backoffice: store: %w", err)
	}
	return &u, nil
}

// RenewalUpdates implements RenewalStore (on the staff pool).
func (s *PGStore) RenewalUpdates(ctx context.Context, f RenewalFilter) ([]RenewalUpdate, error) {
	limit := int64(f.Limit)
	if limit <= 0 {
		limit = -1
	}
	rows, _ := s.staff.Query(ctx, "SELECT "+renewalColumns+` FROM renewal_updates
		WHERE ($1 = '' OR status = $1) AND ($2 = '' OR nip = $2)
		ORDER BY imported_at DESC, nip, update_id LIMIT CASE WHEN $3 < 0 THEN NULL ELSE $3 END`, string(f.Status), f.NIP, limit)
	out, err := pgx.CollectRows(rows, scanRenewal)
	if err != nil {
		return nil, fmt.Errorf("backoffice: store: %w", err)
	}
	return out, nil
}

// RenewalCounts implements RenewalStore (on the staff pool).
func (s *PGStore) RenewalCounts(ctx context.Context) (map[RenewalStatus]int64, error) {
	rows, err := s.staff.Query(ctx, "SELECT status, count(*) FROM renewal_updates GROUP BY status")
	if err != nil {
		return nil, fmt.Errorf("backoffice: store: %w", err)
	}
	out := map[RenewalStatus]int64{}
	var st string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&st, &n}, func() error { out[RenewalStatus(st)] = n; return nil })
	if err != nil {
		return nil, fmt.Errorf("backoffice: store: %w", err)
	}
	return out, nil
}

// PutRenewalOffer implements RenewalStore.
func (s *PGStore) PutRenewalOffer(ctx context.Context, o IssuedOffer) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO renewal_offers (card_serial, new_sod, update_id, sequence, base_sod, not_after, issued_at, offer)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, o.Serial[:], o.NewSOD[:], o.UpdateID[:], int64(o.Sequence), o.BaseSOD[:], o.NotAfter, o.IssuedAt, o.JSON)
	if err != nil {
		return fmt.Errorf("backoffice: store: %w", err)
	}
	return nil
}

const offerColumns = "update_id, card_serial, sequence, base_sod, new_sod, not_after, issued_at, offer"

func scanOffer(row pgx.CollectableRow) (IssuedOffer, error) {
	var o IssuedOffer
	var id, serial, base, next []byte
	var seq int64
	if err := row.Scan(&id, &serial, &seq, &base, &next, &o.NotAfter, &o.IssuedAt, &o.JSON); err != nil {
		return o, err
	}
	if len(id) != 16 || len(serial) != 8 || len(base) != 32 || len(next) != 32 {
		return o, errors.New("backoffice: damaged renewal offer")
	}
	o.UpdateID, o.Serial, o.Sequence, o.BaseSOD, o.NewSOD = [16]byte(id), [8]byte(serial), uint32(seq), [32]byte(base), [32]byte(next)
	return o, nil
}

func oneOffer(rows pgx.Rows) (*IssuedOffer, error) {
	o, err := pgx.CollectExactlyOneRow(rows, scanOffer)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("backoffice: store: %w", err)
	}
	return &o, nil
}

// RenewalOfferByNewSOD implements RenewalStore.
func (s *PGStore) RenewalOfferByNewSOD(ctx context.Context, serial [8]byte, newSOD [32]byte) (*IssuedOffer, error) {
	rows, _ := s.pool.Query(ctx, "SELECT "+offerColumns+" FROM renewal_offers WHERE card_serial = $1 AND new_sod = $2", serial[:], newSOD[:])
	return oneOffer(rows)
}

// RenewalOfferFor implements RenewalStore.
func (s *PGStore) RenewalOfferFor(ctx context.Context, serial [8]byte, base [32]byte, update [16]byte, seq uint32) (*IssuedOffer, error) {
	rows, _ := s.pool.Query(ctx, "SELECT "+offerColumns+` FROM renewal_offers
		WHERE card_serial = $1 AND base_sod = $2 AND update_id = $3 AND sequence = $4 ORDER BY issued_at DESC LIMIT 1`,
		serial[:], base[:], update[:], int64(seq))
	return oneOffer(rows)
}

// applyRenewalPG applies a renewal record inside Ingest's transaction
// (applyRenewal): the update row is locked, so concurrent batches apply it
// once. It returns the alarm to raise when the record matches nothing.
func applyRenewalPG(ctx context.Context, tx pgx.Tx, a *RenewalApplication, now time.Time) (*pgAlarm, error) {
	rows, _ := tx.Query(ctx, "SELECT "+renewalColumns+" FROM renewal_updates WHERE update_id = $1 FOR UPDATE", a.UpdateID[:])
	var u *RenewalUpdate
	got, err := pgx.CollectExactlyOneRow(rows, scanRenewal)
	switch {
	case err == nil:
		u = &got
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, err
	}
	rows, _ = tx.Query(ctx, "SELECT "+offerColumns+" FROM renewal_offers WHERE card_serial = $1 AND new_sod = $2", a.Serial[:], a.NewSOD[:])
	var o *IssuedOffer
	found, err := pgx.CollectExactlyOneRow(rows, scanOffer)
	switch {
	case err == nil:
		o = &found
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, err
	}
	alarm, applied := applyRenewal(a, u, o, now)
	if alarm != nil {
		return &pgAlarm{Alarm: *alarm}, nil
	}
	if applied {
		_, err = tx.Exec(ctx, `UPDATE renewal_updates SET status = 'applied', applied_at = $2, applied_code = $3, applied_serial = $4,
			applied_terminal = $5 WHERE update_id = $1`, u.ID[:], u.AppliedAt, u.AppliedCode, u.AppliedSerial[:], u.AppliedTerminal)
	}
	return nil, err
}

var _ RenewalStore = (*PGStore)(nil)
