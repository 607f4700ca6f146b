package backoffice_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/browsertest"
	"kpe-agent/sync/backoffice"
)

// chromium finds Debian's chromium (installed by `make test`). Without it
// the test skips loudly, never under CI.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium is not installed: run `make test` (it installs Debian's chromium)"
	if os.Getenv("CI") != "" {
		t.Fatalf("INTEGRATION FAILED: %s; CI must never skip this test", msg)
	}
	fmt.Fprintf(os.Stderr, "\n!!!!!!!! SKIPPING BROWSER TEST %s: %s !!!!!!!!\n\n", t.Name(), msg)
	t.Skip("SKIPPED LOUDLY: " + msg)
	return ""
}

// dom loads the page in headless Chromium, lets its script run, and
// returns the resulting DOM.
func dom(t *testing.T, bin, u string, flags ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--disable-background-networking", "--user-data-dir=" + t.TempDir(), "--virtual-time-budget=10000"}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, "--dump-dom", u)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.Output()
	require.NoError(t, err, "chromium: %s", out)
	return string(out)
}

// The staff page in real headless Chromium: a valid code verifies and shows
// the record; the same code with one wrong character is called a typo; a
// well-formed code of no record is unknown; English on request.
func TestVerifyPageInChromium(t *testing.T) {
	bin := chromium(t)
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	recs := l.records(3, "t-01")
	l.ingest(recs...)
	srv := httptest.NewServer(asStaff(t, l, l.svc.StaffHandler(backoffice.StaffConfig{})))
	defer srv.Close()
	fmt.Println("INTEGRATION: verify page run in real headless", bin)

	code := codeOf(t, recs[1])
	page := dom(t, bin, srv.URL+"/?code="+url.QueryEscape(code))
	assert.Regexp(t, `id="verdict"[^>]*data-valid="true"`, page)
	assert.Contains(t, page, "Kode SAH")
	assert.Contains(t, page, code)
	assert.Regexp(t, `data-field="service"[^>]*>askes<`, page)
	assert.Regexp(t, `data-field="terminal"[^>]*>t-01<`, page)
	assert.Regexp(t, `data-field="fingerprint"[^>]*>pass<`, page)
	assert.NotContains(t, page, "196608011988031001", "the page shows no NIP")

	page = dom(t, bin, srv.URL+"/?code="+url.QueryEscape(strings.ToLower(typo(code))))
	assert.Regexp(t, `id="verdict"[^>]*data-valid="false"`, page)
	assert.Contains(t, page, "Kode TIDAK SAH")
	assert.Regexp(t, `data-reason="check-symbol"`, page)
	assert.Contains(t, page, "salah ketik")

	unknown := "0000-0000-0000-0000"
	page = dom(t, bin, srv.URL+"/?lang=en&code="+unknown)
	assert.Regexp(t, `data-reason="unknown"`, page)
	assert.Contains(t, page, "Code NOT VALID")
	assert.True(t, regexp.MustCompile(`<html lang="en"`).MatchString(page))

	// a browser set to English gets the page in English (Accept-Language)
	page = dom(t, bin, srv.URL+"/?code="+unknown, "--accept-lang=en-GB,en")
	assert.Contains(t, page, "Code NOT VALID")
	assert.Contains(t, page, "<title>KPE Authentication Code Verification</title>")
}

