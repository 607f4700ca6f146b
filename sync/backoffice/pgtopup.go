package backoffice

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Top-ups in PostgreSQL (TopUpStore; migration 012).

// topUpLock is the first key of the advisory lock that serialises the
// stagings of one NIP (the second is the NIP's hash), so that two
// stagings cannot both pass the monthly limit.
const topUpLock = 0x4B50_0012

const topUpColumns = `topup_id, nip, amount, source_ref, staged_at, staged_by, status, auth_serial, coalesce(auth_ptc, 0),
	auth_not_after, authorised_at, authorisations, applied_at, coalesce(applied_code, ''), coalesce(applied_terminal, ''),
	applied_serial, coalesce(applied_ptc, 0), coalesce(applied_amount, 0)`

func scanTopUp(row pgx.CollectableRow) (TopUp, error) {
	var t TopUp
	var id, authSerial, appliedSerial []byte
	var amount, authPTC, appliedPTC, appliedAmount int64
	var status string
	var notAfter, authorisedAt, appliedAt *time.Time
	if err := row.Scan(&id, &t.NIP, &amount, &t.Ref, &t.StagedAt, &t.StagedBy, &status, &authSerial, &authPTC, &notAfter, &authorisedAt,
		&t.Authorisations, &appliedAt, &t.AppliedCode, &t.AppliedTerminal, &appliedSerial, &appliedPTC, &appliedAmount); err != nil {
		return t, err
	}
	if len(id) != 16 || (authSerial != nil && len(authSerial) != 8) || (appliedSerial != nil && len(appliedSerial) != 8) {
		return t, errors.New("backoffice: damaged top-up")
	}
	t.ID, t.Amount, t.Status, t.StagedAt = [16]byte(id), uint32(amount), TopUpStatus(status), t.StagedAt.UTC()
	t.AuthPTC, t.AppliedPTC, t.AppliedAmount = uint32(authPTC), uint32(appliedPTC), uint32(appliedAmount)
	if authSerial != nil {
		t.AuthSerial = [8]byte(authSerial)
	}
	if appliedSerial != nil {
		t.AppliedSerial = [8]byte(appliedSerial)
	}
	for _, p := range []struct {
		src *time.Time
		dst *time.Time
	}{{notAfter, &t.AuthNotAfter}, {authorisedAt, &t.AuthorisedAt}, {appliedAt, &t.AppliedAt}} {
		if p.src != nil {
			*p.dst = p.src.UTC()
		}
	}
	return t, nil
}

// StageTopUp implements TopUpStore in one transaction, under the NIP's
// advisory lock.
func (s *PGStore) StageTopUp(ctx context.Context, t TopUp, from, to time.Time, limit uint64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1::int, hashtext($2))", topUpLock, t.NIP); err != nil {
			return err
		}
		var used int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM topups
			WHERE nip = $1 AND status <> 'cancelled' AND staged_at >= $2 AND staged_at < $3`, t.NIP, from, to).Scan(&used); err != nil {
			return err
		}
		if err := limitError(uint64(used), uint64(t.Amount), limit, from); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO topups (topup_id, nip, amount, source_ref, staged_at, staged_by, status)
			VALUES ($1, $2, $3, $4, $5, $6, 'staged')`, t.ID[:], t.NIP, int64(t.Amount), t.Ref, t.StagedAt, t.StagedBy)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "topups_source_ref_key" {
			return fmt.Errorf("%w: %q", ErrTopUpRef, t.Ref)
		}
		return err
	})
	switch {
	case err == nil, errors.Is(err, ErrTopUpLimit), errors.Is(err, ErrTopUpRef):
		return err
	}
	return fmt.Errorf("backoffice: store: %w", err)
}

func oneTopUp(rows pgx.Rows) (*TopUp, error) {
	t, err := pgx.CollectExactlyOneRow(rows, scanTopUp)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("backoffice: store: %w", err)
	}
	return &t, nil
}

// TopUp implements TopUpStore.
func (s *PGStore) TopUp(ctx context.Context, id [16]byte) (*TopUp, error) {
	rows, _ := s.pool.Query(ctx, "SELECT "+topUpColumns+" FROM topups WHERE topup_id = $1", id[:])
	return oneTopUp(rows)
}

// TopUps implements TopUpStore (on the staff pool).
func (s *PGStore) TopUps(ctx context.Context, f TopUpFilter) ([]TopUp, error) {
	limit := int64(f.Limit)
	if limit <= 0 {
		limit = -1
	}
	rows, _ := s.staff.Query(ctx, "SELECT "+topUpColumns+` FROM topups
		WHERE ($1 = '' OR status = $1) AND ($2 = '' OR nip = $2)
		ORDER BY staged_at DESC, topup_id LIMIT CASE WHEN $3 < 0 THEN NULL ELSE $3 END`, string(f.Status), f.NIP, limit)
	out, err := pgx.CollectRows(rows, scanTopUp)
	if err != nil {
		return nil, fmt.Errorf("backoffice: store: %w", err)
	}
	return out, nil
}

// PendingTopUps implements TopUpStore.
func (s *PGStore) PendingTopUps(ctx context.Context, nip string) ([]TopUp, error) {
	rows, _ := s.pool.Query(ctx, "SELECT "+topUpColumns+` FROM topups
		WHERE nip = $1 AND status IN ('staged', 'authorised') ORDER BY staged_at, topup_id`, nip)
	out, err := pgx.CollectRows(rows, scanTopUp)
	if err != nil {
		return nil, fmt.Errorf("backoffice: store: %w", err)
	}
	return out, nil
}

