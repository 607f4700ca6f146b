package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/internal/browsertest"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/pcsctest"
)

// The kiosk's performance (issue 15), measured in headless Chromium
// through the terminal of `make run` (startLabTerminal: the kpe-agent
// binary on configs/lab.yaml, real pcscd, the card lab, the back office),
// each figure beside a baseline measured in the same run. `make bench`
// runs them; docs/kiosk.md ("Performance") says what each one measures.
//
//	BenchmarkKioskPage     first paint (against a minimal static page) and page weight
//	BenchmarkKioskSession  card inserted to profile on screen (against the bare tap to code through the API)
//	BenchmarkKioskMemory   the page's JS heap and the agent's RSS, after 10 and after 500 sessions

// kioskMark runs in every document the browser loads: on the kiosk page it
// notes, in wall-clock milliseconds (performance.timeOrigin + now, to set
// against the Go side's time.Now), when the holder's data is on screen:
// the result screen shown with its photo decoded, and one frame drawn
// since (the time is taken in the animation frame after the one that
// drew it).
const kioskMark = `(() => {
  if (location.pathname !== "/kiosk/") return;
  window.__kpeLoaded = performance.timeOrigin;
  const shown = () => {
    const b = document.body;
    if (!b || b.dataset.screen !== "result") return false;
    const img = document.querySelector("#screens .panel:not([hidden]) img.photo");
    return !!img && img.complete && img.naturalWidth > 0;
  };
  let seen = false;
  const check = () => {
    if (seen || !shown()) return;
    seen = true;
    requestAnimationFrame(() => requestAnimationFrame(() => { window.__kpeShown = performance.timeOrigin + performance.now(); }));
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ["data-screen", "hidden", "src"]});
  document.addEventListener("load", check, true);
})();`

// staticPage is the first-paint baseline: a minimal page, one heading and
// one line of text, no script, no style sheet.
const staticPage = `<!doctype html><html lang="id"><head><meta charset="utf-8"><title>Anjungan KPE</title></head>` +
	`<body><h1>Masukkan KPE Anda</h1><p>KPE atau KTP-el</p></body></html>`

// kioskRig is the lab terminal with the kiosk page's browser.
type kioskRig struct {
	*labTerminal
	b     *browsertest.Browser
	kiosk string // the page's URL
}

func newKioskRig(b *testing.B) *kioskRig {
	lt := startLabTerminal(b)
	require.True(b, lt.cfg.Kiosk.Enabled, "configs/lab.yaml turns the kiosk on")
	require.NoError(b, lt.lab.PlaceFinger(0, cardsim.FingerGenuine), "the lab sensor answers at once")
	br := browsertest.Start(b, browsertest.WindowSize(1080, 1920), browsertest.PollEvery(5*time.Millisecond))
	br.OnNewDocument(kioskMark)
	return &kioskRig{labTerminal: lt, b: br, kiosk: lt.agent.base + api.PathKiosk}
}

// readerIs waits until the card reader's state satisfies ok.
func (k *kioskRig) readerIs(b *testing.B, what string, ok func(api.Reader) bool) {
	b.Helper()
	var r api.Reader
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if r, err = k.cardReader(); err == nil && ok(r) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the card reader: %s; it is %+v (%v)", what, r, err)
		}
	}
}

// cardReader is the card reader's state, as the agent's API gives it.
func (k *kioskRig) cardReader() (api.Reader, error) {
	req, err := http.NewRequest("GET", k.agent.base+api.PathReaders, nil)
	if err != nil {
		return api.Reader{}, err
	}
	req.Header.Set("Authorization", "Bearer "+k.agent.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return api.Reader{}, err
	}
	defer resp.Body.Close()
	var rs []api.Reader
	if err := json.NewDecoder(resp.Body).Decode(&rs); err != nil {
		return api.Reader{}, fmt.Errorf("GET %s: %d: %w", api.PathReaders, resp.StatusCode, err)
	}
	for _, r := range rs {
		if r.Name == pcsctest.Slot0 {
			return r, nil
		}
	}
	return api.Reader{}, fmt.Errorf("no %s among the readers", pcsctest.Slot0)
}

func waitingForCard(r api.Reader) bool { return r.Busy && !r.CardPresent }

