package kpeapp

import (
	"errors"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/internal/sod"
	"kpe-agent/lab/cardsim"
)

// The update transaction of docs/card-profiles.md §2.7, card side. BEGIN
// UPDATE allocates shadow EFs, UPDATE BINARY writes into the shadow of the
// selected EF, COMMIT UPDATE checks the staged EF.SOD against the staged
// and the unchanged groups and then replaces the applet's file map in one
// assignment: the lab does not persist KPE card state (images are
// read-only), so that in-memory switch is the atomic point. A reset, a
// SELECT of the application, a new GET CHALLENGE or a secure-messaging
// error drops the staging (dropSession), as an aborted Java Card
// transaction.

// updateState is the card's renewal state.
type updateState struct {
	seq     uint32   // last committed sequence
	id      [16]byte // last committed update id
	staging *staging // open transaction, nil: none
}

type staging struct {
	begin   kpe.BeginUpdate
	data    map[uint16][]byte
	written map[uint16][]bool
	left    map[uint16]int // bytes not yet written
}

// UpdateStatus returns the card's renewal status (what GET DATA answers).
func (a *Applet) UpdateStatus() kpe.UpdateStatus {
	return kpe.UpdateStatus{Supported: true, Sequence: a.upd.seq, LastID: a.upd.id}
}

// File returns a copy of the current content of EF fid (nil: none), for
// tests and the lab's inspection.
func (a *Applet) File(fid uint16) []byte {
	b, ok := a.cfg.Files[fid]
	if !ok {
		return nil
	}
	return append([]byte{}, b...)
}

func (a *Applet) updateCommand(cmd cardsim.Command, secure bool) ([]byte, cardsim.SW) {
	if a.cfg.DF != 0 {
		return nil, cardsim.SWINSNotSupported
	}
	if cmd.CLA == kpe.CLAProprietary && cmd.INS == apdu.InsGetData {
		if cmd.P1 != kpe.UpdateStatusP1 || cmd.P2 != kpe.UpdateStatusP2 {
			return nil, cardsim.SWReferencedDataNotFound
		}
		if !a.appSelected {
			return nil, cardsim.SWConditionsNotSatisfied
		}
		return kpe.EncodeUpdateStatus(a.upd.seq, a.upd.id), cardsim.SWOK
	}
	if cmd.CLA == kpe.CLAProprietary && cmd.INS != kpe.InsBeginUpdate && cmd.INS != kpe.InsCommitUpdate {
		return nil, cardsim.SWINSNotSupported
	}
	if cmd.CLA != kpe.CLAProprietary && cmd.CLA != apdu.CLAInterindustry {
		return nil, cardsim.SWCLANotSupported
	}
	// Access condition of every update command: SM in an update session.
	if !secure || !a.update {
		return nil, cardsim.SWSecurityStatusNotSatisfied
	}
	switch cmd.INS {
	case kpe.InsBeginUpdate:
		return a.beginUpdate(cmd)
	case kpe.InsCommitUpdate:
		return a.commitUpdate(cmd)
	}
	return a.updateBinary(cmd)
}

func (a *Applet) beginUpdate(cmd cardsim.Command) ([]byte, cardsim.SW) {
	a.upd.staging = nil // any earlier staging is dropped
	if cmd.P1 != 0 || cmd.P2 != 0 {
		return nil, cardsim.SWIncorrectP1P2
	}
	b, err := kpe.ParseBeginUpdate(cmd.Data)
	switch {
	case errors.Is(err, kpe.ErrNotUpdatable):
		return nil, cardsim.SWFileNotFound
	case err != nil:
		return nil, cardsim.SWWrongData
	case b.Sequence <= a.upd.seq:
		return nil, cardsim.SWConditionsNotSatisfied // replayed or older update
	}
	st := &staging{begin: b, data: map[uint16][]byte{}, written: map[uint16][]bool{}, left: map[uint16]int{}}
	for _, ef := range b.EFs {
		st.data[ef.FID] = make([]byte, ef.Size)
		st.written[ef.FID] = make([]bool, ef.Size)
		st.left[ef.FID] = ef.Size
	}
	a.upd.staging = st
	return nil, cardsim.SWOK
}

func (a *Applet) updateBinary(cmd cardsim.Command) ([]byte, cardsim.SW) {
	st := a.upd.staging
	switch {
	case st == nil:
		return nil, cardsim.SWConditionsNotSatisfied // no BEGIN UPDATE
	case a.ef == 0:
		return nil, cardsim.SWCommandNotAllowedNoEF
	case cmd.P1&0x80 != 0:
		return nil, cardsim.SWIncorrectP1P2
	case len(cmd.Data) == 0:
		return nil, cardsim.SWWrongLength
	}
	shadow, ok := st.data[a.ef]
	if !ok {
		return nil, cardsim.SWConditionsNotSatisfied // the selected EF is not in the update
	}
	off := int(cmd.P1)<<8 | int(cmd.P2)
	if off+len(cmd.Data) > len(shadow) {
		return nil, cardsim.SWWrongP1P2
	}
	copy(shadow[off:], cmd.Data)
	w := st.written[a.ef]
	for i := off; i < off+len(cmd.Data); i++ {
		if !w[i] {
			w[i] = true
			st.left[a.ef]--
		}
	}
	return nil, cardsim.SWOK
}

func (a *Applet) commitUpdate(cmd cardsim.Command) ([]byte, cardsim.SW) {
	st := a.upd.staging
	a.upd.staging = nil // COMMIT ends the transaction whatever its outcome
	switch {
	case cmd.P1 != 0 || cmd.P2 != 0:
		return nil, cardsim.SWIncorrectP1P2
	case st == nil:
		return nil, cardsim.SWConditionsNotSatisfied // no BEGIN UPDATE
	}
	for _, left := range st.left {
		if left != 0 {
			return nil, cardsim.SWConditionsNotSatisfied // a staged EF not fully written
		}
	}
	next := make(map[uint16][]byte, len(a.cfg.Files))
	for fid, b := range a.cfg.Files {
		next[fid] = b
	}
	for fid, b := range st.data {
		next[fid] = b
	}
	if !sodMatches(next) {
		return nil, cardsim.SWWrongData
	}
	// The atomic point: one assignment switches every staged EF and EF.SOD.
	a.cfg.Files = next
	a.upd.seq, a.upd.id = st.begin.Sequence, st.begin.ID
	return nil, cardsim.SWOK
}

// sodMatches reports whether files' EF.SOD parses and covers exactly the
// data groups present, each with its SHA-256.
func sodMatches(files map[uint16][]byte) bool {
	so, err := sod.Parse(files[kpe.FIDSOD])
	if err != nil {
		return false
	}
	covered := 0
	for dg := kpe.DGIdentity; dg <= kpe.DGBIT; dg++ {
		fid, _ := kpe.GroupFID(dg)
		content, ok := files[fid]
		if !ok {
			continue
		}
		if so.CheckGroup(dg, content) != nil {
			return false
		}
		covered++
	}
	return covered == len(so.Hashes)
}
