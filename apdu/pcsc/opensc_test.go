package pcsc_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"kpe-agent/lab/pcsctest"
)

// TestIntegrationOpenSC checks the lab with standard tools nobody here
// wrote: opensc-tool must list the Virtual PCD reader with a card, print the
// card's ATR, and read an EF with SELECT + READ BINARY.
func TestIntegrationOpenSC(t *testing.T) {
	pcsctest.Require(t)
	tool, err := exec.LookPath("opensc-tool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("INTEGRATION FAILED: opensc-tool missing in CI (make test installs opensc)")
		}
		t.Skip("SKIPPED LOUDLY: opensc-tool is not installed; run `make test`")
	}
	lab := pcsctest.Lab(t)
	card := pcsctest.Insert(t, lab, 0, "generic-fs.json")

	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tool, args...).CombinedOutput()
		require.NoError(t, err, "opensc-tool %v: %s", args, out)
		return string(out)
	}

	list := run("-l")
	require.Regexp(t, `0\s+Yes\s+Virtual PCD 00 00`, list)

	var atr []string
	for _, b := range card.ATR() {
		atr = append(atr, fmt.Sprintf("%02x", b))
	}
	require.Contains(t, run("-r", "0", "-a"), strings.Join(atr, ":"))

	out := run("-r", "0",
		"-s", "00 A4 04 00 08 F0 4B 50 45 2D 46 53 01",
		"-s", "00 A4 02 04 02 50 01",
		"-s", "00 B0 00 00 0A")
	require.Contains(t, out, "01 02 03 04 05 06 07 08 09 0A")
	require.Equal(t, 3, strings.Count(out, "SW1=0x90, SW2=0x00"), out)
	t.Logf("opensc-tool read EF 5001 through pcscd:\n%s", out)
}
