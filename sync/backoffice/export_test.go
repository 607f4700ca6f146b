package backoffice

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
	bolt "go.etcd.io/bbolt"
)

// MigratePostgres applies the embedded migrations up to version upTo to
// the database at dsn: a database as an older back office left it.
func MigratePostgres(ctx context.Context, dsn string, upTo int) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	return migrate(ctx, pool, upTo)
}

// IngestOpen stores entries as Ingest does, in a transaction it leaves
// open until commit is called: a writer that commits late.
func (s *PGStore) IngestOpen(ctx context.Context, entries []Entry, m Meta) (commit func() error, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.ingest(ctx, tx, entries, m); err != nil {
		tx.Rollback(ctx)
		return nil, err
	}
	return func() error { return tx.Commit(ctx) }, nil
}

// IngestThenAbort stores entries as Ingest does and, with the
// transaction still open, calls during (another connection sees the store
// as it was); then it rolls back: a back office killed before its commit.
func (s *PGStore) IngestThenAbort(ctx context.Context, entries []Entry, m Meta, during func()) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := s.ingest(ctx, tx, entries, m); err != nil {
		return err
	}
	during()
	return tx.Rollback(ctx)
}

// HoldHashSlots takes every sign-in hashing slot until the returned
// function is called: a node busy hashing.
func (s *Service) HoldHashSlots() (release func()) {
	for range cap(s.hashSlots) {
		s.hashSlots <- struct{}{}
	}
	return func() {
		for range cap(s.hashSlots) {
			<-s.hashSlots
		}
	}
}

// UnknownBucket is the bucket of an unknown name's failures.
func UnknownBucket(name string) int { return unknownBucket(name) }

// AuditSQL is the PostgreSQL store's audit query for q.
func AuditSQL(q AuditQuery) (string, []any) { return auditSQL(q) }

// TerminateAdvisoryHolders ends the sessions of this database that hold
// a delivery lease's advisory lock: a lease's session lost behind its
// back. It answers how many it ended.
func (s *PGStore) TerminateAdvisoryHolders(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND classid = $1::int::oid AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, int32(deliveryLock)).Scan(&n)
	return n, err
}

// DropVerificationCounts drops the verification counters' table: a
// counter that cannot be written.
func (s *PGStore) DropVerificationCounts(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, "DROP TABLE verification_counts")
	return err
}

// HoldWriter holds bbolt's one write transaction open until release: an
// ingest that takes long.
func (s *BoltStore) HoldWriter() (release func()) {
	held, done := make(chan struct{}), make(chan struct{})
	go s.db.Update(func(*bolt.Tx) error { close(held); <-done; return nil })
	<-held
	return func() { close(done) }
}

// ReopenWithoutAuthHours drops the dashboard's rollup, as a file written
// before it existed, and opens the file again.
func (s *BoltStore) ReopenWithoutAuthHours() (*BoltStore, error) {
	path := s.db.Path()
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bbAuthHours) }); err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	return OpenBolt(path)
}

// UndoMigration010 takes the database back to version 9's dashboard: no
// rollup (its trigger and table dropped), records_rec_time back, and
// version 10 not applied, so the next open applies it again.
func (s *PGStore) UndoMigration010(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `DROP TRIGGER records_auth_hours ON records; DROP FUNCTION kpe_auth_hours(); DROP TABLE auth_hours;
		ALTER TABLE institutions DROP COLUMN pending, DROP COLUMN failures, DROP COLUMN next_attempt, DROP COLUMN insecure_webhook;
		CREATE INDEX records_rec_time ON records (rec_time);
		DELETE FROM schema_migrations WHERE version = 10`)
	return err
}
