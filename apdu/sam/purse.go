package sam

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
)

// The purse commands of the SAM (docs/card-profiles.md §2.8, §4). P1 is
// the transaction type (kpe.PurseDebit 01, kpe.PurseCredit 02); the SAM
// uses the card's debit key, derived from its debit master, or its credit
// key, derived from its credit master. A SAM without that master answers
// 6A88.
const (
	// InsPurseMAC is PURSE MAC: data card serial (8) ‖ PTC (4) ‖ amount (4)
	// ‖ time (8, Unix ms) → SAM serial (8) ‖ SAM purse txn no (4) ‖
	// MAC_SAM (8). The txn no is incremented and persisted before the SAM
	// answers, as the signature counter. A CREDIT (P1 02) is answered only
	// for the order PURSE AUTHORISE authorised (else 6984, no txn no
	// consumed).
	InsPurseMAC byte = 0x44
	// InsPurseProof is PURSE PROOF: data card serial (8) ‖ new PTC (4) ‖
	// amount (4) ‖ new balance (4) ‖ SAM serial (8) ‖ SAM txn no (4) ‖
	// MAC_card (8) → 9000 when MAC_card verifies, 6300 when not.
	InsPurseProof byte = 0x46
)

// Lengths of the purse commands' data and answers.
const (
	PurseMACDataLen   = 8 + 4 + 4 + 8
	PurseMACAnswerLen = SerialLen + 4 + kpe.PurseMACLen
	PurseProofDataLen = 8 + 4 + 4 + 4 + 8 + 4 + kpe.PurseMACLen
)

// EncodePurseOrder is PURSE MAC's data.
func EncodePurseOrder(o kpe.PurseOrder) []byte {
	b := make([]byte, 0, PurseMACDataLen)
	b = append(b, o.CardSerial[:]...)
	b = binary.BigEndian.AppendUint32(b, o.PTC)
	b = binary.BigEndian.AppendUint32(b, o.Amount)
	return binary.BigEndian.AppendUint64(b, uint64(o.Time))
}

// ParsePurseOrder parses PURSE MAC's data for a transaction of kind (P1):
// exactly PurseMACDataLen bytes, a known kind, an amount above zero.
func ParsePurseOrder(kind kpe.PurseKind, b []byte) (kpe.PurseOrder, error) {
	if !kind.Valid() || len(b) != PurseMACDataLen {
		return kpe.PurseOrder{}, fmt.Errorf("%w: PURSE MAC %s with %d bytes", ErrFormat, kind, len(b))
	}
	o := kpe.PurseOrder{Kind: kind, CardSerial: [8]byte(b[:8]), PTC: binary.BigEndian.Uint32(b[8:]),
		Amount: binary.BigEndian.Uint32(b[12:]), Time: int64(binary.BigEndian.Uint64(b[16:]))}
	if o.Amount == 0 {
		return kpe.PurseOrder{}, fmt.Errorf("%w: PURSE MAC amount 0", ErrFormat)
	}
	return o, nil
}

// EncodePurseProof is PURSE PROOF's data.
func EncodePurseProof(p kpe.PurseProof) []byte {
	b := make([]byte, 0, PurseProofDataLen)
	b = append(b, p.CardSerial[:]...)
	b = binary.BigEndian.AppendUint32(b, p.PTC)
	b = binary.BigEndian.AppendUint32(b, p.Amount)
	b = binary.BigEndian.AppendUint32(b, p.Balance)
	b = append(b, p.SAMSerial[:]...)
	b = binary.BigEndian.AppendUint32(b, p.SAMTxn)
	return append(b, p.MAC[:]...)
}

// ParsePurseProof parses PURSE PROOF's data for kind (P1).
func ParsePurseProof(kind kpe.PurseKind, b []byte) (kpe.PurseProof, error) {
	if !kind.Valid() || len(b) != PurseProofDataLen {
		return kpe.PurseProof{}, fmt.Errorf("%w: PURSE PROOF %s with %d bytes", ErrFormat, kind, len(b))
	}
	return kpe.PurseProof{Kind: kind, CardSerial: [8]byte(b[:8]), PTC: binary.BigEndian.Uint32(b[8:]),
		Amount: binary.BigEndian.Uint32(b[12:]), Balance: binary.BigEndian.Uint32(b[16:]), SAMSerial: [8]byte(b[20:28]),
		SAMTxn: binary.BigEndian.Uint32(b[28:]), MAC: [kpe.PurseMACLen]byte(b[32:])}, nil
}

