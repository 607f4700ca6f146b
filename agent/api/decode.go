package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"
)

// maxBody bounds a request body (the guard's http.MaxBytesReader).
const maxBody = 64 << 10

// maxBodyDepth bounds the nesting of a request body: the request types
// are flat objects, so anything deeper is not one of them.
const maxBodyDepth = 32

// Kinds of BodyError: each is also the catalogue code of its message
// (clerk.<kind>, holder.<kind>).
const (
	BodyEmpty        = "body-empty"         // a body is required and there is none (or only white space)
	BodyNull         = "body-null"          // the body is the JSON null
	BodyNotObject    = "body-not-object"    // the body is JSON, but not an object
	BodySyntax       = "body-syntax"        // the body is not valid JSON (or nested too deep)
	BodyTrailing     = "body-trailing"      // more after the object
	BodyTooLarge     = "body-too-large"     // over maxBody bytes
	BodyDuplicateKey = "body-duplicate-key" // a key twice in one object
	BodyKeyCase      = "body-key-case"      // a key that matches a field only case-insensitively
	BodyUnknownKey   = "body-unknown-key"   // a key the request type does not have
	BodyWrongType    = "body-wrong-type"    // a value of the wrong JSON type
	BodyNullValue    = "body-null-value"    // a key whose value is null
	BodyUnexpected   = "body-unexpected"    // a body on a request that takes none

	// POST /v1/cancel's body, well-formed, but naming neither a reader
	// nor "all": true, or both
	CancelUnnamed = "cancel-unnamed"
	CancelBoth    = "cancel-both"
)

// BodyError is a request body the API refuses: 400 bad-request, with a
// message worded by the catalogue for Kind.
type BodyError struct {
	Kind string
	// Key is the offending key (BodyDuplicateKey, BodyKeyCase,
	// BodyUnknownKey, BodyWrongType, BodyNullValue), as a dotted path for
	// a nested object, shortened to maxShownKey characters.
	Key string
	// Want is the key as the API spells it (BodyKeyCase).
	Want string
	// Err is the underlying error, if any (the JSON syntax error).
	Err error
}

func (e *BodyError) Error() string {
	var b strings.Builder
	b.WriteString("request body: ")
	b.WriteString(e.Kind)
	if e.Key != "" {
		fmt.Fprintf(&b, " %q", e.Key)
	}
	if e.Want != "" {
		fmt.Fprintf(&b, " (want %q)", e.Want)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *BodyError) Unwrap() error { return e.Err }

// args are the arguments of the clerk's message of e's kind.
func (e *BodyError) args() []any {
	switch e.Kind {
	case BodyDuplicateKey, BodyUnknownKey, BodyWrongType, BodyNullValue:
		return []any{e.Key}
	case BodyKeyCase:
		return []any{e.Key, e.Want}
	case BodyTooLarge:
		return []any{maxBody}
	}
	return nil
}

// maxShownKey bounds a key quoted in a BodyError.
const maxShownKey = 64

func shownKey(k string) string {
	if len(k) <= maxShownKey {
		return k
	}
	k = k[:maxShownKey]
	for !utf8.ValidString(k) {
		k = k[:len(k)-1]
	}
	return k + "…"
}

// decode reads a request body that must be exactly one JSON object of
// v's type (a pointer to a struct), strictly: no empty body, no null, no
// duplicate key, no key that matches a field only in another case (which
// encoding/json would accept), no unknown key, no null value, nothing
// after the object. Every refusal is a *BodyError.
func decode(r *http.Request, v any) error {
	data, err := readBody(r.Body)
	if err != nil {
		return err
	}
	return decodeStrict(data, v)
}

// noBody checks that a request that takes no body (POST /v1/sync,
// POST /v1/loket/login) has none: a *BodyError otherwise.
func noBody(r *http.Request) error {
	data, err := readBody(r.Body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) != 0 {
		return &BodyError{Kind: BodyUnexpected}
	}
	return nil
}

func readBody(body io.Reader) ([]byte, error) {
	if body == nil {
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || len(data) > maxBody:
		return nil, &BodyError{Kind: BodyTooLarge}
	case err != nil:
		return nil, &BodyError{Kind: BodySyntax, Err: err}
	}
	return data, nil
}

// decodeStrict is decode on a body already read.
func decodeStrict(data []byte, v any) error {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("api: decode into %v: want a pointer to a struct", t)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &BodyError{Kind: BodyEmpty}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return &BodyError{Kind: BodySyntax, Err: err}
	}
	switch tok {
	case nil:
		return &BodyError{Kind: BodyNull}
	case json.Delim('{'):
	default:
		if _, ok := tok.(json.Delim); ok {
			// the array's content must still be well-formed for the
			// kind to be right: a broken one is a syntax error
			if err := skipRest(dec); err != nil {
				return err
			}
		}
		return &BodyError{Kind: BodyNotObject}
	}
	w := walker{dec: dec}
	if err := w.object(t.Elem(), "", 1); err != nil {
		return err
	}
	// Token, not More: More says false before a stray '}' or ']'
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &BodyError{Kind: BodyTrailing}
	}
	// the walk refused every key the struct does not have, exactly: the
	// decoder's own check stays as a second guard
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &BodyError{Kind: BodyWrongType, Key: shownKey(te.Field), Err: err}
		}
		return &BodyError{Kind: BodySyntax, Err: err}
	}
	return nil
}

