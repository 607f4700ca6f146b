package logging

import (
	"context"
	"encoding"
	"encoding/json"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"unicode"
)

// Redacted replaces the value of a personal-data attribute.
const Redacted = "[redacted]"

// A key is split into lower-case words (holder_name, holderName,
// HolderName and holder-name are holder + name), then matched against
// the lists below. Short tokens match whole words only, so that nip
// does not catch snippet, nor kk bookkeeping.
var (
	// personalWords are words that make a key personal data wherever
	// they appear: nik_hash, no_kk, bpjs_number, card_uid, no_ktp,
	// mother, kpe_tambahan (a family member's card).
	personalWords = set("nik", "nip", "kk", "nokk", "bpjs", "npwp", "uid", "subject", "dob",
		"gender", "sex", "kelamin", "agama", "religion", "passport", "paspor", "hp", "telp",
		"ktp", "ibu", "mother", "mothers", "maiden", "tambahan")
	// personalParts make a key personal data when the key (its words
	// joined) contains them: tanggal_lahir, birthDate, face_photo,
	// finger_templates, homephone, id_pns, no_taspen, card_number,
	// nomor_induk, ibu_kandung, chip_serial.
	personalParts = []string{"birth", "lahir", "phone", "telepon", "email", "photo", "foto",
		"template", "minutiae", "idpns", "taspen", "taperum", "ktpnum", "noktp", "cardnum",
		"nomorkartu", "nokartu", "nomorinduk", "noinduk", "kandung", "cardserial", "chipserial"}
	// personalKeys are whole keys (words joined) that are personal data.
	personalKeys = set("cardno", "nomorkk", "fullname", "namalengkap")
	// nameWords name a person, or a place where one lives, unless the key
	// is about something technical (reader_name, file_name, ip_address):
	// holder_name, nama_ibu, home_address.
	nameWords = []string{"name", "nama", "address", "alamat"}
	// technical are the words that make name and address harmless: the
	// name of a reader, a file, a host, a service...
	technical = set("reader", "file", "host", "service", "terminal", "site", "server", "device", "app",
		"application", "key", "field", "group", "attr", "metric", "event", "ip", "mac", "remote",
		"local", "listen", "peer", "bind", "socket", "proxy", "process", "program", "driver", "applet",
		"profile", "sam", "slot", "type", "kind", "code", "path", "dir", "module", "package", "func",
		"method", "env", "var", "flag", "config", "param", "header", "queue", "bucket", "db", "table",
		"column", "network", "interface", "domain", "dns", "base", "class", "test")
)

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// words splits a key into lower-case words at anything not a letter or
// a digit and at case changes: nikHash and NIKHash are nik + hash.
func words(key string) []string {
	var out []string
	rs := []rune(key)
	start := -1
	flush := func(end int) {
		if start >= 0 && end > start {
			out = append(out, strings.ToLower(string(rs[start:end])))
		}
		start = -1
	}
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush(i)
			continue
		}
		if start >= 0 && unicode.IsUpper(r) {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				flush(i)
			}
		}
		if start < 0 {
			start = i
		}
	}
	flush(len(rs))
	return out
}

// IsPersonal reports whether an attribute key names personal data, in any
// case and however its words are joined (birth_date, birthDate,
// Birth-Date):
//
//   - a key with the word nik, nip, kk, bpjs, npwp, uid, subject, dob,
//     gender, sex, kelamin, agama, religion, passport, paspor, hp, telp,
//     ktp, ibu, mother, mothers, maiden or tambahan (nik_hash, no_kk,
//     no_bpjs, card_uid, no_ktp, tambahan_card), or starting with nik or
//     nip (nikhash);
//   - a key containing birth, lahir, phone, telepon, email, photo, foto,
//     template, minutiae, idpns, taspen, taperum, ktpnum, noktp, cardnum,
//     nomorkartu, nokartu, nomorinduk, noinduk, kandung, cardserial or
//     chipserial (tanggal_lahir, face_photo, templates, id_pns, IDPNS,
//     taspen, taperum_status, ktp_number, card_number, nomor_induk,
//     ibu_kandung, card_serial, chip_serial);
//   - card_no, nomor_kk, full_name, nama_lengkap;
//   - a key with the word name, nama, address or alamat, or ending in
//     name or nama (holder_name, holdername, nama_ibu, home_address),
//     unless another word of it says it is about something technical:
//     reader_name, filename, hostname, service_name, ip_address and
//     listen_address are kept. names is kept too.
//
// serial, sam_serial and reader are not personal: a SAM's serial and the
// readers' names are what technicians need.
func IsPersonal(key string) bool {
	ws := words(key)
	if len(ws) == 0 {
		return false
	}
	joined := strings.Join(ws, "")
	if personalKeys[joined] || strings.HasPrefix(joined, "nik") || strings.HasPrefix(joined, "nip") {
		return true
	}
	for _, p := range personalParts {
		if strings.Contains(joined, p) {
			return true
		}
	}
	tech := false
	for _, w := range ws {
		if personalWords[w] {
			return true
		}
		tech = tech || technical[w]
	}
	if tech {
		return false
	}
	for _, w := range ws {
		for _, n := range nameWords {
			if w == n {
				return true
			}
		}
	}
	// Glued: holdername, but not filename, hostname, typename.
	for _, n := range []string{"name", "nama", "address", "alamat"} {
		if rest, ok := strings.CutSuffix(ws[len(ws)-1], n); ok && !technical[rest] {
			return true
		}
	}
	return false
}

