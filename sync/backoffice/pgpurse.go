package backoffice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// The purse ledger in PostgreSQL (purseledger.go; migration 013).

const purseRowColumns = `card_serial, ptc, kind, amount, balance_after, sam_serial, counter, sam_txn, record_id, code, terminal_id,
	merchant, reference, txn_time, received_at, settlement_date::text, proof, counted`

func scanPurseRow(row pgx.CollectableRow) (PurseRow, error) {
	var r PurseRow
	var serial, sam, id []byte
	var ptc, amount, bal, counter, txn int64
	var kind int16
	var proof string
	if err := row.Scan(&serial, &ptc, &kind, &amount, &bal, &sam, &counter, &txn, &id, &r.Code, &r.TerminalID,
		&r.Merchant, &r.Reference, &r.TxnTime, &r.ReceivedAt, &r.SettlementDate, &proof, &r.Counted); err != nil {
		return r, err
	}
	if len(serial) != 8 || len(sam) != 8 || len(id) != 16 {
		return r, errors.New("backoffice: damaged purse row")
	}
	r.CardSerial, r.SAMSerial, r.RecordID = [8]byte(serial), [8]byte(sam), [16]byte(id)
	r.PTC, r.Kind, r.Amount, r.BalanceAfter, r.Counter, r.SAMTxn = uint32(ptc), record.PurseKind(kind), uint32(amount), uint32(bal), uint32(counter), uint32(txn)
	r.TxnTime, r.ReceivedAt, r.Proof = r.TxnTime.UTC(), r.ReceivedAt.UTC(), ProofStatus(proof)
	return r, nil
}

// settleLock is the advisory lock between settlements and ingests: a
// settlement closes its day holding it exclusively, an ingest with purse
// records holds it shared (settlement.go).
const settleLock = 0x4B50_0014

// lockPursesPG takes the settlement lock shared and locks the purses the
// batch's purse records name, in card serial order, before any of them
// is applied: two batches naming the same cards in another order wait
// for each other instead of deadlocking.
func lockPursesPG(ctx context.Context, tx pgx.Tx, entries []Entry) error {
	var serials [][]byte
	for _, e := range entries {
		if e.Rec.Purse != nil && len(e.Rec.CardSerial) == 8 {
			serials = append(serials, e.Rec.CardSerial)
		}
	}
	if len(serials) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1::bigint)", int64(settleLock)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO purses (card_serial) SELECT DISTINCT s FROM unnest($1::bytea[]) AS u(s) ORDER BY s
		ON CONFLICT DO NOTHING`, serials); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, "SELECT 1 FROM purses WHERE card_serial = ANY($1) ORDER BY card_serial FOR UPDATE", serials)
	return err
}

// ledgerPursePG puts an accepted entry with a purse field into the
// ledger inside Ingest's transaction (ledgerPurse); lockPursesPG locked
// the purse's row and took the settlement lock shared, so the closed days
// read here stay as they are until the commit. It returns the row as
// stored (nil: no purse field) and the alarms to raise (with their once
// keys).
func ledgerPursePG(ctx context.Context, tx pgx.Tx, e Entry, now time.Time) (*PurseRow, []pgAlarm, error) {
	row := purseRowOf(e, now)
	if row == nil {
		return nil, nil, nil
	}
	day, err := openDay(now, func(d string) (closed bool, err error) {
		err = tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM settlement_days WHERE day = $1::date)", d).Scan(&closed)
		return closed, err
	})
	if err != nil {
		return nil, nil, err
	}
	row.SettlementDate = day
	st := &purseState{}
	var gaps []byte
	var first, last, firstBal, lastBal int64
	if err := tx.QueryRow(ctx, `SELECT first_ptc, last_ptc, first_balance, first_delta, sum_delta, last_balance, rows, repeats, bad_proofs, gaps
		FROM purses WHERE card_serial = $1`, row.CardSerial[:]).Scan(&first, &last, &firstBal, &st.FirstDelta, &st.SumDelta,
		&lastBal, &st.Rows, &st.Repeats, &st.BadProofs, &gaps); err != nil {
		return nil, nil, err
	}
	st.First, st.Last, st.FirstBalance, st.LastBalance = uint32(first), uint32(last), uint32(firstBal), uint32(lastBal)
	if err := json.Unmarshal(gaps, &st.Gaps); err != nil {
		return nil, nil, fmt.Errorf("damaged purse %x gaps: %w", row.CardSerial, err)
	}
	alarms, err := ledgerPurse(st, row, func(serial [8]byte, ptc uint32) (*PurseRow, int, error) {
		rows, _ := tx.Query(ctx, "SELECT "+purseRowColumns+" FROM purse_ledger WHERE card_serial = $1 AND ptc = $2", serial[:], int64(ptc))
		all, err := pgx.CollectRows(rows, scanPurseRow)
		if err != nil {
			return nil, 0, err
		}
		var counted *PurseRow
		n := 0
		for i := range all {
			if all[i].Proof != ProofBad {
				n++
			}
			if all[i].Counted {
				counted = &all[i]
			}
		}
		return counted, n, nil
	}, now)
	if err != nil {
		return nil, nil, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO purse_ledger (sam_serial, counter, card_serial, ptc, kind, amount, balance_after, sam_txn,
			record_id, code, terminal_id, merchant, reference, txn_time, received_at, settlement_date, proof, counted)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		row.SAMSerial[:], int64(row.Counter), row.CardSerial[:], int64(row.PTC), int16(row.Kind), int64(row.Amount), int64(row.BalanceAfter),
		int64(row.SAMTxn), row.RecordID[:], row.Code, row.TerminalID, row.Merchant, row.Reference, row.TxnTime, row.ReceivedAt,
		row.SettlementDate, string(row.Proof), row.Counted); err != nil {
		return nil, nil, err
	}
	if err := putPurseStatePG(ctx, tx, row.CardSerial, st); err != nil {
		return nil, nil, err
	}
	out := make([]pgAlarm, len(alarms))
	for i, a := range alarms {
		out[i] = pgAlarm{Alarm: a, once: purseAlarmOnce(a)}
	}
	return row, out, nil
}

// putPurseStatePG writes a purse's state.
func putPurseStatePG(ctx context.Context, tx pgx.Tx, serial [8]byte, st *purseState) error {
	if st.Gaps == nil {
		st.Gaps = []wire.Range{}
	}
	gaps, err := json.Marshal(st.Gaps)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE purses SET first_ptc = $2, last_ptc = $3, first_balance = $4, first_delta = $5, sum_delta = $6,
		last_balance = $7, rows = $8, repeats = $9, bad_proofs = $10, gaps = $11 WHERE card_serial = $1`, serial[:], int64(st.First), int64(st.Last),
		int64(st.FirstBalance), st.FirstDelta, st.SumDelta, int64(st.LastBalance), st.Rows, st.Repeats, st.BadProofs, gaps)
	return err
}

