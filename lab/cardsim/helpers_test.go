package cardsim

import (
	"bytes"
	"fmt"
	"testing"
)

// hx decodes hex, ignoring spaces; it panics on bad input (test constants).
func hx(s string) []byte {
	b, err := decodeHex(s)
	if err != nil {
		panic(err)
	}
	return b
}

// tx sends a hex command to c and splits the response.
func tx(t *testing.T, c Card, cmd string) ([]byte, SW) {
	t.Helper()
	return txb(t, c, hx(cmd))
}

func txb(t *testing.T, c Card, cmd []byte) ([]byte, SW) {
	t.Helper()
	resp := c.Process(cmd)
	if len(resp) < 2 {
		t.Fatalf("%X: response %X shorter than 2 bytes", cmd, resp)
	}
	n := len(resp) - 2
	return resp[:n], SW(resp[n])<<8 | SW(resp[n+1])
}

// expect sends cmd and checks SW and (when want != nil) the data.
func expect(t *testing.T, c Card, cmd string, wantSW SW, want []byte) []byte {
	t.Helper()
	data, sw := tx(t, c, cmd)
	if sw != wantSW {
		t.Fatalf("%s: SW %s, want %s (data %X)", short(cmd), sw, wantSW, data[:min(len(data), 32)])
	}
	if want != nil && !bytes.Equal(data, want) {
		t.Fatalf("%s: data (%d bytes)\n got %X\nwant %X (%d bytes)", short(cmd), len(data),
			data[:min(len(data), 64)], want[:min(len(want), 64)], len(want))
	}
	return data
}

func equal[T comparable](t *testing.T, got, want T, what string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

const cardsDir = "../../testdata/cards/"

func loadFS(t *testing.T, name string) *FileSystemCard {
	t.Helper()
	c, err := LoadCard(cardsDir + name)
	noErr(t, err)
	fs, ok := c.(*FileSystemCard)
	if !ok {
		t.Fatalf("%s: %T is not a *FileSystemCard", name, c)
	}
	return fs
}

func apduHex(cla, ins, p1, p2 byte, data []byte, le string) string {
	s := fmt.Sprintf("%02X%02X%02X%02X", cla, ins, p1, p2)
	if data != nil {
		s += fmt.Sprintf("%02X%X", len(data), data)
	}
	return s + le
}

func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
