// Package samapp is the terminal SAM of the card lab (docs/card-profiles.md
// §4): serial and state, terminal certificate, activation with a retry
// counter, and SIGN RECORD with a 32-bit signature counter that is
// persisted before the SAM answers, so that no value is ever issued twice,
// even if the lab is killed mid-command; CARD AUTH INIT/COMPLETE for KPE
// cards with the master key that never leaves the SAM; KTP-el activation
// with two secrets, KTP-el card authentication and SM WRAP/UNWRAP with
// session keys that stay inside the SAM; PSEUDONYM with the institution's
// pseudonym key, which never leaves it either; the purse's PURSE MAC and
// PURSE PROOF, a CREDIT MAC only for the top-up authorisation PURSE
// AUTHORISE handed it and it verified.
package samapp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/ktpel"
	"kpe-agent/apdu/sam"
	"kpe-agent/apdu/sm"
	"kpe-agent/internal/topup"
	"kpe-agent/lab/cardsim"
)

// The applet plays the SAM profile of package apdu/sam: it answers the
// application sam.AID, dispatches on sam's class and instruction
// constants, and encodes its answers with sam's encoders, so that the
// terminal's client and the lab's SAM cannot disagree.

// Config personalises a SAM.
type Config struct {
	Name           string
	ATR            []byte
	Serial         [sam.SerialLen]byte
	ActivationCode []byte
	MaxTries       int // default 3
	Key            *ecdsa.PrivateKey
	CertDER        []byte
	// StatePath is the file that keeps activation state, tries left and
	// the signature counter across restarts.
	StatePath string
	// KPEMaster is the master key from which KPE card keys are derived.
	KPEMaster []byte
	// UpdateMaster is the card update master key from which KPE update
	// keys are derived (CARD AUTH INIT/COMPLETE P1 03); nil: the SAM has
	// none and answers 6A88.
	UpdateMaster []byte
	// KTPMaster is the KTP-el master key; KTP-el functions also need the
	// per-installation activation with the two secrets KTPSecret1 and
	// KTPSecret2 (ACTIVATE P1 02).
	KTPMaster              []byte
	KTPSecret1, KTPSecret2 []byte
	// PseudonymKey is the institution's pseudonym key (PSEUDONYM: the
	// KTP-el record's subject and card serial); nil: the SAM has none and
	// answers PSEUDONYM with 6A88.
	PseudonymKey []byte
	// DebitMaster and CreditMaster are the purse masters from which the
	// cards' debit and credit keys are derived (PURSE MAC / PURSE PROOF,
	// docs/card-profiles.md §2.8); nil: the SAM answers that family 6A88.
	DebitMaster, CreditMaster []byte
	// TopUpRoots are the issuer roots the SAM trusts for top-up
	// authorisations (PURSE AUTHORISE, docs/card-profiles.md §4): the
	// BKN roots the terminal trusts. A SAM with a credit master and no
	// roots refuses every CREDIT MAC: it cannot check an authorisation.
	TopUpRoots []*x509.Certificate
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
	// PurseTxn is the last purse transaction number PURSE MAC issued.
	PurseTxn uint32 `json:"purse_txn,omitempty"`
}

// Applet implements cardsim.Card.
type Applet struct {
	cardsim.Applet
	cfg      Config
	st       State
	selected bool
	ef       uint16
	pending  *kpe.Auth // CARD AUTH INIT done, COMPLETE expected
	pendUpd  bool      // pending is an update-key authentication
	ktpAuth  *sm.Auth  // KTP-el CARD AUTH INIT done
	ktpSess  *sm.Session
	// topupRoots is TopUpRoots as a pool (nil: none).
	topupRoots *x509.CertPool
	// topup is the volatile slot of PURSE AUTHORISE: the authorisation
	// the next CREDIT MAC may use (nil: none). SELECT, a reset and the
	// CREDIT MAC it allows empty it; a new PURSE AUTHORISE replaces it.
	topup *topup.Authorisation
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
	if len(cfg.TopUpRoots) > 0 {
		a.topupRoots = x509.NewCertPool()
		for _, c := range cfg.TopUpRoots {
			a.topupRoots.AddCert(c)
		}
	}
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
		Label:  cfg.Name,
		Answer: cfg.ATR,
		FE: cardsim.Frontend{Limits: cardsim.Limits{MaxCommandData: 255, MaxResponseData: 256}.WithDefaults(), ProprietaryClass: true,
			Chainable: func(ins byte) bool { return ins == sam.InsPurseAuthorise }},
		Handle:  a.handle,
		OnReset: func() { a.selected, a.ef, a.pending, a.topup = false, 0, nil, nil; a.dropKTP() },
	}
	return a, nil
}

