// Package strictjson reads JSON the way the project's wire formats mean
// it: exactly one value, no unknown field, no trailing data, and every
// object key spelled exactly as documented (lower-case ASCII letters,
// digits and underscores) and given once. encoding/json alone matches a
// key case-insensitively (even "NIP" or "ſtatus" for a field tagged
// "status") and lets the last of a repeated key win. The renewal import
// and offer query (sync/backoffice) and the renewal offer
// (internal/renewal) use it.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Decode decodes exactly one JSON value into v, refusing unknown
// fields and trailing data, and, before decoding, any object key that
// KeyProblems refuses (the first one is the error, a *KeyError).
// encoding/json alone would match a key case-insensitively (even "NIP" or
// "ſtatus" for a field tagged "status") and let the last of a duplicate
// key win. It is for structs whose JSON keys are all lower-case ASCII
// (the import's, wire.RenewalQuery's, the offer's), not for maps keyed by
// other text.
func Decode(raw []byte, v any) error {
	if ps := KeyProblems(raw); len(ps) > 0 {
		return ps[0]
	}
	return DecodeOne(raw, v)
}

// DecodeOne decodes exactly one JSON value into v, refusing unknown
// fields and trailing data; it does not check the keys (KeyProblems).
func DecodeOne(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the value")
	}
	return nil
}

// KeyError is a refused object key: Field is where it is (the key's
// path, as the RowProblem fields name it: "employment.status",
// "family[0].nik").
type KeyError struct {
	Field  string
	Reason string
}

func (e *KeyError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// keyRE: a key as the formats spell them (lower-case ASCII letters,
// digits and underscores).
var keyRE = regexp.MustCompile(`^[a-z0-9_]+$`)

// KeyProblems walks the tokens of one JSON value and answers every
// object key that is not spelled as the formats spell them (keyRE)
// and every key given twice in one object, compared as encoding/json
// compares them (case-insensitively). Malformed JSON ends the walk
// quietly: decoding reports it.
func KeyProblems(raw []byte) []*KeyError {
	type frame struct {
		object  bool
		path    string
		wantKey bool   // object: the next string is a key
		key     string // object: the key of the value being read
		n       int    // array: index of the next element
		seen    map[string]string
	}
	var (
		out   []*KeyError
		stack []*frame
	)
	join := func(path, key string) string {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	// childPath is the path of the value being read in top.
	childPath := func(top *frame) string {
		if top == nil {
			return ""
		}
		if top.object {
			return join(top.path, top.key)
		}
		return top.path + "[" + strconv.Itoa(top.n) + "]"
	}
	// done notes that a value of top was read.
	done := func(top *frame) {
		switch {
		case top == nil:
		case top.object:
			top.wantKey = true
		default:
			top.n++
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if k, ok := tok.(string); ok && top != nil && top.object && top.wantKey {
			top.wantKey, top.key = false, k
			field := join(top.path, k)
			if !keyRE.MatchString(k) {
				out = append(out, &KeyError{field, fmt.Sprintf("key %q: keys are lower-case, exactly as documented", k)})
			}
			folded := strings.ToUpper(strings.ToLower(k))
			switch first, dup := top.seen[folded]; {
			case !dup:
				top.seen[folded] = k
			case first == k:
				out = append(out, &KeyError{field, fmt.Sprintf("key %q given twice", k)})
			default:
				out = append(out, &KeyError{field, fmt.Sprintf("key %q given twice (first as %q)", k, first)})
			}
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, path: childPath(top), wantKey: true, seen: map[string]string{}})
		case json.Delim('['):
			stack = append(stack, &frame{path: childPath(top)})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				done(stack[len(stack)-1])
			}
		default:
			done(top)
		}
	}
}
