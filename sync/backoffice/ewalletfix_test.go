package backoffice_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/purse"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// fixClock is a settable clock for a service.
type fixClock struct {
	mu sync.Mutex
	at time.Time
}

func (c *fixClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.at }
func (c *fixClock) set(at time.Time) {
	c.mu.Lock()
	c.at = at
	c.mu.Unlock()
}

// withClock gives l a service on the clock c that checks card proofs
// with keys (nil: none).
func withClock(t *testing.T, l *lab, keys *purse.Keys, c *fixClock) {
	svc, err := backoffice.New(l.store, backoffice.Config{CA: l.ca.Pool(), Password: cheap, PurseKeys: keys, Now: c.now})
	require.NoError(t, err)
	l.svc = svc
}

// settleCSV is the CSV of the service's settlement of date.
func settleCSV(t *testing.T, l *lab, date string) (string, *backoffice.Settlement) {
	t.Helper()
	st, err := l.svc.Settlement(context.Background(), date, nil)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, backoffice.WriteSettlementCSV(&buf, st))
	return buf.String(), st
}

// A settled day does not change: a batch stamped in the day (23:59:59.9
// WIB) whose transaction reaches the store after the day's first
// settlement books its payment in the next day, and the first day's file
// is byte-identical when fetched again. A day settles only
// SettlementGrace after its end.
func TestSettledDayIsClosed(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		day := time.Date(2026, 3, 10, 0, 0, 0, 0, backoffice.SettlementZone)
		clock := &fixClock{at: day.Add(12 * time.Hour)}
		withClock(t, l, testPurseKeys, clock)
		c := &purseCard{serial: [8]byte{0x4b, 0x50, 0x45, 0, 0, 0, 9, 1}}
		require.Equal(t, wire.Accepted, l.ingest(l.purseRecord(c, purseTxn{kind: record.PurseCredit, amount: 100_000}))[0].Status)
		require.Equal(t, wire.Accepted, l.ingest(l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 1_000, merchant: "m-1"}))[0].Status)
		late := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 2_500, merchant: "m-1"})

		clock.set(day.AddDate(0, 0, 1).Add(time.Minute)) // 00:01: within the grace
		_, err := l.svc.Settlement(ctx, "2026-03-10", nil)
		require.ErrorIs(t, err, backoffice.ErrSettlementOpen)
		clock.set(day.AddDate(0, 0, 1).Add(backoffice.SettlementGrace))
		first, st := settleCSV(t, l, "2026-03-10")
		require.Len(t, st.Lines, 1)
		assert.Equal(t, int64(1_000), st.Total.Amount)

		// stamped 23:59:59.9 on the 10th, stored after the settlement
		clock.set(day.AddDate(0, 0, 1).Add(-100 * time.Millisecond))
		require.Equal(t, wire.Accepted, l.ingest(late)[0].Status)
		rows, err := l.store.(backoffice.PurseStore).PurseRows(ctx, c.serial, 0)
		require.NoError(t, err)
		got := rows[len(rows)-1]
		assert.Equal(t, uint32(2_500), got.Amount)
		assert.Equal(t, "2026-03-11", got.SettlementDate, "the 10th is closed: the next open day")
		assert.Equal(t, "2026-03-10", got.ReceivedAt.In(backoffice.SettlementZone).Format(time.DateOnly), "received when stamped")

		clock.set(day.AddDate(0, 0, 2).Add(backoffice.SettlementGrace))
		again, _ := settleCSV(t, l, "2026-03-10")
		assert.Equal(t, first, again, "a settled day's file is byte-identical")
		_, next := settleCSV(t, l, "2026-03-11")
		require.Len(t, next.Lines, 1)
		assert.Equal(t, int64(2_500), next.Total.Amount, "the late payment is in the next day, once")
		assert.Equal(t, got.Code, next.Lines[0].FirstCode)

		// two closed days in a row: a row stamped in the first goes past both
		straggler := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 700, merchant: "m-2"})
		clock.set(day.Add(23 * time.Hour))
		require.Equal(t, wire.Accepted, l.ingest(straggler)[0].Status)
		rows, err = l.store.(backoffice.PurseStore).PurseRows(ctx, c.serial, 0)
		require.NoError(t, err)
		assert.Equal(t, "2026-03-12", rows[len(rows)-1].SettlementDate)
		clock.set(day.AddDate(0, 0, 3).Add(time.Hour))
		again, _ = settleCSV(t, l, "2026-03-10")
		assert.Equal(t, first, again)
	})
}

