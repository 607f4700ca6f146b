package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// api.allow_remote puts the API, and the bearer token every request
// carries, on the network: only over TLS. Without a certificate pair the
// configuration is refused at load, with the key, where it was set and
// what to do.
func TestAllowRemoteNeedsTLS(t *testing.T) {
	remote := "terminal:\n  id: T\n  site: S\napi:\n  listen: 0.0.0.0:7531\n  allow_remote: true\n"
	p := writeFile(t, remote)
	_, err := Load(Source{File: p})
	require.ErrorIs(t, err, ErrInvalid)
	e := problemFor(t, err, "api.allow_remote")
	require.Equal(t, &Error{File: p, Line: 6, Key: "api.allow_remote", Value: "true",
		Reason: "needs TLS: api.tls_cert_file and api.tls_key_file are not set (the token would cross the network in clear)",
		Want:   "false (loopback only), or a certificate pair in api.tls_cert_file and api.tls_key_file"}, e)

	base := map[string]string{"terminal.id": "T", "terminal.site": "S", "api.listen": "0.0.0.0:7531", "api.allow_remote": "true"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		set       map[string]string
		key, want string
	}{
		{base, "api.allow_remote", "needs TLS"},
		{with("api.tls_cert_file", "/etc/kpe-agent/api.crt"), "api.tls_key_file", "missing (api.tls_cert_file is set)"},
		{with("api.tls_key_file", "/etc/kpe-agent/secrets/api.key"), "api.tls_cert_file", "missing (api.tls_key_file is set)"},
		// with TLS, a page served over plain http may not call the API
		{with("api.tls_cert_file", "/c", "api.tls_key_file", "/k", "api.allowed_origins", "https://a.example,http://kiosk-01.local:8080"),
			"api.allowed_origins", `"http://kiosk-01.local:8080" is an http:// origin (the API serves HTTPS: api.tls_cert_file is set)`},
		{with("api.tls_cert_file", "/c", "api.tls_key_file", "/k", "api.max_event_streams", "0"), "api.max_event_streams", "is out of range"},
	} {
		_, err := Load(Source{Set: tc.set})
		require.Error(t, err, "%v loads", tc.set)
		require.Contains(t, problemFor(t, err, tc.key).Error(), tc.want, "%v", tc.set)
	}
	// Environment too: KPE_API_ALLOW_REMOTE=true alone is refused.
	_, err = Load(Source{Environ: []string{"KPE_TERMINAL_ID=T", "KPE_TERMINAL_SITE=S", "KPE_API_LISTEN=10.0.0.5:7531", "KPE_API_ALLOW_REMOTE=true"}})
	require.Contains(t, problemFor(t, err, "api.allow_remote").Error(), "config: KPE_API_ALLOW_REMOTE: api.allow_remote: \"true\" needs TLS")

	// with the pair and https origins it loads
	_, err = Load(Source{Set: with("api.tls_cert_file", "/etc/kpe-agent/api.crt", "api.tls_key_file", "/etc/kpe-agent/secrets/api.key",
		"api.allowed_origins", "https://kiosk-01.example.go.id", "api.allowed_hosts", "kiosk-01.example.go.id")})
	require.NoError(t, err)
	// loopback stays plain HTTP, and http origins stay allowed there
	_, err = Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S", "api.allowed_origins": "http://localhost:3000"}})
	require.NoError(t, err)
}
