package config

import (
	"errors"
	"strconv"
	"strings"
)

// ErrInvalid is the error every configuration problem wraps: an unknown
// key, a value of the wrong type or a value out of range. Load returns
// the problems it found joined (errors.Join), each an *Error.
var ErrInvalid = errors.New("invalid configuration")

// Error is one configuration problem.
//
// Its message reads, for a value from the file:
//
//	config: /etc/kpe-agent/agent.yaml:12: sync.interval: "abc" is not a duration; want e.g. 30s or 5m
//
// and names KPE_SYNC_INTERVAL or --set sync.interval instead of the file
// when the value came from the environment or a flag.
type Error struct {
	// File is where the value came from: the configuration file's path,
	// the environment variable (KPE_SYNC_INTERVAL) or the flag
	// (--set sync.interval); "" when a required key is set nowhere and
	// there is no file.
	File string
	// Line is the value's line in File (0 when unknown or not a file).
	Line int
	// Key is the dotted key (sync.interval), or "" for a problem with
	// the whole file (not YAML, not a mapping).
	Key string
	// Value is the offending value as written ("" when missing), except
	// that the validation replaces a URL's user information by ***
	// (redactUserinfo). The message never shows user information either
	// way.
	Value string
	// Reason says what is wrong ("is not a duration", "unknown key").
	Reason string
	// Want is the expected form ("e.g. 30s or 5m").
	Want string
}

// maxShownValue bounds the value quoted in a message.
const maxShownValue = 80

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Key != "" && e.File != "--set "+e.Key {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	if e.Value != "" {
		v := redactUserinfo(e.Value)
		if len(v) > maxShownValue {
			v = v[:maxShownValue] + "…"
		}
		b.WriteString(strconv.Quote(v))
		b.WriteString(" ")
	}
	b.WriteString(e.Reason)
	if e.Want != "" {
		b.WriteString("; want ")
		b.WriteString(e.Want)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// redactUserinfo returns s with what could be a URL's user information
// (https://kpe:S3cret@bo.example: a password) replaced by ***: everything
// before the last @, after the scheme's :// (or a leading //) when there
// is one. It errs on the side of hiding: an @ further on (a path, a
// query, a list of URLs) hides more than the user information, never
// less, also when s is not a valid URL (a password with a space or a /).
// A value without @ is returned as is.
func redactUserinfo(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s
	}
	start := 0
	if i := strings.Index(s[:at], "://"); i >= 0 {
		start = i + len("://")
	} else if strings.HasPrefix(s, "//") {
		start = len("//")
	}
	return s[:start] + "***" + s[at:]
}