// A forged row (bad proof, purse keys present) does not take its PTC's
// counted slot: the genuine record of that PTC, arriving second, is
// counted and settled, and the shadow balance follows it; a third record
// of the PTC is a repeat (alarmed once).
func TestBadProofTakesNoSlot(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		day := time.Date(2026, 4, 1, 0, 0, 0, 0, backoffice.SettlementZone)
		clock := &fixClock{at: day.Add(10 * time.Hour)}
		withClock(t, l, testPurseKeys, clock)
		c := &purseCard{serial: [8]byte{0x4b, 0x50, 0x45, 0, 0, 0, 9, 2}}
		top := l.purseRecord(c, purseTxn{kind: record.PurseCredit, amount: 50_000})                                   // PTC 1: 50000
		forged := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 4_000, merchant: "m-1", badProof: true}) // PTC 2: 46000
		genuine := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 4_000, merchant: "m-1", samePTC: true}) // PTC 2, verified
		repeat := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 4_000, merchant: "m-2", samePTC: true})  // PTC 2 again
		assert.Equal(t, []wire.Status{wire.Accepted, wire.Accepted}, statuses(l.ingest(top, forged)))
		assert.Equal(t, []wire.Status{wire.Accepted}, statuses(l.ingest(genuine)))
		assert.Equal(t, []wire.Status{wire.Accepted}, statuses(l.ingest(repeat)))

		v, rows, err := l.svc.Purse(ctx, c.serial, 0)
		require.NoError(t, err)
		require.Len(t, rows, 4)
		at2 := rows[1]
		assert.Equal(t, uint32(2), at2.PTC)
		assert.True(t, at2.Counted, "the genuine row holds PTC 2")
		assert.Equal(t, backoffice.ProofVerified, at2.Proof)
		assert.True(t, at2.Settled())
		for _, r := range rows[2:] {
			assert.False(t, r.Counted)
		}
		assert.Equal(t, int64(46_000), v.ShadowBalance, "from the genuine debit")
		assert.Equal(t, uint32(46_000), v.ReportedBalance)
		assert.Equal(t, int64(2), v.Rows)
		assert.Equal(t, int64(1), v.Repeats)
		assert.Equal(t, int64(1), v.BadProofs)
		assert.Equal(t, map[string]int{backoffice.AlarmPurseBadProof: 1, backoffice.AlarmPurseRepeat: 1}, alarmCounts(t, l))

		clock.set(day.AddDate(0, 0, 1).Add(time.Hour))
		_, st := settleCSV(t, l, "2026-04-01")
		require.Len(t, st.Lines, 1)
		assert.Equal(t, "m-1", st.Lines[0].Merchant)
		assert.Equal(t, int64(4_000), st.Total.Amount, "the genuine payment, once")
	})
}

// genuineTopUpRecord is a top-up record for the top-up id on card that
// leaves it at ptc with balance, with a card proof that verifies under
// testPurseKeys.
func (l *lab) genuineTopUpRecord(card [8]byte, id [16]byte, amount, ptc, balance uint32) []byte {
	r := baseRecord("t-01")
	r.Service, r.CardSerial = record.ServiceTopUp, card[:]
	samCounter++
	p := &record.Purse{Kind: record.PurseCredit, Amount: amount, BalanceAfter: balance, PTC: ptc, SAMTxn: samCounter,
		TxnTime: time.Now().UnixMilli(), Request: id}
	mac, err := purse.Proof{Kind: purse.Credit, CardSerial: card, PTC: ptc, Amount: amount, Balance: balance,
		SAMSerial: l.sam.Serial(), SAMTxn: samCounter}.Sign(testPurseKeys.Credit)
	require.NoError(l.t, err)
	p.Proof = mac
	r.Purse = p
	return l.seal(r, l.sam)
}

