package backoffice

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"kpe-agent/internal/pgtest"
	"kpe-agent/sync/record"
)

// benchPayments is how many payments BenchmarkSettlement settles
// (KPE_BENCH_PAYMENTS overrides it, for a quick run).
func benchPayments(b *testing.B) int {
	if v := os.Getenv("KPE_BENCH_PAYMENTS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err)
		return n
	}
	return 1_000_000
}

// benchRow is payment i of the benchmark's day: 200 merchants, 10,000
// cards, amounts from 1,000 to 100,999 rupiah.
func benchRow(i int, day time.Time) *PurseRow {
	var serial, sam [8]byte
	binary.BigEndian.PutUint64(serial[:], uint64(i%10000)+1)
	binary.BigEndian.PutUint64(sam[:], uint64(i%50)+1)
	at := day.Add(time.Duration(i) * 80 * time.Millisecond) // a million within the day
	return &PurseRow{CardSerial: serial, PTC: uint32(i/10000) + 1, Kind: record.PurseDebit, Amount: uint32(1000 + i%100000),
		BalanceAfter: 1_000_000, SAMSerial: sam, Counter: uint32(i) + 1, SAMTxn: uint32(i) + 1, Code: fmt.Sprintf("BENCH-%08d", i),
		TerminalID: fmt.Sprintf("t-%03d", i%300), Merchant: fmt.Sprintf("merchant-%03d", i%200), Reference: "INV-" + strconv.Itoa(i),
		TxnTime: at.UTC(), ReceivedAt: at.Add(time.Second).UTC(), Proof: ProofVerified, Counted: true}
}

// BenchmarkSettlement settles one day of a million payments (docs/ewallet.md,
// "Performance"): the ledger rows are written straight into the store
// outside the timer, then the day is settled into the CSV and into the
// XLSX with its payments sheet. It reports payments settled a second.
func BenchmarkSettlement(b *testing.B) {
	n := benchPayments(b)
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, SettlementZone)
	date := day.Format(time.DateOnly)
	later := day.AddDate(0, 0, 2)
	run := func(b *testing.B, ps PurseStore) {
		for _, format := range []string{"csv", "xlsx"} {
			b.Run(format, func(b *testing.B) {
				ctx := context.Background()
				for b.Loop() {
					var err error
					if format == "csv" {
						var st *Settlement
						st, err = Settle(ctx, ps, date, later, nil)
						if err == nil {
							if st.Total.Payments != int64(n) {
								b.Fatalf("settled %d of %d payments", st.Total.Payments, n)
							}
							err = WriteSettlementCSV(io.Discard, st)
						}
					} else {
						err = WriteSettlementXLSX(ctx, io.Discard, ps, date, later)
					}
					require.NoError(b, err)
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "payments/s")
				b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/settlement")
			})
		}
	}
	b.Run("postgres", func(b *testing.B) {
		ctx := context.Background()
		st, err := OpenPostgres(ctx, pgtest.DB(b))
		require.NoError(b, err)
		defer st.Close()
		_, err = st.pool.CopyFrom(ctx, pgx.Identifier{"purse_ledger"}, []string{"sam_serial", "counter", "card_serial", "ptc", "kind", "amount",
			"balance_after", "sam_txn", "record_id", "code", "terminal_id", "merchant", "reference", "txn_time", "received_at", "settlement_date",
			"proof", "counted"}, pgx.CopyFromFunc(func() func() ([]any, error) {
			i := 0
			return func() ([]any, error) {
				if i == n {
					return nil, nil
				}
				r := benchRow(i, day)
				i++
				return []any{r.SAMSerial[:], int64(r.Counter), r.CardSerial[:], int64(r.PTC), int16(r.Kind), int64(r.Amount), int64(r.BalanceAfter),
					int64(r.SAMTxn), r.RecordID[:], r.Code, r.TerminalID, r.Merchant, r.Reference, r.TxnTime, r.ReceivedAt, settlementDate(r.ReceivedAt),
					string(r.Proof), r.Counted}, nil
			}
		}()))
		require.NoError(b, err)
		_, err = st.pool.Exec(ctx, "ANALYZE purse_ledger")
		require.NoError(b, err)
		run(b, st)
	})
	b.Run("bolt", func(b *testing.B) {
		st, err := OpenBolt(filepath.Join(b.TempDir(), "bo.db"))
		require.NoError(b, err)
		defer st.Close()
		for from := 0; from < n; from += 100_000 {
			require.NoError(b, st.db.Update(func(tx *bolt.Tx) error {
				rows, paid := tx.Bucket(bbPurseRows), tx.Bucket(bbPursePaid)
				for i := from; i < min(from+100_000, n); i++ {
					r := benchRow(i, day)
					key := purseRowKey(r)
					if err := putJSON(rows, key, r); err != nil {
						return err
					}
					if err := paid.Put(paidKey(r), key); err != nil {
						return err
					}
				}
				return nil
			}))
		}
		run(b, st)
	})
}
