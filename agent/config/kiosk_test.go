package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestKioskDefaults(t *testing.T) {
	c, err := Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S"}})
	require.NoError(t, err)
	require.Equal(t, Kiosk{Enabled: false, IdleTimeout: 60 * time.Second, IdleWarning: 10 * time.Second, VerifyURL: ""}, c.Kiosk)
}

func TestKioskValues(t *testing.T) {
	load := func(kv ...string) (*Config, error) {
		set := map[string]string{"terminal.id": "T", "terminal.site": "S"}
		for i := 0; i+1 < len(kv); i += 2 {
			set[kv[i]] = kv[i+1]
		}
		return Load(Source{Set: set})
	}
	for _, u := range []string{"https://bo.example.go.id/", "http://127.0.0.1:8080/", "https://bo.example.go.id:8443/verify", "https://bo.example.go.id"} {
		c, err := load("kiosk.enabled", "true", "kiosk.verify_url", u)
		require.NoError(t, err, u)
		require.True(t, c.Kiosk.Enabled)
		require.Equal(t, u, c.Kiosk.VerifyURL)
	}
	c, err := load("kiosk.idle_timeout", "2m", "kiosk.idle_warning", "119s")
	require.NoError(t, err)
	require.Equal(t, 2*time.Minute, c.Kiosk.IdleTimeout)

	for _, tc := range []struct {
		kv        []string
		key, want string
	}{
		{[]string{"kiosk.verify_url", "ftp://bo.example"}, "kiosk.verify_url", `"ftp://bo.example" is not an http or https URL; want "" (no QR code) or the back office's verify page`},
		{[]string{"kiosk.verify_url", "bo.example.go.id"}, "kiosk.verify_url", "is not an http or https URL"},
		{[]string{"kiosk.verify_url", "https://"}, "kiosk.verify_url", "has no host"},
		{[]string{"kiosk.verify_url", "https://bo.example:0/"}, "kiosk.verify_url", "has an invalid port"},
		{[]string{"kiosk.verify_url", "https://bo.example/?code="}, "kiosk.verify_url", "has a query or fragment"},
		{[]string{"kiosk.verify_url", "https://bo.example/?"}, "kiosk.verify_url", "has a query or fragment"},
		{[]string{"kiosk.verify_url", "https://bo.example/#"}, "kiosk.verify_url", "has a query or fragment"},
		{[]string{"kiosk.verify_url", "https://staff:pw@bo.example/"}, "kiosk.verify_url", `"https://***@bo.example/" has user information`},
		{[]string{"kiosk.idle_timeout", "0s"}, "kiosk.idle_timeout", "is not positive"},
		{[]string{"kiosk.idle_warning", "-5s"}, "kiosk.idle_warning", "is not positive"},
		{[]string{"kiosk.idle_warning", "60s"}, "kiosk.idle_warning", `"1m0s" is not shorter than kiosk.idle_timeout (1m0s)`},
		{[]string{"kiosk.idle_timeout", "5s"}, "kiosk.idle_warning", `"10s" is not shorter than kiosk.idle_timeout (5s)`},
		{[]string{"kiosk.enabled", "yes"}, "kiosk.enabled", "yes"},
	} {
		_, err := load(tc.kv...)
		require.Error(t, err, "%v", tc.kv)
		e := problemFor(t, err, tc.key)
		require.Contains(t, e.Error(), tc.want, "%v", tc.kv)
		require.NotContains(t, e.Error(), "pw@", "%v", tc.kv)
	}

	// in the file: the problem names its line
	p := writeFile(t, minimal+"kiosk:\n  enabled: true\n  verify_url: https://bo.example/#top\n")
	_, err = Load(Source{File: p})
	require.Contains(t, problemFor(t, err, "kiosk.verify_url").Error(), p+":6: kiosk.verify_url: ")
}

func TestLoketEnabled(t *testing.T) {
	c, err := Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S"}})
	require.NoError(t, err)
	require.False(t, c.Loket.Enabled, "off by default")
	c, err = Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S", "loket.enabled": "true"}})
	require.NoError(t, err)
	require.True(t, c.Loket.Enabled)
	_, err = Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S", "loket.enabled": "ya"}})
	require.Contains(t, problemFor(t, err, "loket.enabled").Error(), "ya")
	p := writeFile(t, minimal+"loket:\n  enabled: true\n")
	c, err = Load(Source{File: p})
	require.NoError(t, err)
	require.True(t, c.Loket.Enabled)
}
