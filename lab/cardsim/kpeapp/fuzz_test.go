package kpeapp_test

import (
	"os"
	"testing"

	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/pcsctest"
)

// Card images of type kpe and ktpel are parsed strictly: anything malformed
// is an error, never a panic.
func FuzzParseImage(f *testing.F) {
	for _, name := range []string{"kpe-clone", "ktpel-siti"} {
		b, err := os.ReadFile(pcsctest.RepoPath("testdata/cards/lab/cards/" + name + ".json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"ktpel","name":"x","uid":"04112233","keys":{"enc":"00","mac":"00"},"files":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := cardsim.ParseCard(data, "")
		if err == nil && c == nil {
			t.Fatal("nil card without error")
		}
	})
}
