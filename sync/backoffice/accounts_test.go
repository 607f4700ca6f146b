package backoffice_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/backoffice"
)

// cheap are argon2id parameters for tests (the defaults take 64 MiB).
var cheap = backoffice.HashParams{Time: 1, Memory: 64, Threads: 1}

func TestPasswordHash(t *testing.T) {
	h, err := backoffice.HashPassword("correct horse battery", cheap)
	require.NoError(t, err)
	assert.Regexp(t, `^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`, h)
	ok, err := backoffice.CheckPasswordHash(h, "correct horse battery")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = backoffice.CheckPasswordHash(h, "correct horse batterY")
	require.NoError(t, err)
	assert.False(t, ok)
	h2, err := backoffice.HashPassword("correct horse battery", cheap)
	require.NoError(t, err)
	assert.NotEqual(t, h, h2, "a fresh salt each time")
	for _, bad := range []string{"", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=19$m=64,t=1,p=1$!!$a2V5a2V5a2V5a2V5a2V5a2V5"} {
		_, err := backoffice.CheckPasswordHash(bad, "x")
		assert.ErrorIs(t, err, backoffice.ErrHash, bad)
	}
	// the defaults are RFC 9106's second recommended option
	assert.Equal(t, backoffice.HashParams{Time: 3, Memory: 64 << 10, Threads: 4}, backoffice.DefaultHashParams)
}

func TestCheckAccount(t *testing.T) {
	good := []backoffice.Account{
		{Name: "siti", Roles: []backoffice.Role{backoffice.RoleVerifier}, PasswordHash: "h"},
		{Name: "askes.staff@bpjs.go.id", Roles: []backoffice.Role{backoffice.RoleInstitution}, Services: []string{"askes"}, OIDC: true},
		{Name: "bound", Roles: []backoffice.Role{backoffice.RoleVerifier}, OIDC: true, OIDCSubject: "248289761001"},
		{Name: "ops2", Roles: []backoffice.Role{backoffice.RoleAdmin, backoffice.RoleInstitution}, PasswordHash: "h"},
	}
	for _, a := range good {
		assert.NoError(t, backoffice.CheckAccount(&a), a.Name)
	}
	bad := []backoffice.Account{
		{Name: "Siti", Roles: []backoffice.Role{backoffice.RoleVerifier}, PasswordHash: "h"},
		{Name: "s", Roles: []backoffice.Role{backoffice.RoleVerifier}, PasswordHash: "h"},
		{Name: "siti pratiwi", Roles: []backoffice.Role{backoffice.RoleVerifier}, PasswordHash: "h"},
		{Name: "siti", PasswordHash: "h"},
		{Name: "siti", Roles: []backoffice.Role{"root"}, PasswordHash: "h"},
		{Name: "siti", Roles: []backoffice.Role{backoffice.RoleAdmin, backoffice.RoleAdmin}, PasswordHash: "h"},
		{Name: "siti", Roles: []backoffice.Role{backoffice.RoleInstitution}, PasswordHash: "h"},
		{Name: "siti", Roles: []backoffice.Role{backoffice.RoleAuditor}, Services: []string{"askes"}, PasswordHash: "h"},
		{Name: "siti", Roles: []backoffice.Role{backoffice.RoleInstitution}, Services: []string{"ASKES"}, PasswordHash: "h"},
		{Name: "siti", Roles: []backoffice.Role{backoffice.RoleVerifier}},
		// services with an unscoped role beside institution: they would be ignored
		{Name: "ops", Roles: []backoffice.Role{backoffice.RoleAdmin, backoffice.RoleInstitution}, Services: []string{"taspen"}, PasswordHash: "h"},
		{Name: "siti", Roles: []backoffice.Role{backoffice.RoleVerifier}, PasswordHash: "h", OIDCSubject: "s1"},
		{Name: "siti", Roles: []backoffice.Role{backoffice.RoleVerifier}, OIDC: true, OIDCSubject: "two words"},
	}
	for _, a := range bad {
		assert.ErrorIs(t, backoffice.CheckAccount(&a), backoffice.ErrAccount, "%+v", a)
	}
	var ae *backoffice.AccountError
	mixed := backoffice.Account{Name: "ops", Roles: []backoffice.Role{backoffice.RoleVerifier, backoffice.RoleInstitution}, Services: []string{"askes"}, PasswordHash: "h"}
	require.ErrorAs(t, backoffice.CheckAccount(&mixed), &ae)
	assert.Equal(t, backoffice.ReasonServicesMixed, ae.Reason)
	assert.ErrorIs(t, backoffice.CheckPassword("short"), backoffice.ErrAccount)
	assert.ErrorIs(t, backoffice.CheckPassword(string(make([]byte, 300))), backoffice.ErrAccount)
	assert.ErrorIs(t, backoffice.CheckPassword("abcdefghijk\xff"), backoffice.ErrAccount)
	assert.NoError(t, backoffice.CheckPassword("a long enough pass"))
}

