package cardsim

import (
	"os"
	"path/filepath"
	"testing"
)

// fuzzCards are the card configurations FuzzProcess drives; the first input
// byte picks one.
var fuzzCards = []FSOptions{
	{},
	{ExtendedLength: true, MaxCommandData: 2048, MaxResponseData: 4096},
	{T0GetResponse: true, StrictLe: true},
	{ExtendedLength: true, MaxResponseData: MaxExtendedResponseData, T0GetResponse: true},
	{MaxCommandData: 16, MaxResponseData: 17, StrictLe: true},
}

var fuzzBig = PatternBytes(MaxEFSize, 7)

func newFuzzCard(t testing.TB, opts FSOptions) *FileSystemCard {
	c, err := NewFileSystemCard(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		c.AddDF("3F00/5000", hx(aidHex)),
		c.AddEF("3F00/5000/5001", hx("0102030405060708090A"), 0),
		c.AddEF("3F00/5000/5002", fuzzBig, 0),
		c.AddEF("3F00/5000/5003", fuzzBig[:300], 0),
		c.AddEF("3F00/5000/5004", nil, 4),
		c.AddDF("3F00/5000/5100", nil),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// FuzzProcess feeds a sequence of command APDUs to a FileSystemCard. Input:
// one byte choosing the configuration, then APDUs each preceded by a length
// byte (a final APDU may run to the end). The card must never panic, must
// always answer at least SW1 SW2 and must never send more than
// MaxResponseData bytes of data.
func FuzzProcess(f *testing.F) {
	f.Add([]byte("\x00\x0d\x00\xa4\x04\x00\x08\xf0\x4b\x50\x45\x2d\x46\x53\x01\x05\x00\xb0\x82\x00\x00"))
	f.Add([]byte("\x02\x07\x00\xa4\x02\x0c\x02\x50\x01\x05\x00\xb0\x00\x00\x00\x05\x00\xc0\x00\x00\x0a"))
	f.Add([]byte("\x01\x0a\x00\xb1\x50\x02\x03\x54\x01\x00\x00\x00\x0c\x00\xb1\x00\x00\x00\x00\x04\x54\x02\xff\x00\x00\x00"))
	f.Add([]byte("\x00\x07\x10\xda\x01\x00\x02\xaa\xbb\x07\x00\xda\x01\x00\x02\xcc\xdd\x05\x00\xca\x01\x00\x00"))
	f.Add([]byte("\x04\x05\x00\x84\x00\x00\x10\x05\x00\xb0\x81\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		opts := fuzzCards[int(data[0])%len(fuzzCards)]
		c := newFuzzCard(t, opts)
		maxData := c.Limits().MaxResponseData
		rest := data[1:]
		for len(rest) > 0 {
			n := int(rest[0])
			rest = rest[1:]
			if n > len(rest) {
				n = len(rest)
			}
			cmd := rest[:n]
			rest = rest[n:]
			resp := c.Process(cmd)
			if len(resp) < 2 {
				t.Fatalf("%X: response %X shorter than 2 bytes", cmd, resp)
			}
			if len(resp)-2 > maxData {
				t.Fatalf("%X: %d data bytes > MaxResponseData %d", cmd, len(resp)-2, maxData)
			}
		}
		// Very long single APDUs (extended Lc) are covered by the raw form too.
		if resp := c.Process(data); len(resp) < 2 {
			t.Fatalf("raw input: response %X", resp)
		}
	})
}

// FuzzParseCard checks that the JSON card image parser never panics and
// that whatever it accepts is a working card.
func FuzzParseCard(f *testing.F) {
	for _, name := range []string{"generic-fs.json", "generic-fs-extended.json", "generic-fs-t0.json"} {
		b, err := os.ReadFile(filepath.Join(cardsDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"filesystem","files":[{"path":"3F00/1000","type":"df","aid":"A0"},{"path":"3F00/1000/0001","type":"ef","file":"x.bin","sfi":3}]}`))
	f.Add([]byte(`{"type":"filesystem","atr":"3B00","max_command_data":1,"max_response_data":1}`))
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.bin"), []byte{1, 2, 3}, 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCard(data, dir)
		if err != nil {
			return
		}
		if err := ValidateATR(c.ATR()); err != nil {
			t.Fatalf("accepted card has a bad ATR: %v", err)
		}
		for _, cmd := range []string{"00A4000C", "00B0810000", "00A4040C08" + aidHex, "00B0000000"} {
			if resp := c.Process(hx(cmd)); len(resp) < 2 {
				t.Fatalf("%s: %X", cmd, resp)
			}
		}
	})
}
