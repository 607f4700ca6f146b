package backoffice

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"kpe-agent/internal/pgtest"
)

// relaxedCommit runs its statement with synchronous_commit off, in a
// transaction that a failing statement rolls back, leaving the pool's
// connection fit for the next one.
func TestRelaxedCommit(t *testing.T) {
	ctx := context.Background()
	st, err := OpenPostgres(ctx, pgtest.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var setting string
	if err := st.relaxedCommit(ctx, func(r pgx.Row) error { return r.Scan(&setting) }, "SELECT current_setting('synchronous_commit')"); err != nil {
		t.Fatal(err)
	}
	if setting != "off" {
		t.Fatalf("synchronous_commit %q inside, want off", setting)
	}
	if err := st.staff.QueryRow(ctx, "SELECT current_setting('synchronous_commit')").Scan(&setting); err != nil || setting != "on" {
		t.Fatalf("after it: %q, %v; want on (SET LOCAL)", setting, err)
	}
	if _, err := st.staff.Exec(ctx, "CREATE TABLE relaxed_t (v int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := st.relaxedCommit(ctx, nil, "INSERT INTO relaxed_t VALUES ($1)", 1); err != nil {
		t.Fatal(err)
	}
	if err := st.relaxedCommit(ctx, nil, "INSERT INTO relaxed_t VALUES ($1)", 1); err == nil {
		t.Fatal("a duplicate key: no error")
	}
	for range 8 { // more than the pool's connections: none is left in an aborted transaction
		if err := st.relaxedCommit(ctx, nil, "INSERT INTO relaxed_t VALUES ($1) ON CONFLICT DO NOTHING", 2); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := st.staff.QueryRow(ctx, "SELECT count(*) FROM relaxed_t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows, %v; want 2", n, err)
	}
}