// attract waits until a new kiosk document shows its attract screen with
// its authentication waiting for the card.
func (k *kioskRig) attract(b *testing.B, since float64) {
	b.Helper()
	k.b.Wait(fmt.Sprintf(`window.__kpeLoaded > %f && document.body.dataset.screen === "attract"`, since), 20*time.Second)
	k.readerIs(b, "the kiosk waits for a card", waitingForCard)
}

// loaded is the document's time origin (ms since the epoch; 0 on another page).
func (k *kioskRig) loaded() float64 {
	var t float64
	k.b.Eval(`window.__kpeLoaded || 0`, &t)
	return t
}

// leave navigates away from the kiosk: its requests end, and the reader is free.
func (k *kioskRig) leave(b *testing.B) {
	b.Helper()
	k.b.Navigate("about:blank")
	k.readerIs(b, "free", func(r api.Reader) bool { return !r.Busy })
}

func kpeCard(b *testing.B) cardsim.Card {
	c, err := cardsim.LoadCard(pcsctest.RepoPath("testdata/cards/lab/cards/kpe-budi.json"))
	require.NoError(b, err)
	return c
}

// session runs one kiosk session on the page, which waits for a card: the
// KPE goes in; it returns when that was and when its holder's profile was
// on screen. The card stays in.
func (k *kioskRig) session(b *testing.B) (in, shown time.Time) {
	b.Helper()
	card := kpeCard(b)
	in = time.Now()
	require.NoError(b, k.lab.Insert(0, card))
	return in, k.shown(b)
}

// shown waits until the holder's profile is on screen and returns when it
// was (kioskMark).
func (k *kioskRig) shown(b *testing.B) time.Time {
	b.Helper()
	k.b.Wait(`window.__kpeShown > 0`, 20*time.Second)
	var ms float64
	k.b.Eval(`window.__kpeShown`, &ms)
	return time.UnixMicro(int64(ms * 1000))
}

// again runs one session with the card left in the reader, as the page
// offers it: Mulai, the holder's profile on screen, then Selesai, which
// wipes the page; the new document offers Mulai again. It returns the time
// from the touch on Mulai to the profile on screen. (The buttons are
// clicked by script, element.click(): the same handlers as a touch, one
// round trip to the browser instead of several.)
func (k *kioskRig) again(b *testing.B) time.Duration {
	b.Helper()
	doc := k.loaded()
	var d float64
	k.b.Eval(`new Promise((ok) => {
		const t0 = performance.now();
		document.getElementById("start").click();
		const check = () => window.__kpeShown > 0 ? ok(window.__kpeShown - performance.timeOrigin - t0) : setTimeout(check, 2);
		check();
	})`, &d)
	k.b.Eval(`document.getElementById("finish").click(), true`, nil)
	k.offered(b, doc)
	return time.Duration(d * float64(time.Millisecond))
}

// offered waits until a document loaded after since offers Mulai for the
// card in the reader.
func (k *kioskRig) offered(b *testing.B, since float64) {
	b.Helper()
	k.b.Wait(fmt.Sprintf(`window.__kpeLoaded > %f && document.body.dataset.screen === "attract" && !document.getElementById("start").hidden`, since), 20*time.Second)
}

// end takes the card out: the page wipes itself and loads again, and its
// new document waits for the next card.
func (k *kioskRig) end(b *testing.B) {
	b.Helper()
	doc := k.loaded()
	require.NoError(b, k.lab.Remove(0))
	k.attract(b, doc)
}

