package logging

import (
	"context"
	"log/slog"
	"strings"
)

// Redacted replaces the value of a personal-data attribute.
const Redacted = "[redacted]"

// personal are the normalised keys (lower case, without _ - and spaces)
// whose values are personal data.
var personal = map[string]bool{
	"nip": true, "nik": true, "name": true, "nama": true, "birthdate": true,
	"address": true, "alamat": true, "template": true, "photo": true,
	"subject": true, "cardserial": true, "uid": true,
}

// IsPersonal reports whether an attribute key names personal data (nip,
// nik, name, nama, birth_date, address, alamat, template, photo, subject,
// card_serial, uid), in any case and with _, - or nothing between words
// (birthDate, card-serial).
func IsPersonal(key string) bool {
	k := strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', ' ':
			return -1
		}
		return r
	}, strings.ToLower(key))
	return personal[k]
}

// Redact wraps h so that the values of personal-data attributes (see
// IsPersonal) are written as "[redacted]": at the top level, inside
// groups, in attributes given to WithAttrs, everything inside a group
// named like one (WithGroup("subject")), the values of LogValuers, and
// the keys of map[string]any and map[string]string values. Defense in
// depth: the agent never logs such data on purpose. The message itself
// and other values (an error's text) are not inspected.
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

// maxDepth bounds the nesting redactAttr follows (LogValuers may nest).
const maxDepth = 16

func redactAttr(a slog.Attr, all bool, depth int) slog.Attr {
	if all || IsPersonal(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	a.Value = a.Value.Resolve()
	switch a.Value.Kind() {
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
		switch m := a.Value.Any().(type) {
		case map[string]any:
			cp := make(map[string]any, len(m))
			for k, v := range m {
				if IsPersonal(k) {
					v = Redacted
				}
				cp[k] = v
			}
			return slog.Any(a.Key, cp)
		case map[string]string:
			cp := make(map[string]string, len(m))
			for k, v := range m {
				if IsPersonal(k) {
					v = Redacted
				}
				cp[k] = v
			}
			return slog.Any(a.Key, cp)
		}
	}
	return a
}
