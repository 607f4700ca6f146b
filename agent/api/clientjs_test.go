package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/browsertest"
	"kpe-agent/internal/i18n"
)

// The agent serves the client without a token, with the words of its own
// errors from the catalogue, behind the Host and Origin checks.
func TestClientJSServed(t *testing.T) {
	require.Equal(t, 1, bytes.Count(clientJSSource, []byte(clientWordsMarker)), "client.js must hold the words marker once")
	h := NewHandler(nil, ServerConfig{Token: []byte("t"), AllowedOrigins: []string{"http://his.local"}})
	get := func(path string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Host = "127.0.0.1"
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := get(PathClientJS)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "text/javascript; charset=utf-8", rec.Header().Get("Content-Type"))
	assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
	js := rec.Body.String()
	assert.NotContains(t, js, clientWordsMarker)
	_, rest, ok := strings.Cut(js, "/* kpe:words */ ")
	require.True(t, ok)
	var words map[string]map[string]map[string]string
	require.NoError(t, json.NewDecoder(strings.NewReader(rest)).Decode(&words))
	for _, l := range i18n.Langs {
		for _, a := range []i18n.Audience{i18n.Clerk, i18n.Holder} {
			for _, code := range clientCodes {
				assert.Equal(t, l.T(a.Key(code)), words[string(l)][string(a)][code])
				assert.NotEqual(t, a.Key(code), words[string(l)][string(a)][code], "in the catalogue")
			}
		}
	}

	rec = get(PathClientDTS)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/typescript; charset=utf-8", rec.Header().Get("Content-Type"))
	assert.Equal(t, clientDTS, rec.Body.Bytes())

	// a page of an allowed origin may load it; any other is refused
	rec = get(PathClientJS, "Origin", "http://his.local")
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "http://his.local", rec.Header().Get("Access-Control-Allow-Origin"))
	rec = get(PathClientJS, "Origin", "http://evil.example")
	assert.Equal(t, http.StatusForbidden, rec.Code)
	req := httptest.NewRequest(http.MethodGet, PathClientJS, nil)
	req.Host = "evil.example"
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusForbidden, rec.Code, "DNS rebinding")
}

// jsHarness is a page that loads the client as a module and offers the
// tests a few helpers: err (a thrown value as plain data), attempt (a
// call's value or error) and follow (an event stream's events and
// statuses).
const jsHarness = `<!doctype html>
<html><head><meta charset="utf-8"><title>client.js</title></head><body>
<script type="module">
import * as kpe from "/v1/client.js";
window.kpe = kpe;
window.err = (e) => ({name: e?.name ?? null, code: typeof e?.code === "string" ? e.code : null, status: e?.status ?? null, retriable: e?.retriable ?? null,
  triesLeft: e?.triesLeft ?? null, message: String(e?.message ?? e), kpe: e instanceof kpe.KpeError});
window.attempt = async (f) => { try { return {ok: await f()}; } catch (e) { return {err: err(e)}; } };
window.follow = (client, opts = {}) => {
  const st = {events: [], statuses: [], done: null, error: null};
  const ac = new AbortController();
  st.abort = () => ac.abort();
  client.events({...opts, signal: ac.signal,
    onEvent: opts.onEvent ?? ((ev) => st.events.push(ev)),
    onStatus: (s) => st.statuses.push({state: s.state, delayMs: s.delayMs ?? null, code: s.error?.code ?? null, lastEventId: s.lastEventId}),
  }).then(() => { st.done = "resolved"; }, (e) => { st.done = "rejected"; st.error = err(e); });
  return st;
};
window.ready = true;
</script></body></html>`

// jsAgent is a scripted agent: the harness, the client as the agent serves
// it, and per-path handlers the test sets; it logs every API request.
type jsAgent struct {
	srv *httptest.Server
	mu  sync.Mutex
	h   map[string]http.HandlerFunc
	log []jsRequest
}

type jsRequest struct {
	Method, Path, Query, Auth, Cookie, LastEventID, ContentType string
	Body                                                        string
}

