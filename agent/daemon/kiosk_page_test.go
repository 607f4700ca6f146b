package daemon_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	qrcode "github.com/skip2/go-qrcode"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/agent/config"
	"kpe-agent/internal/browsertest"
	"kpe-agent/internal/i18n"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/pcsctest"
)

// kioskShots, when set, is where TestKioskPage writes a screenshot of each
// screen in both orientations (docs/img/kiosk):
//
//	go test ./agent/daemon -run TestKioskPage -kiosk-screenshots "$PWD/docs/img/kiosk"
var kioskShots = flag.String("kiosk-screenshots", "", "write a PNG of every kiosk screen, portrait and landscape, into this directory")

// kioskScreens are the kiosk's two screens, in CSS pixels. Screenshots are
// drawn at half scale.
var kioskScreens = []struct {
	name          string
	width, height int
}{{"portrait", 1080, 1920}, {"landscape", 1366, 768}}

const shotScale = 0.5

// kioskLayout lists what breaks the kiosk-grade layout on the screen as
// shown: a visible button smaller than 48×48 px, text under 20 px, text
// whose contrast with its background is under WCAG AA's 4.5:1, a word
// left as its catalogue key, and anything wider than the screen.
const kioskLayout = `(() => {
  const bad = [];
  const shown = (e) => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none"; };
  const rgba = (c) => { const m = c.match(/[\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const background = (e) => { for (; e; e = e.parentElement) { const c = rgba(getComputedStyle(e).backgroundColor); if (c.a > 0) return c; }
    return {r: 255, g: 255, b: 255, a: 1}; };
  for (const b of document.querySelectorAll("button")) {
    if (!shown(b)) continue;
    const r = b.getBoundingClientRect();
    if (r.width < 48 || r.height < 48) bad.push("button " + (b.id || b.textContent) + " is " + r.width + "x" + r.height);
  }
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n; (n = walk.nextNode()); ) {
    const text = n.textContent.trim();
    const e = n.parentElement;
    if (!text || !e || e.closest("script") || !shown(e) || e.closest(".visually-hidden")) continue;
    const s = getComputedStyle(e);
    if (parseFloat(s.fontSize) < 20) bad.push(JSON.stringify(text.slice(0, 40)) + " in " + s.fontSize);
    const a = lum(rgba(s.color)), b = lum(background(e));
    const c = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (c < 4.5) bad.push(JSON.stringify(text.slice(0, 40)) + " contrast " + c.toFixed(2));
    if (/^[a-z]+(\.[a-z-]+)+$/.test(text)) bad.push(JSON.stringify(text) + " is a key, not a word");
  }
  if (document.documentElement.scrollWidth > innerWidth) bad.push("wider than the screen: " + document.documentElement.scrollWidth);
  return bad;
})()`

// kioskStorage is what the browser keeps for the kiosk's origin.
const kioskStorage = `(async () => ({
  local: localStorage.length,
  session: sessionStorage.length,
  idb: (await indexedDB.databases()).map((d) => d.name),
  caches: await caches.keys(),
  cookie: document.cookie,
  html: document.documentElement.outerHTML,
}))()`

type kioskStore struct {
	Local   int      `json:"local"`
	Session int      `json:"session"`
	IDB     []string `json:"idb"`
	Caches  []string `json:"caches"`
	Cookie  string   `json:"cookie"`
	HTML    string   `json:"html"`
}

// kioskTab is the kiosk page in the test's browser.
type kioskTab struct {
	t *testing.T
	r *rig
	b *browsertest.Browser
}

func (k *kioskTab) in(t *testing.T) *kioskTab {
	return &kioskTab{t: t, r: k.r, b: k.b.For(t)}
}

// open loads the kiosk page and waits for its attract screen, with its
// authentication waiting for the card when no card is in.
func (k *kioskTab) open() {
	k.t.Helper()
	k.b.Navigate(k.r.base + api.PathKiosk)
	k.screen("attract")
	k.b.Wait(`document.getElementById("light-agent").dataset.state === "ok"`, 10*time.Second)
}

