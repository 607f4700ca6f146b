package kpeapp

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"kpe-agent/apdu/ktpel"
	"kpe-agent/lab/cardsim"
)

// Card images of type "kpe" and "ktpel" hold what the chip holds: its EF
// contents and its (already diversified) authentication keys, never a
// master key. A clone image is one whose keys were not derived from the
// master; a tampered image has an EF altered after the issuer signed it.
//
//	{
//	  "type": "kpe",                 // or "ktpel"
//	  "name": "KPE Budi Santoso",
//	  "comment": "...",
//	  "atr": "3B 8D ...",            // default ATRKPE / ATRKTPel
//	  "aid": "F0 4B 50 45 01",       // kpe only (default kpe.DefaultAID)
//	  "uid": "04 52 8A 1C 6D 31 80", // ktpel only, required
//	  "keys": {"enc": "...", "mac": "..."},  // AES-128 (kpe) or 3-key 3DES (ktpel)
//	  "update_keys": {"enc": "...", "mac": "..."}, // kpe only, optional: the renewal keys (§2.7)
//	  "purse": {"serial": "00 00 00 00 00 00 00 01", "debit_key": "...", "credit_key": "...",
//	            "balance": 0, "ptc": 0, "max_balance": 2000000}, // kpe only, optional (§2.8)
//	  "max_response": 256,
//	  "plain": ["0101", "010F", "0107"],     // EFs readable without SM (default per type)
//	  "files": [{"fid": "0101", "hex": "..."}, {"fid": "0106", "file": "photo.jpg"}],
//	  "biometric": {"reference": "<compact minutiae hex>", "ref": 129, "min": 12, "max": 60,
//	                "max_tries": 5, "tries": 0, "finger": {"seed": 2026, "id": 257, "code": 7}}
//	}
type image struct {
	Type        string               `json:"type"`
	Name        string               `json:"name"`
	Comment     json.RawMessage      `json:"comment,omitempty"`
	ATR         string               `json:"atr,omitempty"`
	AID         string               `json:"aid,omitempty"`
	UID         string               `json:"uid,omitempty"`
	Keys        imageKeys            `json:"keys"`
	UpdateKeys  *imageKeys           `json:"update_keys,omitempty"`
	Purse       *imagePurse          `json:"purse,omitempty"`
	MaxResponse int                  `json:"max_response,omitempty"`
	Plain       []string             `json:"plain,omitempty"`
	Files       []cardsim.AppletFile `json:"files"`
	Biometric   *imageBio            `json:"biometric,omitempty"`
	Finger      *FingerRef           `json:"finger,omitempty"` // ktpel: the holder's synthetic finger (lab sensor)
}

// imageBio is the on-card comparison of a kpe image: the enrolled finger
// as compact-card minutiae (hex), the BIT limits, the retry counter, and
// which synthetic finger it is (for the lab sensor).
type imageBio struct {
	Reference string    `json:"reference"`
	Ref       int       `json:"ref,omitempty"`
	Min       int       `json:"min,omitempty"`
	Max       int       `json:"max,omitempty"`
	MaxTries  int       `json:"max_tries,omitempty"`
	Tries     int       `json:"tries,omitempty"` // 0: max_tries; negative: blocked
	Finger    FingerRef `json:"finger"`
}

// imagePurse is a kpe card's purse: its serial, its diversified keys and
// the starting balance, counter and maximum (the log starts empty).
type imagePurse struct {
	Serial     string `json:"serial"`
	DebitKey   string `json:"debit_key"`
	CreditKey  string `json:"credit_key"`
	Balance    uint32 `json:"balance,omitempty"`
	PTC        uint32 `json:"ptc,omitempty"`
	MaxBalance uint32 `json:"max_balance,omitempty"`
}

type imageKeys struct {
	Enc string `json:"enc"`
	MAC string `json:"mac"`
}

func init() {
	cardsim.RegisterImageType("kpe", parseImage)
	cardsim.RegisterImageType("ktpel", parseImage)
}

func parseImage(data []byte, baseDir string) (cardsim.Card, error) {
	var img image
	if err := cardsim.DecodeImage(data, &img); err != nil {
		return nil, fmt.Errorf("%s image: %w", "applet", err)
	}
	cfg, err := img.config(baseDir)
	if err != nil {
		return nil, fmt.Errorf("%s image %q: %w", img.Type, img.Name, err)
	}
	return New(cfg)
}

