package cardsim

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

const (
	aidHex   = "F04B50452D465301"
	selAID   = "00A4040008" + aidHex
	selAIDNo = "00A4040C08" + aidHex
)

var (
	ef5001 = hx("0102030405060708090A")
	ef5002 = PatternBytes(65536, 7)
	ef5004 = PatternBytes(4096, 3)
)

func ef5003(t *testing.T) []byte {
	b, err := os.ReadFile(cardsDir + "generic-fs-300.bin")
	noErr(t, err)
	return b
}

func TestSelect(t *testing.T) {
	c := loadFS(t, "generic-fs.json")

	// By DF name, FCP with DF descriptor and name.
	expect(t, c, selAID, SWOK, hx("6211 820138 83025000 8408"+aidHex))
	// EF under the current DF, FCP with 2-byte size.
	expect(t, c, "00A4020402500100", SWOK, hx("620B 8002000A 820101 83025001"))
	// 65536-byte EF: 3-byte size.
	expect(t, c, "00A4020002500200", SWOK, hx("620C 8003010000 820101 83025002"))
	// P1=00: a child of the current DF (DF 5000 is current).
	expect(t, c, "00A4000C025003", SWOK, []byte{})
	expect(t, c, "00A4000C025100", SWOK, []byte{})
	// From 5100, its parent 5000 is selectable by FID; 5001 is not a child.
	expect(t, c, "00A4000C025001", SWFileNotFound, nil)
	expect(t, c, "00A4000C025000", SWOK, nil)
	// MF by FID and by empty data.
	expect(t, c, "00A40000023F0000", SWOK, hx("6207 820138 83023F00"))
	expect(t, c, "00A4000C00", SWOK, []byte{}) // case 2S (Le=256), no data: MF
	expect(t, c, "00A4000C", SWOK, nil)        // case 1: select MF
	// A short-length card announces no buffer: no EF.ATR/INFO.
	expect(t, c, "00A4020C022F01", SWFileNotFound, nil)
	// P1=02 finds EFs only.
	expect(t, c, "00A4020C025000", SWFileNotFound, nil)
	// Le present and short: the FCP is truncated.
	expect(t, c, selAID+"04", SWOK, hx("62118201"))
	// Errors.
	expect(t, c, "00A4040C08F04B50452D465399", SWFileNotFound, nil)
	expect(t, c, "00A4040C07F04B50452D4653", SWFileNotFound, nil) // partial names do not match
	expect(t, c, "00A4010C025000", SWIncorrectP1P2, nil)
	expect(t, c, "00A4080C025000", SWIncorrectP1P2, nil)
	expect(t, c, "00A40002025000", SWIncorrectP1P2, nil)
	expect(t, c, "00A4000C03500000", SWWrongLength, nil)
	expect(t, c, "00A4020C0150", SWWrongLength, nil)
	expect(t, c, "00A4040C11"+strings.Repeat("00", 17), SWWrongLength, nil)
}

func TestSelectFailureKeepsSelection(t *testing.T) {
	c := loadFS(t, "generic-fs.json")
	expect(t, c, selAIDNo, SWOK, nil)
	expect(t, c, "00A4020C025001", SWOK, nil)
	expect(t, c, "00A4020C029999", SWFileNotFound, nil)
	expect(t, c, "00B000000A", SWOK, ef5001)
}