// With the purse keys, a forged record at the card's authorised PTC + 1
// neither releases the held top-up (it cannot be authorised again and
// credited twice) nor, as a top-up record, spends its id; the genuine
// top-up record then applies it.
func TestForgedRecordKeepsTopUpHeld(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		tl := newTopUpLab(t, l, newTestIssuer(t, "BKN"), backoffice.TopUpConfig{}, time.Now())
		withPurseKeys(t, l, testPurseKeys)
		a := tl.stage(t, 100_000, "TRF-F")
		require.Len(t, tl.auths(t, topUpCard, 5, 0, 20_000_000), 1)

		// a forged payment that claims to move the card from PTC 5 to 6
		require.Equal(t, wire.Accepted, l.ingest(l.topUpRecord("t-01", topUpCard, record.ServicePayment, [16]byte{0xF0}, 5_000, 6))[0].Status)
		assert.Equal(t, backoffice.TopUpAuthorised, tl.topUp(t, a.ID).Status, "a forged record releases nothing")
		assert.Empty(t, tl.auths(t, topUpCard, 6, 0, 20_000_000), "still held: no second authorisation")

		// a forged top-up record for it does not spend the id
		require.Equal(t, wire.Accepted, l.ingest(l.topUpRecord("t-01", topUpCard, record.ServiceTopUp, a.ID, 100_000, 6))[0].Status)
		got := tl.topUp(t, a.ID)
		assert.Equal(t, backoffice.TopUpAuthorised, got.Status, "a bad proof applies nothing")
		assert.Empty(t, got.AppliedCode)
		assert.Len(t, alarmsOf(t, l, backoffice.AlarmPurseBadProof), 2)

		// the card's own record applies it, without a mismatch
		require.Equal(t, wire.Accepted, l.ingest(l.genuineTopUpRecord(topUpCard, a.ID, 100_000, 6, 100_000))[0].Status)
		assert.Equal(t, backoffice.TopUpApplied, tl.topUp(t, a.ID).Status)
		assert.Empty(t, alarmsOf(t, l, backoffice.AlarmTopUpMismatch))
		assert.Empty(t, alarmsOf(t, l, backoffice.AlarmTopUpReplayed))
	})
}

// Without the purse keys the ledger's rows are unchecked and withheld
// from settlement; the recheck with the keys verifies them: the genuine
// payments are settled (in the next open day, as their own was settled
// meanwhile), the forged one is alarmed and gives its PTC's slot to the
// genuine record of that PTC.
func TestRecheckUncheckedProofs(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		day := time.Date(2026, 5, 4, 0, 0, 0, 0, backoffice.SettlementZone)
		clock := &fixClock{at: day.Add(9 * time.Hour)}
		withClock(t, l, nil, clock)
		c := &purseCard{serial: [8]byte{0x4b, 0x50, 0x45, 0, 0, 0, 9, 3}}
		recs := [][]byte{
			l.purseRecord(c, purseTxn{kind: record.PurseCredit, amount: 80_000}),                                // PTC 1: 80000
			l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 1_000, merchant: "m-1"}),                 // PTC 2: 79000
			l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 9_000, merchant: "m-1", badProof: true}), // PTC 3, forged
			l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 9_000, merchant: "m-2", samePTC: true}),  // PTC 3: 70000
			l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 500, merchant: "m-2"}),                   // PTC 4: 69500
		}
		for _, r := range recs {
			require.Equal(t, wire.Accepted, l.ingest(r)[0].Status)
		}
		_, err := l.svc.RecheckPurses(ctx)
		require.ErrorIs(t, err, backoffice.ErrNoPurseKeys)

		clock.set(day.AddDate(0, 0, 1).Add(time.Hour))
		empty, st := settleCSV(t, l, "2026-05-04")
		assert.Empty(t, st.Lines, "unchecked proofs are not settled")

		withClock(t, l, testPurseKeys, clock)
		done, err := l.svc.RecheckPurses(ctx)
		require.NoError(t, err)
		assert.Equal(t, backoffice.Recheck{Verified: 4, Bad: 1}, done)
		v, rows, err := l.svc.Purse(ctx, c.serial, 0)
		require.NoError(t, err)
		require.Len(t, rows, 5)
		for _, r := range rows {
			if r.Proof == backoffice.ProofBad {
				assert.False(t, r.Counted)
				assert.Equal(t, uint32(3), r.PTC)
				continue
			}
			assert.Equal(t, backoffice.ProofVerified, r.Proof)
			assert.True(t, r.Counted, "PTC %d", r.PTC)
			if r.Kind == record.PurseDebit {
				assert.Equal(t, "2026-05-05", r.SettlementDate, "the 4th was settled: the next open day")
			}
		}
		assert.Equal(t, int64(69_500), v.ShadowBalance)
		assert.Equal(t, uint32(69_500), v.ReportedBalance)
		assert.Equal(t, int64(0), v.Repeats)
		assert.Equal(t, int64(1), v.BadProofs)
		assert.Equal(t, map[string]int{backoffice.AlarmPurseBadProof: 1, backoffice.AlarmPurseRepeat: 1}, alarmCounts(t, l),
			"the repeat was alarmed at the ingest, the bad proof at the recheck")

		again, _ := settleCSV(t, l, "2026-05-04")
		assert.Equal(t, empty, again, "the settled day does not change")
		clock.set(day.AddDate(0, 0, 2).Add(time.Hour))
		_, next := settleCSV(t, l, "2026-05-05")
		assert.Equal(t, int64(3), next.Total.Payments)
		assert.Equal(t, int64(10_500), next.Total.Amount, "1000 + the genuine 9000 + 500")

		done, err = l.svc.RecheckPurses(ctx)
		require.NoError(t, err)
		assert.Equal(t, backoffice.Recheck{}, done, "nothing left unchecked")
	})
}