func (img image) config(baseDir string) (Config, error) {
	if err := cardsim.CheckComment(img.Comment); err != nil {
		return Config{}, fmt.Errorf("comment: %w", err)
	}
	if img.Name == "" {
		return Config{}, errors.New(`"name" is required`)
	}
	cfg := Config{Name: img.Name, MaxResponse: img.MaxResponse}
	hexField := func(name, s string) ([]byte, error) {
		b, err := cardsim.DecodeHex(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return b, nil
	}
	var err error
	if cfg.Keys.Enc, err = hexField("keys.enc", img.Keys.Enc); err != nil {
		return Config{}, err
	}
	if cfg.Keys.MAC, err = hexField("keys.mac", img.Keys.MAC); err != nil {
		return Config{}, err
	}
	if u := img.UpdateKeys; u != nil {
		if img.Type != "kpe" {
			return Config{}, errors.New(`"update_keys" is for kpe images`)
		}
		if cfg.UpdateKeys.Enc, err = hexField("update_keys.enc", u.Enc); err != nil {
			return Config{}, err
		}
		if cfg.UpdateKeys.MAC, err = hexField("update_keys.mac", u.MAC); err != nil {
			return Config{}, err
		}
	}
	if p := img.Purse; p != nil {
		if img.Type != "kpe" {
			return Config{}, errors.New(`"purse" is for kpe images`)
		}
		pc := &PurseConfig{Balance: p.Balance, PTC: p.PTC, MaxBalance: p.MaxBalance}
		serial, err := hexField("purse.serial", p.Serial)
		if err != nil || len(serial) != 8 {
			return Config{}, fmt.Errorf("purse.serial: want 8 bytes of hex (%v)", err)
		}
		pc.Serial = [8]byte(serial)
		if pc.DebitKey, err = hexField("purse.debit_key", p.DebitKey); err != nil {
			return Config{}, err
		}
		if pc.CreditKey, err = hexField("purse.credit_key", p.CreditKey); err != nil {
			return Config{}, err
		}
		cfg.Purse = pc
	}
	if img.ATR != "" {
		if cfg.ATR, err = hexField("atr", img.ATR); err != nil {
			return Config{}, err
		}
	}
	switch img.Type {
	case "kpe":
		if img.UID != "" {
			return Config{}, errors.New(`"uid" is for ktpel images`)
		}
		if cfg.ATR == nil {
			cfg.ATR = ATRKPE
		}
		if img.AID != "" {
			if cfg.AID, err = hexField("aid", img.AID); err != nil {
				return Config{}, err
			}
		}
	case "ktpel":
		if img.AID != "" {
			return Config{}, errors.New(`"aid" is for kpe images (KTP-el selects DF 7F0A)`)
		}
		if cfg.UID, err = hexField("uid", img.UID); err != nil || len(cfg.UID) < ktpel.MinUIDLen || len(cfg.UID) > ktpel.MaxUIDLen {
			return Config{}, fmt.Errorf("uid: want %d..%d bytes of hex (%v)", ktpel.MinUIDLen, ktpel.MaxUIDLen, err)
		}
		if cfg.ATR == nil {
			cfg.ATR = ATRKTPel
		}
		cfg.DF, cfg.Suite = ktpel.FIDDF, ktpel.Suite
		cfg.Plain = PlainSet(ktpel.PlainEFs())
	}
	if img.Plain != nil {
		cfg.Plain = map[uint16]bool{}
		for _, p := range img.Plain {
			b, err := hex.DecodeString(p)
			if err != nil || len(b) != 2 {
				return Config{}, fmt.Errorf("plain: %q: want 4 hex digits", p)
			}
			cfg.Plain[uint16(b[0])<<8|uint16(b[1])] = true
		}
	}
	if cfg.Files, err = cardsim.LoadAppletFiles(img.Files, baseDir); err != nil {
		return Config{}, err
	}
	if b := img.Biometric; b != nil {
		ref, err := hexField("biometric.reference", b.Reference)
		if err != nil {
			return Config{}, err
		}
		if b.Ref < 0 || b.Ref > 255 {
			return Config{}, errors.New("biometric.ref: want 0..255")
		}
		cfg.Bio = &BioConfig{Reference: ref, Ref: byte(b.Ref), MinN: b.Min, MaxN: b.Max, MaxTries: b.MaxTries, Tries: b.Tries, Finger: b.Finger}
	}
	cfg.HolderFinger = img.Finger
	return cfg, nil
}

// Image returns the card image of a configuration (the personalisation
// output). Photos and other EFs listed in external are written as files
// by the caller; here they become "file" references with the given names.
func Image(kind string, cfg Config, comment string, external map[uint16]string) ([]byte, error) {
	if kind != "kpe" && kind != "ktpel" {
		return nil, fmt.Errorf("kpeapp: image type %q", kind)
	}
	img := image{Type: kind, Name: cfg.Name, ATR: spaced(cfg.ATR), MaxResponse: cfg.MaxResponse,
		Keys: imageKeys{Enc: hex.EncodeToString(cfg.Keys.Enc), MAC: hex.EncodeToString(cfg.Keys.MAC)}}
	if b := cfg.Bio; b != nil {
		img.Biometric = &imageBio{Reference: hex.EncodeToString(b.Reference), Ref: int(b.Ref), Min: b.MinN, Max: b.MaxN,
			MaxTries: b.MaxTries, Tries: b.Tries, Finger: b.Finger}
	}
	if cfg.UpdateKeys.Enc != nil || cfg.UpdateKeys.MAC != nil {
		img.UpdateKeys = &imageKeys{Enc: hex.EncodeToString(cfg.UpdateKeys.Enc), MAC: hex.EncodeToString(cfg.UpdateKeys.MAC)}
	}
	if p := cfg.Purse; p != nil {
		img.Purse = &imagePurse{Serial: spaced(p.Serial[:]), DebitKey: hex.EncodeToString(p.DebitKey), CreditKey: hex.EncodeToString(p.CreditKey),
			Balance: p.Balance, PTC: p.PTC, MaxBalance: p.MaxBalance}
	}
	if comment != "" {
		img.Comment, _ = json.Marshal(comment)
	}
	if kind == "kpe" && cfg.AID != nil {
		img.AID = spaced(cfg.AID)
	}
	if kind == "ktpel" {
		img.UID = spaced(cfg.UID)
		img.Finger = cfg.HolderFinger
	}
	fids := make([]int, 0, len(cfg.Files))
	for fid := range cfg.Files {
		fids = append(fids, int(fid))
	}
	sort.Ints(fids)
	for _, f := range fids {
		fid := uint16(f)
		af := cardsim.AppletFile{FID: fmt.Sprintf("%04X", fid)}
		if name, ok := external[fid]; ok {
			af.File = name
		} else {
			h := hex.EncodeToString(cfg.Files[fid])
			af.Hex = &h
		}
		img.Files = append(img.Files, af)
	}
	return json.MarshalIndent(img, "", "  ")
}

func spaced(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return fmt.Sprintf("% X", b)
}