func TestReadBinary(t *testing.T) {
	c := loadFS(t, "generic-fs.json")
	expect(t, c, "00B0000010", SWCommandNotAllowedNoEF, nil)
	expect(t, c, selAIDNo, SWOK, nil)
	expect(t, c, "00B0000001", SWCommandNotAllowedNoEF, nil) // DF selected, no EF
	expect(t, c, "00A4020C025001", SWOK, nil)
	expect(t, c, "00B000000A", SWOK, ef5001)
	expect(t, c, "00B0000204", SWOK, ef5001[2:6])
	expect(t, c, "00B0000000", SWEndOfFile, ef5001)       // Le=256, 10 available
	expect(t, c, "00B0000810", SWEndOfFile, ef5001[8:])   // runs past the end
	expect(t, c, "00B0000A01", SWWrongP1P2, nil)          // offset = size
	expect(t, c, "00B07FFF01", SWWrongP1P2, nil)          // far beyond
	expect(t, c, "00B00000", SWWrongLength, nil)          // no Le
	expect(t, c, "00B000000100", SWWrongLength, nil)      // data field
	expect(t, c, "00B00000000100", SWWrongLength, nil)    // extended on a short card
	expect(t, c, "00B0000003", SWOK, ef5001[:3])          // selection survives errors
	expect(t, c, "00B0830010", SWOK, ef5003(t)[:16])      // SFI 03 selects 5003
	expect(t, c, "00B0000002", SWOK, ef5003(t)[:2])       // ... which is now current
	expect(t, c, "00B0840000", SWOK, ef5004[:256])        // SFI 04, Le=256
	expect(t, c, "00B084FF00", SWOK, ef5004[255:255+256]) // SFI with offset in P2
	expect(t, c, "00B0850000", SWFileNotFound, nil)       // no SFI 05
	expect(t, c, "00B0A10000", SWIncorrectP1P2, nil)      // bits 7-6 of P1 set
	expect(t, c, "00B0800000", SWIncorrectP1P2, nil)      // SFI 0
	expect(t, c, "00B09F0000", SWIncorrectP1P2, nil)      // SFI 31
	// Nested DF and the MF's EF.DIR.
	expect(t, c, "00A4000C025100", SWOK, nil)
	expect(t, c, "00A4020C025101", SWOK, nil)
	expect(t, c, "00B0000000", SWEndOfFile, []byte("nested"))
}

// readAll reads a whole EF: B0 up to offset 7FFF, then B1 with 54 offset.
func readAll(t *testing.T, c Card, size, chunkLe int, extended bool) []byte {
	t.Helper()
	le := func() string {
		if extended {
			return fmt.Sprintf("%04X", chunkLe&0xFFFF)
		}
		return fmt.Sprintf("%02X", chunkLe&0xFF)
	}
	var out []byte
	sawB0, sawB1 := false, false
	for len(out) < size {
		off := len(out)
		var cmd string
		if off <= 0x7FFF {
			sawB0 = true
			cmd = fmt.Sprintf("00B0%04X", off)
			if extended {
				cmd += "00"
			}
			cmd += le()
		} else {
			sawB1 = true
			body := hx(fmt.Sprintf("5402%04X", off))
			if extended {
				cmd = fmt.Sprintf("00B10000 00%04X %X %s", len(body), body, le())
			} else {
				cmd = fmt.Sprintf("00B10000 %02X%X %s", len(body), body, le())
			}
		}
		data, sw := tx(t, c, cmd)
		if sw != SWOK && sw != SWEndOfFile {
			t.Fatalf("%s: SW %s", cmd, sw)
		}
		if off > 0x7FFF {
			tag, v, rest, err := ParseTLV(data)
			if err != nil || tag != 0x53 || len(rest) != 0 {
				t.Fatalf("%s: B1 response not wrapped in 53: %X", cmd, data[:min(8, len(data))])
			}
			data = v
		}
		if len(data) == 0 {
			t.Fatalf("%s: no data", cmd)
		}
		out = append(out, data...)
		if sw == SWEndOfFile {
			break
		}
	}
	if !sawB0 || (size > 0x8000 && !sawB1) {
		t.Fatalf("expected both B0 and B1 reads (b0=%v b1=%v)", sawB0, sawB1)
	}
	return out
}