// The monthly limit serve starts with is kept in the store: a service
// with no limit of its own (the command line's `topup stage`) applies
// it; one given explicitly overrides it; without a saved one the default
// applies. The command line's actions are audited by actor.
func TestTopUpLimitFromServe(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		cli, err := backoffice.New(l.store, backoffice.Config{CA: l.ca.Pool()})
		require.NoError(t, err)
		stage := func(svc *backoffice.Service, amount uint32, ref string) error {
			_, err := svc.StageTopUp(ctx, backoffice.TopUpRequest{NIP: topUpNIP, Amount: amount, Ref: ref}, "cli")
			return err
		}
		require.NoError(t, stage(cli, 30_000_000, "TRF-D1"), "no saved limit: the default Rp 40,000,000")

		serve, err := backoffice.New(l.store, backoffice.Config{CA: l.ca.Pool(), TopUp: backoffice.TopUpConfig{MonthlyLimit: 30_000_500, MaxBalance: 1_000_000}})
		require.NoError(t, err)
		require.NoError(t, serve.SaveTopUpSettings(ctx))
		saved, err := l.store.(backoffice.TopUpSettingsStore).TopUpSettings(ctx)
		require.NoError(t, err)
		require.NotNil(t, saved)
		assert.Equal(t, uint64(30_000_500), saved.MonthlyLimit)
		assert.Equal(t, uint64(1_000_000), saved.MaxBalance)

		var le *backoffice.TopUpLimitError
		require.ErrorAs(t, stage(cli, 501, "TRF-D2"), &le, "serve's limit, not the default")
		assert.Equal(t, uint64(30_000_500), le.Limit)
		require.NoError(t, stage(cli, 500, "TRF-D3"))
		explicit, err := backoffice.New(l.store, backoffice.Config{CA: l.ca.Pool(), TopUp: backoffice.TopUpConfig{MonthlyLimit: 40_000_000}})
		require.NoError(t, err)
		require.NoError(t, stage(explicit, 501, "TRF-D4"), "an explicit limit overrides the saved one")

		require.NoError(t, cli.AuditBy(ctx, "cli", backoffice.AuditTopUpStage, "abc", "Rp 500, ref TRF-D3"))
		log, err := cli.AuditLog(ctx, backoffice.AuditQuery{Action: backoffice.AuditTopUpStage, Limit: 10})
		require.NoError(t, err)
		require.Len(t, log, 1)
		assert.Equal(t, "cli", log[0].Actor)
		assert.Equal(t, "abc", log[0].Target)
	})
}