// Redact wraps h so that the values of personal-data attributes (see
// IsPersonal) are written as "[redacted]": at the top level, inside
// groups, in attributes given to WithAttrs, everything inside a group
// named like one (WithGroup("subject")), the values of LogValuers (also
// nested ones, which are logged as their LogValue), and inside any other
// value, however nested: the keys of maps, the fields of structs (by Go
// name and by JSON name) and the elements of slices and arrays, through
// pointers and interfaces. So is, under any key, a string of exactly 16
// or 18 ASCII digits (the shape of a NIK or a NIP), except under a key
// with the word serial (serial, sam_serial): a SAM's serial is 16 hex
// digits, which may all be decimal ones. Values that marshal themselves
// (json.Marshaler, encoding.TextMarshaler: time.Time, net.IP) and errors
// are left as they are. Defense in depth: the agent never logs such data
// on purpose. The message itself and other values (an error's text, a
// number) are not inspected.
func Redact(h slog.Handler) slog.Handler {
	if r, ok := h.(*redactor); ok {
		return r
	}
	return &redactor{h: h}
}

type redactor struct {
	h   slog.Handler
	all bool // inside a group named like personal data
}

func (r *redactor) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r *redactor) Handle(ctx context.Context, rec slog.Record) error {
	if rec.NumAttrs() == 0 {
		return r.h.Handle(ctx, rec)
	}
	out := slog.NewRecord(rec.Time, rec.Level, rec.Message, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a, r.all, 0))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r *redactor) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a, r.all, 0)
	}
	return &redactor{h: r.h.WithAttrs(red), all: r.all}
}

func (r *redactor) WithGroup(name string) slog.Handler {
	return &redactor{h: r.h.WithGroup(name), all: r.all || IsPersonal(name)}
}

// maxDepth bounds the nesting followed (values may nest or even cycle);
// deeper values are redacted whole.
const maxDepth = 16