// walker walks a body's tokens against the type it must decode into.
type walker struct {
	dec *json.Decoder
}

func (w walker) token() (json.Token, error) {
	tok, err := w.dec.Token()
	if err != nil {
		return nil, &BodyError{Kind: BodySyntax, Err: err}
	}
	return tok, nil
}

// object walks an object whose '{' was read, of type t (nil: any).
func (w walker) object(t reflect.Type, path string, depth int) error {
	if depth > maxBodyDepth {
		return &BodyError{Kind: BodySyntax, Err: errors.New("nested too deep")}
	}
	t = deref(t)
	var fields map[string]reflect.Type
	var elem reflect.Type
	switch {
	case t == nil:
	case t.Kind() == reflect.Struct:
		fields = bodyFields(t)
	case t.Kind() == reflect.Map:
		elem = t.Elem()
	default:
		// an object where the type wants something else: the decoder
		// says which key
	}
	seen := map[string]bool{}
	for w.dec.More() {
		tok, err := w.token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return &BodyError{Kind: BodySyntax, Err: errors.New("object key is not a string")}
		}
		name := key
		if path != "" {
			name = path + "." + key
		}
		if seen[key] {
			return &BodyError{Kind: BodyDuplicateKey, Key: shownKey(name)}
		}
		seen[key] = true
		var ft reflect.Type
		if fields != nil {
			var ok bool
			if ft, ok = fields[key]; !ok {
				for f := range fields {
					if strings.EqualFold(f, key) {
						return &BodyError{Kind: BodyKeyCase, Key: shownKey(name), Want: f}
					}
				}
				return &BodyError{Kind: BodyUnknownKey, Key: shownKey(name)}
			}
		} else {
			ft = elem
		}
		if err := w.value(ft, name, depth); err != nil {
			return err
		}
	}
	_, err := w.token() // '}'
	return err
}

// value walks one value of type t (nil: any) at key path.
func (w walker) value(t reflect.Type, path string, depth int) error {
	tok, err := w.token()
	if err != nil {
		return err
	}
	switch tok {
	case nil:
		if t != nil {
			return &BodyError{Kind: BodyNullValue, Key: shownKey(path)}
		}
	case json.Delim('{'):
		return w.object(t, path, depth+1)
	case json.Delim('['):
		if depth+1 > maxBodyDepth {
			return &BodyError{Kind: BodySyntax, Err: errors.New("nested too deep")}
		}
		var elem reflect.Type
		if t = deref(t); t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for w.dec.More() {
			if err := w.value(elem, path, depth+1); err != nil {
				return err
			}
		}
		_, err := w.token() // ']'
		return err
	}
	return nil
}

// skipRest reads the rest of a value whose opening delimiter was read,
// to its end, refusing a syntax error.
func skipRest(dec *json.Decoder) error {
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return &BodyError{Kind: BodySyntax, Err: err}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && t.Kind() == reflect.Interface {
		return nil
	}
	return t
}

// bodyFields are the keys a struct decodes, as encoding/json names them
// (its json tags, else the field's name; embedded structs' fields
// promoted), each with its type.
func bodyFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			if ft := deref(f.Type); ft != nil && ft.Kind() == reflect.Struct {
				for k, v := range bodyFields(ft) {
					if _, dup := out[k]; !dup {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