func newJSAgent(t *testing.T) *jsAgent {
	a := &jsAgent{h: map[string]http.HandlerFunc{}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/harness.html":
			// the kiosk's cookie, as the kiosk page gets it
			w.Header().Set("Set-Cookie", "kpe_kiosk=c00k1e; Path=/; HttpOnly; SameSite=Strict")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, jsHarness)
			return
		case PathClientJS:
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Write(clientJS)
			return
		case "/favicon.ico":
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.log = append(a.log, jsRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Cookie"),
			r.Header.Get("Last-Event-ID"), r.Header.Get("Content-Type"), string(body)})
		h := a.h[r.Method+" "+r.URL.Path]
		a.mu.Unlock()
		if h == nil {
			writeJSON(w, http.StatusNotFound, ErrorBody{Error: Error{Code: CodeNotFound, Message: "Tidak ditemukan."}})
			return
		}
		h(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *jsAgent) handle(route string, h http.HandlerFunc) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.h[route] = h
}

// requests returns the logged requests to path ("": all) and forgets
// them.
func (a *jsAgent) requests(path string) []jsRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out, kept []jsRequest
	for _, r := range a.log {
		if path == "" || r.Path == path {
			out = append(out, r)
		} else {
			kept = append(kept, r)
		}
	}
	a.log = kept
	return out
}

// fixedAnswer is a handler with a fixed answer.
func fixedAnswer(status int, v any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, v)
	}
}

// jsResult is what attempt() gives back.
type jsResult struct {
	OK  json.RawMessage `json:"ok"`
	Err *jsError        `json:"err"`
}

type jsError struct {
	Name      string  `json:"name"`
	Code      *string `json:"code"`
	Status    *int    `json:"status"`
	Retriable *bool   `json:"retriable"`
	TriesLeft *int    `json:"triesLeft"`
	Message   string  `json:"message"`
	Kpe       bool    `json:"kpe"`
}

func (e *jsError) String() string {
	if e == nil {
		return "<nil>"
	}
	b, _ := json.Marshal(e)
	return string(b)
}

// try runs `f` (a JS expression giving a promise) through attempt().
func try(t *testing.T, b *browsertest.Browser, f string) jsResult {
	t.Helper()
	var r jsResult
	b.Eval("attempt(async () => "+f+")", &r)
	return r
}

func (r jsResult) code() string {
	if r.Err == nil || r.Err.Code == nil {
		return ""
	}
	return *r.Err.Code
}

func startJSHarness(t *testing.T) (*browsertest.Browser, *jsAgent) {
	a := newJSAgent(t)
	b := browsertest.Start(t)
	b.Navigate(a.srv.URL + "/harness.html")
	b.Wait("window.ready === true", 10*time.Second)
	return b, a
}

