package backoffice_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/pgtest"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/wire"
)

// CSRF: a signed-in request that changes state without the session's
// token (form field or header), or with another session's, is refused
// (403 csrf) before it acts; with it, it passes. The sign-in form needs
// its own cookie's token.
func TestStaffCSRF(t *testing.T) {
	l, _ := staffLab(t)
	h := l.svc.StaffHandler(backoffice.StaffConfig{})
	l.conflict("taspen")
	as, err := l.svc.Alarms(context.Background(), backoffice.AlarmQuery{Limit: 1})
	require.NoError(t, err)
	ack := wire.PathAlarms + "/" + itoa(as[0].ID) + "/ack"
	a := signInAs(t, l.svc, h, "auditor-a", []backoffice.Role{backoffice.RoleAuditor})
	b := signInAs(t, l.svc, h, "auditor-b", []backoffice.Role{backoffice.RoleAuditor})
	for name, hdr := range map[string]map[string]string{
		"no token":          nil,
		"another session's": {"X-CSRF-Token": b.csrf},
		"empty":             {"X-CSRF-Token": ""},
		"a truncated token": {"X-CSRF-Token": a.csrf[:len(a.csrf)-1]},
	} {
		rec := do(h, request{method: "POST", path: ack, body: `{"comment":"x"}`, ctype: "application/json", cookies: []*http.Cookie{a.cookie}, hdr: hdr})
		assert.Equal(t, http.StatusForbidden, rec.Code, name)
		assert.Equal(t, "csrf", problemOf(t, rec.Body.String()), name)
	}
	// sign-out without the token does not sign out
	rec := do(h, request{method: "POST", path: "/logout", cookies: []*http.Cookie{a.cookie}})
	assert.Equal(t, http.StatusForbidden, rec.Code)
	assert.Equal(t, http.StatusOK, do(h, request{method: "GET", path: "/v1/alarms", cookies: []*http.Cookie{a.cookie}}).Code)
	alarm, err := l.svc.Alarm(context.Background(), as[0].ID)
	require.NoError(t, err)
	assert.Equal(t, wire.AlarmOpen, alarm.State, "nothing refused acted")
	rec = do(h, request{method: "POST", path: ack, body: `{"comment":"diperiksa"}`, ctype: "application/json", cookies: []*http.Cookie{a.cookie}, hdr: map[string]string{"X-CSRF-Token": a.csrf}})
	assert.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())

	// the sign-in form: without its cookie, or with another form's token
	form := do(h, request{method: "GET", path: "/login"})
	tok := csrfField.FindStringSubmatch(form.Body.String())[1]
	v := url.Values{"user": {"auditor-a"}, "password": {testPassword}, "csrf_token": {tok}}.Encode()
	rec = do(h, request{method: "POST", path: "/login", body: v, ctype: "application/x-www-form-urlencoded"})
	assert.Equal(t, http.StatusForbidden, rec.Code)
	assert.Nil(t, cookie(rec, "kpe_staff"))
	other := cookie(do(h, request{method: "GET", path: "/login"}), "kpe_login_csrf")
	rec = do(h, request{method: "POST", path: "/login", body: v, ctype: "application/x-www-form-urlencoded", cookies: []*http.Cookie{other}})
	assert.Equal(t, http.StatusForbidden, rec.Code)
	assert.Contains(t, rec.Body.String(), "kedaluwarsa")
	// a cross-site browser POST is still refused first
	rec = do(h, request{method: "POST", path: ack, body: `{"comment":"x"}`, ctype: "application/json", cookies: []*http.Cookie{b.cookie},
		hdr: map[string]string{"X-CSRF-Token": b.csrf, "Sec-Fetch-Site": "cross-site"}})
	assert.Equal(t, "cross-site", problemOf(t, rec.Body.String()))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// Login rate limit per client address: beyond the burst 429 with
