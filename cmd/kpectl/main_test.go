package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/lab/pcsctest"
	"kpe-agent/lab/synth"
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

	_, errOut, code = runCLI(t, "", "--lang", "en", "frobnicate")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "unknown command")
	_, errOut, code = runCLI(t, "", "stauts", "--lang", "en")
	require.Equal(t, 2, code)
	require.Equal(t, "unknown command: \"stauts\"\n  (status?)\nRun 'kpectl --help' for usage.\n", errOut)

	_, errOut, code = runCLI(t, "", "--lang", "fr", "readers")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `--lang: unsupported language "fr"`)

	// The Go flag package's single-dash long flags are refused with the
	// right spelling (pflag would read -json as -j -s -o -n).
	_, errOut, code = runCLI(t, "", "status", "-json")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "-json: long flags take two dashes: --json")

	_, errOut, code = runCLI(t, "", "readers", "--frobnicate")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "unknown flag: --frobnicate")
	require.Contains(t, errOut, "Run 'kpectl readers --help' for usage.")

	_, errOut, code = runCLI(t, "", "status", "extra")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `unknown command "extra" for "kpectl status"`)

	// No command: the usage on standard error.
	out, errOut, code := runCLI(t, "")
	require.Equal(t, 2, code)
	require.Empty(t, out)
	require.Contains(t, errOut, "Usage:")
	require.Contains(t, errOut, "doctor")

	_, errOut, code = runCLI(t, "", "apdu", "00A4")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "not a hex command")

	_, errOut, code = runCLI(t, "# only a comment\n\n", "apdu")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "no APDU given")
}

// Help, version and completion exit 0 and print on standard output,
// everywhere.
func TestHelpVersionCompletion(t *testing.T) {
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"help"}, {"help", "queue"}, {"queue", "-h"}, {"queue", "list", "--help"},
		{"bio", "match", "-h"}, {"read", "--help", "--lang", "en"}, {"sync", "now", "-h"},
	} {
		out, errOut, code := runCLI(t, "", args...)
		require.Equal(t, 0, code, "%q: %s", args, errOut)
		require.Contains(t, out, "Usage:", args)
	}
	out, _, _ := runCLI(t, "", "--help")
	require.Regexp(t, `(?s)doctor.*status.*auth.*sync.*monitor.*readers.*apdu.*read.*bio.*queue.*version.*completion`, out)

	out, errOut, code := runCLI(t, "", "version")
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `^kpectl \S+\n`, out)
	require.Contains(t, out, "go:           go1.")
	out, _, code = runCLI(t, "", "version", "--json")
	require.Equal(t, 0, code)
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	require.Equal(t, "kpectl", v["name"])
	require.NotEmpty(t, v["go_version"])

	for shell, want := range map[string]string{"bash": "__start_kpectl", "zsh": "#compdef kpectl", "fish": "complete -c kpectl", "powershell": "Register-ArgumentCompleter"} {
		out, errOut, code := runCLI(t, "", "completion", shell)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, want, shell)
	}
	// The completion script asks kpectl for the words: commands and flags.
	out, _, code = runCLI(t, "", "__complete", "queue", "li")
	require.Equal(t, 0, code)
	require.Contains(t, out, "list")
	out, _, _ = runCLI(t, "", "__complete", "auth", "--ser")
	require.Contains(t, out, "--service")

	// The hidden man command writes a page per command.
	dir := t.TempDir()
	_, errOut, code = runCLI(t, "", "man", "--dir", dir)
	require.Equal(t, 0, code, errOut)
	page, err := os.ReadFile(filepath.Join(dir, "kpectl.1"))
	require.NoError(t, err)
	require.Contains(t, string(page), ".TH \"KPECTL\" \"1\"")
	_, err = os.Stat(filepath.Join(dir, "kpectl-queue-salvage.1"))
	require.NoError(t, err)
	out, _, _ = runCLI(t, "", "--help")
	require.NotContains(t, out, "man ", "man is hidden")
}

