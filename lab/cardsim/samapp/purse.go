package samapp

import (
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
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
// before MAC_SAM leaves the SAM, so no number is ever issued twice.
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
	if a.st.PurseTxn == ^uint32(0) {
		return nil, cardsim.SWConditionsNotSatisfied // end of life
	}
	next := a.st
	next.PurseTxn++
	if err := a.persist(next); err != nil {
		return nil, cardsim.SWMemoryFailure
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