func (a *Applet) handle(cmd cardsim.Command) ([]byte, cardsim.SW) {
	if cmd.INS == apdu.InsSelect {
		return a.selectFile(cmd)
	}
	if !a.selected {
		return nil, cardsim.SWConditionsNotSatisfied
	}
	switch {
	case cmd.CLA == sam.CLA && cmd.INS == sam.InsGetData && cmd.P1 == sam.InfoP1 && cmd.P2 == sam.InfoP2:
		return a.info(), cardsim.SWOK
	case cmd.CLA == apdu.CLAInterindustry && cmd.INS == apdu.InsReadBinary:
		if a.ef != sam.FIDCert {
			return nil, cardsim.SWCommandNotAllowedNoEF
		}
		off := int(cmd.P1&0x7F)<<8 | int(cmd.P2)
		if off >= len(a.cfg.CertDER) {
			return nil, cardsim.SWWrongP1P2
		}
		n := min(cmd.Ne, len(a.cfg.CertDER)-off)
		if n < cmd.Ne {
			return bytes.Clone(a.cfg.CertDER[off : off+n]), cardsim.SWEndOfFile
		}
		return bytes.Clone(a.cfg.CertDER[off : off+n]), cardsim.SWOK
	case cmd.CLA == sam.CLA && cmd.INS == sam.InsActivate:
		return a.activate(cmd)
	}
	if a.st.Tries == 0 {
		return nil, cardsim.SWAuthenticationBlocked
	}
	if !a.st.Active {
		return nil, cardsim.SWSecurityStatusNotSatisfied
	}
	cardAuth := cmd.INS == sam.InsCardAuthInit || cmd.INS == sam.InsCardAuthComplete
	switch {
	case cmd.CLA != sam.CLA:
	case cmd.INS == sam.InsSignRecord:
		return a.signRecord(cmd)
	case cmd.INS == sam.InsGetCounter:
		return binary.BigEndian.AppendUint32(nil, a.st.Counter), cardsim.SWOK
	case cmd.INS == sam.InsPseudonym:
		return a.pseudonym(cmd)
	case cmd.INS == sam.InsPurseAuthorise:
		return a.purseAuthorise(cmd)
	case cmd.INS == sam.InsPurseMAC:
		return a.purseMAC(cmd)
	case cmd.INS == sam.InsPurseProof:
		return a.purseProof(cmd)
	case cmd.INS == sam.InsCardAuthInit && (cmd.P1 == sam.ProfileKPE || cmd.P1 == sam.ProfileKPEUpdate):
		return a.cardAuthInit(cmd)
	case cmd.INS == sam.InsCardAuthComplete && (cmd.P1 == sam.ProfileKPE || cmd.P1 == sam.ProfileKPEUpdate):
		return a.cardAuthComplete(cmd)
	case (cardAuth || cmd.INS == sam.InsSMWrap || cmd.INS == sam.InsSMUnwrap) && cmd.P1 == sam.ProfileKTPel:
		if !a.st.KTPActive {
			return nil, cardsim.SWSecurityStatusNotSatisfied
		}
		return a.ktp(cmd)
	case cardAuth:
		return nil, cardsim.SWIncorrectP1P2
	}
	return nil, cardsim.SWINSNotSupported
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
	case sam.InsCardAuthInit:
		a.dropKTP()
		if len(a.cfg.KTPMaster) == 0 {
			return nil, cardsim.SWReferencedDataNotFound
		}
		uid, rnd, err := sam.ParsePair(cmd.Data)
		if err != nil || len(rnd) != ktpel.RndLen {
			return nil, cardsim.SWWrongData
		}
		keys, err := ktpel.DeriveCardKeys(a.cfg.KTPMaster, uid)
		if err != nil {
			return nil, cardsim.SWWrongData
		}
		auth, ext, err := ktpel.Suite.Start(keys, rnd, rand.Reader)
		if err != nil {
			return nil, cardsim.SWUnknown
		}
		a.ktpAuth = auth
		return ext, cardsim.SWOK
	case sam.InsCardAuthComplete:
		auth := a.ktpAuth
		a.ktpAuth = nil
		if auth == nil {
			return nil, cardsim.SWConditionsNotSatisfied
		}
		keys, err := auth.Finish(cmd.Data)
		if err != nil {
			return nil, cardsim.SWVerificationFailed
		}
		if a.ktpSess, err = keys.Session(); err != nil {
			return nil, cardsim.SWUnknown
		}
		return nil, cardsim.SWOK
	}
	if a.ktpSess == nil {
		return nil, cardsim.SWConditionsNotSatisfied
	}
	var out []byte
	var err error
	if cmd.INS == sam.InsSMWrap {
		out, err = a.ktpSess.WrapAPDU(context.Background(), cmd.Data)
	} else {
		out, err = a.ktpSess.UnwrapAPDU(context.Background(), cmd.Data)
	}
	if err != nil {
		a.dropKTP()
		return nil, cardsim.SWSMDataObjectsIncorrect
	}
	return out, cardsim.SWOK
}

