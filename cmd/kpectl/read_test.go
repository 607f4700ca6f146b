package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"kpe-agent/internal/leaktest"
	"kpe-agent/lab/cardsim"
	_ "kpe-agent/lab/cardsim/kpeapp"
	_ "kpe-agent/lab/cardsim/samapp"
	"kpe-agent/lab/labset"
	"kpe-agent/lab/pcsctest"
)

var (
	sensorLab *cardsim.Lab
	sensorURL string
)

// insertLabWithSensor is insertLab with the lab's control channel served,
// for the lab sensor.
func insertLabWithSensor(t *testing.T, slot0 string) string {
	dir := insertLab(t, slot0)
	srv := httptest.NewServer(sensorLab.Handler())
	t.Cleanup(srv.Close)
	sensorURL = srv.URL
	return dir
}

// labFlags are kpectl read's flags for the lab set in dir: its trust
// lists, and its SAM's activation code and KTP-el secrets in files as
// kpe-cardsim secrets writes them.
func labFlags(t *testing.T, dir string) []string {
	t.Helper()
	m, err := labset.LoadManifest(dir)
	require.NoError(t, err)
	f, err := m.WriteSecrets(t.TempDir())
	require.NoError(t, err)
	bkn, err := m.TrustFile(dir, "bkn")
	require.NoError(t, err)
	dukcapil, err := m.TrustFile(dir, "dukcapil")
	require.NoError(t, err)
	return []string{"--trust-bkn", bkn, "--trust-dukcapil", dukcapil, "--sam-code-file", f.SAMCode, "--ktp-secrets-file", f.KTPSecrets}
}

// readArgs is kpectl read with args and the lab set's flags.
func readArgs(t *testing.T, dir string, args ...string) []string {
	return append(append([]string{"read"}, args...), labFlags(t, dir)...)
}

func insertLab(t *testing.T, slot0 string) string {
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	dir := pcsctest.RepoPath("testdata/cards/lab")
	lab := pcsctest.Lab(t)
	sensorLab = lab
	for slot, name := range []string{slot0, "sam"} {
		c, err := cardsim.LoadCard(filepath.Join(dir, "cards", name+".json"))
		require.NoError(t, err)
		require.NoError(t, lab.Insert(slot, c))
		pcsctest.WaitCard(t, pcsctest.SlotReaders[slot], true, 5e9)
	}
	return dir
}

// kpectl read --json on the sample KPE prints identity, employment, family,
// benefits and the verification section; the photo goes to -photo only.
func TestIntegrationReadJSON(t *testing.T) {
	pcsctest.Require(t)
	dir := insertLab(t, "kpe-budi")
	photo := filepath.Join(t.TempDir(), "budi.jpg")
	out, errOut, code := runCLI(t, "", readArgs(t, dir, "--json", "--photo", photo)...)
	require.Equal(t, 0, code, errOut)

	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	require.Equal(t, "kpe", v["kind"])
	require.Equal(t, "genuine", v["verdict"])
	checks := v["checks"].(map[string]any)
	for _, k := range []string{"card_authentic", "data_authentic", "identifiers_consistent"} {
		require.Equal(t, true, checks[k].(map[string]any)["ok"], k)
	}
	require.Equal(t, "197208172000031002", v["identity"].(map[string]any)["nip"])
	require.Equal(t, "IV/c", v["employment"].(map[string]any)["golongan_ruang"])
	require.Len(t, v["family"], 5)
	require.Equal(t, "****4321", v["benefits"].(map[string]any)["account_masked"])

	jpg, err := os.ReadFile(photo)
	require.NoError(t, err)
	require.Equal(t, []byte{0xFF, 0xD8}, jpg[:2], "a JPEG")
	require.Equal(t, float64(len(jpg)), v["photo"].(map[string]any)["bytes"])
	require.NotContains(t, out, "/9j/", "the photo never goes into the JSON")
	st, _ := os.Stat(photo)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// Human output, Bahasa Indonesia by default.
	out, errOut, code = runCLI(t, "", readArgs(t, dir)...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "ASLI")
	require.Contains(t, out, "Budi Santoso")
}

