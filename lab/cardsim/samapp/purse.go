package samapp

import (
	"errors"
	"time"

	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
	"kpe-agent/internal/topup"
	"kpe-agent/lab/cardsim"
)

// purseKey checks a purse command's length (dataLen, once P1 and P2 are
// right) and derives the card's debit or credit key (P1) from the SAM's
// master and the card serial the data starts with; 6700 for another
// length, 6A86 for an unknown P1 or P2, 6A88 when the SAM has no master.
func (a *Applet) purseKey(cmd cardsim.Command, dataLen int) ([]byte, cardsim.SW) {
	kind := kpe.PurseKind(cmd.P1)
	if kind.Valid() && cmd.P2 == 0 && len(cmd.Data) != dataLen {
		return nil, cardsim.SWWrongLength
	}
	var serial [8]byte
	if len(cmd.Data) >= 8 {
		serial = [8]byte(cmd.Data[:8])
	}
	if !kind.Valid() || cmd.P2 != 0 {
		return nil, cardsim.SWIncorrectP1P2
	}
	master := a.cfg.DebitMaster
	if kind == kpe.PurseCredit {
		master = a.cfg.CreditMaster
	}
	if len(master) == 0 {
		return nil, cardsim.SWReferencedDataNotFound
	}
	k, err := kpe.DerivePurseKey(kind, master, serial)
	if err != nil {
		return nil, cardsim.SWUnknown
	}
	return k, cardsim.SWOK
}

// purseMAC: PURSE MAC. The next purse transaction number is persisted
// before MAC_SAM leaves the SAM, so no number is ever issued twice. A
// CREDIT needs the slot's authorisation for exactly this order (6984
// otherwise, before any number is consumed), and empties the slot.
func (a *Applet) purseMAC(cmd cardsim.Command) ([]byte, cardsim.SW) {
	key, sw := a.purseKey(cmd, sam.PurseMACDataLen)
	if sw != cardsim.SWOK {
		return nil, sw
	}
	defer clear(key)
	o, err := sam.ParsePurseOrder(kpe.PurseKind(cmd.P1), cmd.Data)
	if err != nil {
		return nil, cardsim.SWWrongData
	}
	if o.Kind == kpe.PurseCredit {
		if sw := a.creditAuthorised(o); sw != cardsim.SWOK {
			return nil, sw
		}
	}
	if a.st.PurseTxn == ^uint32(0) {
		return nil, cardsim.SWConditionsNotSatisfied // end of life
	}
	next := a.st
	next.PurseTxn++
	if err := a.persist(next); err != nil {
		return nil, cardsim.SWMemoryFailure
	}
	if o.Kind == kpe.PurseCredit {
		a.topup = nil // one CREDIT MAC per PURSE AUTHORISE
	}
	mac, err := kpe.PurseMAC(key, kpe.PurseMACInput(o, a.cfg.Serial, next.PurseTxn))
	if err != nil {
		return nil, cardsim.SWUnknown
	}
	return sam.EncodePurseMACAnswer(a.cfg.Serial, next.PurseTxn, mac), cardsim.SWOK
}

// purseProof: PURSE PROOF → 9000 when MAC_card verifies, 6300 when not.
func (a *Applet) purseProof(cmd cardsim.Command) ([]byte, cardsim.SW) {
	key, sw := a.purseKey(cmd, sam.PurseProofDataLen)
	if sw != cardsim.SWOK {
		return nil, sw
	}
	defer clear(key)
	p, err := sam.ParsePurseProof(kpe.PurseKind(cmd.P1), cmd.Data)
	if err != nil {
		return nil, cardsim.SWWrongData
	}
	mac, err := kpe.PurseMAC(key, p.ProofInput())
	if err != nil {
		return nil, cardsim.SWUnknown
	}
	if !kpe.PurseMACEqual(mac, p.MAC) {
		return nil, cardsim.SWVerificationFailed
	}
	return nil, cardsim.SWOK
}

// SWAuthorisationNotUsable is PURSE MAC P1 02's refusal of an order the
// top-up slot does not authorise (6984, reference data not usable).
const SWAuthorisationNotUsable cardsim.SW = 0x6984

// creditAuthorised judges a CREDIT order against the top-up slot: the
// same checks as the terminal's (topup.Verify: the chain to the SAM's
// roots, the signature, the card serial and PTC, the expiry), at the time
// the order states (the SAM has no clock; the MAC covers that time, the
// card logs it and the record carries it), and the same amount.
func (a *Applet) creditAuthorised(o kpe.PurseOrder) cardsim.SW {
	t := a.topup
	if t == nil || a.topupRoots == nil || t.Amount != o.Amount {
		return SWAuthorisationNotUsable
	}
	if err := topup.Verify(t, o.CardSerial, o.PTC, a.topupRoots, time.UnixMilli(o.Time)); err != nil {
		return SWAuthorisationNotUsable
	}
	return cardsim.SWOK
}

// purseAuthorise: PURSE AUTHORISE. The authorisation is parsed strictly
// (6A80) and its signature and chain checked against the SAM's roots
// (topup.VerifySignature: 6A80 for a certificate that does not parse,
// 6300 for anything not signed by a trusted issuer key) at its last
// second of validity: the SAM has no clock, and PURSE MAC checks the
// chain again at the order's time. A refused one empties the slot; a kept
// one replaces what the slot held.
func (a *Applet) purseAuthorise(cmd cardsim.Command) ([]byte, cardsim.SW) {
	if cmd.P1 != 0 || cmd.P2 != 0 {
		return nil, cardsim.SWIncorrectP1P2
	}
	a.topup = nil
	if len(a.cfg.CreditMaster) == 0 {
		return nil, cardsim.SWReferencedDataNotFound
	}
	if a.topupRoots == nil {
		return nil, cardsim.SWConditionsNotSatisfied
	}
	t, err := sam.ParsePurseAuthorise(cmd.Data)
	if err != nil {
		return nil, cardsim.SWWrongData
	}
	switch err := topup.VerifySignature(&t, a.topupRoots, t.NotAfter.Add(-time.Second)); {
	case errors.Is(err, topup.ErrFormat):
		return nil, cardsim.SWWrongData
	case err != nil:
		return nil, cardsim.SWVerificationFailed
	}
	a.topup = &t
	return nil, cardsim.SWOK
}
