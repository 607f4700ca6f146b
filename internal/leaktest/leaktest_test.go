package leaktest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"

	"kpe-agent/internal/leaktest"
)

type recordingT struct {
	testing.TB
	errors int
}

func (r *recordingT) Errorf(string, ...any) { r.errors++ }
func (r *recordingT) Helper()               {}

func TestScanDirFindsRawAndHex(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "clean.log"), []byte("nothing here"), 0o600)
	os.WriteFile(filepath.Join(dir, "raw.log"), []byte("nik=3174055203870002"), 0o600)
	os.MkdirAll(filepath.Join(dir, "sub"), 0o700)
	os.WriteFile(filepath.Join(dir, "sub", "trace"), []byte("<- 33313734"), 0o600)
	os.WriteFile(filepath.Join(dir, "sub", "upper"), []byte("4B454D414E47"), 0o600)

	rt := &recordingT{TB: t}
	files := leaktest.ScanDir(rt, dir, leaktest.Needles([]byte("3174055203870002"), []byte("3174"), []byte("KEMANG")))
	assert.Len(t, files, 4)
	assert.Equal(t, 12, files[filepath.Join(dir, "clean.log")])
	// raw.log: the NIK and "3174"; trace: hex of "3174" (its lower- and
	// upper-case forms are the same digits); upper: upper-case hex of KEMANG
	assert.Equal(t, 5, rt.errors)
}
