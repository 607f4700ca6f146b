package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/i18n"
)

// decode takes exactly one JSON object with the request type's keys, as
// spelled, each once; anything else is a *BodyError of its kind.
func TestDecodeStrict(t *testing.T) {
	for body, want := range map[string]string{
		`{"service":"askes"}`:                    "",
		" {\"service\":\"askes\"} \n":            "",
		`{}`:                                     "",
		`{"service":"askes","wait_seconds":30}`:  "",
		``:                                       BodyEmpty,
		" \r\n\t":                                BodyEmpty,
		`null`:                                   BodyNull,
		` null `:                                 BodyNull,
		`[]`:                                     BodyNotObject,
		`[{"service":"askes"}]`:                  BodyNotObject,
		`"askes"`:                                BodyNotObject,
		`42`:                                     BodyNotObject,
		`true`:                                   BodyNotObject,
		`[`:                                      BodySyntax,
		`{"service":`:                            BodySyntax,
		`{"service" "askes"}`:                    BodySyntax,
		`{service:"askes"}`:                      BodySyntax,
		`{"service":"askes",}`:                   BodySyntax,
		`{"service":"askes"}}`:                   BodyTrailing,
		`{"service":"askes"}]`:                   BodyTrailing,
		`{"service":"askes"} {}`:                 BodyTrailing,
		`{"service":"askes"} x`:                  BodyTrailing,
		`{"service":"askes"} null`:               BodyTrailing,
		`{"service":"askes","service":"taspen"}`: BodyDuplicateKey,
		`{"service":"askes","service":"askes"}`:  BodyDuplicateKey,
		`{"Service":"askes"}`:                    BodyKeyCase,
		`{"SERVICE":"askes"}`:                    BodyKeyCase,
		`{"ſervice":"askes"}`:                    BodyKeyCase, // encoding/json folds the long s too
		`{"service":"askes","Service":"taspen"}`: BodyKeyCase,
		`{"service":"askes","bogus":1}`:          BodyUnknownKey,
		`{"Reader2":"x"}`:                        BodyUnknownKey,
		`{"service":null}`:                       BodyNullValue,
		`{"service":"askes","wait_seconds":"1"}`: BodyWrongType,
		`{"service":"askes","wait_seconds":1.5}`: BodyWrongType,
		`{"service":["askes"]}`:                  BodyWrongType,
		`{"service":{"a":1,"a":2}}`:              BodyDuplicateKey,
		`{"service":"askes","prompts":"true"}`:   BodyWrongType,
		`{"service":"askes","confirm_last_try":1}`: BodyWrongType,
	} {
		var req AuthRequest
		err := decode(httptest.NewRequest("POST", PathAuth, strings.NewReader(body)), &req)
		if want == "" {
			assert.NoError(t, err, "%q", body)
			continue
		}
		var be *BodyError
		if assert.True(t, errors.As(err, &be), "%q: %v", body, err) {
			assert.Equal(t, want, be.Kind, "%q: %v", body, err)
		}
	}

	// what the refusal names
	var req AuthRequest
	err := decodeStrict([]byte(`{"operator":"o","Wait_Seconds":3}`), &req)
	assert.Equal(t, &BodyError{Kind: BodyKeyCase, Key: "Wait_Seconds", Want: "wait_seconds"}, err)
	err = decodeStrict([]byte(`{"service":{"x":1,"x":2}}`), &req)
	assert.Equal(t, &BodyError{Kind: BodyDuplicateKey, Key: "service.x"}, err)
	long := strings.Repeat("k", 500)
	err = decodeStrict([]byte(`{"`+long+`":1}`), &req)
	var be *BodyError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, strings.Repeat("k", maxShownKey)+"…", be.Key)

	// too deep, too large
	deep := strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)
	err = decodeStrict([]byte(`{"service":`+deep+`}`), &req)
	require.ErrorAs(t, err, &be)
	assert.Equal(t, BodySyntax, be.Kind)
	r := httptest.NewRequest("POST", PathAuth, strings.NewReader(`{"service":"`+strings.Repeat("a", maxBody)+`"}`))
	err = decode(r, &req)
	require.ErrorAs(t, err, &be)
	assert.Equal(t, BodyTooLarge, be.Kind)

	// a body where none is taken
	assert.NoError(t, noBody(httptest.NewRequest("POST", PathSync, nil)))
	assert.NoError(t, noBody(httptest.NewRequest("POST", PathSync, strings.NewReader(" \n"))))
	require.ErrorAs(t, noBody(httptest.NewRequest("POST", PathSync, strings.NewReader("{}"))), &be)
	assert.Equal(t, BodyUnexpected, be.Kind)
}

