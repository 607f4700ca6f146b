package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/i18n"
)

// openStream opens GET /v1/events and waits for its first line; the
// returned func closes it.
func openStream(t *testing.T, srv *httptest.Server) (*http.Response, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+PathEvents, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer t")
	req.Header.Set("Accept-Language", "en")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	if resp.StatusCode == http.StatusOK {
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, ": kpe-agent events\n", line)
	}
	return resp, func() { cancel(); resp.Body.Close() }
}

// The event streams are capped (api.max_event_streams, 16 by default):
// one more is 429 too-many-streams with Retry-After, and a stream that
// closes frees its slot. A local program cannot hold the agent's
// goroutines and memory with streams without end.
func TestEventStreamCap(t *testing.T) {
	b := &localeBackend{conf: i18n.English, events: make(chan Event)}
	srv := httptest.NewServer(NewHandler(b, ServerConfig{Token: []byte("t"), Heartbeat: time.Hour}))
	t.Cleanup(srv.Close)
	const defaultCap = 16
	var closers []func()
	t.Cleanup(func() {
		for _, c := range closers {
			c()
		}
	})
	for i := range defaultCap {
		resp, stop := openStream(t, srv)
		closers = append(closers, stop)
		require.Equal(t, http.StatusOK, resp.StatusCode, "stream %d", i+1)
	}
	resp, stop := openStream(t, srv)
	closers = append(closers, stop)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "stream %d", defaultCap+1)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	var eb ErrorBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&eb))
	assert.Equal(t, "too-many-streams", eb.Error.Code)
	assert.True(t, eb.Error.Retriable)
	assert.Equal(t, i18n.English.T("clerk.too-many-streams"), eb.Error.Message)
	stop()

	// one closes: its slot is free again
	closers[0]()
	require.Eventually(t, func() bool {
		resp, stop := openStream(t, srv)
		closers = append(closers, stop)
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond, "a closed stream did not free its slot")
	resp, stop = openStream(t, srv)
	closers = append(closers, stop)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "the cap holds again")
}

// Over TLS (api.tls_cert_file) a page served over plain http may not call
// the API, even from an origin api.allowed_origins lists: anyone on the
// way can change that page.
func TestTLSRefusesHTTPOrigins(t *testing.T) {
	b := &localeBackend{conf: i18n.English, events: make(chan Event)}
	srv := httptest.NewTLSServer(NewHandler(b, ServerConfig{Token: []byte("t"), Heartbeat: time.Hour,
		AllowedOrigins: []string{"http://kiosk-01.example", "https://kiosk-01.example"}}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	for origin, want := range map[string]int{
		"https://kiosk-01.example": http.StatusOK,
		"http://kiosk-01.example":  http.StatusForbidden,
		"http://" + host:           http.StatusForbidden, // the agent's own host, but over http
		"HTTP://kiosk-01.example":  http.StatusForbidden,
		"https://" + host:          http.StatusOK, // the agent's own origin
	} {
		methods := []string{"GET", "OPTIONS"}
		if origin == "https://"+host {
			methods = methods[:1] // no preflight for the agent's own pages
		}
		for _, method := range methods {
			req, err := http.NewRequest(method, srv.URL+PathReaders, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer t")
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", "GET")
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want == http.StatusOK {
				assert.Less(t, resp.StatusCode, 300, "%s %s: %s", method, origin, body)
				continue
			}
			assert.Equal(t, want, resp.StatusCode, "%s %s: %s", method, origin, body)
			assert.Contains(t, string(body), CodeForbiddenOrigin)
			assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "%s %s", method, origin)
		}
	}
}

// Over TLS the kiosk and counter credentials are Secure cookies: a browser
// never sends them over plain http. On the loopback's plain http they
// cannot be (no browser would store them).
func TestPageCookiesSecureOverTLS(t *testing.T) {
	for _, tls := range []bool{true, false} {
		r := &scopeRig{b: &scopeBackend{}, now: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
		r.conf = ServerConfig{Token: []byte(testToken), Heartbeat: time.Hour, Metrics: metricsStub{}, Kiosk: enabled,
			Loket: LoketConfig{Enabled: true}, now: r.clock}
		if tls {
			r.srv = httptest.NewTLSServer(NewHandler(r.b, r.conf))
		} else {
			r.srv = httptest.NewServer(NewHandler(r.b, r.conf))
		}
		t.Cleanup(r.srv.Close)

		a := r.do(t, "GET", PathKiosk, "")
		require.Equal(t, http.StatusOK, a.status, "tls %v: %s", tls, a.body)
		kiosk := (&http.Response{Header: a.header}).Cookies()
		require.Len(t, kiosk, 1)
		assert.Equal(t, KioskCookie, kiosk[0].Name)
		assert.Equal(t, tls, kiosk[0].Secure, "tls %v: the kiosk cookie's Secure", tls)

		a = r.do(t, "POST", PathLoketLogin, "", "Authorization", "Bearer "+testToken)
		require.Equal(t, http.StatusOK, a.status, "%s", a.body)
		var l LoketLogin
		require.NoError(t, json.Unmarshal(a.body, &l))
		a = r.open(t, l.URL)
		require.Equal(t, http.StatusSeeOther, a.status, "tls %v: %s", tls, a.body)
		loket := (&http.Response{Header: a.header}).Cookies()
		require.Len(t, loket, 1)
		assert.Equal(t, LoketCookie, loket[0].Name)
		assert.Equal(t, tls, loket[0].Secure, "tls %v: the counter cookie's Secure", tls)
	}
}