// waiting waits until the page's authentication waits for the card.
func (k *kioskTab) waiting() {
	k.t.Helper()
	k.r.waitReader(k.t, pcsctest.Slot0, func(rd api.Reader) bool { return rd.Busy && !rd.CardPresent })
}

// leave navigates away: the page's authentication ends, and the reader is
// free for the token's calls.
func (k *kioskTab) leave() {
	k.t.Helper()
	k.b.Navigate("about:blank")
	k.r.waitReader(k.t, pcsctest.Slot0, func(rd api.Reader) bool { return !rd.Busy })
}

// present inserts image in the card slot; the sub-test's end takes it out
// if the sub-test did not.
func (k *kioskTab) present(image string) {
	k.t.Helper()
	pcsctest.Insert(k.t, k.r.lab, 0, filepath.Join("lab/cards", image))
	k.t.Cleanup(func() {
		_ = k.r.lab.Remove(0) // taken out already, unless the sub-test failed
		pcsctest.WaitCard(k.t, pcsctest.Slot0, false, 15*time.Second)
	})
}

// pull takes the card out. (The reader's state may end as failed, not
// idle: a workflow the removal ended says so after the removal.)
func (k *kioskTab) pull() {
	k.t.Helper()
	require.NoError(k.t, k.r.lab.Remove(0))
	pcsctest.WaitCard(k.t, pcsctest.Slot0, false, 15*time.Second)
	k.r.waitReader(k.t, pcsctest.Slot0, func(rd api.Reader) bool { return !rd.CardPresent })
}

func (k *kioskTab) screen(name string) {
	k.t.Helper()
	k.b.Wait(fmt.Sprintf(`document.body.dataset.screen === %q`, name), 30*time.Second)
}

func (k *kioskTab) text(sel string) string {
	k.t.Helper()
	return k.b.Text(sel)
}

// check checks the layout of the screen as shown, in both orientations,
// and writes its screenshots when asked.
func (k *kioskTab) check(name string) {
	k.t.Helper()
	for _, o := range kioskScreens {
		k.b.Viewport(o.width, o.height, shotScale)
		k.b.Eval(`new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(() => ok(true))))`, nil)
		var bad []string
		k.b.Eval(kioskLayout, &bad)
		assert.Empty(k.t, bad, "%s, %s", name, o.name)
		if *kioskShots != "" {
			require.NoError(k.t, os.MkdirAll(*kioskShots, 0o755))
			k.b.Screenshot(filepath.Join(*kioskShots, name+"-"+o.name+".png"))
		}
	}
	k.b.Viewport(kioskScreens[0].width, kioskScreens[0].height, shotScale)
}

// clean checks that the browser keeps nothing of a session: no storage,
// no cookie a script can read, no answer of the agent in the HTTP cache,
// no object URL, and none of secrets in the page.
func (k *kioskTab) clean(answers, objectURLs []string, secrets ...string) {
	k.t.Helper()
	var st kioskStore
	k.b.Eval(kioskStorage, &st)
	assert.Zero(k.t, st.Local, "localStorage")
	assert.Zero(k.t, st.Session, "sessionStorage")
	assert.Empty(k.t, st.IDB, "IndexedDB")
	assert.Empty(k.t, st.Caches, "Cache API")
	assert.Empty(k.t, st.Cookie, "cookies a script can read (the kiosk credential is HttpOnly)")
	for _, s := range secrets {
		assert.NotContains(k.t, st.HTML, s, "the page after the session")
	}
	for _, u := range answers {
		var status int
		k.b.Eval(fmt.Sprintf(`fetch(%q, {cache: "only-if-cached", mode: "same-origin"}).then((r) => r.status, () => 0)`, u), &status)
		assert.Contains(k.t, []int{0, 504}, status, "%s is not in the HTTP cache", u)
	}
	for _, u := range objectURLs {
		var gone bool
		k.b.Eval(fmt.Sprintf(`new Promise((ok) => { const i = new Image(); i.onload = () => ok(false); i.onerror = () => ok(true); i.src = %q; })`, u), &gone)
		assert.True(k.t, gone, "%s is revoked", u)
	}
}

