package backoffice_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/wire"
)

const testPassword = "kata sandi yang panjang"

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// request is one request to a staff handler from remote with cookies.
type request struct {
	method, path, body, remote, ctype string
	cookies                           []*http.Cookie
	hdr                               map[string]string
	tls                               bool
}

func do(h http.Handler, q request) *httptest.ResponseRecorder {
	req := httptest.NewRequest(q.method, q.path, strings.NewReader(q.body))
	req.Host = "localhost"
	if q.remote != "" {
		req.RemoteAddr = q.remote
	}
	if q.ctype != "" {
		req.Header.Set("Content-Type", q.ctype)
	}
	for k, v := range q.hdr {
		req.Header.Set(k, v)
	}
	for _, c := range q.cookies {
		req.AddCookie(c)
	}
	if q.tls {
		req.TLS = &tls.ConnectionState{}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func cookie(rec *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// login signs in through the form from remote and returns the answer to
// the POST (and the login form's cookie it sent).
func login(t *testing.T, h http.Handler, user, password, next, remote string) *httptest.ResponseRecorder {
	t.Helper()
	form := do(h, request{method: "GET", path: "/login", remote: remote})
	require.Equal(t, http.StatusOK, form.Code, form.Body.String())
	m := csrfField.FindStringSubmatch(form.Body.String())
	require.NotNil(t, m, "the form's token")
	c := cookie(form, "kpe_login_csrf")
	require.NotNil(t, c, "the form's cookie")
	v := url.Values{"user": {user}, "password": {password}, "csrf_token": {m[1]}, "next": {next}}
	return do(h, request{method: "POST", path: "/login", body: v.Encode(), ctype: "application/x-www-form-urlencoded", remote: remote, cookies: []*http.Cookie{c}})
}

// addAccount makes an account with testPassword.
func addAccount(t *testing.T, svc *backoffice.Service, name string, roles []backoffice.Role, services ...string) {
	t.Helper()
	require.NoError(t, svc.AddAccount(context.Background(), backoffice.NewAccount{Name: name, Roles: roles, Services: services, Password: testPassword}, backoffice.Actor{}))
}

// session is a signed-in session: its cookie and CSRF token.
type session struct {
	cookie *http.Cookie
	csrf   string
}

// signInAs creates an account holding roles and signs it in on h.
func signInAs(t *testing.T, svc *backoffice.Service, h http.Handler, name string, roles []backoffice.Role, services ...string) session {
	t.Helper()
	addAccount(t, svc, name, roles, services...)
	return sessionOf(t, h, name)
}

func sessionOf(t *testing.T, h http.Handler, name string) session {
	t.Helper()
	rec := login(t, h, name, testPassword, "/", "")
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	c := cookie(rec, "kpe_staff")
	require.NotNil(t, c, "the session cookie")
	page := do(h, request{method: "GET", path: "/", cookies: []*http.Cookie{c}})
	require.Equal(t, http.StatusOK, page.Code, page.Body.String())
	m := csrfField.FindStringSubmatch(page.Body.String())
	require.NotNil(t, m, "the sign-out form's token")
	return session{cookie: c, csrf: m[1]}
}

// as is h for the session: every request carries its cookie, and a
// state-changing one its CSRF token (unless it brings its own).
func (s session) as(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.Clone(r.Context())
		r.AddCookie(s.cookie)
		if r.Method != "GET" && r.Method != "HEAD" && r.Header.Get("X-CSRF-Token") == "" {
			r.Header.Set("X-CSRF-Token", s.csrf)
		}
		h.ServeHTTP(w, r)
	})
}

var staffSeq struct {
	sync.Mutex
	n int
}

// asStaff is h signed in as a new admin (the updated staff tests: admin
// may do everything they exercise).
func asStaff(t *testing.T, l *lab, h http.Handler) http.Handler {
	t.Helper()
	staffSeq.Lock()
	staffSeq.n++
	name := fmt.Sprintf("admin-%d", staffSeq.n)
	staffSeq.Unlock()
	return signInAs(t, l.svc, h, name, []backoffice.Role{backoffice.RoleAdmin}).as(h)
}

func problemOf(t *testing.T, body string) string {
	t.Helper()
	var p wire.Problem
	require.NoError(t, json.Unmarshal([]byte(body), &p), body)
	return p.Error
}

// clock is an injectable clock (Config.Now).
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// clockLab is a bbolt back office with three records and an injectable
// clock.
func clockLab(t *testing.T) (*lab, *clock, [][]byte) {
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	l := newLab(t, st)
	c := &clock{}
	svc, err := backoffice.New(st, backoffice.Config{CA: l.ca.Pool(), Password: cheap, Now: c.now})
	require.NoError(t, err)
	l.svc = svc
	recs := l.records(3, "t-01")
	l.ingest(recs...)
	return l, c, recs
}

// Sign-in through the form: unsigned pages go to /login?next=, the API
// answers 401, the open paths stay open; a wrong password and an unknown
// name get the same answer; a good one gets a session cookie (HttpOnly,
// SameSite=Strict; __Host- and Secure over TLS), a token not planted
// before, and is sent to next (a local path only); sign-out ends the
// session on the server.
func TestSignIn(t *testing.T) {
	l, recs := staffLab(t)
	h := l.svc.StaffHandler(backoffice.StaffConfig{})
	code := codeOf(t, recs[0])

	rec := do(h, request{method: "GET", path: "/?lang=en&code=" + code})
	assert.Equal(t, http.StatusSeeOther, rec.Code)
	assert.Equal(t, "/login?next="+url.QueryEscape("/?lang=en&code="+code), rec.Header().Get("Location"))
	for _, path := range []string{wire.PathVerify + code, "/v1/alarms", wire.PathTerminal + "t-01", wire.PathReport + "?semester=2026-1", "/v1/audit", "/v1/accounts"} {
		rec = do(h, request{method: "GET", path: path})
		assert.Equal(t, http.StatusUnauthorized, rec.Code, path)
		assert.Equal(t, "signin-required", problemOf(t, rec.Body.String()), path)
	}
	rec = do(h, request{method: "POST", path: "/v1/alarms/1/ack", body: `{"comment":"x"}`, ctype: "application/json"})
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	for _, path := range []string{"/login", "/assets/verify.js", "/assets/verify.css", wire.PathHealth, "/metrics"} {
		assert.Equal(t, http.StatusOK, do(h, request{method: "GET", path: path}).Code, path)
	}

	// the form: the catalogue's words, no inline script or style, the policy
	form := do(h, request{method: "GET", path: "/login?lang=en"})
	assert.Contains(t, form.Body.String(), "Sign in with your staff account")
	assert.NotRegexp(t, `(?is)<script|<style|\sstyle=|\son[a-z]+=`, form.Body.String())
	assert.Contains(t, form.Header().Get("Content-Security-Policy"), "script-src 'self'")
	assert.Contains(t, do(h, request{method: "GET", path: "/login"}).Body.String(), "Masuk dengan akun petugas Anda")

	addAccount(t, l.svc, "siti", []backoffice.Role{backoffice.RoleVerifier})
	wrong := login(t, h, "siti", "not the password", "/", "")
	unknown := login(t, h, "nobody", "not the password", "/", "")
	assert.Equal(t, http.StatusUnauthorized, wrong.Code)
	assert.Equal(t, wrong.Code, unknown.Code)
	assert.Contains(t, wrong.Body.String(), "nama pengguna atau kata sandi salah")
	clean := func(s string) string { return csrfField.ReplaceAllString(s, "") }
	assert.Equal(t, clean(wrong.Body.String()), clean(unknown.Body.String()), "the answer does not tell whether the name exists")
	assert.Nil(t, cookie(wrong, "kpe_staff"))

	// a planted session token is not the one after sign-in
	planted := &http.Cookie{Name: "kpe_staff", Value: "planted-by-someone-else-0123456789abcdef"}
	good := login(t, h, "Siti", testPassword, "/?lang=en", "")
	require.Equal(t, http.StatusSeeOther, good.Code, good.Body.String())
	assert.Equal(t, "/?lang=en", good.Header().Get("Location"))
	c := cookie(good, "kpe_staff")
	require.NotNil(t, c)
	assert.NotEqual(t, planted.Value, c.Value)
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	assert.False(t, c.Secure, "plain HTTP")
	page := do(h, request{method: "GET", path: "/", cookies: []*http.Cookie{c}})
	assert.Equal(t, http.StatusOK, page.Code)
	assert.Contains(t, page.Body.String(), `<span id="account">siti</span>`)
	assert.Equal(t, http.StatusOK, do(h, request{method: "GET", path: wire.PathVerify + code, cookies: []*http.Cookie{c}}).Code)

	// next is a local path only
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "/login?next=/x"} {
		rec := login(t, h, "siti", testPassword, next, "")
		assert.Equal(t, "/", rec.Header().Get("Location"), next)
	}

	// over TLS: __Host- and Secure
	form = do(h, request{method: "GET", path: "/login", tls: true})
	fc := cookie(form, "__Host-kpe_login_csrf")
	require.NotNil(t, fc)
	assert.True(t, fc.Secure)
	v := url.Values{"user": {"siti"}, "password": {testPassword}, "csrf_token": {csrfField.FindStringSubmatch(form.Body.String())[1]}}
	rec = do(h, request{method: "POST", path: "/login", body: v.Encode(), ctype: "application/x-www-form-urlencoded", tls: true, cookies: []*http.Cookie{fc}})
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	sc := cookie(rec, "__Host-kpe_staff")
	require.NotNil(t, sc)
	assert.True(t, sc.Secure)
	assert.True(t, sc.HttpOnly)
	assert.Equal(t, "/", sc.Path)

	// sign-out: the session is gone on the server, whatever the browser keeps
	s := sessionOf(t, h, "siti")
	rec = do(h, request{method: "POST", path: "/logout", body: url.Values{"csrf_token": {s.csrf}}.Encode(), ctype: "application/x-www-form-urlencoded", cookies: []*http.Cookie{s.cookie}})
	assert.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	assert.Equal(t, "/login?signed-out=1", rec.Header().Get("Location"))
	rec = do(h, request{method: "GET", path: wire.PathVerify + code, cookies: []*http.Cookie{s.cookie}})
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	// the other session of siti is still signed in
	assert.Equal(t, http.StatusOK, do(h, request{method: "GET", path: wire.PathVerify + code, cookies: []*http.Cookie{c}}).Code)

	// a disabled account's session ends at its next request
	require.NoError(t, l.svc.DisableAccount(context.Background(), "siti", backoffice.Actor{}))
	assert.Equal(t, http.StatusUnauthorized, do(h, request{method: "GET", path: wire.PathVerify + code, cookies: []*http.Cookie{c}}).Code)
	assert.Equal(t, http.StatusUnauthorized, login(t, h, "siti", testPassword, "/", "192.0.2.99:1").Code)
}

