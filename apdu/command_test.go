package apdu

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCommandBytes(t *testing.T) {
	d5 := h("0102030405")
	d256 := bytes.Repeat([]byte{0xAB}, 256)
	tests := []struct {
		name string
		cmd  Command
		want string
	}{
		{"case 1", Command{CLA: 0x00, INS: 0xA4, P1: 0x00, P2: 0x0C}, "00A4000C"},
		{"case 2 short", Command{INS: 0xB0, Ne: 16}, "00B0000010"},
		{"case 2 short Ne 256", Command{INS: 0xB0, Ne: 256}, "00B0000000"},
		{"case 2 extended", Command{INS: 0xB0, Ne: 257}, "00B00000000101"},
		{"case 2 extended Ne 65536", Command{INS: 0xB0, Ne: 65536}, "00B00000000000"},
		{"case 3 short", Command{CLA: 0x00, INS: 0xA4, P2: 0x0C, Data: h("3F00")}, "00A4000C023F00"},
		{"case 3 extended", Command{INS: 0xDA, Data: d256}, "00DA0000000100" + strings.Repeat("AB", 256)},
		{"case 4 short", Command{INS: 0xA4, P1: 0x04, Data: d5, Ne: 256}, "00A40400050102030405" + "00"},
		{"case 4 extended by Ne", Command{INS: 0x2A, P1: 0x9E, P2: 0x9A, Data: d5, Ne: 300}, "002A9E9A0000050102030405012C"},
		{"case 4 extended by Nc", Command{INS: 0x2A, Data: d256, Ne: 16}, "002A0000000100" + strings.Repeat("AB", 256) + "0010"},
		{"case 4 extended Ne 65536", Command{INS: 0x2A, Data: d5, Ne: 65536}, "002A00000000050102030405" + "0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.cmd.Bytes()
			must(t, err)
			eq(t, hexUpper(b), tt.want)
			eq(t, tt.cmd.String(), tt.want)
			eq(t, tt.cmd.Extended(), len(b) > 4 && b[4] == 0 && len(b) > 5)
			back, err := ParseCommand(b)
			must(t, err)
			eq(t, back.CLA, tt.cmd.CLA)
			eq(t, back.INS, tt.cmd.INS)
			eq(t, back.P1, tt.cmd.P1)
			eq(t, back.P2, tt.cmd.P2)
			hexEq(t, back.Data, tt.cmd.Data)
			eq(t, back.Ne, tt.cmd.Ne)
		})
	}
}

func TestCommandBytesOutOfRange(t *testing.T) {
	for _, c := range []Command{
		{INS: 0xB0, Ne: -1},
		{INS: 0xB0, Ne: 65537},
		{INS: 0xDA, Data: make([]byte, 65536)},
	} {
		_, err := c.Bytes()
		errIs(t, err, ErrInvalidCommand)
		check(t, strings.Contains(c.String(), "invalid"), c.String())
	}
}

func TestParseCommandRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"00A404",
		"00A4040005A0000000",   // Lc 5, 3 data bytes
		"00A4040002A000000000", // Lc 2, 4 bytes follow
		"00B0000000FF",         // 00 then one byte: neither short nor extended
		"00B000000000",         // 00 then two bytes
		"00B00000000000AA",     // extended Lc zero with data
		"00DA0000000003AABB",   // extended Lc 3, 2 bytes
		"00DA0000000002AABBCC", // extended Lc 2, 3 bytes follow
		"00DA0000000002AABBCCDDEE",
	} {
		_, err := ParseCommand(h(s))
		errIs(t, err, ErrInvalidCommand, s)
	}
	// Extended case 4 with Le CCDD is fine.
	c, err := ParseCommand(h("00DA0000000002AABBCCDD"))
	must(t, err)
	eq(t, c.Ne, 0xCCDD)
	hexEq(t, c.Data, h("AABB"))
}

func TestParseResponse(t *testing.T) {
	r, err := ParseResponse(h("9000"))
	must(t, err)
	eq(t, r.SW, 0x9000)
	eq(t, len(r.Data), 0)
	must(t, r.Err())

	r, err = ParseResponse(h("01026A82"))
	must(t, err)
	hexEq(t, r.Data, h("0102"))
	eq(t, r.SW, 0x6A82)
	eq(t, r.SW1(), 0x6A)
	eq(t, r.SW2(), 0x82)
	errIs(t, r.Err(), ErrFileNotFound)
	hexEq(t, r.Bytes(), h("01026A82"))

	for _, b := range [][]byte{nil, {0x90}, make([]byte, 65539)} {
		_, err := ParseResponse(b)
		errIs(t, err, ErrMalformedResponse)
	}
}

func TestParseResponseCopies(t *testing.T) {
	in := h("AABB9000")
	r, err := ParseResponse(in)
	must(t, err)
	in[0] = 0
	eq(t, r.Data[0], 0xAA)
}

func TestResponseErrKinds(t *testing.T) {
	var re *RetriesError
	check(t, errors.As(Response{SW: 0x63C3}.Err(), &re))
	eq(t, re.Retries, 3)
	var se *StatusError
	check(t, errors.As(Response{SW: 0x6982}.Err(), &se))
	eq(t, se.SW, 0x6982)
}

// Small assertion helpers (the module's go.sum does not carry testify's
// dependencies, so the tests use the standard library only).

// h decodes hex with optional spaces; it panics on bad input (test data).
func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func msg(args []any) string {
	if len(args) == 0 {
		return ""
	}
	if f, ok := args[0].(string); ok {
		return ": " + fmt.Sprintf(f, args[1:]...)
	}
	return ": " + fmt.Sprint(args...)
}

func eq[T comparable](t testing.TB, got, want T, args ...any) bool {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v%s", got, want, msg(args))
		return false
	}
	return true
}

func must(t testing.TB, err error, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error %v%s", err, msg(args))
	}
}

func errIs(t testing.TB, err, target error, args ...any) bool {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("error %v does not match %v%s", err, target, msg(args))
		return false
	}
	return true
}

func errIsNot(t testing.TB, err, target error, args ...any) {
	t.Helper()
	if errors.Is(err, target) {
		t.Errorf("error %v unexpectedly matches %v%s", err, target, msg(args))
	}
}

func check(t testing.TB, cond bool, args ...any) bool {
	t.Helper()
	if !cond {
		t.Errorf("check failed%s", msg(args))
	}
	return cond
}

func hexEq(t testing.TB, got, want []byte, args ...any) bool {
	t.Helper()
	return eq(t, hexUpper(got), hexUpper(want), args...)
}
