package kpe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"kpe-agent/apdu"
	"kpe-agent/internal/purse"
)

// The purse, Dompet Elektronik (docs/card-profiles.md §2.8): a stored
// value on the card in the manner of EN 1546 / CEPAS. The card keeps a
// balance, a purse transaction counter (PTC) that every DEBIT and CREDIT
// moves by one, a maximum balance and a cyclic log of the last
// PurseLogSize transactions. DEBIT and CREDIT are plain (CLA 80): the
// SAM's MAC over the card's current PTC authorises exactly one
// transaction, and the card's MAC over the new PTC and balance proves it.

// Instructions of the purse commands (CLA 80, plain). None of them is an
// instruction the KPE applet already knows (CA GET DATA, 54/56 renewal,
// D6, A4, B0, 21, 82, 84), and none is 6X or 9X (ISO/IEC 7816-3).
const (
	InsPurseDebit  byte = 0x50 // DEBIT (80 50 00 00 20 data 10)
	InsPurseCredit byte = 0x52 // CREDIT (80 52 00 00 20 data 10)
	InsReadPurse   byte = 0x5A // READ PURSE (80 5A 00 00 0C)
	InsReadLog     byte = 0x5C // READ LOG (80 5C n 00 29), n = 1 the newest .. PurseLogSize
)

// Sizes of the purse's values.
const (
	PurseLogSize      = 10 // records in the cyclic log
	PurseStateLen     = 12 // READ PURSE: balance (4) ‖ PTC (4) ‖ max balance (4)
	PurseMACLen       = 8  // MAC_SAM and MAC_card
	PurseCommandLen   = 32 // DEBIT/CREDIT data: amount 4, SAM serial 8, SAM txn 4, time 8, MAC_SAM 8
	PurseAnswerLen    = 16 // DEBIT/CREDIT answer: balance 4, PTC 4, MAC_card 8
	PurseLogRecordLen = 41 // type 1, amount 4, balance 4, PTC 4, SAM serial 8, SAM txn 4, time 8, MAC_card 8
	DefaultMaxBalance = 2_000_000
)

// PurseKind is a purse transaction's type: its log byte and the P1 of the
// SAM's PURSE MAC and PURSE PROOF (internal/purse.Kind, which the back
// office and the records share).
type PurseKind = purse.Kind

// Purse transaction types.
const (
	PurseDebit  = purse.Debit
	PurseCredit = purse.Credit
)

// purseIns is the card instruction of kind.
func purseIns(kind PurseKind) byte {
	if kind == PurseCredit {
		return InsPurseCredit
	}
	return InsPurseDebit
}

// Errors of the purse.
var (
	// ErrNoPurse: the card has no purse (it answered a purse command with
	// 6D00, 6A88 or 6E00).
	ErrNoPurse = errors.New("kpe: the card has no purse")
	// ErrNoPurseKey: the SAM holds no debit (or credit) master (6A88).
	ErrNoPurseKey = errors.New("kpe: the SAM holds no purse key for this transaction")
	// ErrPurseMAC: the card refused the SAM's MAC (6982); nothing changed.
	ErrPurseMAC = errors.New("kpe: the card refused the purse MAC")
	// ErrInsufficientFunds: DEBIT of more than the balance (6985).
	ErrInsufficientFunds = errors.New("kpe: insufficient funds on the card")
	// ErrOverMaxBalance: CREDIT beyond the card's maximum balance (6985).
	ErrOverMaxBalance = errors.New("kpe: credit beyond the card's maximum balance")
	// ErrPurseExhausted: the PTC reached its end (6A84); the purse takes
	// no more transactions.
	ErrPurseExhausted = errors.New("kpe: purse transaction counter exhausted")
	// ErrProof: the card's proof does not verify (the SAM answered 6300),
	// or its answer does not match the transaction asked for.
	ErrProof = errors.New("kpe: the card's purse proof does not verify")
	// ErrPurseFormat: a malformed purse answer or command data.
	ErrPurseFormat = errors.New("kpe: malformed purse data")
)