// Retry-After, another address unaffected. Lock-out per account: the
// fifth wrong password locks it for 15 minutes (the right one is refused
// meanwhile, with the same answer), and after that it signs in again
// (the Service's clock is injected).
func TestLoginRateLimitAndLockout(t *testing.T) {
	l, clk, _ := clockLab(t)
	h := l.svc.StaffHandler(backoffice.StaffConfig{LoginPerClient: backoffice.Limit{Rate: 0.001, Burst: 3}})
	addAccount(t, l.svc, "siti", []backoffice.Role{backoffice.RoleVerifier})
	for range 3 {
		assert.Equal(t, http.StatusUnauthorized, login(t, h, "siti", "wrong password!", "/", "192.0.2.5:1").Code)
	}
	rec := login(t, h, "siti", testPassword, "/", "192.0.2.5:2")
	assert.Equal(t, http.StatusTooManyRequests, rec.Code)
	assert.Equal(t, "1000", rec.Header().Get("Retry-After"))
	assert.Contains(t, rec.Body.String(), "Terlalu banyak percobaan")

	h = l.svc.StaffHandler(backoffice.StaffConfig{})
	for i := range 2 { // 3 + 2: the fifth failure locks
		rec := login(t, h, "siti", "wrong password!", "/", "192.0.2.6:1")
		assert.Equal(t, http.StatusUnauthorized, rec.Code, i)
	}
	locked := login(t, h, "siti", testPassword, "/", "192.0.2.7:1")
	assert.Equal(t, http.StatusUnauthorized, locked.Code, "locked: the right password is refused")
	assert.Contains(t, locked.Body.String(), "nama pengguna atau kata sandi salah", "the same words as a wrong password")
	clk.advance(14 * time.Minute)
	assert.Equal(t, http.StatusUnauthorized, login(t, h, "siti", testPassword, "/", "192.0.2.7:1").Code, "still locked at 14 min")
	clk.advance(time.Minute + time.Second)
	assert.Equal(t, http.StatusSeeOther, login(t, h, "siti", testPassword, "/", "192.0.2.7:1").Code, "unlocked after 15 min")

	// the lock is in the store: a second handler (another node) agrees
	for range backoffice.MaxLoginFailures {
		login(t, h, "siti", "wrong password!", "/", "192.0.2.8:1")
	}
	h2 := l.svc.StaffHandler(backoffice.StaffConfig{})
	assert.Equal(t, http.StatusUnauthorized, login(t, h2, "siti", testPassword, "/", "192.0.2.9:1").Code)
	// an administrator's new password lifts it
	require.NoError(t, l.svc.SetPassword(context.Background(), "siti", "a brand new password", backoffice.Actor{}))
	assert.Equal(t, http.StatusSeeOther, login(t, h2, "siti", "a brand new password", "/", "192.0.2.9:1").Code)
}

// An unknown name costs an argon2id hash like a known one with a wrong
// password: the time does not tell whether the name exists.
func TestUnknownNameCostsTheSame(t *testing.T) {
	l, _ := staffLab(t)
	svc, err := backoffice.New(l.store, backoffice.Config{CA: l.ca.Pool(), Password: backoffice.HashParams{Time: 2, Memory: 16 << 10, Threads: 1}})
	require.NoError(t, err)
	addAccount(t, svc, "siti", []backoffice.Role{backoffice.RoleVerifier})
	ctx := context.Background()
	_, _ = svc.SignIn(ctx, "warm-up", "x", "") // the dummy hash is made once
	took := func(name string) time.Duration {
		start := time.Now()
		_, err := svc.SignIn(ctx, name, "wrong password!", "192.0.2.1:1")
		d := time.Since(start)
		require.ErrorIs(t, err, backoffice.ErrSignIn)
		return d
	}
	// the best of four each, taken in turns: a burst of load on a shared
	// machine then slows both names alike instead of all of one name's
	// tries (four failures: the account's lockout is at five)
	known, unknown := time.Hour, time.Hour
	for range 4 {
		known = min(known, took("siti"))
		unknown = min(unknown, took("nobody-here"))
	}
	t.Logf("wrong password %v, unknown name %v", known, unknown)
	assert.Greater(t, unknown, known/2, "an unknown name is not answered faster")
	assert.Greater(t, known, unknown/2)
}