// A clone's verdict in English; a KTP-el whose population data never
// appears in the output and whose photo is refused for saving.
func TestIntegrationReadVerdicts(t *testing.T) {
	pcsctest.Require(t)
	dir := insertLab(t, "kpe-clone")
	out, errOut, code := runCLI(t, "", readArgs(t, dir, "--lang", "en")...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "NOT GENUINE")
}

func TestIntegrationReadKTPel(t *testing.T) {
	pcsctest.Require(t)
	dir := insertLab(t, "ktpel-siti")
	out, errOut, code := runCLI(t, "", readArgs(t, dir, "--json")...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"verdict": "genuine"`)
	require.NotContains(t, out, "3174055203870002")
	require.NotContains(t, out, "RAHMAWATI")
	_, errOut, code = runCLI(t, "", readArgs(t, dir, "--photo", filepath.Join(t.TempDir(), "x.jpg"))...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "tidak boleh disimpan")
}

// KTP-el data goes through the whole read path (pcscd, SAM-wrapped secure
// messaging, parsing, verdict, JSON output, debug log, APDU trace), and
// then nothing under the data directory holds the NIK or the name, in
// text or in hex.
func TestIntegrationKTPelLeavesNoTrace(t *testing.T) {
	pcsctest.Require(t)
	data := t.TempDir()
	for _, d := range []string{"home", "cache", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(data, d), 0o700))
	}
	t.Setenv("HOME", filepath.Join(data, "home"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(data, "cache"))
	t.Setenv("TMPDIR", filepath.Join(data, "tmp"))
	dir := insertLab(t, "ktpel-siti")
	t.Setenv("KPE_CARDSIM_STATE_DIR", filepath.Join(data, "sam-state")) // after insertLab: the SAM image is loaded

	out, errOut, code := runCLI(t, "", readArgs(t, dir, "--json",
		"--trace", filepath.Join(data, "apdu.trace"), "--log", filepath.Join(data, "agent.log"))...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"verdict": "genuine"`, "the chip was really read")
	require.NoError(t, os.WriteFile(filepath.Join(data, "stdout.json"), []byte(out+errOut), 0o600))
	trace, err := os.ReadFile(filepath.Join(data, "apdu.trace"))
	require.NoError(t, err)
	require.Contains(t, string(trace), "-> 8032", "the trace covers the SAM's SM UNWRAP")
	require.Contains(t, string(trace), "-> 0CB0", "and the protected READ BINARY")

	secrets := leaktest.Needles([]byte("3174055203870002"), []byte("SITI RAHMAWATI"), []byte("RAHMAWATI"), []byte("KEMANG RAYA"))
	require.GreaterOrEqual(t, len(leaktest.ScanDir(t, data, secrets)), 3)
}

// kpectl read --finger-lab: the clerk's fingerprint check after the read,
// with the lab's sensor: genuine, impostor, poor capture.
func TestIntegrationReadFinger(t *testing.T) {
	pcsctest.Require(t)
	dir := insertLabWithSensor(t, "kpe-budi")
	for mode, want := range map[string]string{"genuine": "COCOK", "impostor": "TIDAK COCOK (sisa percobaan pada kartu: 4)", "poor": "letakkan jari kembali"} {
		require.NoError(t, sensorLab.PlaceFinger(0, mode))
		out, errOut, code := runCLI(t, "", readArgs(t, dir, "--finger-lab", sensorURL)...)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "sidik jari: "+want, mode)
	}
	require.NoError(t, sensorLab.PlaceFinger(0, "genuine"))
	out, errOut, code := runCLI(t, "", readArgs(t, dir, "--lang", "en", "--json", "--finger-lab", sensorURL)...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"result": "match"`)
}

// Without a SAM the clerk is told to put one in, not shown a Go error.
func TestIntegrationReadWithoutSAM(t *testing.T) {
	pcsctest.Require(t)
	dir := insertLab(t, "kpe-budi")
	require.NoError(t, sensorLab.Remove(1))
	pcsctest.WaitCard(t, pcsctest.SlotReaders[1], false, 5e9)
	_, errOut, code := runCLI(t, "", readArgs(t, dir)...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "Tidak ada SAM di pembaca mana pun.")
}
