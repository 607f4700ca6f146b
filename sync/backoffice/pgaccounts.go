package backoffice

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The PostgreSQL side of AccountStore (migrations/006_staff_accounts.sql).

var _ AccountStore = (*PGStore)(nil)

const accountColumns = "name, roles, services, disabled, password_hash, oidc, created, failures, locked_until, sessions_after, oidc_issuer, oidc_subject"

func scanAccount(row pgx.Row) (*Account, error) {
	var a Account
	var roles []string
	var locked, after *time.Time
	if err := row.Scan(&a.Name, &roles, &a.Services, &a.Disabled, &a.PasswordHash, &a.OIDC, &a.Created, &a.Failures, &locked,
		&after, &a.OIDCIssuer, &a.OIDCSubject); err != nil {
		return nil, err
	}
	for _, r := range roles {
		a.Roles = append(a.Roles, Role(r))
	}
	if len(a.Services) == 0 {
		a.Services = nil
	}
	if locked != nil {
		a.LockedUntil = locked.UTC()
	}
	if after != nil {
		a.SessionsAfter = after.UTC()
	}
	a.Created = a.Created.UTC()
	return &a, nil
}

func accountArgs(a *Account) []any {
	roles := make([]string, len(a.Roles))
	for i, r := range a.Roles {
		roles[i] = string(r)
	}
	services := a.Services
	if services == nil {
		services = []string{}
	}
	var locked, after *time.Time
	if !a.LockedUntil.IsZero() {
		locked = &a.LockedUntil
	}
	if !a.SessionsAfter.IsZero() {
		after = &a.SessionsAfter
	}
	return []any{a.Name, roles, services, a.Disabled, a.PasswordHash, a.OIDC, a.Created, a.Failures, locked, after, a.OIDCIssuer, a.OIDCSubject}
}

// CreateAccount implements AccountStore.
func (s *PGStore) CreateAccount(ctx context.Context, a *Account) error {
	_, err := s.staff.Exec(ctx, "INSERT INTO staff_accounts ("+accountColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)", accountArgs(a)...)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return fmt.Errorf("%w: %s", ErrAccountExists, a.Name)
	}
	if err != nil {
		return fmt.Errorf("backoffice: account %s: %w", a.Name, err)
	}
	return nil
}

// Account implements AccountStore.
func (s *PGStore) Account(ctx context.Context, name string) (*Account, error) {
	a, err := scanAccount(s.staff.QueryRow(ctx, "SELECT "+accountColumns+" FROM staff_accounts WHERE name = $1", name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: account %s", ErrNotFound, name)
	}
	return a, err
}

// Accounts implements AccountStore.
func (s *PGStore) Accounts(ctx context.Context) ([]Account, error) {
	rows, err := s.staff.Query(ctx, "SELECT "+accountColumns+" FROM staff_accounts ORDER BY name")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	return out, rows.Err()
}

// UpdateAccount implements AccountStore: the row is locked while f runs.
func (s *PGStore) UpdateAccount(ctx context.Context, name string, f func(*Account) error) error {
	return pgx.BeginFunc(ctx, s.staff, func(tx pgx.Tx) error {
		a, err := scanAccount(tx.QueryRow(ctx, "SELECT "+accountColumns+" FROM staff_accounts WHERE name = $1 FOR UPDATE", name))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: account %s", ErrNotFound, name)
		}
		if err != nil {
			return err
		}
		if err := f(a); err != nil {
			return err
		}
		a.Name = name
		_, err = tx.Exec(ctx, "UPDATE staff_accounts SET roles = $2, services = $3, disabled = $4, password_hash = $5, oidc = $6, created = $7, failures = $8, locked_until = $9, sessions_after = $10, oidc_issuer = $11, oidc_subject = $12 WHERE name = $1",
			accountArgs(a)...)
		return err
	})
}

// LoginFailed implements AccountStore: one transaction that writes one
// row, the account's or, for an unknown name, its bucket's in
// staff_signin_unknown.
func (s *PGStore) LoginFailed(ctx context.Context, name string, now time.Time) (time.Time, error) {
	var until time.Time
	err := pgx.BeginFunc(ctx, s.staff, func(tx pgx.Tx) error {
		a, err := scanAccount(tx.QueryRow(ctx, "SELECT "+accountColumns+" FROM staff_accounts WHERE name = $1 FOR UPDATE", name))
		if errors.Is(err, pgx.ErrNoRows) {
			_, err = tx.Exec(ctx, "INSERT INTO staff_signin_unknown (bucket, failures, last) VALUES ($1, 1, $2) "+
				"ON CONFLICT (bucket) DO UPDATE SET failures = staff_signin_unknown.failures + 1, last = EXCLUDED.last", unknownBucket(name), now)
			return err
		}
		if err != nil {
			return err
		}
		lockAfterFailure(a, now)
		if a.LockedUntil.After(now) {
			until = a.LockedUntil
		}
		var locked *time.Time
		if !a.LockedUntil.IsZero() {
			locked = &a.LockedUntil
		}
		_, err = tx.Exec(ctx, "UPDATE staff_accounts SET failures = $2, locked_until = $3 WHERE name = $1", name, a.Failures, locked)
		return err
	})
	return until, err
}