func Test64KiBRead(t *testing.T) {
	for _, tc := range []struct {
		image    string
		le       int
		extended bool
		t0       bool
	}{
		{"generic-fs.json", 256, false, false},
		{"generic-fs-extended.json", 65536, true, false},
		{"generic-fs-extended.json", 3000, true, false},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.image, tc.le), func(t *testing.T) {
			c := loadFS(t, tc.image)
			expect(t, c, selAIDNo, SWOK, nil)
			expect(t, c, "00A4020C025002", SWOK, nil)
			got := readAll(t, c, 65536, tc.le, tc.extended)
			if !bytes.Equal(got, ef5002) {
				t.Fatalf("64 KiB EF differs (got %d bytes)", len(got))
			}
		})
	}
}

func TestReadBinaryOdd(t *testing.T) {
	c := loadFS(t, "generic-fs.json")
	expect(t, c, "00B100000354010000", SWCommandNotAllowedNoEF, nil)
	expect(t, c, selAIDNo, SWOK, nil)
	// P1P2 = FID: selects 5001; wrapper counts inside Ne.
	expect(t, c, "00B150010354010000", SWEndOfFile, hx("530A"+"0102030405060708090A"))
	expect(t, c, "00B10000035401020C", SWEndOfFile, hx("5308"+"030405060708090A"))
	expect(t, c, "00B10000035401020A", SWOK, hx("5308"+"030405060708090A"))
	expect(t, c, "00B100000354010205", SWOK, hx("5303"+"030405"))
	expect(t, c, "00B100000354010201", SWWrongLength, nil) // no room for content
	expect(t, c, "00B100000354010A0A", SWWrongP1P2, nil)   // offset = size
	// P1P2 = SFI.
	expect(t, c, "00B10003035401000A", SWOK, append(hx("5308"), ef5003(t)[:8]...))
	expect(t, c, "00B1001F035401000A", SWIncorrectP1P2, nil)
	expect(t, c, "00B10005035401000A", SWFileNotFound, nil)
	expect(t, c, "00B19999035401000A", SWFileNotFound, nil)
	// Malformed data fields.
	expect(t, c, "00B100000355010000", SWWrongData, nil)
	expect(t, c, "00B1000002540100", SWWrongData, nil)
	expect(t, c, "00B100000654040000000000", SWWrongData, nil)
	expect(t, c, "00B1000004540100FF00", SWWrongData, nil) // trailing byte
	expect(t, c, "00B100000354010000", SWOK, nil)          // 5003 still current
	expect(t, c, "00B1000003540100", SWWrongLength, nil)   // no Le
	// Long content: 81 length form, Le=256 → 253 bytes of content.
	data := expect(t, c, "00B150040354010000", SWOK, nil)
	if !bytes.Equal(data, append(hx("5381FD"), ef5004[:253]...)) {
		t.Fatalf("B1 long: %X...", data[:8])
	}
}

func TestMaxResponseDataCapsReads(t *testing.T) {
	c, err := NewFileSystemCard(FSOptions{MaxResponseData: 100})
	noErr(t, err)
	noErr(t, c.AddEF("3F00/0101", PatternBytes(300, 1), 0))
	expect(t, c, "00A4020C020101", SWOK, nil)
	expect(t, c, "00B0000000", SWOK, PatternBytes(100, 1))
	expect(t, c, "00B000C800", SWEndOfFile, PatternBytes(300, 1)[200:]) // 100 left, Ne 256
	data := expect(t, c, "00B100000354010000", SWOK, nil)
	equal(t, len(data), 100, "B1 length incl. wrapper")
	expect(t, c, "0084000000", SWOK, nil)
}