// DerivePurseKey computes a card's debit or credit key from the debit or
// credit master and its serial (internal/purse.DeriveKey):
// K_debit = KDF108(K_DM, "KPE purse debit", serial),
// K_credit = KDF108(K_CM, "KPE purse credit", serial).
func DerivePurseKey(kind PurseKind, master []byte, serial [8]byte) ([]byte, error) {
	if !kind.Valid() {
		return nil, fmt.Errorf("%w: purse kind %d", ErrPurseFormat, byte(kind))
	}
	k, err := purse.DeriveKey(kind, master, serial)
	if err != nil {
		return nil, fmt.Errorf("kpe: %w", err)
	}
	return k, nil
}

// PurseOrder is what the SAM authorises: MAC_SAM = CMAC(K, 'S' ‖ kind ‖
// card serial ‖ PTC ‖ amount ‖ SAM serial ‖ SAM txn no ‖ time)[:8], with
// PTC the card's current counter and Time in Unix milliseconds.
type PurseOrder struct {
	Kind       PurseKind
	CardSerial [8]byte
	PTC        uint32
	Amount     uint32
	Time       int64
}

// PurseMACInput is the message of MAC_SAM (internal/purse.OrderInput).
func PurseMACInput(o PurseOrder, samSerial [8]byte, samTxn uint32) []byte {
	return purse.OrderInput(purse.Order{Kind: o.Kind, CardSerial: o.CardSerial, PTC: o.PTC, Amount: o.Amount, Time: o.Time}, samSerial, samTxn)
}

// PurseProof is what the card's MAC covers: MAC_card = CMAC(K, 'C' ‖
// kind ‖ card serial ‖ new PTC ‖ amount ‖ new balance ‖ SAM serial ‖ SAM
// txn no)[:8].
type PurseProof struct {
	Kind       PurseKind
	CardSerial [8]byte
	PTC        uint32 // after the transaction
	Amount     uint32
	Balance    uint32 // after the transaction
	SAMSerial  [8]byte
	SAMTxn     uint32
	MAC        [PurseMACLen]byte
}

// Proof is p as internal/purse has it.
func (p PurseProof) Proof() purse.Proof {
	return purse.Proof{Kind: p.Kind, CardSerial: p.CardSerial, PTC: p.PTC, Amount: p.Amount, Balance: p.Balance,
		SAMSerial: p.SAMSerial, SAMTxn: p.SAMTxn, MAC: p.MAC}
}

// ProofInput is the message of MAC_card (internal/purse.Proof.Input).
func (p PurseProof) ProofInput() []byte { return p.Proof().Input() }

// PurseMAC is CMAC(key, msg) truncated to 8 bytes (AES-128 key;
// internal/purse.MAC).
func PurseMAC(key, msg []byte) ([PurseMACLen]byte, error) {
	m, err := purse.MAC(key, msg)
	if err != nil {
		return m, fmt.Errorf("kpe: %w", err)
	}
	return m, nil
}

// PurseMACEqual compares two MACs in constant time.
func PurseMACEqual(a, b [PurseMACLen]byte) bool { return purse.MACEqual(a, b) }

// PurseState is READ PURSE's answer.
type PurseState struct {
	Balance    uint32
	PTC        uint32
	MaxBalance uint32
}

// Encode returns balance ‖ PTC ‖ max balance (big-endian).
func (s PurseState) Encode() []byte {
	b := binary.BigEndian.AppendUint32(nil, s.Balance)
	b = binary.BigEndian.AppendUint32(b, s.PTC)
	return binary.BigEndian.AppendUint32(b, s.MaxBalance)
}

// ParsePurseState parses READ PURSE's answer strictly (12 bytes, balance
// not above the maximum); anything else wraps ErrPurseFormat.
func ParsePurseState(b []byte) (PurseState, error) {
	if len(b) != PurseStateLen {
		return PurseState{}, fmt.Errorf("%w: purse state of %d bytes, want %d", ErrPurseFormat, len(b), PurseStateLen)
	}
	s := PurseState{Balance: binary.BigEndian.Uint32(b), PTC: binary.BigEndian.Uint32(b[4:]), MaxBalance: binary.BigEndian.Uint32(b[8:])}
	if s.Balance > s.MaxBalance {
		return PurseState{}, fmt.Errorf("%w: balance %d above the maximum %d", ErrPurseFormat, s.Balance, s.MaxBalance)
	}
	return s, nil
}

