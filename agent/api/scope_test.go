package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	qrcode "github.com/skip2/go-qrcode"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/i18n"
	"kpe-agent/sync/record"
)

// scopeBackend answers every call with success and records what the
// server handed it.
type scopeBackend struct {
	owner  string // the kiosk credential whose view there is ("": any)
	mu     sync.Mutex
	auths  []AuthRequest
	creds  []string // the kiosk credential of each call that takes one
	locs   []Locale
	photos [][]byte // the copies handed out
	// callers are the api.Caller of each renewal call
	callers []string
}

var errNoView = errors.New("no view")

func (b *scopeBackend) Health(loc Locale) Health {
	return Health{Status: "ok", Version: "test", Terminal: "t-01", Readers: 1}
}
func (b *scopeBackend) Readers(loc Locale) []Reader {
	b.mu.Lock()
	b.locs = append(b.locs, loc)
	b.mu.Unlock()
	return []Reader{{Name: "r0", Role: "card", State: StateIdle}}
}
func (b *scopeBackend) CardView(string, Locale) (any, error) {
	return map[string]string{"kind": "kpe"}, nil
}
func (b *scopeBackend) Prefill(string) (Prefill, error) { return Prefill{CardKind: "kpe"}, nil }
func (b *scopeBackend) Authenticate(ctx context.Context, req AuthRequest) (AuthResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.auths = append(b.auths, req)
	b.creds = append(b.creds, KioskCredential(ctx))
	return AuthResult{Code: goodCode, Service: req.Service}, nil
}
func (b *scopeBackend) Cancel(context.Context, string) bool { return true }
func (b *scopeBackend) Queue() (QueueStatus, error)         { return QueueStatus{}, nil }
func (b *scopeBackend) Sync(context.Context, Locale) (SyncResult, error) {
	return SyncResult{}, nil
}
func (b *scopeBackend) Subscribe(uint64) ([]Event, <-chan Event, func()) {
	return []Event{{Seq: 1, Type: EventReader, Reader: "r0", State: "added"}}, make(chan Event), func() {}
}
func (b *scopeBackend) Localize(ev Event, _ Locale) Event { return ev }
func (b *scopeBackend) Language() i18n.Lang               { return i18n.English }
func (b *scopeBackend) ErrorFor(err error, loc Locale) (int, Error) {
	return http.StatusNotFound, Error{Code: "not-available", Message: loc.Lang.T(loc.Audience.Key("not-available"))}
}

// KioskView serves the view of the credential "kiosk-1" only, as the
// daemon keeps it for the credential that authenticated.
func (b *scopeBackend) KioskView(_, cred string) (KioskView, error) {
	b.mu.Lock()
	b.creds = append(b.creds, cred)
	b.mu.Unlock()
	if cred != "" && b.owner != "" && cred != b.owner {
		return KioskView{}, errNoView
	}
	return KioskView{Kind: "kpe", Verified: true, Identity: &KioskIdentity{Name: "Budi"}, Photo: true}, nil
}
func (b *scopeBackend) KioskPhoto(_, cred string) ([]byte, error) {
	if cred != "" && b.owner != "" && cred != b.owner {
		return nil, errNoView
	}
	p := append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, bytes.Repeat([]byte{7}, 60)...)
	b.mu.Lock()
	b.photos = append(b.photos, p)
	b.mu.Unlock()
	return p, nil
}

type metricsStub struct{}

func (metricsStub) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	io.WriteString(w, "kpe_readers 1\n")
}

const (
	testToken  = "scope-token"
	testVerify = "http://127.0.0.1:8080/"
)

// goodCode is a valid authentication code.
var goodCode = record.CodeOf(sha256.Sum256([]byte("kiosk receipt"))).String()

type scopeRig struct {
	b    *scopeBackend
	srv  *httptest.Server
	now  time.Time
	mu   sync.Mutex
	conf ServerConfig
}

