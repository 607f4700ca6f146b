package daemon_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/agent/config"
	"kpe-agent/internal/browsertest"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/pcsctest"
)

// The example frontline page (examples/frontline) in headless Chromium
// against the whole terminal: real pcscd, the card lab, the agent's API
// and the back office. The page is served from its own origin (the rig's
// allowed origin, http://his.puskesmas.local, resolved by the browser to a
// loopback test server), loads the client from the agent and uses nothing
// else. A genuine KPE's authentication shows the code that the back office
// then verifies; Cancel ends a workflow waiting for the finger; a reader
// held by another application is reported as such.
func TestFrontlineExamplePage(t *testing.T) {
	r := newRig(t)
	r.insert(1, "sam.json")
	r.waitHealth(samReady)

	site := httptest.NewServer(http.FileServer(http.Dir(pcsctest.RepoPath("examples/frontline"))))
	defer site.Close()
	b := browsertest.Start(t, browsertest.MapHost("his.puskesmas.local", strings.TrimPrefix(site.URL, "http://")))
	b.Navigate("http://his.puskesmas.local/")
	b.SetValue("#agent", r.base)
	b.SetValue("#token", token)
	b.SetValue("#lang", "en")
	// the page's default: the last fingerprint try is asked inside the
	// workflow (prompts)
	var prompts bool
	b.Eval(`document.getElementById("prompts").checked`, &prompts)
	require.True(t, prompts)
	b.Click("#connect-btn")
	b.Wait(`document.getElementById("link").dataset.state === "open"`, 10*time.Second)
	var readers []string
	b.Eval(`[...document.getElementById("reader").options].map((o) => o.value)`, &readers)
	assert.Equal(t, []string{pcsctest.Slot0}, readers, "the card reader, not the SAM's")

	// frontlineDone: a code shown and the request ended. The code alone is
	// not enough: the agent's "recorded" event (which fills it) can reach
	// the page before the request's answer (which sets the message and
	// frees Start; the page ignores Start while a request runs).
	const frontlineDone = `/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{3}[0-9A-Z*~$=]$/.test(document.getElementById("code").textContent) && !document.getElementById("start").disabled`
	t.Run("genuine-kpe", func(t *testing.T) {
		b := b.For(t)
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		b.SetValue("#service", "askes")
		b.SetValue("#operator", "clerk-07")
		b.Click("#start")
		// the page waits for the card (wait_seconds), as a counter does
		b.Wait(`document.getElementById("message").textContent.startsWith("Insert the card")`, 5*time.Second)
		r.insert(0, "kpe-budi.json")
		b.Wait(frontlineDone, 30*time.Second)
		code := b.Text("#code")
		assert.Equal(t, "Authentication succeeded and is recorded. Write the authentication code on the form.", b.Text("#message"))
		// the progress came from the event stream, in English
		b.Wait(`[...document.querySelectorAll("#progress li")].some((li) => li.dataset.state === "recorded")`, 5*time.Second)
		var steps []string
		b.Eval(`[...document.querySelectorAll("#progress li")].map((li) => li.textContent)`, &steps)
		assert.Equal(t, []string{
			"detected", "identified", "authenticated",
			"fingerprint: Ask the cardholder to place a finger on the fingerprint sensor.",
			"verified",
			"recorded: Authentication succeeded and is recorded. Write the authentication code on the form.",
		}, steps)
		// the very code the agent recorded and the back office verifies
		require.Eventually(t, func() bool {
			v, err := r.svc.Verify(context.Background(), code)
			return err == nil && v.Valid
		}, 10*time.Second, 50*time.Millisecond)
		v, err := r.svc.Verify(context.Background(), code)
		require.NoError(t, err)
		assert.Equal(t, "askes", v.Service)
	})

	t.Run("cancel", func(t *testing.T) {
		b := b.For(t)
		require.NoError(t, r.lab.PlaceFinger(0, ""))
		r.setConf(func(c *config.Config) { c.Fingerprint.Timeout = 20 * time.Second })
		t.Cleanup(func() { r.setConf(func(c *config.Config) { c.Fingerprint.Timeout = 3 * time.Second }) })
		b.Click("#start")
		b.Wait(`[...document.querySelectorAll("#progress li")].some((li) => li.dataset.state === "fingerprint")`, 10*time.Second)
		b.Click("#cancel")
		b.Wait(`document.getElementById("message").textContent.includes("(cancelled)")`, 10*time.Second)
		assert.Equal(t, "", b.Text("#code"))
		r.waitReader(t, pcsctest.Slot0, func(rd api.Reader) bool { return !rd.Busy })
	})

	// The card brought to one fingerprint try left by an impostor: the
	// page shows the workflow's prompt, the clerk uses the last try, and
	// the genuine finger gets the code, in the same workflow.
	t.Run("last-try-prompt", func(t *testing.T) {
		b := b.For(t)
		r.setConf(func(c *config.Config) { c.Fingerprint.Timeout = 20 * time.Second })
		t.Cleanup(func() { r.setConf(func(c *config.Config) { c.Fingerprint.Timeout = 3 * time.Second }) })
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerImpostor))
		plain := api.AuthRequest{Service: "askes", Operator: "clerk-07"}
		for want := 4; want >= 1; want-- {
			status, e := r.call("POST", api.PathAuth, plain, nil)
			require.Equal(t, http.StatusUnprocessableEntity, status, "%+v", e)
			require.Equal(t, want, e.TriesLeft)
		}
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		b.SetValue("#service", "askes")
		b.Click("#start")
		b.Wait(`!document.getElementById("prompt").hidden`, 20*time.Second)
		assert.Equal(t, "One fingerprint try left on the card; if it fails, the card's fingerprint check is blocked. Confirm to use it, or cancel.", b.Text("#prompt-text"))
		b.Click("#prompt-continue")
		b.Wait(frontlineDone, 30*time.Second)
		var hidden bool
		b.Eval(`document.getElementById("prompt").hidden`, &hidden)
		assert.True(t, hidden, "the prompt is gone once answered")
	})

	t.Run("reader-busy", func(t *testing.T) {
		b := b.For(t)
		// another application's workflow waits for the finger on the reader
		other := r.waitingForFinger(t, api.AuthRequest{Service: "taspen", Operator: "his-02"})
		b.Click("#start")
		b.Wait(`document.getElementById("message").textContent.includes("(reader-busy)")`, 10*time.Second)
		status, _ := r.call("POST", api.PathCancel, api.CancelRequest{Reader: pcsctest.Slot0}, nil)
		assert.Equal(t, http.StatusNoContent, status)
		assert.Equal(t, "cancelled", (<-other).Code)
	})

	// the token never reached the page's storage or its URL
	var stored string
	b.Eval(`JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie + location.href`, &stored)
	assert.NotContains(t, stored, token)
}
