package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/lab/pcsctest"
)

func runCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestUsageErrors(t *testing.T) {
	_, errOut, code := runCLI(t, "", "frobnicate")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "perintah tidak dikenal")

	_, errOut, code = runCLI(t, "", "-lang", "en", "frobnicate")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "unknown command")

	_, errOut, code = runCLI(t, "", "-lang", "fr", "readers")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "unsupported -lang")

	_, errOut, code = runCLI(t, "", "apdu", "00A4")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "not a hex command")

	_, errOut, code = runCLI(t, "# only a comment\n\n", "apdu")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "no APDU given")
}

func TestCommandsParsing(t *testing.T) {
	c := &cli{in: strings.NewReader("00 A4 04 00 # select\n\n00:B0:00:00:0A\n")}
	cmds, err := c.commands(nil)
	require.NoError(t, err)
	require.Equal(t, [][]byte{{0x00, 0xA4, 0x04, 0x00}, {0x00, 0xB0, 0x00, 0x00, 0x0A}}, cmds)
}

func TestIntegrationKpectl(t *testing.T) {
	pcsctest.Require(t)
	lab := pcsctest.Lab(t)
	pcsctest.Insert(t, lab, 0, "generic-fs-t0.json")

	out, errOut, code := runCLI(t, "", "readers")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "Virtual PCD 00 00\n   kartu ada  ATR 3B")
	require.Contains(t, out, "Virtual PCD 00 01\n   tidak ada kartu")

	out, errOut, code = runCLI(t, "", "readers", "-json")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"card_present": true`)

	// Raw: the T=0-style card answers 61xx and the operator sees it.
	script := "00 A4 04 00 08 F0 4B 50 45 2D 46 53 01\n00 C0 00 00 13\n"
	out, errOut, code = runCLI(t, script, "apdu", "-r", pcsctest.Slot0)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "< 61 13 : ")
	require.Contains(t, out, "< 90 00 : normal processing")

	// -auto: the toolkit fetches the data; the 10-byte EF is read in full
	// although Le asks for 256 (6C0A is handled too).
	out, errOut, code = runCLI(t, "", "apdu", "-auto", "-r", pcsctest.Slot0,
		"00A4040C08F04B50452D465301", "00A4020C025001", "00B0000000")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "< 01 02 03 04 05 06 07 08 09 0A\n< 90 00")

	// A status word error is shown with its ISO meaning.
	out, _, code = runCLI(t, "", "-lang", "en", "apdu", "-r", pcsctest.Slot0, "00A4020C029999")
	require.Equal(t, 0, code)
	require.Contains(t, out, "< 6A 82 : 6A82: file or application not found")

	// No card: a clear message with the action, in Bahasa Indonesia.
	require.NoError(t, lab.Remove(0))
	pcsctest.WaitCard(t, pcsctest.Slot0, false, 5*time.Second)
	_, errOut, code = runCLI(t, "", "apdu", "00A4000C")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "Tidak ada kartu di pembaca. Masukkan kartu.")
}

// kpectl bio: a small generated set gives the figures, and two templates
// compare with a decision.
func TestBioCommands(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := runCLI(t, "", "bio", "gen", "-out", dir, "-level", "easy", "-fingers", "12", "-impressions", "3", "-impostors", "0")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "12 fingers x 3 impressions (easy), pairs.csv")
	out, errOut, code = runCLI(t, "", "bio", "bench", dir)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "EER")
	require.Contains(t, out, "FNMR@FMR=0.01")
	require.Contains(t, out, "comparisons/s")
	require.Contains(t, out, "compact card")

	out, errOut, code = runCLI(t, "", "bio", "match", dir+"/f0001_0.iso", dir+"/f0001_1.iso")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, " match")
	out, _, code = runCLI(t, "", "bio", "match", "-json", dir+"/f0001_0.iso", dir+"/f0002_1.iso")
	require.Equal(t, 0, code)
	require.Contains(t, out, `"match": false`)

	_, errOut, code = runCLI(t, "", "bio", "match", dir+"/pairs.csv", dir+"/f0001_0.iso")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "malformed")
}
