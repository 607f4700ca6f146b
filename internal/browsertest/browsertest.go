// Package browsertest drives Debian's headless Chromium from tests, through
// the DevTools protocol (github.com/chromedp/chromedp): start a browser,
// navigate, evaluate JavaScript, wait for a condition, click and type. Test
// support only: no shipped binary links it.
//
// Without Chromium a test skips loudly, and fails under CI (CI set), as the
// back office's page test does: CI must never skip a browser test.
package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// Candidates are the Chromium executables looked for, in order: Debian's
// first (installed by `make deps`).
var Candidates = []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"}

// Chromium returns the path of the browser, or skips the test loudly (and
// fails it under CI) when there is none.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range Candidates {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium is not installed: run `make deps` (it installs Debian's chromium)"
	if os.Getenv("CI") != "" {
		t.Fatalf("BROWSER TEST FAILED: %s; CI must never skip this test", msg)
	}
	fmt.Fprintf(os.Stderr, "\n!!!!!!!! SKIPPING BROWSER TEST %s: %s !!!!!!!!\n\n", t.Name(), msg)
	t.Skip("SKIPPED LOUDLY: " + msg)
	return ""
}

// Option configures a Browser.
type Option func(*config)

type config struct {
	hostRules []string
	width     int
	height    int
	timeout   time.Duration
	poll      time.Duration
}

// MapHost makes the browser resolve host to addr ("127.0.0.1:8080"): a page
// can then be opened as http://host/ and have that origin, while a test
// server on a loopback port serves it.
func MapHost(host, addr string) Option {
	return func(c *config) { c.hostRules = append(c.hostRules, "MAP "+host+" "+addr) }
}

// WindowSize sets the viewport (default 1280×900).
func WindowSize(width, height int) Option {
	return func(c *config) { c.width, c.height = width, height }
}

// Timeout bounds each step (Navigate, Eval, Click, ...; default 30 s).
func Timeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// PollEvery sets how often Wait evaluates its condition (default 20 ms);
// a benchmark that times what it waits for polls more often.
func PollEvery(d time.Duration) Option {
	return func(c *config) { c.poll = d }
}

// Browser is one headless Chromium with one tab, closed when the test
// ends. Its methods fail the test on an error; the *Err forms return it.
type Browser struct {
	t       testing.TB
	ctx     context.Context
	timeout time.Duration
	poll    time.Duration
	console *console
}

// console keeps the page's console lines and exceptions.
type console struct {
	mu    sync.Mutex
	lines []string
}

// For returns the browser for a subtest: the same tab, failing t.
func (b *Browser) For(t testing.TB) *Browser {
	c := *b
	c.t = t
	return &c
}

// Start starts Chromium (or skips, see Chromium) with a fresh profile in a
// temporary directory, and opens a blank tab.
func Start(t testing.TB, opts ...Option) *Browser {
	t.Helper()
	bin := Chromium(t)
	c := config{width: 1280, height: 900, timeout: 30 * time.Second, poll: 20 * time.Millisecond}
	for _, o := range opts {
		o(&c)
	}
	home := t.TempDir()
	aopts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(c.width, c.height),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-gpu", true),
		// a browser that keeps no secrets in a keyring the test has not
		chromedp.Flag("password-store", "basic"),
		chromedp.Env("HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_CACHE_HOME="+home),
	)
	if os.Geteuid() == 0 {
		// Chromium's sandbox refuses to run as root (containers, CI)
		aopts = append(aopts, chromedp.NoSandbox)
	}
	if len(c.hostRules) > 0 {
		aopts = append(aopts, chromedp.Flag("host-resolver-rules", strings.Join(c.hostRules, ",")))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), aopts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	b := &Browser{t: t, ctx: ctx, timeout: c.timeout, poll: c.poll, console: &console{}}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// the first Run starts the browser: no timeout on its context (it
	// would stop the browser), a watchdog instead
	started := make(chan error, 1)
	go func() {
		started <- chromedp.Do(ctx, chromedp.Navigate("about:blank"))
	}()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("browsertest: starting %s: %v", bin, err)
		}
	case <-time.After(60 * time.Second):
		cancelTab()
		t.Fatalf("browsertest: %s did not start within 60 s", bin)
	}
	// keep the page's console and uncaught exceptions for failure reports;
	// the loop ends with the tab
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			line := m.String()
			if m.URL != "" {
				line += fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
			}
			b.console.mu.Lock()
			b.console.lines = append(b.console.lines, line)
			b.console.mu.Unlock()
		}
	}()
	return b
}

// Console returns the page's console lines and exceptions so far.
func (b *Browser) Console() []string {
	b.console.mu.Lock()
	defer b.console.mu.Unlock()
	return append([]string(nil), b.console.lines...)
}

func (b *Browser) fail(what string, err error) {
	b.t.Helper()
	b.t.Fatalf("browsertest: %s: %v\nthe page's console:\n  %s", what, err, strings.Join(b.Console(), "\n  "))
}

func (b *Browser) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, b.timeout)
}