// pseudonym: P1 the domain, P2 00, data the value (1 to 64 bytes) →
// HMAC-SHA-256(pseudonym key, P1 ‖ value), 32 bytes.
func (a *Applet) pseudonym(cmd cardsim.Command) ([]byte, cardsim.SW) {
	d := sam.Domain(cmd.P1)
	switch {
	case !d.Known() || cmd.P2 != 0:
		return nil, cardsim.SWIncorrectP1P2
	case len(cmd.Data) == 0 || len(cmd.Data) > sam.MaxPseudonymInput:
		return nil, cardsim.SWWrongLength
	case len(a.cfg.PseudonymKey) == 0:
		return nil, cardsim.SWReferencedDataNotFound // no pseudonym key in this SAM
	}
	p := sam.PseudonymOf(a.cfg.PseudonymKey, d, cmd.Data)
	return p[:], cardsim.SWOK
}

// cardAuthInit: data 80 serial(8) 81 RND.IC(16) → E.IFD ‖ M.IFD; P1 01
// with the card keys, P1 03 with the card's update keys.
func (a *Applet) cardAuthInit(cmd cardsim.Command) ([]byte, cardsim.SW) {
	a.pending, a.pendUpd = nil, false
	master, derive := a.cfg.KPEMaster, kpe.DeriveCardKeys
	if cmd.P1 == sam.ProfileKPEUpdate {
		master, derive = a.cfg.UpdateMaster, kpe.DeriveUpdateKeys
	}
	if len(master) == 0 {
		return nil, cardsim.SWReferencedDataNotFound // no such KPE key in this SAM
	}
	serial, rnd, err := sam.ParsePair(cmd.Data)
	if err != nil || len(serial) != 8 || len(rnd) != kpe.RndLen {
		return nil, cardsim.SWWrongData
	}
	keys, err := derive(master, [8]byte(serial))
	if err != nil {
		return nil, cardsim.SWUnknown
	}
	auth, ext, err := kpe.StartAuth(keys, rnd, rand.Reader)
	if err != nil {
		return nil, cardsim.SWUnknown
	}
	a.pending, a.pendUpd = auth, cmd.P1 == sam.ProfileKPEUpdate
	return ext, cardsim.SWOK
}

// cardAuthComplete: data E.IC ‖ M.IC → KS_enc ‖ KS_mac ‖ SSC.
func (a *Applet) cardAuthComplete(cmd cardsim.Command) ([]byte, cardsim.SW) {
	auth, upd := a.pending, a.pendUpd
	a.pending, a.pendUpd = nil, false // single use
	if auth == nil || upd != (cmd.P1 == sam.ProfileKPEUpdate) {
		return nil, cardsim.SWConditionsNotSatisfied
	}
	keys, err := auth.FinishKeys(cmd.Data)
	if err != nil {
		return nil, cardsim.SWVerificationFailed
	}
	return keys.Bytes(), cardsim.SWOK
}

