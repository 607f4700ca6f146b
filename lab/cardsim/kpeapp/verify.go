package kpeapp

import (
	"log/slog"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/biometric"
	"kpe-agent/lab/cardsim"
)

// BioConfig is the card's on-card comparison (ISO/IEC 7816-11 VERIFY with
// biometric data, docs/card-profiles.md §2.6).
type BioConfig struct {
	// Reference is the enrolled finger as compact-card minutiae. It never
	// leaves the card: no command reads it.
	Reference []byte
	Ref       byte // VERIFY P2 (default kpe.DefaultFingerReference)
	MinN      int  // BIT limits (default kpe.DefaultMinMinutiae .. DefaultMaxMinutiae)
	MaxN      int
	MaxTries  int     // retry counter (default kpe.DefaultFingerTries)
	Tries     int     // current value: 0 means MaxTries, negative means blocked
	Threshold float64 // default biometric.Threshold
	// Finger names the synthetic finger enrolled (lab sensor).
	Finger FingerRef
	Log    *slog.Logger // the form of each VERIFY (7F2E or bare) is logged
}

// FingerRef identifies a synthetic finger of package lab/synth.
type FingerRef struct {
	Seed uint64 `json:"seed"`
	ID   int    `json:"id"`
	Code int    `json:"code"` // ISO finger position
}

type bioState struct {
	cfg      BioConfig
	ref      *biometric.Prepared
	tries    int
	verified bool
	chain    []byte // plain data of SM-chained VERIFY segments
	lastForm string
}

func newBioState(c *BioConfig) (*bioState, error) {
	if c == nil {
		return nil, nil
	}
	cfg := *c
	if cfg.Ref == 0 {
		cfg.Ref = kpe.DefaultFingerReference
	}
	if cfg.MaxN == 0 {
		cfg.MinN, cfg.MaxN = kpe.DefaultMinMinutiae, kpe.DefaultMaxMinutiae
	}
	if cfg.MaxTries == 0 {
		cfg.MaxTries = kpe.DefaultFingerTries
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = biometric.Threshold
	}
	rec, err := biometric.ParseCompact(cfg.Reference)
	if err != nil {
		return nil, err
	}
	ref, err := biometric.Prepare(rec)
	if err != nil {
		return nil, err
	}
	st := &bioState{cfg: cfg, ref: ref, tries: cfg.MaxTries}
	switch {
	case c.Tries < 0:
		st.tries = 0
	case c.Tries > 0:
		st.tries = min(c.Tries, cfg.MaxTries)
	}
	return st, nil
}

// Finger reports which synthetic finger the card holds (for the lab
// sensor), if any.
func (a *Applet) Finger() (FingerRef, bool) {
	switch {
	case a.bio != nil:
		return a.bio.cfg.Finger, true
	case a.cfg.HolderFinger != nil:
		return *a.cfg.HolderFinger, true
	}
	return FingerRef{}, false
}

// SyntheticFinger implements cardsim.FingerHolder.
func (a *Applet) SyntheticFinger() (seed uint64, id, code int, ok bool) {
	f, ok := a.Finger()
	return f.Seed, f.ID, f.Code, ok
}

// LastVerifyForm is "7F2E", "bare" or "" (for tests of the logging).
func (a *Applet) LastVerifyForm() string {
	if a.bio == nil {
		return ""
	}
	return a.bio.lastForm
}

// verify runs VERIFY (kpe.InsVerifyFinger) inside the SM session: empty data asks for
// the retry counter; 9000 match (counter reset), 63Cx no match with x
// tries left, 6983 blocked, 6A80 malformed or outside the BIT limits
// (counter unchanged).
func (a *Applet) verify(cmd cardsim.Command, secure bool) ([]byte, cardsim.SW) {
	b := a.bio
	switch {
	case b == nil:
		return nil, cardsim.SWINSNotSupported
	case !secure:
		return nil, cardsim.SWSecurityStatusNotSatisfied
	case cmd.P1 != kpe.VerifyFingerP1:
		return nil, cardsim.SWIncorrectP1P2
	case cmd.P2 != b.cfg.Ref:
		return nil, cardsim.SWReferencedDataNotFound
	case b.tries == 0:
		return nil, cardsim.SWAuthenticationBlocked
	case len(cmd.Data) == 0:
		if b.verified {
			return nil, cardsim.SWOK
		}
		return nil, cardsim.SWTriesLeft(b.tries)
	}
	data, wrapped, err := biometric.ParseVerifyCommandData(cmd.Data)
	b.lastForm = "bare"
	if wrapped {
		b.lastForm = "7F2E"
	}
	if b.cfg.Log != nil {
		b.cfg.Log.Info("VERIFY data", "form", b.lastForm, "bytes", len(cmd.Data))
	}
	if err != nil {
		return nil, cardsim.SWWrongData
	}
	n := len(data) / 3
	if n < b.cfg.MinN || n > b.cfg.MaxN {
		return nil, cardsim.SWWrongData
	}
	rec, err := biometric.ParseCompact(data)
	if err != nil {
		return nil, cardsim.SWWrongData
	}
	probe, err := biometric.Prepare(rec)
	rec.Wipe()
	if err != nil {
		return nil, cardsim.SWWrongData
	}
	res := biometric.CompareAt(b.ref, probe, b.cfg.Threshold)
	probe.Wipe()
	if res.Match {
		b.tries, b.verified = b.cfg.MaxTries, true
		return nil, cardsim.SWOK
	}
	b.verified = false
	b.tries--
	if b.tries == 0 {
		return nil, cardsim.SWAuthenticationBlocked
	}
	return nil, cardsim.SWTriesLeft(b.tries)
}

// intercept takes SM-protected chained VERIFY segments (CLA 1C): each
// segment is unwrapped on its own, its plain data kept, and a protected
// 9000 returned; the last segment (CLA 0C) then goes the normal way and
// handle prepends the kept data.
func (a *Applet) intercept(raw []byte) ([]byte, bool) {
	if len(raw) < 4 || raw[0]&0x10 == 0 || raw[0]&0x0C != 0x0C || a.bio == nil {
		return nil, false
	}
	cmd, err := cardsim.ParseCommand(raw)
	if err != nil || cmd.INS != kpe.InsVerifyFinger || a.sess == nil {
		return nil, false
	}
	in, err := a.sess.UnwrapCommand(apdu.Command{CLA: cmd.CLA, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Data: cmd.Data, Ne: cmd.Ne})
	if err != nil {
		a.dropSession()
		return cardsim.SWSMDataObjectsIncorrect.Bytes(), true
	}
	if len(a.bio.chain)+len(in.Data) > 4096 {
		a.bio.chain = nil
		return cardsim.SWNotEnoughMemory.Bytes(), true
	}
	a.bio.chain = append(a.bio.chain, in.Data...)
	out, err := a.sess.WrapResponse(apdu.Response{SW: uint16(cardsim.SWOK)})
	if err != nil {
		a.dropSession()
		return cardsim.SWUnknown.Bytes(), true
	}
	return cardsim.Respond(out.Data, cardsim.SWOK), true
}
