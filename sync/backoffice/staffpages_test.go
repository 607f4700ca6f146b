package backoffice_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/browsertest"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/wire"
)

// staffShots, when set, is where TestStaffPagesInChromium writes a
// screenshot of each page (docs/img/backoffice):
//
//	go test ./sync/backoffice -run TestStaffPagesInChromium -staff-screenshots "$PWD/docs/img/backoffice"
var staffShots = flag.String("staff-screenshots", "", "write a PNG of every staff page into this directory")

// signedIn is h signed in through the form as a new account named and
// holding roles and services as p: every request carries the session's cookie, and
// tok is the session's CSRF token (a form brings its own, right or
// wrong).
func signedIn(t *testing.T, l *lab, h http.Handler, p *backoffice.Principal) (_ http.Handler, tok string) {
	t.Helper()
	s := signInAs(t, l.svc, h, p.Account, p.Roles, p.Services...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.Clone(r.Context())
		cookies := r.Cookies() // a browser's own (another test server's session: cookies ignore ports) give way
		r.Header.Del("Cookie")
		for _, c := range cookies {
			if c.Name != s.cookie.Name {
				r.AddCookie(c)
			}
		}
		r.AddCookie(s.cookie)
		h.ServeHTTP(w, r)
	}), s.csrf
}

var (
	auditor     = &backoffice.Principal{Account: "audit.siti", Roles: []backoffice.Role{backoffice.RoleAuditor}}
	verifier    = &backoffice.Principal{Account: "loket.budi", Roles: []backoffice.Role{backoffice.RoleVerifier}}
	institution = &backoffice.Principal{Account: "taspen.rina", Roles: []backoffice.Role{backoffice.RoleInstitution}, Services: []string{"taspen"}}
)

// pagesLab is a bbolt back office with the seeded records of seedPages,
// an upload of t-01 carrying its agent version and backlog, a terminal
// t-04 silent for two days, two found and one unknown verification today,
// and one counter-conflict alarm. It returns the lab and the first day.
func pagesLab(t *testing.T) (*lab, time.Time) {
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	l := newLab(t, st)
	ctx := context.Background()
	day0, _ := seedPages(t, l)
	backlog := int64(42)
	r := baseRecord("t-01")
	rec := l.seal(r, l.sam)
	_, err = l.svc.Ingest(ctx, &wire.Batch{Certificates: [][]byte{l.sam.Cert}, Records: [][]byte{rec}, SentAt: time.Now(),
		Agent: "1.4.0", Backlog: &backlog, OldestQueued: time.Now().Add(-5 * time.Hour)}, t01)
	require.NoError(t, err)
	old := time.Now().Add(-48 * time.Hour)
	past, err := backoffice.New(l.store, backoffice.Config{CA: l.ca.Pool(), Now: func() time.Time { return old }})
	require.NoError(t, err)
	_, err = past.Ingest(ctx, &wire.Batch{SentAt: old, Agent: "1.3.9"}, backoffice.Identity{Terminal: "t-04"})
	require.NoError(t, err)
	code := codeOf(t, rec)
	for _, c := range []string{code, code, "0000-0000-0000-0000"} {
		_, err := l.svc.Verify(ctx, c)
		require.NoError(t, err)
	}
	l.conflict("taspen")
	return l, day0
}

func getPage(t *testing.T, h http.Handler, path string) answer {
	t.Helper()
	return staffCall(h, "GET", path, "")
}

