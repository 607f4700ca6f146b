package main

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/i18n"
)

// Every sentence of kpectl comes from the catalogue in both languages: no
// field is empty and none is a bare key (what a lookup of a missing key
// returns).
func TestMessagesAreFilledInEveryLanguage(t *testing.T) {
	for _, l := range i18n.Langs {
		m, err := messagesFor(string(l))
		require.NoError(t, err)
		n := checkFilled(t, string(l), "messages", reflect.ValueOf(m))
		assert.Greater(t, n, 100, "%s: too few sentences walked", l)
	}
	id, en := messagesIn(i18n.Indonesian), messagesIn(i18n.English)
	assert.Equal(t, "perintah tidak dikenal", id.UnknownCommand)
	assert.Equal(t, "unknown command", en.UnknownCommand)
	assert.Len(t, en.Queue.ListHeader, len(id.Queue.ListHeader))
}

func checkFilled(t *testing.T, lang, path string, v reflect.Value) int {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		if strings.TrimSpace(s) == "" {
			t.Errorf("%s: %s is empty", lang, path)
		} else if i18n.Has(s) || strings.HasPrefix(s, "kpectl.") {
			t.Errorf("%s: %s is the key %q, not a sentence", lang, path, s)
		}
		return 1
	case reflect.Struct:
		n := 0
		for i := range v.NumField() {
			n += checkFilled(t, lang, path+"."+v.Type().Field(i).Name, v.Field(i))
		}
		return n
	case reflect.Map:
		if v.Len() == 0 {
			t.Errorf("%s: %s is empty", lang, path)
		}
		n := 0
		for it := v.MapRange(); it.Next(); {
			n += checkFilled(t, lang, fmt.Sprintf("%s[%v]", path, it.Key().Interface()), it.Value())
		}
		return n
	case reflect.Slice:
		if v.Len() == 0 {
			t.Errorf("%s: %s is empty", lang, path)
		}
		n := 0
		for i := range v.Len() {
			n += checkFilled(t, lang, path+"[]", v.Index(i))
		}
		return n
	}
	t.Fatalf("%s: %s has an unexpected kind %s", lang, path, v.Kind())
	return 0
}

func TestMessagesForReadsTheLanguage(t *testing.T) {
	for _, s := range []string{"en", "EN", "en-GB"} {
		m, err := messagesFor(s)
		require.NoError(t, err, s)
		assert.Equal(t, "unknown command", m.UnknownCommand, s)
	}
	m, err := messagesFor("id")
	require.NoError(t, err)
	assert.Equal(t, "perintah tidak dikenal", m.UnknownCommand)

	for _, s := range []string{"fr", "", "english"} {
		_, err := messagesFor(s)
		var unsupported *i18n.ErrUnsupported
		require.True(t, errors.As(err, &unsupported), "%q: %v", s, err)
		assert.Equal(t, s, unsupported.Value)
		assert.Contains(t, err.Error(), "--lang: unsupported language")
	}
}
