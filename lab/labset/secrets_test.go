package labset

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// The sample set's secrets land in owner-only files in the form the
// agent and kpectl read, replacing files that were too open.
func TestWriteSecrets(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	lab := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "cards", "lab")
	m, err := LoadManifest(lab)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "secrets")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sam-code"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := m.WriteSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		f.SAMCode:    m.SAM.ActivationCode + "\n",
		f.KTPSecrets: m.SAM.KTPSecret1 + "\n" + m.SAM.KTPSecret2 + "\n",
	} {
		b, err := os.ReadFile(path)
		if err != nil || string(b) != want {
			t.Errorf("%s: %q (%v), want %q", path, b, err, want)
		}
		if st, err := os.Stat(path); err != nil {
			t.Error(err)
		} else if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", path, st.Mode().Perm())
		}
	}
	bkn, err := m.TrustFile(lab, "bkn")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bkn); err != nil {
		t.Errorf("trust file: %v", err)
	}
	if _, err := m.TrustFile(lab, "nope"); err == nil {
		t.Error("an unknown trust list gave no error")
	}
	if _, err := (&Manifest{}).WriteSecrets(t.TempDir()); err == nil {
		t.Error("a manifest without secrets gave no error")
	}
}