// idShaped reports whether s has the shape of a NIK (16 digits) or a NIP
// (18 digits).
func idShaped(s string) bool {
	if len(s) != 16 && len(s) != 18 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// serialKey reports whether key names a serial (serial, sam_serial,
// SAMSerial), whose value is kept even when idShaped: a SAM's serial is
// 16 hex digits, and they may all be decimal ones (5357000000000007).
// Personal serials (card_serial, chip_serial) are redacted by their key.
func serialKey(key string) bool {
	for _, w := range words(key) {
		if w == "serial" {
			return true
		}
	}
	return false
}

func redactAttr(a slog.Attr, all bool, depth int) slog.Attr {
	if all || IsPersonal(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	a.Value = a.Value.Resolve()
	if serialKey(a.Key) && isString(a.Value) {
		return a
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if idShaped(a.Value.String()) {
			return slog.String(a.Key, Redacted)
		}
	case slog.KindGroup:
		if depth >= maxDepth {
			return slog.String(a.Key, Redacted)
		}
		g := a.Value.Group()
		out := make([]slog.Attr, len(g))
		for i, x := range g {
			out[i] = redactAttr(x, false, depth+1)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindAny:
		if v, changed := redactValue(a.Value.Any(), depth+1); changed {
			return slog.Any(a.Key, v)
		}
	}
	return a
}

// isString reports whether v holds a string, of any string type.
func isString(v slog.Value) bool {
	if v.Kind() == slog.KindString {
		return true
	}
	return v.Kind() == slog.KindAny && v.Any() != nil && reflect.ValueOf(v.Any()).Kind() == reflect.String
}

var anyType = reflect.TypeFor[any]()

// redactKeyed is redactValue for a value found under keys (a map's key;
// a struct field's Go and JSON names): redacted whole when one of them
// is personal, kept when one names a serial and v is a string.
func redactKeyed(v any, depth int, keys ...string) (any, bool) {
	if slices.ContainsFunc(keys, IsPersonal) {
		return Redacted, true
	}
	if slices.ContainsFunc(keys, serialKey) && isString(slog.AnyValue(v)) {
		return v, false
	}
	return redactValue(v, depth)
}

// redactValue returns v with personal data inside it redacted, and
// whether anything was (if not, v itself is returned, so values with
// nothing personal are logged exactly as before). A map comes back as a
// map with the same key type, a struct as a map[string]any keyed by the
// fields' JSON names, a slice or an array as a []any. A LogValuer always
// comes back as its (redacted) LogValue: left to the handler, a nested
// one would be written as its raw fields.
func redactValue(v any, depth int) (any, bool) {
	if v == nil {
		return nil, false
	}
	if depth >= maxDepth {
		return Redacted, true
	}
	switch x := v.(type) {
	case slog.LogValuer:
		val := slog.AnyValue(x).Resolve()
		switch val.Kind() {
		case slog.KindGroup:
			m := map[string]any{}
			for _, a := range val.Group() {
				m[a.Key] = redactAttr(a, false, depth+1).Value.Any()
			}
			return m, true
		case slog.KindAny:
			r, _ := redactValue(val.Any(), depth+1)
			return r, true
		case slog.KindString:
			if idShaped(val.String()) {
				return Redacted, true
			}
		}
		return val.Any(), true
	case error, json.Marshaler, encoding.TextMarshaler:
		return v, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() || !rv.Elem().CanInterface() {
			return v, false
		}
		return redactInner(v, rv.Elem().Interface(), depth)
	case reflect.Map:
		return redactMap(v, rv, depth)
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return v, false // bytes: nothing to name them by
		}
		out := make([]any, rv.Len())
		changed := false
		for i := range rv.Len() {
			e := rv.Index(i)
			if !e.CanInterface() {
				return v, false
			}
			var c bool
			out[i], c = redactValue(e.Interface(), depth+1)
			changed = changed || c
		}
		if !changed {
			return v, false
		}
		return out, true
	case reflect.Struct:
		m := map[string]any{}
		if !redactStruct(rv, m, depth) {
			return v, false
		}
		return m, true
	case reflect.String:
		if idShaped(rv.String()) {
			return Redacted, true
		}
	}
	return v, false
}

func redactInner(outer, inner any, depth int) (any, bool) {
	if r, changed := redactValue(inner, depth+1); changed {
		return r, true
	}
	return outer, false
}

func redactMap(v any, rv reflect.Value, depth int) (any, bool) {
	out := reflect.MakeMapWithSize(reflect.MapOf(rv.Type().Key(), anyType), rv.Len())
	changed := false
	it := rv.MapRange()
	for it.Next() {
		k, e := it.Key(), it.Value()
		if !e.CanInterface() {
			return v, false
		}
		var nv any
		var c bool
		if k.Kind() == reflect.String {
			nv, c = redactKeyed(e.Interface(), depth+1, k.String())
		} else {
			nv, c = redactValue(e.Interface(), depth+1)
		}
		changed = changed || c
		if nv == nil {
			out.SetMapIndex(k, reflect.Zero(anyType))
		} else {
			out.SetMapIndex(k, reflect.ValueOf(nv))
		}
	}
	if !changed {
		return v, false
	}
	return out.Interface(), true
}

// redactStruct puts rv's exported fields into m by JSON name (embedded
// structs' fields inline, as encoding/json does) and reports whether any
// was redacted.
func redactStruct(rv reflect.Value, m map[string]any, depth int) bool {
	changed := false
	t := rv.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, tagged := jsonName(f)
		if name == "-" {
			continue
		}
		fv := rv.Field(i)
		if f.Anonymous && !tagged {
			ft := fv
			if ft.Kind() == reflect.Pointer {
				if ft.IsNil() {
					continue
				}
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				changed = redactStruct(ft, m, depth+1) || changed
				continue
			}
		}
		if !f.IsExported() || !fv.CanInterface() {
			continue
		}
		var c bool
		m[name], c = redactKeyed(fv.Interface(), depth+1, f.Name, name)
		changed = changed || c
	}
	return changed
}

// jsonName is a field's name in JSON, and whether its tag names it.
func jsonName(f reflect.StructField) (string, bool) {
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "-", true
	}
	if name, _, _ := strings.Cut(tag, ","); name != "" {
		return name, true
	}
	return f.Name, false
}
