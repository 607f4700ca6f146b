package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"kpe-agent/agent/cards"
)

// loadOpenAPI parses the embedded document.
func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(openAPI, &doc))
	require.Equal(t, "3.1.0", doc["openapi"])
	return doc
}

// oaNode follows keys from m; nil when one is missing.
func oaNode(m any, keys ...string) any {
	for _, k := range keys {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[k]
	}
	return m
}

// oaResolve follows a local $ref.
func oaResolve(t *testing.T, doc map[string]any, n any) map[string]any {
	t.Helper()
	m, _ := n.(map[string]any)
	for m != nil {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		p, ok := strings.CutPrefix(ref, "#/")
		require.True(t, ok, "non-local $ref %q", ref)
		m, _ = oaNode(doc, strings.Split(p, "/")...).(map[string]any)
		require.NotNil(t, m, "$ref %q does not resolve", ref)
	}
	return m
}

// pathConstants reads the Path* constants of types.go.
func pathConstants(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "types.go", nil, 0)
	require.NoError(t, err)
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Path") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				require.True(t, ok, "%s is not a string literal", name.Name)
				v, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				out[name.Name] = v
			}
		}
	}
	require.NotEmpty(t, out)
	return out
}

func TestOpenAPIPaths(t *testing.T) {
	doc := loadOpenAPI(t)
	paths, ok := doc["paths"].(map[string]any)
	require.True(t, ok)
	consts := pathConstants(t)
	values := map[string]bool{}
	for name, p := range consts {
		values[p] = true
		assert.Contains(t, paths, p, "%s (%s) is not documented", name, p)
	}
	for p := range paths {
		assert.True(t, values[p], "documented path %s is not a Path constant of types.go", p)
	}
	// every operation answers something and names its errors
	for p, item := range paths {
		for method, op := range item.(map[string]any) {
			responses, ok := oaNode(op, "responses").(map[string]any)
			require.True(t, ok, "%s %s: no responses", method, p)
			if !slices.Contains([]string{PathHealth, PathOpenAPI, PathKiosk, PathLoket, PathClientJS, PathClientDTS}, p) {
				assert.Contains(t, responses, "401", "%s %s needs the token: document 401", method, p)
			}
			assert.Contains(t, responses, "403", "%s %s: the Host and Origin checks apply", method, p)
		}
	}
}

// jsonFields returns the JSON names of t's fields and those always
// emitted (no omitzero, and no omitempty unless on a struct, where it has
// no effect).
func jsonFields(typ reflect.Type) (names []string, always []string, fields map[string]reflect.StructField) {
	fields = map[string]reflect.StructField{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
		fields[name] = f
		omit := slices.Contains(strings.Split(opts, ","), "omitzero") ||
			(slices.Contains(strings.Split(opts, ","), "omitempty") && f.Type.Kind() != reflect.Struct)
		if !omit {
			always = append(always, name)
		}
	}
	sort.Strings(names)
	sort.Strings(always)
	return names, always, fields
}

func oaKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func oaStrs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	sort.Strings(out)
	return out
}

// checkSchema compares a schema with the Go type it documents, nested
// structs included: the same property names, and for answers the
// required properties are those always emitted.
func checkSchema(t *testing.T, doc map[string]any, where string, typ reflect.Type, schema any, answer bool) {
	t.Helper()
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
		typ = typ.Elem()
		if s := oaResolve(t, doc, schema); s["type"] == "array" {
			schema = s["items"]
		}
	}
	if typ.Kind() != reflect.Struct || typ == reflect.TypeFor[time.Time]() {
		return
	}
	s := oaResolve(t, doc, schema)
	require.NotNil(t, s, "%s: no schema", where)
	props, _ := s["properties"].(map[string]any)
	names, always, fields := jsonFields(typ)
	if !assert.Equal(t, names, oaKeys(props), "%s: properties of %s", where, typ) {
		return
	}
	assert.Equal(t, false, s["additionalProperties"], "%s: additionalProperties", where)
	if answer {
		var required []string
		if s["required"] != nil {
			required = oaStrs(s["required"])
		}
		assert.Equal(t, always, required, "%s: required properties of %s (fields always emitted)", where, typ)
	}
	for _, n := range names {
		checkSchema(t, doc, where+"."+n, fields[n].Type, props[n], answer)
	}
}

func TestOpenAPISchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	schemas := oaNode(doc, "components", "schemas")
	for _, c := range []struct {
		name   string
		v      any
		answer bool
	}{
		{"Health", Health{}, true},
		{"SAM", SAM{}, true},
		{"Reader", Reader{}, true},
		{"AuthRequest", AuthRequest{}, false},
		{"AuthResult", AuthResult{}, true},
		{"CancelRequest", CancelRequest{}, false},
		{"Prompt", Prompt{}, true},
		{"PromptRequest", PromptRequest{}, false},
		{"Error", Error{}, true},
		{"ErrorBody", ErrorBody{}, true},
		{"Prefill", Prefill{}, true},
		{"QueueStatus", QueueStatus{}, true},
		{"SyncStatus", SyncStatus{}, true},
		{"SyncResult", SyncResult{}, true},
		{"Event", Event{}, true},
		{"CardView", cards.View{}, true},
		{"KioskView", KioskView{}, true},
		{"RenewalView", RenewalView{}, true},
		{"RenewalField", RenewalField{}, true},
		{"RenewalRequest", RenewalRequest{}, false},
		{"PurseRequest", PurseRequest{}, false},
		{"PurseView", PurseView{}, true},
		{"TopUpView", TopUpView{}, true},
		{"PurseTransaction", PurseTransaction{}, true},
		{"PayRequest", PayRequest{}, false},
		{"PayStatusRequest", PayStatusRequest{}, false},
		{"PayResult", PayResult{}, true},
		{"LoketLogin", LoketLogin{}, true},
		{"TodayCodes", TodayCodes{}, true},
	} {
		s := oaNode(schemas, c.name)
		require.NotNil(t, s, "schema %s missing", c.name)
		checkSchema(t, doc, c.name, reflect.TypeOf(c.v), s, c.answer)
	}
	// the session states and event types of types.go
	states := oaStrs(oaNode(schemas, "SessionState", "enum"))
	for _, s := range []string{StateIdle, StateDetected, StateIdentified, StateAuthenticated, StateFingerprint, StatePrompt, StateVerified, StateRecorded, StateRemoved, StateFailed} {
		assert.Contains(t, states, s)
	}
	assert.Len(t, states, 10)
	// the prompt kinds and answers of types.go
	assert.Equal(t, []string{PromptLastTry}, oaStrs(oaNode(schemas, "Prompt", "properties", "kind", "enum")))
	assert.Equal(t, []string{AnswerCancel, AnswerContinue}, oaStrs(oaNode(schemas, "PromptRequest", "properties", "answer", "enum")))
	assert.Equal(t, []string{CodeQueued, CodeRejected, CodeSynced}, oaStrs(oaNode(schemas, "TodayCode", "properties", "state", "enum")))
	types := oaStrs(oaNode(schemas, "Event", "properties", "type", "enum"))
	assert.Equal(t, []string{EventPayment, EventReader, EventRenewal, EventSAM, EventService, EventSession, EventSync, EventTopUp}, types)
}

// errorEnums finds every per-response list of error codes: the enum of
// error.properties.code under a response's JSON schema.
func errorEnums(n any, found func(codes []string)) {
	switch v := n.(type) {
	case map[string]any:
		if e, ok := oaNode(v, "error", "properties", "code", "enum").([]any); ok {
			var codes []string
			for _, c := range e {
				codes = append(codes, c.(string))
			}
			found(codes)
		}
		for _, x := range v {
			errorEnums(x, found)
		}
	case []any:
		for _, x := range v {
			errorEnums(x, found)
		}
	}
}

// refusals are the API's own error codes (server.go).
var refusals = []string{CodeUnauthorized, CodeForbiddenOrigin, CodeForbiddenHost, CodeNotFound, CodeBadRequest, CodeForbiddenScope, CodeTooManyStreams}

func TestOpenAPIRefusalCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	enum := oaStrs(oaNode(doc, "components", "schemas", "ErrorCode", "enum"))
	for _, code := range refusals {
		assert.Contains(t, enum, code, "the API's refusal %s is not in ErrorCode", code)
	}
	n := 0
	errorEnums(doc, func(codes []string) {
		n++
		for _, c := range codes {
			assert.Contains(t, enum, c, "a response lists %s, which ErrorCode does not", c)
		}
	})
	assert.Greater(t, n, 10)
}

func TestOpenAPIServed(t *testing.T) {
	h := NewHandler(nil, ServerConfig{Token: []byte("t")})
	req := httptest.NewRequest(http.MethodGet, PathOpenAPI, nil)
	req.Host = "127.0.0.1"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/yaml", rec.Header().Get("Content-Type"))
	b, _ := io.ReadAll(rec.Body)
	assert.Equal(t, openAPI, b)
}
