package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/i18n"
)

// callsBackend records what reached the backend, so that a refused body
// is seen to have done nothing.
type callsBackend struct {
	localeBackend
	mu    sync.Mutex
	calls []string
}

func (b *callsBackend) record(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, s)
}

func (b *callsBackend) took() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

func (b *callsBackend) Authenticate(_ context.Context, req AuthRequest) (AuthResult, error) {
	b.record("auth " + req.Service + " " + req.Reader)
	return AuthResult{Code: "X"}, nil
}
func (b *callsBackend) Cancel(_ context.Context, reader string) bool {
	b.record("cancel " + reader)
	return true
}
func (b *callsBackend) AnswerPrompt(_ context.Context, req PromptRequest) bool {
	b.record("prompt " + req.ID)
	return true
}
func (b *callsBackend) Sync(context.Context, Locale) (SyncResult, error) {
	b.record("sync")
	return SyncResult{}, nil
}

// Every request body is decoded strictly, per endpoint family: what
// encoding/json lets through (a key twice, a key in another case, null, an
// empty body, trailing data, a null value) is 400 bad-request with the
// catalogue's sentence for it, and nothing reaches the backend.
func TestStrictBodiesPerEndpoint(t *testing.T) {
	b := &callsBackend{localeBackend: localeBackend{conf: i18n.English, events: make(chan Event)}}
	srv := httptest.NewServer(NewHandler(b, ServerConfig{Token: []byte("t"), Heartbeat: time.Hour}))
	t.Cleanup(srv.Close)

	type bad struct {
		body, kind string
		args       []any
	}
	families := []struct {
		path  string
		good  string
		cases []bad
	}{
		{PathAuth, `{"service":"askes","operator":"o"}`, []bad{
			{`{"service":"askes","operator":"o","service":"taspen"}`, "body-duplicate-key", []any{"service"}},
			{`{"Service":"askes","operator":"o"}`, "body-key-case", []any{"Service", "service"}},
			{`{"service":"askes","OPERATOR":"o"}`, "body-key-case", []any{"OPERATOR", "operator"}},
			{`null`, "body-null", nil},
			{``, "body-empty", nil},
			{" \n\t", "body-empty", nil},
			{`{"service":"askes","operator":"o"} {}`, "body-trailing", nil},
			{`{"service":"askes","operator":"o"}}`, "body-trailing", nil},
			{`{"service":"askes","operator":"o","bogus":1}`, "body-unknown-key", []any{"bogus"}},
			{`{"service":"askes","operator":"o","reader":null}`, "body-null-value", []any{"reader"}},
			{`{"service":"askes","operator":"o","wait_seconds":"1"}`, "body-wrong-type", []any{"wait_seconds"}},
			{`["service"]`, "body-not-object", nil},
			{`{"service":`, "body-syntax", nil},
		}},
		{PathCancel, `{"reader":"R0"}`, []bad{
			{`{"reader":"R0","reader":"R1"}`, "body-duplicate-key", []any{"reader"}},
			{`{"Reader":"R0"}`, "body-key-case", []any{"Reader", "reader"}},
			{`null`, "body-null", nil},
			{``, "body-empty", nil},
			{`{"reader":"R0"} x`, "body-trailing", nil},
			{`{"reader":"R0","x":1}`, "body-unknown-key", []any{"x"}},
			{`{"reader":null}`, "body-null-value", []any{"reader"}},
			// well-formed, but naming nothing to cancel, or two things
			{`{}`, "cancel-unnamed", nil},
			{`{"reader":""}`, "cancel-unnamed", nil},
			{`{"all":false}`, "cancel-unnamed", nil},
			{`{"reader":"R0","all":true}`, "cancel-both", nil},
		}},
		{PathPrompt, `{"reader":"R0","id":"p1","answer":"continue"}`, []bad{
			{`{"reader":"R0","id":"p1","answer":"cancel","answer":"continue"}`, "body-duplicate-key", []any{"answer"}},
			{`{"reader":"R0","ID":"p1","answer":"continue"}`, "body-key-case", []any{"ID", "id"}},
			{`null`, "body-null", nil},
			{``, "body-empty", nil},
			{`{"reader":"R0","id":"p1","answer":"continue"}]`, "body-trailing", nil},
		}},
		{PathSync, ``, []bad{
			{`{}`, "body-unexpected", nil},
			{`null`, "body-unexpected", nil},
		}},
	}
	for _, f := range families {
		t.Run(strings.TrimPrefix(f.path, "/v1/"), func(t *testing.T) {
			for _, c := range f.cases {
				before := len(b.took())
				status, e, raw := callLocale(t, srv, "POST", f.path, c.body, "Accept-Language", "en")
				assert.Equal(t, http.StatusBadRequest, status, "%q: %s", c.body, raw)
				assert.Equal(t, CodeBadRequest, e.Error.Code, "%q: %s", c.body, raw)
				assert.Equal(t, i18n.English.T("clerk."+c.kind, c.args...), e.Error.Message, "%q", c.body)
				assert.False(t, strings.HasPrefix(e.Error.Message, "clerk."), "%q: the catalogue has no %s", c.body, c.kind)
				assert.Equal(t, before, len(b.took()), "%q reached the backend: %v", c.body, b.took()[before:])
			}
			// the same request, well-formed, is taken
			before := len(b.took())
			req, err := http.NewRequest("POST", srv.URL+f.path, strings.NewReader(f.good))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer t")
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Less(t, resp.StatusCode, 300, "%s %q", f.path, f.good)
			assert.Len(t, b.took(), before+1)
		})
	}

	// a card holder at the kiosk is told to start again, with no detail
	kb := &callsBackend{localeBackend: localeBackend{conf: i18n.English, events: make(chan Event)}}
	ksrv := httptest.NewServer(NewHandler(kb, ServerConfig{Token: []byte("t"), Heartbeat: time.Hour}))
	t.Cleanup(ksrv.Close)
	status, e, _ := callLocale(t, ksrv, "POST", PathCancel+"?audience=holder", `{"Reader":"R0"}`, "Accept-Language", "id")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, i18n.Indonesian.T("holder.body-key-case"), e.Error.Message)
	assert.Empty(t, kb.took())
}
