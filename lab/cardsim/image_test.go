package cardsim

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPatternBytes(t *testing.T) {
	// SplitMix64 reference outputs (seed 0: E220A8397B1DCDAF, little-endian).
	if got := PatternBytes(8, 0); !bytes.Equal(got, hx("AFCD1D7B39A820E2")) {
		t.Fatalf("PatternBytes(8, 0) = %X", got)
	}
	if got := PatternBytes(10, 7); !bytes.Equal(got, PatternBytes(16, 7)[:10]) {
		t.Fatal("a shorter pattern is not a prefix of a longer one")
	}
	if bytes.Equal(PatternBytes(16, 7), PatternBytes(16, 8)) {
		t.Fatal("seeds 7 and 8 give the same bytes")
	}
	equal(t, len(PatternBytes(0, 1)), 0, "size 0")
	equal(t, len(PatternBytes(-5, 1)), 0, "negative size")
	equal(t, len(PatternBytes(65536, -1)), 65536, "negative seed")
}

func TestLoadShippedImages(t *testing.T) {
	for _, tc := range []struct {
		file, name string
		limits     Limits
	}{
		{"generic-fs.json", "generic-fs", Limits{MaxCommandData: 255, MaxResponseData: 256}},
		{"generic-fs-extended.json", "generic-fs-extended", Limits{MaxCommandData: 2048, MaxResponseData: 4096, ExtendedLength: true}},
		{"generic-fs-t0.json", "generic-fs-t0", Limits{MaxCommandData: 255, MaxResponseData: 256, T0GetResponse: true, StrictLe: true}},
	} {
		c := loadFS(t, tc.file)
		equal(t, c.Name(), tc.name, "name")
		equal(t, c.Limits(), tc.limits, "limits")
		noErr(t, ValidateATR(c.ATR()))
		if c.Limits().T0GetResponse {
			continue
		}
		// Same files on all: spot-check each source kind.
		expect(t, c, selAIDNo, SWOK, nil)
		expect(t, c, "00B0810000", SWEndOfFile, ef5001)
		expect(t, c, "00B0830000", SWOK, ef5003(t)[:256])
		expect(t, c, "00B0840000", SWOK, ef5004[:256])
		expect(t, c, "00B0820000", SWOK, ef5002[:256])
		expect(t, c, "00A4000C00", SWOK, nil)
		expect(t, c, "00A4020C022F00", SWOK, nil)
		expect(t, c, "00B0000000", SWEndOfFile, append(hx("611A4F08"+aidHex+"500E"), "KPE generic FS"...))
	}
}

