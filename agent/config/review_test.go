package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A file is one YAML document: what follows a --- would not be read,
// its unknown keys and bad values never reported.
func TestOneDocument(t *testing.T) {
	for _, content := range []string{
		minimal + "---\nlog:\n  levle: debug\n",
		minimal + "---\nsync:\n  interval: soon\n",
		minimal + "---\n",
		"---\n" + minimal + "...\n---\n# nothing\nservices: []\n",
	} {
		p := writeFile(t, content)
		_, err := Load(Source{File: p})
		ps := problems(t, err)
		require.Len(t, ps, 1, "%q: %v", content, err)
		require.Equal(t, p, ps[0].File)
		require.Contains(t, ps[0].Error(), "second YAML document", "%q", content)
		require.Greater(t, ps[0].Line, 3, "%q: the line of the second ---", content)
	}
	e := problems(t, func() error { _, err := Load(Source{File: writeFile(t, minimal+"---\nlog: {}\n")}); return err }())[0]
	require.Equal(t, 4, e.Line)
	require.Regexp(t, `agent\.yaml:4: starts a second YAML document`, e.Error())

	// A --- at the top, and ... at the end, open and close the one document.
	for _, content := range []string{"---\n" + minimal, minimal + "...\n", "---\n" + minimal + "...\n"} {
		_, err := Load(Source{File: writeFile(t, content)})
		require.NoError(t, err, "%q", content)
	}
	// A broken second document is reported, not ignored.
	_, err := Load(Source{File: writeFile(t, minimal+"---\nlog: [\n")})
	require.ErrorContains(t, err, "is not valid YAML")
}

// session.shutdown_grace must end before the service manager stops
// waiting (30 s, with the rest of the shutdown after the grace).
func TestShutdownGraceBounded(t *testing.T) {
	base := map[string]string{"terminal.id": "T", "terminal.site": "S"}
	with := func(v string) (*Config, error) {
		set := map[string]string{"session.shutdown_grace": v}
		for k, x := range base {
			set[k] = x
		}
		return Load(Source{Set: set})
	}
	c, err := with("20s")
	require.NoError(t, err)
	require.Equal(t, MaxShutdownGrace, c.Session.ShutdownGrace)
	for _, v := range []string{"21s", "30s", "5m"} {
		_, err := with(v)
		e := problemFor(t, err, "session.shutdown_grace")
		require.Equal(t, "--set session.shutdown_grace", e.File)
		require.Contains(t, e.Error(), "is too long; want at most 20s", v)
	}
	p := writeFile(t, minimal+"session:\n  shutdown_grace: 1m\n")
	_, err = Load(Source{File: p})
	require.Contains(t, problemFor(t, err, "session.shutdown_grace").Error(), p+":5: session.shutdown_grace: \"1m0s\" is too long")
	require.Less(t, MaxShutdownGrace+3*time.Second+5*time.Second, 30*time.Second)
}

// sync.url is https://host[:port] with no path: a trailing / is dropped
// (the same back office), any other path refused.
func TestSyncURLSlash(t *testing.T) {
	load := func(u string) (*Config, error) {
		return Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S", "sync.url": u,
			"sync.client_cert": "/c", "sync.client_key": "/k", "sync.ca": "/ca"}})
	}
	for in, want := range map[string]string{
		"https://bo.example.go.id:8443/": "https://bo.example.go.id:8443",
		"https://bo.example.go.id:8443":  "https://bo.example.go.id:8443",
		"https://bo.example.go.id/":      "https://bo.example.go.id",
	} {
		c, err := load(in)
		require.NoError(t, err, in)
		require.Equal(t, want, c.Sync.URL, in)
	}
	for _, u := range []string{"https://bo.example.go.id//", "https://bo.example.go.id/v1", "https://bo.example.go.id/?x"} {
		_, err := load(u)
		problemFor(t, err, "sync.url")
	}
}
