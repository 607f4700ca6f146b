// Package samapp is the terminal SAM of the card lab (docs/card-profiles.md
// §4): serial and state, terminal certificate, activation with a retry
// counter, and SIGN RECORD with a 32-bit signature counter that is
// persisted before the SAM answers, so that no value is ever issued twice,
// even if the lab is killed mid-command; CARD AUTH INIT/COMPLETE for KPE
// cards with the master key that never leaves the SAM; KTP-el activation
// with two secrets, KTP-el card authentication and SM WRAP/UNWRAP with
// session keys that stay inside the SAM.
package samapp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/ktpel"
	"kpe-agent/apdu/sm"
	"kpe-agent/internal/tlv"
	"kpe-agent/lab/cardsim"
)

// AID of the SAM application (a profile parameter).
var AID = []byte{0xF0, 0x4B, 0x50, 0x45, 0x53, 0x41, 0x4D, 0x01}

// FIDCert is the EF holding the terminal certificate.
const FIDCert uint16 = 0x0201

// Config personalises a SAM.
type Config struct {
	Name           string
	ATR            []byte
	Serial         [8]byte
	ActivationCode []byte
	MaxTries       int // default 3
	Key            *ecdsa.PrivateKey
	CertDER        []byte
	// StatePath is the file that keeps activation state, tries left and
	// the signature counter across restarts.
	StatePath string
	// KPEMaster is the master key from which KPE card keys are derived.
	KPEMaster []byte
	// KTPMaster is the KTP-el master key; KTP-el functions also need the
	// per-installation activation with the two secrets KTPSecret1 and
	// KTPSecret2 (ACTIVATE P1 02).
	KTPMaster              []byte
	KTPSecret1, KTPSecret2 []byte
	// Initial is the state of a SAM whose state file does not exist yet
	// (default: inactive, MaxTries tries, counter 0); a blocked sample SAM
	// starts with 0 tries.
	Initial *State
}

// State is what the SAM keeps in non-volatile memory.
type State struct {
	Active    bool   `json:"active"`
	KTPActive bool   `json:"ktp_active,omitempty"`
	Tries     int    `json:"tries"`
	Counter   uint32 `json:"counter"`
}

// Applet implements cardsim.Card.
type Applet struct {
	cardsim.Applet
	cfg      Config
	st       State
	selected bool
	ef       uint16
	pending  *kpe.Auth // CARD AUTH INIT done, COMPLETE expected
	ktpAuth  *sm.Auth  // KTP-el CARD AUTH INIT done
	ktpSess  *sm.Session
}

// New loads the SAM's state (a missing file starts inactive with full
// tries; a corrupt file is an error: a counter must never silently restart).
func New(cfg Config) (*Applet, error) {
	if cfg.ATR == nil {
		cfg.ATR = cardsim.DefaultATR
	}
	if cfg.MaxTries == 0 {
		cfg.MaxTries = 3
	}
	if cfg.Key == nil || cfg.StatePath == "" || len(cfg.ActivationCode) == 0 {
		return nil, errors.New("samapp: key, activation code and state path are required")
	}
	a := &Applet{cfg: cfg, st: State{Tries: cfg.MaxTries}}
	if cfg.Initial != nil {
		if cfg.Initial.Tries < 0 || cfg.Initial.Tries > cfg.MaxTries {
			return nil, fmt.Errorf("samapp: initial tries %d out of range 0..%d", cfg.Initial.Tries, cfg.MaxTries)
		}
		a.st = *cfg.Initial
	}
	b, err := os.ReadFile(cfg.StatePath)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("samapp: state: %w", err)
	default:
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a.st); err != nil || a.st.Tries < 0 || a.st.Tries > cfg.MaxTries {
			return nil, fmt.Errorf("samapp: state file %s is corrupt; refusing to start (move it aside only if you know the counter): %v", cfg.StatePath, err)
		}
	}
	a.Applet = cardsim.Applet{
		Label:   cfg.Name,
		Answer:  cfg.ATR,
		FE:      cardsim.Frontend{Limits: cardsim.Limits{MaxCommandData: 255, MaxResponseData: 256}.WithDefaults(), ProprietaryClass: true},
		Handle:  a.handle,
		OnReset: func() { a.selected, a.ef, a.pending = false, 0, nil; a.dropKTP() },
	}
	return a, nil
}

