//go:build unix

// Package softhsm gives tests a real PKCS#11 token: a SoftHSM2 token of
// their own (Debian package softhsm2, installed by make deps), initialised
// with scripts/softhsm-init.sh in a temporary directory named by
// SOFTHSM2_CONF (docs/renewal.md, "HSM setup"); lab/softhsm/signer makes
// the issuer's document signer in one. It imports nothing of sync/issuer,
// so that package's own tests use it too. Under CI a missing
// SoftHSM2 fails the test (internal/systest.Need), never skips it.
package softhsm

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"kpe-agent/internal/systest"
	"kpe-agent/lab/pcsctest"
)

// DefaultModule is the SoftHSM2 PKCS#11 module of the Debian package;
// SOFTHSM2_MODULE overrides it.
const DefaultModule = "/usr/lib/softhsm/libsofthsm2.so"

// SOPIN is the security officer's PIN of the tokens Token makes.
const SOPIN = "11223344"

// Module is the SoftHSM2 module to load; the test fails under CI (skips
// elsewhere) when SoftHSM2 is not installed.
func Module(t testing.TB) string {
	t.Helper()
	mod := os.Getenv("SOFTHSM2_MODULE")
	if mod == "" {
		mod = DefaultModule
	}
	_, modErr := os.Stat(mod)
	_, utilErr := exec.LookPath("softhsm2-util")
	systest.Need(t, modErr == nil && utilErr == nil, "SoftHSM2 ("+mod+" and softhsm2-util; Debian package softhsm2, make deps)")
	return mod
}

// Token initialises a token labelled label with the user PIN pin in a
// directory of the test's own, points SOFTHSM2_CONF at it for the rest
// of the test, and answers the module and the directory.
func Token(t testing.TB, label, pin string) (module, dir string) {
	t.Helper()
	module = Module(t)
	dir = t.TempDir()
	script := pcsctest.RepoPath("scripts/softhsm-init.sh")
	if out, err := exec.Command(script, "--dir", dir, "--label", label, "--pin", pin, "--so-pin", SOPIN).CombinedOutput(); err != nil {
		t.Fatalf("softhsm-init.sh: %v\n%s", err, out)
	}
	t.Setenv("SOFTHSM2_CONF", filepath.Join(dir, "softhsm2.conf"))
	return module, dir
}
