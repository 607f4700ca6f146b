package cardsim

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
)

// Applet card types (kpe, ktpel, sam: registered by their packages, see
// docs/card-lab.md) decode their own images with the helpers here, so that
// every image type shares the strict rules: unknown fields, bad hex,
// duplicate files and paths leaving the image directory are errors.

var registerMu sync.Mutex

// RegisterImageType makes LoadCard and ParseCard accept images of the given
// type. It panics on a duplicate name (a programming error at init time).
func RegisterImageType(name string, parse func(data []byte, baseDir string) (Card, error)) {
	registerMu.Lock()
	defer registerMu.Unlock()
	if _, dup := imageTypes[name]; dup {
		panic("cardsim: image type " + name + " registered twice")
	}
	imageTypes[name] = parse
}

// DecodeImage decodes a JSON image strictly into v (unknown fields and
// trailing data are errors).
func DecodeImage(data []byte, v any) error { return decodeStrict(data, v) }

// DecodeHex decodes hex digits, ignoring spaces, tabs, newlines and colons.
func DecodeHex(s string) ([]byte, error) { return decodeHex(s) }

// CheckComment accepts an absent comment, a string or an array of strings.
func CheckComment(raw json.RawMessage) error { return checkComment(raw) }

// AppletFile is one EF of an applet image: a 4-hex-digit FID and exactly
// one of hex, pattern or file (as for "filesystem" EFs).
type AppletFile struct {
	FID     string          `json:"fid"`
	Comment json.RawMessage `json:"comment,omitempty"`
	Hex     *string         `json:"hex,omitempty"`
	Pattern *struct {
		Size int `json:"size"`
		Seed int `json:"seed"`
	} `json:"pattern,omitempty"`
	File string `json:"file,omitempty"`
}

// LoadAppletFiles returns the EF contents by FID.
func LoadAppletFiles(files []AppletFile, baseDir string) (map[uint16][]byte, error) {
	out := map[uint16][]byte{}
	var root *os.Root
	defer func() {
		if root != nil {
			root.Close()
		}
	}()
	for i, f := range files {
		fid, err := strconv.ParseUint(f.FID, 16, 16)
		if err != nil || len(f.FID) != 4 {
			return nil, fmt.Errorf("files[%d]: fid %q: want 4 hex digits", i, f.FID)
		}
		if _, dup := out[uint16(fid)]; dup {
			return nil, fmt.Errorf("files[%d]: duplicate fid %s", i, f.FID)
		}
		if err := checkComment(f.Comment); err != nil {
			return nil, fmt.Errorf("files[%d]: comment: %w", i, err)
		}
		b, err := efContent(fsImageFile{Hex: f.Hex, Pattern: f.Pattern, File: f.File}, baseDir, &root)
		if err != nil {
			return nil, fmt.Errorf("files[%d] (%s): %w", i, f.FID, err)
		}
		out[uint16(fid)] = b
	}
	return out, nil
}
