package cardsim

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Card images are JSON documents describing a simulated card. Common fields:
//
//	name     display name (default: the file name without extension)
//	type     card kind; "filesystem" is the generic ISO 7816-4 card
//	comment  free text (a string or an array of strings), ignored
//
// The "filesystem" type adds:
//
//	atr                hex ATR (spaces allowed; default DefaultATR), checked
//	                   with ValidateATR
//	max_command_data   FSOptions.MaxCommandData (default 255)
//	max_response_data  FSOptions.MaxResponseData (default 256)
//	extended_length, t0_get_response, strict_le  booleans, see FSOptions
//	files              array of entries, in any order (parents are created
//	                   first):
//	  {"path": "3F00/5000", "type": "df", "aid": "A000..."}
//	  {"path": "3F00/5000/5001", "type": "ef", "hex": "0102..."}
//	  {"path": "...", "type": "ef", "pattern": {"size": 65536, "seed": 7}}
//	  {"path": "...", "type": "ef", "file": "relative/path.bin"}
//	  an EF takes exactly one of hex, pattern, file; "sfi" (1..30, or -1
//	  for none) overrides the short EF identifier derived from the FID.
//	  "file" is resolved inside the directory of the image and may not
//	  leave it.
//
// Unknown fields, bad hex, duplicate FIDs or AIDs, EFs over 65536 bytes and
// missing parents are errors.

// maxImageSize bounds card image files.
const maxImageSize = 32 << 20

// imageTypes maps a card image "type" to its parser. Applet card types
// register here.
var imageTypes = map[string]func(data []byte, baseDir string) (Card, error){
	"filesystem": parseFilesystemImage,
}

// LoadCard reads a JSON card image (see the format above). Relative "file"
// references are resolved against the image's directory.
func LoadCard(path string) (Card, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cardsim: load card: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxImageSize+1))
	if err != nil {
		return nil, fmt.Errorf("cardsim: load card %s: %w", path, err)
	}
	if len(data) > maxImageSize {
		return nil, fmt.Errorf("cardsim: load card %s: image larger than %d bytes", path, maxImageSize)
	}
	c, err := ParseCard(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("cardsim: load card %s: %w", path, err)
	}
	if fs, ok := c.(*FileSystemCard); ok && fs.name == "" {
		fs.name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return c, nil
}

// ParseCard builds a card from a JSON card image. baseDir is where "file"
// references are looked up; with baseDir "" they are refused.
func ParseCard(data []byte, baseDir string) (Card, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("card image: %w", err)
	}
	parse, ok := imageTypes[head.Type]
	if !ok {
		if head.Type == "" {
			return nil, errors.New(`card image: missing "type"`)
		}
		return nil, fmt.Errorf("card image: unknown type %q", head.Type)
	}
	return parse(data, baseDir)
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

type fsImage struct {
	Name            string          `json:"name"`
	Type            string          `json:"type"`
	Comment         json.RawMessage `json:"comment"`
	ATR             *string         `json:"atr"`
	MaxCommandData  int             `json:"max_command_data"`
	MaxResponseData int             `json:"max_response_data"`
	ExtendedLength  bool            `json:"extended_length"`
	T0GetResponse   bool            `json:"t0_get_response"`
	StrictLe        bool            `json:"strict_le"`
	Files           []fsImageFile   `json:"files"`
}

type fsImageFile struct {
	Path    string          `json:"path"`
	Type    string          `json:"type"`
	Comment json.RawMessage `json:"comment"`
	AID     string          `json:"aid"`
	SFI     *int            `json:"sfi"`
	Hex     *string         `json:"hex"`
	Pattern *struct {
		Size int `json:"size"`
		Seed int `json:"seed"`
	} `json:"pattern"`
	File string `json:"file"`
}

func parseFilesystemImage(data []byte, baseDir string) (Card, error) {
	var img fsImage
	if err := decodeStrict(data, &img); err != nil {
		return nil, fmt.Errorf("card image: %w", err)
	}
	if err := checkComment(img.Comment); err != nil {
		return nil, fmt.Errorf("card image: comment: %w", err)
	}
	opts := FSOptions{
		Name:            img.Name,
		MaxCommandData:  img.MaxCommandData,
		MaxResponseData: img.MaxResponseData,
		ExtendedLength:  img.ExtendedLength,
		T0GetResponse:   img.T0GetResponse,
		StrictLe:        img.StrictLe,
	}
	if img.MaxCommandData < 0 || img.MaxResponseData < 0 {
		return nil, errors.New("card image: negative max_command_data/max_response_data")
	}
	if img.ATR != nil {
		atr, err := decodeHex(*img.ATR)
		if err != nil {
			return nil, fmt.Errorf("card image: atr: %w", err)
		}
		if err := ValidateATR(atr); err != nil {
			return nil, fmt.Errorf("card image: atr: %w", err)
		}
		opts.ATR = atr
	}
	card, err := NewFileSystemCard(opts)
	if err != nil {
		return nil, fmt.Errorf("card image: %w", err)
	}

	// Create parents before children whatever the order in the image.
	order := make([]int, len(img.Files))
	depth := make([]int, len(img.Files))
	for i, f := range img.Files {
		order[i] = i
		depth[i] = strings.Count(f.Path, "/")
	}
	slices.SortStableFunc(order, func(a, b int) int { return depth[a] - depth[b] })

	var root *os.Root
	defer func() {
		if root != nil {
			root.Close()
		}
	}()
	for _, i := range order {
		f := img.Files[i]
		if err := addImageFile(card, f, baseDir, &root); err != nil {
			return nil, fmt.Errorf("card image: files[%d] (%s): %w", i, f.Path, err)
		}
	}
	return card, nil
}

