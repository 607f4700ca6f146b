package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
)

// loketAgent is the agent's own API handler with the counter screen on
// (or off): kpectl loket asks it for a link, and the link opens there.
func loketAgent(t *testing.T, on bool) string {
	t.Helper()
	srv := httptest.NewServer(api.NewHandler(nil, api.ServerConfig{Token: []byte(agentToken), Loket: api.LoketConfig{Enabled: on}}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// stubOpen replaces the browser opener and the root check for a test.
func stubOpen(t *testing.T, root bool, fail error) *[]string {
	t.Helper()
	var mu sync.Mutex
	var opened []string
	saveOpen, saveRoot := openURL, asRoot
	t.Cleanup(func() { openURL, asRoot = saveOpen, saveRoot })
	openURL = func(u string) error {
		mu.Lock()
		defer mu.Unlock()
		if fail != nil {
			return fail
		}
		opened = append(opened, u)
		return nil
	}
	asRoot = func() bool { return root }
	return &opened
}

var loginLink = regexp.MustCompile(`^http://127\.0\.0\.1:[0-9]+/loket/\?login=[0-9a-f]{64}$`)

// follow opens a link as the clerk's browser does and returns the
// status and the counter cookie it set.
func follow(t *testing.T, link string) (int, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(link)
	require.NoError(t, err)
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == api.LoketCookie {
			return resp.StatusCode, ck.Value
		}
	}
	return resp.StatusCode, ""
}

func TestLoket(t *testing.T) {
	base := loketAgent(t, true)
	args := func(a ...string) []string {
		return append([]string{"--agent", base, "--token-file", tokenFile(t, agentToken)}, a...)
	}

	opened := stubOpen(t, false, nil)
	out, errOut, code := runCLI(t, "", args("--lang", "en", "loket")...)
	require.Equal(t, 0, code, errOut)
	link := strings.TrimSpace(out)
	assert.Regexp(t, loginLink, link, "the link alone on standard output")
	assert.Contains(t, errOut, "Login link to the counter screen (valid for 60 seconds, once;")
	assert.Empty(t, *opened, "no --open: nothing opened")
	status, cookie := follow(t, link)
	assert.Equal(t, http.StatusSeeOther, status)
	assert.Regexp(t, `^[0-9a-f]{64}$`, cookie, "the link logs the browser in")
	status, cookie = follow(t, link)
	assert.Equal(t, http.StatusForbidden, status, "once")
	assert.Empty(t, cookie)

	// --open: the desktop's browser gets the link
	out, errOut, code = runCLI(t, "", args("loket", "--open")...)
	require.Equal(t, 0, code, errOut)
	require.Len(t, *opened, 1)
	assert.Equal(t, strings.TrimSpace(out), (*opened)[0])
	assert.Contains(t, errOut, "Tautan dibuka di peramban.")

	// --json
	out, _, code = runCLI(t, "", args("loket", "--json", "--open")...)
	require.Equal(t, 0, code)
	var j loketJSON
	require.NoError(t, json.Unmarshal([]byte(out), &j))
	assert.Regexp(t, loginLink, j.URL)
	assert.Equal(t, 60, j.ExpiresSeconds)
	assert.True(t, j.Opened)

	// as root (sudo), no browser is started: it would run as root
	opened = stubOpen(t, true, nil)
	out, errOut, code = runCLI(t, "", args("--lang", "en", "loket", "--open")...)
	require.Equal(t, 0, code)
	assert.Empty(t, *opened)
	assert.Regexp(t, loginLink, strings.TrimSpace(out))
	assert.Contains(t, errOut, "kpectl runs as root, so no browser was opened")

	// no browser to open: the link still works by hand
	stubOpen(t, false, errors.New(`exec: "xdg-open": executable file not found in $PATH`))
	out, errOut, code = runCLI(t, "", args("--lang", "en", "loket", "--open")...)
	require.Equal(t, 0, code)
	assert.Contains(t, errOut, `The browser could not be opened (exec: "xdg-open": executable file not found in $PATH): open the link above by hand.`)
	status, _ = follow(t, strings.TrimSpace(out))
	assert.Equal(t, http.StatusSeeOther, status)
}

func TestLoketErrors(t *testing.T) {
	stubOpen(t, false, nil)
	// the counter screen is off
	off := loketAgent(t, false)
	out, errOut, code := runCLI(t, "", "--lang", "en", "--agent", off, "--token-file", tokenFile(t, agentToken), "loket")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "The counter screen is off on this agent. Set loket.enabled: true")
	out, _, code = runCLI(t, "", "--agent", off, "--token-file", tokenFile(t, agentToken), "loket", "--json")
	assert.Equal(t, 1, code)
	var e errorJSON
	require.NoError(t, json.Unmarshal([]byte(out), &e), out)
	assert.Equal(t, "loket-disabled", e.Error.Code)
	assert.Contains(t, e.Error.Detail, "not-found")

	// a wrong token: the token's sentence, no link
	on := loketAgent(t, true)
	out, errOut, code = runCLI(t, "", "--lang", "en", "--agent", on, "--token-file", tokenFile(t, "wrong"), "loket")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "The agent refuses the API token")

	_, errOut, code = runCLI(t, "", "--agent", on, "--token-file", tokenFile(t, agentToken), "loket", "extra")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `unknown command "extra" for "kpectl loket"`)
}
