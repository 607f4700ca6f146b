package daemon_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/apdu/kpe"
	"kpe-agent/internal/browsertest"
	"kpe-agent/internal/i18n"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/pcsctest"
	"kpe-agent/sync/outbox"
)

// The counter screen's payment panel in headless Chromium through the
// whole terminal: the clerk takes a payment (done, with the receipt code
// and the balance), then one whose card is pulled at the DEBIT (pending:
// insert the card again), and retries it with the page's key once the card
// is back: done, debited once. In Bahasa Indonesia, then English.
func TestLoketPayEndToEnd(t *testing.T) {
	r := newPayRig(t)
	card := freshBudi(t)
	r.insertCard(t, card)
	require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
	b := browsertest.Start(t, browsertest.WindowSize(1366, 900))
	b.Navigate(r.loketLink(t))
	b.Wait(`document.getElementById("link").dataset.state === "open"`, 10*time.Second)
	b.Click("#lang-id")
	b.SetValue("#operator", "kasir-01")
	b.Click("#shift-start")
	b.Wait(`!document.getElementById("pay").hidden`, 5*time.Second)
	assert.Equal(t, i18n.Indonesian.T("loket.pay.title"), b.Text("#pay-title"))
	assert.Equal(t, i18n.Indonesian.T("loket.pay.submit"), b.Text("#pay-submit"))

	// not an amount: the page says so and sends nothing
	b.SetValue("#pay-amount", "12,5")
	b.Click("#pay-submit")
	var hidden bool
	b.Eval(`document.getElementById("pay-invalid").hidden`, &hidden)
	assert.False(t, hidden)

	mark := card.count()
	t.Run("done", func(t *testing.T) {
		b := b.For(t)
		b.SetValue("#pay-amount", "15000")
		b.SetValue("#pay-ref", "INV-77")
		b.Click("#pay-submit")
		b.Wait(`!document.getElementById("pay-done").hidden`, 30*time.Second)
		recs := r.payRecords(t)
		require.Len(t, recs, 1)
		assert.Equal(t, codeOf(t, recs[0]), b.Text("#pay-code"))
		assert.Equal(t, "INV-77", recs[0].Purse.Reference)
		assert.Equal(t, "kasir-01", recs[0].OperatorID)
		assert.Equal(t, "485.000", b.Text("#pay-balance"))
		assert.Equal(t, i18n.Indonesian.T("loket.pay.done"), b.Text("#pay-done span"))
		b.Eval(`document.getElementById("pay-retry").hidden`, &hidden)
		assert.True(t, hidden, "nothing to retry once done")
		var locked bool
		b.Eval(`document.getElementById("pay-submit").disabled && document.getElementById("pay-amount").disabled`, &locked)
		assert.True(t, locked, "the purchase is locked until Pembayaran baru")
	})
	ins := card.since(mark)
	debitAt := slices.Index(ins, kpe.InsPurseDebit) + 1
	require.Positive(t, debitAt)

	t.Run("pending, then done on retry", func(t *testing.T) {
		b := b.For(t)
		b.Click("#lang-en")
		b.Click("#pay-new")
		b.SetValue("#pay-amount", "20000")
		b.SetValue("#pay-ref", "INV-78")
		require.NoError(t, r.lab.SetFault(0, cardsim.Fault{AnswerLostAtAPDU: debitAt}))
		b.Click("#pay-submit")
		b.Wait(`document.getElementById("pay-state").textContent === `+jsString(i18n.English.T("loket.pay.pending")), 30*time.Second)
		assert.Equal(t, i18n.English.T("loket.pay.reason.card-removed"), b.Text("#pay-message"))
		b.Eval(`document.getElementById("pay-retry").hidden`, &hidden)
		assert.False(t, hidden, "the clerk can retry")
		// the submit makes no second key for the same purchase: it is
		// disabled, and a form submitted anyway (Enter) starts nothing
		var state struct {
			Submit, Retry bool
			State         string
		}
		b.Eval(`(() => { document.getElementById("pay-form").requestSubmit();
			return {Submit: document.getElementById("pay-submit").disabled, Retry: document.getElementById("pay-retry").disabled,
				State: document.getElementById("pay-state").textContent}; })()`, &state)
		assert.True(t, state.Submit, "submit disabled while the attempt is pending")
		assert.False(t, state.Retry, "no payment started")
		assert.Equal(t, i18n.English.T("loket.pay.pending"), state.State)
		st, _ := purseOf(t, card)
		assert.Equal(t, uint32(465_000), st.Balance, "the card took the DEBIT")
		require.NoError(t, r.lab.ClearFault(0))
		require.Eventually(t, func() bool {
			st, err := r.lab.SlotStatus(0)
			return err == nil && !st.Inserted
		}, 5*time.Second, 10*time.Millisecond)
		r.waitReader(t, pcsctest.Slot0, func(rd api.Reader) bool { return !rd.CardPresent })
		j, err := r.ob.PurseJournals()
		require.NoError(t, err)
		require.Len(t, j, 1)
		pending := j[0].Request
		// the card back; the clerk retries: the same key, settled from the
		// card's log, not debited again
		r.insertCard(t, card)
		b.Click("#pay-retry")
		b.Wait(`!document.getElementById("pay-done").hidden`, 30*time.Second)
		recs := r.payRecords(t)
		require.Len(t, recs, 2)
		assert.Equal(t, pending, recs[1].Purse.Request, "the retry sent the attempt's key")
		assert.True(t, recs[1].Purse.Resolved)
		assert.Equal(t, codeOf(t, recs[1]), b.Text("#pay-code"))
		assert.Equal(t, "465,000", b.Text("#pay-balance"))
		assert.Equal(t, i18n.English.T("loket.pay.done"), b.Text("#pay-done span"))
		st, _ = purseOf(t, card)
		assert.Equal(t, uint32(465_000), st.Balance, "debited once")
		o, err := r.ob.PurseRequest(pending)
		require.NoError(t, err)
		assert.Equal(t, outbox.PurseRequestDone, o.Status)
		j, err = r.ob.PurseJournals()
		require.NoError(t, err)
		assert.Empty(t, j)
		assert.False(t, strings.Contains(b.Text("#pay"), "Budi"), "the panel shows no holder's data")
		assert.Len(t, r.payRecords(t), 2, "the submitted form paid nothing")
		// a new purchase only through Pembayaran baru: the form opens again
		b.Click("#pay-new")
		var open bool
		b.Eval(`!document.getElementById("pay-submit").disabled && !document.getElementById("pay-amount").disabled && document.getElementById("pay-amount").value === ""`, &open)
		assert.True(t, open)
	})
}