// PurseCommand is DEBIT's or CREDIT's data.
type PurseCommand struct {
	Amount    uint32
	SAMSerial [8]byte
	SAMTxn    uint32
	Time      int64 // Unix milliseconds, as the terminal said
	MAC       [PurseMACLen]byte
}

// Encode returns amount ‖ SAM serial ‖ SAM txn ‖ time ‖ MAC_SAM.
func (c PurseCommand) Encode() []byte {
	b := make([]byte, 0, PurseCommandLen)
	b = binary.BigEndian.AppendUint32(b, c.Amount)
	b = append(b, c.SAMSerial[:]...)
	b = binary.BigEndian.AppendUint32(b, c.SAMTxn)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Time))
	return append(b, c.MAC[:]...)
}

// ParsePurseCommand parses DEBIT's or CREDIT's data strictly: exactly
// PurseCommandLen bytes and an amount above zero (errors wrap
// ErrPurseFormat).
func ParsePurseCommand(b []byte) (PurseCommand, error) {
	if len(b) != PurseCommandLen {
		return PurseCommand{}, fmt.Errorf("%w: purse command of %d bytes, want %d", ErrPurseFormat, len(b), PurseCommandLen)
	}
	c := PurseCommand{Amount: binary.BigEndian.Uint32(b), SAMSerial: [8]byte(b[4:12]), SAMTxn: binary.BigEndian.Uint32(b[12:]),
		Time: int64(binary.BigEndian.Uint64(b[16:])), MAC: [PurseMACLen]byte(b[24:])}
	if c.Amount == 0 {
		return PurseCommand{}, fmt.Errorf("%w: amount 0", ErrPurseFormat)
	}
	return c, nil
}

// PurseAnswer is DEBIT's or CREDIT's answer.
type PurseAnswer struct {
	Balance uint32
	PTC     uint32
	MAC     [PurseMACLen]byte
}

// Encode returns new balance ‖ new PTC ‖ MAC_card.
func (a PurseAnswer) Encode() []byte {
	b := binary.BigEndian.AppendUint32(nil, a.Balance)
	b = binary.BigEndian.AppendUint32(b, a.PTC)
	return append(b, a.MAC[:]...)
}

// ParsePurseAnswer parses DEBIT's or CREDIT's answer (16 bytes).
func ParsePurseAnswer(b []byte) (PurseAnswer, error) {
	if len(b) != PurseAnswerLen {
		return PurseAnswer{}, fmt.Errorf("%w: purse answer of %d bytes, want %d", ErrPurseFormat, len(b), PurseAnswerLen)
	}
	return PurseAnswer{Balance: binary.BigEndian.Uint32(b), PTC: binary.BigEndian.Uint32(b[4:]), MAC: [PurseMACLen]byte(b[8:])}, nil
}

// PurseLogEntry is one record of the card's log.
type PurseLogEntry struct {
	Kind      PurseKind
	Amount    uint32
	Balance   uint32 // after
	PTC       uint32 // after
	SAMSerial [8]byte
	SAMTxn    uint32
	Time      int64 // Unix milliseconds
	MAC       [PurseMACLen]byte
}

// Encode returns the 41-byte record.
func (e PurseLogEntry) Encode() []byte {
	b := make([]byte, 0, PurseLogRecordLen)
	b = append(b, byte(e.Kind))
	b = binary.BigEndian.AppendUint32(b, e.Amount)
	b = binary.BigEndian.AppendUint32(b, e.Balance)
	b = binary.BigEndian.AppendUint32(b, e.PTC)
	b = append(b, e.SAMSerial[:]...)
	b = binary.BigEndian.AppendUint32(b, e.SAMTxn)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time))
	return append(b, e.MAC[:]...)
}

