// Package kpeapp is the KPE / KPE Tambahan applet of the card lab
// (docs/card-profiles.md §2): EF.CardInfo, EF.SOD and the BIT group are
// readable in plain; every other data group only inside a secure-messaging
// session opened by mutual authentication with a genuine SAM's keys.
//
// The same applet, with the KTP-el parameters (3DES suite, DF 7F0A selected
// by file identifier, a UID answered to FF CA), plays the KTP-el chip of
// §3; PersonaliseKTPel builds that configuration.
package kpeapp

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sm"
	"kpe-agent/lab/cardsim"
)

// Config personalises one card.
type Config struct {
	Name string
	ATR  []byte
	AID  []byte // default kpe.DefaultAID
	// DF, when set, replaces the AID: the application is the DF selected
	// by this file identifier (KTP-el 7F0A).
	DF uint16
	// UID, when set, is answered to the PC/SC pseudo-APDU FF CA 00 00 00
	// (apdu.GetUIDCommand: a contactless chip; the lab's reader passes it
	// through).
	UID []byte
	// Suite is the mutual authentication (default kpe.Suite, AES-128).
	Suite sm.Suite
	Keys  kpe.CardKeys
	// UpdateKeys are the card's update keys (EXTERNAL AUTHENTICATE with P2
	// kpe.KeyRefUpdate opens an update session, docs/card-profiles.md
	// §2.7); zero: the card has none (6A88) and refuses every update.
	UpdateKeys kpe.CardKeys
	// UpdateSequence and UpdateID are the renewal status of a card that
	// was already renewed (default 0: never).
	UpdateSequence uint32
	UpdateID       [16]byte
	// Purse is the card's purse (docs/card-profiles.md §2.8); nil: the
	// card has none and answers the purse commands 6D00.
	Purse *PurseConfig
	// Files are the EF contents by FID; Plain lists the EFs readable
	// without secure messaging (default: kpe.PlainEFs, that is CardInfo,
	// BIT and SOD).
	Files map[uint16][]byte
	Plain map[uint16]bool
	// MaxResponse is the card's response buffer (default 256).
	MaxResponse int
	Rand        io.Reader
	// Bio enables on-card comparison (VERIFY); nil: no biometric.
	Bio *BioConfig
	// HolderFinger is the holder's synthetic finger on a card without
	// on-card comparison (KTP-el: the templates are read and compared off
	// the card); the lab sensor uses it.
	HolderFinger *FingerRef
}

// Applet implements cardsim.Card.
type Applet struct {
	cardsim.Applet
	cfg Config

	appSelected bool
	ef          uint16
	challenge   []byte
	sess        *sm.Session
	update      bool // sess was opened with the update keys
	bio         *bioState
	upd         updateState
	purse       *purseState
}