// The client in real Chromium against a scripted agent: every call's
// request and answer, the options, and the error mapping.
func TestClientJSCalls(t *testing.T) {
	b, a := startJSHarness(t)
	b.Eval(`window.c = kpe.createClient({baseUrl: location.origin, token: " tok-123 ", lang: "en", audience: "holder"}), true`, nil)

	t.Run("calls", func(t *testing.T) {
		b := b.For(t)
		a.handle("GET "+PathHealth, fixedAnswer(200, Health{Status: "ok", Readers: 2}))
		a.handle("GET "+PathReaders, fixedAnswer(200, []Reader{{Name: "R 0", Role: "card", State: StateIdle}}))
		a.handle("GET "+PathCard, fixedAnswer(200, map[string]string{"kind": "kpe", "verdict": "genuine"}))
		a.handle("GET "+PathPrefill, fixedAnswer(200, Prefill{CardKind: "kpe", Name: "Budi", Verified: true}))
		a.handle("GET "+PathQueue, fixedAnswer(200, QueueStatus{Pending: 3}))
		a.handle("POST "+PathSync, fixedAnswer(200, SyncResult{Sent: 3, Accepted: 3}))
		a.handle("GET "+PathCodesToday, fixedAnswer(200, TodayCodes{Date: "2026-03-02", Codes: []TodayCode{{Code: "7K3M-Q0ZD-9XH2-WB4*", Service: "askes", State: CodeSynced}}}))
		a.handle("GET /v1/kiosk/view", fixedAnswer(200, map[string]any{"kind": "kpe", "verified": true, "photo": true}))
		a.handle("GET /v1/kiosk/photo", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			w.Write([]byte{0xFF, 0xD8, 0xFF, 0xE0})
		})
		a.handle("GET /v1/kiosk/qr", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "image/png")
			w.Write([]byte("\x89PNG"))
		})
		var got map[string]any
		b.Eval(`(async () => ({
			health: await c.health(), readers: await c.readers(), card: await c.card("R 0"), prefill: await c.prefill(),
			queue: await c.queue(), sync: await c.sync(), codes: await c.codesToday(), view: await c.kioskView("R 0"),
			photo: await c.kioskPhoto("R 0").then(async (b) => b.type + " " + b.size),
			qr: await c.kioskQR("7K3M-Q0ZD-9XH2-WB4*").then(async (b) => b.type + " " + b.size),
		}))()`, &got)
		assert.Equal(t, "ok", got["health"].(map[string]any)["status"])
		assert.Equal(t, "R 0", got["readers"].([]any)[0].(map[string]any)["name"])
		assert.Equal(t, "genuine", got["card"].(map[string]any)["verdict"])
		assert.Equal(t, true, got["prefill"].(map[string]any)["data_verified"])
		assert.EqualValues(t, 3, got["queue"].(map[string]any)["pending"])
		assert.EqualValues(t, 3, got["sync"].(map[string]any)["accepted"])
		assert.Equal(t, "synced", got["codes"].(map[string]any)["codes"].([]any)[0].(map[string]any)["state"])
		assert.Equal(t, true, got["view"].(map[string]any)["verified"])
		assert.Equal(t, "image/jpeg 4", got["photo"])
		assert.Equal(t, "image/png 4", got["qr"])

		for path, query := range map[string]string{
			PathHealth: "lang=en&audience=holder", PathCard: "reader=R+0&lang=en&audience=holder", PathPrefill: "lang=en&audience=holder", PathCodesToday: "lang=en&audience=holder",
			"/v1/kiosk/view": "reader=R+0&lang=en&audience=holder", "/v1/kiosk/qr": "code=7K3M-Q0ZD-9XH2-WB4*&lang=en&audience=holder",
		} {
			a.mu.Lock()
			log := append([]jsRequest(nil), a.log...)
			a.mu.Unlock()
			found := false
			for _, r := range log {
				if r.Path == path {
					found = true
					assert.Equal(t, query, r.Query, path)
					assert.Equal(t, "Bearer tok-123", r.Auth, "%s: the token, trimmed", path)
					assert.Empty(t, r.Cookie, "%s: a bearer client sends no cookie", path)
				}
			}
			assert.True(t, found, path)
		}
		a.requests("")
	})

	t.Run("authenticate", func(t *testing.T) {
		b := b.For(t)
		a.handle("POST "+PathAuth, fixedAnswer(200, AuthResult{Code: "7K3M-Q0ZD-9XH2-WB4*", Service: "askes", Reader: "R 0", CardKind: "kpe", Counter: 8}))
		r := try(t, b, `c.authenticate({service: "askes", operator: "clerk-01", reader: "R 0", waitSeconds: 30, prompts: true})`)
		require.Nil(t, r.Err, "%s", r.Err)
		assert.Contains(t, string(r.OK), `"code":"7K3M-Q0ZD-9XH2-WB4*"`)
		reqs := a.requests(PathAuth)
		require.Len(t, reqs, 1)
		assert.JSONEq(t, `{"service":"askes","operator":"clerk-01","reader":"R 0","wait_seconds":30,"prompts":true}`, reqs[0].Body)
		assert.Equal(t, "application/json", reqs[0].ContentType)
		// flags that are off are not sent: an older agent refuses unknown fields
		try(t, b, `c.authenticate({service: "taspen", operator: "clerk-01", confirmLastTry: true})`)
		reqs = a.requests(PathAuth)
		require.Len(t, reqs, 1)
		assert.JSONEq(t, `{"service":"taspen","operator":"clerk-01","confirm_last_try":true}`, reqs[0].Body)
		try(t, b, `c.authenticate({service: "kiosk"})`)
		reqs = a.requests(PathAuth)
		require.Len(t, reqs, 1)
		assert.JSONEq(t, `{"service":"kiosk"}`, reqs[0].Body)
	})

	t.Run("cancel-and-prompt", func(t *testing.T) {
		b := b.For(t)
		a.handle("POST "+PathCancel, fixedAnswer(http.StatusNoContent, nil))
		a.handle("POST "+PathPrompt, fixedAnswer(http.StatusNoContent, nil))
		var got []any
		b.Eval(`(async () => [await c.cancel("R 0"), await c.cancelAll(), await c.answerPrompt("R 0", "a1b2", "continue")])()`, &got)
		assert.Equal(t, []any{true, true, true}, got)
		reqs := a.requests(PathCancel)
		require.Len(t, reqs, 2)
		assert.JSONEq(t, `{"reader":"R 0"}`, reqs[0].Body)
		assert.JSONEq(t, `{"all":true}`, reqs[1].Body)
		reqs = a.requests("/v1/prompt")
		require.Len(t, reqs, 1)
		assert.JSONEq(t, `{"reader":"R 0","id":"a1b2","answer":"continue"}`, reqs[0].Body)

		// nothing runs, no such prompt: false, not an error
		notFound := fixedAnswer(http.StatusNotFound, ErrorBody{Error: Error{Code: CodeNotFound, Message: "Not found."}})
		a.handle("POST "+PathCancel, notFound)
		a.handle("POST /v1/prompt", notFound)
		b.Eval(`(async () => [await c.cancel("R 0"), await c.answerPrompt("R 0", "gone", "cancel")])()`, &got)
		assert.Equal(t, []any{false, false}, got)
		reqs = a.requests("/v1/prompt")
		require.Len(t, reqs, 1)
		assert.JSONEq(t, `{"reader":"R 0","id":"gone","answer":"cancel"}`, reqs[0].Body)
		// another 404 is an error
		a.handle("POST "+PathCancel, fixedAnswer(http.StatusNotFound, ErrorBody{Error: Error{Code: "no-reader", Message: "No reader."}}))
		r := try(t, b, `c.cancel("R 9")`)
		assert.Equal(t, "no-reader", r.code())
	})

	t.Run("errors", func(t *testing.T) {
		b := b.For(t)
		a.handle("POST "+PathAuth, fixedAnswer(http.StatusConflict, ErrorBody{Error: Error{Code: "reader-busy", Message: "The kiosk is busy with another transaction.", Retriable: true}}))
		r := try(t, b, `c.authenticate({service: "askes", operator: "o"})`)
		require.NotNil(t, r.Err)
		assert.Equal(t, jsError{Name: "KpeError", Code: ptr("reader-busy"), Status: ptr(409), Retriable: ptr(true), Message: "The kiosk is busy with another transaction.", Kpe: true}, *r.Err)

		a.handle("POST "+PathAuth, fixedAnswer(http.StatusUnprocessableEntity, ErrorBody{Error: Error{Code: "finger-no-match", Message: "No match.", Retriable: true, TriesLeft: 2}}))
		r = try(t, b, `c.authenticate({service: "askes", operator: "o"})`)
		assert.Equal(t, "finger-no-match", r.code())
		assert.Equal(t, ptr(2), r.Err.TriesLeft)

		// a proxy's page, and a garbled answer: bad-response, in the
		// client's language and for its audience
		a.handle("GET "+PathQueue, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>proxy error</html>")
		})
		r = try(t, b, `c.queue()`)
		assert.Equal(t, jsError{Name: "KpeError", Code: ptr("bad-response"), Status: ptr(502), Retriable: ptr(true), Message: i18n.English.T("holder.bad-response"), Kpe: true}, *r.Err)
		a.handle("GET "+PathReaders, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `[{"name":`) })
		r = try(t, b, `kpe.createClient({baseUrl: location.origin, token: "t", lang: "id"}).readers()`)
		assert.Equal(t, "bad-response", r.code())
		assert.Equal(t, ptr(200), r.Err.Status)
		assert.Equal(t, i18n.Indonesian.T("clerk.bad-response"), r.Err.Message)
		// a redirect: the agent never sends one
		a.handle("GET "+PathReaders, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) })
		r = try(t, b, `c.readers()`)
		assert.Equal(t, "bad-response", r.code())

		// nothing listens: network, retriable, status 0
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		dead := "http://" + ln.Addr().String()
		ln.Close()
		r = try(t, b, fmt.Sprintf(`kpe.createClient({baseUrl: %q, token: "t", lang: "en"}).readers()`, dead))
		assert.Equal(t, jsError{Name: "KpeError", Code: ptr("network"), Status: ptr(0), Retriable: ptr(true), Message: i18n.English.T("clerk.network"), Kpe: true}, *r.Err)

		// no answer in time: network too
		release := make(chan struct{})
		a.handle("GET "+PathQueue, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		start := time.Now()
		r = try(t, b, `kpe.createClient({baseUrl: location.origin, token: "t", timeoutMs: 300}).queue()`)
		assert.Equal(t, "network", r.code())
		assert.Less(t, time.Since(start), 5*time.Second)

		// the caller's abort: its own reason, no KpeError
		r = try(t, b, `(() => { const ac = new AbortController(); const p = c.queue({signal: ac.signal}); setTimeout(() => ac.abort(), 100); return p; })()`)
		require.NotNil(t, r.Err)
		assert.Equal(t, "AbortError", r.Err.Name)
		assert.False(t, r.Err.Kpe)
		close(release)
		a.requests("")
	})

	t.Run("options", func(t *testing.T) {
		b := b.For(t)
		for _, bad := range []string{
			`kpe.createClient({baseUrl: "ftp://127.0.0.1:7531"})`,
			`kpe.createClient({baseUrl: "http://127.0.0.1:7531/v1"})`,
			`kpe.createClient({baseUrl: "not a url"})`,
			`kpe.createClient({baseUrl: location.origin, token: "t", credentials: "same-origin"})`,
			`kpe.createClient({baseUrl: location.origin, credentials: "include"})`,
			`kpe.createClient({baseUrl: location.origin, lang: "fr"})`,
			`kpe.createClient({baseUrl: location.origin, audience: "kiosk"})`,
			`kpe.createClient({baseUrl: location.origin, token: "two words"})`,
			`kpe.createClient({baseUrl: location.origin, timeoutMs: -1})`,
			`c.authenticate({operator: "o"})`,
			`c.authenticate({service: "askes", waitSeconds: 1.5})`,
			`c.answerPrompt("R 0", "a1", "maybe")`,
			`c.answerPrompt("", "a1", "continue")`,
			`c.cancel()`, // every workflow is cancelAll, never a missing reader
			`c.cancel("")`,
			`c.kioskView()`,
			`c.events({})`,
			`(() => { c.lang = "de"; })()`,
		} {
			var e jsError
			b.Eval(fmt.Sprintf(`(() => { try { %s; return {name: "none"}; } catch (e) { return err(e); } })()`, bad), &e)
			assert.Equal(t, "TypeError", e.Name, "%s: %s", bad, e.Message)
		}
		// the module's origin is the default agent
		var base string
		b.Eval(`kpe.createClient().baseUrl`, &base)
		assert.Equal(t, a.srv.URL, base)

		// the kiosk's cookie instead of a token
		a.handle("GET "+PathReaders, fixedAnswer(200, []Reader{}))
		r := try(t, b, `kpe.createClient({credentials: "same-origin", lang: "id"}).readers()`)
		require.Nil(t, r.Err, "%s", r.Err)
		reqs := a.requests(PathReaders)
		require.Len(t, reqs, 1)
		assert.Equal(t, "kpe_kiosk=c00k1e", reqs[0].Cookie)
		assert.Empty(t, reqs[0].Auth)
		assert.Equal(t, "lang=id", reqs[0].Query)
		// a language switch applies to the next call
		b.Eval(`(async () => { c.lang = "id"; c.audience = ""; await c.readers(); return true; })()`, nil)
		reqs = a.requests(PathReaders)
		require.Len(t, reqs, 1)
		assert.Equal(t, "lang=id", reqs[0].Query)
	})
}

