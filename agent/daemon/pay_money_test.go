package daemon_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/lab/cardsim"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
)

// checkMoney syncs the outbox to the rig's back office (PostgreSQL, with
// the lab's purse masters) and checks that the money adds up for card
// (Budi's, which held start before its first payment): the card's
// balance plus the debits of the back office's purse ledger is start;
// the ledger's shadow balance is the card's balance; every PTC is in the
// ledger once, each proof verified, with no purse alarm; the outbox's
// payment records are the ledger's rows; and the settlement of the
// merchant (every WIB day the rows were accepted on, settled as if the
// day were over) pays exactly the payment records. It returns the
// ledger's rows.
func (r *rig) checkMoney(t *testing.T, card cardsim.Card, start uint32) []backoffice.PurseRow {
	t.Helper()
	ctx := context.Background()
	r.syncNow(t)
	st, _ := purseOf(t, card)
	recs := r.payRecords(t)
	view, rows, err := r.svc.Purse(ctx, budiSerial, 0)
	require.NoError(t, err)
	require.NotNil(t, view)

	// the ledger is the outbox's records, each PTC once, proofs verified
	require.Len(t, rows, len(recs), "one ledger row per payment record")
	byID := map[[16]byte]*record.Record{}
	for _, rec := range recs {
		byID[rec.ID] = rec
	}
	var debits int64
	ptcs := map[uint32]bool{}
	for _, row := range rows {
		rec := byID[row.RecordID]
		require.NotNil(t, rec, "the ledger's row %x is an outbox record", row.RecordID)
		assert.Equal(t, rec.Purse.PTC, row.PTC)
		assert.Equal(t, rec.Purse.Amount, row.Amount)
		assert.Equal(t, record.PurseDebit, row.Kind)
		assert.Equal(t, backoffice.ProofVerified, row.Proof, "PTC %d: the card's proof verifies under the purse masters", row.PTC)
		assert.True(t, row.Counted, "PTC %d counted", row.PTC)
		assert.False(t, ptcs[row.PTC], "PTC %d once", row.PTC)
		ptcs[row.PTC] = true
		debits += int64(row.Amount)
	}
	assert.Equal(t, int64(start), int64(st.Balance)+debits, "card balance + the ledger's debits = the start balance")
	assert.Equal(t, int64(st.Balance), view.ShadowBalance, "the back office's shadow balance is the card's")
	assert.Equal(t, st.Balance, view.ReportedBalance)
	assert.Equal(t, st.PTC, view.LastPTC)
	assert.Zero(t, view.Repeats)
	assert.Empty(t, view.Missing, "no PTC missing")
	alarms, err := r.svc.Alarms(ctx, backoffice.AlarmQuery{Limit: 1000})
	require.NoError(t, err)
	for _, a := range alarms {
		assert.False(t, strings.HasPrefix(a.Kind, "purse-"), "purse alarm: %+v", a)
	}

	// the settlement pays each payment once: every day the rows were
	// accepted on (WIB), settled as if it were over
	var days []string
	for _, row := range rows {
		if d := row.ReceivedAt.In(backoffice.SettlementZone).Format(time.DateOnly); !slices.Contains(days, d) {
			days = append(days, d)
		}
	}
	var settled, payments int64
	ps, ok := r.store.(backoffice.PurseStore)
	require.True(t, ok, "the PostgreSQL store keeps the purse ledger")
	for _, d := range days {
		s, err := backoffice.Settle(ctx, ps, d, time.Now().Add(48*time.Hour), nil)
		require.NoError(t, err)
		for _, l := range s.Lines {
			if l.Merchant == payMerchant {
				settled += l.Net
				payments += l.Payments
			}
		}
	}
	assert.Equal(t, debits, settled, "the merchant's settlement = Σ payment records")
	assert.Equal(t, int64(len(recs)), payments)
	return rows
}
