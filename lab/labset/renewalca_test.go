package labset

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	"kpe-agent/lab/pcsctest"
)

// The lab's BKN renewal root (generated and committed sets alike) is in
// the BKN trust list, and a document signer it issues is trusted for
// digital signatures there; the personalisation root's key is not kept.
func TestRenewalCA(t *testing.T) {
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	full, err := LoadSpec(pcsctest.RepoPath("testdata/cards/lab/spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	generated := t.TempDir()
	if _, err := Generate(&Spec{SAM: full.SAM}, generated, time.Now()); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{"committed": pcsctest.RepoPath("testdata/cards/lab"), "generated": generated} {
		t.Run(name, func(t *testing.T) {
			m, err := LoadManifest(dir)
			if err != nil {
				t.Fatal(err)
			}
			ca, err := m.RenewalIssuer(dir)
			if err != nil {
				t.Fatal(err)
			}
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			ds, err := ca.DocumentSigner(&key.PublicKey, pkix.Name{CommonName: "Lab BKN Renewal Signer"})
			if err != nil {
				t.Fatal(err)
			}
			roots, err := m.Roots(dir, "bkn")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ds.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Fatalf("a renewal document signer is not trusted by the BKN list: %v", err)
			}
		})
	}
}