func (a *Applet) selectFile(cmd cardsim.Command) ([]byte, cardsim.SW) {
	a.topup = nil // any SELECT empties the top-up slot
	switch {
	case cmd.P1 == apdu.SelectByName && bytes.Equal(cmd.Data, sam.AID):
		a.selected, a.ef = true, 0
		return nil, cardsim.SWOK
	case cmd.P1 == apdu.SelectByName:
		return nil, cardsim.SWFileNotFound
	case a.selected && len(cmd.Data) == 2 && binary.BigEndian.Uint16(cmd.Data) == sam.FIDCert:
		a.ef = sam.FIDCert
		return nil, cardsim.SWOK
	}
	return nil, cardsim.SWFileNotFound
}

func (a *Applet) info() []byte {
	in := sam.Info{Serial: a.cfg.Serial, State: sam.Inactive, TriesLeft: a.st.Tries, Counter: a.st.Counter}
	switch {
	case a.st.Tries == 0:
		in.State = sam.Blocked
	case a.st.Active:
		in.State = sam.Active
	}
	return in.Encode()
}

func (a *Applet) activate(cmd cardsim.Command) ([]byte, cardsim.SW) {
	if cmd.P1 != sam.ActivateTerminal && cmd.P1 != sam.ActivateKTPel {
		return nil, cardsim.SWIncorrectP1P2
	}
	if a.st.Tries == 0 {
		return nil, cardsim.SWAuthenticationBlocked
	}
	ok := false
	if cmd.P1 == sam.ActivateTerminal {
		ok = subtle.ConstantTimeCompare(cmd.Data, a.cfg.ActivationCode) == 1
	} else {
		if !a.st.Active {
			return nil, cardsim.SWSecurityStatusNotSatisfied // the terminal activation comes first
		}
		if len(a.cfg.KTPSecret1) == 0 || len(a.cfg.KTPSecret2) == 0 {
			return nil, cardsim.SWReferencedDataNotFound
		}
		s1, s2, err := sam.ParsePair(cmd.Data)
		if err != nil {
			return nil, cardsim.SWWrongData
		}
		// Both compared, always: no early exit that would time one secret.
		m1 := subtle.ConstantTimeCompare(s1, a.cfg.KTPSecret1)
		m2 := subtle.ConstantTimeCompare(s2, a.cfg.KTPSecret2)
		ok = m1&m2 == 1
	}
	if ok {
		next := a.st
		next.Tries = a.cfg.MaxTries
		if cmd.P1 == sam.ActivateTerminal {
			next.Active = true
		} else {
			next.KTPActive = true
		}
		if err := a.persist(next); err != nil {
			return nil, cardsim.SWMemoryFailure
		}
		return nil, cardsim.SWOK
	}
	next := a.st
	next.Tries--
	if err := a.persist(next); err != nil {
		return nil, cardsim.SWMemoryFailure
	}
	if next.Tries == 0 {
		return nil, cardsim.SWAuthenticationBlocked
	}
	return nil, cardsim.SWTriesLeft(next.Tries)
}

func (a *Applet) signRecord(cmd cardsim.Command) ([]byte, cardsim.SW) {
	if len(cmd.Data) != sam.DigestLen {
		return nil, cardsim.SWWrongLength
	}
	if a.st.Counter == ^uint32(0) {
		return nil, cardsim.SWConditionsNotSatisfied // end of life
	}
	next := a.st
	next.Counter++
	// Persist the new counter before anything leaves the SAM: a value that
	// was ever answered is on disk, so a restart cannot issue it again.
	if err := a.persist(next); err != nil {
		return nil, cardsim.SWMemoryFailure
	}
	h := sha256.Sum256(sam.SignedMessage([sam.DigestLen]byte(cmd.Data), next.Counter, a.cfg.Serial))
	r, s, err := ecdsa.Sign(rand.Reader, a.cfg.Key, h[:])
	if err != nil {
		return nil, cardsim.SWUnknown
	}
	out, err := sam.Signature{Counter: next.Counter, R: r, S: s}.Bytes()
	if err != nil {
		return nil, cardsim.SWUnknown
	}
	return out, cardsim.SWOK
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
