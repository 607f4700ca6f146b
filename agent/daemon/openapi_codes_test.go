package daemon

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"kpe-agent/agent/api"
)

// TestOpenAPIErrorCodes checks the local API's OpenAPI document against
// the error table: every error code is in its ErrorCode enum, the enum has
// no code the agent does not have, and every response that lists codes
// lists only codes of its HTTP status.
func TestOpenAPIErrorCodes(t *testing.T) {
	raw, err := os.ReadFile("../api/openapi.yaml")
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &doc))

	// the API's own refusals (agent/api/server.go) and their statuses
	refusals := map[string]int{
		api.CodeUnauthorized:    http.StatusUnauthorized,
		api.CodeForbiddenOrigin: http.StatusForbidden,
		api.CodeForbiddenHost:   http.StatusForbidden,
		api.CodeForbiddenScope:  http.StatusForbidden,
		api.CodeNotFound:        http.StatusNotFound,
		api.CodeBadRequest:      http.StatusBadRequest,
		api.CodeTooManyStreams:  http.StatusTooManyRequests,
	}
	statusOf := func(code string) (int, bool) {
		if c, ok := codes[code]; ok {
			return c.status, true
		}
		s, ok := refusals[code]
		return s, ok
	}

	enum := map[string]bool{}
	list, ok := oaLookup(doc, "components", "schemas", "ErrorCode", "enum").([]any)
	require.True(t, ok, "components.schemas.ErrorCode.enum missing")
	for _, c := range list {
		enum[c.(string)] = true
	}
	for code, c := range codes {
		assert.True(t, enum[code], "error code %s (HTTP %d) is not in the document's ErrorCode enum", code, c.status)
	}
	for code := range refusals {
		assert.True(t, enum[code], "refusal %s is not in the document's ErrorCode enum", code)
	}
	for code := range enum {
		_, ok := statusOf(code)
		assert.True(t, ok, "the document lists %s, which is no error code of the agent", code)
	}

	// per-response code lists: under paths and components.responses
	checked := 0
	check := func(where, status string, resp any) {
		resp = oaDeref(t, doc, resp)
		want, err := strconv.Atoi(status)
		if err != nil || want < 400 {
			return
		}
		for _, codes := range oaCodeLists(resp) {
			checked++
			for _, c := range codes {
				got, ok := statusOf(c)
				if assert.True(t, ok, "%s %s lists unknown code %s", where, status, c) {
					assert.Equal(t, want, got, "%s lists %s under %s, but errors.go answers it with %d", where, c, status, got)
				}
			}
		}
	}
	paths, _ := doc["paths"].(map[string]any)
	for p, item := range paths {
		for method, op := range item.(map[string]any) {
			responses, _ := oaLookup(op, "responses").(map[string]any)
			for status, resp := range responses {
				check(strings.ToUpper(method)+" "+p, status, resp)
			}
		}
	}
	assert.Greater(t, checked, 20)

	// the events' message codes: the prompts and outcomes of errors.go
	var msgCodes []string
	for _, c := range oaLookup(doc, "components", "schemas", "Event", "properties", "message_code", "enum").([]any) {
		msgCodes = append(msgCodes, c.(string))
	}
	assert.ElementsMatch(t, []string{PromptPlaceFinger, PromptConfirmLastTry, OutcomeRecorded, OutcomePaymentDone, OutcomePaymentNotDone, OutcomePaymentPending}, msgCodes)
}

func oaLookup(m any, keys ...string) any {
	for _, k := range keys {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[k]
	}
	return m
}

// oaDeref follows a local $ref.
func oaDeref(t *testing.T, doc map[string]any, n any) any {
	for {
		ref, ok := oaLookup(n, "$ref").(string)
		if !ok {
			return n
		}
		p, ok := strings.CutPrefix(ref, "#/")
		require.True(t, ok, "non-local $ref %q", ref)
		n = oaLookup(doc, strings.Split(p, "/")...)
		require.NotNil(t, n, "$ref %q does not resolve", ref)
	}
}

// oaCodeLists returns every enum of error.properties.code below n.
func oaCodeLists(n any) [][]string {
	var out [][]string
	switch v := n.(type) {
	case map[string]any:
		if e, ok := oaLookup(v, "error", "properties", "code", "enum").([]any); ok {
			var codes []string
			for _, c := range e {
				codes = append(codes, c.(string))
			}
			out = append(out, codes)
		}
		for _, x := range v {
			out = append(out, oaCodeLists(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, oaCodeLists(x)...)
		}
	}
	return out
}
