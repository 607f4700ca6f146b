package backoffice

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"kpe-agent/internal/purse"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// The purse ledger (docs/ewallet.md, part 4): every accepted record with
// a purse field (a payment is a debit, a top-up a credit) becomes a row
// keyed by card serial and PTC, in the store's Ingest transaction. The
// rows rebuild each purse's shadow balance by PTC, and raise the purse
// alarms. A duplicate record never reaches the ledger (the store answers
// it as a duplicate before), so no transaction is counted twice.

// ProofStatus is what the back office found of a row's card proof.
type ProofStatus string

// Proof statuses. Unchecked: the back office has no purse masters
// (kpe-backoffice without --purse-keys); it never says verified then.
const (
	ProofVerified  ProofStatus = "verified"
	ProofBad       ProofStatus = "bad"
	ProofUnchecked ProofStatus = "unchecked"
)

// The purse alarms, each raised once for its condition.
const (
	// AlarmPurseRepeat: two different records name one card serial and
	// PTC (raised at the second; later ones raise nothing).
	AlarmPurseRepeat = "purse-counter-repeat"
	// AlarmPurseGap: a PTC is missing between two seen, raised at once
	// when the row that opens the gap arrives (a late record fills it:
	// the purse's missing list shows it, the alarm stays to be
	// acknowledged).
	AlarmPurseGap = "purse-counter-gap"
	// AlarmPurseBadProof: a card proof that does not verify under the
	// purse masters.
	AlarmPurseBadProof = "purse-bad-proof"
	// AlarmPurseMismatch: a row's balance after is not the previous
	// PTC's balance after minus the debit (plus the credit).
	AlarmPurseMismatch = "purse-balance-mismatch"
)

var purseAlarmKinds = []string{AlarmPurseRepeat, AlarmPurseGap, AlarmPurseBadProof, AlarmPurseMismatch}

// PurseRow is one ledger row: one purse transaction as one record told
// it. It carries no NIP (the record's subject): the bank sees rows.
type PurseRow struct {
	CardSerial   [8]byte
	PTC          uint32 // after the transaction
	Kind         record.PurseKind
	Amount       uint32
	BalanceAfter uint32
	SAMSerial    [8]byte // the record's SAM: it made MAC_SAM and signed the record
	Counter      uint32  // the record's SAM signature counter
	SAMTxn       uint32
	RecordID     [16]byte
	Code         string
	TerminalID   string
	Merchant     string
	Reference    string
	TxnTime      time.Time // the time in MAC_SAM (the terminal's clock), UTC
	ReceivedAt   time.Time // when the back office accepted the record, UTC
	// SettlementDate is the settlement day (YYYY-MM-DD, WIB) the row is
	// booked in, stamped inside the store transaction: the day of
	// ReceivedAt, or the next day not closed yet when that day was
	// settled meanwhile (settlement.go). Empty in rows stored before
	// it was kept: the day of ReceivedAt.
	SettlementDate string
	Proof          ProofStatus
	// Counted: the first row of its card serial and PTC whose proof is
	// not bad. A repeat (a second record naming the same PTC) and a row
	// with a bad proof are kept but counted neither in the shadow balance
	// nor in a settlement; a bad row takes no PTC's slot, so the genuine
	// record of that PTC is counted when it comes.
	Counted bool
}

// settlementDay is the row's settlement day.
func (r *PurseRow) settlementDay() string {
	if r.SettlementDate != "" {
		return r.SettlementDate
	}
	return settlementDate(r.ReceivedAt)
}

// delta is the row's change of balance.
func (r *PurseRow) delta() int64 {
	if r.Kind == record.PurseCredit {
		return int64(r.Amount)
	}
	return -int64(r.Amount)
}

// Settled says whether the row is paid to a merchant in a settlement: a
// counted debit with a merchant whose proof is verified. A bad proof is
// withheld (its alarm says why); an unchecked one too, until `kpe-backoffice
// purse recheck` verifies it (the bank is paid only for verified payments).
func (r *PurseRow) Settled() bool {
	return r.Counted && r.Kind == record.PurseDebit && r.Merchant != "" && r.Proof == ProofVerified
}

