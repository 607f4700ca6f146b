package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/i18n"
)

// localeBackend records the locale each call was given and words its
// errors and events with the catalogue, as the daemon does (without
// configured overrides).
type localeBackend struct {
	conf    i18n.Lang
	got     []Locale
	events  chan Event
	answers []PromptRequest // prompt answers taken
	waiting string          // the ID of the prompt that waits ("" none)
}

func (b *localeBackend) word(code string, loc Locale) string {
	return loc.Lang.T(loc.Audience.Key(code))
}

func (b *localeBackend) Health(loc Locale) Health {
	b.got = append(b.got, loc)
	return Health{Status: "ok"}
}
func (b *localeBackend) Readers(loc Locale) []Reader {
	b.got = append(b.got, loc)
	return []Reader{{Name: "r", Error: &Error{Code: "no-card", Message: b.word("no-card", loc)}}}
}
func (b *localeBackend) CardView(string, Locale) (any, error) { return nil, nil }
func (b *localeBackend) Prefill(string) (Prefill, error)      { return Prefill{}, nil }
func (b *localeBackend) Authenticate(_ context.Context, req AuthRequest) (AuthResult, error) {
	b.got = append(b.got, Locale{Lang: i18n.Lang(req.Lang), Audience: i18n.Audience(req.Audience)})
	return AuthResult{}, errUnknownService
}
func (b *localeBackend) Cancel(context.Context, string) bool { return false }
func (b *localeBackend) AnswerPrompt(_ context.Context, req PromptRequest) bool {
	if b.waiting == "" || req.ID != b.waiting {
		return false
	}
	b.waiting = ""
	b.answers = append(b.answers, req)
	return true
}
func (b *localeBackend) Queue() (QueueStatus, error) {
	return QueueStatus{}, nil
}
func (b *localeBackend) Sync(_ context.Context, loc Locale) (SyncResult, error) {
	b.got = append(b.got, loc)
	return SyncResult{Error: &Error{Code: "sync-failed", Message: b.word("sync-failed", loc)}}, nil
}
func (b *localeBackend) Subscribe(uint64) ([]Event, <-chan Event, func()) {
	return nil, b.events, func() {}
}
func (b *localeBackend) Localize(ev Event, loc Locale) Event {
	if ev.MessageCode != "" {
		ev.Message = b.word(ev.MessageCode, loc)
	}
	return ev
}
func (b *localeBackend) Language() i18n.Lang { return b.conf }
func (b *localeBackend) KioskView(string, string) (KioskView, error) {
	return KioskView{}, errUnknownService
}
func (b *localeBackend) KioskPhoto(string, string) ([]byte, error) { return nil, errUnknownService }
func (b *localeBackend) CodesToday() (TodayCodes, error)           { return TodayCodes{}, errUnknownService }
func (b *localeBackend) ErrorFor(err error, loc Locale) (int, Error) {
	return http.StatusBadRequest, Error{Code: "unknown-service", Message: b.word("unknown-service", loc)}
}

var errUnknownService = errors.New("unknown service")

func newLocaleServer(t *testing.T, conf i18n.Lang) (*localeBackend, *httptest.Server) {
	b := &localeBackend{conf: conf, events: make(chan Event, 4)}
	srv := httptest.NewServer(NewHandler(b, ServerConfig{Token: []byte("t"), Heartbeat: time.Hour}))
	t.Cleanup(srv.Close)
	return b, srv
}

func callLocale(t *testing.T, srv *httptest.Server, method, path, body string, hdr ...string) (int, ErrorBody, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer t")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var raw json.RawMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&raw))
	var eb ErrorBody
	_ = json.Unmarshal(raw, &eb)
	return resp.StatusCode, eb, raw
}