// Each role's allowed and refused routes; an institution account sees a
// record of another service exactly as an unknown code.
func TestStaffRoles(t *testing.T) {
	l, recs := staffLab(t)
	h := l.svc.StaffHandler(backoffice.StaffConfig{})
	code := codeOf(t, recs[0]) // an askes record
	sessions := map[string]session{}
	for _, r := range backoffice.Roles {
		var services []string
		if r == backoffice.RoleInstitution {
			services = []string{"askes"}
		}
		sessions[string(r)] = signInAs(t, l.svc, h, "u-"+string(r), []backoffice.Role{r}, services...)
	}
	sessions["taspen"] = signInAs(t, l.svc, h, "u-taspen", []backoffice.Role{backoffice.RoleInstitution}, "taspen")
	ok, no := 200, 403
	routes := []struct {
		method, path, body string
		want               map[string]int // role → status
	}{
		{"GET", "/", "", map[string]int{"verifier": ok, "institution": ok, "auditor": ok, "admin": ok}},
		{"GET", wire.PathVerify + code, "", map[string]int{"verifier": ok, "institution": ok, "auditor": ok, "admin": ok}},
		{"GET", wire.PathTerminal + "t-01", "", map[string]int{"verifier": no, "institution": no, "auditor": ok, "admin": ok}},
		{"GET", "/v1/alarms", "", map[string]int{"verifier": no, "institution": no, "auditor": ok, "admin": ok}},
		{"GET", "/v1/alarms/1", "", map[string]int{"verifier": no, "institution": no, "auditor": 404, "admin": 404}},
		{"POST", "/v1/alarms/1/ack", `{"comment":"x"}`, map[string]int{"verifier": no, "institution": no, "auditor": 404, "admin": 404}},
		{"GET", wire.PathReport + "?semester=2026-1", "", map[string]int{"verifier": no, "institution": no, "auditor": ok, "admin": ok}},
		{"GET", "/v1/audit", "", map[string]int{"verifier": no, "institution": no, "auditor": ok, "admin": ok}},
		{"GET", "/v1/accounts", "", map[string]int{"verifier": no, "institution": no, "auditor": no, "admin": ok}},
		{"POST", "/v1/accounts/u-verifier/disable", "", map[string]int{"verifier": no, "institution": no, "auditor": no}},
	}
	for _, rt := range routes {
		for role, want := range rt.want {
			rec := do(sessions[role].as(h), request{method: rt.method, path: rt.path, body: rt.body, ctype: "application/json"})
			assert.Equal(t, want, rec.Code, "%s %s as %s: %s", rt.method, rt.path, role, rec.Body.String())
			if want == no {
				assert.Equal(t, "forbidden-role", problemOf(t, rec.Body.String()))
			}
		}
	}

	// scoped verification
	verdict := func(s session, code string) map[string]any {
		rec := do(s.as(h), request{method: "GET", path: wire.PathVerify + code})
		require.Equal(t, 200, rec.Code)
		var v map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v))
		return v
	}
	assert.Equal(t, true, verdict(sessions["institution"], code)["valid"], "askes sees askes")
	other := verdict(sessions["taspen"], code)
	unknown := verdict(sessions["taspen"], "0000-0000-0000-0000")
	assert.Equal(t, false, other["valid"])
	delete(other, "code")
	delete(unknown, "code")
	assert.Equal(t, unknown, other, "another service's record is answered like an unknown code")

	// the admin: accounts
	admin := sessions["admin"].as(h)
	rec := do(admin, request{method: "POST", path: "/v1/accounts", ctype: "application/json",
		body: `{"name":"rina","roles":["institution"],"services":["bapertarum"],"password":"` + testPassword + `"}`})
	assert.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	rec = do(admin, request{method: "POST", path: "/v1/accounts", ctype: "application/json", body: `{"name":"rina2","roles":["institution"],"password":"` + testPassword + `"}`})
	assert.Equal(t, http.StatusBadRequest, rec.Code, "institution without services")
	rec = do(admin, request{method: "POST", path: "/v1/accounts", ctype: "application/json", body: `{"name":"rina","roles":["verifier"],"password":"` + testPassword + `"}`})
	assert.Equal(t, http.StatusConflict, rec.Code)
	rec = do(admin, request{method: "POST", path: "/v1/accounts/rina/roles", ctype: "application/json", body: `{"roles":["auditor"]}`})
	assert.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	rec = do(admin, request{method: "POST", path: "/v1/accounts/rina/password", ctype: "application/json", body: `{"password":"short"}`})
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	rec = do(admin, request{method: "POST", path: "/v1/accounts/rina/password", ctype: "application/json", body: `{"password":"another long password"}`})
	assert.Equal(t, http.StatusNoContent, rec.Code)
	rec = do(admin, request{method: "POST", path: "/v1/accounts/nobody/disable"})
	assert.Equal(t, http.StatusNotFound, rec.Code)
	rec = do(admin, request{method: "GET", path: "/v1/accounts"})
	assert.Contains(t, rec.Body.String(), `"name":"rina","roles":["auditor"]`)
	assert.NotContains(t, rec.Body.String(), "argon2id", "no hashes")
	assert.Equal(t, http.StatusUnauthorized, login(t, h, "rina", testPassword, "/", "").Code, "the old password")
	assert.Equal(t, http.StatusSeeOther, login(t, h, "rina", "another long password", "/", "").Code, "the new one")
}