func (r *scopeRig) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *scopeRig) advance(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

func newScopeRig(t *testing.T, kiosk KioskConfig) *scopeRig {
	r := &scopeRig{b: &scopeBackend{}, now: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
	r.conf = ServerConfig{Token: []byte(testToken), Heartbeat: time.Hour, Metrics: metricsStub{}, Kiosk: kiosk,
		AllowedOrigins: []string{"http://his.example"}, now: r.clock}
	r.srv = httptest.NewServer(NewHandler(r.b, r.conf))
	t.Cleanup(r.srv.Close)
	return r
}

type answer struct {
	status int
	header http.Header
	body   []byte
	err    Error
}

// do makes a request; hdr are header pairs ("Host" sets the Host).
func (r *scopeRig) do(t *testing.T, method, path, body string, hdr ...string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, r.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := r.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		// the stream stays open: its first event is enough
		buf := make([]byte, 256)
		n, _ := io.ReadAtLeast(resp.Body, buf, 40)
		a.body = buf[:n]
		return a
	}
	a.body, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode >= 400 {
		var eb ErrorBody
		require.NoError(t, json.Unmarshal(a.body, &eb), "%s", a.body)
		a.err = eb.Error
	}
	return a
}

// mint loads the kiosk page and returns its credential cookie.
func (r *scopeRig) mint(t *testing.T) string {
	t.Helper()
	a := r.do(t, "GET", PathKiosk, "")
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == KioskCookie {
			return c.Value
		}
	}
	t.Fatal("no kiosk cookie")
	return ""
}

var enabled = KioskConfig{Enabled: true, IdleTimeout: 60 * time.Second, IdleWarning: 10 * time.Second, VerifyURL: testVerify}

// Every route with each credential: none, the kiosk cookie, a cookie the
// agent never handed out, and the bearer token.
func TestScopeRoutes(t *testing.T) {
	r := newScopeRig(t, enabled)
	bad := strings.Repeat("ab", kioskSecret)
	creds := []struct {
		name string
		hdr  []string
	}{
		{"none", nil},
		{"kiosk", []string{"Cookie", ""}}, // a fresh one for each route: loading the page hands out one more
		{"bad-cookie", []string{"Cookie", KioskCookie + "=" + bad}},
		{"bearer", []string{"Authorization", "Bearer " + testToken}},
	}
	const (
		ok   = 0
		e401 = http.StatusUnauthorized
		e403 = http.StatusForbidden
		e404 = http.StatusNotFound
	)
	kioskAuth := `{"service":"kiosk"}`
	routes := []struct {
		method, path, body string
		want               [4]int // none, kiosk, bad cookie, bearer; ok: 2xx
	}{
		{"GET", PathHealth, "", [4]int{ok, ok, ok, ok}},
		{"GET", PathReaders, "", [4]int{e401, ok, e401, ok}},
		{"GET", PathCard, "", [4]int{e401, e403, e401, ok}},
		{"GET", PathPrefill, "", [4]int{e401, e403, e401, ok}},
		{"POST", PathAuth, kioskAuth, [4]int{e401, ok, e401, ok}},
		{"POST", PathAuth, `{"service":"askes","operator":"clerk-01"}`, [4]int{e401, e403, e401, ok}},
		{"POST", PathCancel, `{"all":true}`, [4]int{e401, ok, e401, ok}},
		{"GET", PathQueue, "", [4]int{e401, e403, e401, ok}},
		{"POST", PathSync, "", [4]int{e401, e403, e401, ok}},
		{"GET", PathEvents, "", [4]int{e401, ok, e401, ok}},
		{"GET", PathMetrics, "", [4]int{e401, e403, e401, ok}},
		{"GET", PathOpenAPI, "", [4]int{ok, e403, ok, ok}},
		{"GET", PathKiosk, "", [4]int{ok, ok, ok, ok}},
		{"GET", "/kiosk", "", [4]int{ok, ok, ok, ok}}, // redirected to the page
		{"GET", PathKioskView, "", [4]int{e401, ok, e401, ok}},
		{"GET", PathKioskPhoto, "", [4]int{e401, ok, e401, ok}},
		{"GET", PathKioskQR + "?code=" + url.QueryEscape(goodCode), "", [4]int{e401, ok, e401, ok}},
		{"GET", PathRenewal, "", [4]int{e401, ok, e401, ok}},
		{"POST", PathRenewalApply, `{}`, [4]int{e401, ok, e401, ok}},
		{"GET", "/v1/no-such-path", "", [4]int{e404, e403, e404, e404}},
		{"POST", PathReaders, "", [4]int{e404, e403, e404, e404}}, // a method not served
		{"GET", "/kiosk/no-such-file", "", [4]int{e404, e404, e404, e404}},
	}
	for _, rt := range routes {
		creds[1].hdr[1] = KioskCookie + "=" + r.mint(t)
		for i, c := range creds {
			a := r.do(t, rt.method, rt.path, rt.body, c.hdr...)
			where := rt.method + " " + rt.path + " " + rt.body + " with " + c.name
			if rt.want[i] == ok {
				assert.Less(t, a.status, 300, "%s: %d %s", where, a.status, a.body)
				continue
			}
			assert.Equal(t, rt.want[i], a.status, "%s: %s", where, a.body)
			switch rt.want[i] {
			case e401:
				assert.Equal(t, CodeUnauthorized, a.err.Code, where)
			case e403:
				assert.Equal(t, CodeForbiddenScope, a.err.Code, where)
				// worded for the card holder, without the technical detail
				assert.Equal(t, i18n.English.T("holder.forbidden-scope"), a.err.Message, where)
			case e404:
				assert.Equal(t, CodeNotFound, a.err.Code, where)
			}
			assert.Equal(t, "no-store", a.header.Get("Cache-Control"), where)
		}
	}

	creds[1].hdr[1] = KioskCookie + "=" + r.mint(t)
	// health: the kiosk credential gets the whole health (its status
	// lights), as the token does; nothing or a bad cookie only the status
	for i, want := range []string{`{"status":"ok"}`, `"terminal":"t-01"`, `{"status":"ok"}`, `"terminal":"t-01"`} {
		a := r.do(t, "GET", PathHealth, "", creds[i].hdr...)
		assert.Contains(t, string(a.body), want, creds[i].name)
	}
}