func TestExtendedLength(t *testing.T) {
	c := loadFS(t, "generic-fs-extended.json")
	expect(t, c, selAIDNo, SWOK, nil)
	expect(t, c, "00A4020C025004", SWOK, nil)
	expect(t, c, "00B00000000000", SWEndOfFile, ef5004)     // Le 65536, whole EF (4096 bytes)
	expect(t, c, "00B00001000000", SWEndOfFile, ef5004[1:]) // 4095, fewer than Ne
	expect(t, c, "00B00000001000", SWOK, ef5004)            // Le 4096 exactly
	expect(t, c, "00B0000000012C", SWOK, ef5004[:300])      // Le 300
	expect(t, c, "00A4020C025002", SWOK, nil)
	expect(t, c, "00B00000000000", SWOK, ef5002[:4096]) // capped by MaxResponseData
	expect(t, c, "00A4020C025002", SWOK, nil)
	expect(t, c, "00A402040000025002"+"0000", SWOK, hx("620C 8003010000 820101 83025002")) // case 4E
	expect(t, c, "00A4020C0000025002", SWOK, []byte{})                                     // case 3E
	expect(t, c, "00DA0100000800"+strings.Repeat("AB", 2048), SWOK, nil)
	expect(t, c, "00DA0100000801"+strings.Repeat("AB", 2049), SWWrongLength, nil)
	expect(t, c, "00CA0100000000", SWOK, bytes.Repeat([]byte{0xAB}, 2048))
}

func TestT0GetResponse(t *testing.T) {
	c := loadFS(t, "generic-fs-t0.json")
	expect(t, c, "00C0000010", SWConditionsNotSatisfied, nil)
	expect(t, c, selAID, SWWithCount(SWBytesRemaining, 0x13), []byte{})
	expect(t, c, "00C0000013", SWOK, hx("6211 820138 83025000 8408"+aidHex))
	expect(t, c, "00C0000013", SWConditionsNotSatisfied, nil) // nothing left

	// Case 3 SELECT (no Le) still returns the FCP through 61xx.
	expect(t, c, "00A4020402500400", SWWithCount(SWBytesRemaining, 0x0D), nil)
	expect(t, c, "00C000000D", SWOK, hx("620B 80021000 820101 83025004"))

	// A 256-byte read: 6100, then chunks with 61xx until the end.
	expect(t, c, "00B0000000", SWWithCount(SWBytesRemaining, 256), nil)
	expect(t, c, "00C0000010", SWWithCount(SWBytesRemaining, 240), ef5004[:16])
	expect(t, c, "00C00001", SWIncorrectP1P2, nil)
	expect(t, c, "00C0000000", SWWithCount(SWWrongLe, 240), nil) // strict: exact count
	expect(t, c, "00C00000F0", SWOK, ef5004[16:256])

	// The final SW of the original command comes with the last chunk.
	expect(t, c, "00A4020C025001", SWOK, []byte{})
	expect(t, c, "00B000000A", SWWithCount(SWBytesRemaining, 10), nil)
	expect(t, c, "00C0000004", SWWithCount(SWBytesRemaining, 6), ef5001[:4])
	expect(t, c, "00C0000006", SWOK, ef5001[4:])

	// Any other command drops pending data.
	expect(t, c, "00B0000005", SWWithCount(SWBytesRemaining, 5), nil)
	expect(t, c, "00A4000C025001", SWOK, nil)
	expect(t, c, "00C0000005", SWConditionsNotSatisfied, nil)

	// Reset drops pending data too.
	expect(t, c, "00B0000005", SWWithCount(SWBytesRemaining, 5), nil)
	c.Reset()
	expect(t, c, "00C0000005", SWConditionsNotSatisfied, nil)
}

func TestStrictLe(t *testing.T) {
	c := loadFS(t, "generic-fs-t0.json")
	expect(t, c, selAIDNo, SWOK, nil)
	expect(t, c, "00A4020C025001", SWOK, nil)
	expect(t, c, "00B0000000", SWWithCount(SWWrongLe, 10), nil)
	expect(t, c, "00B0000210", SWWithCount(SWWrongLe, 8), nil)
	expect(t, c, "00B0000208", SWWithCount(SWBytesRemaining, 8), nil) // exact Le → data
	expect(t, c, "00C0000008", SWOK, ef5001[2:])
	// B1: the exact count includes the 53 wrapper.
	expect(t, c, "00B100000354010000", SWWithCount(SWWrongLe, 12), nil)
	// GET CHALLENGE: natural size 8.
	expect(t, c, "0084000010", SWWithCount(SWWrongLe, 8), nil)
	expect(t, c, "0084000000", SWWithCount(SWWrongLe, 8), nil)
	expect(t, c, "0084000008", SWWithCount(SWBytesRemaining, 8), nil)
	data := expect(t, c, "00C0000008", SWOK, nil)
	equal(t, len(data), 8, "challenge length")
	expect(t, c, "0084000004", SWWithCount(SWBytesRemaining, 4), nil)
	// GET DATA.
	expect(t, c, "00DA010003AABBCC", SWOK, nil)
	expect(t, c, "00CA010000", SWWithCount(SWWrongLe, 3), nil)
	expect(t, c, "00CA010003", SWWithCount(SWBytesRemaining, 3), nil)
	expect(t, c, "00C0000003", SWOK, hx("AABBCC"))
}