// CloseSettlementDay implements PurseStore: the marker, written under the
// settlement lock held exclusively, which waits for every ingest in
// flight with purse records.
func (s *PGStore) CloseSettlementDay(ctx context.Context, date string, at time.Time) error {
	if _, _, err := settlementBounds(date); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var closed bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM settlement_days WHERE day = $1::date)", date).Scan(&closed); err != nil || closed {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1::bigint)", int64(settleLock)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO settlement_days (day, closed_at) VALUES ($1::date, $2) ON CONFLICT DO NOTHING", date, at)
		return err
	})
	if err != nil {
		return fmt.Errorf("backoffice: store: %w", err)
	}
	return nil
}

// Purse implements PurseStore (on the staff pool).
func (s *PGStore) Purse(ctx context.Context, serial [8]byte) (*PurseView, error) {
	st := &purseState{}
	var gaps []byte
	var first, last, firstBal, lastBal int64
	err := s.staff.QueryRow(ctx, `SELECT first_ptc, last_ptc, first_balance, first_delta, sum_delta, last_balance, rows, repeats, bad_proofs, gaps
		FROM purses WHERE card_serial = $1 AND rows + repeats + bad_proofs > 0`, serial[:]).Scan(&first, &last, &firstBal, &st.FirstDelta, &st.SumDelta,
		&lastBal, &st.Rows, &st.Repeats, &st.BadProofs, &gaps)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("backoffice: store: %w", err)
	}
	st.First, st.Last, st.FirstBalance, st.LastBalance = uint32(first), uint32(last), uint32(firstBal), uint32(lastBal)
	if err := json.Unmarshal(gaps, &st.Gaps); err != nil {
		return nil, fmt.Errorf("backoffice: damaged purse %x gaps: %w", serial, err)
	}
	if len(st.Gaps) == 0 {
		st.Gaps = nil
	}
	return st.view(serial), nil
}

// PurseRows implements PurseStore (on the staff pool).
func (s *PGStore) PurseRows(ctx context.Context, serial [8]byte, limit int) ([]PurseRow, error) {
	l := int64(limit)
	if l <= 0 {
		l = -1
	}
	rows, _ := s.staff.Query(ctx, "SELECT "+purseRowColumns+` FROM purse_ledger WHERE card_serial = $1
		ORDER BY ptc, counted DESC, received_at, sam_serial, counter LIMIT CASE WHEN $2::bigint < 0 THEN NULL ELSE $2::bigint END`, serial[:], l)
	out, err := pgx.CollectRows(rows, scanPurseRow)
	if err != nil {
		return nil, fmt.Errorf("backoffice: store: %w", err)
	}
	return out, nil
}