// The kiosk credential runs the kiosk service only, as the kiosk (no
// clerk), worded for the card holder; its credential goes to the backend.
func TestScopeKioskAuthentication(t *testing.T) {
	r := newScopeRig(t, enabled)
	cookie := KioskCookie + "=" + r.mint(t)
	for _, body := range []string{`{"service":"askes"}`, `{"service":"taspen","operator":"clerk-01"}`, `{"service":""}`, `{"service":"Kiosk"}`} {
		a := r.do(t, "POST", PathAuth, body, "Cookie", cookie)
		assert.Equal(t, http.StatusForbidden, a.status, body)
		assert.Equal(t, CodeForbiddenScope, a.err.Code, body)
		assert.Equal(t, i18n.Indonesian.T("holder.forbidden-scope"), r.do(t, "POST", PathAuth+"?lang=id", body, "Cookie", cookie).err.Message)
	}
	assert.Empty(t, r.b.auths, "a refused service never reaches the workflow")

	// a body that is not an AuthRequest is still a bad request
	a := r.do(t, "POST", PathAuth, `{"service":"kiosk","unknown":1}`, "Cookie", cookie)
	assert.Equal(t, http.StatusBadRequest, a.status)
	assert.Equal(t, i18n.English.T("holder.bad-request"), a.err.Message, "no detail for the holder")

	a = r.do(t, "POST", PathAuth, `{"service":"kiosk","operator":"someone","audience":"clerk","lang":"id"}`, "Cookie", cookie)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	a = r.do(t, "POST", PathAuth+"?audience=clerk", `{"service":"kiosk"}`, "Cookie", cookie)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	a = r.do(t, "POST", PathAuth, `{"service":"kiosk","operator":"clerk-01"}`, "Authorization", "Bearer "+testToken)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	require.Len(t, r.b.auths, 3)
	for _, req := range r.b.auths[:2] {
		assert.Equal(t, ServiceKiosk, req.Service)
		assert.Equal(t, "kiosk", req.Operator, "recorded as the kiosk")
		assert.Equal(t, string(i18n.Holder), req.Audience, "forced to the holder")
	}
	assert.Equal(t, "id", r.b.auths[0].Lang)
	assert.Equal(t, []string{"kiosk-1", "kiosk-1", ""}, r.b.creds)
	assert.Equal(t, "clerk-01", r.b.auths[2].Operator, "the token's request as it came")
	assert.Equal(t, string(i18n.Clerk), r.b.auths[2].Audience)

	// every other call of the kiosk is worded for the holder too
	r.do(t, "GET", PathReaders+"?audience=clerk", "", "Cookie", cookie)
	require.NotEmpty(t, r.b.locs)
	assert.Equal(t, i18n.Holder, r.b.locs[len(r.b.locs)-1].Audience)
}