// NavigateErr opens u and waits for its load event.
func (b *Browser) NavigateErr(u string) error {
	for try := 1; ; try++ {
		ctx, cancel := b.step()
		err := chromedp.Do(ctx, chromedp.Navigate(u))
		cancel()
		// net::ERR_ABORTED: a navigation of the page's own was under way
		// (a kiosk page loading itself again after the agent restarted)
		// and the browser gave up ours; ours is asked for again
		if err == nil || !strings.Contains(err.Error(), "net::ERR_ABORTED") || try == 5 {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Navigate opens u and waits for its load event.
func (b *Browser) Navigate(u string) {
	b.t.Helper()
	if err := b.NavigateErr(u); err != nil {
		b.fail("navigate to "+u, err)
	}
}

// EvalErr evaluates the JavaScript expression (awaiting a promise it
// returns) and decodes its JSON value into out (nil: ignored). An
// exception thrown, or a promise rejected, is an error holding its text.
func (b *Browser) EvalErr(expr string, out any) error {
	ctx, cancel := b.step()
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// Eval is EvalErr that fails the test on an error.
func (b *Browser) Eval(expr string, out any) {
	b.t.Helper()
	if err := b.EvalErr(expr, out); err != nil {
		b.fail("evaluate "+short(expr), err)
	}
}

// minWait is the least time Wait gives a condition.
const minWait = 20 * time.Second

// ErrTimeout: a condition did not hold in time.
var ErrTimeout = errors.New("browsertest: condition not met in time")

// WaitErr polls the JavaScript expression until it is truthy, or fails
// with ErrTimeout after d. A page that is still replacing the previous one
// (its JavaScript context not yet there) is waited for too.
func (b *Browser) WaitErr(expr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%w: %s (%v)", ErrTimeout, short(expr), d)
		}
		ctx, cancel := context.WithTimeout(b.ctx, left+5*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
			chromedp.WithPollingInterval(b.poll), chromedp.WithPollingTimeout(left)))
		cancel()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, chromedp.ErrPollingTimeout) || errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("%w: %s (%v)", ErrTimeout, short(expr), d)
		case strings.Contains(err.Error(), "Cannot find context with specified id"),
			strings.Contains(err.Error(), "Execution context was destroyed"),
			strings.Contains(err.Error(), "Inspected target navigated or closed"):
			time.Sleep(b.poll) // a navigation replaced the page
		default:
			return err
		}
	}
}

// Wait is WaitErr that fails the test on an error.
func (b *Browser) Wait(expr string, d time.Duration) {
	b.t.Helper()
	// a condition that holds costs no more with a longer wait, and a
	// shared 2-core CI machine can stall chromium and a race-built server
	// for seconds: Wait gives at least minWait (WaitErr keeps d, for the
	// checks that something does not happen)
	d = max(d, minWait)
	if err := b.WaitErr(expr, d); err != nil {
		var page string
		_ = b.EvalErr(`document.body ? document.body.innerText.slice(0, 2000) : ""`, &page)
		b.fail("wait for "+short(expr), fmt.Errorf("%w\nthe page's text:\n%s", err, page))
	}
}

// Click clicks the first element matching the CSS selector, once it is
// visible.
func (b *Browser) Click(selector string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector), chromedp.NodeVisible)); err != nil {
		b.fail("click "+selector, err)
	}
}

// SetValue sets the value of the form field matching the CSS selector and
// fires its input and change events, as typing would.
func (b *Browser) SetValue(selector, value string) {
	b.t.Helper()
	sel, _ := json.Marshal(selector)
	val, _ := json.Marshal(value)
	var ok bool
	b.Eval(fmt.Sprintf(`(() => {
		const el = document.querySelector(%s);
		if (!el) return false;
		el.value = %s;
		el.dispatchEvent(new Event("input", {bubbles: true}));
		el.dispatchEvent(new Event("change", {bubbles: true}));
		return true;
	})()`, sel, val), &ok)
	if !ok {
		b.fail("set value of "+selector, errors.New("no such element"))
	}
}

// Text returns the text of the first element matching the CSS selector
// ("" when there is none).
func (b *Browser) Text(selector string) string {
	b.t.Helper()
	sel, _ := json.Marshal(selector)
	var s string
	b.Eval(fmt.Sprintf(`(document.querySelector(%s)?.textContent ?? "").trim()`, sel), &s)
	return s
}

// Viewport makes the page's viewport width×height CSS pixels from now on
// (a kiosk's portrait or landscape screen), drawn at scale device pixels
// per CSS pixel (1 is the screen's own; 0.5 makes screenshots half as
// large each way).
func (b *Browser) Viewport(width, height int, scale float64) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height), chromedp.EmulateScale(scale))); err != nil {
		b.fail(fmt.Sprintf("viewport %d×%d", width, height), err)
	}
}

// Media makes CSS media queries see the media type ("print", "screen";
// "" ends the override): a print stylesheet can be checked on screen.
func (b *Browser) Media(media string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	set := func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: media})
		return chromedp.Void{}, err
	}
	if err := chromedp.Do(ctx, set); err != nil {
		b.fail("media "+media, err)
	}
}

// Screenshot writes a PNG of the viewport to path.
func (b *Browser) Screenshot(path string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		b.fail("screenshot "+path, err)
	}
}

func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}
