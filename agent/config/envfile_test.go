package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The service's environment files add their KPE_* variables under the
// caller's own, and so do the proxy variables; comments, quotes and
// other variables are handled.
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
		"KPE_SYNC_URL=https://bo.example.go.id", "KPE_TERMINAL_ID=PKM-02", "HTTPS_PROXY=http://proxy:3128", "KPE_API_LISTEN=127.0.0.1:9000"}, env)

	// an unreadable file is named
	bad := filepath.Join(dir, "dir")
	require.NoError(t, os.Mkdir(bad, 0o755))
	_, err = ServiceEnviron(nil, bad)
	require.ErrorContains(t, err, bad)
}
