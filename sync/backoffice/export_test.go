package backoffice

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
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