// The page's words are the catalogue's, in the language the request asks
// for by the language rule.
func TestVerifyPageLanguage(t *testing.T) {
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	h := asStaff(t, l, l.svc.StaffHandler(backoffice.StaffConfig{Hosts: []string{"example.com"}})) // httptest's requests' Host
	get := func(path, accept string) string {
		req := httptest.NewRequest("GET", path, nil)
		if accept != "" {
			req.Header.Set("Accept-Language", accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, 200, rec.Code)
		assert.Equal(t, "Accept-Language", rec.Header().Get("Vary"))
		return rec.Body.String()
	}
	assert.Contains(t, get("/", ""), `<html lang="id">`)
	assert.Contains(t, get("/", "en-US,en;q=0.9"), `<html lang="en">`)
	assert.Contains(t, get("/?lang=id", "en"), `<html lang="id">`)
	page := get("/?lang=en", "")
	assert.Contains(t, page, "<title>KPE Authentication Code Verification</title>")
	// both languages travel with the page, so it switches in place
	assert.Contains(t, page, "Periksa kembali setiap karakter")
	assert.Contains(t, page, "Check every character again")
}

// The page under its policy in a real browser (DevTools protocol): the
// form verifies a typed code, nothing the page needs is refused by the
// policy, an inline script added to the page does not run (the policy
// blocks it and the browser reports it), and the page reached through
// DNS rebinding (a foreign name resolving to the listener) is refused.
func TestVerifyPagePolicyInChromium(t *testing.T) {
	l, recs := staffLab(t)
	srv := httptest.NewServer(asStaff(t, l, l.svc.StaffHandler(backoffice.StaffConfig{})))
	defer srv.Close()
	b := browsertest.Start(t, browsertest.MapHost("rebind.example", strings.TrimPrefix(srv.URL, "http://")))

	b.Navigate(srv.URL + "/?lang=en")
	b.Wait(`document.querySelector("h1").textContent !== ""`, 10*time.Second)
	code := codeOf(t, recs[2])
	b.SetValue("#code", code)
	b.Click("#check")
	b.Wait(`document.getElementById("verdict").dataset.valid === "true"`, 10*time.Second)
	assert.Contains(t, b.Text("#verdict h2"), "Code VALID")
	assert.Equal(t, "t-01", b.Text(`[data-field="terminal"]`))
	// the style sheet applies (a file now, not an inline element)
	var display string
	b.Eval(`getComputedStyle(document.getElementById("verdict")).display`, &display)
	assert.Equal(t, "block", display)
	for _, line := range b.Console() {
		assert.NotContains(t, line, "Content Security Policy", "the page itself violates nothing")
	}

	b.Eval(`(() => {
		const s = document.createElement("script");
		s.textContent = "window.inlineRan = true";
		document.body.append(s);
		return true;
	})()`, nil)
	var ran bool
	b.Eval(`window.inlineRan === true`, &ran)
	assert.False(t, ran, "an inline script ran")
	assert.Eventually(t, func() bool {
		for _, line := range b.Console() {
			if strings.Contains(line, "Content Security Policy") && strings.Contains(line, "inline") {
				return true
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond, "the browser reports the refused inline script: %q", b.Console())

	b.Navigate("http://rebind.example/")
	assert.Contains(t, b.Text("body"), "forbidden-host")

	// beyond the rate limit the page says to wait
	slow := httptest.NewServer(asStaff(t, l, l.svc.StaffHandler(backoffice.StaffConfig{VerifyPerClient: backoffice.Limit{Rate: 0.001, Burst: 1}})))
	defer slow.Close()
	b.Navigate(slow.URL + "/?code=" + url.QueryEscape(code))
	b.Wait(`document.getElementById("verdict").dataset.valid === "true"`, 10*time.Second)
	b.Click("#check")
	b.Wait(`document.querySelector("[data-reason]")?.dataset.reason === "rate-limited"`, 10*time.Second)
	assert.Contains(t, b.Text("#verdict p"), "Wait a moment")
}

// Sign-in in a real browser: the form refuses a wrong password (and says
// so in the page's language), signs in with the right one and lands on
// the page asked for, which verifies a code under the policy; sign-out
// goes back to the form, and the page then asks for sign-in again.
func TestSignInInChromium(t *testing.T) {
	l, recs := staffLab(t)
	addAccount(t, l.svc, "siti", []backoffice.Role{backoffice.RoleVerifier})
	srv := httptest.NewServer(l.svc.StaffHandler(backoffice.StaffConfig{}))
	defer srv.Close()
	b := browsertest.Start(t)

	b.Navigate(srv.URL + "/?lang=en")
	b.Wait(`location.pathname === "/login" && document.getElementById("user") !== null`, 10*time.Second)
	b.SetValue("#user", "siti")
	b.SetValue("#password", "not the password")
	b.Click("#signin")
	b.Wait(`document.getElementById("message") !== null`, 10*time.Second)
	assert.Contains(t, b.Text("#message"), "the user name or password is wrong") // the browser asks for English

	b.SetValue("#user", "siti")
	b.SetValue("#password", testPassword)
	b.Click("#signin")
	b.Wait(`location.pathname === "/" && document.getElementById("code") !== null`, 10*time.Second)
	var search string
	b.Eval(`location.search`, &search)
	assert.Equal(t, "?lang=en", search, "back to the page asked for")
	assert.Equal(t, "siti", b.Text("#account"))
	code := codeOf(t, recs[0])
	b.SetValue("#code", code)
	b.Click("#check")
	b.Wait(`document.getElementById("verdict").dataset.valid === "true"`, 10*time.Second)
	assert.Contains(t, b.Text("#verdict h2"), "Code VALID")
	var cookies string
	b.Eval(`document.cookie`, &cookies)
	assert.NotContains(t, cookies, "kpe_staff", "the session cookie is HttpOnly")
	for _, line := range b.Console() {
		assert.NotContains(t, line, "Content Security Policy", "the pages violate nothing")
	}

	b.Click(`#signout button`)
	b.Wait(`location.pathname === "/login" && document.getElementById("message") !== null`, 10*time.Second)
	b.Navigate(srv.URL + "/")
	b.Wait(`location.pathname === "/login"`, 10*time.Second)
	entries, err := l.svc.AuditLog(context.Background(), backoffice.AuditQuery{Limit: 10})
	require.NoError(t, err)
	var acts []string
	for _, e := range entries {
		acts = append(acts, e.Action+":"+e.Outcome)
	}
	assert.Equal(t, []string{"sign-out:ok", "verify:valid", "sign-in:ok", "sign-in:failed", "account-add:ok"}, acts)
}