// The view, the photo and the QR code: the requester's credential goes
// to the backend, which serves only the view of the credential that
// authenticated; every answer is no-store and not embeddable elsewhere.
func TestScopeSelfService(t *testing.T) {
	r := newScopeRig(t, enabled)
	r.b.owner = "kiosk-1"
	first := KioskCookie + "=" + r.mint(t)
	second := KioskCookie + "=" + r.mint(t)

	a := r.do(t, "GET", PathKioskView+"?reader=r0", "", "Cookie", first)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	assert.JSONEq(t, `{"kind":"kpe","verified":true,"identity":{"name":"Budi"},"photo":true}`, string(a.body))
	assert.Equal(t, "same-origin", a.header.Get("Cross-Origin-Resource-Policy"))
	assert.Equal(t, "no-store", a.header.Get("Cache-Control"))

	// another kiosk credential cannot read that view
	a = r.do(t, "GET", PathKioskView+"?reader=r0", "", "Cookie", second)
	assert.Equal(t, http.StatusNotFound, a.status)
	assert.Equal(t, "not-available", a.err.Code)
	a = r.do(t, "GET", PathKioskPhoto+"?reader=r0", "", "Cookie", second)
	assert.Equal(t, http.StatusNotFound, a.status)
	assert.Equal(t, []string{"kiosk-1", "kiosk-2"}, r.b.creds)

	a = r.do(t, "GET", PathKioskPhoto+"?reader=r0", "", "Cookie", first)
	require.Equal(t, http.StatusOK, a.status)
	assert.Equal(t, "image/jpeg", a.header.Get("Content-Type"))
	assert.Equal(t, "no-store", a.header.Get("Cache-Control"))
	assert.Equal(t, "same-origin", a.header.Get("Cross-Origin-Resource-Policy"))
	assert.Equal(t, []byte{0xFF, 0xD8, 0xFF, 0xE0}, a.body[:4])
	require.Len(t, r.b.photos, 1)
	assert.Equal(t, make([]byte, 64), r.b.photos[0], "the copy handed out is cleared once sent")

	// the QR code: <verify_url>?code=<the code, canonical>
	a = r.do(t, "GET", PathKioskQR+"?code="+url.QueryEscape(strings.ToLower(strings.ReplaceAll(goodCode, "-", " "))), "", "Cookie", first)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	assert.Equal(t, "image/png", a.header.Get("Content-Type"))
	assert.Equal(t, "no-store", a.header.Get("Cache-Control"))
	img, err := png.Decode(bytes.NewReader(a.body))
	require.NoError(t, err)
	assert.Equal(t, qrSize, img.Bounds().Dx())
	assert.Equal(t, qrSize, img.Bounds().Dy())
	want, err := qrcode.Encode(testVerify+"?code="+url.QueryEscape(goodCode), qrcode.Medium, qrSize)
	require.NoError(t, err)
	assert.Equal(t, want, a.body, "the QR code of the verify page with the code")
	mistyped := []byte(goodCode)
	mistyped[0] ^= 1
	for _, bad := range []string{"", string(mistyped), goodCode[:4], goodCode + "-0000", "Ä" + goodCode[1:]} {
		a = r.do(t, "GET", PathKioskQR+"?code="+url.QueryEscape(bad), "", "Authorization", "Bearer "+testToken)
		assert.Equal(t, http.StatusBadRequest, a.status, bad)
		assert.Equal(t, CodeBadRequest, a.err.Code, bad)
	}

	// no verify_url: no QR code
	noQR := enabled
	noQR.VerifyURL = ""
	r2 := newScopeRig(t, noQR)
	a = r2.do(t, "GET", PathKioskQR+"?code="+url.QueryEscape(goodCode), "", "Cookie", KioskCookie+"="+r2.mint(t))
	assert.Equal(t, http.StatusNotFound, a.status)
	assert.Equal(t, CodeNotFound, a.err.Code)
}