// agentAnswers are the agent's answers the page fetched so far.
func (k *kioskTab) agentAnswers() []string {
	k.t.Helper()
	var urls []string
	k.b.Eval(`performance.getEntriesByType("resource").map((e) => e.name).filter((u) => u.includes("/v1/kiosk/") || u.includes("/v1/readers"))`, &urls)
	return urls
}

// The kiosk's screens in Chromium, through the whole terminal: real
// pcscd, the card lab, the agent's API and the back office. Every flow of
// issue 15's kiosk part, each screen checked for the kiosk-grade layout in
// both orientations.
func TestKioskPage(t *testing.T) {
	r := newRig(t)
	r.insert(1, "sam.json")
	r.waitHealth(samReady)
	agentAddr := strings.TrimPrefix(r.base, "http://")
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, strings.ReplaceAll(foreignPage, "AGENT", r.base))
	}))
	defer evil.Close()
	b := browsertest.Start(t, browsertest.WindowSize(1080, 1920),
		browsertest.MapHost("evil.example", strings.TrimPrefix(evil.URL, "http://")),
		browsertest.MapHost("rebind.example", agentAddr))
	b.Viewport(kioskScreens[0].width, kioskScreens[0].height, shotScale)
	kt := &kioskTab{t: t, r: r, b: b}
	longFinger := func(t *testing.T) {
		r.setConf(func(c *config.Config) { c.Fingerprint.Timeout = 20 * time.Second })
		t.Cleanup(func() { r.setConf(func(c *config.Config) { c.Fingerprint.Timeout = 3 * time.Second }) })
	}
	records := func(t *testing.T) int {
		var q api.QueueStatus
		status, e := r.call("GET", api.PathQueue, nil, &q)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		return q.Pending + q.Sending + q.Acknowledged
	}

	t.Run("attract", func(t *testing.T) {
		k := kt.in(t)
		k.open()
		k.waiting()
		assert.Equal(t, "Masukkan KPE Anda", k.text("#attract-title"))
		k.b.Wait(`document.getElementById("light-backoffice").dataset.state === "ok"`, 10*time.Second)
		for _, l := range []string{"agent", "reader", "sam", "backoffice"} {
			var state string
			k.b.Eval(fmt.Sprintf(`document.getElementById("light-%s").dataset.state`, l), &state)
			assert.Equal(t, "ok", state, l)
		}
		assert.Equal(t, "Siap", k.text("#light-sam .value"))
		assert.Equal(t, "Terhubung", k.text("#light-backoffice .value"))
		k.check("attract")
	})

	// A genuine KPE: progress, the holder's profile, services and the
	// receipt, whose code the back office verifies and whose QR code opens
	// the verify page with it; the card leaves and the page is wiped.
	t.Run("genuine-kpe", func(t *testing.T) {
		k := kt.in(t)
		before := records(t)
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		k.present("kpe-budi.json")
		k.screen("result")
		k.b.Wait(`document.querySelector("#panel-profile .photo")?.complete === true`, 10*time.Second)
		assert.Equal(t, before+1, records(t))
		profile := k.text("#panel-profile")
		assert.Contains(t, profile, "Data terverifikasi dari chip KPE")
		assert.Contains(t, profile, "Budi Santoso")
		assert.Contains(t, profile, "197208172000031002")
		assert.Contains(t, profile, "Yogyakarta, 17 Agustus 1972")
		assert.Contains(t, profile, "IV/c")
		assert.Contains(t, profile, "1 April 2020", "TMT pangkat in words")
		var photo struct {
			Src   string `json:"src"`
			Width int    `json:"width"`
		}
		k.b.Eval(`(() => { const i = document.querySelector("#panel-profile .photo"); return {src: i.src, width: i.naturalWidth}; })()`, &photo)
		assert.True(t, strings.HasPrefix(photo.Src, "blob:"), "the photo from memory: %s", photo.Src)
		assert.Positive(t, photo.Width)
		var family int
		k.b.Eval(`document.querySelectorAll("#panel-profile table.family tbody tr").length`, &family)
		assert.Equal(t, 5, family)
		var tabs []string
		k.b.Eval(`[...document.querySelectorAll("#tabs button")].filter((b) => !b.hidden).map((b) => b.dataset.panel)`, &tabs)
		assert.Equal(t, []string{"profile", "services", "receipt"}, tabs)
		k.check("profile")

		k.b.Click(`#tabs button[data-panel="services"]`)
		services := k.text("#panel-services")
		assert.Contains(t, services, "0001234567890", "the ASKES/BPJS number")
		assert.Contains(t, services, "****4321", "the account, masked")
		assert.Contains(t, services, "Tidak tersimpan pada kartu", "the class the card does not hold")
		assert.Contains(t, services, "Besar tunjangan hari tua tidak tersimpan pada kartu")
		k.check("services")

		k.b.Click(`#tabs button[data-panel="receipt"]`)
		k.b.Wait(`document.getElementById("receipt-qr")?.complete === true`, 10*time.Second)
		code := k.text("#receipt-code")
		assert.Regexp(t, `^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{3}[0-9A-Z*~$=]$`, code)
		assert.NotContains(t, k.text("#panel-receipt"), "Budi", "no name on the receipt")
		// the QR code is the agent's drawing of the verify page with this code
		var qr struct {
			Width, Height int
			Dark          string // one character per pixel: 1 dark, 0 light
		}
		k.b.Eval(`(() => { const i = document.getElementById("receipt-qr"); const c = document.createElement("canvas");
			c.width = i.naturalWidth; c.height = i.naturalHeight; const g = c.getContext("2d"); g.drawImage(i, 0, 0);
			const d = g.getImageData(0, 0, c.width, c.height).data; let s = "";
			for (let p = 0; p < d.length; p += 4) s += d[p] < 128 ? "1" : "0";
			return {Width: c.width, Height: c.height, Dark: s}; })()`, &qr)
		q, err := qrcode.New(kioskVerifyURL+"?code="+url.QueryEscape(code), qrcode.Medium)
		require.NoError(t, err)
		want := q.Image(256)
		require.Equal(t, want.Bounds().Dx(), qr.Width)
		require.Equal(t, want.Bounds().Dy(), qr.Height)
		var dark strings.Builder
		for y := range qr.Height {
			for x := range qr.Width {
				c, _, _, _ := want.At(x, y).RGBA()
				dark.WriteString(map[bool]string{true: "1", false: "0"}[c < 0x8000])
			}
		}
		assert.True(t, dark.String() == qr.Dark, "the QR code shown is the verify page's with this code")
		require.Eventually(t, func() bool {
			v, err := r.svc.Verify(context.Background(), code)
			return err == nil && v.Valid
		}, 10*time.Second, 50*time.Millisecond, "the back office verifies the code")
		v, err := r.svc.Verify(context.Background(), code)
		require.NoError(t, err)
		assert.Equal(t, api.ServiceKiosk, v.Service)
		k.check("receipt")
		// the print stylesheet: the receipt alone, on 80 mm paper
		k.b.Media("print")
		var printed struct {
			Receipt, Header, Tabs bool
			Width                 float64
		}
		k.b.Eval(`(() => { const vis = (s) => getComputedStyle(document.querySelector(s)).display !== "none";
			return {Receipt: vis("#panel-receipt"), Header: vis("header"), Tabs: vis("#tabs"), Width: document.getElementById("panel-receipt").getBoundingClientRect().width}; })()`, &printed)
		k.b.Media("")
		assert.True(t, printed.Receipt)
		assert.False(t, printed.Header)
		assert.False(t, printed.Tabs)
		assert.LessOrEqual(t, printed.Width, 80/25.4*96, "fits 80 mm")

		answers := k.agentAnswers()
		assert.NotEmpty(t, answers)
		k.pull()
		k.screen("attract")
		k.waiting()
		k.clean(answers, []string{photo.Src}, "Budi", "197208172000031002", "0001234567890", code)
	})

	t.Run("kpe-tambahan", func(t *testing.T) {
		k := kt.in(t)
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		k.present("kpe-tambahan-sri.json")
		k.screen("result")
		k.b.Wait(`document.querySelector("#panel-tambahan .photo")?.complete === true`, 10*time.Second)
		var tabs []string
		k.b.Eval(`[...document.querySelectorAll("#tabs button")].filter((b) => !b.hidden).map((b) => b.dataset.panel)`, &tabs)
		assert.Equal(t, []string{"tambahan", "services", "receipt"}, tabs)
		own := k.text("#panel-tambahan")
		assert.Contains(t, own, "Sri")
		assert.Contains(t, own, "Data terverifikasi dari chip KPE")
		assert.Contains(t, own, "197208172000031002", "the civil servant's NIP")
		assert.Contains(t, own, "Suami/istri")
		k.check("tambahan")
		// Selesai ends the session: the card is still in, offered to start again
		k.b.Click("#finish")
		k.screen("attract")
		k.b.Wait(`!document.getElementById("start").hidden`, 10*time.Second)
		assert.Equal(t, i18n.Indonesian.T("kiosk.attract.card-in"), k.text("#attract-note"))
		k.clean(nil, nil, "Sri", "197208172000031002")
		k.check("attract-card-in")
		k.pull()
		k.b.Wait(`document.getElementById("start").hidden`, 10*time.Second)
		k.waiting()
	})

	t.Run("ktpel", func(t *testing.T) {
		k := kt.in(t)
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		k.present("ktpel-siti.json")
		k.screen("result")
		var tabs []string
		k.b.Eval(`[...document.querySelectorAll("#tabs button")].filter((b) => !b.hidden).map((b) => b.dataset.panel)`, &tabs)
		assert.Equal(t, []string{"ktpel", "receipt"}, tabs)
		assert.Contains(t, k.text("#panel-ktpel"), "Identitas Anda terkonfirmasi dengan KTP-el.")
		var html string
		k.b.Eval(`document.documentElement.outerHTML`, &html)
		assert.NotContains(t, html, "Siti", "identity confirmation only")
		assert.NotContains(t, html, "Rahmawati", "identity confirmation only")
		k.check("ktpel")
		k.pull()
		k.screen("attract")
		k.waiting()
	})

	// Each card the kiosk refuses: the holder's message from the agent, the
	// code for the technician.
	for _, c := range []struct{ name, image, code string }{
		{"clone", "kpe-clone.json", "card-not-genuine"},
		{"unknown-card", "unknown-card.json", "unknown-card"},
		{"expired-issuer", "kpe-expired-issuer.json", "data-not-authentic"},
		{"untrusted-issuer", "kpe-untrusted-issuer.json", "data-not-authentic"},
		{"finger-blocked", "kpe-finger-blocked.json", "finger-blocked"},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := kt.in(t)
			before := records(t)
			require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
			k.present(c.image)
			k.screen("failure")
			assert.Equal(t, c.code, k.text("#failure-code"))
			assert.Equal(t, i18n.Indonesian.T("holder."+c.code), k.text("#failure-message"))
			assert.Equal(t, before, records(t), "nothing recorded")
			k.check("failure-" + c.name)
			k.pull()
			k.screen("attract")
			k.waiting()
		})
	}

	// The card pulled while the page waits for the finger: back to the
	// attract screen, nothing recorded.
	t.Run("card-pulled", func(t *testing.T) {
		k := kt.in(t)
		longFinger(t)
		before := records(t)
		require.NoError(t, r.lab.PlaceFinger(0, ""))
		k.present("kpe-budi.json")
		k.screen("progress")
		k.b.Wait(`document.querySelector('#steps [data-step="fingerprint"]').dataset.state === "active"`, 10*time.Second)
		var states []string
		k.b.Eval(`[...document.querySelectorAll("#steps li")].map((li) => li.dataset.state)`, &states)
		assert.Equal(t, []string{"done", "done", "active", "todo"}, states)
		assert.Equal(t, i18n.Indonesian.T("holder.place-finger"), k.text("#progress-message"))
		assert.Equal(t, "(KPE)", k.text("#step-kind"))
		k.check("progress")
		k.pull()
		k.screen("attract")
		k.waiting()
		assert.Equal(t, before, records(t))
	})

	t.Run("cancel", func(t *testing.T) {
		k := kt.in(t)
		longFinger(t)
		require.NoError(t, r.lab.PlaceFinger(0, ""))
		k.present("kpe-budi.json")
		k.b.Wait(`document.querySelector('#steps [data-step="fingerprint"]').dataset.state === "active"`, 10*time.Second)
		k.b.Click("#cancel")
		k.screen("failure")
		assert.Equal(t, i18n.Indonesian.T("holder.cancelled"), k.text("#failure-message"))
		k.check("failure-cancelled")
		k.pull()
		k.screen("attract")
		k.waiting()
	})

	// The card has one fingerprint try left: the page asks within the
	// session, the holder continues, and the same workflow records.
	t.Run("last-try", func(t *testing.T) {
		k := kt.in(t)
		longFinger(t)
		k.leave()
		k.present("kpe-budi.json")
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerImpostor))
		for want := 4; want >= 1; want-- {
			status, e := r.call("POST", api.PathAuth, api.AuthRequest{Service: "askes", Operator: "clerk-07"}, nil)
			require.Equal(t, http.StatusUnprocessableEntity, status, "%+v", e)
			require.Equal(t, want, e.TriesLeft)
		}
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		before := records(t)
		k.open()
		k.b.Wait(`!document.getElementById("start").hidden`, 10*time.Second)
		k.b.Click("#start")
		k.screen("prompt")
		assert.Equal(t, i18n.Indonesian.T("holder.confirm-last-try"), k.text("#prompt-message"))
		k.check("prompt")
		k.b.Click("#prompt-continue")
		k.screen("result")
		assert.Equal(t, before+1, records(t), "one record, from the workflow that asked")
		k.pull()
		k.screen("attract")
		k.waiting()
	})

	// Another program's workflow holds the reader: the page says so in the
	// holder's words and starts once the reader is free.
	t.Run("reader-busy", func(t *testing.T) {
		k := kt.in(t)
		k.leave()
		k.present("kpe-budi.json")
		other := r.waitingForFinger(t, api.AuthRequest{Service: "taspen", Operator: "his-02"})
		k.open()
		k.b.Wait(`!document.getElementById("attract-note").hidden`, 10*time.Second)
		assert.Equal(t, i18n.Indonesian.T("holder.reader-busy"), k.text("#attract-note"))
		k.check("attract-busy")
		status, _ := r.call("POST", api.PathCancel, api.CancelRequest{Reader: pcsctest.Slot0}, nil)
		require.Equal(t, http.StatusNoContent, status)
		assert.Equal(t, "cancelled", (<-other).Code)
		k.b.Wait(`!document.getElementById("start").hidden`, 10*time.Second)
		k.pull()
		k.waiting()
	})

	// Without a SAM, or with a blocked one, the kiosk is out of service:
	// the reason for the holder, the code for the technician; back when
	// the SAM is.
	t.Run("out-of-service", func(t *testing.T) {
		k := kt.in(t)
		require.NoError(t, r.lab.Remove(1))
		k.screen("oos")
		k.b.Wait(`document.getElementById("oos-code").textContent === "no-sam"`, 10*time.Second)
		assert.Equal(t, i18n.Indonesian.T("holder.no-sam"), k.text("#oos-reason"))
		var sam string
		k.b.Eval(`document.getElementById("light-sam").dataset.state`, &sam)
		assert.Equal(t, "bad", sam)
		k.check("out-of-service")
		pcsctest.Insert(t, r.lab, 1, "lab/cards/sam-blocked.json")
		k.b.Wait(`document.getElementById("oos-code").textContent === "sam-blocked"`, 20*time.Second)
		assert.Equal(t, i18n.Indonesian.T("holder.sam-blocked"), k.text("#oos-reason"))
		require.NoError(t, r.lab.Remove(1))
		pcsctest.Insert(t, r.lab, 1, "lab/cards/sam.json")
		r.waitHealth(samReady)
		k.screen("attract")
		k.waiting()
	})

	// ID · EN: the page's words and the agent's messages in English, and
	// back.
	t.Run("language", func(t *testing.T) {
		k := kt.in(t)
		longFinger(t)
		k.b.Click("#lang-en")
		k.b.Wait(`document.documentElement.lang === "en"`, 5*time.Second)
		assert.Equal(t, "Insert your KPE", k.text("#attract-title"))
		assert.Equal(t, "Running", k.text("#light-agent .value"))
		k.check("attract-en")
		// the authentication waiting for the card answers in English too
		k.b.Wait(`document.body.dataset.session === "en"`, 5*time.Second)
		k.waiting()
		k.present("kpe-clone.json")
		k.screen("failure")
		assert.Equal(t, i18n.English.T("holder.card-not-genuine"), k.text("#failure-message"))
		k.pull()
		// the next holder starts in Bahasa Indonesia
		k.screen("attract")
		k.b.Wait(`document.documentElement.lang === "id"`, 5*time.Second)
		assert.Equal(t, "Masukkan KPE Anda", k.text("#attract-title"))
		k.waiting()
		k.b.Click("#lang-en")
		k.b.Wait(`document.body.dataset.session === "en"`, 5*time.Second)
		k.waiting()
		require.NoError(t, r.lab.PlaceFinger(0, ""))
		k.present("kpe-budi.json")
		k.b.Wait(`document.getElementById("progress-message").textContent === `+fmt.Sprintf("%q", i18n.English.T("holder.place-finger")), 10*time.Second)
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		k.screen("result")
		k.b.Wait(`document.querySelector("#panel-profile .photo")?.complete === true`, 10*time.Second)
		assert.Equal(t, "My profile", k.text(`#tabs button[data-panel="profile"]`))
		assert.Contains(t, k.text("#panel-profile"), "Data verified from the KPE chip")
		assert.Contains(t, k.text("#panel-profile"), "17 August 1972")
		k.check("profile-en")
		k.b.Click("#lang-id")
		k.b.Wait(`document.documentElement.lang === "id"`, 5*time.Second)
		assert.Equal(t, "Profil saya", k.text(`#tabs button[data-panel="profile"]`))
		assert.Contains(t, k.text("#panel-profile"), "17 Agustus 1972")
		k.pull()
		k.screen("attract")
		k.waiting()
	})

	// A page of another origin gets nothing of the kiosk's, even with a
	// holder's view waiting; a name rebound to 127.0.0.1 neither.
	t.Run("foreign-origin", func(t *testing.T) {
		k := kt.in(t)
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		k.present("kpe-budi.json")
		k.screen("result")
		k.b.Navigate("http://evil.example/")
		k.b.Wait(`window.done === true`, 20*time.Second)
		var results map[string]string
		k.b.Eval(`window.results`, &results)
		for _, probe := range []string{"health", "readers", "view", "photo", "auth", "client"} {
			assert.Equal(t, "refused", results[probe], probe)
		}
		assert.True(t, r.logs.seen("local API: request from a foreign Origin refused"))
		assert.True(t, r.logs.seen("local API: the kiosk page requested by another origin's page refused"), "the page in a frame")
		// the view was there to be taken
		status, _ := r.call("GET", api.PathKioskView, nil, nil)
		assert.Equal(t, http.StatusOK, status)
		k.b.Navigate("http://rebind.example/kiosk/")
		assert.Contains(t, k.text("body"), api.CodeForbiddenHost)
		k.pull()
	})

	// The agent restarts under the open page: the page loads itself again
	// (a new credential) and serves the next holder.
	t.Run("agent-restarted", func(t *testing.T) {
		k := kt.in(t)
		k.open()
		k.waiting()
		k.b.Eval(`window.before = true`, nil)
		r.restart()
		// the page's authentication only waited for a card: the agent
		// stopped without giving it the shutdown grace
		assert.False(t, r.logs.seen("a card workflow did not finish within the shutdown grace; cancelling it"))
		r.waitHealth(samReady)
		k.b.Wait(`window.before === undefined && document.body.dataset.screen === "attract"`, 30*time.Second)
		k.waiting()
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		k.present("kpe-budi.json")
		k.screen("result")
		k.pull()
		k.screen("attract")
	})

	// Nobody touches the screen: the warning, then the wipe, and the
	// browser keeps nothing of the holder.
	t.Run("idle-timeout", func(t *testing.T) {
		k := kt.in(t)
		// the warning stays up 10 s: the layout check and the touch below
		// must fit in it on a loaded machine
		r.setConf(func(c *config.Config) { c.Kiosk.IdleTimeout, c.Kiosk.IdleWarning = 15*time.Second, 10*time.Second })
		r.restart()
		r.waitHealth(samReady)
		k.open()
		k.waiting()
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		k.present("kpe-budi.json")
		k.screen("result")
		k.b.Wait(`document.querySelector("#panel-profile .photo")?.complete === true`, 10*time.Second)
		var photo string
		k.b.Eval(`document.querySelector("#panel-profile .photo").src`, &photo)
		answers := k.agentAnswers()
		k.b.Wait(`!document.getElementById("idle").hidden`, 10*time.Second)
		k.check("idle-warning")
		// a touch keeps the session
		k.b.Click("#idle-continue")
		var hidden bool
		k.b.Eval(`document.getElementById("idle").hidden`, &hidden)
		assert.True(t, hidden)
		k.b.Eval(`window.before = true`, nil)
		k.b.Wait(`!document.getElementById("idle").hidden`, 10*time.Second)
		k.b.Wait(`window.before === undefined && document.body.dataset.screen === "attract"`, 10*time.Second)
		k.clean(answers, []string{photo}, "Budi", "197208172000031002", "0001234567890")
		k.pull()
		k.waiting()
	})
}