type countingReader struct{ next byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.next
		r.next++
	}
	return len(p), nil
}

func TestGetChallenge(t *testing.T) {
	c, err := NewFileSystemCard(FSOptions{Rand: &countingReader{}})
	noErr(t, err)
	expect(t, c, "0084000008", SWOK, hx("0001020304050607"))
	expect(t, c, "0084000001", SWOK, hx("08"))
	data := expect(t, c, "0084000000", SWOK, nil)
	equal(t, len(data), 256, "Le=00 challenge length")
	expect(t, c, "00840000", SWWrongLength, nil)
	expect(t, c, "0084010008", SWIncorrectP1P2, nil)
	expect(t, c, "008400000100", SWWrongLength, nil)
	// Real randomness differs between calls.
	r, err := NewFileSystemCard(FSOptions{})
	noErr(t, err)
	a := expect(t, r, "0084000008", SWOK, nil)
	b := expect(t, r, "0084000008", SWOK, nil)
	if bytes.Equal(a, b) {
		t.Fatal("two challenges are equal")
	}
}

func TestDataObjectsAndChaining(t *testing.T) {
	c := loadFS(t, "generic-fs.json")
	expect(t, c, "00CA010000", SWReferencedDataNotFound, nil)
	expect(t, c, "00DA010005"+"0102030405", SWOK, nil)
	expect(t, c, "00CA010000", SWOK, hx("0102030405"))
	expect(t, c, "00CA010003", SWOK, hx("010203"))
	expect(t, c, "00CA0100", SWWrongLength, nil)
	expect(t, c, "00CA01000101", SWWrongLength, nil)
	expect(t, c, "00CA010100", SWReferencedDataNotFound, nil) // keyed by P1P2

	// A chain of three links: 200 + 200 + 100 bytes.
	part := func(i, n int) []byte { return PatternBytes(500, 9)[i : i+n] }
	expect(t, c, apduHex(0x10, 0xDA, 0x01, 0x00, part(0, 200), ""), SWOK, []byte{})
	expect(t, c, apduHex(0x10, 0xDA, 0x01, 0x00, part(200, 200), ""), SWOK, []byte{})
	expect(t, c, apduHex(0x00, 0xDA, 0x01, 0x00, part(400, 100), ""), SWOK, []byte{})
	// Short GET DATA returns at most 256 bytes.
	expect(t, c, "00CA010000", SWOK, part(0, 256))

	// A link changing P2 breaks the chain: 6883, chain dropped.
	expect(t, c, apduHex(0x10, 0xDA, 0x01, 0x00, hx("AA"), ""), SWOK, nil)
	expect(t, c, apduHex(0x00, 0xDA, 0x01, 0x01, hx("BB"), ""), SWLastCommandOfChainExpected, nil)
	expect(t, c, apduHex(0x00, 0xDA, 0x01, 0x00, hx("CC"), ""), SWOK, nil)
	expect(t, c, "00CA010000", SWOK, hx("CC"))
	// Changing INS breaks it too.
	expect(t, c, apduHex(0x10, 0xDA, 0x01, 0x00, hx("AA"), ""), SWOK, nil)
	expect(t, c, "00CA010000", SWLastCommandOfChainExpected, nil)
	expect(t, c, "00CA010000", SWOK, hx("CC"))
	// Instructions without chaining support.
	expect(t, c, "10A4040C08"+aidHex, SWChainingNotSupported, nil)
	expect(t, c, "10B0000000", SWChainingNotSupported, nil)
	// Reset drops a pending chain.
	expect(t, c, apduHex(0x10, 0xDA, 0x01, 0x00, hx("AA"), ""), SWOK, nil)
	c.Reset()
	expect(t, c, apduHex(0x00, 0xDA, 0x01, 0x00, hx("DD"), ""), SWOK, nil)
	expect(t, c, "00CA010000", SWOK, hx("DD"))
	// The data object store survives a reset (non-volatile).
	c.PowerOff()
	c.PowerOn()
	expect(t, c, "00CA010000", SWOK, hx("DD"))
}