// AuthoriseTopUp implements TopUpStore: one conditional update.
func (s *PGStore) AuthoriseTopUp(ctx context.Context, id [16]byte, serial [8]byte, ptc uint32, notAfter, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE topups SET status = 'authorised', auth_serial = $2, auth_ptc = $3, auth_not_after = $4,
		authorised_at = $5, authorisations = authorisations + 1
		WHERE topup_id = $1 AND (status = 'staged' OR (status = 'authorised' AND auth_serial = $2 AND auth_ptc = $3))`,
		id[:], serial[:], int64(ptc), notAfter, at)
	if err != nil {
		return fmt.Errorf("backoffice: store: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return s.topUpStateError(ctx, id)
	}
	return nil
}

// topUpStateError: ErrNotFound or ErrTopUpState, after a conditional
// update changed nothing.
func (s *PGStore) topUpStateError(ctx context.Context, id [16]byte) error {
	t, err := s.TopUp(ctx, id)
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: %s", ErrTopUpState, t.Status)
}

// CancelTopUp implements TopUpStore.
func (s *PGStore) CancelTopUp(ctx context.Context, id [16]byte) error {
	tag, err := s.pool.Exec(ctx, "UPDATE topups SET status = 'cancelled' WHERE topup_id = $1 AND status = 'staged'", id[:])
	if err != nil {
		return fmt.Errorf("backoffice: store: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return s.topUpStateError(ctx, id)
	}
	return nil
}

// topUpIngestPG decides on a record with a purse field inside Ingest's
// transaction (as topUpIngestBolt, after the ledger stored row), the
// top-up rows locked so that concurrent batches apply a top-up once; it
// appends the alarms to raise.
func topUpIngestPG(ctx context.Context, tx pgx.Tx, e Entry, row *PurseRow, now time.Time, alarms []pgAlarm) ([]pgAlarm, error) {
	x := purseTxnOf(e)
	if x == nil {
		return alarms, nil
	}
	if x.TopUp && mayApply(row) {
		rows, _ := tx.Query(ctx, "SELECT "+topUpColumns+" FROM topups WHERE topup_id = $1 FOR UPDATE", x.Request[:])
		var t *TopUp
		got, err := pgx.CollectExactlyOneRow(rows, scanTopUp)
		switch {
		case err == nil:
			t = &got
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, err
		}
		raised, changed := applyTopUp(x, t, now)
		for _, a := range raised {
			alarms = append(alarms, pgAlarm{Alarm: a})
		}
		if changed {
			if _, err := tx.Exec(ctx, `UPDATE topups SET status = 'applied', applied_at = $2, applied_code = $3, applied_terminal = $4,
				applied_serial = $5, applied_ptc = $6, applied_amount = $7 WHERE topup_id = $1`,
				t.ID[:], t.AppliedAt, t.AppliedCode, t.AppliedTerminal, t.AppliedSerial[:], int64(t.AppliedPTC), int64(t.AppliedAmount)); err != nil {
				return nil, err
			}
		}
	}
	if x.PTC == 0 || !mayRelease(row) {
		return alarms, nil
	}
	// the card's transaction at PTC-1 was not these top-ups' credit
	rows, _ := tx.Query(ctx, "SELECT "+topUpColumns+` FROM topups
		WHERE status = 'authorised' AND auth_serial = $1 AND auth_ptc = $2 FOR UPDATE`, x.Serial[:], int64(x.PTC-1))
	held, err := pgx.CollectRows(rows, scanTopUp)
	if err != nil {
		return nil, err
	}
	for _, t := range held {
		if released(x, &t) {
			if _, err := tx.Exec(ctx, `UPDATE topups SET status = 'staged', auth_serial = NULL, auth_ptc = NULL, auth_not_after = NULL
				WHERE topup_id = $1`, t.ID[:]); err != nil {
				return nil, err
			}
		}
	}
	return alarms, nil
}

var _ TopUpStore = (*PGStore)(nil)

// SaveTopUpSettings implements TopUpSettingsStore (migration 014).
func (s *PGStore) SaveTopUpSettings(ctx context.Context, ts TopUpSettings) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO topup_settings (id, monthly_limit, max_balance, updated_at) VALUES (true, $1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET monthly_limit = EXCLUDED.monthly_limit, max_balance = EXCLUDED.max_balance, updated_at = EXCLUDED.updated_at`,
		int64(ts.MonthlyLimit), int64(ts.MaxBalance), ts.UpdatedAt); err != nil {
		return fmt.Errorf("backoffice: store: %w", err)
	}
	return nil
}

// TopUpSettings implements TopUpSettingsStore.
func (s *PGStore) TopUpSettings(ctx context.Context) (*TopUpSettings, error) {
	var monthly, maxBal int64
	var at time.Time
	err := s.pool.QueryRow(ctx, "SELECT monthly_limit, max_balance, updated_at FROM topup_settings WHERE id").Scan(&monthly, &maxBal, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backoffice: store: %w", err)
	}
	return &TopUpSettings{MonthlyLimit: uint64(monthly), MaxBalance: uint64(maxBal), UpdatedAt: at.UTC()}, nil
}

var _ TopUpSettingsStore = (*PGStore)(nil)