// The kiosk page: a fresh credential each time, in a cookie the page's
// scripts cannot read, and headers that keep the page to itself.
func TestKioskPage(t *testing.T) {
	r := newScopeRig(t, enabled)
	a := r.do(t, "GET", PathKiosk, "")
	require.Equal(t, http.StatusOK, a.status)
	assert.Equal(t, "text/html; charset=utf-8", a.header.Get("Content-Type"))
	assert.Equal(t, "no-store", a.header.Get("Cache-Control"))
	assert.Equal(t, "DENY", a.header.Get("X-Frame-Options"))
	assert.Equal(t, "no-referrer", a.header.Get("Referrer-Policy"))
	csp := a.header.Get("Content-Security-Policy")
	assert.Contains(t, csp, "script-src 'self';")
	assert.Contains(t, csp, "default-src 'none';")
	assert.Contains(t, csp, "frame-ancestors 'none'")
	assert.NotContains(t, csp, "unsafe")
	page := string(a.body)
	assert.Contains(t, page, "<h2 id=\"attract-title\" data-t=\"attract.title\">Masukkan KPE Anda</h2>", "first words in Bahasa Indonesia")
	assert.Contains(t, page, `data-idle-timeout="60"`)
	assert.Contains(t, page, `data-idle-warning="10"`)
	assert.Contains(t, page, `data-card-wait="30"`, "the default wait for a card")
	assert.Contains(t, page, `data-receipt-qr="true"`)
	assert.NotContains(t, page, "<script>", "no inline script")
	assert.NotContains(t, page, "style=", "no inline style")
	assert.Contains(t, page, `<script type="module" src="/kiosk/kiosk.js"></script>`)
	assert.Contains(t, page, `<link rel="stylesheet" href="/kiosk/kiosk.css">`)
	// the page's words: the catalogue's kiosk entries, both languages, as
	// a data block (not run: the CSP allows no inline script)
	m := regexp.MustCompile(`(?s)<script type="application/json" id="kiosk-words">(.*?)</script>`).FindStringSubmatch(page)
	require.Len(t, m, 2, "the words' data block")
	var words map[string]map[string]string
	require.NoError(t, json.Unmarshal([]byte(m[1]), &words))
	for _, l := range i18n.Langs {
		assert.Equal(t, i18n.WithPrefix("kiosk.", l), words[string(l)], "words in %s", l)
	}
	assert.Equal(t, "Insert your KPE", words["en"]["attract.title"])

	set := a.header.Values("Set-Cookie")
	require.Len(t, set, 1)
	assert.Regexp(t, regexp.MustCompile(`^kpe_kiosk=[0-9a-f]{64}; Path=/; HttpOnly; SameSite=Strict$`), set[0])
	assert.NotEqual(t, r.mint(t), r.mint(t), "a fresh credential for each load")

	// another origin's page loading the kiosk page (in a frame, as an
	// image) gets nothing, and pushes no credential out
	for _, site := range []string{"same-site", "cross-site"} {
		a = r.do(t, "GET", PathKiosk, "", "Sec-Fetch-Site", site)
		assert.Equal(t, http.StatusForbidden, a.status, site)
		assert.Equal(t, CodeForbiddenOrigin, a.err.Code, site)
		assert.Empty(t, a.header.Values("Set-Cookie"), site)
	}
	for _, site := range []string{"none", "same-origin"} {
		a = r.do(t, "GET", PathKiosk, "", "Sec-Fetch-Site", site)
		assert.Equal(t, http.StatusOK, a.status, site)
	}

	// HEAD: the headers and a credential, no body
	a = r.do(t, "HEAD", PathKiosk, "")
	assert.Equal(t, http.StatusOK, a.status)
	assert.Empty(t, a.body)

	// the wait for a card follows session.max_wait, at most a minute
	for _, c := range []struct {
		wait time.Duration
		want string
	}{{10 * time.Second, "10"}, {5 * time.Minute, "60"}, {0, "30"}} {
		k := enabled
		k.CardWait = c.wait
		a = newScopeRig(t, k).do(t, "GET", PathKiosk, "")
		assert.Contains(t, string(a.body), `data-card-wait="`+c.want+`"`, "%v", c.wait)
	}
}