// ParsePurseLogRecord parses one READ LOG record strictly (41 bytes, a
// known type, amount above zero, PTC above zero).
func ParsePurseLogRecord(b []byte) (PurseLogEntry, error) {
	if len(b) != PurseLogRecordLen {
		return PurseLogEntry{}, fmt.Errorf("%w: log record of %d bytes, want %d", ErrPurseFormat, len(b), PurseLogRecordLen)
	}
	e := PurseLogEntry{Kind: PurseKind(b[0]), Amount: binary.BigEndian.Uint32(b[1:]), Balance: binary.BigEndian.Uint32(b[5:]),
		PTC: binary.BigEndian.Uint32(b[9:]), SAMSerial: [8]byte(b[13:21]), SAMTxn: binary.BigEndian.Uint32(b[21:]),
		Time: int64(binary.BigEndian.Uint64(b[25:])), MAC: [PurseMACLen]byte(b[33:])}
	if !e.Kind.Valid() || e.Amount == 0 || e.PTC == 0 {
		return PurseLogEntry{}, fmt.Errorf("%w: log record type %d, amount %d, PTC %d", ErrPurseFormat, b[0], e.Amount, e.PTC)
	}
	return e, nil
}

// Proof returns the card proof the entry records, for PURSE PROOF.
func (e PurseLogEntry) Proof(cardSerial [8]byte) PurseProof {
	return PurseProof{Kind: e.Kind, CardSerial: cardSerial, PTC: e.PTC, Amount: e.Amount, Balance: e.Balance,
		SAMSerial: e.SAMSerial, SAMTxn: e.SAMTxn, MAC: e.MAC}
}

// FindInLog returns the entry a SAM transaction made, if the log holds it:
// how a torn DEBIT or CREDIT is resolved (found: done; not found while
// the PTC has not moved past the log's reach: not done).
func FindInLog(log []PurseLogEntry, samSerial [8]byte, samTxn uint32) (PurseLogEntry, bool) {
	for _, e := range log {
		if e.SAMSerial == samSerial && e.SAMTxn == samTxn {
			return e, true
		}
	}
	return PurseLogEntry{}, false
}

// PurseSAM is the SAM's part of the purse (sam.SAM implements it).
type PurseSAM interface {
	// PurseMAC authorises order; it returns the SAM's serial, its new
	// purse transaction number (persisted before it answers) and MAC_SAM.
	PurseMAC(ctx context.Context, o PurseOrder) (samSerial [8]byte, samTxn uint32, mac [PurseMACLen]byte, err error)
	// VerifyPurseProof checks a card's MAC; a proof that does not verify
	// gives an error wrapping ErrProof.
	VerifyPurseProof(ctx context.Context, p PurseProof) error
}

func readPurseCommand() apdu.Command {
	return apdu.Command{CLA: CLAProprietary, INS: InsReadPurse, Ne: PurseStateLen}
}

func readLogCommand(n int) apdu.Command {
	return apdu.Command{CLA: CLAProprietary, INS: InsReadLog, P1: byte(n), Ne: PurseLogRecordLen}
}

func purseCommand(kind PurseKind, c PurseCommand) apdu.Command {
	return apdu.Command{CLA: CLAProprietary, INS: purseIns(kind), Data: c.Encode(), Ne: PurseAnswerLen}
}

// noPurse maps a card that does not know the purse commands to ErrNoPurse.
func noPurse(err error) error {
	if errors.Is(err, apdu.ErrINSNotSupported) || errors.Is(err, apdu.ErrReferenceNotFound) || errors.Is(err, apdu.ErrCLANotSupported) {
		return fmt.Errorf("%w: %w", ErrNoPurse, err)
	}
	return err
}

// ReadPurse selects the application aid (nil: DefaultAID) and reads the
// purse's balance, PTC and maximum balance.
func ReadPurse(ctx context.Context, t apdu.Transmitter, aid []byte) (PurseState, error) {
	c, err := purseClient(ctx, t, aid)
	if err != nil {
		return PurseState{}, err
	}
	return readPurse(ctx, c)
}

func purseClient(ctx context.Context, t apdu.Transmitter, aid []byte) (*apdu.Client, error) {
	if aid == nil {
		aid = DefaultAID
	}
	c := apdu.NewClient(t, apdu.Limits{})
	if err := selectApplication(ctx, c, aid); err != nil {
		return nil, err
	}
	return c, nil
}

