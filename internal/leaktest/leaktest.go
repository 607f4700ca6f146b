// Package leaktest helps tests prove that personal data (NIK, names,
// fingerprint templates) never reaches files: it looks for the secret
// bytes themselves and for their hex forms (what an APDU trace or a log
// would print).
package leaktest

import (
	"bytes"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Needles returns each secret raw and in lower- and upper-case hex.
func Needles(secrets ...[]byte) [][]byte {
	var out [][]byte
	for _, s := range secrets {
		h := hex.EncodeToString(s)
		out = append(out, s, []byte(h), []byte(strings.ToUpper(h)))
	}
	return out
}

// ScanDir fails the test when a file under dir holds one of the needles.
// It returns the files it read with their sizes, so the caller can check
// that the files it expected were there and written.
func ScanDir(t testing.TB, dir string, needles [][]byte) map[string]int {
	t.Helper()
	files := map[string]int{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files[path] = len(b)
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s holds secret bytes %q", path, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scanning %s: %v", dir, err)
	}
	return files
}
