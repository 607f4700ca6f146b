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
	srv := httptest.NewServer(l.svc.StaffHandler(nil, time.UTC))
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
	h := l.svc.StaffHandler(nil, time.UTC)
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
