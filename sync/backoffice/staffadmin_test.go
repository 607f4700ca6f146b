package backoffice_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/browsertest"
	"kpe-agent/internal/pgtest"
	"kpe-agent/sync/backoffice"
)

var admin = &backoffice.Principal{Account: "admin.dewi", Roles: []backoffice.Role{backoffice.RoleAdmin}}

// postForm posts form values to path on h (a signed-in handler) with
// the CSRF token tok.
func postForm(h http.Handler, path, tok string, v url.Values, hdr ...string) answer {
	v = cloneValues(v)
	v.Set("csrf_token", tok)
	return staffCall(h, "POST", path, v.Encode(), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, hdr...)...)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// follow is the redirect's path and query (not its fragment).
func follow(a answer) string {
	loc, _ := url.Parse(a.header.Get("Location"))
	return loc.Path + "?" + loc.RawQuery
}

// auditOf is the audit log's entries of action on target, newest first.
func auditOf(t *testing.T, svc *backoffice.Service, action, target string) []backoffice.AuditEntry {
	t.Helper()
	es, err := svc.AuditLog(context.Background(), backoffice.AuditQuery{Action: action, Account: target, Limit: 1000})
	require.NoError(t, err)
	var out []backoffice.AuditEntry
	for _, e := range es {
		if e.Target == target {
			out = append(out, e)
		}
	}
	return out
}

// The accounts page is the admin's, the audit log page the auditor's
// and the admin's; the layout's navigation shows each only to the roles
// that may open it (and the other pages likewise).
func TestAdminPagesRoles(t *testing.T) {
	l, _ := pagesLab(t)
	h := l.svc.StaffHandler(backoffice.StaffConfig{Zone: wib})
	adm, _ := signedIn(t, l, h, admin)
	aud, _ := signedIn(t, l, h, auditor)
	ver, _ := signedIn(t, l, h, verifier)
	inst, _ := signedIn(t, l, h, institution)

	for _, c := range []struct {
		who     http.Handler
		name    string
		account int
		audit   int
	}{{adm, "admin", 200, 200}, {aud, "auditor", 403, 200}, {ver, "verifier", 403, 403}, {inst, "institution", 403, 403}} {
		a := getPage(t, c.who, "/accounts")
		assert.Equal(t, c.account, a.status, "%s /accounts", c.name)
		if a.status == 403 {
			assert.Contains(t, a.body, "forbidden-role")
		}
		assert.Equal(t, c.audit, getPage(t, c.who, "/audit").status, "%s /audit", c.name)
	}
	assert.Equal(t, 303, getPage(t, h, "/accounts").status, "nobody signed in: to the sign-in")
	assert.Equal(t, 303, getPage(t, h, "/audit").status)

	nav := func(body string) (links []string) {
		_, navPart, _ := strings.Cut(body, "<nav ")
		navPart, _, _ = strings.Cut(navPart, "</nav>")
		for _, p := range []string{"/dashboard", "/terminals", "/alarms", "/reports", "/audit", "/accounts"} {
			if strings.Contains(navPart, `href="`+p+`?`) {
				links = append(links, p)
			}
		}
		return links
	}
	assert.Equal(t, []string{"/dashboard", "/terminals", "/alarms", "/reports", "/audit", "/accounts"}, nav(getPage(t, adm, "/dashboard").body))
	assert.Equal(t, []string{"/dashboard", "/terminals", "/alarms", "/reports", "/audit"}, nav(getPage(t, aud, "/audit").body))
	assert.Equal(t, []string{"/dashboard"}, nav(getPage(t, inst, "/dashboard").body))
	// each form a principal may post carries its token; the layout's sign-out too
	body := getPage(t, adm, "/accounts").body
	assert.Contains(t, body, `id="signout"`)
	assert.Equal(t, strings.Count(body, `method="post"`), strings.Count(body, `name="csrf_token"`))
	assert.Greater(t, strings.Count(body, `method="post"`), 4)
}

