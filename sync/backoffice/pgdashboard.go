package backoffice

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"kpe-agent/sync/wire"
)

// PostgreSQL's side of PageStore (dashboard.go; migration 008).

var _ PageStore = (*PGStore)(nil)

// AuthHours implements PageStore from the hourly rollup auth_hours
// (migration 010), summed over terminals.
func (s *PGStore) AuthHours(ctx context.Context, from, to time.Time, services []string) ([]HourCount, error) {
	rows, err := s.staff.Query(ctx, `SELECT hour, service, site_id, sum(count)::bigint
		FROM auth_hours WHERE hour >= $1 AND hour < $2 AND ($3::text[] IS NULL OR service = ANY($3))
		GROUP BY 1, 2, 3`, from.UTC().Truncate(time.Hour), to, services)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (HourCount, error) {
		var h HourCount
		err := row.Scan(&h.Hour, &h.Service, &h.Site, &h.Count)
		h.Hour = h.Hour.UTC()
		return h, err
	})
}

// CountVerification implements PageStore.
func (s *PGStore) CountVerification(ctx context.Context, at time.Time, found bool) error {
	f, n := 0, 1
	if found {
		f, n = 1, 0
	}
	// a count lost to a database crash is harmless: no flush waited for
	return s.relaxedCommit(ctx, nil, `INSERT INTO verification_counts (hour, found, not_found) VALUES ($1, $2, $3)
		ON CONFLICT (hour) DO UPDATE SET found = verification_counts.found + EXCLUDED.found, not_found = verification_counts.not_found + EXCLUDED.not_found`,
		at.UTC().Truncate(time.Hour), f, n)
}

// VerificationHours implements PageStore.
func (s *PGStore) VerificationHours(ctx context.Context, from, to time.Time) ([]VerifyHour, error) {
	rows, err := s.staff.Query(ctx, "SELECT hour, found, not_found FROM verification_counts WHERE hour >= $1 AND hour < $2 ORDER BY hour", from, to)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (VerifyHour, error) {
		var v VerifyHour
		err := row.Scan(&v.Hour, &v.Found, &v.NotFound)
		v.Hour = v.Hour.UTC()
		return v, err
	})
}

// NoteUpload implements PageStore: an upsert; fields the batch did not
// carry keep their last value.
func (s *PGStore) NoteUpload(ctx context.Context, terminal string, u Upload) error {
	var oldest, last *time.Time
	if !u.OldestQueued.IsZero() {
		oldest = &u.OldestQueued
	}
	if !u.LastRecord.IsZero() {
		last = &u.LastRecord
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO terminal_uploads (terminal_id, last_contact, agent, backlog, oldest_queued, last_record)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (terminal_id) DO UPDATE SET
			last_contact = greatest(terminal_uploads.last_contact, EXCLUDED.last_contact),
			agent = coalesce(nullif(EXCLUDED.agent, ''), terminal_uploads.agent),
			backlog = coalesce(EXCLUDED.backlog, terminal_uploads.backlog),
			oldest_queued = CASE WHEN EXCLUDED.backlog IS NOT NULL THEN EXCLUDED.oldest_queued ELSE terminal_uploads.oldest_queued END,
			last_record = greatest(terminal_uploads.last_record, EXCLUDED.last_record)`,
		terminal, u.At, u.Agent, u.Backlog, oldest, last)
	return err
}

// Terminals implements PageStore.
func (s *PGStore) Terminals(ctx context.Context, q TerminalQuery) ([]TerminalRow, error) {
	var silent *time.Time
	if !q.SilentSince.IsZero() {
		silent = &q.SilentSince
	}
	rows, err := s.staff.Query(ctx, `SELECT coalesce(t.terminal_id, u.terminal_id), coalesce(t.site_id, ''), coalesce(t.records, 0),
			coalesce(t.chain_breaks, 0), t.last_seen, coalesce(u.last_contact, t.last_seen), u.last_record, coalesce(u.agent, ''),
			u.backlog, u.oldest_queued
		FROM terminals t FULL JOIN terminal_uploads u ON u.terminal_id = t.terminal_id
		WHERE $1::timestamptz IS NULL OR coalesce(u.last_contact, t.last_seen) < $1
		ORDER BY 1`, silent)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (TerminalRow, error) {
		var t TerminalRow
		var seen, contact, last, oldest *time.Time
		err := row.Scan(&t.ID, &t.Site, &t.Records, &t.ChainBreaks, &seen, &contact, &last, &t.Agent, &t.Backlog, &oldest)
		t.LastSeen, t.LastContact, t.LastRecord, t.OldestQueued = utcOf(seen), utcOf(contact), utcOf(last), utcOf(oldest)
		return t, err
	})
	if err != nil {
		return nil, err
	}
	at := map[string]int{}
	ids := make([]string, len(out))
	for i, t := range out {
		at[t.ID], ids[i] = i, t.ID
	}
	rows, err = s.staff.Query(ctx, `SELECT ts.terminal_id, s.serial, s.counters FROM sams s JOIN terminal_sams ts ON ts.sam_serial = s.serial
		WHERE ts.terminal_id = ANY($1) ORDER BY ts.terminal_id, s.serial`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var serial, raw []byte
		if err := rows.Scan(&id, &serial, &raw); err != nil {
			return nil, err
		}
		l := &counters{}
		if err := json.Unmarshal(raw, l); err != nil {
			return nil, fmt.Errorf("damaged counters of SAM %x: %w", serial, err)
		}
		i := at[id]
		out[i].SAMs = append(out[i].SAMs, wire.SAMInfo{Serial: hex.EncodeToString(serial), LastCounter: l.Max, Gaps: l.Gaps})
	}
	return out, rows.Err()
}

func utcOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// OpenAlarms implements PageStore.
func (s *PGStore) OpenAlarms(ctx context.Context) (int64, error) {
	var n int64
	err := s.staff.QueryRow(ctx, "SELECT count(*) FROM alarms WHERE state = 'open'").Scan(&n)
	return n, err
}
