package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/systest"
	"kpe-agent/lab/labpki"
	"kpe-agent/sync/backoffice"
)

var (
	apiKeyLine = regexp.MustCompile(`(?m)^API key: (kpei_[A-Za-z0-9_-]{43})$`)
	secretLine = regexp.MustCompile(`(?m)^webhook secret: (kpew_[A-Za-z0-9_-]{43})$`)
)

// kpe-backoffice institution add|list|rotate-key|disable|enable on a
// bbolt file, then serve --institution-listen with that file: the printed
// key (after rotation: the new one only) and the registered client
// certificate authenticate, the old key does not.
func TestInstitutionCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "bo.db")
	pki, err := labpki.Write(filepath.Join(dir, "pki"), "askes-system")
	require.NoError(t, err)
	cli := func(code int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		got := run(append(args, "--db", db), &out, &errOut)
		assert.Equal(t, code, got, "kpe-backoffice %q\nstdout %s\nstderr %s", args, out.String(), errOut.String())
		return out.String() + errOut.String()
	}
	out := cli(0, "institution", "add", "askes", "--service", "askes", "--service", "askes-dental",
		"--webhook-url", "https://askes.example/kpe-hook", "--client-cert", pki.TerminalCert)
	require.Regexp(t, apiKeyLine, out)
	require.Regexp(t, secretLine, out)
	firstKey := apiKeyLine.FindStringSubmatch(out)[1]
	secret := secretLine.FindStringSubmatch(out)[1]
	out = cli(0, "institution", "add", "taspen", "--service", "taspen")
	assert.NotContains(t, out, "webhook secret")

	assert.Contains(t, cli(1, "institution", "add", "askes", "--service", "askes"), "institution exists: askes")
	assert.Contains(t, cli(2, "institution", "add", "Bad Name", "--service", "x"), `name "Bad Name"`)
	assert.Contains(t, cli(2, "institution", "add", "bapertarum"), `required flag(s) "service" not set`)
	assert.Contains(t, cli(2, "institution", "add", "bapertarum", "--service", "b", "--webhook-url", "ftp://x"), "want https://host/path")
	assert.Contains(t, cli(2, "institution", "add", "bapertarum", "--service", "b", "--webhook-url", "http://lab.example/hook"), "https is required")
	assert.Regexp(t, secretLine, cli(0, "institution", "add", "lab", "--service", "lab", "--webhook-url", "http://lab.example/hook", "--insecure-webhook"))
	assert.Contains(t, cli(1, "institution", "add", "bapertarum", "--service", "b", "--client-cert", filepath.Join(dir, "none.pem")), "--client-cert: open")
	assert.Contains(t, cli(1, "institution", "rotate-key", "nobody"), "not found")
	assert.Contains(t, cli(2, "institution", "rotate-key", "askes", "--grace", "-1h"), "--grace: -1h0m0s is negative")

	list := cli(0, "institution", "list")
	assert.Regexp(t, `askes\s+askes,askes-dental\s+true\s+1\s+1\s+https://askes.example/kpe-hook`, list)
	assert.Regexp(t, `taspen\s+taspen\s+true\s+1\s+0\s+-`, list)
	assert.NotContains(t, list, firstKey)
	assert.NotContains(t, list, secret)

	out = cli(0, "institution", "rotate-key", "askes")
	require.Regexp(t, apiKeyLine, out)
	newKey := apiKeyLine.FindStringSubmatch(out)[1]
	assert.NotEqual(t, firstKey, newKey)
	assert.Contains(t, out, "The old keys of askes no longer work.")
	assert.Contains(t, cli(0, "institution", "disable", "taspen"), "institution taspen disabled")
	assert.Regexp(t, `taspen\s+taspen\s+false`, cli(0, "institution", "list"))
	assert.Contains(t, cli(0, "institution", "rotate-key", "taspen", "--grace", "1h"), "The old keys of taspen work until")
	assert.Regexp(t, `taspen\s+taspen\s+false\s+2`, cli(0, "institution", "list"))

	// serve with the file: the institutions' listener
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr systest.Buffer
	done := make(chan error, 1)
	o := serveOptions{listen: "127.0.0.1:0", staff: "127.0.0.1:0", dbPath: db, samCA: pki.TLSCA,
		tlsCert: pki.ServerCert, tlsKey: pki.ServerKey, clientCA: pki.TLSCA, skew: time.Minute, certSkew: time.Hour,
		crlPoll: time.Hour, zone: "UTC", inst: multi{}, perClient: backoffice.DefaultVerifyPerClient, total: backoffice.DefaultVerifyTotal,
		instListen: "127.0.0.1:0", instClientCA: pki.TLSCA}
	go func() { done <- serve(ctx, o, &stdout, &stderr) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	ready := regexp.MustCompile(`institutions' API (https://\S+)`)
	require.Eventually(t, func() bool { return ready.MatchString(stdout.String()) }, 10*time.Second, 10*time.Millisecond, "%s", stderr.String())
	base := ready.FindStringSubmatch(stdout.String())[1]
	require.True(t, strings.HasSuffix(base, "/institution/v1/"), base)

	roots, err := labpki.LoadPool(pki.TLSCA)
	require.NoError(t, err)
	client := func(withCert bool) *http.Client {
		cfg := &tls.Config{RootCAs: roots}
		if withCert {
			c, err := tls.LoadX509KeyPair(pki.TerminalCert, pki.TerminalKey)
			require.NoError(t, err)
			cfg.Certificates = []tls.Certificate{c}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	status := func(c *http.Client, key string) int {
		req, err := http.NewRequest(http.MethodGet, base+"records", nil)
		require.NoError(t, err)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, status(client(false), newKey))
	assert.Equal(t, http.StatusUnauthorized, status(client(false), firstKey))
	assert.Equal(t, http.StatusUnauthorized, status(client(false), ""))
	assert.Equal(t, http.StatusOK, status(client(true), ""), "the registered client certificate")
}