// bareTap is the baseline of a session: a kiosk authentication through the
// API with the token (no browser), the KPE going in. It returns when the
// card went in, when the API answered, and the agent's own tap to code
// (its card detected to record committed). The card is taken out again.
func (k *kioskRig) bareTap(b *testing.B) (in, answered time.Time, tap time.Duration) {
	b.Helper()
	type answer struct {
		status int
		res    api.AuthResult
		err    error
		at     time.Time
	}
	got := make(chan answer, 1)
	go func() {
		var a answer
		body := strings.NewReader(`{"service":"kiosk","operator":"bench","wait_seconds":30}`)
		req, err := http.NewRequest("POST", k.agent.base+api.PathAuth, body)
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+k.agent.token)
			var resp *http.Response
			resp, err = http.DefaultClient.Do(req)
			if err == nil {
				a.at, a.status = time.Now(), resp.StatusCode
				err = json.NewDecoder(resp.Body).Decode(&a.res)
				resp.Body.Close()
			}
		}
		a.err = err
		got <- a
	}()
	k.readerIs(b, "the API's authentication waits for a card", waitingForCard)
	card := kpeCard(b)
	in = time.Now()
	require.NoError(b, k.lab.Insert(0, card))
	a := <-got
	require.NoError(b, a.err)
	require.Equal(b, http.StatusOK, a.status, "%+v", a.res)
	require.NoError(b, k.lab.Remove(0))
	k.readerIs(b, "empty and free", func(r api.Reader) bool { return !r.Busy && !r.CardPresent })
	return in, a.at, time.Duration(a.res.TapToCodeMS * float64(time.Millisecond))
}

// detections follows the agent's events (with the token) and sends the
// time of each card detection in the card reader (the agent's clock: the
// same machine's).
func (k *kioskRig) detections(b *testing.B) <-chan time.Time {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", k.agent.base+api.PathEvents, nil)
	require.NoError(b, err)
	req.Header.Set("Authorization", "Bearer "+k.agent.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b, err)
	require.Equal(b, http.StatusOK, resp.StatusCode)
	out := make(chan time.Time, 1024)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			var ev api.Event
			if !ok || json.Unmarshal([]byte(data), &ev) != nil {
				continue
			}
			if ev.Type == "session" && ev.Reader == pcsctest.Slot0 && ev.State == api.StateDetected {
				select {
				case out <- ev.Time:
				default:
				}
			}
		}
	}()
	return out
}

// detected returns the agent's detection of the card inserted at in.
func detected(b *testing.B, ch <-chan time.Time, in time.Time) time.Time {
	b.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case t := <-ch:
			if !t.Before(in.Add(-time.Millisecond)) {
				return t
			}
		case <-timeout:
			b.Fatalf("the agent's events did not say the card went in at %v", in)
		}
	}
}

// firstPaint loads u from a blank page and returns its
// first-contentful-paint (the Performance API's, from the navigation's
// start).
func firstPaint(b *testing.B, br *browsertest.Browser, u string) time.Duration {
	b.Helper()
	br.Navigate("about:blank")
	br.Navigate(u)
	br.Wait(`performance.getEntriesByName("first-contentful-paint").length > 0`, 10*time.Second)
	var ms float64
	br.Eval(`performance.getEntriesByName("first-contentful-paint")[0].startTime`, &ms)
	return time.Duration(ms * float64(time.Millisecond))
}

