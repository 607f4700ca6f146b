package api

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/i18n"
)

// newLoketRig is newScopeRig with the counter screen on (or off) beside
// the kiosk.
func newLoketRig(t *testing.T, on bool) *scopeRig {
	r := &scopeRig{b: &scopeBackend{}, now: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
	r.conf = ServerConfig{Token: []byte(testToken), Heartbeat: time.Hour, Metrics: metricsStub{}, Kiosk: enabled,
		Loket: LoketConfig{Enabled: on}, AllowedOrigins: []string{"http://his.example"}, now: r.clock}
	r.srv = httptest.NewServer(NewHandler(r.b, r.conf))
	t.Cleanup(r.srv.Close)
	return r
}

var loginURL = regexp.MustCompile(`^http://127\.0\.0\.1:[0-9]+/loket/\?login=[0-9a-f]{64}$`)

// link asks for a one-time login link with the token.
func (r *scopeRig) link(t *testing.T) string {
	t.Helper()
	a := r.do(t, "POST", PathLoketLogin, "", "Authorization", "Bearer "+testToken)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	var l LoketLogin
	require.NoError(t, json.Unmarshal(a.body, &l))
	assert.Equal(t, 60, l.ExpiresSeconds)
	require.Regexp(t, loginURL, l.URL)
	return l.URL
}

// open opens a login link as the browser does, without following the
// redirect; hdr are header pairs.
func (r *scopeRig) open(t *testing.T, link string, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest("GET", link, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	c := *r.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

// login opens a fresh login link and returns the counter credential.
func (r *scopeRig) login(t *testing.T) string {
	t.Helper()
	a := r.open(t, r.link(t))
	require.Equal(t, http.StatusSeeOther, a.status, "%s", a.body)
	return loketCookieOf(t, a)
}

func loketCookieOf(t *testing.T, a answer) string {
	t.Helper()
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == LoketCookie {
			return c.Value
		}
	}
	t.Fatal("no counter cookie")
	return ""
}

// The login link: asked for with the token only, opened once within 60 s,
// it sets the counter credential and leaves the address bar.
func TestLoketLoginLink(t *testing.T) {
	r := newLoketRig(t, true)
	link := r.link(t)
	a := r.open(t, link, "Sec-Fetch-Site", "none")
	require.Equal(t, http.StatusSeeOther, a.status, "%s", a.body)
	assert.Equal(t, PathLoket, a.header.Get("Location"), "the code leaves the address bar")
	assert.Equal(t, "no-referrer", a.header.Get("Referrer-Policy"))
	assert.Equal(t, "no-store", a.header.Get("Cache-Control"))
	set := a.header.Values("Set-Cookie")
	require.Len(t, set, 1)
	assert.Regexp(t, `^kpe_loket=[0-9a-f]{64}; Path=/; HttpOnly; SameSite=Strict$`, set[0])
	cookie := LoketCookie + "=" + loketCookieOf(t, a)
	assert.Equal(t, http.StatusOK, r.do(t, "GET", PathReaders, "", "Cookie", cookie).status)

	// used: refused, and no credential
	a = r.open(t, link)
	assert.Equal(t, http.StatusForbidden, a.status)
	assert.Equal(t, "text/html; charset=utf-8", a.header.Get("Content-Type"))
	assert.Contains(t, string(a.body), `data-login="expired"`)
	assert.Contains(t, string(a.body), i18n.Indonesian.T("loket.login.expired"))
	assert.Empty(t, a.header.Values("Set-Cookie"))

	// expired after 60 s
	link = r.link(t)
	r.advance(loketLoginLife)
	a = r.open(t, link)
	assert.Equal(t, http.StatusForbidden, a.status)
	assert.Contains(t, string(a.body), `data-login="expired"`)
	link = r.link(t)
	r.advance(loketLoginLife - time.Second)
	assert.Equal(t, http.StatusSeeOther, r.open(t, link).status, "within 60 s")

	// the last eight are kept
	first := r.link(t)
	for range loketLoginKeep {
		r.link(t)
	}
	assert.Equal(t, http.StatusForbidden, r.open(t, first).status, "pushed out by newer links")

	// not a code: refused the same way
	u, err := url.Parse(link)
	require.NoError(t, err)
	for _, code := range []string{"", "x", strings.Repeat("0", 64), strings.Repeat("ab", 40)} {
		u.RawQuery = url.Values{"login": {code}}.Encode()
		a = r.open(t, u.String())
		assert.Equal(t, http.StatusForbidden, a.status, code)
		assert.Empty(t, a.header.Values("Set-Cookie"), code)
	}

	// another origin's page that got hold of a link (a frame, an image):
	// refused, and the link is not spent
	link = r.link(t)
	for _, site := range []string{"same-site", "cross-site"} {
		a = r.open(t, link, "Sec-Fetch-Site", site)
		assert.Equal(t, http.StatusForbidden, a.status, site)
		assert.Empty(t, a.header.Values("Set-Cookie"), site)
	}
	a = r.open(t, link, "Origin", "http://evil.example")
	assert.Equal(t, http.StatusForbidden, a.status)
	assert.Equal(t, http.StatusSeeOther, r.open(t, link, "Sec-Fetch-Site", "none").status)

	// only the token hands links out
	kiosk := KioskCookie + "=" + r.mint(t)
	for _, c := range []struct {
		hdr    []string
		status int
		code   string
	}{
		{nil, http.StatusUnauthorized, CodeUnauthorized},
		{[]string{"Authorization", "Bearer wrong"}, http.StatusUnauthorized, CodeUnauthorized},
		{[]string{"Cookie", kiosk}, http.StatusForbidden, CodeForbiddenScope},
		{[]string{"Cookie", cookie}, http.StatusForbidden, CodeForbiddenScope},
	} {
		a := r.do(t, "POST", PathLoketLogin, "", c.hdr...)
		assert.Equal(t, c.status, a.status, "%v", c.hdr)
		assert.Equal(t, c.code, a.err.Code, "%v", c.hdr)
	}
}

// The counter credential: 12 hours, the last eight, none without the
// counter screen on, none beside an Authorization header or on another
// origin's requests.
func TestLoketCredential(t *testing.T) {
	r := newLoketRig(t, true)
	accepted := func(cookie string, hdr ...string) bool {
		t.Helper()
		a := r.do(t, "GET", PathCodesToday, "", append([]string{"Cookie", LoketCookie + "=" + cookie}, hdr...)...)
		return a.status == http.StatusOK
	}
	c := r.login(t)
	r.advance(loketLifetime - time.Second)
	assert.True(t, accepted(c))
	r.advance(time.Second)
	assert.False(t, accepted(c), "expired after 12 hours")

	first := r.login(t)
	for range loketKeep - 1 {
		r.login(t)
	}
	assert.True(t, accepted(first))
	r.login(t)
	assert.False(t, accepted(first), "pushed out by newer ones")

	c = r.login(t)
	assert.False(t, accepted(c, "Authorization", "Bearer wrong"), "an Authorization header decides by itself")
	assert.False(t, accepted(c, "Sec-Fetch-Site", "same-site"), "another port's page")
	assert.False(t, accepted(c, "Sec-Fetch-Site", "cross-site"))
	assert.True(t, accepted(c, "Sec-Fetch-Site", "same-origin"))
	for _, bad := range []string{"", "x", strings.Repeat("0", 64), strings.Repeat("ab", kioskSecret), r.mint(t)} {
		assert.False(t, accepted(bad), bad)
	}
	// another origin's page, with the cookie: the Origin check comes first
	a := r.do(t, "POST", PathAuth, `{"service":"askes","operator":"clerk-01"}`, "Cookie", LoketCookie+"="+c, "Origin", "http://evil.example")
	assert.Equal(t, http.StatusForbidden, a.status)
	assert.Equal(t, CodeForbiddenOrigin, a.err.Code)
	a = r.do(t, "GET", PathReaders, "", "Cookie", LoketCookie+"="+c, "Host", "evil.example")
	assert.Equal(t, CodeForbiddenHost, a.err.Code, "DNS rebinding")
	assert.Empty(t, r.b.auths)

	// the counter screen off: no page, no link, and no cookie counts
	off := newLoketRig(t, false)
	a = off.do(t, "GET", PathLoket, "")
	assert.Equal(t, http.StatusNotFound, a.status)
	a = off.do(t, "POST", PathLoketLogin, "", "Authorization", "Bearer "+testToken)
	assert.Equal(t, http.StatusNotFound, a.status)
	assert.Equal(t, CodeNotFound, a.err.Code)
	assert.Contains(t, a.err.Message, "loket.enabled")
	a = off.do(t, "GET", PathCodesToday, "", "Cookie", LoketCookie+"="+c)
	assert.Equal(t, http.StatusUnauthorized, a.status)
}

// Every route with the counter credential: what a counter does, and
// nothing else.
func TestScopeCounterRoutes(t *testing.T) {
	r := newLoketRig(t, true)
	cookie := LoketCookie + "=" + r.login(t)
	const ok = 0
	for _, rt := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", PathHealth, "", ok},
		{"GET", PathReaders, "", ok},
		{"GET", PathEvents, "", ok},
		{"POST", PathAuth, `{"service":"askes","operator":"clerk-01"}`, ok},
		{"POST", PathAuth, `{"service":"taspen","operator":"clerk-01"}`, ok},
		{"POST", PathAuth, `{"service":"kiosk","operator":"clerk-01"}`, http.StatusForbidden},
		{"POST", PathAuth, `{"service":"askes"}`, http.StatusBadRequest},
		{"POST", PathCancel, `{"all":true}`, ok},
		{"POST", PathCancel, `{}`, http.StatusBadRequest},
		{"POST", PathPrompt, `{"id":"p1","answer":"continue"}`, ok},
		{"GET", PathPrefill, "", ok},
		{"GET", PathCodesToday, "", ok},
		{"GET", PathKioskQR + "?code=" + url.QueryEscape(goodCode), "", ok},
		{"GET", PathRenewal, "", ok},
		{"POST", PathRenewalCheck, `{"reader":"r0"}`, ok},
		{"POST", PathRenewalApply, `{"reader":"r0"}`, ok},
		{"POST", PathRenewalDecline, `{}`, ok},
		{"GET", PathClientJS, "", ok},
		{"GET", PathLoket, "", ok},
		{"GET", "/loket/app.js", "", ok},
		{"GET", "/loket/app.css", "", ok},
		{"GET", "/loket/no-such-file", "", http.StatusNotFound},
		{"GET", PathCard, "", http.StatusForbidden}, // the card view: KTP-el data, the whole KPE
		{"GET", PathQueue, "", http.StatusForbidden},
		{"POST", PathSync, "", http.StatusForbidden},
		{"GET", PathMetrics, "", http.StatusForbidden},
		{"GET", PathKioskView, "", http.StatusForbidden},
		{"GET", PathKioskPhoto, "", http.StatusForbidden},
		{"GET", PathKiosk, "", http.StatusForbidden},
		{"POST", PathLoketLogin, "", http.StatusForbidden},
		{"GET", PathOpenAPI, "", http.StatusForbidden},
		{"GET", PathClientDTS, "", http.StatusForbidden},
		{"GET", "/v1/no-such-path", "", http.StatusForbidden},
	} {
		a := r.do(t, rt.method, rt.path, rt.body, "Cookie", cookie)
		where := rt.method + " " + rt.path + " " + rt.body
		if rt.want == ok {
			assert.Less(t, a.status, 300, "%s: %d %s", where, a.status, a.body)
			continue
		}
		assert.Equal(t, rt.want, a.status, "%s: %s", where, a.body)
		if rt.want == http.StatusForbidden {
			assert.Equal(t, CodeForbiddenScope, a.err.Code, where)
			// worded for the clerk, with the detail
			assert.True(t, strings.HasPrefix(a.err.Message, i18n.English.T("clerk.forbidden-scope")+" ("), "%s: %s", where, a.err.Message)
		}
	}
	// the authentications that ran: as the clerk asked, worded for the clerk
	require.Len(t, r.b.auths, 2)
	for _, req := range r.b.auths {
		assert.Equal(t, "clerk-01", req.Operator)
		assert.Equal(t, string(i18n.Clerk), req.Audience)
	}
	assert.Equal(t, []string{"", ""}, r.b.creds, "no kiosk credential")
	a := r.do(t, "POST", PathAuth+"?audience=holder", `{"service":"bapertarum","operator":"clerk-02","audience":"holder"}`, "Cookie", cookie)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	assert.Equal(t, string(i18n.Clerk), r.b.auths[2].Audience, "the counter screen speaks to the clerk")

	// the whole health, as the token gets it
	a = r.do(t, "GET", PathHealth, "", "Cookie", cookie)
	assert.Contains(t, string(a.body), `"terminal":"t-01"`)
}

// One browser profile that opened both pages: the counter credential
// decides; the counter screen is served whatever kiosk cookie comes with
// it, so that the clerk can log in.
func TestScopeCounterBesideKiosk(t *testing.T) {
	r := newLoketRig(t, true)
	kiosk := KioskCookie + "=" + r.mint(t)
	a := r.do(t, "GET", PathLoket, "", "Cookie", kiosk)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	assert.Contains(t, string(a.body), `data-login="needed"`)
	a = r.do(t, "GET", "/loket/app.js", "", "Cookie", kiosk)
	assert.Equal(t, http.StatusOK, a.status)
	a = r.open(t, r.link(t), "Cookie", kiosk)
	require.Equal(t, http.StatusSeeOther, a.status, "%s", a.body)
	both := kiosk + "; " + LoketCookie + "=" + loketCookieOf(t, a)

	a = r.do(t, "POST", PathAuth, `{"service":"askes","operator":"clerk-01"}`, "Cookie", both)
	assert.Equal(t, http.StatusOK, a.status, "%s", a.body)
	a = r.do(t, "GET", PathKioskView, "", "Cookie", both)
	assert.Equal(t, http.StatusForbidden, a.status)
	a = r.do(t, "POST", PathAuth, `{"service":"kiosk"}`, "Cookie", both)
	assert.Equal(t, http.StatusForbidden, a.status)
	// the kiosk cookie alone is still the kiosk's
	a = r.do(t, "GET", PathPrefill, "", "Cookie", kiosk)
	assert.Equal(t, http.StatusForbidden, a.status)
	assert.Equal(t, i18n.English.T("holder.forbidden-scope"), a.err.Message)
}

// The counter screen itself: a page that keeps to itself, its words in
// both languages, and the login state.
func TestLoketPage(t *testing.T) {
	r := newLoketRig(t, true)
	a := r.do(t, "GET", PathLoket, "")
	require.Equal(t, http.StatusOK, a.status)
	assert.Equal(t, "text/html; charset=utf-8", a.header.Get("Content-Type"))
	assert.Equal(t, "no-store", a.header.Get("Cache-Control"))
	assert.Equal(t, "DENY", a.header.Get("X-Frame-Options"))
	assert.Equal(t, "no-referrer", a.header.Get("Referrer-Policy"))
	csp := a.header.Get("Content-Security-Policy")
	assert.Contains(t, csp, "default-src 'none';")
	assert.Contains(t, csp, "script-src 'self';")
	assert.Contains(t, csp, "img-src 'self' blob:;")
	assert.Contains(t, csp, "frame-ancestors 'none'")
	assert.NotContains(t, csp, "unsafe")
	body := string(a.body)
	assert.NotRegexp(t, `<script(?:[^>]*)?>\s*[^<\s]`, body, "no inline script")
	assert.Contains(t, body, `<script type="module" src="/loket/app.js"></script>`)
	assert.NotContains(t, body, " style=", "no inline style")
	assert.Contains(t, body, `data-login="needed"`)
	assert.Contains(t, body, `data-qr="true"`)
	assert.Contains(t, body, `<html lang="en">`, "the backend's language (English) without another hint")
	assert.Contains(t, body, "<title>"+i18n.English.T("loket.title")+"</title>")
	assert.Empty(t, a.header.Values("Set-Cookie"), "the page hands out nothing by itself")

	// its words, both languages, for the ID · EN switch
	m := regexp.MustCompile(`data-words="([^"]*)"`).FindStringSubmatch(body)
	require.Len(t, m, 2)
	var words map[string]map[string]string
	require.NoError(t, json.Unmarshal([]byte(html.UnescapeString(m[1])), &words))
	for _, l := range i18n.Langs {
		assert.Equal(t, l.T("loket.step.recorded"), words[string(l)]["step.recorded"])
		assert.Equal(t, l.T("loket.codes.state.synced"), words[string(l)]["codes.state.synced"])
	}

	a = r.do(t, "GET", PathLoket+"?lang=id", "", "Cookie", LoketCookie+"="+r.login(t))
	assert.Contains(t, string(a.body), `data-login="ok"`)
	assert.Contains(t, string(a.body), `<html lang="id">`)
	assert.Contains(t, string(a.body), i18n.Indonesian.T("loket.shift.start"))
	a = r.do(t, "GET", PathLoket, "", "Accept-Language", "id-ID,id;q=0.9")
	assert.Contains(t, string(a.body), `<html lang="id">`)

	for file, typ := range map[string]string{"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"} {
		a = r.do(t, "GET", PathLoket+file, "")
		assert.Equal(t, http.StatusOK, a.status, file)
		assert.Equal(t, typ, a.header.Get("Content-Type"), file)
		assert.Equal(t, "nosniff", a.header.Get("X-Content-Type-Options"), file)
		assert.NotEmpty(t, a.body, file)
	}
	a = r.do(t, "HEAD", PathLoket, "")
	assert.Equal(t, http.StatusOK, a.status)
	assert.Empty(t, a.body)
	a = r.do(t, "POST", PathLoket, "")
	assert.Equal(t, http.StatusNotFound, a.status)

	// another origin's page loading the counter screen
	a = r.do(t, "GET", PathLoket, "", "Sec-Fetch-Site", "cross-site")
	assert.Equal(t, http.StatusForbidden, a.status)
	assert.Equal(t, CodeForbiddenOrigin, a.err.Code)
}

// Today's codes: the token or the counter credential; never the kiosk's.
func TestCodesTodayRoute(t *testing.T) {
	r := newLoketRig(t, true)
	for _, hdr := range [][]string{{"Authorization", "Bearer " + testToken}, {"Cookie", LoketCookie + "=" + r.login(t)}} {
		a := r.do(t, "GET", PathCodesToday, "", hdr...)
		require.Equal(t, http.StatusOK, a.status, "%s", a.body)
		assert.JSONEq(t, `{"date":"2026-03-02","codes":[{"code":"`+goodCode+`","service":"askes","time":"2026-03-02T09:15:00+07:00","state":"queued"}],"truncated":false}`, string(a.body))
	}
	a := r.do(t, "GET", PathCodesToday, "")
	assert.Equal(t, http.StatusUnauthorized, a.status)
	a = r.do(t, "GET", PathCodesToday, "", "Cookie", KioskCookie+"="+r.mint(t))
	assert.Equal(t, http.StatusForbidden, a.status)
	assert.Equal(t, CodeForbiddenScope, a.err.Code)

	// an empty day is an empty list, not null
	h := NewHandler(emptyDay{r.b}, ServerConfig{Token: []byte(testToken)})
	req := httptest.NewRequestWithContext(context.Background(), "GET", PathCodesToday, nil)
	req.Host = "127.0.0.1"
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.JSONEq(t, `{"date":"2026-03-03","codes":[],"truncated":false}`, rec.Body.String())
}

type emptyDay struct{ *scopeBackend }

func (emptyDay) CodesToday() (TodayCodes, error) { return TodayCodes{Date: "2026-03-03"}, nil }

// The calls of the counter's scope, by method and path.
func TestCounterMay(t *testing.T) {
	for _, c := range []struct {
		method, path string
		may          bool
	}{
		{"GET", PathHealth, true}, {"HEAD", PathHealth, true}, {"GET", PathReaders, true}, {"GET", PathEvents, true},
		{"POST", PathAuth, true}, {"POST", PathCancel, true}, {"POST", PathPrompt, true}, {"GET", PathPrefill, true},
		{"GET", PathCodesToday, true}, {"GET", PathKioskQR, true}, {"GET", PathClientJS, true},
		{"GET", PathLoket, true}, {"GET", "/loket", true}, {"GET", "/loket/app.js", true}, {"HEAD", "/loket/app.css", true},
		{"POST", PathLoket, false}, {"GET", "/loketx", false}, {"GET", PathCard, false}, {"GET", PathQueue, false},
		{"POST", PathSync, false}, {"GET", PathMetrics, false}, {"GET", PathKioskView, false}, {"GET", PathKioskPhoto, false},
		{"GET", PathKiosk, false}, {"POST", PathLoketLogin, false}, {"GET", PathOpenAPI, false}, {"GET", PathClientDTS, false},
		{"GET", PathAuth, false}, {"OPTIONS", PathAuth, false}, {"GET", "/", false},
	} {
		r := httptest.NewRequest(c.method, c.path, nil)
		assert.Equal(t, c.may, counterMay(r), "%s %s", c.method, c.path)
	}
}
