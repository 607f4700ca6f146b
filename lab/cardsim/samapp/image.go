package samapp

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"kpe-agent/apdu/sam"
	"kpe-agent/lab/cardsim"
)

// A card image of type "sam":
//
//	{
//	  "type": "sam",
//	  "name": "Lab SAM 0001",
//	  "serial": "53 41 4D 00 00 00 00 01",
//	  "atr": "...",                       // default ATRSAM
//	  "activation_code": "123456",
//	  "max_tries": 3,
//	  "key": "<PKCS#8 DER hex>",          // ECDSA P-256 signing key
//	  "cert": "<X.509 DER hex>",          // terminal certificate
//	  "kpe_master": "<hex>", "ktp_master": "<hex>",
//	  "kpe_update_master": "<hex>",       // card update master (renewal, §2.7); optional
//	  "purse_debit_master": "<hex>", "purse_credit_master": "<hex>", // purse masters (§2.8); optional
//	  "purse_topup_roots": ["<X.509 DER hex>", ...], // issuer roots of top-up authorisations (PURSE AUTHORISE)
//	  "ktp_secret1": "...", "ktp_secret2": "...",
//	  "pseudonym_key": "<hex>",           // institution pseudonym key (PSEUDONYM), 32 bytes or more
//	  "initial_state": {"active": false, "tries": 3, "counter": 0}
//	}
//
// The SAM's non-volatile state (activation, tries, signature counter) lives
// in a state file, not in the image: <state dir>/sam-<serial>.json, where
// the state dir is $KPE_CARDSIM_STATE_DIR, else the user cache directory's
// kpe-cardsim folder. A missing state file starts from initial_state.
type image struct {
	Type           string          `json:"type"`
	Name           string          `json:"name"`
	Comment        json.RawMessage `json:"comment,omitempty"`
	Serial         string          `json:"serial"`
	ATR            string          `json:"atr,omitempty"`
	ActivationCode string          `json:"activation_code"`
	MaxTries       int             `json:"max_tries,omitempty"`
	Key            string          `json:"key"`
	Cert           string          `json:"cert"`
	KPEMaster      string          `json:"kpe_master,omitempty"`
	UpdateMaster   string          `json:"kpe_update_master,omitempty"`
	KTPMaster      string          `json:"ktp_master,omitempty"`
	KTPSecret1     string          `json:"ktp_secret1,omitempty"`
	KTPSecret2     string          `json:"ktp_secret2,omitempty"`
	PseudonymKey   string          `json:"pseudonym_key,omitempty"`
	DebitMaster    string          `json:"purse_debit_master,omitempty"`
	CreditMaster   string          `json:"purse_credit_master,omitempty"`
	TopUpRoots     []string        `json:"purse_topup_roots,omitempty"`
	InitialState   *State          `json:"initial_state,omitempty"`
}

// ATRSAM is the lab SAM's ATR: T=1, historical bytes with the pre-issuing
// data object "SAM" v1 (docs/card-profiles.md §5).
var ATRSAM = []byte{0x3B, 0x8D, 0x81, 0x31, 0xFE, 0x45, 0x80, 0x73, 0x94, 0x01, 0xA0, 0x64, 0x53, 0x41, 0x4D, 0x01, 0x82, 0x90, 0x00, 0x68}

func init() { cardsim.RegisterImageType("sam", parseImage) }

// StateDir is where lab SAMs keep their state files.
func StateDir() (string, error) {
	if d := os.Getenv("KPE_CARDSIM_STATE_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("samapp: no state directory (set KPE_CARDSIM_STATE_DIR): %w", err)
	}
	return filepath.Join(d, "kpe-cardsim"), nil
}

func parseImage(data []byte, _ string) (cardsim.Card, error) {
	var img image
	if err := cardsim.DecodeImage(data, &img); err != nil {
		return nil, fmt.Errorf("sam image: %w", err)
	}
	cfg, err := img.config()
	if err != nil {
		return nil, fmt.Errorf("sam image %q: %w", img.Name, err)
	}
	return New(cfg)
}

