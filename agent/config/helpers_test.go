package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// minimal is the smallest valid file.
const minimal = "terminal:\n  id: T-01\n  site: S-01\n"

// writeFile writes a configuration file in a temporary directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// problems returns the *Error values of a Load error.
func problems(t *testing.T, err error) []*Error {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, ErrInvalid)
	var out []*Error
	var walk func(error)
	walk = func(e error) {
		var ce *Error
		if errors.As(e, &ce) && ce == e {
			out = append(out, ce)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

// problemFor returns the problem about key, failing the test if none.
func problemFor(t *testing.T, err error, key string) *Error {
	t.Helper()
	var keys []string
	for _, p := range problems(t, err) {
		if p.Key == key {
			return p
		}
		keys = append(keys, p.Key)
	}
	t.Fatalf("no problem about %s; got %s (%v)", key, strings.Join(keys, ", "), err)
	return nil
}