// A recheck never moves a counted slot from a kept row: two verified
// records of one PTC received at the same instant, the later one from a
// SAM of a lower serial (so it sorts first), the first counted and paid
// in a settled day; the recheck of an unrelated unchecked row of the same
// card leaves the counted row as it was, the other a repeat, and the
// settled day's file byte-identical (the payment is not booked twice).
func TestRecheckKeepsCountedSlot(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		day := time.Date(2026, 6, 8, 0, 0, 0, 0, backoffice.SettlementZone)
		clock := &fixClock{at: day.Add(11 * time.Hour)}
		withClock(t, l, testPurseKeys, clock)
		low, err := l.ca.NewSAM([8]byte{0x53, 0x41, 0x4d, 0, 0, 0, 0, 6}) // below samSerial
		require.NoError(t, err)
		c := &purseCard{serial: [8]byte{0x4b, 0x50, 0x45, 0, 0, 0, 9, 4}}
		require.Equal(t, wire.Accepted, l.ingest(l.purseRecord(c, purseTxn{kind: record.PurseCredit, amount: 60_000}))[0].Status) // PTC 1
		first := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 3_000, merchant: "m-1"})                              // PTC 2, SAM 7
		second := l.purseRecordWith(c, purseTxn{kind: record.PurseDebit, amount: 3_000, merchant: "m-2", samePTC: true}, low, "t-02")
		require.Equal(t, wire.Accepted, l.ingest(first)[0].Status)
		res, err := l.svc.Ingest(ctx, &wire.Batch{Certificates: [][]byte{low.Cert}, Records: [][]byte{second}, SentAt: time.Now()},
			backoffice.Identity{Terminal: "t-02"})
		require.NoError(t, err)
		require.Equal(t, []wire.Status{wire.Accepted}, statuses(res.Results))

		rowsAt2 := func() (counted, repeat backoffice.PurseRow) {
			t.Helper()
			rows, err := l.store.(backoffice.PurseStore).PurseRows(ctx, c.serial, 0)
			require.NoError(t, err)
			var at2 []backoffice.PurseRow
			for _, r := range rows {
				if r.PTC == 2 {
					at2 = append(at2, r)
				}
			}
			require.Len(t, at2, 2)
			for _, r := range at2 {
				if r.SAMSerial == samSerial {
					counted = r
				} else {
					repeat = r
				}
			}
			return counted, repeat
		}
		paid, rep := rowsAt2()
		require.True(t, paid.Counted, "the first to arrive holds PTC 2")
		require.False(t, rep.Counted)
		require.Equal(t, paid.ReceivedAt, rep.ReceivedAt, "received at the same instant")
		require.True(t, paid.Settled())

		clock.set(day.AddDate(0, 0, 1).Add(time.Hour))
		closed, st := settleCSV(t, l, "2026-06-08")
		require.Len(t, st.Lines, 1)
		require.Equal(t, "m-1", st.Lines[0].Merchant)
		require.Equal(t, int64(3_000), st.Total.Amount)

		// an unrelated row of the card, stored without the purse keys
		withClock(t, l, nil, clock)
		require.Equal(t, wire.Accepted, l.ingest(l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 700, merchant: "m-3"}))[0].Status) // PTC 3
		withClock(t, l, testPurseKeys, clock)
		done, err := l.svc.RecheckPurses(ctx)
		require.NoError(t, err)
		assert.Equal(t, backoffice.Recheck{Verified: 1}, done)

		after, rep2 := rowsAt2()
		assert.Equal(t, paid, after, "the counted row is left as it was")
		assert.False(t, rep2.Counted, "the other stays a repeat")
		assert.Equal(t, rep, rep2)
		v, err := l.store.(backoffice.PurseStore).Purse(ctx, c.serial)
		require.NoError(t, err)
		assert.Equal(t, int64(1), v.Repeats)
		assert.Equal(t, int64(3), v.Rows)
		assert.Equal(t, int64(60_000-3_000-700), v.ShadowBalance)

		clock.set(day.AddDate(0, 0, 2).Add(time.Hour))
		again, _ := settleCSV(t, l, "2026-06-08")
		assert.Equal(t, closed, again, "the settled day's file is byte-identical")
		_, next := settleCSV(t, l, "2026-06-09")
		require.Len(t, next.Lines, 1, "only the rechecked payment in the next day")
		assert.Equal(t, "m-3", next.Lines[0].Merchant)
		assert.Equal(t, int64(700), next.Total.Amount, "PTC 2 is not paid again")
	})
}