// The page's script and stylesheet: their types, never cached, for the
// agent's own pages only, with or without a credential.
func TestKioskFiles(t *testing.T) {
	r := newScopeRig(t, enabled)
	for path, typ := range map[string]string{
		PathKiosk + "kiosk.js":  "text/javascript; charset=utf-8",
		PathKiosk + "kiosk.css": "text/css; charset=utf-8",
	} {
		for _, hdr := range [][]string{nil, {"Cookie", KioskCookie + "=" + r.mint(t)}, {"Authorization", "Bearer " + testToken}} {
			a := r.do(t, "GET", path, "", hdr...)
			require.Equal(t, http.StatusOK, a.status, "%s %v", path, hdr)
			assert.Equal(t, typ, a.header.Get("Content-Type"), path)
			assert.Equal(t, "no-store", a.header.Get("Cache-Control"), path)
			assert.Equal(t, "nosniff", a.header.Get("X-Content-Type-Options"), path)
			assert.Equal(t, "same-origin", a.header.Get("Cross-Origin-Resource-Policy"), path)
			assert.Empty(t, a.header.Values("Set-Cookie"), "only the page hands out a credential")
			assert.NotEmpty(t, a.body)
		}
	}
	js := string(r.do(t, "GET", PathKiosk+"kiosk.js", "").body)
	assert.Contains(t, js, `from "/v1/client.js"`, "the page talks to the agent through the client")
	assert.NotContains(t, js, "localStorage")
	assert.NotContains(t, js, "sessionStorage")
	assert.NotContains(t, js, "indexedDB")
	assert.NotContains(t, js, "innerHTML", "the holder's data is written as text")
	css := string(r.do(t, "GET", PathKiosk+"kiosk.css", "").body)
	assert.Contains(t, css, "@media print")
	assert.Contains(t, css, "80mm")

	// another origin's page gets nothing
	a := r.do(t, "GET", PathKiosk+"kiosk.js", "", "Origin", "http://evil.example")
	assert.Equal(t, http.StatusForbidden, a.status)
	// nothing else is served there, and nothing with the kiosk off
	for _, p := range []string{PathKiosk + "index.html", PathKiosk + "kiosk.go", PathKiosk + "Kiosk.js"} {
		a = r.do(t, "GET", p, "")
		assert.Equal(t, http.StatusNotFound, a.status, p)
	}
	off := newScopeRig(t, KioskConfig{})
	a = off.do(t, "GET", PathKiosk+"kiosk.js", "")
	assert.Equal(t, http.StatusNotFound, a.status)
}

// Cookies the agent does not honour: unknown, expired, pushed out by
// newer ones, from a kiosk that is off, or beside an Authorization header.
func TestScopeRefusedCookies(t *testing.T) {
	r := newScopeRig(t, enabled)
	refused := func(cookie string, hdr ...string) {
		t.Helper()
		a := r.do(t, "GET", PathReaders, "", append([]string{"Cookie", KioskCookie + "=" + cookie}, hdr...)...)
		assert.Equal(t, http.StatusUnauthorized, a.status, "%s", a.body)
		assert.Equal(t, CodeUnauthorized, a.err.Code)
	}
	accepted := func(cookie string) {
		t.Helper()
		a := r.do(t, "GET", PathReaders, "", "Cookie", KioskCookie+"="+cookie)
		assert.Equal(t, http.StatusOK, a.status, "%s", a.body)
	}
	for _, c := range []string{"", "x", strings.Repeat("0", 64), strings.Repeat("0", 63), strings.Repeat("ab", 40)} {
		refused(c)
	}

	// expired after 24 hours
	c := r.mint(t)
	r.advance(kioskLifetime - time.Second)
	accepted(c)
	r.advance(time.Second)
	refused(c)

	// the last eight are kept
	first := r.mint(t)
	for range kioskKeep - 1 {
		r.mint(t)
	}
	accepted(first)
	r.mint(t)
	refused(first)

	// an Authorization header decides by itself: a wrong token is refused
	// whatever the cookie
	c = r.mint(t)
	refused(c, "Authorization", "Bearer wrong")
	a := r.do(t, "GET", PathQueue, "", "Cookie", KioskCookie+"="+c, "Authorization", "Bearer "+testToken)
	assert.Equal(t, http.StatusOK, a.status, "the token's scope, not the cookie's")

	// a request the browser marks as from another page of this site
	// (another port of this machine) does not carry the kiosk's scope
	refused(c, "Sec-Fetch-Site", "same-site")
	refused(c, "Sec-Fetch-Site", "cross-site")
	// nor one from another origin, even an allowed one (it may call with
	// the token only), also from a browser that sends no Fetch Metadata
	refused(c, "Origin", "http://his.example")
	refused(c, "Origin", "http://his.example", "Sec-Fetch-Site", "same-origin")
	a = r.do(t, "POST", PathCancel, `{"all":true}`, "Cookie", KioskCookie+"="+c, "Origin", "http://his.example", "Content-Type", "text/plain")
	assert.Equal(t, http.StatusUnauthorized, a.status, "a text/plain POST from an allowed origin with the cookie: %s", a.body)
	a = r.do(t, "GET", PathReaders, "", "Cookie", KioskCookie+"="+c, "Sec-Fetch-Site", "same-origin")
	assert.Equal(t, http.StatusOK, a.status)

	// the kiosk off: no page, and no cookie counts (even one an earlier
	// run handed out)
	off := newScopeRig(t, KioskConfig{Enabled: false, VerifyURL: testVerify})
	a = off.do(t, "GET", PathKiosk, "")
	assert.Equal(t, http.StatusNotFound, a.status)
	assert.Equal(t, CodeNotFound, a.err.Code)
	assert.Empty(t, a.header.Values("Set-Cookie"))
	a = off.do(t, "GET", PathReaders, "", "Cookie", KioskCookie+"="+c)
	assert.Equal(t, http.StatusUnauthorized, a.status)
	a = off.do(t, "POST", PathAuth, `{"service":"kiosk"}`, "Cookie", KioskCookie+"="+c)
	assert.Equal(t, http.StatusUnauthorized, a.status)
}

