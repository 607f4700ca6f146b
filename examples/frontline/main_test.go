package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/internal/browsertest"
)

const fakeToken = "frontline-test-token"

// fakeAgent is a scripted agent for the example page: the real client
// (from the agent's handler), canned readers, an event stream the test
// feeds, and an authentication that asks the last-try question and waits
// for its answer. The page is served from the same origin.
type fakeAgent struct {
	srv     *httptest.Server
	events  chan map[string]any // session events of reader "R 0"
	answers chan string         // POST /v1/prompt answers
	cancels chan struct{}
	mu      sync.Mutex
	auth    []string // POST /v1/auth bodies
	prompts []string // POST /v1/prompt bodies
	busy    bool     // /v1/auth answers reader-busy
}

func newFakeAgent(t *testing.T) *fakeAgent {
	f := &fakeAgent{events: make(chan map[string]any, 16), answers: make(chan string, 1), cancels: make(chan struct{}, 1)}
	// the agent's own handler serves the client; a same-origin module
	// script is fetched with an Origin header too, so the page's origin
	// (this server's) is allowed once known
	var real http.Handler
	page := handler()
	// events are JSON objects: the prompt's fields (prompt, tries_left)
	// are the contract's, whatever api.Event holds today
	var seq atomic.Int64
	send := func(ev map[string]any) {
		ev["seq"], ev["type"], ev["reader"], ev["time"] = seq.Add(1), api.EventSession, "R 0", time.Now().Format(time.RFC3339Nano)
		f.events <- ev
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			page.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == api.PathClientJS {
			r.Host = "127.0.0.1" // the agent's Host check
			real.ServeHTTP(w, r)
			return
		}
		jsonAnswer := func(status int, v any) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(v)
		}
		if r.URL.Path != api.PathHealth && r.Header.Get("Authorization") != "Bearer "+fakeToken {
			jsonAnswer(401, api.ErrorBody{Error: api.Error{Code: "unauthorized", Message: "The API token is missing or wrong."}})
			return
		}
		body, _ := io.ReadAll(r.Body)
		switch r.Method + " " + r.URL.Path {
		case "GET " + api.PathHealth:
			jsonAnswer(200, api.Health{Status: "ok", Version: "1.2.3", Terminal: "t-01"})
		case "GET " + api.PathReaders:
			jsonAnswer(200, []api.Reader{{Name: "R 0", Role: "card", CardPresent: true, Kind: "kpe", State: api.StateAuthenticated},
				{Name: "SAM 1", Role: "sam", CardPresent: true, Kind: "sam", State: api.StateIdentified}})
		case "GET " + api.PathEvents:
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, ": kpe-agent events\n\n")
			w.(http.Flusher).Flush()
			for {
				select {
				case ev := <-f.events:
					b, _ := json.Marshal(ev)
					fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev["seq"], ev["type"], b)
					w.(http.Flusher).Flush()
				case <-r.Context().Done():
					return
				}
			}
		case "POST " + api.PathAuth:
			f.mu.Lock()
			f.auth = append(f.auth, string(body))
			busy := f.busy
			f.mu.Unlock()
			if busy {
				jsonAnswer(409, api.ErrorBody{Error: api.Error{Code: "reader-busy", Message: "The reader is serving another transaction. Wait until it ends.", Retriable: true}})
				return
			}
			var req struct {
				Prompts        bool `json:"prompts"`
				ConfirmLastTry bool `json:"confirm_last_try"`
			}
			json.Unmarshal(body, &req)
			if !req.Prompts {
				// today's way: refuse the last try until it is confirmed
				if !req.ConfirmLastTry {
					send(map[string]any{"state": api.StateFailed, "error": api.Error{Code: "finger-last-try", Message: "One fingerprint try left on the card. Confirm before it is used.", Retriable: true, TriesLeft: 1}})
					jsonAnswer(409, api.ErrorBody{Error: api.Error{Code: "finger-last-try", Message: "One fingerprint try left on the card. Confirm before it is used.", Retriable: true, TriesLeft: 1}})
					return
				}
				send(map[string]any{"state": api.StateRecorded, "code": "0000-1111-2222-3334", "message_code": "recorded", "message": "Authentication succeeded and is recorded."})
				jsonAnswer(200, api.AuthResult{Code: "0000-1111-2222-3334", Reader: "R 0", Service: "taspen", CardKind: "kpe", Counter: 10, Message: "Recorded."})
				return
			}
			send(map[string]any{"state": api.StateFingerprint, "message_code": "place-finger", "message": "Ask the cardholder to place a finger on the fingerprint sensor."})
			send(map[string]any{"state": "prompt", "message_code": "confirm-last-try", "message": "One fingerprint try left on the card. Confirm before it is used.",
				"tries_left": 1, "prompt": map[string]string{"id": "p1", "kind": "last-try"}})
			var a string
			select {
			case a = <-f.answers:
			case <-f.cancels:
				a = "cancel"
			case <-r.Context().Done():
				return
			}
			if a != "continue" {
				send(map[string]any{"state": api.StateFailed, "error": api.Error{Code: "cancelled", Message: "The transaction was cancelled.", Retriable: true}})
				jsonAnswer(499, api.ErrorBody{Error: api.Error{Code: "cancelled", Message: "The transaction was cancelled.", Retriable: true}})
				return
			}
			send(map[string]any{"state": api.StateVerified})
			send(map[string]any{"state": api.StateRecorded, "code": "7K3M-Q0ZD-9XH2-WB4*", "message_code": "recorded", "message": "Authentication succeeded and is recorded."})
			jsonAnswer(200, api.AuthResult{Code: "7K3M-Q0ZD-9XH2-WB4*", Reader: "R 0", Service: "askes", CardKind: "kpe", Counter: 9,
				Message: "Authentication succeeded and is recorded. Write the authentication code on the form."})
		case "POST /v1/prompt":
			f.mu.Lock()
			f.prompts = append(f.prompts, string(body))
			f.mu.Unlock()
			var p struct{ Answer string }
			json.Unmarshal(body, &p)
			select {
			case f.answers <- p.Answer:
				w.WriteHeader(http.StatusNoContent)
			default:
				jsonAnswer(404, api.ErrorBody{Error: api.Error{Code: "not-found", Message: "Not found."}})
			}
		case "POST " + api.PathCancel:
			select {
			case f.cancels <- struct{}{}:
			default:
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			jsonAnswer(404, api.ErrorBody{Error: api.Error{Code: "not-found", Message: "Not found."}})
		}
	}))
	real = api.NewHandler(nil, api.ServerConfig{Token: []byte(fakeToken), AllowedOrigins: []string{"http://" + f.srv.Listener.Addr().String()}})
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