func (a *Applet) handle(cmd cardsim.Command) ([]byte, cardsim.SW) {
	if cmd.INS == 0xA4 {
		return a.selectFile(cmd)
	}
	if !a.selected {
		return nil, 0x6985
	}
	switch {
	case cmd.CLA == 0x80 && cmd.INS == 0xCA && cmd.P1 == 0x01 && cmd.P2 == 0x01:
		return a.info(), 0x9000
	case cmd.CLA == 0x00 && cmd.INS == 0xB0:
		if a.ef != FIDCert {
			return nil, 0x6986
		}
		off := int(cmd.P1&0x7F)<<8 | int(cmd.P2)
		if off >= len(a.cfg.CertDER) {
			return nil, 0x6B00
		}
		n := min(cmd.Ne, len(a.cfg.CertDER)-off)
		if n < cmd.Ne {
			return bytes.Clone(a.cfg.CertDER[off : off+n]), 0x6282
		}
		return bytes.Clone(a.cfg.CertDER[off : off+n]), 0x9000
	case cmd.CLA == 0x80 && cmd.INS == 0x10:
		return a.activate(cmd)
	}
	if a.st.Tries == 0 {
		return nil, 0x6983
	}
	if !a.st.Active {
		return nil, 0x6982
	}
	switch {
	case cmd.CLA == 0x80 && cmd.INS == 0x40:
		return a.signRecord(cmd)
	case cmd.CLA == 0x80 && cmd.INS == 0x42:
		return binary.BigEndian.AppendUint32(nil, a.st.Counter), 0x9000
	case cmd.CLA == 0x80 && cmd.INS == 0x20 && cmd.P1 == 0x01:
		return a.cardAuthInit(cmd)
	case cmd.CLA == 0x80 && cmd.INS == 0x22 && cmd.P1 == 0x01:
		return a.cardAuthComplete(cmd)
	case cmd.CLA == 0x80 && (cmd.INS == 0x20 || cmd.INS == 0x22 || cmd.INS == 0x30 || cmd.INS == 0x32) && cmd.P1 == 0x02:
		if !a.st.KTPActive {
			return nil, 0x6982
		}
		return a.ktp(cmd)
	case cmd.CLA == 0x80 && (cmd.INS == 0x20 || cmd.INS == 0x22):
		return nil, 0x6A86
	}
	return nil, 0x6D00
}

func (a *Applet) dropKTP() {
	if a.ktpSess != nil {
		a.ktpSess.Close()
	}
	a.ktpAuth, a.ktpSess = nil, nil
}

// ktp runs the KTP-el commands (P1 02): CARD AUTH INIT (80 UID, 81 RND.IC
// → 40 bytes), CARD AUTH COMPLETE (40 bytes → nothing: the session keys
// stay here), SM WRAP (plain C-APDU → protected C-APDU) and SM UNWRAP
// (protected R-APDU → plain R-APDU; a bad one closes the session, 6988).
func (a *Applet) ktp(cmd cardsim.Command) ([]byte, cardsim.SW) {
	switch cmd.INS {
	case 0x20:
		a.dropKTP()
		if len(a.cfg.KTPMaster) == 0 {
			return nil, 0x6A88
		}
		uid, rnd, ok := twoDOs(cmd.Data)
		if !ok || len(rnd) != ktpel.RndLen {
			return nil, 0x6A80
		}
		keys, err := ktpel.DeriveCardKeys(a.cfg.KTPMaster, uid)
		if err != nil {
			return nil, 0x6A80
		}
		auth, ext, err := ktpel.Suite.Start(keys, rnd, rand.Reader)
		if err != nil {
			return nil, 0x6F00
		}
		a.ktpAuth = auth
		return ext, 0x9000
	case 0x22:
		auth := a.ktpAuth
		a.ktpAuth = nil
		if auth == nil {
			return nil, 0x6985
		}
		keys, err := auth.Finish(cmd.Data)
		if err != nil {
			return nil, 0x6300
		}
		if a.ktpSess, err = keys.Session(); err != nil {
			return nil, 0x6F00
		}
		return nil, 0x9000
	}
	if a.ktpSess == nil {
		return nil, 0x6985
	}
	var out []byte
	var err error
	if cmd.INS == 0x30 {
		out, err = a.ktpSess.WrapAPDU(context.Background(), cmd.Data)
	} else {
		out, err = a.ktpSess.UnwrapAPDU(context.Background(), cmd.Data)
	}
	if err != nil {
		a.dropKTP()
		return nil, 0x6988
	}
	return out, 0x9000
}

// cardAuthInit: data 80 serial(8) 81 RND.IC(16) → E.IFD ‖ M.IFD.
func (a *Applet) cardAuthInit(cmd cardsim.Command) ([]byte, cardsim.SW) {
	a.pending = nil
	if len(a.cfg.KPEMaster) == 0 {
		return nil, 0x6A88 // no KPE key in this SAM
	}
	serial, rnd, ok := twoDOs(cmd.Data)
	if !ok || len(serial) != 8 || len(rnd) != kpe.RndLen {
		return nil, 0x6A80
	}
	keys, err := kpe.DeriveCardKeys(a.cfg.KPEMaster, [8]byte(serial))
	if err != nil {
		return nil, 0x6F00
	}
	auth, ext, err := kpe.StartAuth(keys, rnd, rand.Reader)
	if err != nil {
		return nil, 0x6F00
	}
	a.pending = auth
	return ext, 0x9000
}

