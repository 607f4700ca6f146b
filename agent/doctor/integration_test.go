package doctor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/config"
	"kpe-agent/apdu/sam"
	_ "kpe-agent/lab/cardsim/kpeapp" // card images of type kpe
	_ "kpe-agent/lab/cardsim/samapp" // card images of type sam
	"kpe-agent/lab/pcsctest"
)

var pcscChecks = []string{CheckPCSC, CheckReaders, CheckSAM}

func runPCSC(t *testing.T, cfg *config.Config, goos string) Report {
	t.Helper()
	return Run(context.Background(), Options{Config: cfg, Agent: noAgent(t), Only: pcscChecks, GOOS: goos, CheckTimeout: 5 * time.Second})
}

// RestartPCSCD makes sure pcscd runs again when the test ends, even when
// it fails half-way.
func restartPCSCD(t *testing.T) {
	t.Cleanup(func() {
		if err := pcsctest.Start(); err != nil {
			t.Errorf("restarting pcscd: %v", err)
		}
		if err := pcsctest.WaitReaders(10 * time.Second); err != nil {
			t.Errorf("pcscd readers after restart: %v", err)
		}
	})
}

// pcscd stopped: the PC/SC finding fails with the action to start it; the
// readers and the SAM are not checked.
func TestIntegrationDoctorPCSCStopped(t *testing.T) {
	pcsctest.Require(t)
	restartPCSCD(t)
	require.NoError(t, pcsctest.Stop())

	rep := runPCSC(t, &config.Config{}, "linux")
	f := find(t, rep, CheckPCSC)
	requireAction(t, f, Fail, "no-service", "Jalankan layanan pcscd: sudo systemctl start pcscd", "Start the pcscd service: sudo systemctl start pcscd")
	require.Contains(t, f.Message.ID, "tidak berjalan")
	require.Contains(t, f.Message.EN, "is not running")
	require.Equal(t, Skip, find(t, rep, CheckReaders).Status)
	require.Equal(t, Skip, find(t, rep, CheckSAM).Status)
	require.True(t, rep.Failed())

	// On Windows the same failure (SCARD_E_NO_SERVICE) names SCardSvr.
	rep = runPCSC(t, &config.Config{}, "windows")
	requireAction(t, find(t, rep, CheckPCSC), Fail, "no-service", "sc start SCardSvr", "sc start SCardSvr")
	require.Contains(t, find(t, rep, CheckPCSC).Action.EN, "start= auto")
}

// The SAM: missing with only a KPE in the lab, inactive once the lab SAM
// is inserted, active once activated, blocked for the blocked sample.
func TestIntegrationDoctorSAM(t *testing.T) {
	pcsctest.Require(t)
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	lab := pcsctest.Lab(t)
	pcsctest.Insert(t, lab, 0, "lab/cards/kpe-budi.json")

	rep := runPCSC(t, &config.Config{}, "linux")
	require.Equal(t, OK, find(t, rep, CheckPCSC).Status)
	require.Equal(t, OK, find(t, rep, CheckReaders).Status)
	f := find(t, rep, CheckSAM)
	requireAction(t, f, Fail, "missing", "Masukkan SAM ke slot SAM pembaca, lalu jalankan ulang kpectl doctor",
		"Insert the SAM into the reader's SAM slot, then run kpectl doctor again")
	require.Contains(t, f.Detail, "probed directly")
	require.NotContains(t, f.Detail+f.Message.ID+f.Message.EN, "196608011988031001", "no personal data")

	pcsctest.Insert(t, lab, 1, "lab/cards/sam.json")
	rep = runPCSC(t, &config.Config{}, "linux")
	f = find(t, rep, CheckSAM)
	requireAction(t, f, Warn, "inactive", "sam.activation_code_file", "sam.activation_code_file")
	require.Contains(t, f.Detail, "53414D0000000001")
	require.Contains(t, f.Detail, pcsctest.Slot1)
	rep = runPCSC(t, &config.Config{SAM: config.SAM{ActivationCodeFile: "/etc/kpe-agent/secrets/sam-code"}}, "linux")
	requireAction(t, find(t, rep, CheckSAM), Warn, "inactive", "Jalankan agen", "Start the agent")

	// Activate it as the agent would; then the SAM is ready.
	activate(t, pcsctest.Slot1, "123456")
	rep = runPCSC(t, &config.Config{}, "linux")
	f = find(t, rep, CheckSAM)
	require.Equal(t, OK, f.Status, "%+v", f)
	require.Equal(t, "active", f.Code)
	require.False(t, rep.Failed())

	// Another program holds the SAM reader in a transaction: the SAM is
	// not called missing, the reader is named as not probed.
	t.Run("reader-held", func(t *testing.T) {
		card := pcsctest.Connect(t, pcsctest.Slot1)
		require.NoError(t, card.BeginTransaction(context.Background()))
		defer card.EndTransaction()
		rep := Run(context.Background(), Options{Config: &config.Config{}, Agent: noAgent(t), Only: pcscChecks, GOOS: "linux", CheckTimeout: time.Second})
		f := find(t, rep, CheckSAM)
		requireAction(t, f, Fail, "not-probed", "Tutup program lain yang memakai pembaca kartu", "Close any other program using the card reader")
		require.Contains(t, f.Detail, pcsctest.Slot1)
	})

	// readers.sam names another reader: the SAM there is missing.
	rep = runPCSC(t, &config.Config{Readers: config.Readers{SAM: []string{pcsctest.Slot0}}}, "linux")
	require.Equal(t, "missing", find(t, rep, CheckSAM).Code)

	require.NoError(t, lab.Remove(1))
	pcsctest.WaitCard(t, pcsctest.Slot1, false, 15*time.Second)
	pcsctest.Insert(t, lab, 1, "lab/cards/sam-blocked.json")
	rep = runPCSC(t, &config.Config{}, "linux")
	requireAction(t, find(t, rep, CheckSAM), Fail, "blocked", "Jangan mencoba mengaktifkannya lagi", "Do not try to activate it again")
}

func activate(t *testing.T, reader, code string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := sam.Open(ctx, pcsctest.Connect(t, reader))
	require.NoError(t, err)
	require.NoError(t, s.Activate(ctx, []byte(code)))
}
