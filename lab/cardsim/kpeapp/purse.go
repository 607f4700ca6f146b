package kpeapp

import (
	"errors"
	"fmt"

	"kpe-agent/apdu/kpe"
	"kpe-agent/lab/cardsim"
)

// The purse of docs/card-profiles.md §2.8, card side. DEBIT and CREDIT
// check MAC_SAM over the current PTC, then the balance, and then replace
// balance, PTC and the log in one assignment of the purse state: the
// atomic point (as COMMIT UPDATE's, the lab keeps the state in memory;
// images are read-only).

// PurseConfig personalises a card's purse.
type PurseConfig struct {
	// Serial is the card's serial (EF.CardInfo), which the MACs cover.
	Serial [8]byte
	// DebitKey and CreditKey are the card's purse keys
	// (kpe.DerivePurseKey); both are required.
	DebitKey, CreditKey []byte
	// Balance, PTC and MaxBalance start the purse (MaxBalance 0:
	// kpe.DefaultMaxBalance).
	Balance, PTC, MaxBalance uint32
	// Log is the log to start with, newest first (at most
	// kpe.PurseLogSize entries).
	Log []kpe.PurseLogEntry
}

// purseState is the purse's value; it is replaced whole, never mutated.
type purseState struct {
	st  kpe.PurseState
	log []kpe.PurseLogEntry // newest first
}

func newPurse(c *PurseConfig) (*purseState, error) {
	if c == nil {
		return nil, nil
	}
	if len(c.DebitKey) != 16 || len(c.CreditKey) != 16 {
		return nil, errors.New("purse: debit and credit keys of 16 bytes are required")
	}
	max := c.MaxBalance
	if max == 0 {
		max = kpe.DefaultMaxBalance
	}
	if c.Balance > max || len(c.Log) > kpe.PurseLogSize {
		return nil, fmt.Errorf("purse: balance %d over maximum %d, or %d log entries", c.Balance, max, len(c.Log))
	}
	return &purseState{st: kpe.PurseState{Balance: c.Balance, PTC: c.PTC, MaxBalance: max}, log: append([]kpe.PurseLogEntry{}, c.Log...)}, nil
}

// Purse returns the purse's state and log (newest first), for tests.
func (a *Applet) Purse() (kpe.PurseState, []kpe.PurseLogEntry) {
	if a.purse == nil {
		return kpe.PurseState{}, nil
	}
	return a.purse.st, append([]kpe.PurseLogEntry{}, a.purse.log...)
}

func isPurseINS(ins byte) bool {
	switch ins {
	case kpe.InsPurseDebit, kpe.InsPurseCredit, kpe.InsReadPurse, kpe.InsReadLog:
		return true
	}
	return false
}

// purseCommand runs a purse command (CLA 80, plain only).
func (a *Applet) purseCommand(cmd cardsim.Command, secure bool) ([]byte, cardsim.SW) {
	switch {
	case a.purse == nil:
		return nil, cardsim.SWINSNotSupported // a card without a purse
	case secure:
		return nil, cardsim.SWSecureMessagingUnsupported
	case !a.appSelected:
		return nil, cardsim.SWCommandNotAllowedNoEF
	}
	switch cmd.INS {
	case kpe.InsReadPurse:
		if cmd.P1 != 0 || cmd.P2 != 0 {
			return nil, cardsim.SWIncorrectP1P2
		}
		return a.purse.st.Encode(), cardsim.SWOK
	case kpe.InsReadLog:
		n := int(cmd.P1)
		if n < 1 || n > kpe.PurseLogSize || cmd.P2 != 0 {
			return nil, cardsim.SWIncorrectP1P2
		}
		if n > len(a.purse.log) {
			return nil, cardsim.SW(0x6A83) // record not found
		}
		return a.purse.log[n-1].Encode(), cardsim.SWOK
	}
	kind := kpe.PurseDebit
	if cmd.INS == kpe.InsPurseCredit {
		kind = kpe.PurseCredit
	}
	return a.purseTransaction(kind, cmd)
}

func (a *Applet) purseTransaction(kind kpe.PurseKind, cmd cardsim.Command) ([]byte, cardsim.SW) {
	if cmd.P1 != 0 || cmd.P2 != 0 {
		return nil, cardsim.SWIncorrectP1P2
	}
	if len(cmd.Data) != kpe.PurseCommandLen {
		return nil, cardsim.SWWrongLength
	}
	c, err := kpe.ParsePurseCommand(cmd.Data)
	if err != nil {
		return nil, cardsim.SWWrongData
	}
	cur := a.purse
	key := a.cfg.Purse.DebitKey
	if kind == kpe.PurseCredit {
		key = a.cfg.Purse.CreditKey
	}
	order := kpe.PurseOrder{Kind: kind, CardSerial: a.cfg.Purse.Serial, PTC: cur.st.PTC, Amount: c.Amount, Time: c.Time}
	want, err := kpe.PurseMAC(key, kpe.PurseMACInput(order, c.SAMSerial, c.SAMTxn))
	if err != nil {
		return nil, cardsim.SWUnknown
	}
	if !kpe.PurseMACEqual(want, c.MAC) {
		return nil, cardsim.SWSecurityStatusNotSatisfied // 6982: nothing changes
	}
	if cur.st.PTC == ^uint32(0) {
		return nil, cardsim.SWNotEnoughMemory // the purse's counter is at its end
	}
	next := cur.st
	next.PTC++
	switch kind {
	case kpe.PurseDebit:
		if c.Amount > cur.st.Balance {
			return nil, cardsim.SWConditionsNotSatisfied // insufficient funds
		}
		next.Balance -= c.Amount
	case kpe.PurseCredit:
		if uint64(cur.st.Balance)+uint64(c.Amount) > uint64(cur.st.MaxBalance) {
			return nil, cardsim.SWConditionsNotSatisfied // over the maximum balance
		}
		next.Balance += c.Amount
	}
	proof := kpe.PurseProof{Kind: kind, CardSerial: a.cfg.Purse.Serial, PTC: next.PTC, Amount: c.Amount, Balance: next.Balance,
		SAMSerial: c.SAMSerial, SAMTxn: c.SAMTxn}
	if proof.MAC, err = kpe.PurseMAC(key, proof.ProofInput()); err != nil {
		return nil, cardsim.SWUnknown
	}
	entry := kpe.PurseLogEntry{Kind: kind, Amount: c.Amount, Balance: next.Balance, PTC: next.PTC,
		SAMSerial: c.SAMSerial, SAMTxn: c.SAMTxn, Time: c.Time, MAC: proof.MAC}
	log := append([]kpe.PurseLogEntry{entry}, cur.log...)
	if len(log) > kpe.PurseLogSize {
		log = log[:kpe.PurseLogSize]
	}
	// The atomic point: balance, PTC and log change in one assignment.
	a.purse = &purseState{st: next, log: log}
	return kpe.PurseAnswer{Balance: next.Balance, PTC: next.PTC, MAC: proof.MAC}.Encode(), cardsim.SWOK
}