func writeImage(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "card.json")
	noErr(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestLoadCardAnyOrderAndDefaults(t *testing.T) {
	dir := t.TempDir()
	noErr(t, os.WriteFile(filepath.Join(dir, "blob.bin"), []byte{9, 8, 7}, 0o644))
	p := writeImage(t, dir, `{"type": "filesystem", "files": [
		{"path": "3F00/1000/1001", "type": "ef", "file": "blob.bin", "sfi": 7},
		{"path": "3F00/1000", "type": "df", "aid": "A0 00 00 00 01"},
		{"path": "3F00/0001", "type": "ef", "hex": ""}
	]}`)
	c, err := LoadCard(p)
	noErr(t, err)
	equal(t, CardName(c), "card", "default name")
	if !bytes.Equal(c.ATR(), DefaultATR) {
		t.Fatal("default ATR")
	}
	expect(t, c, "00A4040C05A000000001", SWOK, nil)
	expect(t, c, "00B0870000", SWEndOfFile, []byte{9, 8, 7})
}

func TestLoadCardErrors(t *testing.T) {
	dir := t.TempDir()
	noErr(t, os.WriteFile(filepath.Join(dir, "big.bin"), make([]byte, MaxEFSize+1), 0o644))
	noErr(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	ef := func(extra string) string {
		return `{"type":"filesystem","files":[{"path":"3F00/0001","type":"ef",` + extra + `}]}`
	}
	for _, tc := range []struct{ name, body, want string }{
		{"not json", `{`, "card image"},
		{"no type", `{}`, `missing "type"`},
		{"unknown type", `{"type":"kpe-v9"}`, `unknown type "kpe-v9"`},
		{"unknown field", `{"type":"filesystem","colour":"red"}`, `unknown field "colour"`},
		{"unknown file field", ef(`"hex":"00","size":1`), `unknown field "size"`},
		{"trailing data", `{"type":"filesystem"} {}`, "after top-level value"},
		{"bad atr hex", `{"type":"filesystem","atr":"3B8"}`, "atr: bad hex"},
		{"bad atr tck", `{"type":"filesystem","atr":"3B888131FE4580739401A082900058"}`, "TCK"},
		{"bad hex", ef(`"hex":"0G"`), "bad hex"},
		{"two sources", ef(`"hex":"00","pattern":{"size":1,"seed":1}`), "exactly one"},
		{"no source", ef(`"sfi":3`), "exactly one"},
		{"pattern too big", ef(`"pattern":{"size":65537,"seed":1}`), "out of range"},
		{"hex too big", ef(`"hex":"` + strings.Repeat("00", MaxEFSize+1) + `"`), "exceed"},
		{"file too big", ef(`"file":"big.bin"`), "larger than"},
		{"file escapes", ef(`"file":"../x.bin"`), "inside the image directory"},
		{"file absolute", ef(`"file":"/etc/hostname"`), "inside the image directory"},
		{"file missing", ef(`"file":"nope.bin"`), "no such file"},
		{"file is dir", ef(`"file":"sub"`), "file"},
		{"bad sfi", ef(`"hex":"00","sfi":31`), "sfi 31"},
		{"sfi zero", ef(`"hex":"00","sfi":0`), "sfi 0"},
		{"ef with aid", ef(`"hex":"00","aid":"A0"`), "no AID"},
		{"missing file type", `{"type":"filesystem","files":[{"path":"3F00/0001","hex":"00"}]}`, `missing "type"`},
		{"bad file type", `{"type":"filesystem","files":[{"path":"3F00/0001","type":"ef2"}]}`, `unknown file type`},
		{"df with hex", `{"type":"filesystem","files":[{"path":"3F00/1000","type":"df","hex":"00"}]}`, "DF takes no"},
		{"bad aid", `{"type":"filesystem","files":[{"path":"3F00/1000","type":"df","aid":"A"}]}`, "aid: bad hex"},
		{"long aid", `{"type":"filesystem","files":[{"path":"3F00/1000","type":"df","aid":"` + strings.Repeat("A0", 17) + `"}]}`, "AID of 17 bytes"},
		{"duplicate fid", `{"type":"filesystem","files":[{"path":"3F00/0001","type":"ef","hex":""},{"path":"3F00/0001","type":"df"}]}`, "duplicate FID 0001"},
		{"duplicate aid", `{"type":"filesystem","files":[{"path":"3F00/1000","type":"df","aid":"A0"},{"path":"3F00/2000","type":"df","aid":"A0"}]}`, "duplicate AID"},
		{"missing parent", `{"type":"filesystem","files":[{"path":"3F00/1000/1001","type":"ef","hex":"00"}]}`, "missing parent 3F00/1000"},
		{"ef parent", `{"type":"filesystem","files":[{"path":"3F00/0001","type":"ef","hex":""},{"path":"3F00/0001/0002","type":"ef","hex":""}]}`, "is an EF"},
		{"bad path", `{"type":"filesystem","files":[{"path":"3F00/12","type":"ef","hex":""}]}`, "not 4 hex digits"},
		{"relative path", `{"type":"filesystem","files":[{"path":"5000","type":"df"}]}`, "does not start at the MF"},
		{"reserved fid", `{"type":"filesystem","files":[{"path":"3F00/3FFF","type":"df"}]}`, "reserved"},
		{"limits", `{"type":"filesystem","max_response_data":300}`, "max_response_data 300"},
		{"negative limits", `{"type":"filesystem","max_command_data":-1}`, "negative"},
		{"bad comment", `{"type":"filesystem","comment":5}`, "comment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadCard(writeImage(t, dir, tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := LoadCard(filepath.Join(dir, "absent.json")); err == nil {
		t.Fatal("missing image accepted")
	}
	if _, err := ParseCard([]byte(ef(`"file":"big.bin"`)), ""); err == nil || !strings.Contains(err.Error(), "no base directory") {
		t.Fatalf("file without base dir: %v", err)
	}
}