func TestMaxCommandData(t *testing.T) {
	c, err := NewFileSystemCard(FSOptions{MaxCommandData: 100})
	noErr(t, err)
	expect(t, c, apduHex(0x00, 0xDA, 0x01, 0x00, PatternBytes(100, 1), ""), SWOK, nil)
	expect(t, c, apduHex(0x00, 0xDA, 0x01, 0x00, PatternBytes(101, 1), ""), SWWrongLength, nil)
	// Chaining carries more than MaxCommandData in total.
	expect(t, c, apduHex(0x10, 0xDA, 0x01, 0x00, PatternBytes(100, 1), ""), SWOK, nil)
	expect(t, c, apduHex(0x00, 0xDA, 0x01, 0x00, PatternBytes(100, 2), ""), SWOK, nil)
	expect(t, c, "00CA0100C8", SWOK, append(PatternBytes(100, 1), PatternBytes(100, 2)...))
}

func TestClassAndInstructionErrors(t *testing.T) {
	c := loadFS(t, "generic-fs.json")
	for _, tc := range []struct {
		cmd string
		sw  SW
	}{
		{"00", SWWrongLength},
		{"00A404", SWWrongLength},
		{"00EE0000", SWINSNotSupported},
		{"00C0000000", SWINSNotSupported}, // no GET RESPONSE without T0GetResponse
		{"80A4040C08" + aidHex, SWCLANotSupported},
		{"FFA4040C08" + aidHex, SWCLANotSupported},
		{"A0B0000000", SWCLANotSupported},
		{"0CA4040C08" + aidHex, SWSecureMessagingUnsupported},
		{"01A4040C08" + aidHex, SWLogicalChannelNotSupported},
		{"40A4040C08" + aidHex, SWLogicalChannelNotSupported}, // further interindustry: channel 4
		{"00A4040C09" + aidHex, SWWrongLength},                // Lc too big
		{"00A4040C0000", SWWrongLength},
		{"00B0000000FFFF", SWWrongLength},
	} {
		expect(t, c, tc.cmd, tc.sw, nil)
	}
}

func TestATRInfo(t *testing.T) {
	// Short-length cards announce nothing.
	for _, image := range []string{"generic-fs.json", "generic-fs-t0.json"} {
		c := loadFS(t, image)
		expect(t, c, "00A4020C022F01", SWFileNotFound, nil)
		expect(t, c, "00B0810000", SWFileNotFound, nil) // SFI 01
	}
	// Extended: whole-APDU sizes, 2048+9 = 0x0809 and 4096+2 = 0x1002.
	c := loadFS(t, "generic-fs-extended.json")
	want := hx("7F6608 02020809 02021002")
	expect(t, c, "00A4020C022F01", SWOK, nil)
	expect(t, c, "00B0000000", SWEndOfFile, want)
	expect(t, c, "00B0810000", SWEndOfFile, want) // SFI 01
}