func ptr[T any](v T) *T { return &v }

// jsStatus is one onStatus call as follow() keeps it.
type jsStatus struct {
	State       string  `json:"state"`
	DelayMs     *int    `json:"delayMs"`
	Code        *string `json:"code"`
	LastEventID string  `json:"lastEventId"`
}

type jsFollow struct {
	Events   []Event    `json:"events"`
	Statuses []jsStatus `json:"statuses"`
	Done     *string    `json:"done"`
	Error    *jsError   `json:"error"`
}

func readFollow(t *testing.T, b *browsertest.Browser) jsFollow {
	t.Helper()
	var f jsFollow
	b.Eval(`({events: st.events, statuses: st.statuses, done: st.done, error: st.error})`, &f)
	return f
}

func (f jsFollow) states() []string {
	var out []string
	for _, s := range f.Statuses {
		out = append(out, s.State)
	}
	return out
}

func flushWrite(w http.ResponseWriter, chunks ...string) {
	for _, c := range chunks {
		io.WriteString(w, c)
		w.(http.Flusher).Flush()
		time.Sleep(15 * time.Millisecond)
	}
}

func sseHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

// The event stream in real Chromium: the SSE framing's corners (CRLF, CR,
// a CRLF split between two reads, a UTF-8 character split between two
// reads, multi-line data, data without a space, an event without data,
// unknown fields, comments, retry), a stream that ends and one that drops
// in the middle, both resumed with Last-Event-ID, an agent that restarted,
// and the abort that ends it all without leaving a connection open.
func TestClientJSEvents(t *testing.T) {
	b, a := startJSHarness(t)
	b.Eval(`window.c = kpe.createClient({baseUrl: location.origin, token: "tok", lang: "en"}), true`, nil)

	ended := make(chan struct{}, 1)
	var conn int
	var connMu sync.Mutex
	a.handle("GET "+PathEvents, func(w http.ResponseWriter, r *http.Request) {
		connMu.Lock()
		conn++
		n := conn
		connMu.Unlock()
		sseHeaders(w)
		switch n {
		case 1:
			flushWrite(w,
				"\uFEFF: kpe-agent events\r\n\r\n",
				"id: 1\r\nevent: session\r\ndata: {\"seq\":1,\r",
				"\ndata: \"type\":\"session\",\"state\":\"detected\"}\r\n\r",
				"\nid: 2\nevent: session\ndata: {\"seq\":2,\r\ndata:\"type\":\"session\",\ndata: \"state\":\"identified\",\"message\":\"Kartu dikenali — caf\xc3",
				"\xa9 ✓\"}\n\n",
				"event: session\nid: 3\n\n",
				": keep-alive\n\n",
				"unknown: x\nid: 4\rdata: {\"seq\":4,\"type\":\"sam\",\"state\":\"ready\"}\r\r",
				"retry: 60\n\n",
				"data: {\"seq\":5,\"type\":\"sync\",\"state\":\"ok\"}\n\n",
				"data: {\"seq\":6,\"type\":\"reader\",\"state\":\"added\"}\n", // cut: never dispatched
			)
			// the stream ends cleanly (the agent stopped)
		case 2:
			flushWrite(w, ": kpe-agent events\n\n", "id: 7\nevent: session\ndata: {\"seq\":7,\"type\":\"session\",\"state\":\"fingerprint\"}\n\nid: 8\ndata: {\"seq\":8,\"ty")
			// the connection drops in the middle of an event
			panic(http.ErrAbortHandler)
		case 3:
			// the agent restarted: seq begins again
			flushWrite(w, "id: 1\ndata: {\"seq\":1,\"type\":\"service\",\"state\":\"restored\"}\n\n")
			<-r.Context().Done()
			ended <- struct{}{}
		}
	})
	b.Eval(`window.st = follow(c, {retryMinMs: 40, retryMaxMs: 400}), true`, nil)
	b.Wait(`st.events.some((e) => e.type === "service")`, 10*time.Second)

	f := readFollow(t, b)
	var got []string
	for _, ev := range f.Events {
		got = append(got, fmt.Sprintf("%d %s %s %s", ev.Seq, ev.Type, ev.State, ev.Message))
	}
	assert.Equal(t, []string{
		"1 session detected ",
		"2 session identified Kartu dikenali — café ✓",
		"4 sam ready ",
		"5 sync ok ",
		"7 session fingerprint ",
		"1 service restored ",
	}, got)
	reqs := a.requests(PathEvents)
	require.Len(t, reqs, 3)
	assert.Equal(t, "", reqs[0].LastEventID)
	// the last event ID is the id field's, kept across events without one
	// (as EventSource does): 4 after event 5
	assert.Equal(t, "4", reqs[1].LastEventID, "resumed after the stream ended")
	assert.Equal(t, "7", reqs[2].LastEventID, "resumed after the connection dropped")
	for _, r := range reqs {
		assert.Equal(t, "Bearer tok", r.Auth)
		assert.Equal(t, "lang=en", r.Query)
	}
	assert.Equal(t, []string{"connecting", "open", "retrying", "connecting", "open", "retrying", "connecting", "open", "restarted"}, f.states())
	// the stream's retry: 60 replaced the first delay
	assert.Equal(t, ptr(60), f.Statuses[2].DelayMs)
	assert.Equal(t, ptr("network"), f.Statuses[2].Code)
	assert.Equal(t, ptr(60), f.Statuses[5].DelayMs)
	assert.Nil(t, f.Done)

	// abort: the promise resolves, and the agent sees the connection close
	b.Eval(`st.abort(), true`, nil)
	b.Wait(`st.done !== null`, 5*time.Second)
	f = readFollow(t, b)
	assert.Equal(t, "resolved", *f.Done)
	assert.Equal(t, "closed", f.Statuses[len(f.Statuses)-1].State)
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream's connection stayed open after the abort")
	}
}

