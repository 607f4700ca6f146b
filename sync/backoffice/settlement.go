package backoffice

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/xuri/excelize/v2"
)

// Settlement per merchant and day (docs/ewallet.md, "Settlement file").
// A settlement day is a calendar day in Asia/Jakarta time (WIB, UTC+7,
// no daylight saving), and a payment belongs to the day the back office
// accepted its record (PurseRow.ReceivedAt), not the terminal's
// transaction time: a day's file, made once the day is over, never
// changes, and a payment uploaded late lands in the day it arrived, so
// every payment is in exactly one settlement line of exactly one day.
//
// The day is stamped inside the store's Ingest transaction, against the
// closed days: the first settlement of a day closes it (a marker the
// store writes, PurseStore.CloseSettlementDay), and a row stamped in a
// closed day is booked in the next day not closed (PurseRow.
// SettlementDate). PostgreSQL writes the marker under an exclusive
// advisory lock that every ingest with purse records holds shared, so an
// ingest that began before the marker commits before it, and one after
// sees it; bbolt has one writer. A day can be settled SettlementGrace
// after it ends, so that batches in flight at midnight rarely move.

// SettlementZone is the settlement day's zone: WIB (Asia/Jakarta), UTC+7.
var SettlementZone = time.FixedZone("WIB", 7*60*60)

// SettlementGrace is how long after its end (midnight WIB) a day can be
// settled: 00:02 WIB the next day.
const SettlementGrace = 2 * time.Minute

// Settlement errors.
var (
	// ErrSettlementDate: a date that is not YYYY-MM-DD.
	ErrSettlementDate = errors.New("backoffice: settlement date not acceptable")
	// ErrSettlementOpen: the day is not over in WIB, by SettlementGrace;
	// its file could still change.
	ErrSettlementOpen = errors.New("backoffice: the settlement day is not over")
)

// SettlementHeader is the CSV's header line and the XLSX summary's
// header row.
var SettlementHeader = []string{"settlement_date", "merchant_id", "payments", "amount", "refunds", "refund_amount", "net_amount",
	"first_record_code", "last_record_code"}

// SettlementPaymentsHeader is the XLSX payments sheet's header row.
var SettlementPaymentsHeader = []string{"record_code", "merchant_id", "reference", "card_serial", "ptc", "amount", "balance_after",
	"txn_time", "received_at", "terminal_id", "sam_serial", "sam_txn", "proof"}

// SettlementLine is one merchant's payments of one day, in whole rupiah.
// Refunds do not exist yet: their columns are 0 and Net is Amount.
type SettlementLine struct {
	Date                string
	Merchant            string
	Payments            int64
	Amount              int64
	Refunds             int64
	RefundAmount        int64
	Net                 int64
	FirstCode, LastCode string // in the line's order: transaction time, then code
}

// Settlement is one day's settlement: a line per merchant, by merchant
// id, and the totals.
type Settlement struct {
	Date  string
	Lines []SettlementLine
	Total SettlementLine // Merchant "", codes ""
}

// SettlementDay parses YYYY-MM-DD and returns the day's bounds in WIB;
// ErrSettlementOpen when the day is not over at now by SettlementGrace.
func SettlementDay(date string, now time.Time) (from, to time.Time, err error) {
	from, to, err = settlementBounds(date)
	if err != nil {
		return from, to, err
	}
	if now.Before(to.Add(SettlementGrace)) {
		return from, to, fmt.Errorf("%w: %s can be settled from %s", ErrSettlementOpen, date, to.Add(SettlementGrace).Format(time.RFC3339))
	}
	return from, to, nil
}

// openDay is the settlement day a row stamped at now is booked in: the
// day of now, or the first later day that closed does not report closed.
func openDay(now time.Time, closed func(day string) (bool, error)) (string, error) {
	d, _ := time.ParseInLocation(time.DateOnly, settlementDate(now), SettlementZone)
	for range 3660 { // ten years of closed days ahead would be a broken clock
		day := d.Format(time.DateOnly)
		c, err := closed(day)
		if err != nil || !c {
			return day, err
		}
		d = d.AddDate(0, 0, 1)
	}
	return "", fmt.Errorf("backoffice: no open settlement day within ten years of %s", settlementDate(now))
}

