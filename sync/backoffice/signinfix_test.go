package backoffice_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/pgtest"
	"kpe-agent/sync/backoffice"
)

// A right password checked against a copy of the account read before a
// lock-out is refused: the success is one store step that judges the lock
// as stored at that moment (both stores). Then many wrong guesses in
// parallel with a right one after the lock: the right one is refused.
func TestLockoutHoldsAgainstParallelGuesses(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		st := l.store.(backoffice.AccountStore)
		addAccount(t, l.svc, "siti", []backoffice.Role{backoffice.RoleVerifier})
		stale, err := st.Account(ctx, "siti") // read before the lock, as SignIn does before hashing
		require.NoError(t, err)
		now := time.Now()
		for range backoffice.MaxLoginFailures {
			_, err := st.LoginFailed(ctx, "siti", now)
			require.NoError(t, err)
		}
		ok, err := st.LoginSucceeded(ctx, "siti", stale.PasswordHash, now)
		require.NoError(t, err)
		assert.False(t, ok, "locked now: the success is refused")
		after, err := st.Account(ctx, "siti")
		require.NoError(t, err)
		assert.True(t, after.LockedUntil.After(now), "the lock stays")
		ok, err = st.LoginSucceeded(ctx, "siti", "$argon2id$other", now.Add(backoffice.LockoutDuration+time.Second))
		require.NoError(t, err)
		assert.False(t, ok, "a hash that is no longer the account's")
		ok, err = st.LoginSucceeded(ctx, "siti", stale.PasswordHash, now.Add(backoffice.LockoutDuration+time.Second))
		require.NoError(t, err)
		assert.True(t, ok, "after the lock-out")

		// through SignIn: N wrong guesses at once, then the right one
		var wg sync.WaitGroup
		for range 3 * backoffice.MaxLoginFailures {
			wg.Go(func() { _, _ = l.svc.SignIn(ctx, "siti", "wrong password!", "192.0.2.1:1") })
		}
		wg.Wait()
		_, err = l.svc.SignIn(ctx, "siti", testPassword, "192.0.2.1:2")
		assert.ErrorIs(t, err, backoffice.ErrSignIn, "the right password after the lock")
	})
}

// The hashing slots bound the sign-ins' memory: with every slot held, a
// sign-in waits backoffice.HashWait and is answered 503 with Retry-After.
func TestSignInBusy(t *testing.T) {
	l, _ := staffLab(t)
	h := l.svc.StaffHandler(backoffice.StaffConfig{})
	addAccount(t, l.svc, "siti", []backoffice.Role{backoffice.RoleVerifier})
	release := l.svc.HoldHashSlots()
	start := time.Now()
	rec := login(t, h, "siti", testPassword, "/", "192.0.2.3:1")
	took := time.Since(start)
	release()
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "5", rec.Header().Get("Retry-After"))
	assert.Contains(t, rec.Body.String(), "sedang sibuk")
	assert.GreaterOrEqual(t, took, backoffice.HashWait)
	_, err := l.svc.SignIn(context.Background(), "siti", testPassword, "")
	assert.NoError(t, err, "slots free again")

	// a request that ends while waiting gets ErrBusy at once
	release = l.svc.HoldHashSlots()
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = l.svc.SignIn(ctx, "siti", testPassword, "")
	assert.ErrorIs(t, err, backoffice.ErrBusy)
}

// A failed sign-in of an unknown name writes to the store like one of a
// known name (PostgreSQL: its hash's bucket in staff_signin_unknown), and
// a name breaking the rules is audited as "(invalid name)".
func TestUnknownNameWrites(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		for range 2 {
			_, err := l.svc.SignIn(ctx, "nobody-here", "wrong password!", "192.0.2.1:1")
			require.ErrorIs(t, err, backoffice.ErrSignIn)
		}
		if pg, ok := l.store.(*backoffice.PGStore); ok {
			var n int64
			require.NoError(t, pg.Pool().QueryRow(ctx, "SELECT failures FROM staff_signin_unknown WHERE bucket = $1",
				backoffice.UnknownBucket("nobody-here")).Scan(&n))
			assert.Equal(t, int64(2), n, "both failures written")
		}
		long := "x" + string(make([]byte, 200))
		_, err := l.svc.SignIn(ctx, long, "wrong password!", "192.0.2.1:1")
		require.ErrorIs(t, err, backoffice.ErrSignIn)
		e, err := l.svc.AuditLog(ctx, backoffice.AuditQuery{Limit: 3})
		require.NoError(t, err)
		require.Len(t, e, 3)
		assert.Equal(t, "(invalid name)", e[0].Target)
		assert.Equal(t, "nobody-here", e[1].Target)
		assert.Equal(t, "failed", e[1].Outcome)
	})
}