// Failures of the event stream: a refusal ends it at once; an agent that
// is stopping or down is retried with a doubling, capped delay; garbage
// and a failing onEvent end it.
func TestClientJSEventsFailures(t *testing.T) {
	b, a := startJSHarness(t)
	b.Eval(`window.c = kpe.createClient({baseUrl: location.origin, token: "tok"}), true`, nil)

	t.Run("unauthorized", func(t *testing.T) {
		b := b.For(t)
		a.handle("GET "+PathEvents, fixedAnswer(http.StatusUnauthorized, ErrorBody{Error: Error{Code: CodeUnauthorized, Message: "The API token is missing or wrong."}}))
		b.Eval(`window.st = follow(c, {retryMinMs: 20}), true`, nil)
		b.Wait(`st.done !== null`, 5*time.Second)
		f := readFollow(t, b)
		assert.Equal(t, "rejected", *f.Done)
		assert.Equal(t, ptr(CodeUnauthorized), f.Error.Code)
		assert.Equal(t, ptr(401), f.Error.Status)
		assert.Equal(t, []string{"connecting", "closed"}, f.states())
		assert.Len(t, a.requests(PathEvents), 1, "no retry")
	})

	t.Run("backoff", func(t *testing.T) {
		b := b.For(t)
		var mu sync.Mutex
		n := 0
		a.handle("GET "+PathEvents, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			n++
			k := n
			mu.Unlock()
			if k <= 5 {
				writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: Error{Code: "shutting-down", Message: "stopping", Retriable: true}})
				return
			}
			sseHeaders(w)
			flushWrite(w, "id: 1\ndata: {\"seq\":1,\"type\":\"service\",\"state\":\"restored\"}\n\n")
			<-r.Context().Done()
		})
		b.Eval(`window.st = follow(c, {retryMinMs: 40, retryMaxMs: 200, lastEventId: 41}), true`, nil)
		b.Wait(`st.events.length === 1`, 10*time.Second)
		f := readFollow(t, b)
		var delays []int
		for _, s := range f.Statuses {
			if s.State == "retrying" {
				delays = append(delays, *s.DelayMs)
				assert.Equal(t, ptr("shutting-down"), s.Code)
			}
		}
		assert.Equal(t, []int{40, 80, 160, 200, 200}, delays)
		for _, r := range a.requests(PathEvents) {
			assert.Equal(t, "41", r.LastEventID)
		}
		b.Eval(`st.abort(), true`, nil)
		b.Wait(`st.done === "resolved"`, 5*time.Second)
	})

	t.Run("agent-down", func(t *testing.T) {
		b := b.For(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		dead := "http://" + ln.Addr().String()
		ln.Close()
		b.Eval(fmt.Sprintf(`window.st = follow(kpe.createClient({baseUrl: %q, token: "t"}), {retryMinMs: 30, retryMaxMs: 60}), true`, dead), nil)
		b.Wait(`st.statuses.filter((s) => s.state === "retrying").length >= 3`, 10*time.Second)
		f := readFollow(t, b)
		assert.Equal(t, ptr("network"), f.Statuses[1].Code)
		// aborted while it waits to retry
		b.Eval(`st.abort(), true`, nil)
		b.Wait(`st.done !== null`, 5*time.Second)
		f = readFollow(t, b)
		assert.Equal(t, "resolved", *f.Done)
		assert.Equal(t, "closed", f.Statuses[len(f.Statuses)-1].State)
	})

	for _, c := range []struct {
		name, contentType, body, want string
	}{
		{"not-a-stream", "text/html", "<html>captive portal</html>", "bad-response"},
		{"garbled-data", "text/event-stream", "id: 1\ndata: {\"seq\":1,\n\n", "bad-response"},
		{"not-an-object", "text/event-stream", "data: [1, 2]\n\n", "bad-response"},
		{"line-too-long", "text/event-stream", "data: " + strings.Repeat("x", 70<<10), "bad-response"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := b.For(t)
			a.handle("GET "+PathEvents, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", c.contentType)
				io.WriteString(w, c.body)
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			})
			b.Eval(`window.st = follow(c, {retryMinMs: 20}), true`, nil)
			b.Wait(`st.done !== null`, 5*time.Second)
			f := readFollow(t, b)
			assert.Equal(t, "rejected", *f.Done)
			assert.Equal(t, ptr(c.want), f.Error.Code)
			assert.Len(t, a.requests(PathEvents), 1, "no retry")
		})
	}

	t.Run("onEvent-throws", func(t *testing.T) {
		b := b.For(t)
		a.handle("GET "+PathEvents, func(w http.ResponseWriter, r *http.Request) {
			sseHeaders(w)
			flushWrite(w, "id: 1\ndata: {\"seq\":1,\"type\":\"sam\",\"state\":\"ready\"}\n\n")
			<-r.Context().Done()
		})
		b.Eval(`window.st = follow(c, {onEvent: () => { throw new RangeError("the page's bug"); }}), true`, nil)
		b.Wait(`st.done !== null`, 5*time.Second)
		f := readFollow(t, b)
		assert.Equal(t, "rejected", *f.Done)
		assert.Equal(t, "RangeError", f.Error.Name)
		assert.Equal(t, "the page's bug", f.Error.Message)
		a.requests("")
	})

	t.Run("onStatus-throws", func(t *testing.T) {
		b := b.For(t)
		closed := make(chan struct{}, 1)
		a.handle("GET "+PathEvents, func(w http.ResponseWriter, r *http.Request) {
			sseHeaders(w)
			<-r.Context().Done()
			closed <- struct{}{}
		})
		b.Eval(`window.st = {done: null, error: null};
			c.events({onEvent() {}, onStatus(s) { if (s.state === "open") throw new Error("light broken"); }})
			 .then(() => { st.done = "resolved"; }, (e) => { st.done = "rejected"; st.error = err(e); }), true`, nil)
		b.Wait(`st.done !== null`, 5*time.Second)
		var f jsFollow
		b.Eval(`({done: st.done, error: st.error})`, &f)
		assert.Equal(t, "rejected", *f.Done)
		assert.Equal(t, "light broken", f.Error.Message)
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("the stream's connection stayed open")
		}
		a.requests("")
	})
}

