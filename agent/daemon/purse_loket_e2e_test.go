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
)

// The counter screen shows the card's e-wallet balance after a KPE's
// authentication (GET /v1/purse, docs/ewallet.md), in headless Chromium
// through the whole terminal: none before, Budi's Rp 500.000 after the
// clerk's authentication, Rp 485.000 once the panel took a payment, worded
// again in English, gone with the card; the card back and authenticated
// again, the balance as the agent read it from the card.
func TestLoketPurseBalance(t *testing.T) {
	r := newPayRig(t)
	card := freshBudi(t)
	r.insertCard(t, card)
	b := browsertest.Start(t, browsertest.WindowSize(1366, 900))
	b.Navigate(r.loketLink(t))
	b.Wait(`document.getElementById("link").dataset.state === "open"`, 10*time.Second)
	b.Click("#lang-id")
	b.SetValue("#operator", "kasir-02")
	b.Click("#shift-start")
	b.Wait(`!document.getElementById("work").hidden`, 5*time.Second)
	var hidden bool
	b.Eval(`document.getElementById("purse-line").hidden`, &hidden)
	assert.True(t, hidden, "no balance before an authentication")

	auth := func(t *testing.T) {
		t.Helper()
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		b.Click("#start")
		b.Wait(`!document.getElementById("purse-line").hidden`, 30*time.Second)
	}
	auth(t)
	assert.Equal(t, i18n.Indonesian.T("loket.purse.balance"), b.Text("#purse-line span"))
	assert.Equal(t, "500.000", b.Text("#purse-balance"))
	st, _ := purseOf(t, card)
	assert.Equal(t, uint32(budiStartBal), st.Balance)

	// a payment from the panel: the shown balance follows
	b.SetValue("#pay-amount", "15000")
	b.SetValue("#pay-ref", "INV-90")
	b.Click("#pay-submit")
	b.Wait(`!document.getElementById("pay-done").hidden`, 30*time.Second)
	assert.Equal(t, "485.000", b.Text("#purse-balance"))

	b.Click("#lang-en")
	assert.Equal(t, i18n.English.T("loket.purse.balance"), b.Text("#purse-line span"))
	assert.Equal(t, "485,000", b.Text("#purse-balance"))

	// the card leaves: the balance goes with it
	require.NoError(t, r.lab.Remove(0))
	pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
	b.Wait(`document.getElementById("purse-line").hidden`, 10*time.Second)
	assert.Empty(t, b.Text("#purse-balance"))

	// back, authenticated again: what the agent read from the card
	r.insertCard(t, card)
	auth(t)
	assert.Equal(t, "485,000", b.Text("#purse-balance"))
	st, _ = purseOf(t, card)
	assert.Equal(t, uint32(485_000), st.Balance)
}