// PurseView is one purse as the ledger sees it.
type PurseView struct {
	CardSerial [8]byte
	FirstPTC   uint32 // the lowest PTC seen
	LastPTC    uint32 // the highest PTC seen
	// ShadowBalance is the balance rebuilt from the rows in PTC order:
	// the lowest row's balance after, minus every later debit and plus
	// every later credit. Across a missing PTC it differs from the card's
	// by what the missing transaction moved.
	ShadowBalance int64
	// ReportedBalance is the balance after of the row at LastPTC: what
	// the card itself said last.
	ReportedBalance uint32
	Rows            int64        // counted rows
	Repeats         int64        // rows not counted: repeats of a PTC
	BadProofs       int64        // rows not counted: their card proof does not verify
	Missing         []wire.Range // PTCs missing between FirstPTC and LastPTC
}

// purseState is a purse's running state, as both stores keep it.
type purseState struct {
	First        uint32       `json:"first"`
	Last         uint32       `json:"last"`
	FirstBalance uint32       `json:"first_balance"`
	FirstDelta   int64        `json:"first_delta"`
	SumDelta     int64        `json:"sum_delta"` // of the counted rows above First
	LastBalance  uint32       `json:"last_balance"`
	Rows         int64        `json:"rows"`
	Repeats      int64        `json:"repeats"`
	BadProofs    int64        `json:"bad_proofs,omitempty"`
	Gaps         []wire.Range `json:"gaps,omitempty"` // sorted, disjoint, inclusive
}

func (st *purseState) view(serial [8]byte) *PurseView {
	return &PurseView{CardSerial: serial, FirstPTC: st.First, LastPTC: st.Last, ShadowBalance: int64(st.FirstBalance) + st.SumDelta,
		ReportedBalance: st.LastBalance, Rows: st.Rows, Repeats: st.Repeats, BadProofs: st.BadProofs, Missing: slices.Clone(st.Gaps)}
}

// observe adds the counted row r (no counted row at its PTC before) and
// returns the gap it opens, if any.
func (st *purseState) observe(r *PurseRow) *wire.Range {
	p, d := r.PTC, r.delta()
	var gap *wire.Range
	switch {
	case st.Rows == 0:
		st.First, st.Last, st.FirstBalance, st.FirstDelta, st.SumDelta, st.LastBalance = p, p, r.BalanceAfter, d, 0, r.BalanceAfter
	case p > st.Last:
		if p > st.Last+1 {
			gap = &wire.Range{From: st.Last + 1, To: p - 1}
			st.Gaps = append(st.Gaps, *gap)
		}
		st.Last, st.LastBalance = p, r.BalanceAfter
		st.SumDelta += d
	case p < st.First:
		if p < st.First-1 {
			gap = &wire.Range{From: p + 1, To: st.First - 1}
			st.Gaps = slices.Insert(st.Gaps, 0, *gap)
		}
		st.SumDelta += st.FirstDelta
		st.First, st.FirstBalance, st.FirstDelta = p, r.BalanceAfter, d
	default: // inside: it fills a missing PTC
		st.SumDelta += d
		for i, g := range st.Gaps {
			if p < g.From || p > g.To {
				continue
			}
			switch {
			case g.From == p && g.To == p:
				st.Gaps = slices.Delete(st.Gaps, i, i+1)
			case g.From == p:
				st.Gaps[i].From = p + 1
			case g.To == p:
				st.Gaps[i].To = p - 1
			default:
				st.Gaps[i].To = p - 1
				st.Gaps = slices.Insert(st.Gaps, i+1, wire.Range{From: p + 1, To: g.To})
			}
			break
		}
	}
	st.Rows++
	return gap
}

