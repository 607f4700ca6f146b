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
	b.EmulateMedia("print")
	assert.Equal(t, "none", display())
	b.EmulateMedia("")
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
	}, 5*time.Second, 20*time.Millisecond, "console: %q", b.Console())

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