// Every kind of refusal has its sentence in both languages, for both
// audiences, and the clerk's names the key.
func TestBodyErrorsAreWorded(t *testing.T) {
	kinds := []*BodyError{
		{Kind: BodyEmpty}, {Kind: BodyNull}, {Kind: BodyNotObject}, {Kind: BodySyntax}, {Kind: BodyTrailing},
		{Kind: BodyTooLarge}, {Kind: BodyDuplicateKey, Key: "k1"}, {Kind: BodyKeyCase, Key: "K1", Want: "k1"},
		{Kind: BodyUnknownKey, Key: "k1"}, {Kind: BodyWrongType, Key: "k1"}, {Kind: BodyNullValue, Key: "k1"},
		{Kind: BodyUnexpected}, {Kind: CancelUnnamed}, {Kind: CancelBoth},
	}
	for _, e := range kinds {
		for _, l := range i18n.Langs {
			for _, a := range []i18n.Audience{i18n.Clerk, i18n.Holder} {
				require.True(t, i18n.Has(a.Key(e.Kind)), "%s has no %s", e.Kind, a.Key(e.Kind))
			}
			msg := l.T(i18n.Clerk.Key(e.Kind), e.args()...)
			assert.NotContains(t, msg, "%!", "%s in %s", e.Kind, l)
			if e.Key != "" {
				assert.Contains(t, msg, `"`+e.Key+`"`, "%s in %s", e.Kind, l)
			}
		}
	}
}

// topKeys counts the keys of a JSON object's top level (the fuzz test's
// oracle for duplicates, independent of the walker).
func topKeys(t *testing.T, data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	n, depth, key := 0, 0, false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return n
		}
		require.NoError(t, err)
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			key = tok == json.Delim('{') && depth == 1
			continue
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 1 {
			if key {
				n++
			}
			key = !key
		}
	}
}

// FuzzDecodeStrict: any body either decodes into one object with only the
// type's keys, each once, as spelled, or is refused with a *BodyError;
// never a panic.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		`{"service":"askes","operator":"o","wait_seconds":30,"prompts":true}`,
		`{"reader":"R0","id":"p","answer":"continue"}`,
		`{"service":"askes","service":"taspen"}`, `{"Service":"x"}`, `null`, ``, `{} {}`, `{"a":1}`,
		`{"reader":null}`, `[{"x":1}]`, `{"service":{"a":{"a":[1,{"b":null}]}}}`, "{\"ſervice\":\"x\"}",
		`{"wait_seconds":1e400}`, `{"service":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	allowed := map[string]bool{}
	for k := range bodyFields(reflect.TypeFor[AuthRequest]()) {
		allowed[k] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req AuthRequest
		err := decodeStrict(data, &req)
		if err != nil {
			var be *BodyError
			require.ErrorAs(t, err, &be, "%q", data)
			require.True(t, i18n.Has(i18n.Clerk.Key(be.Kind)), "%q: kind %s has no message", data, be.Kind)
			return
		}
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(data, &m), "%q accepted", data)
		require.NotNil(t, m, "%q accepted", data)
		for k, v := range m {
			require.True(t, allowed[k], "%q accepted with key %q", data, k)
			require.NotEqual(t, "null", string(v), "%q accepted with a null value", data)
		}
		require.Equal(t, len(m), topKeys(t, data), "%q accepted with a key twice", data)
	})
}