// The Host and Origin checks come before the credential: a page of
// another origin, or one reached through DNS rebinding, gets nothing
// with the kiosk's cookie; the kiosk page's own origin is accepted.
func TestScopeHostAndOrigin(t *testing.T) {
	r := newScopeRig(t, enabled)
	cookie := KioskCookie + "=" + r.mint(t)
	for _, p := range []struct{ method, path, body string }{
		{"GET", PathReaders, ""}, {"POST", PathAuth, `{"service":"kiosk"}`}, {"GET", PathKioskView, ""},
		{"GET", PathKioskPhoto, ""}, {"GET", PathKiosk, ""},
	} {
		a := r.do(t, p.method, p.path, p.body, "Cookie", cookie, "Origin", "http://evil.example")
		assert.Equal(t, http.StatusForbidden, a.status, p.path)
		assert.Equal(t, CodeForbiddenOrigin, a.err.Code, p.path)
		a = r.do(t, p.method, p.path, p.body, "Cookie", cookie, "Origin", "http://127.0.0.1:1")
		assert.Equal(t, CodeForbiddenOrigin, a.err.Code, "another port is another origin: %s", p.path)
		a = r.do(t, p.method, p.path, p.body, "Cookie", cookie, "Host", "evil.example")
		assert.Equal(t, http.StatusForbidden, a.status, p.path)
		assert.Equal(t, CodeForbiddenHost, a.err.Code, p.path)
		assert.Empty(t, a.header.Values("Set-Cookie"), p.path)
	}
	assert.Empty(t, r.b.auths)

	// the page's own origin: its POSTs carry it
	a := r.do(t, "POST", PathAuth, `{"service":"kiosk"}`, "Cookie", cookie, "Origin", r.srv.URL)
	assert.Equal(t, http.StatusOK, a.status, "%s", a.body)
	assert.Empty(t, a.header.Get("Access-Control-Allow-Origin"), "same origin: no CORS")
	// an allowed origin's page does not get the kiosk's scope from the
	// cookie: it may call with the token only
	a = r.do(t, "GET", PathQueue, "", "Cookie", cookie, "Origin", "http://his.example")
	assert.Equal(t, http.StatusUnauthorized, a.status)
	assert.Equal(t, CodeUnauthorized, a.err.Code)
}

// The calls of the kiosk's scope, by method and path.
func TestKioskMay(t *testing.T) {
	for _, c := range []struct {
		method, path string
		may          bool
	}{
		{"GET", PathHealth, true}, {"HEAD", PathHealth, true}, {"GET", PathReaders, true}, {"GET", PathEvents, true},
		{"POST", PathAuth, true}, {"POST", PathCancel, true}, {"POST", "/v1/prompt", true},
		{"GET", PathKioskView, true}, {"GET", PathKioskPhoto, true}, {"GET", PathKioskQR, true},
		{"GET", "/v1/client.js", true}, {"GET", PathKiosk, true}, {"GET", "/kiosk", true}, {"GET", "/kiosk/app.css", true},
		{"GET", PathAuth, false}, {"POST", PathReaders, false}, {"POST", PathKiosk, false}, {"GET", PathCard, false},
		{"GET", PathPrefill, false}, {"GET", PathQueue, false}, {"POST", PathSync, false}, {"GET", PathMetrics, false},
		{"GET", PathOpenAPI, false}, {"GET", "/v1/client.d.ts", false}, {"GET", "/v1/health/", false},
		{"GET", "/kioskx", false}, {"OPTIONS", PathAuth, false}, {"GET", "/", false},
	} {
		r := httptest.NewRequest(c.method, c.path, nil)
		assert.Equal(t, c.may, kioskMay(r), "%s %s", c.method, c.path)
	}
}