// Every kind of audited act is written: verification (code, verdict),
// report download, sign-in (ok, failed, locked), sign-out, account
// changes, alarm acknowledgement; with who, when, the client address and
// the outcome; the audit API pages them for auditors.
func TestAuditEntries(t *testing.T) {
	l, clk, recs := clockLab(t)
	h := l.svc.StaffHandler(backoffice.StaffConfig{})
	ctx := context.Background()
	require.NoError(t, l.svc.AddAccount(ctx, backoffice.NewAccount{Name: "boss", Roles: []backoffice.Role{backoffice.RoleAdmin}, Password: testPassword}, backoffice.Actor{}))
	boss := sessionOf(t, h, "boss")
	admin := boss.as(h)
	rec := do(admin, request{method: "POST", path: "/v1/accounts", ctype: "application/json", remote: "10.1.1.1:5",
		body: `{"name":"siti","roles":["institution"],"services":["askes"],"password":"` + testPassword + `"}`})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	do(admin, request{method: "POST", path: "/v1/accounts/siti/roles", ctype: "application/json", body: `{"roles":["institution"],"services":["askes","taspen"]}`})
	do(admin, request{method: "POST", path: "/v1/accounts/siti/password", ctype: "application/json", body: `{"password":"` + testPassword + `"}`})
	code := codeOf(t, recs[0])
	do(admin, request{method: "GET", path: wire.PathVerify + code, remote: "10.1.1.1:6"})
	do(admin, request{method: "GET", path: wire.PathVerify + "0000-0000-0000-0000"})
	do(admin, request{method: "GET", path: wire.PathReport + "?semester=2026-1&format=xlsx"})
	l.conflict("taspen")
	as, err := l.svc.Alarms(ctx, backoffice.AlarmQuery{Limit: 1})
	require.NoError(t, err)
	do(admin, request{method: "POST", path: wire.PathAlarms + "/" + itoa(as[0].ID) + "/ack", ctype: "application/json", body: `{"comment":"SAM diganti"}`})
	login(t, h, "siti", "wrong password!", "/", "10.2.2.2:1")
	for range 4 {
		login(t, h, "rina", "wrong password!", "/", "10.2.2.3:1")
	}
	require.NoError(t, l.svc.AddAccount(ctx, backoffice.NewAccount{Name: "rina", Roles: []backoffice.Role{backoffice.RoleVerifier}, Password: testPassword}, backoffice.Actor{}))
	for range backoffice.MaxLoginFailures {
		login(t, h, "rina", "wrong password!", "/", "10.2.2.4:1")
	}
	do(admin, request{method: "POST", path: "/logout"})
	do(admin, request{method: "POST", path: "/v1/accounts/rina/disable"}) // signed out: 401, not audited

	auditor := signInAs(t, l.svc, h, "audrey", []backoffice.Role{backoffice.RoleAuditor}).as(h)
	rec = do(auditor, request{method: "GET", path: "/v1/audit?limit=1000"})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var out struct {
		Entries []backoffice.AuditEntry
		Next    string
	}
	require.NoError(t, jsonUnmarshal(rec.Body.Bytes(), &out))
	type key struct{ actor, action, target, outcome string }
	seen := map[key]backoffice.AuditEntry{}
	for _, e := range out.Entries {
		seen[key{e.Actor, e.Action, e.Target, e.Outcome}] = e
		assert.WithinDuration(t, clk.now(), e.At, time.Minute)
	}
	for _, k := range []key{
		{"boss", "account-add", "siti", "ok"},
		{"boss", "account-roles", "siti", "ok"},
		{"boss", "account-password", "siti", "ok"},
		{"boss", "verify", code, "valid"},
		{"boss", "verify", "0000-0000-0000-0000", "invalid: unknown"},
		{"boss", "report-download", "2026-1", "ok"},
		{"boss", "alarm-ack", itoa(as[0].ID), "ok"},
		{"", "sign-in", "boss", "ok"},
		{"", "sign-in", "siti", "failed"},
		{"", "sign-in", "rina", "failed"},
		{"", "sign-in", "rina", "locked"},
		{"boss", "sign-out", "boss", "ok"},
		{"cli", "account-add", "rina", "ok"},
	} {
		assert.Contains(t, seen, k, "%+v", k)
	}
	assert.Equal(t, "10.1.1.1:5", seen[key{"boss", "account-add", "siti", "ok"}].Client)
	assert.Equal(t, "10.1.1.1:6", seen[key{"boss", "verify", code, "valid"}].Client)
	assert.Equal(t, "SAM diganti", seen[key{"boss", "alarm-ack", itoa(as[0].ID), "ok"}].Detail)
	assert.Equal(t, "xlsx", seen[key{"boss", "report-download", "2026-1", "ok"}].Detail)
	assert.NotContains(t, seen, key{"boss", "account-disable", "rina", "ok"})

	// paging
	rec = do(auditor, request{method: "GET", path: "/v1/audit?limit=2"})
	require.NoError(t, jsonUnmarshal(rec.Body.Bytes(), &out))
	require.Len(t, out.Entries, 2)
	require.NotEmpty(t, out.Next)
	rec = do(auditor, request{method: "GET", path: out.Next})
	var page2 struct{ Entries []backoffice.AuditEntry }
	require.NoError(t, jsonUnmarshal(rec.Body.Bytes(), &page2))
	require.NotEmpty(t, page2.Entries)
	assert.Less(t, page2.Entries[0].ID, out.Entries[1].ID)
	assert.Equal(t, http.StatusBadRequest, do(auditor, request{method: "GET", path: "/v1/audit?limit=0"}).Code)
}

