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
