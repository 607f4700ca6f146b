package main

import (
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/config"
	"kpe-agent/apdu/kpe"
	"kpe-agent/internal/kpedata"
	"kpe-agent/internal/renewal"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/cardsim/kpeapp"
	"kpe-agent/lab/labpki"
	"kpe-agent/lab/pcsctest"
	"kpe-agent/lab/softhsm"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/issuer"
	"kpe-agent/sync/wire"
)

// TestMakeRunRenewalSetUp is the renewal part of `make run`: run-lab.sh
// runs scripts/lab-renewal.sh into its state dir and gives its flags to
// kpe-backoffice serve (with SOFTHSM2_CONF pointing at the token), and
// the set-up, run twice as two make runs would, keeps its token, key and
// certificate and stages one update for Budi. A back office on that store
// with the signer those flags name (the key in the SoftHSM2 token) then
// answers the lab KPE of Budi an offer that the agent's renewal.Verify
// accepts with configs/lab.yaml's BKN trust list.
func TestMakeRunRenewalSetUp(t *testing.T) {
	softhsm.Module(t) // SoftHSM2 installed (CI: required)
	repo := pcsctest.RepoPath(".")
	script, err := os.ReadFile(filepath.Join(repo, "scripts/run-lab.sh"))
	require.NoError(t, err)
	require.Regexp(t, `(?m)^issuer=\$\(scripts/lab-renewal\.sh "\$STATE" "\$STATE/backoffice\.db"\) \|\| exit 1$`, string(script))
	require.Regexp(t, `(?m)^export SOFTHSM2_CONF="\$STATE/softhsm/softhsm2\.conf"`, string(script))
	require.Regexp(t, `(?m)^start bin/kpe-backoffice serve "\$\{issuer_flags\[@\]\}"`, string(script))

	bin := t.TempDir()
	out, err := exec.Command("go", "build", "-o", bin, "kpe-agent/cmd/kpe-backoffice", "kpe-agent/cmd/kpe-cardsim").CombinedOutput()
	require.NoError(t, err, "%s", out)
	state := t.TempDir()
	db := filepath.Join(state, "backoffice.db")
	setUp := func() []string {
		cmd := exec.Command(filepath.Join(repo, "scripts/lab-renewal.sh"), state, db)
		cmd.Env = append(os.Environ(), "BIN="+bin)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "scripts/lab-renewal.sh: %s", stderr.String())
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	flags := setUp()
	cert1, err := os.ReadFile(filepath.Join(state, "issuer/ds.pem"))
	require.NoError(t, err)
	require.Equal(t, flags, setUp(), "a second make run gets the same flags")
	cert2, err := os.ReadFile(filepath.Join(state, "issuer/ds.pem"))
	require.NoError(t, err)
	require.Equal(t, cert1, cert2, "a second make run keeps the issuer's certificate (and key)")

	// the flags: the PKCS#11 signer serve opens
	f := map[string]string{}
	for i := 0; i+1 < len(flags); i += 2 {
		require.True(t, strings.HasPrefix(flags[i], "--"), "%q", flags)
		f[flags[i]] = flags[i+1]
	}
	require.Equal(t, "pkcs11", f["--issuer-signer"])
	pin, err := config.ReadSecret(f["--pkcs11-pin-file"])
	require.NoError(t, err)
	t.Setenv("SOFTHSM2_CONF", filepath.Join(state, "softhsm/softhsm2.conf"))
	signer, err := issuer.OpenPKCS11(issuer.PKCS11Config{Module: f["--pkcs11-module"], TokenLabel: f["--pkcs11-token"],
		PIN: string(pin), KeyLabel: f["--pkcs11-key-label"], CertPath: f["--issuer-cert"]})
	require.NoError(t, err)
	defer signer.Close()
	roots, err := labpki.LoadPool(filepath.Join(repo, f["--issuer-roots"]))
	require.NoError(t, err)

	// one update staged for Budi
	store, err := backoffice.OpenBolt(db)
	require.NoError(t, err)
	defer store.Close()
	samCA, err := labpki.LoadPool(filepath.Join(repo, "testdata/cards/lab/trust/backoffice-ca.pem")) // serve's --sam-ca in run-lab.sh
	require.NoError(t, err)
	bo, err := backoffice.New(store, backoffice.Config{CA: samCA, Issuer: signer, IssuerRoots: roots})
	require.NoError(t, err)
	ctx := context.Background()
	ups, err := bo.RenewalUpdates(ctx, backoffice.RenewalFilter{NIP: budiNIP})
	require.NoError(t, err)
	require.Len(t, ups, 1, "one update for Budi after two runs")
	require.Equal(t, backoffice.RenewalStaged, ups[0].Status)

	// Budi's lab card asks, as the agent does after the finger
	card, err := cardsim.LoadCard(filepath.Join(repo, "testdata/cards/lab/cards/kpe-budi.json"))
	require.NoError(t, err)
	files := cardFiles(card)
	info, err := kpedata.ParseCardInfo(card.(*kpeapp.Applet).File(kpe.FIDCardInfo))
	require.NoError(t, err)
	raw, err := bo.RenewalOffer(ctx, &wire.RenewalQuery{CardSerial: hex.EncodeToString(info.Serial[:]), NIP: budiNIP, SOD: files[kpe.FIDSOD], DG1: files[kpe.FIDIdentity]})
	require.NoError(t, err)
	require.NotNil(t, raw, "the back office offers Budi's update")
	var o renewal.Offer
	require.NoError(t, o.UnmarshalJSON(raw))
	require.Equal(t, ups[0].ID, o.UpdateID)
	// the agent's trust list in configs/lab.yaml
	cfg, err := config.Load(config.Source{File: filepath.Join(repo, "configs/lab.yaml"), Environ: runLabFiles(t, filepath.Join(repo, "scripts/run-lab.sh"), t.TempDir(), "token")})
	require.NoError(t, err)
	bkn, err := labpki.LoadPool(cfg.Trust.BKN)
	require.NoError(t, err)
	require.NoError(t, renewal.Verify(&o, renewal.CardState{Serial: info.Serial, NIP: budiNIP, SOD: files[kpe.FIDSOD]}, bkn, time.Now()),
		"the agent accepts the offer make run's back office signs")
}