// The client against the agent's real handler from a page on another
// origin: the CORS preflight with the token and Last-Event-ID, the
// language, the agent's own refusal; and a page whose origin the agent
// does not allow gets nothing (a network error).
func TestClientJSCrossOrigin(t *testing.T) {
	b, a := startJSHarness(t)
	be := &localeBackend{conf: i18n.Indonesian, events: make(chan Event, 4)}
	agent := httptest.NewServer(NewHandler(be, ServerConfig{Token: []byte("t0k"), AllowedOrigins: []string{a.srv.URL}, Heartbeat: time.Hour}))
	defer agent.Close()
	other := httptest.NewServer(NewHandler(be, ServerConfig{Token: []byte("t0k"), AllowedOrigins: []string{"http://his.local"}}))
	defer other.Close()

	// the module itself, loaded from the agent
	var base string
	b.Eval(fmt.Sprintf(`import(%q).then((m) => m.createClient({token: "t0k", lang: "en"}).baseUrl)`, agent.URL+PathClientJS), &base)
	assert.Equal(t, agent.URL, base, "the default agent is the module's origin")

	b.Eval(fmt.Sprintf(`window.x = kpe.createClient({baseUrl: %q, token: "t0k", lang: "en", audience: "holder"}), true`, agent.URL), nil)
	r := try(t, b, `x.readers()`)
	require.Nil(t, r.Err, "%s", r.Err)
	assert.Contains(t, string(r.OK), i18n.English.T("holder.no-card"))
	r = try(t, b, `x.authenticate({service: "nope", operator: "o"})`)
	assert.Equal(t, "unknown-service", r.code())
	assert.Equal(t, i18n.English.T("holder.unknown-service"), r.Err.Message)
	r = try(t, b, fmt.Sprintf(`kpe.createClient({baseUrl: %q, token: "wrong"}).queue()`, agent.URL))
	assert.Equal(t, CodeUnauthorized, r.code())
	assert.Equal(t, ptr(401), r.Err.Status)

	b.Eval(`window.st = follow(x, {lastEventId: 3}), true`, nil)
	b.Wait(`st.statuses.some((s) => s.state === "open")`, 5*time.Second)
	be.events <- Event{Seq: 4, Type: EventSession, State: StateFingerprint, MessageCode: "place-finger"}
	b.Wait(`st.events.length === 1`, 5*time.Second)
	f := readFollow(t, b)
	assert.Equal(t, i18n.English.T("holder.place-finger"), f.Events[0].Message)
	b.Eval(`st.abort(), true`, nil)
	b.Wait(`st.done === "resolved"`, 5*time.Second)

	// an origin the agent does not allow: no answer the page may read
	r = try(t, b, fmt.Sprintf(`kpe.createClient({baseUrl: %q, token: "t0k", lang: "id"}).readers()`, other.URL))
	assert.Equal(t, "network", r.code())
	assert.Equal(t, i18n.Indonesian.T("clerk.network"), r.Err.Message)
	r = try(t, b, fmt.Sprintf(`import(%q)`, other.URL+PathClientJS))
	require.NotNil(t, r.Err, "the module is refused too")
}
