package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A URL's user information (a password) is never quoted in a message:
// the messages go to standard error and the journal, to the agent's log
// on a reload and to the package manager's log through postinstall.
func TestErrorHidesUserinfo(t *testing.T) {
	const secret = "S3cret"
	long := "https://kpe:" + strings.Repeat("x", 90) + secret + "@bo.example"
	for _, tc := range []struct {
		key, value, reason string
		extra              map[string]string
	}{
		{"sync.url", "https://kpe:" + secret + "@bo.example", "has user information", nil},
		{"sync.url", "https://kpe:" + secret + "@bo.example:8443/", "has user information", nil},
		{"sync.url", "https://" + secret + "@bo.example", "has user information", nil},
		{"sync.url", long, "has user information", nil},
		// not URLs: a space, a / or a # in the password
		{"sync.url", "https://kpe:S3c ret@bo.example", "is not a URL", nil},
		{"sync.url", "https://kpe:S3c/ret@bo.example", "", nil},
		{"sync.url", "https://kpe:S3c#ret@bo.example", "", nil},
		{"sync.url", "http://kpe:" + secret + "@bo.example", "uses http", nil},
		{"sync.url", "kpe:" + secret + "@bo.example", "is not an https URL", nil},
		{"api.allowed_origins", "https://kpe:" + secret + "@portal.example", "has user information", nil},
		{"fingerprint.lab_url", "http://kpe:" + secret + "@127.0.0.1:99999", "has an invalid port",
			map[string]string{"fingerprint.sensor": "lab"}},
	} {
		set := map[string]string{"terminal.id": "T", "terminal.site": "S", tc.key: tc.value}
		for k, v := range tc.extra {
			set[k] = v
		}
		srcs := map[string]Source{
			"flag": {Set: set},
			"env":  {Environ: []string{"KPE_" + strings.ToUpper(strings.ReplaceAll(tc.key, ".", "_")) + "=" + tc.value}, Set: without(set, tc.key)},
			"file": {File: writeFile(t, minimal+yamlKey(tc.key, tc.value)), Set: without(without(without(set, tc.key), "terminal.id"), "terminal.site")},
		}
		for name, src := range srcs {
			_, err := Load(src)
			e := problemFor(t, err, tc.key)
			msg := e.Error()
			require.NotContains(t, msg, "S3c", "%s %q", name, tc.value)
			require.NotContains(t, msg, "kpe:", "%s %q", name, tc.value)
			require.NotContains(t, e.Value, "S3c", "%s %q", name, tc.value)
			require.Contains(t, msg, "***@", "%s %q", name, tc.value)
			require.NotContains(t, err.Error(), "S3c", "%s %q", name, tc.value)
			if tc.reason != "" {
				require.Contains(t, msg, tc.reason, "%s %q", name, tc.value)
			}
		}
	}

	// The message quotes the value without its user information.
	_, err := Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S", "sync.url": "https://kpe:S3cret@bo.example"}})
	require.Equal(t, `config: --set sync.url: "https://***@bo.example" has user information; want "" (no syncing) or the back office's https://host[:port]`,
		problemFor(t, err, "sync.url").Error())

	// Whatever made the Error, its message hides the user information.
	e := &Error{File: "KPE_SYNC_URL", Key: "sync.url", Value: "https://kpe:S3cret@bo.example", Reason: "is wrong"}
	require.Equal(t, `config: KPE_SYNC_URL: sync.url: "https://***@bo.example" is wrong`, e.Error())
}

func TestRedactUserinfo(t *testing.T) {
	for in, want := range map[string]string{
		"":                                     "",
		"https://bo.example:8443":              "https://bo.example:8443",
		"ACS ACR39U*":                          "ACS ACR39U*",
		"https://kpe:S3cret@bo.example":        "https://***@bo.example",
		"https://kpe@bo.example/":              "https://***@bo.example/",
		"https://kpe:p@ss@bo.example":          "https://***@bo.example",
		"https://kpe:S3c/r?e#t@bo.example":     "https://***@bo.example",
		"//kpe:S3cret@bo.example":              "//***@bo.example",
		"kpe:S3cret@bo.example":                "***@bo.example",
		"https://a:b@x,https://c:d@y":          "https://***@y",
		"https://bo.example/a@b":               "https://***@b", // hides more, never less
		"https://kpe:S3c ret@bo.example:99999": "https://***@bo.example:99999",
	} {
		require.Equal(t, want, redactUserinfo(in), in)
	}
}

// A fragment is refused in sync.url and api.allowed_origins, an empty
// one (a bare #) too: url.URL does not tell it from none.
func TestURLFragmentRefused(t *testing.T) {
	for _, u := range []string{"https://bo.example/#", "https://bo.example#", "https://bo.example:8443/#x", "https://bo.example#x"} {
		_, err := Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S", "sync.url": u}})
		require.Contains(t, problemFor(t, err, "sync.url").Error(), "has a query or fragment", u)
	}
	for _, o := range []string{"http://localhost:3000#", "https://portal.example#x"} {
		_, err := Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S", "api.allowed_origins": o}})
		require.Contains(t, problemFor(t, err, "api.allowed_origins").Error(), "has a query or fragment", o)
	}
	// without one, still accepted (and the trailing slash dropped)
	c, err := Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S",
		"sync.url": "https://bo.example:8443/", "sync.client_cert": "c.pem", "sync.client_key": "k.pem", "sync.ca": "ca.pem",
		"api.allowed_origins": "http://localhost:3000"}})
	require.NoError(t, err)
	require.Equal(t, "https://bo.example:8443", c.Sync.URL)
}

// without returns m without key.
func without(m map[string]string, key string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// yamlKey is the YAML for a dotted key set to a double-quoted value (a
// list of it for api.allowed_origins).
func yamlKey(key, value string) string {
	section, name, _ := strings.Cut(key, ".")
	v := `"` + strings.ReplaceAll(value, `"`, `\"`) + `"`
	if key == "api.allowed_origins" {
		v = "[" + v + "]"
	}
	return section + ":\n  " + name + ": " + v + "\n"
}

// A value refused before validation (the wrong type, here a string for a
// list) is quoted without its user information too.
func TestParseErrorHidesUserinfo(t *testing.T) {
	_, err := Load(Source{File: writeFile(t, minimal+"api:\n  allowed_origins: \"https://kpe:S3cret@portal.example\"\n")})
	msg := problemFor(t, err, "api.allowed_origins").Error()
	require.NotContains(t, msg, "S3cret")
	require.Contains(t, msg, "https://***@portal.example")
}