// New returns a personalised applet.
func New(cfg Config) (*Applet, error) {
	if cfg.AID == nil {
		cfg.AID = kpe.DefaultAID
	}
	if cfg.ATR == nil {
		cfg.ATR = cardsim.DefaultATR
	}
	if err := cardsim.ValidateATR(cfg.ATR); err != nil {
		return nil, err
	}
	if cfg.Suite == (sm.Suite{}) {
		cfg.Suite = kpe.Suite
	}
	if _, _, err := cfg.Suite.Start(cfg.Keys, make([]byte, cfg.Suite.RndLen), bytes.NewReader(make([]byte, 32))); err != nil {
		return nil, fmt.Errorf("kpeapp: card keys: %w", err)
	}
	if cfg.UpdateKeys.Enc != nil || cfg.UpdateKeys.MAC != nil {
		if _, _, err := cfg.Suite.Start(cfg.UpdateKeys, make([]byte, cfg.Suite.RndLen), bytes.NewReader(make([]byte, 32))); err != nil {
			return nil, fmt.Errorf("kpeapp: update keys: %w", err)
		}
	}
	if cfg.Plain == nil {
		cfg.Plain = PlainSet(kpe.PlainEFs())
	}
	if cfg.MaxResponse == 0 {
		cfg.MaxResponse = 256
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	for fid, b := range cfg.Files {
		if len(b) > 0x7FFF {
			return nil, fmt.Errorf("kpeapp: EF %04X larger than 32767 bytes", fid)
		}
	}
	bio, err := newBioState(cfg.Bio)
	if err != nil {
		return nil, fmt.Errorf("kpeapp: biometric reference: %w", err)
	}
	purse, err := newPurse(cfg.Purse)
	if err != nil {
		return nil, fmt.Errorf("kpeapp: %w", err)
	}
	if purse != nil && cfg.DF != 0 {
		return nil, errors.New("kpeapp: a purse is for KPE cards")
	}
	a := &Applet{cfg: cfg, bio: bio, upd: updateState{seq: cfg.UpdateSequence, id: cfg.UpdateID}, purse: purse}
	a.Applet = cardsim.Applet{
		Label:  cfg.Name,
		Answer: cfg.ATR,
		FE: cardsim.Frontend{
			Limits:          cardsim.Limits{MaxCommandData: 255, MaxResponseData: cfg.MaxResponse}.WithDefaults(),
			SecureMessaging: true,
			// CLA 80/8C: the renewal commands (§2.7).
			ProprietaryClass: cfg.DF == 0,
		},
		Handle:    a.handle,
		OnReset:   a.reset,
		Intercept: a.intercept,
	}
	return a, nil
}

// reset drops the selection, the challenge and the SM session.
func (a *Applet) reset() {
	a.dropSession()
	a.appSelected, a.ef = false, 0
}

func (a *Applet) dropSession() {
	if a.sess != nil {
		a.sess.Close()
	}
	a.sess, a.challenge, a.update = nil, nil, false
	a.upd.staging = nil // an open update transaction is aborted (§2.7)
	if a.bio != nil {
		a.bio.verified, a.bio.chain = false, nil
	}
}

func (a *Applet) handle(cmd cardsim.Command) ([]byte, cardsim.SW) {
	if cmd.CLA&0x0C == 0 {
		return a.dispatch(cmd, false)
	}
	if a.sess == nil {
		return nil, cardsim.SWSecurityStatusNotSatisfied
	}
	in, err := a.sess.UnwrapCommand(apdu.Command{CLA: cmd.CLA, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Data: cmd.Data, Ne: cmd.Ne})
	if err != nil {
		a.dropSession()
		if errors.Is(err, sm.ErrMissingDO) {
			return nil, cardsim.SWSMDataObjectsMissing
		}
		return nil, cardsim.SWSMDataObjectsIncorrect
	}
	if a.bio != nil && a.bio.chain != nil {
		if in.INS == kpe.InsVerifyFinger {
			in.Data = append(a.bio.chain, in.Data...)
		}
		a.bio.chain = nil
	}
	data, sw := a.dispatch(cardsim.Command{CLA: in.CLA, INS: in.INS, P1: in.P1, P2: in.P2, Data: in.Data, Ne: in.Ne}, true)
	out, err := a.sess.WrapResponse(apdu.Response{Data: data, SW: uint16(sw)})
	if err != nil {
		a.dropSession()
		return nil, cardsim.SWUnknown
	}
	return out.Data, sw
}

func (a *Applet) dispatch(cmd cardsim.Command, secure bool) ([]byte, cardsim.SW) {
	if cmd.CLA == kpe.CLAProprietary && isPurseINS(cmd.INS) && a.cfg.DF == 0 {
		return a.purseCommand(cmd, secure)
	}
	if cmd.CLA == kpe.CLAProprietary || cmd.INS == kpe.InsUpdateBinary {
		return a.updateCommand(cmd, secure)
	}
	switch cmd.INS {
	case apdu.InsSelect:
		return a.selectFile(cmd, secure)
	case apdu.InsReadBinary:
		return a.readBinary(cmd, secure)
	case kpe.InsVerifyFinger:
		return a.verify(cmd, secure)
	case apdu.InsGetChallenge:
		if secure || cmd.P1 != 0 || cmd.P2 != 0 {
			return nil, cardsim.SWIncorrectP1P2
		}
		if cmd.Ne != a.cfg.Suite.RndLen {
			return nil, cardsim.SWWrongLength
		}
		a.dropSession()
		a.challenge = make([]byte, a.cfg.Suite.RndLen)
		if _, err := io.ReadFull(a.cfg.Rand, a.challenge); err != nil {
			return nil, cardsim.SWUnknown
		}
		return bytes.Clone(a.challenge), cardsim.SWOK
	case apdu.InsExternalAuthenticate:
		if secure {
			return nil, cardsim.SWConditionsNotSatisfied
		}
		if a.challenge == nil || !a.appSelected {
			return nil, cardsim.SWConditionsNotSatisfied
		}
		challenge := a.challenge
		a.challenge = nil // single use
		keys, update := a.cfg.Keys, false
		switch {
		case cmd.P1 != 0:
			return nil, cardsim.SWIncorrectP1P2
		case cmd.P2 == kpe.KeyRefRead:
		case cmd.P2 == kpe.KeyRefUpdate && a.cfg.DF == 0:
			if a.cfg.UpdateKeys.Enc == nil {
				return nil, cardsim.SWReferencedDataNotFound
			}
			keys, update = a.cfg.UpdateKeys, true
		default:
			return nil, cardsim.SWIncorrectP1P2
		}
		if len(cmd.Data) != a.cfg.Suite.DataLen() {
			return nil, cardsim.SWWrongLength
		}
		resp, sess, err := a.cfg.Suite.Respond(keys, challenge, cmd.Data, a.cfg.Rand)
		if err != nil {
			return nil, cardsim.SWVerificationFailed
		}
		a.sess, a.update = sess, update
		return resp, cardsim.SWOK
	}
	return nil, cardsim.SWINSNotSupported
}

func (a *Applet) selectFile(cmd cardsim.Command, secure bool) ([]byte, cardsim.SW) {
	switch cmd.P1 {
	case apdu.SelectByName:
		if secure || a.cfg.DF != 0 || !bytes.Equal(cmd.Data, a.cfg.AID) {
			return nil, cardsim.SWFileNotFound
		}
		a.dropSession() // selecting the application resets its security state
		a.appSelected, a.ef = true, 0
		if cmd.P2&apdu.SelectNoResponse == apdu.SelectNoResponse {
			return nil, cardsim.SWOK
		}
		return append([]byte{0x6F, byte(len(a.cfg.AID) + 2), 0x84, byte(len(a.cfg.AID))}, a.cfg.AID...), cardsim.SWOK
	case apdu.SelectByFID, apdu.SelectChildEF:
		if a.cfg.DF != 0 && cmd.P1 == apdu.SelectByFID && len(cmd.Data) == 2 && binary.BigEndian.Uint16(cmd.Data) == a.cfg.DF {
			if secure {
				return nil, cardsim.SWConditionsNotSatisfied
			}
			a.dropSession() // selecting the application resets its security state
			a.appSelected, a.ef = true, 0
			return nil, cardsim.SWOK
		}
		if !a.appSelected {
			return nil, cardsim.SWFileNotFound
		}
		if len(cmd.Data) != 2 {
			return nil, cardsim.SWWrongLength
		}
		fid := binary.BigEndian.Uint16(cmd.Data)
		content, ok := a.cfg.Files[fid]
		if !ok {
			return nil, cardsim.SWFileNotFound
		}
		if !secure && !a.cfg.Plain[fid] {
			return nil, cardsim.SWSecurityStatusNotSatisfied
		}
		a.ef = fid
		if cmd.P2&apdu.SelectNoResponse == apdu.SelectNoResponse {
			return nil, cardsim.SWOK
		}
		n := len(content)
		return []byte{0x62, 0x08, 0x80, 0x02, byte(n >> 8), byte(n), 0x83, 0x02, cmd.Data[0], cmd.Data[1]}, cardsim.SWOK
	}
	return nil, cardsim.SWIncorrectP1P2
}

func (a *Applet) readBinary(cmd cardsim.Command, secure bool) ([]byte, cardsim.SW) {
	if a.ef == 0 {
		return nil, cardsim.SWCommandNotAllowedNoEF
	}
	if !secure && !a.cfg.Plain[a.ef] {
		return nil, cardsim.SWSecurityStatusNotSatisfied
	}
	if cmd.P1&0x80 != 0 {
		return nil, cardsim.SWIncorrectP1P2
	}
	if cmd.Ne == 0 {
		return nil, cardsim.SWWrongLength
	}
	content := a.cfg.Files[a.ef]
	off := int(cmd.P1)<<8 | int(cmd.P2)
	if off >= len(content) {
		return nil, cardsim.SWWrongP1P2
	}
	n := min(cmd.Ne, len(content)-off, a.plainBudget(secure))
	out := content[off : off+n]
	if n < cmd.Ne && off+n == len(content) {
		return bytes.Clone(out), cardsim.SWEndOfFile // end of file before Ne bytes
	}
	return bytes.Clone(out), cardsim.SWOK
}

// plainBudget is the most plain data that fits the response buffer: under
// secure messaging the answer carries DO'87' (indicator, padding), DO'99'
// and DO'8E' as well (sm.MaxPlainResponse, which the readers size their
// READ BINARY with).
func (a *Applet) plainBudget(secure bool) int {
	if !secure {
		return a.cfg.MaxResponse
	}
	return sm.MaxPlainResponse(a.cfg.MaxResponse, a.cfg.Suite.Cipher)
}

// PlainSet turns a profile's list of EFs readable without secure
// messaging (kpe.PlainEFs, ktpel.PlainEFs) into Config.Plain.
func PlainSet(fids []uint16) map[uint16]bool {
	m := make(map[uint16]bool, len(fids))
	for _, fid := range fids {
		m[fid] = true
	}
	return m
}

// Process implements cardsim.Card; a chip with a UID answers the PC/SC
// GET DATA pseudo-APDU FF CA 00 00 itself (on a real contactless reader
// the reader answers it).
func (a *Applet) Process(raw []byte) []byte {
	if a.cfg.UID != nil && apdu.IsGetUID(raw) {
		if raw[2] != 0 || raw[3] != 0 {
			return cardsim.SWFunctionNotSupported.Bytes()
		}
		return cardsim.Respond(a.cfg.UID, cardsim.SWOK)
	}
	return a.Applet.Process(raw)
}