func TestResetReturnsToMF(t *testing.T) {
	c := loadFS(t, "generic-fs.json")
	expect(t, c, selAIDNo, SWOK, nil)
	expect(t, c, "00A4020C025001", SWOK, nil)
	c.Reset()
	expect(t, c, "00B0000001", SWCommandNotAllowedNoEF, nil)
	expect(t, c, "00A4020C025001", SWFileNotFound, nil) // MF is current again
}

func TestBuildCardProgrammatically(t *testing.T) {
	c, err := NewFileSystemCard(FSOptions{Name: "prog"})
	noErr(t, err)
	equal(t, CardName(c), "prog", "name")
	if !bytes.Equal(c.ATR(), DefaultATR) {
		t.Fatal("default ATR")
	}
	noErr(t, c.AddDF("3F00", hx("A000000001")))
	noErr(t, c.AddDF("3F00/1000", nil))
	noErr(t, c.AddEF("3F00/1000/1001", []byte{1}, 5))
	noErr(t, c.AddEF("3F00/1000/1005", []byte{2}, 0)) // derived SFI 05 loses to explicit 5
	noErr(t, c.AddEF("3F00/1000/1002", []byte{3}, -1))
	for _, err := range []error{
		c.AddDF("3F00/1000", nil),
		c.AddEF("3F00/1000/1001", nil, 0),
		c.AddEF("3F00/1000/1003", nil, 5),
		c.AddEF("3F00/1000/1004", nil, 31),
		c.AddEF("3F00/2000/2001", nil, 0),
		c.AddEF("3F00/1000/1001/0001", nil, 0),
		c.AddEF("3F00", nil, 0),
		c.AddEF("3F00/1000/3F00", nil, 0),
		c.AddEF("3F00/1006", make([]byte, MaxEFSize+1), 0),
		c.AddDF("3F00/1007", hx("A000000001")),
		c.AddDF("3F00/1008", make([]byte, 17)),
		c.AddDF("5000", nil),
		c.AddDF("3F00/50", nil),
	} {
		if err == nil {
			t.Fatal("expected an error")
		}
	}
	noErr(t, c.AddEF("3F00/2F01", hx("7F660402010A0201FF"), 0)) // replaces the generated one once
	if c.AddEF("3F00/2F01", nil, 0) == nil {
		t.Fatal("second 2F01 accepted")
	}
	expect(t, c, "00A4040C05A000000001", SWOK, nil)
	expect(t, c, "00B0810000", SWEndOfFile, hx("7F660402010A0201FF"))
	expect(t, c, "00A4000C021000", SWOK, nil)
	expect(t, c, "00B0850000", SWEndOfFile, []byte{1})
	expect(t, c, "00B0820000", SWFileNotFound, nil) // 1002 has no SFI
	noErr(t, c.AddEF("3F00/1000/1000", PatternBytes(MaxEFSize, 1), 0))
	expect(t, c, "00A4020002100000", SWOK, hx("620C 8003010000 820101 83021000"))
	if _, err := NewFileSystemCard(FSOptions{MaxResponseData: 257}); err == nil {
		t.Fatal("MaxResponseData 257 accepted without extended length")
	}
	if _, err := NewFileSystemCard(FSOptions{ExtendedLength: true, MaxResponseData: 65534}); err == nil {
		t.Fatal("MaxResponseData 65534 accepted")
	}
	if _, err := NewFileSystemCard(FSOptions{MaxCommandData: 256}); err == nil {
		t.Fatal("MaxCommandData 256 accepted without extended length")
	}
	if _, err := NewFileSystemCard(FSOptions{ATR: hx("3B8881")}); err == nil {
		t.Fatal("bad ATR accepted")
	}
}

func TestEmptyEF(t *testing.T) {
	c, err := NewFileSystemCard(FSOptions{})
	noErr(t, err)
	noErr(t, c.AddEF("3F00/0001", nil, 0))
	expect(t, c, "00A4020002000100", SWOK, hx("620B 80020000 820101 83020001"))
	expect(t, c, "00B0000000", SWWrongP1P2, nil)
}