// LoginSucceeded implements AccountStore: one UPDATE that refuses a
// locked or disabled account, or one whose hash changed meanwhile.
func (s *PGStore) LoginSucceeded(ctx context.Context, name, hash string, now time.Time) (bool, error) {
	err := s.staff.QueryRow(ctx, "UPDATE staff_accounts SET failures = 0 WHERE name = $1 AND password_hash = $2 AND password_hash <> '' "+
		"AND NOT disabled AND (locked_until IS NULL OR locked_until <= $3) RETURNING name", name, hash, now).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// SessionFind implements AccountStore.
func (s *PGStore) SessionFind(ctx context.Context, token string, now time.Time) ([]byte, bool, error) {
	var data []byte
	err := s.staff.QueryRow(ctx, "SELECT data FROM staff_sessions WHERE token = $1 AND expiry > $2", token, now).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return data, true, nil
}

// SessionCommit implements AccountStore; expired sessions are deleted on
// the way.
func (s *PGStore) SessionCommit(ctx context.Context, token string, data []byte, expiry time.Time) error {
	b := &pgx.Batch{}
	b.Queue("DELETE FROM staff_sessions WHERE expiry < now() - interval '1 minute'")
	b.Queue("INSERT INTO staff_sessions (token, data, expiry) VALUES ($1, $2, $3) ON CONFLICT (token) DO UPDATE SET data = EXCLUDED.data, expiry = EXCLUDED.expiry",
		token, data, expiry)
	return s.staff.SendBatch(ctx, b).Close()
}

// SessionDelete implements AccountStore.
func (s *PGStore) SessionDelete(ctx context.Context, token string) error {
	_, err := s.staff.Exec(ctx, "DELETE FROM staff_sessions WHERE token = $1", token)
	return err
}

// AppendAudit implements AccountStore.
//
// The entries of lookups (a verification, an institution's page of
// records: the bulk of the log, one per request) are committed without
// waiting for the WAL flush (relaxedCommit): a verification then costs no
// flush, which during a storm of ingest queues behind the records' WAL.
// A PostgreSQL crash may lose the last such entries of under a second
// (three wal_writer_delay); the others (sign-in, account changes, report
// downloads, acknowledgements) are written as every transaction is.
func (s *PGStore) AppendAudit(ctx context.Context, e *AuditEntry) error {
	const q = "INSERT INTO staff_audit (at, actor, action, target, client, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id"
	args := []any{e.At, e.Actor, e.Action, e.Target, e.Client, e.Outcome, e.Detail}
	if e.Action == AuditVerify || e.Action == AuditInstitutionRecords {
		return s.relaxedCommit(ctx, func(r pgx.Row) error { return r.Scan(&e.ID) }, q, args...)
	}
	return s.staff.QueryRow(ctx, q, args...).Scan(&e.ID)
}

// relaxedCommit runs one statement on the staff pool in a transaction
// with synchronous_commit off, in one round trip: its commit does not
// wait for the WAL to reach the disk (PostgreSQL stays consistent; a
// crash of the database server may lose it). scan reads the statement's
// row; nil: the statement returns none.
func (s *PGStore) relaxedCommit(ctx context.Context, scan func(pgx.Row) error, sql string, args ...any) (err error) {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit = off")
	b.Queue(sql, args...)
	b.Queue("COMMIT")
	br := s.staff.SendBatch(ctx, b)
	defer func() {
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	}()
	for range 2 {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	if scan != nil {
		err = scan(br.QueryRow())
	} else {
		_, err = br.Exec()
	}
	if err != nil {
		return err
	}
	_, err = br.Exec()
	return err
}

// AuditLog implements AccountStore. Every filter goes by an index of
// migration 009: (actor, id), (target, id), (action, id), (at). The
// account filter (actor or target) is two index scans joined by UNION ALL
// (the second leaves out what the first found), each newest first and
// limited, not an OR that would scan the table.
func (s *PGStore) AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	query, args := auditSQL(q)
	rows, err := s.staff.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.Client, &e.Outcome, &e.Detail); err != nil {
			return nil, err
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// auditSQL is AuditLog's query and its arguments.
func auditSQL(q AuditQuery) (string, []any) {
	before := q.Before
	if before <= 0 {
		before = 1<<63 - 1
	}
	where, args := "id < $1", []any{before}
	arg := func(cond string, v any) {
		args = append(args, v)
		where += " AND " + strings.ReplaceAll(cond, "$", fmt.Sprintf("$%d", len(args)))
	}
	if q.Action != "" {
		arg("action = $", q.Action)
	}
	if !q.From.IsZero() {
		arg("at >= $", q.From)
	}
	if !q.To.IsZero() {
		arg("at < $", q.To)
	}
	args = append(args, q.Limit)
	limit := fmt.Sprintf("$%d", len(args))
	const cols = "id, at, actor, action, target, client, outcome, detail"
	query := "SELECT " + cols + " FROM staff_audit WHERE " + where + " ORDER BY id DESC LIMIT " + limit
	if q.Account != "" {
		args = append(args, q.Account)
		a := fmt.Sprintf("$%d", len(args))
		query = "SELECT " + cols + " FROM ((SELECT " + cols + " FROM staff_audit WHERE actor = " + a + " AND " + where + " ORDER BY id DESC LIMIT " + limit + ")" +
			" UNION ALL (SELECT " + cols + " FROM staff_audit WHERE target = " + a + " AND actor <> " + a + " AND " + where + " ORDER BY id DESC LIMIT " + limit + ")) u" +
			" ORDER BY id DESC LIMIT " + limit
	}
	return query, args
}