// foreignPage is a page of another origin trying the kiosk's calls with
// the browser's cookies, its photo as an image, the kiosk page in a frame
// and the client as a module; window.results says how each went.
const foreignPage = `<!doctype html><html><head><meta charset="utf-8"><title>evil</title></head><body><script>
const agent = "AGENT";
window.results = {};
const probe = (name, p) => p.then(() => { results[name] = "answered"; }, () => { results[name] = "refused"; });
Promise.all([
  probe("health", fetch(agent + "/v1/health")),
  probe("readers", fetch(agent + "/v1/readers", {credentials: "include"})),
  probe("view", fetch(agent + "/v1/kiosk/view", {credentials: "include"})),
  probe("auth", fetch(agent + "/v1/auth", {method: "POST", credentials: "include", headers: {"Content-Type": "application/json"}, body: '{"service":"kiosk"}'})),
  probe("client", import(agent + "/v1/client.js")),
  probe("photo", new Promise((ok, fail) => { const i = new Image(); i.onload = ok; i.onerror = fail; i.src = agent + "/v1/kiosk/photo"; })),
  new Promise((ok) => { const f = document.createElement("iframe"); f.onload = ok; setTimeout(ok, 3000); f.src = agent + "/kiosk/"; document.body.append(f); }),
]).then(() => { window.done = true; });
</script></body></html>`
