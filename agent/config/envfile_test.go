package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The service's environment files add their KPE_* variables under the
// caller's own, and so do the proxy variables; comments, quotes and
// other variables are handled; a later file overrides an earlier one.
func TestServiceEnviron(t *testing.T) {
	dir := t.TempDir()
	def := filepath.Join(dir, "default")
	require.NoError(t, os.WriteFile(def, []byte(`# set by the technician
; also a comment
KPE_SYNC_URL="https://bo.example.go.id"
KPE_LOG_LEVEL = 'debug'
KPE_TERMINAL_ID=PKM-01
KPE_TERMINAL_ID=PKM-02
HTTPS_PROXY=http://proxy:3128
LANG=C
not a line
`), 0o644))
	sys := filepath.Join(dir, "sysconfig")
	require.NoError(t, os.WriteFile(sys, []byte("KPE_SYNC_URL=https://other\nKPE_API_LISTEN=127.0.0.1:9000\n"), 0o644))

	env, err := ServiceEnviron([]string{"PATH=/bin", "KPE_LOG_LEVEL=warn"}, def, filepath.Join(dir, "missing"), sys)
	require.NoError(t, err)
	require.Equal(t, []string{"PATH=/bin", "KPE_LOG_LEVEL=warn",
		"KPE_SYNC_URL=https://other", "KPE_TERMINAL_ID=PKM-02", "HTTPS_PROXY=http://proxy:3128", "KPE_API_LISTEN=127.0.0.1:9000"}, env)

	// an unreadable file is named
	bad := filepath.Join(dir, "dir")
	require.NoError(t, os.Mkdir(bad, 0o755))
	_, err = ServiceEnviron(nil, bad)
	require.ErrorContains(t, err, bad)
}

// systemd applies the unit's EnvironmentFile= lines in order, so a
// variable of /etc/sysconfig/kpe-agent overrides the same one of
// /etc/default/kpe-agent (an empty one too); the caller's own non-empty
// variable still wins over both.
func TestServiceEnvironLaterFileWins(t *testing.T) {
	dir := t.TempDir()
	def := filepath.Join(dir, "default")
	sys := filepath.Join(dir, "sysconfig")
	require.NoError(t, os.WriteFile(def, []byte("KPE_TERMINAL_ID=FROM-DEFAULT\nKPE_TERMINAL_SITE=SITE-DEFAULT\nKPE_LOG_LEVEL=debug\nKPE_SYNC_URL=https://bo.example\nhttps_proxy=http://old:3128\n"), 0o644))
	require.NoError(t, os.WriteFile(sys, []byte("KPE_TERMINAL_ID=FROM-SYSCONFIG\nKPE_LOG_LEVEL=error\nKPE_SYNC_URL=\nhttps_proxy='http://new:3128'\n"), 0o644))

	env, err := ServiceEnviron([]string{"KPE_LOG_LEVEL=warn", "KPE_TERMINAL_SITE="}, def, sys)
	require.NoError(t, err)
	require.Equal(t, []string{"KPE_LOG_LEVEL=warn", "KPE_TERMINAL_SITE=",
		"KPE_TERMINAL_ID=FROM-SYSCONFIG", "KPE_TERMINAL_SITE=SITE-DEFAULT", "KPE_SYNC_URL=", "https_proxy=http://new:3128"}, env)

	// the files in the unit's order
	require.Equal(t, []string{"/etc/default/kpe-agent", "/etc/sysconfig/kpe-agent"}, ServiceEnvFiles)

	// what Load makes of it: sysconfig's ID, the caller's level, no sync
	c, err := Load(Source{Environ: env})
	require.NoError(t, err)
	require.Equal(t, "FROM-SYSCONFIG", c.Terminal.ID)
	require.Equal(t, "SITE-DEFAULT", c.Terminal.Site)
	require.Equal(t, "warn", c.Log.Level)
	require.Equal(t, "", c.Sync.URL)
}