// SignInClient signs a program's client in over a real connection; a
// wrong password is an error; StaffCSRFToken gives the token a POST needs.
func TestSignInClient(t *testing.T) {
	l, recs := staffLab(t)
	addAccount(t, l.svc, "prober", []backoffice.Role{backoffice.RoleAuditor})
	srv := httptest.NewServer(l.svc.StaffHandler(backoffice.StaffConfig{}))
	defer srv.Close()
	ctx := context.Background()
	bad := &http.Client{}
	assert.ErrorContains(t, backoffice.SignInClient(ctx, bad, srv.URL, "prober", "wrong password!"), "401 Unauthorized")
	srv2 := httptest.NewServer(l.svc.StaffHandler(backoffice.StaffConfig{})) // another node on the same host and store
	defer srv2.Close()
	has := func(c *http.Client, u string) bool {
		t.Helper()
		ok, err := backoffice.HasSession(ctx, c, u)
		require.NoError(t, err)
		return ok
	}
	c := &http.Client{}
	assert.False(t, has(c, srv.URL), "no jar yet")
	require.NoError(t, backoffice.SignInClient(ctx, c, srv.URL, "prober", testPassword))
	assert.True(t, has(c, srv.URL))
	assert.True(t, has(c, srv2.URL), "a cookie belongs to the host, whatever the port, and the session to the store")
	assert.False(t, has(c, "http://localhost/"), "another host")
	assert.False(t, has(bad, srv.URL), "a failed sign-in leaves no session")
	_, err := backoffice.HasSession(ctx, c, "http://127.0.0.1:1/")
	assert.Error(t, err, "no server there")

	// a stale cookie: the session ended on the server (a new password)
	stale := &http.Client{}
	require.NoError(t, backoffice.SignInClient(ctx, stale, srv.URL, "prober", testPassword))
	require.True(t, has(stale, srv.URL))
	require.NoError(t, l.svc.SetPassword(ctx, "prober", testPassword, backoffice.Actor{}))
	assert.False(t, has(stale, srv.URL), "the cookie is there, the session is not")
	require.NoError(t, backoffice.SignInClient(ctx, stale, srv.URL, "prober", testPassword), "so the client signs in anew")
	assert.True(t, has(stale, srv.URL))
	require.NoError(t, backoffice.SignInClient(ctx, c, srv.URL, "prober", testPassword))
	resp, err := c.Get(srv.URL + wire.PathVerify + codeOf(t, recs[0]))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	tok, err := backoffice.StaffCSRFToken(ctx, c, srv.URL)
	require.NoError(t, err)
	l.conflict("taspen")
	as, err := l.svc.Alarms(ctx, backoffice.AlarmQuery{Limit: 1})
	require.NoError(t, err)
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s%s/%d/ack", srv.URL, wire.PathAlarms, as[0].ID), strings.NewReader(`{"comment":"ok"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", tok)
	resp, err = c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	_, err = backoffice.StaffCSRFToken(ctx, bad, srv.URL)
	assert.Error(t, err)
}