// cardAuthComplete: data E.IC ‖ M.IC → KS_enc ‖ KS_mac ‖ SSC.
func (a *Applet) cardAuthComplete(cmd cardsim.Command) ([]byte, cardsim.SW) {
	auth := a.pending
	a.pending = nil // single use
	if auth == nil {
		return nil, 0x6985
	}
	keys, err := auth.FinishKeys(cmd.Data)
	if err != nil {
		return nil, 0x6300
	}
	return keys.Bytes(), 0x9000
}

func (a *Applet) selectFile(cmd cardsim.Command) ([]byte, cardsim.SW) {
	switch {
	case cmd.P1 == 0x04 && bytes.Equal(cmd.Data, AID):
		a.selected, a.ef = true, 0
		return nil, 0x9000
	case cmd.P1 == 0x04:
		return nil, 0x6A82
	case a.selected && len(cmd.Data) == 2 && uint16(cmd.Data[0])<<8|uint16(cmd.Data[1]) == FIDCert:
		a.ef = FIDCert
		return nil, 0x9000
	}
	return nil, 0x6A82
}

func (a *Applet) info() []byte {
	state := byte(0)
	switch {
	case a.st.Tries == 0:
		state = 2
	case a.st.Active:
		state = 1
	}
	v := append([]byte{0x80, 0x08}, a.cfg.Serial[:]...)
	v = append(v, 0x81, 0x01, state, 0x82, 0x01, byte(a.st.Tries), 0x83, 0x04)
	v = binary.BigEndian.AppendUint32(v, a.st.Counter)
	return append([]byte{0x70, byte(len(v))}, v...)
}

func (a *Applet) activate(cmd cardsim.Command) ([]byte, cardsim.SW) {
	if cmd.P1 != 0x01 && cmd.P1 != 0x02 {
		return nil, 0x6A86
	}
	if a.st.Tries == 0 {
		return nil, 0x6983
	}
	ok := false
	if cmd.P1 == 0x01 {
		ok = subtle.ConstantTimeCompare(cmd.Data, a.cfg.ActivationCode) == 1
	} else {
		if !a.st.Active {
			return nil, 0x6982 // the terminal activation comes first
		}
		if len(a.cfg.KTPSecret1) == 0 || len(a.cfg.KTPSecret2) == 0 {
			return nil, 0x6A88
		}
		s1, s2, ok2 := twoDOs(cmd.Data)
		if !ok2 {
			return nil, 0x6A80
		}
		// Both compared, always: no early exit that would time one secret.
		m1 := subtle.ConstantTimeCompare(s1, a.cfg.KTPSecret1)
		m2 := subtle.ConstantTimeCompare(s2, a.cfg.KTPSecret2)
		ok = m1&m2 == 1
	}
	if ok {
		next := a.st
		next.Tries = a.cfg.MaxTries
		if cmd.P1 == 0x01 {
			next.Active = true
		} else {
			next.KTPActive = true
		}
		if err := a.persist(next); err != nil {
			return nil, 0x6581
		}
		return nil, 0x9000
	}
	next := a.st
	next.Tries--
	if err := a.persist(next); err != nil {
		return nil, 0x6581
	}
	if next.Tries == 0 {
		return nil, 0x6983
	}
	return nil, cardsim.SW(0x63C0 | next.Tries)
}

func (a *Applet) signRecord(cmd cardsim.Command) ([]byte, cardsim.SW) {
	if len(cmd.Data) != sha256.Size {
		return nil, 0x6700
	}
	if a.st.Counter == ^uint32(0) {
		return nil, 0x6985 // end of life
	}
	next := a.st
	next.Counter++
	// Persist the new counter before anything leaves the SAM: a value that
	// was ever answered is on disk, so a restart cannot issue it again.
	if err := a.persist(next); err != nil {
		return nil, 0x6581
	}
	msg := append(append(bytes.Clone(cmd.Data), binary.BigEndian.AppendUint32(nil, next.Counter)...), a.cfg.Serial[:]...)
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, a.cfg.Key, h[:])
	if err != nil {
		return nil, 0x6F00
	}
	out := binary.BigEndian.AppendUint32(nil, next.Counter)
	out = append(out, r.FillBytes(make([]byte, 32))...)
	out = append(out, s.FillBytes(make([]byte, 32))...)
	return out, 0x9000
}

// persist writes the state durably (temp file, fsync, rename, fsync of the
// directory) and only then makes it current.
func (a *Applet) persist(next State) error {
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	dir := filepath.Dir(a.cfg.StatePath)
	f, err := os.CreateTemp(dir, ".sam-state-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, a.cfg.StatePath); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return err
	}
	a.st = next
	return nil
}

// twoDOs reads command data of the form 80 { a } 81 { b }.
func twoDOs(data []byte) (a, b []byte, ok bool) {
	dos, err := tlv.Parse(data)
	if err != nil {
		return nil, nil, false
	}
	da, ok1 := tlv.Find(dos, 0x80)
	db, ok2 := tlv.Find(dos, 0x81)
	return da.Value, db.Value, ok1 && ok2
}