// A new password, disable then enable, and new roles each end the
// account's open sessions (Account.SessionsAfter), on both stores; a new
// sign-in afterwards works.
func TestChangesEndSessions(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		h := l.svc.StaffHandler(backoffice.StaffConfig{})
		addAccount(t, l.svc, "siti", []backoffice.Role{backoffice.RoleVerifier})
		page := func(s session) int {
			return do(h, request{method: "GET", path: "/", cookies: []*http.Cookie{s.cookie}}).Code
		}
		for name, change := range map[string]func() error{
			"password": func() error { return l.svc.SetPassword(ctx, "siti", testPassword, backoffice.Actor{}) },
			"disable and enable": func() error {
				if err := l.svc.DisableAccount(ctx, "siti", backoffice.Actor{}); err != nil {
					return err
				}
				return l.svc.EnableAccount(ctx, "siti", backoffice.Actor{})
			},
			"enable": func() error { return l.svc.EnableAccount(ctx, "siti", backoffice.Actor{}) },
			"roles": func() error {
				return l.svc.SetRoles(ctx, "siti", []backoffice.Role{backoffice.RoleVerifier, backoffice.RoleAuditor}, nil, backoffice.Actor{})
			},
		} {
			s := sessionOf(t, h, "siti")
			require.Equal(t, http.StatusOK, page(s), name)
			time.Sleep(time.Millisecond) // PostgreSQL keeps microseconds
			require.NoError(t, change(), name)
			assert.Equal(t, http.StatusSeeOther, page(s), "%s: the old session ended", name)
			assert.Equal(t, http.StatusOK, page(sessionOf(t, h, "siti")), "%s: a new sign-in", name)
		}
		a, err := l.store.(backoffice.AccountStore).Account(ctx, "siti")
		require.NoError(t, err)
		assert.WithinDuration(t, time.Now(), a.SessionsAfter, time.Minute, "stored")
	})
}

// The audit log's filters on PostgreSQL are answered from the indexes of
// migration 009, not by a scan of the table: EXPLAIN of the store's own
// query over 20000 entries of 200 actors names the index.
func TestAuditQueryPlanUsesIndexes(t *testing.T) {
	ctx := context.Background()
	pg, err := backoffice.OpenPostgres(ctx, pgtest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { pg.Close() })
	_, err = pg.Pool().Exec(ctx, `INSERT INTO staff_audit (at, actor, action, target, client, outcome)
		SELECT now() - g * interval '1 minute', 'user-' || (g % 200), (ARRAY['verify','sign-in','report-download','alarm-ack'])[g % 4 + 1],
			'target-' || (g % 300), '192.0.2.1:1', 'ok' FROM generate_series(1, 20000) g`)
	require.NoError(t, err)
	_, err = pg.Pool().Exec(ctx, "ANALYZE staff_audit")
	require.NoError(t, err)
	for q, index := range map[*backoffice.AuditQuery]string{
		{Limit: 50, Account: "user-7"}:                          "staff_audit_actor",
		{Limit: 50, Account: "target-7"}:                        "staff_audit_target",
		{Limit: 50, Account: "user-7", Action: "alarm-ack"}:     "staff_audit_actor",
		{Limit: 50, Action: "alarm-ack", Account: ""}:           "staff_audit_",
		{Limit: 50, Before: 100, Account: "user-9", Action: ""}: "staff_audit_",
	} {
		sql, args := backoffice.AuditSQL(*q)
		rows, err := pg.Pool().Query(ctx, "EXPLAIN "+sql, args...)
		require.NoError(t, err)
		var plan strings.Builder
		for rows.Next() {
			var line string
			require.NoError(t, rows.Scan(&line))
			plan.WriteString(line + "\n")
		}
		require.NoError(t, rows.Err())
		assert.Contains(t, plan.String(), index, "%+v:\n%s", *q, plan.String())
		assert.NotContains(t, plan.String(), "Seq Scan", "%+v:\n%s", *q, plan.String())
	}
}

// The audit table refuses UPDATE, DELETE and TRUNCATE (migrations 006
// and 009).
func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	pg, err := backoffice.OpenPostgres(ctx, pgtest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { pg.Close() })
	require.NoError(t, pg.AppendAudit(ctx, &backoffice.AuditEntry{At: time.Now(), Action: backoffice.AuditSignIn, Target: "siti", Outcome: "ok"}))
	for _, stmt := range []string{"UPDATE staff_audit SET outcome = 'failed'", "DELETE FROM staff_audit", "TRUNCATE staff_audit"} {
		_, err := pg.Pool().Exec(ctx, stmt)
		assert.ErrorContains(t, err, "append-only", stmt)
	}
	e, err := pg.AuditLog(ctx, backoffice.AuditQuery{Limit: 10})
	require.NoError(t, err)
	assert.Len(t, e, 1)
}