func readPurse(ctx context.Context, c *apdu.Client) (PurseState, error) {
	b, err := c.Send(ctx, readPurseCommand())
	if err != nil {
		return PurseState{}, fmt.Errorf("kpe: read purse: %w", noPurse(err))
	}
	return ParsePurseState(b)
}

// ReadPurseLog selects the application and reads the log, newest first
// (READ LOG 1, 2, ... until the card answers 6A83: fewer than
// PurseLogSize transactions so far).
func ReadPurseLog(ctx context.Context, t apdu.Transmitter, aid []byte) ([]PurseLogEntry, error) {
	c, err := purseClient(ctx, t, aid)
	if err != nil {
		return nil, err
	}
	return readPurseLog(ctx, c)
}

func readPurseLog(ctx context.Context, c *apdu.Client) ([]PurseLogEntry, error) {
	var log []PurseLogEntry
	for n := 1; n <= PurseLogSize; n++ {
		b, err := c.Send(ctx, readLogCommand(n))
		if errors.Is(err, apdu.ErrRecordNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("kpe: read purse log record %d: %w", n, noPurse(err))
		}
		e, err := ParsePurseLogRecord(b)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", n, err)
		}
		if len(log) > 0 && e.PTC >= log[len(log)-1].PTC {
			return nil, fmt.Errorf("%w: log record %d has PTC %d after %d", ErrPurseFormat, n, e.PTC, log[len(log)-1].PTC)
		}
		log = append(log, e)
	}
	return log, nil
}

// PurseResult is a verified DEBIT or CREDIT.
type PurseResult struct {
	Proof PurseProof // the card's proof, verified by the SAM: new PTC and balance, SAM serial and txn no
	Time  int64      // Unix milliseconds, as sent
}

// PurseError is the error of Debit and Credit. Sent tells that DEBIT or
// CREDIT was transmitted to the card: whatever came back (a transport
// error, the card gone, a status word: its refusals ErrInsufficientFunds,
// ErrPurseMAC, ... are wrapped, but a status word may be a GET
// RESPONSE's after the card executed the command), the outcome is known
// only from ResolvePurse or FindInLog on the card's log; SAMSerial and
// SAMTxn name the transaction to look for. Sent false: the command never
// left the terminal (the purse unreadable, the SAM failed).
type PurseError struct {
	Sent      bool
	SAMSerial [8]byte
	SAMTxn    uint32
	Err       error
}

func (e *PurseError) Error() string {
	if e.Sent {
		return fmt.Sprintf("kpe: purse transaction %X/%d: %v", e.SAMSerial, e.SAMTxn, e.Err)
	}
	return fmt.Sprintf("kpe: purse transaction: %v", e.Err)
}
func (e *PurseError) Unwrap() error { return e.Err }

// Debit takes amount rupiah from the card's purse (serial: the card's
// serial, from EF.CardInfo) with the SAM's authorisation, at time at, and
// returns the card's proof after the SAM verified it. Errors are
// *PurseError wrapping ErrInsufficientFunds, ErrPurseMAC, ErrProof, ...
func Debit(ctx context.Context, t apdu.Transmitter, s PurseSAM, serial [8]byte, amount uint32, at time.Time) (PurseResult, error) {
	return purseTransaction(ctx, t, s, PurseDebit, serial, amount, at)
}

// Credit adds amount rupiah to the card's purse, as Debit; a credit beyond
// the maximum balance gives ErrOverMaxBalance.
func Credit(ctx context.Context, t apdu.Transmitter, s PurseSAM, serial [8]byte, amount uint32, at time.Time) (PurseResult, error) {
	return purseTransaction(ctx, t, s, PurseCredit, serial, amount, at)
}