// Each page requires its role: nobody signed in is sent to the sign-in, a verifier 403
// everywhere but the verify page, an institution account the dashboard
// only, an auditor every page. Bad parameters are 400.
func TestStaffPagesRoles(t *testing.T) {
	l, _ := pagesLab(t)
	h := l.svc.StaffHandler(backoffice.StaffConfig{Zone: wib})
	pages := []string{"/dashboard", "/terminals", "/alarms", "/alarms/1", "/reports"}
	ver, verTok := signedIn(t, l, h, verifier)
	as, tok := signedIn(t, l, h, auditor)
	inst, _ := signedIn(t, l, h, institution)
	for _, p := range pages {
		a := getPage(t, h, p)
		assert.Equal(t, 303, a.status, p)
		assert.Equal(t, "/login?next="+url.QueryEscape(p), a.header.Get("Location"), "nobody signed in: to the sign-in")
		a = getPage(t, ver, p)
		assert.Equal(t, 403, a.status, p)
		assert.Contains(t, a.body, "forbidden-role", p)
		a = getPage(t, as, p)
		assert.Equal(t, 200, a.status, "%s: %s", p, a.body)
		assert.Equal(t, "text/html; charset=utf-8", a.header.Get("Content-Type"), p)
		assert.Contains(t, a.header.Get("Content-Security-Policy"), "script-src 'self'", p)
		want := 403
		if p == "/dashboard" {
			want = 200
		}
		assert.Equal(t, want, getPage(t, inst, p).status, p)
	}
	assert.Equal(t, 200, getPage(t, ver, "/").status)
	assert.Equal(t, 200, getPage(t, h, "/assets/staff.css").status)

	for path, code := range map[string]string{
		"/dashboard?from=2026-02-30":               "bad-range",
		"/dashboard?from=2026-03-01&to=2026-02-01": "bad-range",
		"/dashboard?from=2020-01-01&to=2026-01-01": "bad-range",
		"/terminals?silent=soon":                   "bad-silent",
		"/terminals?silent=-1h":                    "bad-silent",
		"/alarms?state=closed":                     "bad-state",
		"/alarms/x":                                "bad-alarm-id",
		"/reports?semester=2026-3":                 "bad-semester",
	} {
		a := getPage(t, as, path)
		assert.Equal(t, 400, a.status, path)
		assert.Contains(t, a.body, code, path)
	}
	assert.Equal(t, 404, getPage(t, as, "/alarms/999").status)

	// the acknowledgement form needs the session's token
	form := url.Values{"comment": {"checked"}, "csrf_token": {"wrong"}}.Encode()
	a := staffCall(as, "POST", "/alarms/1", form, "Content-Type", "application/x-www-form-urlencoded")
	assert.Equal(t, 403, a.status)
	assert.Contains(t, a.body, `"csrf"`)
	a = staffCall(as, "POST", "/alarms/1", url.Values{"comment": {"x"}, "csrf_token": {""}}.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	assert.Equal(t, 403, a.status, "no session token: refused")
	a = staffCall(as, "POST", "/alarms/1", url.Values{"comment": {"  "}, "csrf_token": {tok}}.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	assert.Equal(t, 400, a.status)
	assert.Contains(t, a.body, "Komentar wajib diisi")
	assert.Equal(t, 403, staffCall(ver, "POST", "/alarms/1", url.Values{"comment": {"x"}, "csrf_token": {verTok}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded").status)
}

func TestParseSilence(t *testing.T) {
	for in, want := range map[string]time.Duration{"24h": 24 * time.Hour, "90m": 90 * time.Minute, "3d": 72 * time.Hour, "1h30m": 90 * time.Minute} {
		d, err := backoffice.ParseSilence(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, d, in)
	}
	for _, in := range []string{"", "0", "-1h", "d", "xd", "1y", "99999d", "0d"} {
		_, err := backoffice.ParseSilence(in)
		assert.Error(t, err, in)
	}
}

// bars reads a chart's bars from the page: "series|label|value" each.
func bars(b *browsertest.Browser, chart string) []string {
	var out []string
	b.Eval(`[...document.querySelectorAll("#`+chart+` rect.bar")].map(r => r.dataset.series + "|" + r.dataset.label + "|" + r.dataset.value)`, &out)
	sort.Strings(out)
	return out
}

// The staff pages in headless Chromium under the staff listener's
// policy, as an auditor, in Indonesian and English: the dashboard's
// charts carry the seeded numbers (one bar segment per service and day,
// heights in proportion, the hit rate and the open alarm), the terminals
// page and its silent filter, an alarm acknowledged through its form and
// then in its history, the reports page's links; an institution account
// sees only its service; a verifier is refused the terminals page. No
// console errors and no policy violations.
func TestStaffPagesInChromium(t *testing.T) {
	l, day0 := pagesLab(t)
	h := l.svc.StaffHandler(backoffice.StaffConfig{Zone: wib})
	aud, _ := signedIn(t, l, h, auditor)
	srv := httptest.NewServer(aud)
	defer srv.Close()
	b := browsertest.Start(t, browsertest.WindowSize(1280, 1000))
	shot := func(name string) {
		if *staffShots != "" {
			require.NoError(t, os.MkdirAll(*staffShots, 0o755))
			b.Screenshot(filepath.Join(*staffShots, name+".png"))
		}
	}
	label := func(d int) string { return day0.AddDate(0, 0, d).Format("02-01") }

	// dashboard, Indonesian by default, the last 30 days
	b.Navigate(srv.URL + "/dashboard?lang=id")
	assert.Equal(t, "Dasbor", b.Text("h1"))
	var lang string
	b.Eval(`document.documentElement.lang`, &lang)
	assert.Equal(t, "id", lang)
	assert.Equal(t, []string{
		"askes|" + label(0) + "|2", "askes|" + label(1) + "|1", "askes|" + label(2) + "|1", "askes|" + label(3) + "|1",
		"bapertarum|" + label(1) + "|1", "taspen|" + label(0) + "|1", "taspen|" + label(2) + "|2",
	}, bars(b, "by-service"))
	assert.Equal(t, []string{
		"Dinkes Kota A|" + label(0) + "|3", "Dinkes Kota A|" + label(1) + "|2", "Dinkes Kota A|" + label(3) + "|1", "rs-c|" + label(2) + "|3",
	}, bars(b, "by-institution"))
	assert.Equal(t, []string{
		"pkm-a|" + label(0) + "|3", "pkm-a|" + label(3) + "|1", "pkm-b|" + label(1) + "|2", "rs-c|" + label(2) + "|3",
	}, bars(b, "by-site"))
	assert.Equal(t, []string{"Ditemukan|" + label(3) + "|2", "Tidak ditemukan|" + label(3) + "|1"}, bars(b, "verifications"))
	// heights in proportion to the values
	var ratios []float64
	b.Eval(`[...document.querySelectorAll("#by-site rect.bar")].map(r => r.getBBox().height / Number(r.dataset.value))`, &ratios)
	require.Len(t, ratios, 4)
	for _, r := range ratios {
		assert.InEpsilon(t, ratios[0], r, 0.01)
	}
	assert.Equal(t, "Autentikasi per hari menurut layanan", b.Text("#by-service svg > title"))
	assert.Equal(t, "askes, "+label(0)+": 2", b.Text(`#by-service rect[data-series="askes"][data-label="`+label(0)+`"] title`))
	assert.Equal(t, "9", attr(b, "#total", "data-total"))
	assert.Equal(t, "1", attr(b, "#alarms-open", "data-open"))
	assert.Contains(t, b.Text("#verifications table"), "66.7%")
	shot("dashboard-id")

	b.Navigate(srv.URL + "/dashboard?lang=en&from=" + day0.Format("2006-01-02") + "&to=" + day0.AddDate(0, 0, 1).Format("2006-01-02"))
	assert.Equal(t, "Dashboard", b.Text("h1"))
	assert.Equal(t, []string{"askes|" + label(0) + "|2", "askes|" + label(1) + "|1", "bapertarum|" + label(1) + "|1", "taspen|" + label(0) + "|1"}, bars(b, "by-service"))
	assert.Contains(t, b.Text("#total"), "5 authentications")
	// the style sheet applies
	var bg string
	b.Eval(`getComputedStyle(document.querySelector("header")).backgroundColor`, &bg)
	assert.Equal(t, "rgb(11, 61, 98)", bg)
	shot("dashboard-en")

	// terminals and the silent filter
	b.Navigate(srv.URL + "/terminals?lang=id")
	assert.Equal(t, "Terminal", b.Text("h1"))
	assert.Equal(t, "4", attr(b, "#count", "data-count"))
	assert.Equal(t, "1.4.0", b.Text(`tr[data-terminal="t-01"] [data-field="agent"]`))
	assert.Contains(t, b.Text(`tr[data-terminal="t-01"] [data-field="backlog"]`), "42 (tertua ")
	assert.Equal(t, "53414d0000000007 / 9", b.Text(`tr[data-terminal="t-01"] [data-field="sam"]`))
	assert.Equal(t, "0", b.Text(`tr[data-terminal="t-02"] [data-field="gaps"]`))
	assert.Equal(t, "—", b.Text(`tr[data-terminal="t-02"] [data-field="backlog"]`))
	shot("terminals-id")
	b.SetValue("#silent", "24h")
	b.Click("#filter")
	b.Wait(`document.querySelector("#count").dataset.count === "1"`, 10*time.Second)
	assert.Equal(t, "t-04", b.Text("#terminals tbody th"))
	assert.Contains(t, b.Text("#count"), "lebih dari 24h")
	b.Navigate(srv.URL + "/terminals?lang=en&silent=3d")
	assert.Equal(t, "Terminals", b.Text("h1"))
	assert.Contains(t, b.Text("#count"), "0 terminals without contact for more than 3d")
	b.Navigate(srv.URL + "/terminals?lang=en")
	shot("terminals-en")

	// alarms: acknowledge the conflict with a comment through the form
	b.Navigate(srv.URL + "/alarms?lang=id")
	assert.Equal(t, "Alarm", b.Text("h1"))
	id := attr(b, "#alarms tbody tr", "data-alarm")
	assert.Equal(t, "open", attr(b, "#alarms tbody tr", "data-state"))
	shot("alarms-id")
	b.Click(`#alarms tbody tr a`)
	b.Wait(`document.getElementById("ack") !== null`, 10*time.Second)
	assert.Contains(t, b.Text(".hint"), "audit.siti")
	shot("alarm-form-id")
	b.SetValue("#comment", "Diperiksa: SAM t-01 ditukar, laporan ke BSSN <1>")
	b.Click("#ack-button")
	b.Wait(`document.querySelector('#history li[data-type="acknowledged"]') !== null`, 10*time.Second)
	assert.Equal(t, "audit.siti", b.Text(`#history li[data-type="acknowledged"] [data-field="by"]`))
	assert.Equal(t, "Diperiksa: SAM t-01 ditukar, laporan ke BSSN <1>", b.Text(`#history li[data-type="acknowledged"] [data-field="comment"]`))
	assert.Equal(t, "Ditanggapi", b.Text("#state"))
	var form bool
	b.Eval(`document.getElementById("ack") !== null`, &form)
	assert.False(t, form, "an acknowledged alarm has no form")
	a, err := l.svc.Alarm(context.Background(), mustInt(t, id))
	require.NoError(t, err)
	require.Len(t, a.History, 2)
	assert.Equal(t, "audit.siti", a.History[1].By)
	shot("alarm-id")
	b.Navigate(srv.URL + "/alarms/" + id + "?lang=en")
	assert.Equal(t, "Acknowledged", b.Text("#state"))
	shot("alarm-en")
	b.Navigate(srv.URL + "/alarms?lang=en&state=acknowledged")
	assert.Equal(t, id, attr(b, "#alarms tbody tr", "data-alarm"))
	assert.Equal(t, "Alarms", b.Text("h1"))

	// reports
	b.Navigate(srv.URL + "/reports?lang=id")
	assert.Equal(t, "Laporan", b.Text("h1"))
	var sem string
	b.Eval(`document.getElementById("semester").value`, &sem)
	now := time.Now().In(wib)
	assert.Equal(t, fmt.Sprintf("%d-%d", now.Year(), 1+(int(now.Month())-1)/6), sem, "the current semester is chosen")
	assert.Equal(t, wire.PathReport+"?semester="+sem, attr(b, "#csv", "href"))
	assert.Equal(t, wire.PathReport+"?format=xlsx&lang=id&semester="+sem, attr(b, "#xlsx", "href"))
	shot("reports-id")
	b.Navigate(srv.URL + "/reports?lang=en&semester=2025-2")
	assert.Equal(t, "Reports", b.Text("h1"))
	assert.Equal(t, "Period 2025-07-01 to 2025-12-31 (WIB)", b.Text("#period"))
	var status int
	b.Eval(`(() => { const x = new XMLHttpRequest(); x.open("GET", document.getElementById("csv").href, false); x.send(); return x.status; })()`, &status)
	assert.Equal(t, 200, status, "the CSV link answers")
	shot("reports-en")

	assert.Empty(t, b.Console(), "no console errors and no policy violations")

	// an institution account: its service only, no terminals
	instH, _ := signedIn(t, l, h, institution)
	inst := httptest.NewServer(instH)
	defer inst.Close()
	b.Navigate(inst.URL + "/dashboard?lang=en")
	assert.Equal(t, []string{"taspen|" + label(0) + "|1", "taspen|" + label(2) + "|2"}, bars(b, "by-service"))
	assert.Equal(t, []string{"pkm-a|" + label(0) + "|1", "rs-c|" + label(2) + "|2"}, bars(b, "by-site"))
	var n int
	b.Eval(`document.querySelectorAll("#verifications, #alarms-open, a[href^='/terminals']").length`, &n)
	assert.Zero(t, n, "no verifications, alarms or terminals for an institution")
	assert.Contains(t, b.Text("#total"), "services: taspen")
	shot("dashboard-institution")
	b.Navigate(inst.URL + "/terminals")
	assert.Contains(t, b.Text("body"), "forbidden-role")

	// a verifier is refused the terminals page
	verH, _ := signedIn(t, l, h, verifier)
	ver := httptest.NewServer(verH)
	defer ver.Close()
	resp, err := http.Get(ver.URL + "/terminals")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 403, resp.StatusCode)
	b.Navigate(ver.URL + "/terminals")
	assert.Contains(t, b.Text("body"), "forbidden-role")
	for _, line := range b.Console() {
		assert.NotContains(t, line, "Content Security Policy")
	}
}

func attr(b *browsertest.Browser, sel, name string) string {
	var v string
	b.Eval(`(document.querySelector(`+strconv.Quote(sel)+`)?.getAttribute(`+strconv.Quote(name)+`)) ?? ""`, &v)
	return v
}

func mustInt(t *testing.T, s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	require.NoError(t, err)
	return n
}
