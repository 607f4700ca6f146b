package main

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/config"
	"kpe-agent/internal/purse"
	"kpe-agent/lab/pcsctest"
	"kpe-agent/sync/backoffice"
)

// TestMakeRunEWalletSetUp is the e-wallet part of `make run`: run-lab.sh
// runs scripts/lab-ewallet.sh into its state dir and gives its flags to
// kpe-backoffice serve; the set-up, run twice as two make runs would,
// stages one top-up for Budi and registers the bank once, and its flags
// name the lab's purse masters, the same as the lab SAM's. The lab
// configuration takes payments for a merchant.
func TestMakeRunEWalletSetUp(t *testing.T) {
	repo := pcsctest.RepoPath(".")
	script, err := os.ReadFile(filepath.Join(repo, "scripts/run-lab.sh"))
	require.NoError(t, err)
	require.Regexp(t, `(?m)^ewallet=\$\(scripts/lab-ewallet\.sh "\$STATE" "\$STATE/backoffice\.db"\) \|\| exit 1$`, string(script))
	require.Regexp(t, `(?m)^start bin/kpe-backoffice serve "\$\{issuer_flags\[@\]\}" "\$\{ewallet_flags\[@\]\}"`, string(script))
	require.Contains(t, string(script), `"http://$AGENT/v1/pay"`)

	bin := t.TempDir()
	out, err := exec.Command("go", "build", "-o", bin, "kpe-agent/cmd/kpe-backoffice").CombinedOutput()
	require.NoError(t, err, "%s", out)
	state := t.TempDir()
	db := filepath.Join(state, "backoffice.db")
	setUp := func() []string {
		cmd := exec.Command(filepath.Join(repo, "scripts/lab-ewallet.sh"), state, db)
		cmd.Env = append(os.Environ(), "BIN="+bin)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "scripts/lab-ewallet.sh: %s", stderr.String())
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	flags := setUp()
	key, err := os.ReadFile(filepath.Join(state, "bank-api-key"))
	require.NoError(t, err)
	require.Equal(t, flags, setUp(), "a second run gives the same flags")
	again, err := os.ReadFile(filepath.Join(state, "bank-api-key"))
	require.NoError(t, err)
	require.Equal(t, key, again, "the bank is registered once")
	fi, err := os.Stat(filepath.Join(state, "bank-api-key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	require.Len(t, flags, 3)
	require.Equal(t, []string{"--purse-keys", "testdata/cards/lab/trust/purse-keys.json", "--purse-keys-lab"}, flags)
	keys, err := purse.LoadLabKeys(filepath.Join(repo, flags[1]))
	require.NoError(t, err)
	var sam struct {
		Debit  string `json:"purse_debit_master"`
		Credit string `json:"purse_credit_master"`
	}
	b, err := os.ReadFile(filepath.Join(repo, "testdata/cards/lab/cards/sam.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &sam))
	require.Equal(t, sam.Debit, hex.EncodeToString(keys.Debit), "the lab SAM's debit master")
	require.Equal(t, sam.Credit, hex.EncodeToString(keys.Credit), "the lab SAM's credit master")

	store, err := backoffice.OpenBolt(db)
	require.NoError(t, err)
	svc, err := backoffice.New(store, backoffice.Config{CA: x509.NewCertPool()})
	require.NoError(t, err)
	ts, err := svc.TopUps(context.Background(), backoffice.TopUpFilter{NIP: "197208172000031002"})
	require.NoError(t, err)
	require.Len(t, ts, 1, "one top-up for Budi across two runs")
	require.Equal(t, backoffice.TopUpStaged, ts[0].Status)
	require.Equal(t, uint32(100_000), ts[0].Amount)
	require.NoError(t, store.Close())

	env := runLabFiles(t, filepath.Join(repo, "scripts/run-lab.sh"), t.TempDir(), "token")
	c, err := config.Load(config.Source{File: filepath.Join(repo, "configs/lab.yaml"), Environ: env})
	require.NoError(t, err)
	require.True(t, c.EWalletOn())
	require.Equal(t, "lab-apotik", c.EWallet.MerchantID)
}
