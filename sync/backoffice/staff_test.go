package backoffice_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/wire"
)

// staffLab is a bbolt back office with three records of terminal t-01.
func staffLab(t *testing.T) (*lab, [][]byte) {
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	l := newLab(t, st)
	recs := l.records(3, "t-01")
	l.ingest(recs...)
	return l, recs
}

// staffPaths are the staff listener's answers: the page, its files and
// every API path, each with the status it gives when the Host is right.
func staffPaths(code string) map[string]int {
	return map[string]int{
		"/":                                  200,
		"/?lang=en&code=" + code:             200,
		wire.PathVerify + code:               200,
		wire.PathTerminal + "t-01":           200,
		wire.PathTerminal + "t-99":           404,
		"/v1/alarms":                         200,
		wire.PathReport + "?semester=2026-1": 200,
		wire.PathReport + "?semester=bad":    400,
		wire.PathHealth:                      200,
	}
}

type answer struct {
	status int
	header http.Header
	body   string
}

// get asks h for path with the given Host header from the client address
// remote ("" keeps httptest's).
func get(h http.Handler, host, remote, path string) answer {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host = host
	if remote != "" {
		req.RemoteAddr = remote
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return answer{rec.Code, rec.Result().Header, rec.Body.String()}
}

// DNS rebinding: a page of evil.example whose name the attacker then
// points at the staff listener reads it with Host: evil.example. Every
// answer is refused with a problem and nothing of the page or the data;
// the loopback names still work. Over a real connection too.
func TestStaffRefusesForeignHost(t *testing.T) {
	l, recs := staffLab(t)
	h := asStaff(t, l, l.svc.StaffHandler(backoffice.StaffConfig{}))
	code := codeOf(t, recs[0])
	for path, want := range staffPaths(code) {
		for _, host := range []string{"evil.example", "evil.example:8080", "EVIL.example.", "", "127.0.0.1.evil.example", "localhost.evil.example:8080"} {
			a := get(h, host, "", path)
			assert.Equal(t, http.StatusForbidden, a.status, "Host %q %s: %s", host, path, a.body)
			var p wire.Problem
			if assert.NoError(t, json.Unmarshal([]byte(a.body), &p), "Host %q %s: a problem body", host, path) {
				assert.Equal(t, "forbidden-host", p.Error)
			}
			assert.Equal(t, "application/json", a.header.Get("Content-Type"))
			assert.NotContains(t, a.body, "<html", path)
			assert.NotContains(t, a.body, "alarms", path)
			assert.NotContains(t, a.body, "t-01", path)
		}
		for _, host := range []string{"127.0.0.1:8080", "localhost:8080", "LOCALHOST.", "[::1]:8080", "127.0.0.1"} {
			a := get(h, host, "", path)
			assert.Equal(t, want, a.status, "Host %q %s: %s", host, path, a.body)
		}
	}

	// the configured names, besides the loopback ones
	h = asStaff(t, l, l.svc.StaffHandler(backoffice.StaffConfig{Hosts: []string{"BO.example.go.id", "10.0.0.5:8080", "[2001:db8::5]"}}))
	for host, want := range map[string]int{"bo.example.go.id": 200, "bo.example.go.id.:443": 200, "10.0.0.5:9999": 200, "[2001:db8::5]:8080": 200,
		"localhost:8080": 200, "evil.example": 403, "10.0.0.6": 403, "example.go.id": 403, "bo.example.go.id.evil.example": 403} {
		a := get(h, host, "", "/v1/alarms")
		assert.Equal(t, want, a.status, "Host %q: %s", host, a.body)
	}

	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, path := range []string{"/", "/v1/alarms", wire.PathReport + "?semester=2026-1"} {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		req.Host = "evil.example"
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, "%s: %s", path, body)
		assert.Contains(t, string(body), `"forbidden-host"`)
	}
}