// purseRowOf is the ledger row of an accepted entry with a purse field
// (nil for any other record).
func purseRowOf(e Entry, now time.Time) *PurseRow {
	r := e.Rec
	p := r.Purse
	if p == nil || len(r.CardSerial) != 8 {
		return nil
	}
	proof := e.PurseProof
	if proof == "" {
		proof = ProofUnchecked
	}
	return &PurseRow{CardSerial: [8]byte(r.CardSerial), PTC: p.PTC, Kind: p.Kind, Amount: p.Amount, BalanceAfter: p.BalanceAfter,
		SAMSerial: r.SAMSerial, Counter: r.Counter, SAMTxn: p.SAMTxn, RecordID: r.ID, Code: e.Code, TerminalID: r.TerminalID,
		Merchant: p.Merchant, Reference: p.Reference, TxnTime: time.UnixMilli(p.TxnTime).UTC(), ReceivedAt: now.UTC(), Proof: proof}
}

// CheckPurseProof checks a purse record's card proof with the masters:
// MAC_card recomputed with the card's diversified key over the proof
// input (card serial, PTC, amount, balance after, SAM serial, SAM txn).
// Without keys, or for a record without a purse field, it is unchecked.
func CheckPurseProof(keys *purse.Keys, r *record.Record) ProofStatus {
	if keys == nil || r == nil || r.Purse == nil || len(r.CardSerial) != 8 {
		return ProofUnchecked
	}
	p := r.Purse
	ok, err := purse.Proof{Kind: p.Kind, CardSerial: [8]byte(r.CardSerial), PTC: p.PTC, Amount: p.Amount,
		Balance: p.BalanceAfter, SAMSerial: r.SAMSerial, SAMTxn: p.SAMTxn, MAC: p.Proof}.Verify(keys.Master(p.Kind))
	if err != nil || !ok {
		return ProofBad
	}
	return ProofVerified
}

// purseLookup is what a store gives the ledger rule inside its
// transaction: the counted row at a card serial and PTC (nil: none), and
// how many rows whose proof is not bad name it.
type purseLookup func(serial [8]byte, ptc uint32) (counted *PurseRow, rows int, err error)

// ledgerPurse is the one rule both stores apply to a new row: it decides
// whether the row is counted, moves the purse's state and returns the
// alarms to raise (each condition once: a row is applied once, and a
// repeat alarms at the second row of its PTC only).
func ledgerPurse(st *purseState, row *PurseRow, at purseLookup, now time.Time) ([]wire.Alarm, error) {
	var alarms []wire.Alarm
	alarm := func(kind, detail string) { alarms = append(alarms, rowAlarm(row, kind, detail, now)) }
	if row.Proof == ProofBad {
		alarms = append(alarms, badProofAlarm(row, now))
		row.Counted = false
		st.BadProofs++
		return alarms, nil
	}
	counted, n, err := at(row.CardSerial, row.PTC)
	if err != nil {
		return nil, err
	}
	if counted != nil {
		row.Counted = false
		st.Repeats++
		if n == 1 {
			alarm(AlarmPurseRepeat, fmt.Sprintf("a second record names this PTC; the first is %s (SAM %x counter %d)", counted.Code, counted.SAMSerial, counted.Counter))
		}
		return alarms, nil
	}
	row.Counted = true
	if g := st.observe(row); g != nil {
		alarm(AlarmPurseGap, fmt.Sprintf("PTC %d to %d missing", g.From, g.To))
	}
	if row.PTC > 1 {
		prev, _, err := at(row.CardSerial, row.PTC-1)
		if err != nil {
			return nil, err
		}
		if prev != nil && int64(prev.BalanceAfter)+row.delta() != int64(row.BalanceAfter) {
			alarm(AlarmPurseMismatch, fmt.Sprintf("balance after %d, but PTC %d left %d and this %s is %d", row.BalanceAfter, prev.PTC, prev.BalanceAfter, row.Kind, row.Amount))
		}
	}
	next, _, err := at(row.CardSerial, row.PTC+1)
	if err != nil {
		return nil, err
	}
	if next != nil && int64(row.BalanceAfter)+next.delta() != int64(next.BalanceAfter) {
		alarms = append(alarms, wire.Alarm{Kind: AlarmPurseMismatch, TerminalID: next.TerminalID, SAMSerial: hex.EncodeToString(next.SAMSerial[:]),
			Counter: next.Counter, At: now.UTC(), Detail: fmt.Sprintf("card %x PTC %d: balance after %d, but PTC %d left %d and this %s is %d (record %s)",
				next.CardSerial, next.PTC, next.BalanceAfter, row.PTC, row.BalanceAfter, next.Kind, next.Amount, next.Code)})
	}
	return alarms, nil
}