// The AccountStore conformance test, on both stores.
func TestAccountStore(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		st := l.store.(backoffice.AccountStore)
		now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
		a := &backoffice.Account{Name: "siti", Roles: []backoffice.Role{backoffice.RoleInstitution, backoffice.RoleAuditor}, Services: []string{"askes", "taspen"},
			PasswordHash: "$argon2id$x", Created: now}
		require.NoError(t, st.CreateAccount(ctx, a))
		assert.ErrorIs(t, st.CreateAccount(ctx, a), backoffice.ErrAccountExists)
		require.NoError(t, st.CreateAccount(ctx, &backoffice.Account{Name: "budi", Roles: []backoffice.Role{backoffice.RoleVerifier}, OIDC: true, Created: now}))

		got, err := st.Account(ctx, "siti")
		require.NoError(t, err)
		assert.Equal(t, a, got)
		_, err = st.Account(ctx, "nobody")
		assert.ErrorIs(t, err, backoffice.ErrNotFound)
		all, err := st.Accounts(ctx)
		require.NoError(t, err)
		require.Len(t, all, 2)
		assert.Equal(t, "budi", all[0].Name)
		assert.True(t, all[0].OIDC)

		require.NoError(t, st.UpdateAccount(ctx, "budi", func(a *backoffice.Account) error {
			a.Disabled = true
			a.Roles = []backoffice.Role{backoffice.RoleAdmin}
			return nil
		}))
		got, err = st.Account(ctx, "budi")
		require.NoError(t, err)
		assert.True(t, got.Disabled)
		assert.Equal(t, []backoffice.Role{backoffice.RoleAdmin}, got.Roles)
		assert.ErrorIs(t, st.UpdateAccount(ctx, "nobody", func(*backoffice.Account) error { return nil }), backoffice.ErrNotFound)

		// lock-out: the fifth consecutive failure locks for 15 minutes;
		// failures while locked do not extend it; success clears the count
		for i := 1; i < backoffice.MaxLoginFailures; i++ {
			until, err := st.LoginFailed(ctx, "siti", now)
			require.NoError(t, err)
			assert.True(t, until.IsZero(), "failure %d", i)
		}
		until, err := st.LoginFailed(ctx, "siti", now)
		require.NoError(t, err)
		assert.Equal(t, now.Add(backoffice.LockoutDuration), until)
		until, err = st.LoginFailed(ctx, "siti", now.Add(time.Minute))
		require.NoError(t, err)
		assert.Equal(t, now.Add(backoffice.LockoutDuration), until, "not extended")
		until, err = st.LoginFailed(ctx, "nobody", now)
		require.NoError(t, err)
		assert.True(t, until.IsZero())
		_, err = st.LoginFailed(ctx, "budi", now)
		require.NoError(t, err)
		done, err := st.LoginSucceeded(ctx, "budi", "", now)
		require.NoError(t, err)
		assert.False(t, done, "no password (OIDC only)")
		require.NoError(t, st.UpdateAccount(ctx, "budi", func(a *backoffice.Account) error { a.PasswordHash, a.Disabled = "h1", false; return nil }))
		done, err = st.LoginSucceeded(ctx, "budi", "h1", now)
		require.NoError(t, err)
		assert.True(t, done)
		got, err = st.Account(ctx, "budi")
		require.NoError(t, err)
		assert.Zero(t, got.Failures)

		// sessions
		exp := time.Now().Add(time.Hour).Truncate(time.Microsecond)
		require.NoError(t, st.SessionCommit(ctx, "tok-1", []byte("data-1"), exp))
		d, ok, err := st.SessionFind(ctx, "tok-1", time.Now())
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, []byte("data-1"), d)
		require.NoError(t, st.SessionCommit(ctx, "tok-1", []byte("data-2"), exp))
		d, _, _ = st.SessionFind(ctx, "tok-1", time.Now())
		assert.Equal(t, []byte("data-2"), d)
		_, ok, err = st.SessionFind(ctx, "tok-1", exp)
		require.NoError(t, err)
		assert.False(t, ok, "expired at its expiry")
		_, ok, _ = st.SessionFind(ctx, "tok-2", time.Now())
		assert.False(t, ok)
		require.NoError(t, st.SessionDelete(ctx, "tok-1"))
		_, ok, _ = st.SessionFind(ctx, "tok-1", time.Now())
		assert.False(t, ok)
		require.NoError(t, st.SessionDelete(ctx, "tok-1"), "deleting a missing session is no error")

		// the audit log: appended, paged newest first
		for i := range 5 {
			e := &backoffice.AuditEntry{At: now.Add(time.Duration(i) * time.Second), Actor: "siti", Action: backoffice.AuditVerify, Target: "code", Client: "10.0.0.1", Outcome: "valid"}
			require.NoError(t, st.AppendAudit(ctx, e))
			assert.NotZero(t, e.ID)
		}
		page, err := st.AuditLog(ctx, backoffice.AuditQuery{Limit: 3})
		require.NoError(t, err)
		require.Len(t, page, 3)
		assert.Equal(t, now.Add(4*time.Second), page[0].At)
		assert.Greater(t, page[0].ID, page[1].ID)
		rest, err := st.AuditLog(ctx, backoffice.AuditQuery{Before: page[2].ID, Limit: 10})
		require.NoError(t, err)
		require.Len(t, rest, 2)
		assert.Equal(t, now, rest[1].At)
		assert.Equal(t, backoffice.AuditEntry{ID: rest[1].ID, At: now, Actor: "siti", Action: "verify", Target: "code", Client: "10.0.0.1", Outcome: "valid"}, rest[1])
	})
}