// Every form refuses a post without the session's token, and changes
// nothing; an institution account or an auditor may post none.
func TestAccountsPageCSRF(t *testing.T) {
	l, _ := pagesLab(t)
	h := l.svc.StaffHandler(backoffice.StaffConfig{Zone: wib})
	adm, _ := signedIn(t, l, h, admin)
	aud, audTok := signedIn(t, l, h, auditor)
	before, err := l.svc.AuditLog(context.Background(), backoffice.AuditQuery{Limit: 1000})
	require.NoError(t, err)
	forms := map[string]url.Values{
		"/accounts":                     {"name": {"x.y"}, "role": {"verifier"}, "password": {testPassword}, "password2": {testPassword}},
		"/accounts/audit.siti/roles":    {"role": {"admin"}},
		"/accounts/audit.siti/disable":  {},
		"/accounts/audit.siti/enable":   {},
		"/accounts/audit.siti/password": {"password": {testPassword + "1"}, "password2": {testPassword + "1"}},
	}
	for path, v := range forms {
		for _, tok := range []string{"wrong", ""} {
			a := postForm(adm, path, tok, v)
			assert.Equal(t, 403, a.status, path)
			assert.Equal(t, "csrf", problemOf(t, a.body), path)
		}
		a := postForm(aud, path, audTok, v)
		assert.Equal(t, 403, a.status, "an auditor: %s", path)
		assert.Equal(t, "forbidden-role", problemOf(t, a.body), path)
	}
	after, err := l.svc.AuditLog(context.Background(), backoffice.AuditQuery{Limit: 1000})
	require.NoError(t, err)
	assert.Equal(t, len(before), len(after), "nothing done, nothing audited")
	accs, err := l.svc.ListAccounts(context.Background())
	require.NoError(t, err)
	for _, a := range accs {
		assert.NotEqual(t, "x.y", a.Name)
		if a.Name == "audit.siti" {
			assert.Equal(t, []backoffice.Role{backoffice.RoleAuditor}, a.Roles)
			assert.False(t, a.Disabled)
		}
	}
}

