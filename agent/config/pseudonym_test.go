package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// ktpel.pseudonym: sam by default (the SAM computes the KTP-el
// pseudonyms); file is the explicit fallback, which needs
// sam.nik_key_file; nothing else is accepted.
func TestKTPelPseudonym(t *testing.T) {
	c, err := Load(Source{File: writeFile(t, minimal)})
	require.NoError(t, err)
	require.Equal(t, PseudonymSAM, c.KTPel.Pseudonym)

	c, err = Load(Source{File: writeFile(t, minimal+"ktpel:\n  pseudonym: file\nsam:\n  nik_key_file: nik-key\n")})
	require.NoError(t, err)
	require.Equal(t, PseudonymFile, c.KTPel.Pseudonym)
	require.True(t, filepath.IsAbs(c.SAM.NIKKeyFile))

	_, err = Load(Source{File: writeFile(t, minimal+"ktpel:\n  pseudonym: file\n")})
	require.Contains(t, problemFor(t, err, "sam.nik_key_file").Error(), "missing (ktpel.pseudonym is file)")

	_, err = Load(Source{File: writeFile(t, minimal), Environ: []string{"KPE_KTPEL_PSEUDONYM=host"}})
	require.Contains(t, problemFor(t, err, "ktpel.pseudonym").Error(), "one of sam, file")
}

// The file fallback's key is a secret file of at least 32 bytes: a
// shorter one is refused with ErrShortKey (and its content is in no
// error); an insecure one as any secret.
func TestReadPseudonymKey(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes are not checked on Windows")
	}
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	short := strings.Repeat("k", MinPseudonymKeyLen-1)
	_, err := ReadPseudonymKey(write("short", short+"\n", 0o600))
	require.ErrorIs(t, err, ErrShortKey)
	require.ErrorContains(t, err, "31 bytes")
	require.NotContains(t, err.Error(), short)

	ok := strings.Repeat("k", MinPseudonymKeyLen)
	b, err := ReadPseudonymKey(write("ok", "  "+ok+"\n", 0o600))
	require.NoError(t, err)
	require.Equal(t, ok, string(b))

	_, err = ReadPseudonymKey(write("open", ok, 0o644))
	require.ErrorIs(t, err, ErrInsecureSecret)
}
