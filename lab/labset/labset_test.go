package labset

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kpe-agent/lab/cardsim/samapp"
)

// Every SAM of a generated set holds the same fresh institution
// pseudonym key (32 bytes), and lab.json does not: it exists only inside
// the SAM images.
func TestGenerateSAMPseudonymKey(t *testing.T) {
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	spec := &Spec{SAM: SAMSpec{Serial: "53414D0000000009", ActivationCode: "123456", KTPSecret1: "a", KTPSecret2: "b"},
		Cards: []CardSpec{
			{File: "sam", Name: "SAM", Kind: KindSAM, Expect: "sam-ready", Serial: "53414D0000000009"},
			{File: "sam-blocked", Name: "SAM blocked", Kind: KindSAM, Variant: VariantBlocked, Expect: "sam-blocked", Serial: "53414D000000000A"},
		}}
	out := t.TempDir()
	if _, err := Generate(spec, out, time.Now()); err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	for _, name := range []string{"sam", "sam-blocked"} {
		b, err := os.ReadFile(filepath.Join(out, "cards", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		k, err := samapp.ImagePseudonymKey(b)
		if err != nil || len(k) != samapp.MinPseudonymKey {
			t.Fatalf("%s: pseudonym key of %d bytes (%v)", name, len(k), err)
		}
		keys = append(keys, k)
	}
	if string(keys[0]) != string(keys[1]) {
		t.Error("the set's two SAMs hold different pseudonym keys")
	}
	m, err := os.ReadFile(filepath.Join(out, "lab.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys[:1] {
		for _, enc := range []string{string(k), hex.EncodeToString(k)} {
			if len(enc) > 0 && strings.Contains(string(m), enc) {
				t.Error("lab.json holds the pseudonym key")
			}
		}
	}
}
