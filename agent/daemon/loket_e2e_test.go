package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
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
	"kpe-agent/internal/i18n"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/pcsctest"
)

// loketLink asks the agent for a one-time login link, as kpectl loket does.
func (r *rig) loketLink(t *testing.T) string {
	t.Helper()
	var l api.LoketLogin
	status, e := r.call("POST", api.PathLoketLogin, nil, &l)
	require.Equal(t, http.StatusOK, status, "%+v", e)
	require.True(t, strings.HasPrefix(l.URL, r.base+api.PathLoket+"?login="), l.URL)
	return l.URL
}

// evilPage is another origin's page that tries the agent with whatever
// credential the browser holds.
const evilPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>evil</title></head><body><script>
window.attempts = (async (agent) => {
  const out = {};
  const tryIt = async (name, url, init) => {
    try {
      const res = await fetch(agent + url, {credentials: "include", ...init});
      out[name] = "answered " + res.status;
    } catch (e) {
      out[name] = "refused";
    }
  };
  await tryIt("codes", "/v1/codes/today");
  await tryIt("auth", "/v1/auth", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({service: "askes", operator: "evil", wait_seconds: 5})});
  await tryIt("login", "/v1/loket/login", {method: "POST"});
  return out;
})(%q);
</script></body></html>`

// The counter screen in headless Chromium through the whole terminal:
// logged in with a one-time link, a clerk runs an ASKES authentication of
// kpe-budi, gets the form filled from the card with the code and its QR
// code, prints it on A4, and sees today's codes, without names; the link
// works once, and another origin's page gets nothing.
func TestLoketEndToEnd(t *testing.T) {
	r := newRig(t)
	r.insert(1, "sam.json")
	r.waitHealth(samReady)

	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, evilPage, r.base)
	}))
	defer evil.Close()
	b := browsertest.Start(t, browsertest.WindowSize(1366, 900), browsertest.MapHost("evil.example", strings.TrimPrefix(evil.URL, "http://")))

	link := r.loketLink(t)
	b.Navigate(link)
	var href, cookies string
	b.Eval(`location.href`, &href)
	assert.Equal(t, r.base+api.PathLoket, href, "the code left the address bar")
	b.Eval(`document.cookie`, &cookies)
	assert.Empty(t, cookies, "the credential is out of the page's reach")
	b.Wait(`document.getElementById("link").dataset.state === "open"`, 10*time.Second)
	var hidden bool
	b.Eval(`document.getElementById("login").hidden`, &hidden)
	assert.True(t, hidden, "logged in")

	// the language switch: ID, then EN for the rest of the test
	b.Click("#lang-id")
	assert.Equal(t, i18n.Indonesian.T("loket.title"), b.Text("h1"))
	b.Click("#lang-en")
	assert.Equal(t, i18n.English.T("loket.title"), b.Text("h1"))
	b.Wait(`document.getElementById("link").dataset.state === "open"`, 10*time.Second)
	assert.Equal(t, i18n.English.T("loket.shift.start"), b.Text("#shift-start"))

	// the shift: the clerk ID once, checked
	b.SetValue("#operator", "clerk 07")
	b.Click("#shift-start")
	b.Eval(`document.getElementById("shift-error").hidden`, &hidden)
	assert.False(t, hidden, "not a clerk ID")
	b.SetValue("#operator", "clerk-07")
	b.Click("#shift-start")
	b.Wait(`!document.getElementById("work").hidden`, 5*time.Second)
	assert.Equal(t, "clerk-07", b.Text("#operator-name"))
	var readers []string
	// the list is filled by a fetch the open stream starts
	b.Wait(`document.getElementById("reader").options.length > 0`, 10*time.Second)
	b.Eval(`[...document.getElementById("reader").options].map((o) => o.value)`, &readers)
	assert.Equal(t, []string{pcsctest.Slot0}, readers, "the card reader, not the SAM's")

	var code string
	t.Run("askes", func(t *testing.T) {
		b := b.For(t)
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		b.Click("#start")
		b.Wait(`document.getElementById("message").textContent === `+jsString(i18n.English.T("loket.waiting-card")), 5*time.Second)
		r.insert(0, "kpe-budi.json")
		t.Cleanup(func() {
			_ = r.lab.Remove(0)
			pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
		})
		b.Wait(`/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{3}[0-9A-Z*~$=]$/.test(document.getElementById("code").textContent)`, 30*time.Second)
		code = b.Text("#code")
		assert.Equal(t, i18n.English.T("clerk.recorded"), b.Text("#message"))
		var steps []string
		// the code comes with the answer, the steps with the event stream:
		// either can arrive first
		b.Wait(`[...document.querySelectorAll("#progress li")].some((li) => li.dataset.state === "recorded")`, 10*time.Second)
		b.Eval(`[...document.querySelectorAll("#progress li")].map((li) => li.dataset.state)`, &steps)
		assert.Equal(t, []string{"detected", "identified", "authenticated", "fingerprint", "verified", "recorded"}, steps)

		// the form, filled from the card, with the code and its QR code
		b.Wait(`!document.getElementById("form").hidden && document.getElementById("form-qr").naturalWidth > 0`, 10*time.Second)
		field := func(name string) string { return b.Text(`#form-fields [data-field="` + name + `"] dd`) }
		assert.Contains(t, field("nama"), "Budi Santoso")
		assert.Equal(t, "197208172000031002", field("nip"))
		assert.Equal(t, "Yogyakarta", field("tempat_lahir"))
		assert.Equal(t, "1972-08-17", field("tanggal_lahir"), "the API's date form")
		assert.Equal(t, "0001234567890", field("no_askes_bpjs"))
		assert.Equal(t, "IV/c", field("golongan_ruang"))
		var shown []string
		b.Eval(`[...document.querySelectorAll("#form-fields [data-field]")].filter((d) => !d.hidden).map((d) => d.dataset.field)`, &shown)
		assert.NotContains(t, shown, "nip_pegawai", "a KPE's own form: no civil servant's NIP row")
		assert.Equal(t, i18n.English.T("loket.form.verified"), b.Text("#form-verified"))
		assert.Equal(t, code, b.Text("#form-code"))
		assert.Equal(t, "clerk-07", b.Text("#form-operator"))
		assert.Regexp(t, `^20[0-9]{2}-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]$`, b.Text("#form-time"))
		assert.Equal(t, terminal, b.Text("#form-terminal"))
		var qr string
		b.Eval(`document.getElementById("form-qr").src`, &qr)
		assert.True(t, strings.HasPrefix(qr, "blob:"+r.base+"/"), qr)

		// printed on A4: the form and its code alone
		b.Media("print")
		var layout struct {
			Form, Work, Codes, Header, Print string
			Text                             string
			Width                            float64
			QR                               bool
		}
		b.Eval(`(() => {
			const d = (id) => getComputedStyle(document.getElementById(id)).display;
			const f = document.getElementById("form");
			const qr = document.getElementById("form-qr").getBoundingClientRect();
			return {form: d("form"), work: d("work"), codes: d("codes"), header: getComputedStyle(document.querySelector("header")).display,
				print: document.getElementById("print").getClientRects().length === 0 ? "none" : "shown",
				text: f.innerText, width: f.getBoundingClientRect().width, qr: qr.width > 0 && qr.height > 0};
		})()`, &layout)
		b.Media("")
		assert.Equal(t, "block", layout.Form)
		assert.Equal(t, "none", layout.Work)
		assert.Equal(t, "none", layout.Codes)
		assert.Equal(t, "none", layout.Header)
		assert.Equal(t, "none", layout.Print, "no button on paper")
		assert.Contains(t, layout.Text, code)
		assert.Contains(t, layout.Text, "Budi Santoso")
		assert.Contains(t, layout.Text, i18n.English.T("loket.form.title"))
		assert.Greater(t, layout.Width, 300.0)
		assert.True(t, layout.QR, "the QR code on paper")

		// the very code the agent recorded, for ASKES by this clerk
		last, err := r.ob.Last()
		require.NoError(t, err)
		assert.Equal(t, "askes", last.Service)
		assert.Equal(t, "clerk-07", last.OperatorID)
	})
	require.NotEmpty(t, code)

	t.Run("todays-codes", func(t *testing.T) {
		b := b.For(t)
		b.Wait(`[...document.querySelectorAll("#codes-body tr td:first-child")].some((td) => td.textContent === `+jsString(code)+`)`, 10*time.Second)
		var rows [][]string
		b.Eval(`[...document.querySelectorAll("#codes-body tr")].map((tr) => [...tr.cells].map((td) => td.textContent))`, &rows)
		require.Len(t, rows, 1)
		assert.Equal(t, code, rows[0][0])
		assert.Equal(t, i18n.English.T("loket.service.askes"), rows[0][1])
		assert.Regexp(t, `^[0-2][0-9]:[0-5][0-9]:[0-5][0-9]$`, rows[0][2])
		// queued, or synced already: the uploader takes new records in the background
		assert.Contains(t, []string{i18n.English.T("loket.codes.state.queued"), i18n.English.T("loket.codes.state.synced")}, rows[0][3])
		section := b.Text("#codes")
		for _, personal := range []string{"Budi", "Santoso", "197208172000031002", "clerk-07"} {
			assert.NotContains(t, section, personal)
		}
		var raw json.RawMessage
		status, e := r.call("GET", api.PathCodesToday, nil, &raw)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Contains(t, string(raw), code)
		assert.NotContains(t, string(raw), "197208172000031002")

		// sent to the back office (now, if not yet): the list says so
		var res api.SyncResult
		status, e = r.call("POST", api.PathSync, nil, &res)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		require.Nil(t, res.Error)
		b.Wait(`document.querySelector("#codes-body tr")?.dataset.state === "synced"`, 10*time.Second)
		assert.Equal(t, i18n.English.T("loket.codes.state.synced"), b.Text("#codes-body tr td:last-child"))
		v, err := r.svc.Verify(context.Background(), code)
		require.NoError(t, err)
		assert.True(t, v.Valid)
	})

	// The card brought to one fingerprint try left by an impostor: the
	// screen asks the clerk within the workflow, the clerk uses the last
	// try, and the genuine finger gets the code. Taspen: no ASKES form.
	t.Run("last-try-prompt", func(t *testing.T) {
		b := b.For(t)
		r.setConf(func(c *config.Config) { c.Fingerprint.Timeout = 20 * time.Second })
		t.Cleanup(func() { r.setConf(func(c *config.Config) { c.Fingerprint.Timeout = 3 * time.Second }) })
		r.present(t, "kpe-budi.json")
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerImpostor))
		for want := 4; want >= 1; want-- {
			status, e := r.call("POST", api.PathAuth, api.AuthRequest{Service: "taspen", Operator: "his-02", WaitSeconds: 5}, nil) // the agent may hear of the card after pcscd
			require.Equal(t, http.StatusUnprocessableEntity, status, "%+v", e)
			require.Equal(t, want, e.TriesLeft)
		}
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		b.Click(`input[name="service"][value="taspen"]`)
		b.Click("#start")
		b.Wait(`!document.getElementById("prompt").hidden`, 20*time.Second)
		assert.Equal(t, i18n.English.T("clerk.confirm-last-try"), b.Text("#prompt-text"))
		b.Click("#prompt-continue")
		b.Wait(`/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{3}[0-9A-Z*~$=]$/.test(document.getElementById("code").textContent)`, 30*time.Second)
		assert.NotEqual(t, code, b.Text("#code"))
		var hidden [2]bool
		b.Eval(`[document.getElementById("prompt").hidden, document.getElementById("form").hidden]`, &hidden)
		assert.Equal(t, [2]bool{true, true}, hidden, "the prompt answered; no ASKES form for Taspen")
		last, err := r.ob.Last()
		require.NoError(t, err)
		assert.Equal(t, "taspen", last.Service)
		r.pull(t)
	})

	t.Run("cancel", func(t *testing.T) {
		b := b.For(t)
		r.setConf(func(c *config.Config) { c.Fingerprint.Timeout = 20 * time.Second })
		t.Cleanup(func() { r.setConf(func(c *config.Config) { c.Fingerprint.Timeout = 3 * time.Second }) })
		r.present(t, "kpe-budi.json")
		require.NoError(t, r.lab.PlaceFinger(0, ""))
		b.Click("#start")
		b.Wait(`[...document.querySelectorAll("#progress li")].some((li) => li.dataset.state === "fingerprint")`, 10*time.Second)
		b.Click("#cancel")
		b.Wait(`document.getElementById("message").textContent.endsWith("(cancelled)")`, 10*time.Second)
		assert.Equal(t, "", b.Text("#code"))
		r.waitReader(t, pcsctest.Slot0, func(rd api.Reader) bool { return !rd.Busy })
		var start bool
		b.Eval(`document.getElementById("start").disabled`, &start)
		assert.False(t, start, "ready for the next one")
		r.pull(t)
	})

	t.Run("link-used", func(t *testing.T) {
		b := b.For(t)
		b.Navigate(link)
		b.Wait(`!document.getElementById("login").hidden`, 5*time.Second)
		assert.Equal(t, i18n.English.T("loket.login.expired"), b.Text("#login-reason"))
		var app bool
		b.Eval(`document.getElementById("app").hidden`, &app)
		assert.True(t, app, "nothing of the screen")
		// the credential it already had still counts: the screen is back,
		// and asks for the clerk ID again (page memory only)
		b.Navigate(r.base + api.PathLoket)
		b.Wait(`document.getElementById("link").dataset.state === "open"`, 10*time.Second)
		b.Eval(`document.getElementById("work").hidden`, &app)
		assert.True(t, app, "the clerk ID is asked again after a reload")
		var stored string
		b.Eval(`JSON.stringify(localStorage) + JSON.stringify(sessionStorage)`, &stored)
		assert.Equal(t, "{}{}", stored)
	})

	t.Run("foreign-origin", func(t *testing.T) {
		b := b.For(t)
		before, err := r.ob.Last()
		require.NoError(t, err)
		b.Navigate("http://evil.example/")
		var got map[string]string
		b.Eval(`window.attempts`, &got)
		assert.Equal(t, map[string]string{"codes": "refused", "auth": "refused", "login": "refused"}, got)
		assert.True(t, r.logs.seen("local API: request from a foreign Origin refused"), "the agent refused it, not only the browser")
		after, err := r.ob.Last()
		require.NoError(t, err)
		assert.Equal(t, before.ID, after.ID, "nothing recorded")
	})
}

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
