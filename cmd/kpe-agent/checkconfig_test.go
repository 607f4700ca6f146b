package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kpe-agent check-config (and run, which loads the same way) exits
// non-zero with a message naming the key, the file and the expected form.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("0123456789abcdef0123456789abcdef"), 0o600))
	write := func(body string) string {
		p := filepath.Join(dir, "agent.yaml")
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	good := "terminal: {id: pkm-01, site: pkm}\napi: {token_file: token}\noutbox: {path: outbox.db}\n"
	for _, c := range []struct {
		name, body string
		args       []string
		code       int
		want       []string
	}{
		{"good", good, nil, 0, []string{"ok (terminal pkm-01)"}},
		{"unknown key", good + "log: {levle: debug}\n", nil, 1, []string{"agent.yaml:4", "log.levle", "unknown key", "did you mean log.level"}},
		{"bad value", good + "sync: {interval: soon}\n", nil, 1, []string{"agent.yaml:4", "sync.interval", `"soon"`, "30s"}},
		{"bad flag value", good, []string{"-set", "api.listen=0.0.0.0:7531"}, 1, []string{"-set api.listen", "loopback"}},
		{"token too open", good, nil, 1, []string{"api.token_file", "chmod 600"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mode := os.FileMode(0o600)
			if c.name == "token too open" {
				mode = 0o644
			}
			require.NoError(t, os.Chmod(filepath.Join(dir, "token"), mode))
			var out, errOut bytes.Buffer
			code := run(append([]string{"check-config", "-config", write(c.body)}, c.args...), &out, &errOut)
			assert.Equal(t, c.code, code, "stdout %q stderr %q", out.String(), errOut.String())
			for _, w := range c.want {
				assert.Contains(t, out.String()+errOut.String(), w)
			}
		})
	}
}