// EncodePurseMACAnswer is PURSE MAC's answer (the lab SAM's side).
func EncodePurseMACAnswer(serial [SerialLen]byte, txn uint32, mac [kpe.PurseMACLen]byte) []byte {
	b := append([]byte{}, serial[:]...)
	b = binary.BigEndian.AppendUint32(b, txn)
	return append(b, mac[:]...)
}

// ParsePurseMACAnswer parses PURSE MAC's answer (20 bytes).
func ParsePurseMACAnswer(b []byte) (serial [SerialLen]byte, txn uint32, mac [kpe.PurseMACLen]byte, err error) {
	if len(b) != PurseMACAnswerLen {
		return serial, 0, mac, fmt.Errorf("%w: PURSE MAC answer of %d bytes, want %d", ErrFormat, len(b), PurseMACAnswerLen)
	}
	return [SerialLen]byte(b[:8]), binary.BigEndian.Uint32(b[8:]), [kpe.PurseMACLen]byte(b[12:]), nil
}

func purseMACCommand(o kpe.PurseOrder) apdu.Command {
	return apdu.Command{CLA: CLA, INS: InsPurseMAC, P1: byte(o.Kind), Data: EncodePurseOrder(o), Ne: PurseMACAnswerLen}
}

func purseProofCommand(p kpe.PurseProof) apdu.Command {
	return apdu.Command{CLA: CLA, INS: InsPurseProof, P1: byte(p.Kind), Data: EncodePurseProof(p)}
}

// noPurseKey maps a SAM without the master (6A88) or the command (6D00)
// to kpe.ErrNoPurseKey.
func noPurseKey(err error) error {
	if errors.Is(err, apdu.ErrReferenceNotFound) || errors.Is(err, apdu.ErrINSNotSupported) {
		return fmt.Errorf("%w: %w", kpe.ErrNoPurseKey, err)
	}
	return mapState(err)
}

// PurseMAC implements kpe.PurseSAM: PURSE MAC authorises one DEBIT or
// CREDIT of the card's current PTC. A CREDIT needs the top-up
// authorisation of exactly this order in the SAM first (PurseAuthorise);
// without one the SAM answers 6984, an error wrapping
// ErrCreditNotAuthorised.
func (s *SAM) PurseMAC(ctx context.Context, o kpe.PurseOrder) ([SerialLen]byte, uint32, [kpe.PurseMACLen]byte, error) {
	if !o.Kind.Valid() || o.Amount == 0 {
		return [8]byte{}, 0, [8]byte{}, fmt.Errorf("%w: purse %s of %d", apdu.ErrInvalidCommand, o.Kind, o.Amount)
	}
	b, err := s.c.Send(ctx, purseMACCommand(o))
	if err != nil {
		return [8]byte{}, 0, [8]byte{}, fmt.Errorf("sam: purse MAC: %w", purseMACError(o.Kind, err))
	}
	return ParsePurseMACAnswer(b)
}

// VerifyPurseProof implements kpe.PurseSAM: PURSE PROOF; 6300 gives an
// error wrapping kpe.ErrProof.
func (s *SAM) VerifyPurseProof(ctx context.Context, p kpe.PurseProof) error {
	if !p.Kind.Valid() {
		return fmt.Errorf("%w: purse %s", apdu.ErrInvalidCommand, p.Kind)
	}
	_, err := s.c.Send(ctx, purseProofCommand(p))
	if errors.Is(err, apdu.ErrVerificationFailed) {
		return fmt.Errorf("%w: %w", kpe.ErrProof, err)
	}
	if err != nil {
		return fmt.Errorf("sam: purse proof: %w", noPurseKey(err))
	}
	return nil
}

var _ kpe.PurseSAM = (*SAM)(nil)