// The forms: bad input answered on the page (400, 404, 409) in the
// user's language with what was typed kept (never the passwords); each
// change a 303 back with its message, done by the account API's Service
// methods and so audited with the admin, the client and the outcome; a
// disabled account's session ends; a new password signs in.
func TestAccountsPageForms(t *testing.T) {
	l, _ := pagesLab(t)
	h := l.svc.StaffHandler(backoffice.StaffConfig{Zone: wib})
	adm, tok := signedIn(t, l, h, admin)
	ctx := context.Background()

	add := url.Values{"name": {"askes.ani"}, "role": {"institution"}, "services": {"askes"}, "password": {testPassword}, "password2": {testPassword}}
	bad := func(path string, v url.Values, status int, id, en string) answer {
		t.Helper()
		a := postForm(adm, path+"?lang=id", tok, v)
		assert.Equal(t, status, a.status, "%s %v: %s", path, v, a.body)
		assert.Equal(t, "text/html; charset=utf-8", a.header.Get("Content-Type"), "the page, not a problem")
		assert.Contains(t, a.body, id, path)
		b := postForm(adm, path, tok, v, "Accept-Language", "en-GB,en;q=0.8")
		assert.Equal(t, status, b.status)
		assert.Contains(t, b.body, en, path)
		return a
	}
	with := func(k string, vs ...string) url.Values {
		v := cloneValues(add)
		if vs == nil {
			v.Del(k)
		} else {
			v[k] = vs
		}
		return v
	}
	with2 := func(v url.Values, k, val string) url.Values {
		v.Set(k, val)
		return v
	}
	a := bad("/accounts", with("password2", "something else!"), 400, "Kedua kata sandi tidak sama.", "The two passwords differ.")
	assert.Contains(t, a.body, `value="askes.ani"`, "the name typed is kept")
	assert.Contains(t, a.body, `value="institution" id="add-role-institution" checked`, "the roles chosen are kept")
	assert.NotContains(t, a.body, testPassword, "never the password")
	bad("/accounts", with("services"), 400, "memerlukan layanannya", "needs its services")
	bad("/accounts", with2(with("password", "short"), "password2", "short"), 400, "paling sedikit 12 byte", "at least 12 bytes")
	bad("/accounts", with("role"), 400, "Pilih paling sedikit satu peran.", "Choose at least one role.")
	bad("/accounts", with("role", "root"), 400, "Peran tidak dikenal.", "Unknown role.")
	bad("/accounts", with("name", "Ani Besar"), 400, "Nama pengguna: 2–64", "User name: 2–64")
	bad("/accounts", with("services", "ASKES"), 400, "Nama layanan tidak sah", "service name is not valid")
	bad("/accounts", url.Values{"name": {"x.y"}, "role": {"auditor"}}, 400, "kata sandi atau OpenID Connect", "a password or OpenID Connect")
	bad("/accounts", url.Values{"name": {"x.y"}, "role": {"auditor"}, "services": {"askes"}, "oidc": {"1"}}, 400, "Layanan hanya membatasi", "Services scope")
	assert.Empty(t, auditOf(t, l.svc, backoffice.AuditAccountAdd, "askes.ani"), "refused: nothing audited")

	a = postForm(adm, "/accounts?lang=en", tok, add)
	require.Equal(t, 303, a.status, a.body)
	loc, err := url.Parse(a.header.Get("Location"))
	require.NoError(t, err)
	assert.Equal(t, "/accounts", loc.Path)
	assert.Equal(t, url.Values{"lang": {"en"}, "done": {"added"}, "account": {"askes.ani"}}, loc.Query())
	page := getPage(t, adm, follow(a))
	assert.Contains(t, page.body, "Account askes.ani added.")
	assert.Contains(t, page.body, `data-account="askes.ani" data-disabled="false"`)
	e := auditOf(t, l.svc, backoffice.AuditAccountAdd, "askes.ani")
	require.Len(t, e, 1)
	assert.Equal(t, "admin.dewi", e[0].Actor)
	assert.Equal(t, "ok", e[0].Outcome)
	assert.Equal(t, "roles=institution services=askes", e[0].Detail)
	assert.NotEmpty(t, e[0].Client)
	bad("/accounts", add, 409, "Sudah ada akun dengan nama itu.", "An account of that name exists already.")

	// the new account signs in; its session is a test's, ended by the disable below
	ani := sessionOf(t, h, "askes.ani").as(h)
	assert.Equal(t, 200, getPage(t, ani, "/dashboard").status)

	// roles and services
	a = bad("/accounts/askes.ani/roles", url.Values{"role": {"institution"}}, 400, "memerlukan layanannya", "needs its services")
	assert.Contains(t, a.body, `data-account="askes.ani">askes.ani: `, "the error names the account")
	assert.Contains(t, a.body, `<details open>`, "its form is open")
	bad("/accounts/askes.ani/roles", url.Values{"role": {"institution", "verifier"}, "services": {"askes"}}, 400,
		"memegang peran instansi saja", "holding the institution role alone")
	a = postForm(adm, "/accounts/askes.ani/roles", tok, url.Values{"role": {"institution"}, "services": {"askes, taspen"}})
	require.Equal(t, 303, a.status, a.body)
	e = auditOf(t, l.svc, backoffice.AuditAccountRoles, "askes.ani")
	require.Len(t, e, 1)
	// a script's post with the token in the header instead of the form reads the same form
	a = staffCall(adm, "POST", "/accounts/askes.ani/roles", url.Values{"role": {"institution"}, "services": {"askes, taspen"}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded", "X-CSRF-Token", tok)
	require.Equal(t, 303, a.status, a.body)
	e = auditOf(t, l.svc, backoffice.AuditAccountRoles, "askes.ani")
	require.Len(t, e, 2)
	assert.Equal(t, "roles=institution services=askes,taspen", e[0].Detail)
	assert.Equal(t, e[0].Detail, e[1].Detail)
	assert.Equal(t, "admin.dewi", e[0].Actor)
	bad("/accounts/nobody/roles", url.Values{"role": {"auditor"}}, 404, "Tidak ada akun dengan nama itu.", "No account has that name.")

	// passwords
	bad("/accounts/askes.ani/password", url.Values{"password": {testPassword + "!"}, "password2": {testPassword}}, 400, "Kedua kata sandi tidak sama.", "The two passwords differ.")
	bad("/accounts/askes.ani/password", url.Values{"password": {"pendek"}, "password2": {"pendek"}}, 400, "terlalu pendek", "too short")
	a = postForm(adm, "/accounts/askes.ani/password", tok, url.Values{"password": {testPassword + "!"}, "password2": {testPassword + "!"}})
	require.Equal(t, 303, a.status, a.body)
	assert.Len(t, auditOf(t, l.svc, backoffice.AuditAccountPasswd, "askes.ani"), 1)
	assert.Equal(t, 303, login(t, h, "askes.ani", testPassword+"!", "/", "").Code, "the new password signs in")

	// disable ends the session; enable lets it sign in again
	a = postForm(adm, "/accounts/askes.ani/disable?lang=id", tok, nil)
	require.Equal(t, 303, a.status, a.body)
	assert.Contains(t, getPage(t, adm, follow(a)).body, "Akun askes.ani dinonaktifkan; sesinya berakhir.")
	assert.Len(t, auditOf(t, l.svc, backoffice.AuditAccountOff, "askes.ani"), 1)
	a = getPage(t, ani, "/dashboard")
	assert.Equal(t, 303, a.status, "the disabled account's session has ended")
	assert.True(t, strings.HasPrefix(a.header.Get("Location"), "/login"))
	assert.Equal(t, 401, login(t, h, "askes.ani", testPassword+"!", "/", "").Code)
	assert.Contains(t, getPage(t, adm, "/accounts").body, `data-account="askes.ani" data-disabled="true"`)
	a = postForm(adm, "/accounts/askes.ani/enable", tok, nil)
	require.Equal(t, 303, a.status, a.body)
	assert.Len(t, auditOf(t, l.svc, backoffice.AuditAccountOn, "askes.ani"), 1)
	assert.Equal(t, 303, login(t, h, "askes.ani", testPassword+"!", "/", "").Code)
	bad("/accounts/nobody/disable", nil, 404, "Tidak ada akun dengan nama itu.", "No account has that name.")

	// the API's enable, through the same function
	rec := do(sessionOf(t, h, "admin.dewi").as(h), request{method: "POST", path: "/v1/accounts/askes.ani/disable"})
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	rec = do(sessionOf(t, h, "admin.dewi").as(h), request{method: "POST", path: "/v1/accounts/askes.ani/enable"})
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	assert.Len(t, auditOf(t, l.svc, backoffice.AuditAccountOn, "askes.ani"), 2)
	acc, err := l.svc.ListAccounts(ctx)
	require.NoError(t, err)
	for _, v := range acc {
		if v.Name == "askes.ani" {
			assert.False(t, v.Disabled)
			assert.Equal(t, []string{"askes", "taspen"}, v.Services)
		}
	}
}

// The audit log page: newest first, paged, filtered by account, action
// and date range (days in the report zone); bad filters answered on the
// page in the user's language.
func TestAuditPage(t *testing.T) {
	l, _ := pagesLab(t)
	h := l.svc.StaffHandler(backoffice.StaffConfig{Zone: wib})
	aud, _ := signedIn(t, l, h, auditor)
	st := l.store.(backoffice.AccountStore)
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, wib)
	for i := range 120 {
		e := &backoffice.AuditEntry{At: base.Add(time.Duration(i) * 12 * time.Hour), Actor: "clerk.a", Action: backoffice.AuditVerify,
			Target: "CODE-" + itoa(int64(i)), Client: "10.0.0.9:1", Outcome: "valid"}
		if i%3 == 0 {
			e.Actor, e.Action, e.Target = "clerk.b", backoffice.AuditReport, "2026-1"
		}
		require.NoError(t, st.AppendAudit(ctx, e))
	}
	rows := func(body string) (ids []string) {
		for _, part := range strings.Split(body, `<tr data-entry="`)[1:] {
			id, _, _ := strings.Cut(part, `"`)
			ids = append(ids, id)
		}
		return ids
	}
	a := getPage(t, aud, "/audit?lang=en")
	require.Equal(t, 200, a.status, a.body)
	first := rows(a.body)
	require.Len(t, first, 50)
	assert.Greater(t, mustInt(t, first[0]), mustInt(t, first[49]), "newest first")
	assert.Contains(t, a.body, "Audit log")
	older := strings.Split(strings.Split(a.body, `id="older" href="`)[1], `"`)[0]
	older = strings.ReplaceAll(older, "&amp;", "&")
	assert.Contains(t, older, "before="+first[49])
	second := rows(getPage(t, aud, older).body)
	require.Len(t, second, 50)
	assert.Equal(t, mustInt(t, first[49])-1, mustInt(t, second[0]), "the next page starts below the last")

	// filters: clerk.b's report downloads on 2026-03-10 .. 2026-03-12 (WIB)
	a = getPage(t, aud, "/audit?lang=id&account=clerk.b&action=report-download&from=2026-03-10&to=2026-03-12")
	require.Equal(t, 200, a.status, a.body)
	got := rows(a.body)
	// entries i at base + 12h·i, i.e. day 1 + i/2; days 10..12 are i 18..23, of which i%3 == 0: 18, 21
	require.Len(t, got, 2, a.body)
	assert.Equal(t, 2, strings.Count(a.body, `data-actor="clerk.b"`))
	assert.Contains(t, a.body, "Unduh laporan")
	assert.NotContains(t, a.body, `id="older"`)
	a = getPage(t, aud, "/audit?account=clerk.a&from=2026-03-10&to=2026-03-10")
	assert.Len(t, rows(a.body), 1, "one of day 10's two entries is clerk.a's verification")

	for q, msg := range map[string][2]string{
		"action=drop-table":             {"Tindakan tidak dikenal.", "Unknown action."},
		"from=2026-02-30":               {"Tanggal tidak sah", "A date is not valid"},
		"from=2026-03-10&to=2026-03-09": {"Tanggal akhir harus", "The end date must"},
		"before=-4":                     {"Halaman tidak sah.", "The page is not valid."},
	} {
		a := getPage(t, aud, "/audit?lang=id&"+q)
		assert.Equal(t, 400, a.status, q)
		assert.Contains(t, a.body, msg[0], q)
		a = getPage(t, aud, "/audit?lang=en&"+q)
		assert.Contains(t, a.body, msg[1], q)
	}
}

// The audit log's filters in both stores, PostgreSQL and bbolt, agree.
func TestAuditQueryFilters(t *testing.T) {
	ctx := context.Background()
	bolt, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	t.Cleanup(func() { bolt.Close() })
	pg, err := backoffice.OpenPostgres(ctx, pgtest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { pg.Close() })
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, st := range []backoffice.AccountStore{bolt, pg} {
		for i := range 30 {
			e := &backoffice.AuditEntry{At: base.Add(time.Duration(i) * time.Hour), Actor: []string{"a", "b", ""}[i%3], Action: []string{"verify", "sign-in"}[i%2],
				Target: []string{"x", "b"}[i%2], Client: "c", Outcome: "ok"}
			require.NoError(t, st.AppendAudit(ctx, e))
		}
	}
	for _, q := range []backoffice.AuditQuery{
		{Limit: 100},
		{Limit: 100, Account: "b"},
		{Limit: 100, Action: "sign-in"},
		{Limit: 100, Account: "a", Action: "verify"},
		{Limit: 100, From: base.Add(5 * time.Hour), To: base.Add(9 * time.Hour)},
		{Limit: 3, Account: "b", Before: 20},
		{Limit: 100, Account: "nobody"},
	} {
		var results [2][]int64
		for i, st := range []backoffice.AccountStore{bolt, pg} {
			es, err := st.AuditLog(ctx, q)
			require.NoError(t, err)
			for _, e := range es {
				results[i] = append(results[i], e.ID)
				assert.True(t, q.Account == "" || e.Actor == q.Account || e.Target == q.Account, "%+v", e)
				assert.True(t, q.Action == "" || e.Action == q.Action, "%+v", e)
				assert.True(t, q.From.IsZero() || (!e.At.Before(q.From) && e.At.Before(q.To)), "%+v", e)
				assert.True(t, q.Before == 0 || e.ID < q.Before)
			}
		}
		assert.Equal(t, results[0], results[1], "%+v", q)
		if q.Account == "nobody" {
			assert.Empty(t, results[0])
		} else {
			assert.NotEmpty(t, results[0], "%+v", q)
		}
	}
	es, _ := bolt.AuditLog(ctx, backoffice.AuditQuery{Limit: 100, From: base.Add(5 * time.Hour), To: base.Add(9 * time.Hour)})
	assert.Len(t, es, 4)
	es, _ = bolt.AuditLog(ctx, backoffice.AuditQuery{Limit: 3, Account: "b", Before: 20})
	assert.Len(t, es, 3)
}

// The accounts and audit pages in headless Chromium under the staff
// listener's policy, signed in through /login as a browser is: an admin
// adds an institution account through the form (a mistyped password
// first: the error on the page), signs out; the new account signs in
// in the same browser and its dashboard shows its service only, and no
// admin or audit links; the admin (on the other host name, so the
// browser keeps a second session) disables it, and its session has
// ended; the audit page shows the events, newest first, and its filters
// work; both languages; no console errors or policy violations.
func TestAdminPagesInChromium(t *testing.T) {
	l, day0 := pagesLab(t)
	h := l.svc.StaffHandler(backoffice.StaffConfig{Zone: wib})
	addAccount(t, l.svc, "admin.dewi", []backoffice.Role{backoffice.RoleAdmin})
	srv := httptest.NewServer(h)
	defer srv.Close()
	_, port, _ := strings.Cut(srv.URL, "127.0.0.1:")
	inst, adm := "http://127.0.0.1:"+port, "http://localhost:"+port // two hosts: two cookie jars in one browser
	b := browsertest.Start(t, browsertest.WindowSize(1280, 1000))
	shot := func(name string) {
		if *staffShots != "" {
			require.NoError(t, os.MkdirAll(*staffShots, 0o755))
			b.Screenshot(filepath.Join(*staffShots, name+".png"))
		}
	}
	path := func() string {
		var p string
		b.Eval(`location.pathname`, &p)
		return p
	}
	signIn := func(user, password string) {
		t.Helper()
		b.Wait(`document.getElementById("login") !== null`, 10*time.Second)
		b.SetValue("#user", user)
		b.SetValue("#password", password)
		b.Click("#signin")
		b.Wait(`location.pathname !== "/login"`, 10*time.Second)
	}

	// the admin signs in on the way to the accounts page
	b.Navigate(inst + "/accounts?lang=id")
	assert.Equal(t, "/login", path(), "to the sign-in first")
	signIn("admin.dewi", testPassword)
	assert.Equal(t, "/accounts", path())
	assert.Equal(t, "Akun", b.Text("h1"))
	assert.Equal(t, "page", attr(b, `header nav a[href^="/accounts"]`, "aria-current"))
	shot("accounts-id")

	// a mistyped second password: the error on the page, the name kept
	b.SetValue("#add-name", "askes.ani")
	b.Click("#add-role-institution")
	b.SetValue("#add-services", "askes")
	b.SetValue("#add-password", "rahasia-yang-panjang-1")
	b.SetValue("#add-password2", "rahasia-yang-panjang-2")
	b.Click("#add-button")
	b.Wait(`document.getElementById("error") !== null`, 10*time.Second)
	assert.Equal(t, "Kedua kata sandi tidak sama.", b.Text("#error"))
	var kept struct {
		Name string
		Inst bool
	}
	b.Eval(`({Name: document.getElementById("add-name").value, Inst: document.getElementById("add-role-institution").checked})`, &kept)
	assert.Equal(t, "askes.ani", kept.Name)
	assert.True(t, kept.Inst)
	shot("accounts-error-id")
	b.SetValue("#add-password", "rahasia-yang-panjang-1")
	b.SetValue("#add-password2", "rahasia-yang-panjang-1")
	b.Click("#add-button")
	b.Wait(`document.getElementById("done") !== null`, 10*time.Second)
	assert.Equal(t, "Akun askes.ani ditambahkan.", b.Text("#done"))
	assert.Equal(t, "Instansi", b.Text(`tr[data-account="askes.ani"] [data-field="roles"]`))
	assert.Equal(t, "askes", b.Text(`tr[data-account="askes.ani"] [data-field="services"]`))
	assert.Equal(t, "Kata sandi", b.Text(`tr[data-account="askes.ani"] [data-field="method"]`))
	shot("accounts-added-id")

	// sign out; the new account signs in in the same browser
	b.Click("#signout-button")
	b.Wait(`location.pathname === "/login"`, 10*time.Second)
	assert.NotEmpty(t, b.Text("#message"))
	signIn("askes.ani", "rahasia-yang-panjang-1")
	b.Navigate(inst + "/dashboard?lang=en")
	assert.Equal(t, "Dashboard", b.Text("h1"))
	assert.Equal(t, "askes.ani", b.Text("#who"))
	label := func(d int) string { return day0.AddDate(0, 0, d).Format("02-01") }
	assert.Equal(t, []string{"askes|" + label(0) + "|2", "askes|" + label(1) + "|1", "askes|" + label(2) + "|1", "askes|" + label(3) + "|1"}, bars(b, "by-service"))
	var links []string
	b.Eval(`[...document.querySelectorAll("header nav a")].map(a => new URL(a.href).pathname)`, &links)
	assert.Equal(t, []string{"/dashboard", "/"}, links, "an institution account's navigation: its dashboard and the verify page")
	shot("accounts-new-account-dashboard-en")

	// the admin, on the other host name, disables it in English
	b.Navigate(adm + "/accounts?lang=en")
	signIn("admin.dewi", testPassword)
	assert.Equal(t, "Accounts", b.Text("h1"))
	b.Click(`tr[data-account="askes.ani"] summary`)
	shot("accounts-change-en")
	b.Click(`tr[data-account="askes.ani"] form.disable button`)
	b.Wait(`document.getElementById("done") !== null`, 10*time.Second)
	assert.Equal(t, "Account askes.ani is disabled; its sessions have ended.", b.Text("#done"))
	assert.Equal(t, "true", attr(b, `tr[data-account="askes.ani"]`, "data-disabled"))
	assert.Equal(t, "Disabled", b.Text(`tr[data-account="askes.ani"] [data-field="state"]`))
	shot("accounts-disabled-en")

	// its session has ended
	b.Navigate(inst + "/dashboard?lang=en")
	assert.Equal(t, "/login", path(), "the disabled account is signed out")

	// the audit page: the events, newest first
	b.Navigate(adm + "/audit?lang=id")
	assert.Equal(t, "Log audit", b.Text("h1"))
	type row struct{ ID, Action, Actor, Target, Outcome string }
	rows := func() []row {
		var out []row
		b.Eval(`[...document.querySelectorAll("#audit tbody tr[data-entry]")].map(r => ({ID: r.dataset.entry, Action: r.dataset.action, Actor: r.dataset.actor, Target: r.dataset.target, Outcome: r.dataset.outcome}))`, &out)
		return out
	}
	all := rows()
	require.NotEmpty(t, all)
	var seq []string
	for i, r := range all {
		if i > 0 {
			assert.Greater(t, mustInt(t, all[i-1].ID), mustInt(t, r.ID), "newest first")
		}
		if r.Target == "askes.ani" || r.Actor == "askes.ani" {
			seq = append(seq, r.Actor+" "+r.Action+" "+r.Outcome)
		}
	}
	assert.Equal(t, []string{"admin.dewi account-disable ok", " sign-in ok", "admin.dewi account-add ok"}, seq,
		"its disabling, its sign-in (before anyone acts: no actor), its creation")
	assert.Equal(t, "Akun dinonaktifkan", b.Text(`#audit tr[data-action="account-disable"] [data-field="action"]`))
	shot("audit-id")

	// filters: by account, then by action
	b.SetValue("#f-account", "askes.ani")
	b.Click("#filter")
	b.Wait(`new URL(location.href).searchParams.get("account") === "askes.ani"`, 10*time.Second)
	filtered := rows()
	assert.Len(t, filtered, len(seq))
	for _, r := range filtered {
		assert.True(t, r.Actor == "askes.ani" || r.Target == "askes.ani", "%+v", r)
	}
	b.SetValue("#f-action", "account-disable")
	b.Click("#filter")
	b.Wait(`new URL(location.href).searchParams.get("action") === "account-disable"`, 10*time.Second)
	filtered = rows()
	require.Len(t, filtered, 1)
	assert.Equal(t, "admin.dewi", filtered[0].Actor)
	shot("audit-filtered-id")
	b.Navigate(adm + "/audit?lang=en&action=sign-in")
	assert.Equal(t, "Audit log", b.Text("h1"))
	for _, r := range rows() {
		assert.Equal(t, "sign-in", r.Action)
	}
	assert.Equal(t, "Sign-in", b.Text(`#audit tbody [data-field="action"]`))
	shot("audit-en")
	b.Navigate(adm + "/audit?lang=en&from=2026-03-10&to=2026-03-01")
	assert.Equal(t, "The end date must be on or after the start date.", b.Text("#error"))

	// the two pages answered 400 on purpose (the mistyped password, the
	// bad range) are the only errors
	var errs []string
	for _, line := range b.Console() {
		if strings.Contains(line, "status of 400") && (strings.Contains(line, inst+"/accounts?lang=id:") || strings.Contains(line, adm+"/audit?lang=en&from=2026-03-10&to=2026-03-01:")) {
			continue
		}
		errs = append(errs, line)
	}
	assert.Empty(t, errs, "no console errors and no policy violations")
}