func (img image) config() (Config, error) {
	if err := cardsim.CheckComment(img.Comment); err != nil {
		return Config{}, fmt.Errorf("comment: %w", err)
	}
	if img.Name == "" {
		return Config{}, errors.New(`"name" is required`)
	}
	cfg := Config{Name: img.Name, ATR: ATRSAM, ActivationCode: []byte(img.ActivationCode), MaxTries: img.MaxTries,
		KTPSecret1: []byte(img.KTPSecret1), KTPSecret2: []byte(img.KTPSecret2), Initial: img.InitialState}
	serial, err := cardsim.DecodeHex(img.Serial)
	if err != nil || len(serial) != 8 {
		return Config{}, fmt.Errorf("serial: want 8 bytes of hex (%v)", err)
	}
	cfg.Serial = [8]byte(serial)
	if img.ATR != "" {
		if cfg.ATR, err = cardsim.DecodeHex(img.ATR); err != nil {
			return Config{}, fmt.Errorf("atr: %w", err)
		}
	}
	der, err := cardsim.DecodeHex(img.Key)
	if err != nil {
		return Config{}, fmt.Errorf("key: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return Config{}, fmt.Errorf("key: %w", err)
	}
	var ok bool
	if cfg.Key, ok = k.(*ecdsa.PrivateKey); !ok {
		return Config{}, errors.New("key: not an ECDSA key")
	}
	if cfg.CertDER, err = cardsim.DecodeHex(img.Cert); err != nil {
		return Config{}, fmt.Errorf("cert: %w", err)
	}
	if _, err := x509.ParseCertificate(cfg.CertDER); err != nil {
		return Config{}, fmt.Errorf("cert: %w", err)
	}
	if cfg.KPEMaster, err = cardsim.DecodeHex(img.KPEMaster); err != nil {
		return Config{}, fmt.Errorf("kpe_master: %w", err)
	}
	if cfg.UpdateMaster, err = cardsim.DecodeHex(img.UpdateMaster); err != nil {
		return Config{}, fmt.Errorf("kpe_update_master: %w", err)
	}
	if cfg.KTPMaster, err = cardsim.DecodeHex(img.KTPMaster); err != nil {
		return Config{}, fmt.Errorf("ktp_master: %w", err)
	}
	if cfg.DebitMaster, err = cardsim.DecodeHex(img.DebitMaster); err != nil {
		return Config{}, fmt.Errorf("purse_debit_master: %w", err)
	}
	if cfg.CreditMaster, err = cardsim.DecodeHex(img.CreditMaster); err != nil {
		return Config{}, fmt.Errorf("purse_credit_master: %w", err)
	}
	for i, h := range img.TopUpRoots {
		der, err := cardsim.DecodeHex(h)
		if err != nil {
			return Config{}, fmt.Errorf("purse_topup_roots[%d]: %w", i, err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return Config{}, fmt.Errorf("purse_topup_roots[%d]: %w", i, err)
		}
		cfg.TopUpRoots = append(cfg.TopUpRoots, c)
	}
	if cfg.PseudonymKey, err = imagePseudonymKey(img.PseudonymKey); err != nil {
		return Config{}, err
	}
	dir, err := StateDir()
	if err != nil {
		return Config{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Config{}, fmt.Errorf("state directory: %w", err)
	}
	cfg.StatePath = filepath.Join(dir, "sam-"+hex.EncodeToString(serial)+".json")
	return cfg, nil
}

// Image returns the card image of a SAM configuration.
func Image(cfg Config, comment string) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(cfg.Key)
	if err != nil {
		return nil, err
	}
	img := image{Type: "sam", Name: cfg.Name, Serial: fmt.Sprintf("% X", cfg.Serial[:]), ActivationCode: string(cfg.ActivationCode),
		MaxTries: cfg.MaxTries, Key: hex.EncodeToString(der), Cert: hex.EncodeToString(cfg.CertDER),
		KPEMaster: hex.EncodeToString(cfg.KPEMaster), UpdateMaster: hex.EncodeToString(cfg.UpdateMaster), KTPMaster: hex.EncodeToString(cfg.KTPMaster),
		KTPSecret1: string(cfg.KTPSecret1), KTPSecret2: string(cfg.KTPSecret2), PseudonymKey: hex.EncodeToString(cfg.PseudonymKey),
		DebitMaster: hex.EncodeToString(cfg.DebitMaster), CreditMaster: hex.EncodeToString(cfg.CreditMaster),
		InitialState: cfg.Initial}
	for _, c := range cfg.TopUpRoots {
		img.TopUpRoots = append(img.TopUpRoots, hex.EncodeToString(c.Raw))
	}
	if comment != "" {
		img.Comment, _ = json.Marshal(comment)
	}
	return json.MarshalIndent(img, "", "  ")
}

// MinPseudonymKey is the shortest institution pseudonym key a SAM image
// may hold.
const MinPseudonymKey = sam.MinPseudonymKeyLen

func imagePseudonymKey(h string) ([]byte, error) {
	k, err := cardsim.DecodeHex(h)
	if err != nil {
		return nil, fmt.Errorf("pseudonym_key: %w", err)
	}
	if len(k) > 0 && len(k) < MinPseudonymKey {
		return nil, fmt.Errorf("pseudonym_key: %d bytes, want at least %d", len(k), MinPseudonymKey)
	}
	return k, nil
}

// ImagePseudonymKey returns the institution pseudonym key personalised in
// a lab SAM's card image (nil when it has none): what a test compares the
// pseudonyms the agent stored against. A real SAM's key never leaves it.
func ImagePseudonymKey(data []byte) ([]byte, error) {
	var img image
	if err := cardsim.DecodeImage(data, &img); err != nil {
		return nil, fmt.Errorf("sam image: %w", err)
	}
	if img.Type != "sam" {
		return nil, fmt.Errorf("sam image: type %q", img.Type)
	}
	return imagePseudonymKey(img.PseudonymKey)
}
