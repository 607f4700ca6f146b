package browsertest_test

import (
	"errors"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/browsertest"
)

const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>t</title>
<style>@media print { #go { display: none } }</style></head><body>
<input id="name"><button id="go">go</button><p id="out"></p>
<script>
document.getElementById("go").addEventListener("click", () => {
  const v = document.getElementById("name").value;
  setTimeout(() => { document.getElementById("out").textContent = "hello " + v; }, 200);
  console.log("clicked", v);
});
</script></body></html>`

// One browser through every helper: a page under a mapped host name, its
// origin, a form filled and clicked, a wait on the DOM, evaluation with a
// promise, a thrown exception as an error, the console kept.
func TestBrowser(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	}))
	defer srv.Close()
	b := browsertest.Start(t, browsertest.MapHost("frontline.test", strings.TrimPrefix(srv.URL, "http://")),
		browsertest.WindowSize(800, 600), browsertest.Timeout(20*time.Second))

	b.Navigate("http://frontline.test/")
	var origin string
	b.Eval(`location.origin`, &origin)
	assert.Equal(t, "http://frontline.test", origin, "the page has the mapped name's origin")
	var width int
	b.Eval(`window.innerWidth`, &width)
	assert.Equal(t, 800, width)

	b.SetValue("#name", `Budi "B" <Santoso>`)
	b.Click("#go")
	b.Wait(`document.getElementById("out").textContent !== ""`, 5*time.Second)
	assert.Equal(t, `hello Budi "B" <Santoso>`, b.Text("#out"))
	assert.Equal(t, "", b.Text("#nothing"))

	// the print layout, and back
	display := func() string {
		var d string
		b.Eval(`getComputedStyle(document.getElementById("go")).display`, &d)
		return d
	}
	b.Media("print")
	assert.Equal(t, "none", display())
	b.Media("")
	assert.Equal(t, "inline-block", display())

	var n int
	b.Eval(`new Promise((ok) => setTimeout(() => ok(42), 50))`, &n)
	assert.Equal(t, 42, n)
	err := b.EvalErr(`Promise.reject(new Error("refused"))`, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refused")
	err = b.EvalErr(`(() => { throw new TypeError("bad input") })()`, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad input")

	err = b.WaitErr(`false`, 200*time.Millisecond)
	assert.True(t, errors.Is(err, browsertest.ErrTimeout), "%v", err)

	assert.Eventually(t, func() bool {
		for _, l := range b.Console() {
			if strings.Contains(l, `clicked Budi "B" <Santoso>`) {
				return true
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "console: %q", b.Console())

	// a kiosk's portrait screen, drawn at half scale; print media; a
	// screenshot of the viewport
	b.Viewport(540, 960, 0.5)
	var size []int
	b.Eval(`[innerWidth, innerHeight]`, &size)
	assert.Equal(t, []int{540, 960}, size)
	shot := filepath.Join(t.TempDir(), "shot.png")
	b.Screenshot(shot)
	f, err := os.Open(shot)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Equal(t, 270, img.Bounds().Dx(), "half scale")
	assert.Equal(t, 480, img.Bounds().Dy())
	var print bool
	b.Media("print")
	b.Eval(`matchMedia("print").matches`, &print)
	assert.True(t, print)
	b.Media("")
	b.Eval(`matchMedia("print").matches`, &print)
	assert.False(t, print)
}

// The benchmarks' helpers: a script in every new document (past the
// page's Content-Security-Policy), the bytes of each request on the wire,
// and the page's heap after a forced garbage collection.
func TestPerf(t *testing.T) {
	script := strings.Repeat("/* padding */\n", 300) + `window.kept = [];`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Security-Policy", "script-src 'self'")
			fmt.Fprint(w, `<!doctype html><html><head><link rel="stylesheet" href="/a.css"><script src="/a.js"></script></head><body><p>hi</p></body></html>`)
		case "/a.css":
			w.Header().Set("Content-Type", "text/css")
			fmt.Fprint(w, "p { color: #111 }")
		case "/a.js":
			w.Header().Set("Content-Type", "text/javascript")
			w.Header().Set("Content-Length", fmt.Sprint(len(script)))
			fmt.Fprint(w, script)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	b := browsertest.Start(t, browsertest.WindowSize(800, 600), browsertest.PollEvery(5*time.Millisecond))
	b.OnNewDocument(`window.early = typeof document.body;`)
	rec := b.RecordNetwork()
	b.Navigate(srv.URL + "/")
	var early string
	b.Eval(`window.early`, &early)
	assert.Equal(t, "object", early, "the script ran before the body was there (typeof null)")

	rec.Stop()
	byType := map[string]browsertest.Transfer{}
	for _, x := range rec.Transfers() {
		byType[x.Type] = x
	}
	require.Contains(t, byType, "Document")
	require.Contains(t, byType, "Stylesheet")
	require.Contains(t, byType, "Script")
	js := byType["Script"]
	assert.Equal(t, srv.URL+"/a.js", js.URL)
	assert.Equal(t, 200, js.Status)
	assert.True(t, js.Done)
	assert.Equal(t, int64(len(script)), js.Body)
	assert.Greater(t, js.Bytes, js.Body, "the headers count on the wire")
	all, body := browsertest.Sum(rec.Transfers(), nil)
	jsOnly, _ := browsertest.Sum(rec.Transfers(), func(x browsertest.Transfer) bool { return x.Type == "Script" })
	assert.Equal(t, js.Bytes, jsOnly)
	assert.Greater(t, all, body)
	rec.Reset()
	assert.Empty(t, rec.Transfers())
	b.Navigate(srv.URL + "/")
	assert.Empty(t, rec.Transfers(), "stopped")

	// objects kept (some 10 MB of the heap), then let go: the heap after a
	// collection shows both
	before := b.HeapAfterGC()
	assert.Positive(t, before.Used)
	assert.GreaterOrEqual(t, before.Total, before.Used)
	b.Eval(`(() => { window.kept = Array.from({length: 200000}, (_, i) => ({i, s: "item " + i})); return true; })()`, nil)
	held := b.HeapAfterGC()
	assert.Greater(t, held.Used-before.Used, int64(4<<20), "%+v then %+v", before, held)
	b.Eval(`(() => { window.kept = []; return true; })()`, nil)
	after := b.HeapAfterGC()
	assert.Less(t, after.Used, before.Used+(1<<20), "%+v then %+v", before, after)
}

// A page whose own navigation is pending when Navigate is called (as the
// kiosk page's, which loads itself again when the agent restarted): the
// browser reports ours aborted, and Navigate asks again, ending on the page
// it was asked for.
func TestNavigateRacedByThePage(t *testing.T) {
	var wanted, slowself atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/restless":
			fmt.Fprint(w, `<!doctype html><title>r</title><script>setTimeout(() => location.replace("/slowself"), 300)</script>`)
		case "/slowself":
			slowself.Add(1)
			time.Sleep(time.Second)
			fmt.Fprint(w, `<!doctype html><title>self</title>`)
		case "/wanted":
			wanted.Add(1)
			fmt.Fprint(w, `<!doctype html><title>wanted</title><p id="here">here</p>`)
		}
	}))
	defer srv.Close()
	b := browsertest.Start(t)
	b.Navigate(srv.URL + "/restless")
	for slowself.Load() == 0 { // the page's own navigation is under way
		time.Sleep(10 * time.Millisecond)
	}
	b.Navigate(srv.URL + "/wanted")
	assert.Equal(t, "here", b.Text("#here"))
	t.Logf("wanted asked %d times", wanted.Load())
}