func addImageFile(card *FileSystemCard, f fsImageFile, baseDir string, root **os.Root) error {
	if err := checkComment(f.Comment); err != nil {
		return fmt.Errorf("comment: %w", err)
	}
	if _, err := ParseFSPath(f.Path); err != nil {
		return err
	}
	switch f.Type {
	case "df":
		if f.Hex != nil || f.Pattern != nil || f.File != "" || f.SFI != nil {
			return errors.New("a DF takes no hex, pattern, file or sfi")
		}
		var aid []byte
		if f.AID != "" {
			var err error
			if aid, err = decodeHex(f.AID); err != nil {
				return fmt.Errorf("aid: %w", err)
			}
		}
		return card.AddDF(f.Path, aid)
	case "ef":
		if f.AID != "" {
			return errors.New("an EF has no AID")
		}
		sfi := 0
		if f.SFI != nil {
			if *f.SFI == 0 || *f.SFI < -1 || *f.SFI > 30 {
				return fmt.Errorf("sfi %d out of range 1..30 (or -1 for none)", *f.SFI)
			}
			sfi = *f.SFI
		}
		content, err := efContent(f, baseDir, root)
		if err != nil {
			return err
		}
		return card.AddEF(f.Path, content, sfi)
	case "":
		return errors.New(`missing "type" ("df" or "ef")`)
	}
	return fmt.Errorf("unknown file type %q (want \"df\" or \"ef\")", f.Type)
}

func efContent(f fsImageFile, baseDir string, root **os.Root) ([]byte, error) {
	sources := 0
	if f.Hex != nil {
		sources++
	}
	if f.Pattern != nil {
		sources++
	}
	if f.File != "" {
		sources++
	}
	if sources != 1 {
		return nil, errors.New("an EF takes exactly one of hex, pattern, file")
	}
	switch {
	case f.Hex != nil:
		b, err := decodeHex(*f.Hex)
		if err != nil {
			return nil, fmt.Errorf("hex: %w", err)
		}
		if len(b) > MaxEFSize {
			return nil, fmt.Errorf("hex: %d bytes exceed the maximum EF size %d", len(b), MaxEFSize)
		}
		return b, nil
	case f.Pattern != nil:
		if f.Pattern.Size < 0 || f.Pattern.Size > MaxEFSize {
			return nil, fmt.Errorf("pattern: size %d out of range 0..%d", f.Pattern.Size, MaxEFSize)
		}
		return PatternBytes(f.Pattern.Size, f.Pattern.Seed), nil
	}
	if baseDir == "" {
		return nil, errors.New("file: no base directory to resolve it in")
	}
	if !filepath.IsLocal(f.File) {
		return nil, fmt.Errorf("file: %q must be a relative path inside the image directory", f.File)
	}
	if *root == nil {
		r, err := os.OpenRoot(baseDir)
		if err != nil {
			return nil, fmt.Errorf("file: %w", err)
		}
		*root = r
	}
	fh, err := (*root).Open(f.File)
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, MaxEFSize+1))
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	if len(b) > MaxEFSize {
		return nil, fmt.Errorf("file: %s is larger than the maximum EF size %d", f.File, MaxEFSize)
	}
	return b, nil
}

// checkComment accepts an absent comment, a string or an array of strings.
func checkComment(raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return nil
	}
	var ss []string
	if json.Unmarshal(raw, &ss) == nil {
		return nil
	}
	return errors.New("must be a string or an array of strings")
}

// decodeHex decodes hex digits, ignoring spaces, tabs, newlines and colons.
func decodeHex(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r', ':':
			return -1
		}
		return r
	}, s)
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bad hex: %w", err)
	}
	return b, nil
}

// PatternBytes returns size deterministic pseudo-random bytes for seed, as
// used by "pattern" EFs in card images. The generator is SplitMix64:
//
//	state := uint64(seed)          // two's complement for negative seeds
//	for each 8-byte block:
//	    state += 0x9E3779B97F4A7C15
//	    z := state
//	    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
//	    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
//	    z ^= z >> 31
//	    emit z as 8 bytes, little-endian
//
// and the output is truncated to size bytes (size <= 0 gives an empty
// slice). PatternBytes(8, 0) is AF CD 1D 7B 39 A8 20 E2.
func PatternBytes(size, seed int) []byte {
	if size <= 0 {
		return []byte{}
	}
	out := make([]byte, (size+7)/8*8)
	state := uint64(seed)
	for i := 0; i < len(out); i += 8 {
		state += 0x9E3779B97F4A7C15
		z := state
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		z ^= z >> 31
		binary.LittleEndian.PutUint64(out[i:], z)
	}
	return out[:size]
}