// The language rule, step by step, as every handler applies it.
func TestLanguageRule(t *testing.T) {
	b, srv := newLocaleServer(t, i18n.English)
	cases := []struct {
		path, body string
		hdr        []string
		want       Locale
	}{
		{PathAuth + "?lang=id", `{"service":"x","operator":"o","lang":"en"}`, []string{"Accept-Language", "en"}, Locale{i18n.Indonesian, i18n.Clerk}},
		{PathAuth, `{"service":"x","operator":"o","lang":"id"}`, []string{"Accept-Language", "en"}, Locale{i18n.Indonesian, i18n.Clerk}},
		{PathAuth, `{"service":"x","operator":"o"}`, []string{"Accept-Language", "id-ID,en;q=0.5"}, Locale{i18n.Indonesian, i18n.Clerk}},
		{PathAuth, `{"service":"x","operator":"o"}`, nil, Locale{i18n.English, i18n.Clerk}},
		{PathAuth + "?audience=holder", `{"service":"x","operator":"o"}`, nil, Locale{i18n.English, i18n.Holder}},
		{PathAuth, `{"service":"x","operator":"o","audience":"holder","lang":"id"}`, nil, Locale{i18n.Indonesian, i18n.Holder}},
	}
	for _, c := range cases {
		b.got = nil
		status, eb, _ := callLocale(t, srv, "POST", c.path, c.body, c.hdr...)
		assert.Equal(t, http.StatusBadRequest, status)
		require.Len(t, b.got, 1, c.path)
		assert.Equal(t, c.want, b.got[0], "%s %s %v", c.path, c.body, c.hdr)
		assert.Equal(t, c.want.Lang.T(c.want.Audience.Key("unknown-service")), eb.Error.Message)
	}

	// a GET's query and header; the sync answer's error too
	b.got = nil
	_, _, raw := callLocale(t, srv, "GET", PathReaders+"?audience=holder", "", "Accept-Language", "id")
	assert.Equal(t, []Locale{{i18n.Indonesian, i18n.Holder}}, b.got)
	assert.Contains(t, string(raw), i18n.Indonesian.T("holder.no-card"))
	_, _, raw = callLocale(t, srv, "POST", PathSync+"?lang=id", "")
	assert.Contains(t, string(raw), i18n.Indonesian.T("clerk.sync-failed"))
}

// The API's own refusals follow the rule too, and a card holder is never
// shown the technical detail.
func TestRefusalsFollowTheRule(t *testing.T) {
	_, srv := newLocaleServer(t, i18n.English)
	req, _ := http.NewRequest("GET", srv.URL+PathReaders, nil)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	var eb ErrorBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&eb))
	resp.Body.Close()
	assert.Equal(t, i18n.English.T("clerk.unauthorized"), eb.Error.Message, "the terminal's language without ?lang")

	// an unknown audience in the body: refused in the body's language
	status, eb, _ := callLocale(t, srv, "POST", PathAuth, `{"service":"x","operator":"o","lang":"id","audience":"kiosk"}`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, CodeBadRequest, eb.Error.Code)
	assert.True(t, strings.HasPrefix(eb.Error.Message, i18n.Indonesian.T("clerk.bad-request")+" ("), eb.Error.Message)
	assert.Contains(t, eb.Error.Message, "audience")

	// a holder's refusal carries no detail
	status, eb, _ = callLocale(t, srv, "POST", PathAuth+"?audience=holder", `{"unknown":1}`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, i18n.English.T("holder.bad-request"), eb.Error.Message)

	// health answers anyone, whatever the audience says
	resp, err = srv.Client().Get(srv.URL + PathHealth + "?audience=nobody")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	status, eb, _ = callLocale(t, srv, "GET", PathQueue+"?audience=nobody", "")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, CodeBadRequest, eb.Error.Code)
}

// Each event-stream subscriber gets every event worded for itself.
func TestEventsWordedPerSubscriber(t *testing.T) {
	b, srv := newLocaleServer(t, i18n.Indonesian)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+PathEvents+"?lang=en&audience=holder", nil)
	req.Header.Set("Authorization", "Bearer t")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b.events <- Event{Seq: 1, Type: EventSession, State: StateFingerprint, MessageCode: "place-finger", Message: "worded for someone else"}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var ev Event
			require.NoError(t, json.Unmarshal([]byte(data), &ev))
			assert.Equal(t, i18n.English.T("holder.place-finger"), ev.Message)
			return
		}
	}
	t.Fatal("no event")
}
