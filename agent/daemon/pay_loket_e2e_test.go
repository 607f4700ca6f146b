package daemon_test

import (
	"encoding/json"
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
		pending := tornAfterDebit(t, r, card, 465_000)
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
		st, _ := purseOf(t, card)
		assert.Equal(t, uint32(465_000), st.Balance, "debited once")
		o, err := r.ob.PurseRequest(pending)
		require.NoError(t, err)
		assert.Equal(t, outbox.PurseRequestDone, o.Status)
		j, err := r.ob.PurseJournals()
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

// A payment whose answer the page lost survives a reload: the card is
// pulled after its DEBIT (pending), the page is loaded again, and the
// attempt comes back from sessionStorage with the form locked (only Retry
// and "Pembayaran baru"), its outcome asked of the agent by the same key.
// Retry, once the card is back, sends that key: done, the card debited once.
func TestLoketPayReload(t *testing.T) {
	r := newPayRig(t)
	card := freshBudi(t)
	r.insertCard(t, card)
	require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
	b := browsertest.Start(t, browsertest.WindowSize(1366, 900))
	b.Navigate(r.loketLink(t))
	b.Wait(`document.getElementById("link").dataset.state === "open"`, 10*time.Second)
	b.Click("#lang-id")
	startShift := func() {
		b.SetValue("#operator", "kasir-01")
		b.Click("#shift-start")
		b.Wait(`!document.getElementById("pay").hidden`, 5*time.Second)
	}
	startShift()
	stored := func() string {
		var s string
		b.Eval(`sessionStorage.getItem("kpe-loket.pay-attempt") ?? ""`, &s)
		return s
	}

	// a first payment, done, to find the DEBIT among the card's commands
	mark := card.count()
	b.SetValue("#pay-amount", "15000")
	b.SetValue("#pay-ref", "INV-77")
	b.Click("#pay-submit")
	b.Wait(`!document.getElementById("pay-done").hidden`, 30*time.Second)
	assert.Empty(t, stored(), "a settled attempt is not kept")
	debitAt := slices.Index(card.since(mark), kpe.InsPurseDebit) + 1
	require.Positive(t, debitAt)

	// the next one's answer is lost: the card is torn right after its DEBIT
	b.Click("#pay-new")
	b.SetValue("#pay-amount", "20000")
	b.SetValue("#pay-ref", "INV-79")
	require.NoError(t, r.lab.SetFault(0, cardsim.Fault{AnswerLostAtAPDU: debitAt}))
	b.Click("#pay-submit")
	b.Wait(`document.getElementById("pay-state").textContent === `+jsString(i18n.Indonesian.T("loket.pay.pending")), 30*time.Second)
	var kept struct {
		Key, Ref, Reader string
		Amount           int
	}
	require.NoError(t, json.Unmarshal([]byte(stored()), &kept))
	assert.Regexp(t, `^loket-[0-9a-f]{32}$`, kept.Key)
	assert.Equal(t, 20000, kept.Amount)
	assert.Equal(t, "INV-79", kept.Ref)
	assert.NotContains(t, stored(), "Budi", "no personal data in the browser")
	assert.NotContains(t, stored(), "kasir-01", "the clerk ID stays in the page's memory")
	pending := tornAfterDebit(t, r, card, 465_000)

	// the reload: the page forgets its memory, not the attempt
	b.Navigate(r.base + api.PathLoket)
	b.Wait(`document.getElementById("link").dataset.state === "open"`, 10*time.Second)
	b.Click("#lang-id")
	startShift()
	b.Wait(`document.getElementById("pay-state").textContent === `+jsString(i18n.Indonesian.T("loket.pay.pending")), 10*time.Second)
	var form struct {
		Amount, Ref                                 string
		Submit, AmountOff, RefOff, Retry, New, Busy bool
	}
	b.Eval(`(() => { const $ = (id) => document.getElementById(id);
		$("pay-form").requestSubmit();
		return {Amount: $("pay-amount").value, Ref: $("pay-ref").value, Submit: $("pay-submit").disabled,
			AmountOff: $("pay-amount").disabled, RefOff: $("pay-ref").disabled,
			Retry: !$("pay-retry").hidden && !$("pay-retry").disabled, New: !$("pay-new").hidden && !$("pay-new").disabled,
			Busy: $("pay-state").textContent === `+jsString(i18n.Indonesian.T("loket.pay.paying"))+`}; })()`, &form)
	assert.Equal(t, "20000", form.Amount)
	assert.Equal(t, "INV-79", form.Ref)
	assert.True(t, form.Submit && form.AmountOff && form.RefOff, "the form is locked after the reload")
	assert.True(t, form.Retry, "Retry is offered")
	assert.True(t, form.New, "Pembayaran baru is offered")
	assert.False(t, form.Busy, "a submitted form starts nothing")
	assert.Len(t, r.payRecords(t), 1, "nothing paid by the reload")

	// the card back: Retry sends the stored key, settled from the card's log
	r.insertCard(t, card)
	b.Click("#pay-retry")
	b.Wait(`!document.getElementById("pay-done").hidden`, 30*time.Second)
	recs := r.payRecords(t)
	require.Len(t, recs, 2)
	assert.Equal(t, pending, recs[1].Purse.Request, "the retry after the reload sent the attempt's key")
	assert.True(t, recs[1].Purse.Resolved)
	assert.Equal(t, "INV-79", recs[1].Purse.Reference)
	assert.Equal(t, codeOf(t, recs[1]), b.Text("#pay-code"))
	assert.Equal(t, "465.000", b.Text("#pay-balance"))
	st, _ := purseOf(t, card)
	assert.Equal(t, uint32(465_000), st.Balance, "debited once")
	o, err := r.ob.PurseRequest(pending)
	require.NoError(t, err)
	assert.Equal(t, outbox.PurseRequestDone, o.Status)
	assert.Empty(t, stored(), "settled: forgotten")

	// reloaded once more: nothing to restore, the form is open
	b.Navigate(r.base + api.PathLoket)
	b.Wait(`document.getElementById("link").dataset.state === "open"`, 10*time.Second)
	startShift()
	var open bool
	b.Eval(`!document.getElementById("pay-submit").disabled && document.getElementById("pay-amount").value === "" && document.getElementById("pay-retry").hidden`, &open)
	assert.True(t, open)

	// an unsettled attempt is forgotten by "Ganti petugas" too
	b.Eval(`(sessionStorage.setItem("kpe-loket.pay-attempt", JSON.stringify({key: "loket-`+strings.Repeat("ab", 16)+`", amount: 5000, ref: "INV-80", reader: ""})), true)`, &open)
	b.Navigate(r.base + api.PathLoket)
	b.Wait(`document.getElementById("link").dataset.state === "open"`, 10*time.Second)
	startShift()
	b.Wait(`!document.getElementById("pay-retry").hidden && document.getElementById("pay-submit").disabled`, 10*time.Second)
	b.Click("#shift-change")
	assert.Empty(t, stored())
	startShift()
	b.Eval(`!document.getElementById("pay-submit").disabled && document.getElementById("pay-amount").value === "" && document.getElementById("pay-retry").hidden`, &open)
	assert.True(t, open, "the next clerk starts with an open form")
	assert.Len(t, r.payRecords(t), 2)
}

// tornAfterDebit checks the card took a DEBIT torn by the armed fault (its
// balance now balance), clears the fault, waits until the lab and the
// agent saw the card go, and answers the one journaled request.
func tornAfterDebit(t *testing.T, r *rig, card *tracedCard, balance uint32) [16]byte {
	t.Helper()
	st, _ := purseOf(t, card)
	assert.Equal(t, balance, st.Balance, "the card took the DEBIT")
	require.NoError(t, r.lab.ClearFault(0))
	r.faultRemoved(t)
	j, err := r.ob.PurseJournals()
	require.NoError(t, err)
	require.Len(t, j, 1)
	return j[0].Request
}
