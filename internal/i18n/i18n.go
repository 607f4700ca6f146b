// Package i18n is the one catalogue of every sentence kpe-agent shows to
// people: clerks at a counter, card holders at a kiosk, technicians
// running kpectl, and back-office staff. Each entry has a key and its text
// in Bahasa Indonesia (the default) and English; docs/i18n.md describes the
// keys, the audiences and the language rule.
//
// A sentence for the clerk and one for the card holder are separate
// entries: the counter speaks to the clerk ("Minta pemegang kartu ..."),
// the kiosk to the holder ("Anda ..."). The keys of one audience share a
// prefix (see Audience.Key).
//
// Lookups never fail at run time: a missing key yields the key itself, and
// the package's tests make sure no key in use is missing, no entry lacks a
// language, and no entry is unused.
package i18n

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/text/language"
)

// Lang is a message language.
type Lang string

// The languages of the catalogue. Indonesian is the default.
const (
	Indonesian Lang = "id"
	English    Lang = "en"
)

// Default is the language used when nothing else is said.
const Default = Indonesian

// Langs lists the catalogue's languages, the default first.
var Langs = []Lang{Indonesian, English}

// ErrUnsupported: a language the catalogue does not have.
type ErrUnsupported struct{ Value string }

func (e *ErrUnsupported) Error() string {
	return fmt.Sprintf("unsupported language %q: use id (Bahasa Indonesia) or en (English)", e.Value)
}

// Parse reads a language code: "id" or "en", in any case, with or without
// a region ("en-GB", "id_ID"). The old ISO 639 code "in" is Indonesian.
func Parse(s string) (Lang, error) {
	base, _, _ := strings.Cut(strings.ReplaceAll(strings.TrimSpace(s), "_", "-"), "-")
	switch strings.ToLower(base) {
	case "id", "in":
		return Indonesian, nil
	case "en":
		return English, nil
	}
	return "", &ErrUnsupported{Value: s}
}

// OrDefault is l, or the default language when l is not one of the
// catalogue's.
func (l Lang) OrDefault() Lang {
	if p, err := Parse(string(l)); err == nil {
		return p
	}
	return Default
}

// Message is one catalogue entry: the same sentence in both languages. A
// text may hold fmt verbs; both languages take the same arguments in the
// same order.
type Message struct {
	ID string // Bahasa Indonesia
	EN string // English
}

// In returns the text in lang (the default language for any other).
func (m Message) In(l Lang) string {
	if l.OrDefault() == English {
		return m.EN
	}
	return m.ID
}

// T returns the text of key in l, formatted with args. A key not in the
// catalogue yields the key itself (tests keep that from happening).
func (l Lang) T(key string, args ...any) string {
	m, ok := catalogue[key]
	if !ok {
		return key
	}
	s := m.In(l)
	if len(args) > 0 {
		s = fmt.Sprintf(s, args...)
	}
	return s
}

// Text is a sentence in both languages at once, for outputs that carry both
// (kpectl doctor --json).
type Text struct {
	ID string `json:"id"`
	EN string `json:"en"`
}

// In returns the text in l (the default language for any other).
func (t Text) In(l Lang) string {
	if l.OrDefault() == English {
		return t.EN
	}
	return t.ID
}

// IsZero reports an empty text.
func (t Text) IsZero() bool { return t.ID == "" && t.EN == "" }

// Both returns key's text in both languages, formatted with args.
func Both(key string, args ...any) Text {
	return Text{ID: Indonesian.T(key, args...), EN: English.T(key, args...)}
}

// Has reports whether key is in the catalogue.
func Has(key string) bool {
	_, ok := catalogue[key]
	return ok
}

// keys returns every key, sorted.
func keys() []string {
	keys := make([]string, 0, len(catalogue))
	for k := range catalogue {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// WithPrefix returns the entries whose keys start with prefix, keyed by
// the rest of the key, in l: the table a page or a client needs.
func WithPrefix(prefix string, l Lang) map[string]string {
	out := map[string]string{}
	for k, m := range catalogue {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			out[rest] = m.In(l)
		}
	}
	return out
}

// TableJSON is the entries under prefix in every language, keyed by
// language and by the rest of the key, as JSON: the word table a page
// carries so that it can switch language without a round trip.
// json.Marshal escapes <, > and &, so the table is safe inside a script
// element or an attribute.
func TableJSON(prefix string) []byte {
	t := map[Lang]map[string]string{}
	for _, l := range Langs {
		t[l] = WithPrefix(prefix, l)
	}
	b, _ := json.Marshal(t) // maps of strings always marshal
	return b
}

// Audience is who reads a sentence.
type Audience string

// The audiences of frontline messages: the clerk at a counter (the
// default) and the card holder at a self-service kiosk.
const (
	Clerk  Audience = "clerk"
	Holder Audience = "holder"
)

// ParseAudience reads "clerk" or "holder" ("" is the clerk).
func ParseAudience(s string) (Audience, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", string(Clerk):
		return Clerk, nil
	case string(Holder):
		return Holder, nil
	}
	return "", fmt.Errorf("unsupported audience %q: use clerk or holder", s)
}

// Key returns the catalogue key of a frontline message (an API error code
// such as "no-card", or a step such as "place-finger") for the audience:
// "clerk.no-card" or "holder.no-card".
func (a Audience) Key(code string) string {
	if a == Holder {
		return "holder." + code
	}
	return "clerk." + code
}

// Negotiate applies the language rule of every interface that has a
// request: the request's lang parameter (?lang=), then the lang field of
// its body, then its Accept-Language header, then the configured language
// (terminal.language), then Indonesian. An empty or unsupported value at a
// step passes to the next one. docs/i18n.md states the rule.
func Negotiate(query, body, acceptLanguage string, configured Lang) Lang {
	for _, v := range []string{query, body} {
		if l, err := Parse(v); err == nil {
			return l
		}
	}
	if l, ok := fromAcceptLanguage(acceptLanguage); ok {
		return l
	}
	return configured.OrDefault()
}

// fromAcceptLanguage picks the catalogue language the header prefers most
// (RFC 9110 quality values; a language with q=0 is never picked). Each
// entry is read on its own, so one malformed entry does not discard the
// others.
func fromAcceptLanguage(h string) (Lang, bool) {
	var best Lang
	var bestQ float32
	for _, entry := range strings.Split(h, ",") {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		tags, qs, err := language.ParseAcceptLanguage(entry)
		if err != nil || len(tags) != 1 {
			continue
		}
		base, _ := tags[0].Base()
		l, err := Parse(base.String())
		// the first of equal quality wins
		if err != nil || qs[0] <= 0 || qs[0] <= bestQ {
			continue
		}
		best, bestQ = l, qs[0]
	}
	return best, best != ""
}