// rowAlarm is a purse alarm about row.
func rowAlarm(row *PurseRow, kind, detail string, now time.Time) wire.Alarm {
	return wire.Alarm{Kind: kind, TerminalID: row.TerminalID, SAMSerial: hex.EncodeToString(row.SAMSerial[:]),
		Counter: row.Counter, At: now.UTC(), Detail: fmt.Sprintf("card %x PTC %d: %s (record %s)", row.CardSerial, row.PTC, detail, row.Code)}
}

// badProofAlarm is the purse-bad-proof alarm of row.
func badProofAlarm(row *PurseRow, now time.Time) wire.Alarm {
	return rowAlarm(row, AlarmPurseBadProof, fmt.Sprintf("the card's proof of a %s of %d does not verify", row.Kind, row.Amount), now)
}

// rebuildPurse recomputes, from all of a card's rows sorted by PTC and
// then by arrival (received at, SAM serial, counter), which rows are
// counted and the purse's state; it answers the indexes of the rows whose
// Counted changed. A row that is counted and whose proof is not bad keeps
// its PTC's slot: the slot was handed out by arrival order at the ingest,
// which the sort order need not follow (two rows received at the same
// instant sort by SAM serial), and the counted row may already be paid in
// a closed settlement day. Only a PTC with no such row (its counted row
// now found bad, or none counted) hands its slot to the first row in sort
// order whose proof is not bad. The recheck uses it when a proof it checks
// turns out bad (that row gives up its PTC's slot to the next record of
// that PTC, if any).
func rebuildPurse(rows []PurseRow) (*purseState, []int) {
	st := &purseState{}
	var changed []int
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].PTC == rows[i].PTC {
			j++
		}
		slot := -1
		for k := i; k < j && slot < 0; k++ {
			if rows[k].Counted && rows[k].Proof != ProofBad {
				slot = k
			}
		}
		for k := i; k < j && slot < 0; k++ {
			if rows[k].Proof != ProofBad {
				slot = k
			}
		}
		if slot >= 0 {
			st.observe(&rows[slot])
		}
		for k := i; k < j; k++ {
			r := &rows[k]
			want := k == slot
			switch {
			case r.Proof == ProofBad:
				st.BadProofs++
			case !want:
				st.Repeats++
			}
			if r.Counted != want {
				r.Counted = want
				changed = append(changed, k)
			}
		}
		i = j
	}
	return st, changed
}