func purseTransaction(ctx context.Context, t apdu.Transmitter, s PurseSAM, kind PurseKind, serial [8]byte, amount uint32, at time.Time) (PurseResult, error) {
	fail := func(err error) (PurseResult, error) { return PurseResult{}, &PurseError{Err: err} }
	if amount == 0 {
		return fail(fmt.Errorf("%w: amount 0", apdu.ErrInvalidCommand))
	}
	c, err := purseClient(ctx, t, nil)
	if err != nil {
		return fail(err)
	}
	st, err := readPurse(ctx, c)
	if err != nil {
		return fail(err)
	}
	order := PurseOrder{Kind: kind, CardSerial: serial, PTC: st.PTC, Amount: amount, Time: at.UnixMilli()}
	samSerial, samTxn, mac, err := s.PurseMAC(ctx, order)
	if err != nil {
		return fail(fmt.Errorf("SAM: %w", err))
	}
	pe := &PurseError{Sent: true, SAMSerial: samSerial, SAMTxn: samTxn}
	b, err := c.Send(ctx, purseCommand(kind, PurseCommand{Amount: amount, SAMSerial: samSerial, SAMTxn: samTxn, Time: order.Time, MAC: mac}))
	var se *apdu.StatusError
	if errors.As(err, &se) {
		// A status word: the card refused it, as far as the answer goes.
		// Sent stays true: the status may be a GET RESPONSE's after a
		// 61xx (the card executed the command), or the card's answer to
		// a re-sent command after a 6Cxx, so only the card's log tells
		// whether it took the transaction.
		switch {
		case errors.Is(err, apdu.ErrSecurityStatusNotSatisfied):
			pe.Err = fmt.Errorf("%w: %w", ErrPurseMAC, err)
		case errors.Is(err, apdu.ErrConditionsNotSatisfied) && kind == PurseDebit:
			pe.Err = fmt.Errorf("%w: %w", ErrInsufficientFunds, err)
		case errors.Is(err, apdu.ErrConditionsNotSatisfied):
			pe.Err = fmt.Errorf("%w: %w", ErrOverMaxBalance, err)
		case errors.Is(err, apdu.ErrNotEnoughMemory):
			pe.Err = fmt.Errorf("%w: %w", ErrPurseExhausted, err)
		default:
			pe.Err = fmt.Errorf("%s: %w", kind, noPurse(err))
		}
		return PurseResult{}, pe
	}
	if err != nil {
		pe.Err = fmt.Errorf("%s: %w", kind, err) // outcome unknown: resolve from the log
		return PurseResult{}, pe
	}
	ans, err := ParsePurseAnswer(b)
	if err != nil {
		pe.Err = err
		return PurseResult{}, pe
	}
	want := st.Balance - amount
	if kind == PurseCredit {
		want = st.Balance + amount
	}
	if ans.PTC != st.PTC+1 || ans.Balance != want {
		pe.Err = fmt.Errorf("%w: card answered PTC %d balance %d, want %d and %d", ErrProof, ans.PTC, ans.Balance, st.PTC+1, want)
		return PurseResult{}, pe
	}
	proof := PurseProof{Kind: kind, CardSerial: serial, PTC: ans.PTC, Amount: amount, Balance: ans.Balance,
		SAMSerial: samSerial, SAMTxn: samTxn, MAC: ans.MAC}
	if err := s.VerifyPurseProof(ctx, proof); err != nil {
		pe.Err = err
		return PurseResult{}, pe
	}
	return PurseResult{Proof: proof, Time: order.Time}, nil
}

// ResolvePurse settles a torn transaction (a *PurseError with Sent): it
// reads the card's log and looks for the SAM's transaction. Found, the
// entry's proof is verified by the SAM and returned with done true; not
// found, done is false: the card did not take it, since a log entry is
// written in the same atomic step as the balance (a transaction older
// than the log's PurseLogSize entries cannot be told apart this way:
// resolve before the card makes that many more).
func ResolvePurse(ctx context.Context, t apdu.Transmitter, s PurseSAM, serial [8]byte, samSerial [8]byte, samTxn uint32) (PurseLogEntry, bool, error) {
	log, err := ReadPurseLog(ctx, t, nil)
	if err != nil {
		return PurseLogEntry{}, false, err
	}
	e, ok := FindInLog(log, samSerial, samTxn)
	if !ok {
		return PurseLogEntry{}, false, nil
	}
	if err := s.VerifyPurseProof(ctx, e.Proof(serial)); err != nil {
		return PurseLogEntry{}, false, err
	}
	return e, true, nil
}