// EachPayment implements PurseStore (on the staff pool), streaming the
// day's settled payments through the purse_ledger_settle index.
func (s *PGStore) EachPayment(ctx context.Context, date string, f func(*PurseRow) error) error {
	if _, _, err := settlementBounds(date); err != nil {
		return err
	}
	rows, err := s.staff.Query(ctx, "SELECT "+purseRowColumns+` FROM purse_ledger
		WHERE settlement_date = $1::date AND counted AND kind = 1 AND merchant <> '' AND proof = 'verified'
		ORDER BY merchant COLLATE "C", txn_time, code COLLATE "C"`, date)
	if err != nil {
		return fmt.Errorf("backoffice: store: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanPurseRow(rows)
		if err != nil {
			return fmt.Errorf("backoffice: store: %w", err)
		}
		if err := f(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("backoffice: store: %w", err)
	}
	return nil
}

// UncheckedPurseRows implements PurseStore (through purse_ledger_unchecked).
func (s *PGStore) UncheckedPurseRows(ctx context.Context) ([]PurseRow, error) {
	rows, _ := s.pool.Query(ctx, "SELECT "+purseRowColumns+" FROM purse_ledger WHERE proof = 'unchecked' ORDER BY sam_serial, counter")
	out, err := pgx.CollectRows(rows, scanPurseRow)
	if err != nil {
		return nil, fmt.Errorf("backoffice: store: %w", err)
	}
	return out, nil
}

// RecheckPurseRow implements PurseStore in one transaction that holds the
// settlement lock shared (as an ingest) and the purse's row.
func (s *PGStore) RecheckPurseRow(ctx context.Context, row PurseRow, check func(*record.Record) ProofStatus, now time.Time) (ProofStatus, error) {
	var out ProofStatus
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1::bigint)", int64(settleLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT 1 FROM purses WHERE card_serial = $1 FOR UPDATE", row.CardSerial[:]); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, "SELECT "+purseRowColumns+" FROM purse_ledger WHERE card_serial = $1", row.CardSerial[:])
		all, err := pgx.CollectRows(rows, scanPurseRow)
		if err != nil {
			return err
		}
		at := -1
		for i := range all {
			if all[i].SAMSerial == row.SAMSerial && all[i].Counter == row.Counter {
				at = i
			}
		}
		if at < 0 {
			return fmt.Errorf("no purse row of SAM %x counter %d", row.SAMSerial, row.Counter)
		}
		if out = all[at].Proof; out != ProofUnchecked {
			return nil
		}
		var enc []byte
		if err := tx.QueryRow(ctx, `SELECT r.encoded FROM record_keys k JOIN records r USING (sam_serial, counter, received_at)
			WHERE k.sam_serial = $1 AND k.counter = $2`, row.SAMSerial[:], int64(row.Counter)).Scan(&enc); err != nil {
			return fmt.Errorf("the record of SAM %x counter %d: %w", row.SAMSerial, row.Counter, err)
		}
		rec, err := record.Decode(enc)
		if err != nil {
			return err
		}
		cur := all[at]
		if out = check(rec); out == ProofUnchecked {
			return nil
		}
		sortPurseRows(all)
		before := make([]PurseRow, len(all))
		copy(before, all)
		for i := range all {
			if all[i].SAMSerial == row.SAMSerial && all[i].Counter == row.Counter {
				all[i].Proof = out
			}
		}
		st, _ := rebuildPurse(all)
		closed := func(d string) (c bool, err error) {
			err = tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM settlement_days WHERE day = $1::date)", d).Scan(&c)
			return c, err
		}
		// the rows that give up a slot first: purse_ledger_counted is unique
		for _, pass := range []bool{false, true} {
			for i := range all {
				r, old := &all[i], before[i]
				if (old.Proof == r.Proof && old.Counted == r.Counted) || r.Counted != pass {
					continue
				}
				if r.Settled() {
					c, err := closed(r.settlementDay())
					if err != nil {
						return err
					}
					if c {
						if r.SettlementDate, err = openDay(now, closed); err != nil {
							return err
						}
					}
				}
				if _, err := tx.Exec(ctx, `UPDATE purse_ledger SET proof = $3, counted = $4, settlement_date = $5::date
					WHERE sam_serial = $1 AND counter = $2`, r.SAMSerial[:], int64(r.Counter), string(r.Proof), r.Counted, r.settlementDay()); err != nil {
					return err
				}
			}
		}
		if err := putPurseStatePG(ctx, tx, row.CardSerial, st); err != nil {
			return err
		}
		if out == ProofBad {
			a := badProofAlarm(&cur, now)
			if _, err := tx.Exec(ctx, `INSERT INTO alarms (kind, terminal_id, sam_serial, counter, detail, at, content) VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (kind, sam_serial, counter, content) WHERE content IS NOT NULL DO NOTHING`,
				a.Kind, a.TerminalID, cur.SAMSerial[:], int64(a.Counter), a.Detail, a.At, purseAlarmOnce(a)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("backoffice: store: %w", err)
	}
	return out, nil
}

var _ PurseStore = (*PGStore)(nil)