// done: the workflow's request has ended. The code alone is not enough:
// the "recorded" event may reach the page before the request's answer, and
// the page ignores Start while a request runs.
const done = `document.getElementById("code").textContent !== "" && !document.getElementById("start").disabled`

// recorded: the "recorded" event has been shown; the answer can come
// before the events too.
const recorded = `[...document.querySelectorAll("#progress li")].some((li) => li.dataset.state === "recorded")`

func TestExamplePage(t *testing.T) {
	f := newFakeAgent(t)
	b := browsertest.Start(t)
	b.Navigate(f.srv.URL + "/")
	b.SetValue("#agent", f.srv.URL)
	b.SetValue("#token", fakeToken)
	b.SetValue("#lang", "en")
	b.Click("#connect-btn")
	b.Wait(`document.getElementById("link").dataset.state === "open"`, 10*time.Second)
	assert.Equal(t, "Agent 1.2.3 on terminal t-01: ok.", b.Text("#message"))
	var readers []string
	b.Eval(`[...document.getElementById("reader").options].map((o) => o.value)`, &readers)
	assert.Equal(t, []string{"R 0"}, readers, "card readers only")

	// the last try, asked inside the workflow and answered
	b.SetValue("#service", "askes")
	b.SetValue("#operator", "clerk-07")
	b.Click("#start")
	b.Wait(`!document.getElementById("prompt").hidden`, 10*time.Second)
	assert.Equal(t, "One fingerprint try left on the card. Confirm before it is used.", b.Text("#prompt-text"))
	b.Click("#prompt-continue")
	b.Wait(done+" && "+recorded, 10*time.Second)
	assert.Equal(t, "7K3M-Q0ZD-9XH2-WB4*", b.Text("#code"))
	assert.Equal(t, "Authentication succeeded and is recorded. Write the authentication code on the form.", b.Text("#message"))
	var steps []string
	b.Eval(`[...document.querySelectorAll("#progress li")].map((li) => li.dataset.state)`, &steps)
	assert.Equal(t, []string{"fingerprint", "prompt", "verified", "recorded"}, steps)
	assert.True(t, isHidden(b, "#prompt"))
	f.mu.Lock()
	require.Len(t, f.auth, 1)
	assert.JSONEq(t, `{"service":"askes","operator":"clerk-07","reader":"R 0","wait_seconds":60,"prompts":true}`, f.auth[0])
	require.Len(t, f.prompts, 1)
	assert.JSONEq(t, `{"reader":"R 0","id":"p1","answer":"continue"}`, f.prompts[0])
	f.mu.Unlock()

	// the holder declines the last try: the workflow ends, nothing recorded
	b.Click("#start")
	b.Wait(`!document.getElementById("prompt").hidden`, 10*time.Second)
	b.Click("#prompt-cancel")
	b.Wait(`document.getElementById("message").textContent.includes("(cancelled)")`, 10*time.Second)
	assert.Equal(t, "", b.Text("#code"))
	assert.True(t, isHidden(b, "#prompt"))

	// Cancel while the workflow waits
	b.Click("#start")
	b.Wait(`!document.getElementById("prompt").hidden`, 10*time.Second)
	b.Click("#cancel")
	b.Wait(`document.getElementById("message").textContent.includes("(cancelled)")`, 10*time.Second)

	// without prompts: finger-last-try, confirmed, and the request sent again
	b.Eval(`document.getElementById("prompts").checked = false, true`, nil)
	b.SetValue("#service", "taspen")
	b.Click("#start")
	b.Wait(`!document.getElementById("prompt").hidden`, 10*time.Second)
	assert.Contains(t, b.Text("#message"), "(finger-last-try, 1 tries left)")
	b.Click("#prompt-continue")
	b.Wait(done, 10*time.Second)
	assert.Equal(t, "0000-1111-2222-3334", b.Text("#code"))
	f.mu.Lock()
	require.Len(t, f.auth, 5)
	assert.JSONEq(t, `{"service":"taspen","operator":"clerk-07","reader":"R 0","wait_seconds":60}`, f.auth[3])
	assert.JSONEq(t, `{"service":"taspen","operator":"clerk-07","reader":"R 0","wait_seconds":60,"confirm_last_try":true}`, f.auth[4])
	f.mu.Unlock()

	// another window holds the reader
	f.mu.Lock()
	f.busy = true
	f.mu.Unlock()
	b.Click("#start")
	b.Wait(`document.getElementById("message").textContent.includes("(reader-busy)")`, 10*time.Second)
	assert.Contains(t, b.Text("#message"), "The reader is serving another transaction.")

	// the token lives in the page's memory only
	var stored string
	b.Eval(`JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie + location.href`, &stored)
	assert.NotContains(t, stored, fakeToken)

	// a wrong token: the clerk is told, with the code
	b.SetValue("#token", "wrong")
	b.Click("#connect-btn")
	b.Wait(`document.getElementById("message").textContent.includes("(unauthorized)")`, 10*time.Second)
}

// An agent that cannot be reached: the page says what to check.
func TestExamplePageNoAgent(t *testing.T) {
	srv := httptest.NewServer(handler())
	defer srv.Close()
	b := browsertest.Start(t)
	b.Navigate(srv.URL + "/?agent=http://127.0.0.1:9")
	assert.Equal(t, "http://127.0.0.1:9", evalString(b, `document.getElementById("agent").value`))
	b.SetValue("#token", "t")
	b.Click("#connect-btn")
	b.Wait(`document.getElementById("message").textContent.includes("api.allowed_origins")`, 10*time.Second)
	assert.Contains(t, b.Text("#message"), srv.URL)
}

func isHidden(b *browsertest.Browser, sel string) bool {
	var h bool
	b.Eval(fmt.Sprintf(`document.querySelector(%q).hidden`, sel), &h)
	return h
}

func evalString(b *browsertest.Browser, expr string) string {
	var s string
	b.Eval(expr, &s)
	return s
}
