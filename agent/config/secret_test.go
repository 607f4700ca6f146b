package config

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadSecret(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes are not checked on Windows")
	}
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		require.NoError(t, os.Chmod(p, mode)) // whatever the umask
		return p
	}

	for _, mode := range []os.FileMode{0o600, 0o400, 0o640, 0o440} {
		p := write("ok", "  s3cret-token\n", mode)
		b, err := ReadSecret(p)
		require.NoError(t, err, "%04o", mode)
		require.Equal(t, "s3cret-token", string(b))
	}

	two := write("two", "line one\nline two\n", 0o600)
	b, err := ReadSecret(two)
	require.NoError(t, err)
	require.Equal(t, "line one\nline two", string(b))

	for _, mode := range []os.FileMode{0o644, 0o604, 0o602, 0o660, 0o620, 0o666, 0o601} {
		p := write("bad", "s3cret-token", mode)
		_, err := ReadSecret(p)
		require.ErrorIs(t, err, ErrInsecureSecret, "%04o", mode)
		require.Contains(t, err.Error(), p)
		require.Contains(t, err.Error(), "chmod 600 "+p)
		require.NotContains(t, err.Error(), "s3cret")
	}

	_, err = ReadSecret(write("empty", " \n\t\n", 0o600))
	require.ErrorContains(t, err, "empty")

	_, err = ReadSecret(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)

	_, err = ReadSecret(dir)
	require.ErrorContains(t, err, "not a regular file")
}