// With --json an error is a JSON object on standard output, with the exit
// code of the error.
func TestJSONErrors(t *testing.T) {
	out, errOut, code := runCLI(t, "", "apdu", "00A4", "--json")
	require.Equal(t, 2, code)
	require.Empty(t, errOut)
	var e errorJSON
	require.NoError(t, json.Unmarshal([]byte(out), &e), out)
	require.Equal(t, "usage", e.Error.Code)
	require.Contains(t, e.Error.Message, "not a hex command")

	out, _, code = runCLI(t, "", "--lang", "en", "queue", "list", "--json", "--outbox", filepath.Join(t.TempDir(), "none.db"))
	require.Equal(t, 1, code)
	e = errorJSON{}
	require.NoError(t, json.Unmarshal([]byte(out), &e), out)
	require.Equal(t, "no-outbox", e.Error.Code)
	require.Equal(t, "The outbox file does not exist. Check --outbox or KPE_OUTBOX.", e.Error.Message)
	require.NotEmpty(t, e.Error.Detail)

	out, _, code = runCLI(t, "", "bio", "match", "--json", "--nope")
	require.Equal(t, 2, code)
	require.Contains(t, out, `"code": "usage"`)
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

	out, errOut, code = runCLI(t, "", "readers", "--json")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"card_present": true`)

	// A global flag after the command.
	out, errOut, code = runCLI(t, "", "readers", "--lang", "en")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "Virtual PCD 00 01\n   no card")

	// Raw: the T=0-style card answers 61xx and the operator sees it.
	script := "00 A4 04 00 08 F0 4B 50 45 2D 46 53 01\n00 C0 00 00 13\n"
	out, errOut, code = runCLI(t, script, "apdu", "-r", pcsctest.Slot0)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "< 61 13 : ")
	require.Contains(t, out, "< 90 00 : normal processing")

	// -auto: the toolkit fetches the data; the 10-byte EF is read in full
	// although Le asks for 256 (6C0A is handled too).
	out, errOut, code = runCLI(t, "", "apdu", "--auto", "-r", pcsctest.Slot0,
		"00A4040C08F04B50452D465301", "00A4020C025001", "00B0000000")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "< 01 02 03 04 05 06 07 08 09 0A\n< 90 00")

	// A status word error is shown with its ISO meaning.
	out, _, code = runCLI(t, "", "--lang", "en", "apdu", "-r", pcsctest.Slot0, "00A4020C029999")
	require.Equal(t, 0, code)
	require.Contains(t, out, "< 6A 82 : 6A82: file or application not found")

	// --json, and --trace writes the redacted trace: the READ BINARY's
	// answer (file contents, here fetched by GET RESPONSE) is not in it.
	trace := filepath.Join(t.TempDir(), "apdu.trace")
	out, errOut, code = runCLI(t, "", "apdu", "--json", "--auto", "-r", pcsctest.Slot0, "--trace", trace,
		"00A4040C08F04B50452D465301", "00A4020C025001", "00B0000000")
	require.Equal(t, 0, code, errOut)
	var ex apduJSON
	require.NoError(t, json.Unmarshal([]byte(out), &ex), out)
	require.Equal(t, pcsctest.Slot0, ex.Reader)
	require.Len(t, ex.Exchanges, 3)
	require.Equal(t, exchangeJSON{Command: "00B0000000", Response: "0102030405060708090A9000", Data: "0102030405060708090A",
		SW: "9000", Meaning: "normal processing"}, ex.Exchanges[2])
	b, err := os.ReadFile(trace)
	require.NoError(t, err)
	require.Contains(t, string(b), "-> 00B00000 00 <- 6C0A")
	require.Contains(t, string(b), "-> 00C00000 0A <- <redacted 10 bytes> 9000", "the GET RESPONSE of a READ BINARY")
	require.NotContains(t, string(b), "0102030405060708090A")

	// No card: a clear message with the action, in Bahasa Indonesia.
	require.NoError(t, lab.Remove(0))
	pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
	_, errOut, code = runCLI(t, "", "apdu", "00A4000C")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "Tidak ada kartu di pembaca. Masukkan kartu.")
}

// kpectl bio: a small generated set (as kpe-cardsim bio gen makes) gives the figures, and two templates
// compare with a decision.
func TestBioCommands(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, synth.WriteSet(dir, synth.SetOptions{Fingers: 12, Impressions: 3, Level: synth.Easy, Seed: 1}))
	out, errOut, code := runCLI(t, "", "bio", "bench", dir)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "EER")
	require.Contains(t, out, "FNMR@FMR=0.01")
	require.Contains(t, out, "comparisons/s")
	require.Contains(t, out, "compact card")

	out, errOut, code = runCLI(t, "", "bio", "match", dir+"/f0001_0.iso", dir+"/f0001_1.iso")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, " match")
	out, _, code = runCLI(t, "", "bio", "match", "--json", dir+"/f0001_0.iso", dir+"/f0002_1.iso")
	require.Equal(t, 0, code)
	require.Contains(t, out, `"match": false`)
	// Flags after the arguments.
	out, errOut, code = runCLI(t, "", "bio", "match", dir+"/f0001_0.iso", dir+"/f0002_1.iso", "--json")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"match": false`)

	_, errOut, code = runCLI(t, "", "bio", "match", dir+"/f0001_0.iso")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "want two template files")
	_, errOut, code = runCLI(t, "", "bio", "gen")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `"gen"`, "bio gen moved to kpe-cardsim")

	_, errOut, code = runCLI(t, "", "bio", "match", dir+"/pairs.csv", dir+"/f0001_0.iso")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "malformed")
}