// The credential store on its own: the secret is not kept, only its hash.
func TestKioskCredentials(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := newKioskCredentials(func() time.Time { return now })
	s := k.mint()
	assert.Regexp(t, `^[0-9a-f]{64}$`, s)
	id, ok := k.check(s)
	assert.True(t, ok)
	assert.Equal(t, "kiosk-1", id)
	_, ok = k.check(strings.ToUpper(s))
	assert.False(t, ok, "the exact value only")
	for _, c := range k.list {
		assert.NotContains(t, string(c.hash[:]), s)
	}
	s2 := k.mint()
	id, _ = k.check(s2)
	assert.Equal(t, "kiosk-2", id)
}

func (b *scopeBackend) AnswerPrompt(context.Context, PromptRequest) bool { return true }

func (b *scopeBackend) CodesToday() (TodayCodes, error) {
	return TodayCodes{Date: "2026-03-02", Codes: []TodayCode{{Code: goodCode, Service: "askes",
		Time: time.Date(2026, 3, 2, 9, 15, 0, 0, time.FixedZone("WIB", 7*3600)), State: CodeQueued}}}, nil
}

// The renewal (RenewalBackend): each call records the caller (api.Caller)
// it was made for.
func (b *scopeBackend) RenewalView(ctx context.Context, reader string, loc Locale) (RenewalView, error) {
	b.noteCaller(ctx)
	return RenewalView{Reader: reader, State: RenewalAvailable, New: []RenewalField{{Group: 2, Key: "employment.pangkat", Label: "Pangkat", Value: "III/b", Changed: true}}}, nil
}
func (b *scopeBackend) RenewalCheck(ctx context.Context, reader string, loc Locale) (RenewalView, error) {
	b.noteCaller(ctx)
	return RenewalView{Reader: reader, State: RenewalNone, Reason: "none"}, nil
}
func (b *scopeBackend) RenewalApply(ctx context.Context, reader string, loc Locale) (RenewalView, error) {
	b.noteCaller(ctx)
	return RenewalView{Reader: reader, State: RenewalDone, Code: goodCode}, nil
}
func (b *scopeBackend) RenewalDecline(ctx context.Context, reader string) error {
	b.noteCaller(ctx)
	return nil
}

func (b *scopeBackend) noteCaller(ctx context.Context) {
	b.mu.Lock()
	b.callers = append(b.callers, Caller(ctx))
	b.mu.Unlock()
}

// The renewal routes: scope kiosk may call them (with its own credential
// handed to the daemon), nothing without a credential; every answer is
// no-store and not embeddable by another origin.
func TestScopeRenewal(t *testing.T) {
	r := newScopeRig(t, enabled)
	kiosk := KioskCookie + "=" + r.mint(t)
	for _, c := range []struct{ method, path, body string }{
		{"GET", PathRenewal + "?reader=r0", ""},
		{"POST", PathRenewalCheck, `{"reader":"r0"}`},
		{"POST", PathRenewalApply, `{"reader":"r0"}`},
		{"POST", PathRenewalDecline, `{"reader":"r0"}`},
	} {
		where := c.method + " " + c.path
		a := r.do(t, c.method, c.path, c.body)
		assert.Equal(t, http.StatusUnauthorized, a.status, where)
		r.b.mu.Lock()
		r.b.callers = nil
		r.b.mu.Unlock()
		a = r.do(t, c.method, c.path, c.body, "Cookie", kiosk)
		assert.Less(t, a.status, 300, "%s: %s", where, a.body)
		assert.Equal(t, "no-store", a.header.Get("Cache-Control"), where)
		if a.status == http.StatusOK {
			assert.Equal(t, "same-origin", a.header.Get("Cross-Origin-Resource-Policy"), where)
			var v RenewalView
			require.NoError(t, json.Unmarshal(a.body, &v), where)
			assert.Equal(t, "r0", v.Reader, where)
		}
		r.b.mu.Lock()
		assert.Len(t, r.b.callers, 1, where)
		if len(r.b.callers) == 1 {
			assert.True(t, strings.HasPrefix(r.b.callers[0], "kiosk-"), "%s: the kiosk's credential reaches the daemon: %q", where, r.b.callers[0])
		}
		r.b.mu.Unlock()
		a = r.do(t, c.method, c.path, c.body, "Authorization", "Bearer "+testToken)
		assert.Less(t, a.status, 300, "%s with the token: %s", where, a.body)
	}
	// a strict body
	a := r.do(t, "POST", PathRenewalApply, `{"reader":"r0","x":1}`, "Cookie", kiosk)
	assert.Equal(t, http.StatusBadRequest, a.status)
}