// settlementBounds are date's bounds in SettlementZone (ErrSettlementDate).
func settlementBounds(date string) (from, to time.Time, err error) {
	d, err := time.ParseInLocation(time.DateOnly, date, SettlementZone)
	if err != nil || d.Format(time.DateOnly) != date {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: %q: want YYYY-MM-DD", ErrSettlementDate, date)
	}
	return d, d.AddDate(0, 0, 1), nil
}

// settlementDate is the settlement day of t.
func settlementDate(t time.Time) string { return t.In(SettlementZone).Format(time.DateOnly) }

// Settle builds the settlement of date (YYYY-MM-DD, WIB) from the
// store's settled payments; each payment is also handed to each (nil:
// none) in the lines' order, for the payments sheet. It closes the day
// first (PurseStore.CloseSettlementDay): no payment is booked in it after.
func Settle(ctx context.Context, ps PurseStore, date string, now time.Time, each func(*PurseRow) error) (*Settlement, error) {
	if _, _, err := SettlementDay(date, now); err != nil {
		return nil, err
	}
	if err := ps.CloseSettlementDay(ctx, date, now); err != nil {
		return nil, err
	}
	st := &Settlement{Date: date, Total: SettlementLine{Date: date}}
	var cur *SettlementLine
	err := ps.EachPayment(ctx, date, func(r *PurseRow) error {
		if cur == nil || cur.Merchant != r.Merchant {
			if cur != nil && r.Merchant < cur.Merchant {
				return fmt.Errorf("backoffice: settlement: payments out of merchant order (%q after %q)", r.Merchant, cur.Merchant)
			}
			st.Lines = append(st.Lines, SettlementLine{Date: date, Merchant: r.Merchant, FirstCode: r.Code})
			cur = &st.Lines[len(st.Lines)-1]
		}
		cur.Payments++
		cur.Amount += int64(r.Amount)
		cur.Net = cur.Amount - cur.RefundAmount
		cur.LastCode = r.Code
		st.Total.Payments++
		st.Total.Amount += int64(r.Amount)
		st.Total.Net = st.Total.Amount - st.Total.RefundAmount
		if each != nil {
			return each(r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// Settlement is Settle on the service's store.
func (s *Service) Settlement(ctx context.Context, date string, each func(*PurseRow) error) (*Settlement, error) {
	ps, ok := s.store.(PurseStore)
	if !ok {
		return nil, ErrNoPurseLedger
	}
	return Settle(ctx, ps, date, s.cfg.Now(), each)
}

// SettlementXLSX is WriteSettlementXLSX on the service's store.
func (s *Service) SettlementXLSX(ctx context.Context, w io.Writer, date string) error {
	ps, ok := s.store.(PurseStore)
	if !ok {
		return ErrNoPurseLedger
	}
	return WriteSettlementXLSX(ctx, w, ps, date, s.cfg.Now())
}

func (l SettlementLine) cells() []string {
	return []string{l.Date, cell(l.Merchant), strconv.FormatInt(l.Payments, 10), strconv.FormatInt(l.Amount, 10),
		strconv.FormatInt(l.Refunds, 10), strconv.FormatInt(l.RefundAmount, 10), strconv.FormatInt(l.Net, 10), l.FirstCode, l.LastCode}
}

// WriteSettlementCSV writes the settlement as UTF-8 CSV (RFC 4180, LF
// line ends): the header (SettlementHeader), one line per merchant by
// merchant id, and the trailer
//
//	TOTAL,<settlement_date>,<merchant lines>,<payments>,<amount>,<refunds>,<refund_amount>,<net_amount>,<sha256>
//
// whose last field is the lower-case hex SHA-256 of every byte before
// the trailer (header and lines, line ends included). The same data
// gives the same bytes.
func WriteSettlementCSV(w io.Writer, st *Settlement) error {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	if err := cw.Write(SettlementHeader); err != nil {
		return err
	}
	for _, l := range st.Lines {
		if err := cw.Write(l.cells()); err != nil {
			return err
		}
	}
	cw.Flush()
	sum := sha256.Sum256(buf.Bytes())
	t := st.Total
	if err := cw.Write([]string{"TOTAL", st.Date, strconv.Itoa(len(st.Lines)), strconv.FormatInt(t.Payments, 10), strconv.FormatInt(t.Amount, 10),
		strconv.FormatInt(t.Refunds, 10), strconv.FormatInt(t.RefundAmount, 10), strconv.FormatInt(t.Net, 10), hex.EncodeToString(sum[:])}); err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// Sheet names of the XLSX settlement.
const (
	SettlementSheet         = "Settlement"
	SettlementPaymentsSheet = "Payments"
)

// WriteSettlementXLSX settles date into an XLSX workbook: sheet
// SettlementSheet holds the CSV's header, lines and TOTAL row (without
// the SHA-256, which is the CSV's), sheet SettlementPaymentsSheet one row
// per payment (SettlementPaymentsHeader; times in WIB), in the lines'
// order. Card serials are there; NIPs are not (the ledger has none).
func WriteSettlementXLSX(ctx context.Context, w io.Writer, ps PurseStore, date string, now time.Time) (err error) {
	f := excelize.NewFile()
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	wrap := func(err error) error { return fmt.Errorf("backoffice: XLSX settlement: %w", err) }
	if err := f.SetSheetName(f.GetSheetName(0), SettlementSheet); err != nil {
		return wrap(err)
	}
	if _, err := f.NewSheet(SettlementPaymentsSheet); err != nil {
		return wrap(err)
	}
	pw, err := f.NewStreamWriter(SettlementPaymentsSheet)
	if err != nil {
		return wrap(err)
	}
	row := 1
	put := func(sw *excelize.StreamWriter, cells []any) error {
		c, _ := excelize.CoordinatesToCellName(1, row)
		row++
		return sw.SetRow(c, cells)
	}
	if err := put(pw, strCells(SettlementPaymentsHeader)); err != nil {
		return wrap(err)
	}
	st, err := Settle(ctx, ps, date, now, func(r *PurseRow) error {
		return put(pw, []any{r.Code, r.Merchant, r.Reference, hex.EncodeToString(r.CardSerial[:]), int64(r.PTC), int64(r.Amount),
			int64(r.BalanceAfter), r.TxnTime.In(SettlementZone).Format("2006-01-02 15:04:05.000"),
			r.ReceivedAt.In(SettlementZone).Format("2006-01-02 15:04:05.000"), r.TerminalID, hex.EncodeToString(r.SAMSerial[:]),
			int64(r.SAMTxn), string(r.Proof)})
	})
	if err != nil {
		return err
	}
	if err := pw.Flush(); err != nil {
		return wrap(err)
	}
	sw, err := f.NewStreamWriter(SettlementSheet)
	if err != nil {
		return wrap(err)
	}
	row = 1
	if err := put(sw, strCells(SettlementHeader)); err != nil {
		return wrap(err)
	}
	for _, l := range append(st.Lines, st.Total) {
		first := l.Date
		if l.Merchant == "" && l.FirstCode == "" {
			first = "TOTAL"
		}
		if err := put(sw, []any{first, l.Merchant, l.Payments, l.Amount, l.Refunds, l.RefundAmount, l.Net, l.FirstCode, l.LastCode}); err != nil {
			return wrap(err)
		}
	}
	if err := sw.Flush(); err != nil {
		return wrap(err)
	}
	if err := f.Write(w); err != nil {
		return wrap(err)
	}
	return nil
}

func strCells(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
