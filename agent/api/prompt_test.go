package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/i18n"
)

// POST /v1/prompt: the token, a strict body, an answer the agent knows;
// 204 when the backend takes it, 404 not-found when no such prompt waits.
func TestPromptRoute(t *testing.T) {
	b, srv := newLocaleServer(t, i18n.English)
	post := func(body string, token bool) (int, ErrorBody) {
		t.Helper()
		req, err := http.NewRequest("POST", srv.URL+PathPrompt, strings.NewReader(body))
		require.NoError(t, err)
		if token {
			req.Header.Set("Authorization", "Bearer t")
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var eb ErrorBody
		if resp.StatusCode >= 400 {
			require.NoError(t, json.Unmarshal(raw, &eb), "%s", raw)
		} else {
			assert.Empty(t, raw)
		}
		return resp.StatusCode, eb
	}
	b.waiting = "0123abcd"
	status, eb := post(`{"reader":"R0","id":"0123abcd","answer":"continue"}`, false)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, CodeUnauthorized, eb.Error.Code)
	for _, body := range []string{``, `{"reader":"R0","answer":"continue"}`, `{"id":"0123abcd","answer":"yes"}`, `{"id":"0123abcd"}`, `{"id":"0123abcd","answer":"cancel","extra":1}`} {
		status, eb = post(body, true)
		assert.Equal(t, http.StatusBadRequest, status, body)
		assert.Equal(t, CodeBadRequest, eb.Error.Code, body)
	}
	assert.Empty(t, b.answers, "nothing reached the backend")
	status, eb = post(`{"reader":"R0","id":"ffff","answer":"continue"}`, true)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, CodeNotFound, eb.Error.Code)
	status, _ = post(`{"reader":"R0","id":"0123abcd","answer":"continue"}`, true)
	assert.Equal(t, http.StatusNoContent, status)
	assert.Equal(t, []PromptRequest{{Reader: "R0", ID: "0123abcd", Answer: AnswerContinue}}, b.answers)
	// single use
	status, eb = post(`{"reader":"R0","id":"0123abcd","answer":"cancel"}`, true)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, CodeNotFound, eb.Error.Code)
}

// The Go client's AnswerPrompt sends the PromptRequest and tells a prompt
// that no longer waits by its 404.
func TestClientAnswerPrompt(t *testing.T) {
	b := &localeBackend{conf: i18n.Indonesian, events: make(chan Event), waiting: "77"}
	srv := httptest.NewServer(NewHandler(b, ServerConfig{Token: []byte("t")}))
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL, "t")
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.AnswerPrompt(ctx, "", "77", AnswerCancel))
	assert.Equal(t, []PromptRequest{{ID: "77", Answer: AnswerCancel}}, b.answers)
	err = c.AnswerPrompt(ctx, "", "77", AnswerCancel)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusNotFound, ae.Status)
	assert.Equal(t, CodeNotFound, ae.Err.Code)
}
