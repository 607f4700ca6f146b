// Package pgtest gives tests a fresh database on the real PostgreSQL
// server that `make test` installs and starts (`make postgres`).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultDSN is the server `make postgres` sets up: role kpe, password kpe.
const DefaultDSN = "postgres://kpe:kpe@127.0.0.1:5432/postgres?sslmode=disable"

var announce sync.Once

// AdminDSN is the DSN tests connect with to create databases
// (KPE_TEST_PG_DSN, else DefaultDSN).
func AdminDSN() string {
	if d := os.Getenv("KPE_TEST_PG_DSN"); d != "" {
		return d
	}
	return DefaultDSN
}

// DB creates a database for the test, drops it when the test ends, and
// returns its DSN. Without PostgreSQL installed it skips loudly (never
// under CI); installed but unreachable fails with the fix.
func DB(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("pg_ctlcluster"); err != nil {
		if _, err2 := exec.LookPath("postgres"); err2 != nil {
			msg := "PostgreSQL is not installed: run `make test` (it installs and starts it)"
			if os.Getenv("CI") != "" {
				t.Fatalf("INTEGRATION FAILED: %s; CI must never skip this test", msg)
			}
			fmt.Fprintf(os.Stderr, "\n!!!!!!!! SKIPPING POSTGRESQL TEST %s: %s !!!!!!!!\n\n", t.Name(), msg)
			t.Skip("SKIPPED LOUDLY: " + msg)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminDSN())
	if err != nil {
		t.Fatalf("INTEGRATION FAILED: PostgreSQL is installed but not reachable at %s: %v (run `make postgres`)", AdminDSN(), err)
	}
	defer admin.Close(context.Background())
	var version string
	admin.QueryRow(ctx, "SHOW server_version").Scan(&version)
	announce.Do(func() { fmt.Printf("INTEGRATION: tests run against real PostgreSQL %s\n", version) })
	b := make([]byte, 6)
	rand.Read(b)
	name := "kpe_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, AdminDSN())
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		// FORCE ends the database's other sessions, but a background
		// process of the server's (autovacuum starting on the new
		// database) may be one this role may not end: try again briefly.
		for try := 0; ; try++ {
			_, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			if err == nil {
				break
			}
			if try == 20 || ctx.Err() != nil {
				t.Errorf("drop database %s: %v", name, err)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	cfg, err := pgx.ParseConfig(AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Password, cfg.Host, cfg.Port, name)
}