// Every staff answer carries the security headers; the page's policy
// allows no inline script or style, and the page has none.
func TestStaffSecurityHeaders(t *testing.T) {
	l, recs := staffLab(t)
	h := asStaff(t, l, l.svc.StaffHandler(backoffice.StaffConfig{}))
	code := codeOf(t, recs[0])
	paths := staffPaths(code)
	paths["/assets/verify.js"] = 200
	paths["/assets/verify.css"] = 200
	paths["/no-such-page"] = 404
	for path, want := range paths {
		a := get(h, "127.0.0.1:8080", "", path)
		require.Equal(t, want, a.status, "%s: %s", path, a.body)
		hd := a.header
		assert.Equal(t, "nosniff", hd.Get("X-Content-Type-Options"), path)
		assert.Equal(t, "DENY", hd.Get("X-Frame-Options"), path)
		assert.Equal(t, "no-referrer", hd.Get("Referrer-Policy"), path)
		assert.Equal(t, "no-store", hd.Get("Cache-Control"), path)
		assert.Equal(t, "same-origin", hd.Get("Cross-Origin-Resource-Policy"), path)
		csp := hd.Get("Content-Security-Policy")
		assert.Contains(t, csp, "frame-ancestors 'none'", path)
		assert.Contains(t, csp, "script-src 'self'", path)
		assert.Contains(t, csp, "default-src 'none'", path)
		assert.NotContains(t, csp, "unsafe-inline", path)
		assert.NotContains(t, csp, "unsafe-eval", path)
		assert.NotEmpty(t, hd.Get("Content-Type"), path)
	}

	page := get(h, "localhost:8080", "", "/").body
	// scripts only from files, besides the JSON data block of the words
	for _, tag := range regexp.MustCompile(`(?is)<script\b[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(tag, `type="application/json"`) {
			assert.Regexp(t, `src="/assets/[a-z]+\.js"`, tag)
		}
	}
	assert.NotRegexp(t, `(?is)<style\b`, page, "no inline style element")
	assert.NotRegexp(t, `(?i)\sstyle=`, page, "no style attribute")
	assert.NotRegexp(t, `(?i)\son[a-z]+=`, page, "no event handler attribute")
	assert.Contains(t, page, `<link rel="stylesheet" href="/assets/verify.css">`)

	js := get(h, "localhost", "", "/assets/verify.js")
	assert.Equal(t, "text/javascript; charset=utf-8", js.header.Get("Content-Type"))
	assert.Contains(t, js.body, `fetch("/v1/verify/"`)
	css := get(h, "localhost", "", "/assets/verify.css")
	assert.Equal(t, "text/css; charset=utf-8", css.header.Get("Content-Type"))
	assert.Contains(t, css.body, "#verdict")
}

// Verification is rate limited per client address and in total: beyond
// the burst a client gets 429 with Retry-After and a problem; another
// client is not held up by the first.
func TestStaffVerifyRateLimit(t *testing.T) {
	l, recs := staffLab(t)
	h := asStaff(t, l, l.svc.StaffHandler(backoffice.StaffConfig{}))
	code := codeOf(t, recs[0])
	limited := -1
	var a answer
	for i := range 200 {
		a = get(h, "127.0.0.1:8080", "192.0.2.7:40000", wire.PathVerify+code)
		if a.status != http.StatusOK {
			limited = i
			break
		}
	}
	require.Positive(t, limited, "no 429 within 200 verifications from one address")
	assert.Equal(t, http.StatusTooManyRequests, a.status, a.body)
	assert.Regexp(t, `^[1-9][0-9]*$`, a.header.Get("Retry-After"))
	var p wire.Problem
	require.NoError(t, json.Unmarshal([]byte(a.body), &p))
	assert.Equal(t, "rate-limited", p.Error)
	// another address still verifies
	b := get(h, "127.0.0.1:8080", "198.51.100.9:40000", wire.PathVerify+code)
	assert.Equal(t, http.StatusOK, b.status, b.body)
	fmt.Println("verify: one address limited after", limited, "requests")

	// configured: 3 per client, 5 in total, refilling slowly (one every
	// 1000 s): the fourth of a client is refused, and once five passed
	// every client is
	h = asStaff(t, l, l.svc.StaffHandler(backoffice.StaffConfig{VerifyPerClient: backoffice.Limit{Rate: 0.001, Burst: 3}, VerifyTotal: backoffice.Limit{Rate: 0.001, Burst: 5}}))
	verify := func(remote string) answer { return get(h, "localhost", remote, wire.PathVerify+code) }
	for range 3 {
		assert.Equal(t, 200, verify("192.0.2.1:1000").status)
	}
	a = verify("192.0.2.1:1001")
	assert.Equal(t, 429, a.status)
	assert.Equal(t, "1000", a.header.Get("Retry-After"))
	assert.Equal(t, 200, verify("[2001:db8:1:2::1]:1000").status)
	assert.Equal(t, 200, verify("[2001:db8:1:2::99]:1000").status, "the same /64")
	a = verify("[2001:db8:1:2:ffff::1]:1000")
	assert.Equal(t, 429, a.status, "the total limit: %s", a.body)
	a = verify("198.51.100.1:1000")
	assert.Equal(t, 429, a.status, "the total limit: %s", a.body)
	assert.Contains(t, a.body, `"rate-limited"`)
	// other answers are not limited
	assert.Equal(t, 200, get(h, "localhost", "192.0.2.1:1000", "/v1/alarms").status)
	assert.Equal(t, 200, get(h, "localhost", "192.0.2.1:1000", "/").status)
}

// The host list of a listener: its own address, or the machine's for a
// listener on every address, and the names given; a name must be one.
func TestStaffHosts(t *testing.T) {
	h, err := backoffice.StaffHosts("127.0.0.1:8080", nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1"}, h)
	h, err = backoffice.StaffHosts("10.1.2.3:8080", []string{"BO.Example.go.id.", "bo2.example:443"})
	require.NoError(t, err)
	assert.Equal(t, []string{"bo.example.go.id", "bo2.example", "10.1.2.3"}, h)
	h, err = backoffice.StaffHosts("[::1]:8080", nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"::1"}, h)
	for _, any := range []string{":8080", "0.0.0.0:8080", "[::]:8080"} {
		h, err = backoffice.StaffHosts(any, []string{"bo.example"})
		require.NoError(t, err)
		assert.Contains(t, h, "bo.example", any)
		assert.Contains(t, h, "127.0.0.1", any, "the machine's addresses")
		assert.NotContains(t, h, "0.0.0.0", any)
		assert.NotContains(t, h, "::", any)
	}
	for _, bad := range []string{"", "https://bo.example", "bo.example/path", "user@bo.example", "*.example", ":8080"} {
		_, err := backoffice.StaffHosts("127.0.0.1:8080", []string{bad})
		assert.ErrorContains(t, err, "want a host name or IP address", "%q", bad)
	}
	_, err = backoffice.StaffHosts("no-port", nil)
	assert.Error(t, err)
}