// Sessions end after 30 idle minutes and after 8 hours whatever the
// activity (the Service's clock is injected).
func TestSessionExpiry(t *testing.T) {
	l, clk, _ := clockLab(t)
	h := l.svc.StaffHandler(backoffice.StaffConfig{})
	s := signInAs(t, l.svc, h, "siti", []backoffice.Role{backoffice.RoleVerifier})
	verify := func() int { // the page: 200 signed in, else 303 to /login
		return do(h, request{method: "GET", path: "/", cookies: []*http.Cookie{s.cookie}}).Code
	}
	for i := range 3 {
		clk.advance(29 * time.Minute)
		assert.Equal(t, http.StatusOK, verify(), "active every 29 min (%d)", i)
	}
	clk.advance(31 * time.Minute)
	assert.Equal(t, http.StatusSeeOther, verify(), "31 idle minutes")

	s = sessionOf(t, h, "siti")
	start := clk.now()
	for clk.now().Sub(start) < backoffice.SessionLifetime-25*time.Minute {
		clk.advance(25 * time.Minute)
		require.Equal(t, http.StatusOK, verify(), "at %v", clk.now().Sub(start))
	}
	clk.advance(25 * time.Minute)
	assert.Equal(t, http.StatusSeeOther, verify(), "beyond 8 h")
}

// Two back-office nodes on one PostgreSQL share sessions: signed in on
// one, the other knows the session; signed out on the other, the first
// forgets it.
func TestSessionsSharedOnPostgres(t *testing.T) {
	dsn := pgtest.DB(t)
	ctx := context.Background()
	var hs [2]http.Handler
	var svcs [2]*backoffice.Service
	for i := range hs {
		st, err := backoffice.OpenPostgres(ctx, dsn)
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		l := newLab(t, st)
		svcs[i] = l.svc
		hs[i] = l.svc.StaffHandler(backoffice.StaffConfig{})
	}
	s := signInAs(t, svcs[0], hs[0], "siti", []backoffice.Role{backoffice.RoleAuditor})
	rec := do(hs[1], request{method: "GET", path: "/v1/alarms", cookies: []*http.Cookie{s.cookie}})
	assert.Equal(t, http.StatusOK, rec.Code, "node 2 knows node 1's session: %s", rec.Body.String())
	rec = do(hs[1], request{method: "POST", path: "/logout", cookies: []*http.Cookie{s.cookie}, hdr: map[string]string{"X-CSRF-Token": s.csrf}})
	assert.Equal(t, http.StatusSeeOther, rec.Code)
	assert.Equal(t, http.StatusUnauthorized, do(hs[0], request{method: "GET", path: "/v1/alarms", cookies: []*http.Cookie{s.cookie}}).Code)
}
