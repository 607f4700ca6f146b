// Package purse is the purse cryptography that the card side (apdu/kpe,
// the lab applets) and the back office (sync/backoffice) both need
// (docs/card-profiles.md §2.8): the per-card key diversification, the
// 8-byte AES-CMAC and the messages of MAC_SAM and MAC_card, and the purse
// masters file the back office checks card proofs with. It imports
// nothing of apdu or sync, so both may use it.
package purse

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"kpe-agent/internal/cmac"
)

// Kind is a purse transaction's type: the log byte of the card and the P1
// of the SAM's PURSE MAC and PURSE PROOF.
type Kind byte

// Purse transaction kinds.
const (
	Debit  Kind = 0x01
	Credit Kind = 0x02
)

// String returns "debit" or "credit".
func (k Kind) String() string {
	switch k {
	case Debit:
		return "debit"
	case Credit:
		return "credit"
	}
	return fmt.Sprintf("PurseKind(%d)", byte(k))
}

// Valid reports whether k is debit or credit.
func (k Kind) Valid() bool { return k == Debit || k == Credit }

// MACLen is the length of MAC_SAM and MAC_card.
const MACLen = 8

// ErrFormat: a purse value out of its domain (an unknown kind, a key that
// is not AES-128).
var ErrFormat = errors.New("purse: malformed purse data")

// Domain bytes of the two MACs, so that a card's proof is never a SAM's
// authorisation of the same bytes and the other way round.
const (
	domainSAM  byte = 0x53 // 'S': MAC_SAM
	domainCard byte = 0x43 // 'C': MAC_card
)

// DeriveKey computes a card's debit or credit key from the debit or
// credit master and the card serial: NIST SP 800-108 in counter mode with
// AES-CMAC, K_debit = KDF108(K_DM, "KPE purse debit", serial) and
// K_credit = KDF108(K_CM, "KPE purse credit", serial), 16 bytes.
func DeriveKey(kind Kind, master []byte, serial [8]byte) ([]byte, error) {
	var label string
	switch kind {
	case Debit:
		label = "KPE purse debit"
	case Credit:
		label = "KPE purse credit"
	default:
		return nil, fmt.Errorf("%w: purse kind %d", ErrFormat, byte(kind))
	}
	k, err := cmac.KDF108(master, []byte(label), serial[:], 16)
	if err != nil {
		return nil, fmt.Errorf("%w: purse master: %v", ErrFormat, err)
	}
	return k, nil
}

// MAC is AES-CMAC(key, msg) truncated to MACLen bytes; key is an AES-128
// key (a derived card key).
func MAC(key, msg []byte) ([MACLen]byte, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return [MACLen]byte{}, fmt.Errorf("%w: purse key: %v", ErrFormat, err)
	}
	return [MACLen]byte(cmac.Sum(b, msg)), nil
}

// MACEqual compares two MACs in constant time.
func MACEqual(a, b [MACLen]byte) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

// Order is what a SAM authorises: MAC_SAM = CMAC(K, 'S' ‖ kind ‖ card
// serial ‖ PTC ‖ amount ‖ SAM serial ‖ SAM txn no ‖ time)[:8], with PTC
// the card's current counter and Time in Unix milliseconds.
type Order struct {
	Kind       Kind
	CardSerial [8]byte
	PTC        uint32
	Amount     uint32
	Time       int64
}

// OrderInput is the message of MAC_SAM.
func OrderInput(o Order, samSerial [8]byte, samTxn uint32) []byte {
	m := make([]byte, 0, 2+8+4+4+8+4+8)
	m = append(m, domainSAM, byte(o.Kind))
	m = append(m, o.CardSerial[:]...)
	m = binary.BigEndian.AppendUint32(m, o.PTC)
	m = binary.BigEndian.AppendUint32(m, o.Amount)
	m = append(m, samSerial[:]...)
	m = binary.BigEndian.AppendUint32(m, samTxn)
	return binary.BigEndian.AppendUint64(m, uint64(o.Time))
}

// Proof is what the card's MAC covers: MAC_card = CMAC(K, 'C' ‖ kind ‖
// card serial ‖ new PTC ‖ amount ‖ new balance ‖ SAM serial ‖ SAM txn
// no)[:8].
type Proof struct {
	Kind       Kind
	CardSerial [8]byte
	PTC        uint32 // after the transaction
	Amount     uint32
	Balance    uint32 // after the transaction
	SAMSerial  [8]byte
	SAMTxn     uint32
	MAC        [MACLen]byte
}

// Input is the message of MAC_card.
func (p Proof) Input() []byte {
	m := make([]byte, 0, 2+8+4+4+4+8+4)
	m = append(m, domainCard, byte(p.Kind))
	m = append(m, p.CardSerial[:]...)
	m = binary.BigEndian.AppendUint32(m, p.PTC)
	m = binary.BigEndian.AppendUint32(m, p.Amount)
	m = binary.BigEndian.AppendUint32(m, p.Balance)
	m = append(m, p.SAMSerial[:]...)
	return binary.BigEndian.AppendUint32(m, p.SAMTxn)
}

// Sign computes p's MAC_card from the master of p's kind (what a card
// does with its derived key; the lab and tests use it).
func (p Proof) Sign(master []byte) ([MACLen]byte, error) {
	key, err := DeriveKey(p.Kind, master, p.CardSerial)
	if err != nil {
		return [MACLen]byte{}, err
	}
	return MAC(key, p.Input())
}

// Verify reports whether p.MAC is the card's MAC under the master of p's
// kind (the card key diversified from it with p's card serial). An error
// means the check could not be made (an unknown kind, a bad master).
func (p Proof) Verify(master []byte) (bool, error) {
	want, err := p.Sign(master)
	if err != nil {
		return false, err
	}
	return MACEqual(want, p.MAC), nil
}
