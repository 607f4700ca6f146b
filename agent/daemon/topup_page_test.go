package daemon_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/browsertest"
	"kpe-agent/internal/i18n"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/pcsctest"
	"kpe-agent/sync/record"
)

// topUpAnswers are the agent's answers the kiosk page fetched so far, the
// e-wallet's among them.
func (k *kioskTab) topUpAnswers() []string {
	k.t.Helper()
	var urls []string
	k.b.Eval(`performance.getEntriesByType("resource").map((e) => e.name).filter((u) => u.includes("/v1/kiosk/") || u.includes("/v1/readers") || u.includes("/v1/purse"))`, &urls)
	return urls
}

// The kiosk's e-wallet in Chromium through the whole terminal (the card
// lab, the agent, the back office issuing top-ups on PostgreSQL): after
// the fingerprint Budi sees his balance and the card's transactions; a
// top-up staged for him is offered with its amount; "Ya, tambahkan"
// credits it and shows the new balance and the code, and the card's log
// the credit; the same in English; a card whose credit lost its answer
// shows the pending screen, and on its reinsertion the agent settles it
// from the card's log and the balance shows it. Each screen is checked in
// both orientations; nothing of it stays in the page after the session.
func TestKioskTopUpPage(t *testing.T) {
	r := newTopUpRig(t, rigOptions{})
	b := browsertest.Start(t, browsertest.WindowSize(1080, 1920))
	b.Viewport(kioskScreens[0].width, kioskScreens[0].height, shotScale)
	kt := &kioskTab{t: t, r: r, b: b}
	kt.open()
	kt.waiting()
	secrets := []string{"Budi", budiNIP, "650.000", "650,000", "525.000"}

	// the card object stays the test's: its purse lives in it
	card, err := cardsim.LoadCard(pcsctest.RepoPath(budiImage))
	require.NoError(t, err)
	insert := func(t *testing.T) {
		require.NoError(t, r.lab.Insert(0, card))
		pcsctest.WaitCard(t, pcsctest.Slot0, true, 15*time.Second)
	}
	t.Cleanup(func() {
		_ = r.lab.Remove(0)
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
	})

	var code string
	t.Run("balance-and-topup", func(t *testing.T) {
		k := kt.in(t)
		r.stageTopUp(t, 150_000, "TRF-PAGE-0001")
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		insert(t)
		k.screen("result")
		k.b.Wait(`!document.getElementById("purse").hidden`, 20*time.Second)
		assert.Equal(t, "Dompet Elektronik Anda", k.text("#purse-title"))
		assert.Equal(t, "Rp 500.000", k.text("#purse-balance"))
		assert.Equal(t, "Rp 20.000.000", k.text("#purse-max"))
		assert.Equal(t, i18n.Indonesian.T("kiosk.purse.empty"), k.text("#purse-empty"))
		k.b.Wait(`!document.getElementById("topup-offer").hidden`, 20*time.Second)
		assert.Equal(t, "Rp 150.000", k.text("#topup-amount"))
		assert.Equal(t, "Ya, tambahkan", k.text("#topup-apply"))
		assert.Equal(t, "Nanti saja", k.text("#topup-decline"))
		k.check("topup-offer")

		k.b.Click("#topup-apply")
		k.b.Wait(`!document.getElementById("topup-done").hidden`, 30*time.Second)
		assert.Equal(t, "Saldo Anda sudah ditambahkan", k.text("#topup-done strong"))
		assert.Equal(t, "Rp 650.000", k.text("#topup-new-balance"))
		assert.Equal(t, "Rp 650.000", k.text("#purse-balance"))
		code = k.text("#topup-code")
		_, err := record.ParseCode(code)
		require.NoError(t, err, code)
		var rows []string
		k.b.Eval(`[...document.querySelectorAll("#purse-rows tr")].map((tr) => tr.textContent)`, &rows)
		require.Len(t, rows, 1)
		assert.Contains(t, rows[0], "Isi ulang")
		assert.Contains(t, rows[0], "Rp 150.000")
		// the offer is gone (the apply's answer hides it)
		k.b.Wait(`document.getElementById("topup-offer").hidden`, 10*time.Second)
		k.check("topup-done")
		st, _ := purseOf(t, card)
		assert.EqualValues(t, 650_000, st.Balance, "the card")

		// the holder's words in English, the same session
		k.b.Click("#lang-en")
		// the title and the amounts are reworded one after the other
		k.b.Wait(`document.getElementById("purse-title").textContent === "Your e-wallet" && document.getElementById("purse-balance").textContent.includes(",")`, 5*time.Second)
		assert.Equal(t, "Your balance", k.text(".purse-balance span"))
		assert.Equal(t, "Rp 650,000", k.text("#purse-balance"))
		assert.Equal(t, "Your balance has been topped up", k.text("#topup-done strong"))
		k.b.Eval(`[...document.querySelectorAll("#purse-rows tr")].map((tr) => tr.textContent)`, &rows)
		require.Len(t, rows, 1)
		assert.Contains(t, rows[0], "Top-up")
		k.check("topup-done-en")

		answers := k.topUpAnswers()
		k.b.Click("#finish")
		k.screen("attract")
		k.b.Wait(`document.documentElement.lang === "id"`, 5*time.Second)
		k.clean(answers, nil, append(secrets, code)...)
		require.NoError(t, r.lab.Remove(0))
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
		k.waiting()
	})
	require.NotEmpty(t, code)

	// The credit's answer lost (the card taken at CREDIT): pending; the
	// card back, the page starts afresh, and the authentication settles
	// the credit from the card's log.
	t.Run("pending-then-settled", func(t *testing.T) {
		k := kt.in(t)
		r.stageTopUp(t, 25_000, "TRF-PAGE-0002")
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		insert(t)
		k.screen("result")
		k.b.Wait(`!document.getElementById("topup-offer").hidden`, 20*time.Second)
		assert.Equal(t, "Rp 25.000", k.text("#topup-amount"))
		// the apply's 5th command is CREDIT (SELECT, READ PURSE, SELECT,
		// READ PURSE, CREDIT): the card takes it, its answer is lost
		require.NoError(t, r.lab.SetFault(0, cardsim.Fault{AnswerLostAtAPDU: 5}))
		k.b.Click("#topup-apply")
		k.b.Wait(`!document.getElementById("topup-pending").hidden`, 30*time.Second)
		assert.Equal(t, "Isi ulang belum dapat dipastikan", k.text("#topup-pending strong"))
		assert.Equal(t, i18n.Indonesian.T("kiosk.topup.reason.card-removed"), k.text("#topup-pending-message"))
		k.check("topup-pending")
		j, err := r.ob.PurseJournals()
		require.NoError(t, err)
		require.Len(t, j, 1, "the journal keeps the torn credit")
		require.NoError(t, r.lab.ClearFault(0))
		require.Eventually(t, func() bool {
			st, err := r.lab.SlotStatus(0)
			return err == nil && !st.Inserted
		}, 20*time.Second, 10*time.Millisecond)

		// the card back: a fresh page, then the authentication settles it
		k.b.Eval(`window.before = true`, nil)
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		insert(t)
		k.b.Wait(`window.before === undefined && document.body.dataset.screen === "attract" && !document.getElementById("start").hidden`, 30*time.Second)
		k.b.Click("#start")
		k.screen("result")
		k.b.Wait(`!document.getElementById("purse").hidden`, 20*time.Second)
		assert.Equal(t, "Rp 675.000", k.text("#purse-balance"))
		var rows []string
		k.b.Eval(`[...document.querySelectorAll("#purse-rows tr")].map((tr) => tr.textContent)`, &rows)
		require.Len(t, rows, 2)
		assert.Contains(t, rows[0], "Rp 25.000", "newest first")
		j, err = r.ob.PurseJournals()
		require.NoError(t, err)
		assert.Empty(t, j, "settled")
		recs := r.purseRecords(t)
		require.Len(t, recs, 2)
		assert.True(t, recs[1].Purse.Resolved || recs[0].Purse.Resolved, "the torn credit recorded from the card's log")

		answers := k.topUpAnswers()
		k.b.Click("#finish")
		k.screen("attract")
		k.clean(answers, nil, append(secrets, code, "675.000")...)
	})
}