// sortPurseRows sorts a card's rows by PTC, then arrival.
func sortPurseRows(rows []PurseRow) {
	slices.SortStableFunc(rows, func(a, b PurseRow) int {
		if a.PTC != b.PTC {
			return cmpU32(a.PTC, b.PTC)
		}
		if c := a.ReceivedAt.Compare(b.ReceivedAt); c != 0 {
			return c
		}
		if c := slices.Compare(a.SAMSerial[:], b.SAMSerial[:]); c != 0 {
			return c
		}
		return cmpU32(a.Counter, b.Counter)
	})
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// purseAlarmOnce is a purse alarm's once key for PostgreSQL's
// alarms_once index: SHA-256 of kind and detail (which names the card
// serial, the PTC and the record).
func purseAlarmOnce(a wire.Alarm) []byte {
	h := sha256.Sum256([]byte(a.Kind + "\x00" + a.Detail))
	return h[:]
}

// purseRowKey is a ledger row's key in bbolt: card serial ‖ PTC ‖ SAM
// serial ‖ counter (so a card's rows are in PTC order).
func purseRowKey(r *PurseRow) []byte {
	k := append(r.CardSerial[:0:0], r.CardSerial[:]...)
	k = binary.BigEndian.AppendUint32(k, r.PTC)
	k = append(k, r.SAMSerial[:]...)
	return binary.BigEndian.AppendUint32(k, r.Counter)
}

// PurseStore is the purse ledger's read side; both stores implement it.
type PurseStore interface {
	// Purse is one purse's view (ErrNotFound).
	Purse(ctx context.Context, serial [8]byte) (*PurseView, error)
	// PurseRows are a purse's rows, by PTC (the counted row first at a
	// PTC), at most limit (0: all).
	PurseRows(ctx context.Context, serial [8]byte, limit int) ([]PurseRow, error)
	// EachPayment hands every settled payment (PurseRow.Settled)
	// received on date (YYYY-MM-DD in SettlementZone) to f, ordered by
	// merchant, then transaction time, then record code; an error from
	// f stops it.
	EachPayment(ctx context.Context, date string, f func(*PurseRow) error) error
	// UncheckedPurseRows are the rows whose proof is unchecked.
	UncheckedPurseRows(ctx context.Context) ([]PurseRow, error)
	// RecheckPurseRow checks the proof of row (one of UncheckedPurseRows)
	// with check, over its stored record, in one transaction: a verified
	// row becomes settled if counted (booked in the next open day when
	// its own is closed); a bad one is alarmed and gives up its PTC's
	// slot (rebuildPurse). It answers the status (the row's as stored when
	// it was checked meanwhile; unchecked: check could not tell).
	RecheckPurseRow(ctx context.Context, row PurseRow, check func(*record.Record) ProofStatus, now time.Time) (ProofStatus, error)
	// CloseSettlementDay closes date (YYYY-MM-DD, WIB) at at, once: no
	// ingest that has not committed by then books a row in it (a row
	// stamped in a closed day goes to the next open one).
	CloseSettlementDay(ctx context.Context, date string, at time.Time) error
}

// ErrNoPurseKeys: a recheck without the purse masters.
var ErrNoPurseKeys = errors.New("backoffice: no purse keys: proofs cannot be checked")

// Recheck is what RecheckPurses did.
type Recheck struct {
	Verified, Bad int
}

// RecheckPurses checks the proofs of the ledger's unchecked rows (stored
// while the back office ran without --purse-keys) with the service's
// purse keys: verified payments become settled, bad ones are alarmed and
// uncounted (docs/ewallet.md, "Unchecked proofs").
func (s *Service) RecheckPurses(ctx context.Context) (Recheck, error) {
	var out Recheck
	ps, ok := s.store.(PurseStore)
	if !ok {
		return out, ErrNoPurseLedger
	}
	if s.cfg.PurseKeys == nil {
		return out, ErrNoPurseKeys
	}
	rows, err := ps.UncheckedPurseRows(ctx)
	if err != nil {
		return out, err
	}
	check := func(r *record.Record) ProofStatus { return CheckPurseProof(s.cfg.PurseKeys, r) }
	for _, r := range rows {
		st, err := ps.RecheckPurseRow(ctx, r, check, s.cfg.Now())
		if err != nil {
			return out, err
		}
		switch st {
		case ProofVerified:
			out.Verified++
		case ProofBad:
			out.Bad++
		}
	}
	return out, nil
}

// ErrNoPurseLedger: the store keeps no purse ledger.
var ErrNoPurseLedger = errors.New("backoffice: the store keeps no purse ledger")

// Purse is one purse's view and its rows (PurseStore).
func (s *Service) Purse(ctx context.Context, serial [8]byte, limit int) (*PurseView, []PurseRow, error) {
	ps, ok := s.store.(PurseStore)
	if !ok {
		return nil, nil, ErrNoPurseLedger
	}
	v, err := ps.Purse(ctx, serial)
	if err != nil {
		return nil, nil, err
	}
	rows, err := ps.PurseRows(ctx, serial, limit)
	return v, rows, err
}