// BenchmarkKioskPage: the kiosk page's first contentful paint when the
// agent serves it on loopback, over several loads, against the first
// paint of a minimal static page served by a Go HTTP server in the same
// run; and the page's weight, every byte the browser fetches until the
// attract screen waits for a card, with what a session's data adds.
//
// Goals (issue 15): first paint ≤ 300 ms, page weight ≤ 150 kB.
func BenchmarkKioskPage(b *testing.B) {
	loads := benchCount(b, "KPE_BENCH_KIOSK_LOADS", 20)
	k := newKioskRig(b)
	static := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Length", strconv.Itoa(len(staticPage)))
		fmt.Fprint(w, staticPage)
	}))
	b.Cleanup(static.Close)

	var kiosk, base []time.Duration
	for b.Loop() {
		// one warm-up load of each, not counted
		firstPaint(b, k.b, static.URL)
		firstPaint(b, k.b, k.kiosk)
		k.attract(b, 0)
		k.leave(b)
		for range loads {
			base = append(base, firstPaint(b, k.b, static.URL))
			kiosk = append(kiosk, firstPaint(b, k.b, k.kiosk))
			k.attract(b, 0)
			k.leave(b)
		}
	}
	b.StopTimer()

	// the page's weight: a load from a blank page to the attract screen
	// waiting for a card, then a session to the profile and the receipt
	rec := k.b.RecordNetwork()
	k.b.Navigate(k.kiosk)
	k.attract(b, 0)
	k.b.Wait(`document.getElementById("light-backoffice").dataset.state !== "unknown"`, 10*time.Second)
	page := rec.Transfers()
	rec.Reset()
	k.session(b)
	k.b.Wait(`document.getElementById("receipt-qr")?.complete === true`, 10*time.Second)
	sess := rec.Transfers()
	rec.Stop()
	k.end(b)
	k.leave(b)

	kind := func(types ...string) func(browsertest.Transfer) bool {
		return func(x browsertest.Transfer) bool { return slices.Contains(types, x.Type) }
	}
	total, body := browsertest.Sum(page, nil)
	doc, _ := browsertest.Sum(page, kind("Document"))
	scripts, _ := browsertest.Sum(page, kind("Script"))
	styles, _ := browsertest.Sum(page, kind("Stylesheet"))
	apiBytes, _ := browsertest.Sum(page, kind("Fetch", "XHR", "EventSource"))
	other := total - doc - scripts - styles - apiBytes
	sessTotal, _ := browsertest.Sum(sess, nil)
	// each request: its path and kB (an answer still streaming: so far)
	var each []string
	for _, x := range page {
		path, _, _ := strings.Cut(strings.TrimPrefix(x.URL, k.agent.base), "?")
		each = append(each, fmt.Sprintf("%s %.1f", path, kB(x.Bytes)))
	}

	kp50, kp95 := pct(kiosk, 50), pct(kiosk, 95)
	bp50, bp95 := pct(base, 50), pct(base, 95)
	b.ReportMetric(ms(kp50), "fcp-p50-ms")
	b.ReportMetric(ms(kp95), "fcp-p95-ms")
	b.ReportMetric(ms(bp50), "static-fcp-p50-ms")
	b.ReportMetric(kB(total), "page-kB")
	figure(b, ms(kp95) <= 300, "first paint of /kiosk/ from the agent: median %.0f ms, p95 %.0f ms over %d loads; "+
		"a minimal static page from a Go server: median %.0f ms, p95 %.0f ms; the kiosk adds %.0f ms (median); target p95 ≤ 300 ms",
		ms(kp50), ms(kp95), len(kiosk), ms(bp50), ms(bp95), ms(kp50-bp50))
	others := ""
	if other > 0 {
		others = fmt.Sprintf(", other %.1f", kB(other))
	}
	figure(b, kB(total) <= 150, "page weight to the attract screen: %.1f kB on the wire (%.1f kB of bodies) in %d requests: "+
		"document %.1f, scripts %.1f, style sheet %.1f, API answers so far %.1f%s kB [%s]; target ≤ 150 kB",
		kB(total), kB(body), len(page), kB(doc), kB(scripts), kB(styles), kB(apiBytes), others, strings.Join(each, ", "))
	b.Logf("information: a session's data (the authentication's answer, the view, the photo, the QR code, events): %.1f kB in %d requests",
		kB(sessTotal), len(sess))
}

