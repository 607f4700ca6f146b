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
	// (a contactless chip; the lab's reader passes it through).
	UID []byte
	// Suite is the mutual authentication (default kpe.Suite, AES-128).
	Suite sm.Suite
	Keys  kpe.CardKeys
	// Files are the EF contents by FID; Plain lists the EFs readable
	// without secure messaging (default: CardInfo, SOD, BIT).
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
	bio         *bioState
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
	if cfg.Plain == nil {
		cfg.Plain = map[uint16]bool{kpe.FIDCardInfo: true, kpe.FIDSOD: true, kpe.FIDBIT: true}
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
	a := &Applet{cfg: cfg, bio: bio}
	a.Applet = cardsim.Applet{
		Label:  cfg.Name,
		Answer: cfg.ATR,
		FE: cardsim.Frontend{
			Limits:          cardsim.Limits{MaxCommandData: 255, MaxResponseData: cfg.MaxResponse}.WithDefaults(),
			SecureMessaging: true,
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
	a.sess, a.challenge = nil, nil
	if a.bio != nil {
		a.bio.verified, a.bio.chain = false, nil
	}
}

func (a *Applet) handle(cmd cardsim.Command) ([]byte, cardsim.SW) {
	if cmd.CLA&0x0C == 0 {
		return a.dispatch(cmd, false)
	}
	if a.sess == nil {
		return nil, 0x6982
	}
	in, err := a.sess.UnwrapCommand(apdu.Command{CLA: cmd.CLA, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Data: cmd.Data, Ne: cmd.Ne})
	if err != nil {
		a.dropSession()
		if errors.Is(err, sm.ErrMissingDO) {
			return nil, 0x6987
		}
		return nil, 0x6988
	}
	if a.bio != nil && a.bio.chain != nil {
		if in.INS == 0x21 {
			in.Data = append(a.bio.chain, in.Data...)
		}
		a.bio.chain = nil
	}
	data, sw := a.dispatch(cardsim.Command{CLA: in.CLA, INS: in.INS, P1: in.P1, P2: in.P2, Data: in.Data, Ne: in.Ne}, true)
	out, err := a.sess.WrapResponse(apdu.Response{Data: data, SW: uint16(sw)})
	if err != nil {
		a.dropSession()
		return nil, 0x6F00
	}
	return out.Data, sw
}

func (a *Applet) dispatch(cmd cardsim.Command, secure bool) ([]byte, cardsim.SW) {
	switch cmd.INS {
	case 0xA4:
		return a.selectFile(cmd, secure)
	case 0xB0:
		return a.readBinary(cmd, secure)
	case 0x21:
		return a.verify(cmd, secure)
	case 0x84:
		if secure || cmd.P1 != 0 || cmd.P2 != 0 {
			return nil, 0x6A86
		}
		if cmd.Ne != a.cfg.Suite.RndLen {
			return nil, 0x6700
		}
		a.dropSession()
		a.challenge = make([]byte, a.cfg.Suite.RndLen)
		if _, err := io.ReadFull(a.cfg.Rand, a.challenge); err != nil {
			return nil, 0x6F00
		}
		return bytes.Clone(a.challenge), 0x9000
	case 0x82:
		if secure {
			return nil, 0x6985
		}
		if a.challenge == nil || !a.appSelected {
			return nil, 0x6985
		}
		challenge := a.challenge
		a.challenge = nil // single use
		if len(cmd.Data) != a.cfg.Suite.DataLen() {
			return nil, 0x6700
		}
		resp, sess, err := a.cfg.Suite.Respond(a.cfg.Keys, challenge, cmd.Data, a.cfg.Rand)
		if err != nil {
			return nil, 0x6300
		}
		a.sess = sess
		return resp, 0x9000
	}
	return nil, 0x6D00
}

func (a *Applet) selectFile(cmd cardsim.Command, secure bool) ([]byte, cardsim.SW) {
	switch cmd.P1 {
	case 0x04:
		if secure || a.cfg.DF != 0 || !bytes.Equal(cmd.Data, a.cfg.AID) {
			return nil, 0x6A82
		}
		a.dropSession() // selecting the application resets its security state
		a.appSelected, a.ef = true, 0
		if cmd.P2&0x0C == 0x0C {
			return nil, 0x9000
		}
		return append([]byte{0x6F, byte(len(a.cfg.AID) + 2), 0x84, byte(len(a.cfg.AID))}, a.cfg.AID...), 0x9000
	case 0x00, 0x02:
		if a.cfg.DF != 0 && cmd.P1 == 0x00 && len(cmd.Data) == 2 && uint16(cmd.Data[0])<<8|uint16(cmd.Data[1]) == a.cfg.DF {
			if secure {
				return nil, 0x6985
			}
			a.dropSession() // selecting the application resets its security state
			a.appSelected, a.ef = true, 0
			return nil, 0x9000
		}
		if !a.appSelected {
			return nil, 0x6A82
		}
		if len(cmd.Data) != 2 {
			return nil, 0x6700
		}
		fid := uint16(cmd.Data[0])<<8 | uint16(cmd.Data[1])
		content, ok := a.cfg.Files[fid]
		if !ok {
			return nil, 0x6A82
		}
		if !secure && !a.cfg.Plain[fid] {
			return nil, 0x6982
		}
		a.ef = fid
		if cmd.P2&0x0C == 0x0C {
			return nil, 0x9000
		}
		n := len(content)
		return []byte{0x62, 0x08, 0x80, 0x02, byte(n >> 8), byte(n), 0x83, 0x02, cmd.Data[0], cmd.Data[1]}, 0x9000
	}
	return nil, 0x6A86
}

func (a *Applet) readBinary(cmd cardsim.Command, secure bool) ([]byte, cardsim.SW) {
	if a.ef == 0 {
		return nil, 0x6986
	}
	if !secure && !a.cfg.Plain[a.ef] {
		return nil, 0x6982
	}
	if cmd.P1&0x80 != 0 {
		return nil, 0x6A86
	}
	if cmd.Ne == 0 {
		return nil, 0x6700
	}
	content := a.cfg.Files[a.ef]
	off := int(cmd.P1)<<8 | int(cmd.P2)
	if off >= len(content) {
		return nil, 0x6B00
	}
	n := min(cmd.Ne, len(content)-off, a.plainBudget(secure))
	out := content[off : off+n]
	if n < cmd.Ne && off+n == len(content) {
		return bytes.Clone(out), 0x6282 // end of file before Ne bytes
	}
	return bytes.Clone(out), 0x9000
}

// plainBudget is the most plain data that fits the response buffer: under
// secure messaging the answer carries DO'87' (indicator, padding), DO'99'
// and DO'8E' as well.
func (a *Applet) plainBudget(secure bool) int {
	if !secure {
		return a.cfg.MaxResponse
	}
	return MaxPlainUnderSM(a.cfg.MaxResponse, a.cfg.Suite.Cipher)
}

// MaxPlainUnderSM returns the largest plain response that fits a buffer of
// max bytes once wrapped: DO'87' (tag, length up to 3 bytes, indicator,
// data padded to the cipher's block), DO'99' (4) and DO'8E' (10).
func MaxPlainUnderSM(max int, c sm.Cipher) int {
	bs := 16
	if c == sm.TDES || c == sm.TDES3 {
		bs = 8
	}
	room := max - 4 - 10 - 1 - 1 - 3
	return room/bs*bs - 1
}

// Process implements cardsim.Card; a chip with a UID answers the PC/SC
// GET DATA pseudo-APDU FF CA 00 00 itself (on a real contactless reader
// the reader answers it).
func (a *Applet) Process(raw []byte) []byte {
	if a.cfg.UID != nil && len(raw) >= 4 && raw[0] == 0xFF && raw[1] == 0xCA {
		if raw[2] != 0 || raw[3] != 0 {
			return []byte{0x6A, 0x81}
		}
		return append(bytes.Clone(a.cfg.UID), 0x90, 0x00)
	}
	return a.Applet.Process(raw)
}