// BenchmarkKioskSession: the time from a KPE going into the reader to its
// holder's profile on the kiosk's screen (the page waiting for a card, the
// lab sensor answering at once), over 50 sessions; against the bare
// tap to code through the API (a kiosk authentication with the token,
// from the card's insertion to the API's answer) on the same terminal,
// interleaved with them in the same run. Both are also given from the
// agent's detection of the card (its event's time): the time from the
// insertion to it is pcscd's and the reader's, the rest the terminal's.
//
// Goal (issue 15): p95 ≤ 1 s.
func BenchmarkKioskSession(b *testing.B) {
	sessions := benchCount(b, "KPE_BENCH_KIOSK_SESSIONS", 50)
	k := newKioskRig(b)
	det := k.detections(b)
	const rounds, barePerRound = 5, 4
	var kiosk, kioskDet, bare, bareDet, agentTap []time.Duration
	for b.Loop() {
		// warm-up: one of each, not counted
		k.bareTap(b)
		k.b.Navigate(k.kiosk)
		k.attract(b, 0)
		k.session(b)
		k.end(b)
		for r := range rounds {
			k.leave(b)
			for range barePerRound {
				in, answered, tap := k.bareTap(b)
				bare = append(bare, answered.Sub(in))
				bareDet = append(bareDet, answered.Sub(detected(b, det, in)))
				agentTap = append(agentTap, tap)
			}
			k.b.Navigate(k.kiosk)
			k.attract(b, 0)
			n := sessions / rounds
			if r == rounds-1 {
				n = sessions - len(kiosk)
			}
			for range n {
				in, shown := k.session(b)
				kiosk = append(kiosk, shown.Sub(in))
				kioskDet = append(kioskDet, shown.Sub(detected(b, det, in)))
				k.end(b)
			}
		}
	}
	b.StopTimer()
	k.leave(b)
	kp50, kp95 := pct(kiosk, 50), pct(kiosk, 95)
	bp50, bp95 := pct(bare, 50), pct(bare, 95)
	b.ReportMetric(ms(kp50), "card-to-profile-p50-ms")
	b.ReportMetric(ms(kp95), "card-to-profile-p95-ms")
	b.ReportMetric(ms(bp95), "bare-tap-p95-ms")
	b.ReportMetric(ms(pct(kioskDet, 95)), "detected-to-profile-p95-ms")
	figure(b, kp95 <= time.Second, "card inserted to profile on screen: p50 %.0f ms, p95 %.0f ms, max %.0f ms over %d sessions; "+
		"bare tap to code through the API, card inserted to answer: p50 %.0f ms, p95 %.0f ms over %d; ratio p95 %.2f; target p95 ≤ 1000 ms",
		ms(kp50), ms(kp95), ms(slices.Max(kiosk)), len(kiosk), ms(bp50), ms(bp95), len(bare), ms(kp95)/ms(bp95))
	figure(b, pct(kioskDet, 95) <= time.Second, "the same from the agent's detection of the card: profile on screen p50 %.0f ms, p95 %.0f ms; "+
		"bare API answer p50 %.0f ms, p95 %.0f ms (the agent's own tap_to_code_ms p50 %.0f ms); the page adds %.0f ms (p50); target p95 ≤ 1000 ms",
		ms(pct(kioskDet, 50)), ms(pct(kioskDet, 95)), ms(pct(bareDet, 50)), ms(pct(bareDet, 95)), ms(pct(agentTap, 50)),
		ms(pct(kioskDet, 50)-pct(bareDet, 50)))
}

// BenchmarkKioskMemory: 500 kiosk sessions on one page, each with the
// KPE left in the reader, as the page offers it: Mulai, the holder's
// profile on screen, Selesai (the page wipes itself and loads again). No
// insertion or removal waits on pcscd's polling of the reader, so 500
// sessions take about two minutes rather than eight; the page runs the
// same code to the profile and the same wipe. At the same two points of the 10th and of the
// 500th session, the page's JavaScript heap after a forced garbage
// collection: with the holder's profile on screen, and on the attract
// screen of the document that follows the session's wipe; and the
// agent's resident memory (VmRSS, the median of five readings over a second)
// at the latter.
//
// Goals (issue 15): the heap after 500 sessions ≤ 1.2 × after 10; the
// agent's RSS grows ≤ 10 %.
func BenchmarkKioskMemory(b *testing.B) {
	sessions := benchCount(b, "KPE_BENCH_KIOSK_SESSIONS", 500)
	const first = 10
	require.Greater(b, sessions, first, "KPE_BENCH_KIOSK_SESSIONS")
	k := newKioskRig(b)
	type point struct {
		profile, attract browsertest.Heap
		rss              int64 // kB
		renderers        []int
	}
	var at10, atN point
	var durations []time.Duration
	start := time.Now()
	for b.Loop() {
		pcsctest.Insert(b, k.lab, 0, "lab/cards/kpe-budi.json")
		k.readerIs(b, "the card read", func(r api.Reader) bool {
			return r.CardPresent && !r.Busy && (r.State == api.StateAuthenticated || r.State == api.StateFailed)
		})
		k.b.Navigate(k.kiosk)
		k.offered(b, 0)
		for i := 1; i <= sessions; i++ {
			if i != first && i != sessions {
				durations = append(durations, k.again(b))
				continue
			}
			p := &at10
			if i == sessions {
				p = &atN
			}
			doc := k.loaded()
			t0 := time.Now()
			k.b.Click("#start")
			durations = append(durations, k.shown(b).Sub(t0))
			b.StopTimer()
			time.Sleep(500 * time.Millisecond) // the page settles (its requests end)
			p.profile = k.b.HeapAfterGC()
			k.b.Click("#finish")
			k.offered(b, doc)
			p.rss = settledRSS(b, k.agent.pid) // the page and the agent settle meanwhile
			p.attract = k.b.HeapAfterGC()
			p.renderers = renderers(b)
			b.StartTimer()
		}
	}
	b.StopTimer()
	took := time.Since(start)
	k.leave(b)
	ratio := func(a, b int64) float64 { return float64(a) / float64(b) }
	rp, ra := ratio(atN.profile.Used, at10.profile.Used), ratio(atN.attract.Used, at10.attract.Used)
	rss := ratio(atN.rss, at10.rss)
	b.ReportMetric(rp, "heap-profile-N/10")
	b.ReportMetric(ra, "heap-attract-N/10")
	b.ReportMetric((rss-1)*100, "agent-rss-growth-%")
	mb := func(n int64) float64 { return float64(n) / (1 << 20) }
	figure(b, rp <= 1.2, "JS heap with the profile on screen, after a forced GC: %.2f MB at session %d, %.2f MB at session %d; ratio %.2f; target ≤ 1.2",
		mb(at10.profile.Used), first, mb(atN.profile.Used), sessions, rp)
	figure(b, ra <= 1.2, "JS heap on the attract screen after the session's wipe, after a forced GC: %.2f MB after session %d, %.2f MB after session %d; ratio %.2f; target ≤ 1.2",
		mb(at10.attract.Used), first, mb(atN.attract.Used), sessions, ra)
	figure(b, rss <= 1.1, "the agent's RSS: %.1f MB after session %d, %.1f MB after session %d; growth %+.1f %%; target ≤ 10 %%",
		float64(at10.rss)/1024, first, float64(atN.rss)/1024, sessions, (rss-1)*100)
	same := "the same renderer processes at both points (pids %v): none was replaced"
	if !slices.Equal(at10.renderers, atN.renderers) {
		same = "NOT the same renderer processes at both points (" + fmt.Sprint(at10.renderers) + ", then %v)"
	}
	b.Logf("information: %d sessions in %v; Mulai to profile on screen p50 %.0f ms, p95 %.0f ms; "+same,
		sessions, took.Round(time.Second), ms(pct(durations, 50)), ms(pct(durations, 95)), atN.renderers)
}

// settledRSS is the median of five readings of pid's VmRSS (kB) over a
// second.
func settledRSS(b *testing.B, pid int) int64 {
	b.Helper()
	var rs []int64
	for range 5 {
		time.Sleep(200 * time.Millisecond)
		rs = append(rs, vmRSS(b, pid))
	}
	slices.Sort(rs)
	return rs[2]
}

// renderers lists the pids of this process's descendants that are
// Chromium renderers (--type=renderer), sorted.
func renderers(b *testing.B) []int {
	b.Helper()
	ents, err := os.ReadDir("/proc")
	require.NoError(b, err)
	parent := map[int]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		st := string(raw)
		f := strings.Fields(st[strings.LastIndexByte(st, ')')+2:]) // from field 3 on
		if pp, err := strconv.Atoi(f[1]); err == nil {             // ppid, field 4
			parent[pid] = pp
		}
	}
	var out []int
	for pid := range parent {
		ours := false
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == os.Getpid() {
				ours = true
				break
			}
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if ours && strings.Contains(string(cmd), "--type=renderer") {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// figure logs one figure of a benchmark with its verdict.
func figure(b *testing.B, met bool, format string, args ...any) {
	b.Helper()
	verdict := "met"
	if !met {
		verdict = "NOT MET"
	}
	b.Logf(format+": %s", append(args, verdict)...)
}

// benchCount is the count the environment variable name sets (for a
// shorter run), or def.
func benchCount(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(b, err, name)
	require.Positive(b, n, name)
	return n
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// kB is n bytes in kilobytes of 1000 bytes (as the browsers' developer tools count).
func kB(n int64) float64 { return float64(n) / 1000 }

// pct is the p-th percentile of ds (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}
