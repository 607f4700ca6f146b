package installer_test

// The example Chromium policy in a real Chromium: Debian's chromium reads
// /etc/chromium/policies/managed/, which this test must not change for
// the machine (other tests drive Chromium too). So the browser runs in a
// private mount namespace in which /etc/chromium is a copy holding the
// policy. Needs root (the mount namespace) and Debian's chromium.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"kpe-agent/internal/browsertest"
)

// deprecatedKioskPolicies are policies of the example that chrome://policy
// may list as deprecated: still applied (docs/kiosk.md).
var deprecatedKioskPolicies = []string{"AutofillAddressEnabled", "AutofillCreditCardEnabled"}

// policyChromium starts Chromium, headless, with policy as its only
// managed policy file and the unit's flags (but --kiosk, --kiosk-printing
// and the profile), and returns its browser context; err is the error of
// the first DevTools command (the start).
func policyChromium(t *testing.T, bin string, policy map[string]any) (context.Context, error) {
	t.Helper()
	etc := filepath.Join(t.TempDir(), "etc-chromium")
	managed := filepath.Join(etc, "policies", "managed")
	if err := os.MkdirAll(managed, 0o755); err != nil {
		t.Fatal(err)
	}
	// What Debian's /etc/chromium holds besides (master_preferences).
	entries, _ := os.ReadDir("/etc/chromium")
	for _, e := range entries {
		if e.Type().IsRegular() {
			if b, err := os.ReadFile(filepath.Join("/etc/chromium", e.Name())); err == nil {
				os.WriteFile(filepath.Join(etc, e.Name()), b, 0o644)
			}
		}
	}
	b, err := json.MarshalIndent(policy, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(managed, "kpe-kiosk.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	launcher := filepath.Join(t.TempDir(), "chromium-with-policy")
	script := fmt.Sprintf("#!/bin/sh\nexec unshare --mount --propagation private /bin/sh -c 'mount --bind \"$0\" /etc/chromium && exec \"$@\"' %q %q \"$@\"\n", etc, bin)
	if err := os.WriteFile(launcher, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	_, argv := kioskUnit(t)
	home := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(launcher),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.Env("HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_CACHE_HOME="+home, "LANGUAGE=en"),
	)
	for _, f := range argv[1 : len(argv)-1] {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		switch name {
		case "kiosk", "kiosk-printing", "user-data-dir":
			continue
		}
		if hasValue {
			opts = append(opts, chromedp.Flag(name, value))
		} else {
			opts = append(opts, chromedp.Flag(name, true))
		}
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// The first command starts the browser: no timeout on its context (it
	// would stop the browser), a watchdog instead.
	started := make(chan error, 1)
	go func() {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.userAgent`))
		started <- err
	}()
	select {
	case err = <-started:
	case <-time.After(60 * time.Second):
		cancelTab()
		t.Fatalf("%s did not start within 60 s", bin)
	}
	return ctx, err
}

// policyRow is a row of chrome://policy.
type policyRow struct{ Name, Status, Errors string }

// policyRows reads chrome://policy's rows, in their shadow roots.
const policyRowsJS = `(() => {
	const rows = [];
	const walk = (root) => {
		for (const el of root.querySelectorAll("*")) {
			if (el.tagName === "POLICY-ROW" && el.shadowRoot) {
				const s = el.shadowRoot;
				const text = (sel) => (s.querySelector(sel)?.textContent ?? "").trim();
				rows.push({Name: text("#name"), Status: text(".policy.row .messages"), Errors: text(".errors.row .value")});
			} else if (el.shadowRoot) {
				walk(el.shadowRoot);
			}
		}
	};
	walk(document);
	return rows.filter((r) => r.Name !== "");
})()`

func TestKioskChromiumPolicy(t *testing.T) {
	need(t, os.Geteuid() == 0, "giving Chromium the kiosk policy in a private mount namespace needs root")
	bin := browsertest.Chromium(t)
	_, err := os.Stat("/etc/chromium")
	need(t, err == nil, "/etc/chromium is missing: the kiosk policy test needs Debian's chromium (make deps)")
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "true").CombinedOutput()
	need(t, err == nil, "a private mount namespace (unshare --mount): "+strings.TrimSpace(string(out)))

	// The agent's stand-in: the page, on an origin of this test; the
	// policy under test allows that origin instead of 127.0.0.1:7531.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, "<!doctype html><title>kiosk stand-in</title><p>Masukkan KPE Anda</p>")
	}))
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<!doctype html><title>another site</title>")
	}))
	defer other.Close()

	policy := kioskPolicy(t)
	if got := fmt.Sprint(policy["URLAllowlist"]); got != fmt.Sprint([]any{originOf(t, kioskURL(t))}) {
		t.Fatalf("URLAllowlist %s is not the unit's origin", got)
	}
	policy["URLAllowlist"] = []any{srv.URL}

	t.Run("the policy as shipped: no remote debugging", func(t *testing.T) {
		if _, err := policyChromium(t, bin, policy); err == nil {
			t.Fatal("Chromium let DevTools drive it with DeveloperToolsAvailability 2")
		} else {
			t.Logf("DevTools refused, as DeveloperToolsAvailability 2 wants: %v", err)
		}
	})

	// The rest needs DevTools: the same policy without that one.
	delete(policy, "DeveloperToolsAvailability")
	ctx, err := policyChromium(t, bin, policy)
	if err != nil {
		t.Fatalf("Chromium with the kiosk policy (but DeveloperToolsAvailability) did not start: %v", err)
	}
	step := func(timeout time.Duration) (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, timeout)
	}

	t.Run("chrome://policy lists every policy as OK", func(t *testing.T) {
		c, cancel := step(30 * time.Second)
		defer cancel()
		if err := chromedp.Do(c, chromedp.Navigate("chrome://policy/")); err != nil {
			t.Fatal(err)
		}
		var rows []policyRow
		for {
			raw, err := chromedp.Run(c, chromedp.Evaluate[[]byte](policyRowsJS))
			if err == nil {
				rows = nil
				if err := json.Unmarshal(raw, &rows); err != nil {
					t.Fatal(err)
				}
				if slices.ContainsFunc(rows, func(r policyRow) bool { return r.Name == "URLBlocklist" }) {
					break
				}
			}
			if c.Err() != nil {
				t.Fatalf("chrome://policy did not list the policy (rows %v, last error %v): is /etc/chromium/policies/managed where this Chromium reads?", rows, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		seen := map[string]bool{}
		for _, r := range rows {
			if _, ours := policy[r.Name]; !ours {
				continue
			}
			seen[r.Name] = true
			switch {
			case r.Status == "OK":
			case r.Status == "Deprecated" && slices.Contains(deprecatedKioskPolicies, r.Name):
				t.Logf("%s: deprecated but applied", r.Name)
			default:
				t.Errorf("chrome://policy: %s has status %q (%s)", r.Name, r.Status, r.Errors)
			}
		}
		for name := range policy {
			if !seen[name] {
				t.Errorf("chrome://policy does not list %s", name)
			}
		}
	})

	t.Run("the agent's origin opens", func(t *testing.T) {
		c, cancel := step(30 * time.Second)
		defer cancel()
		if err := chromedp.Do(c, chromedp.Navigate(srv.URL+"/kiosk/")); err != nil {
			t.Fatalf("the allowed page: %v", err)
		}
		title, err := chromedp.Run(c, chromedp.Evaluate[string](`document.title`))
		if err != nil || title != "kiosk stand-in" {
			t.Fatalf("title %q (%v)", title, err)
		}
	})

	for _, u := range []string{
		other.URL + "/", // another port of the same PC
		strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/kiosk/", // the same server by another name
		"data:text/html,<title>data</title>",
		"file:///etc/hostname",
	} {
		t.Run("blocked: "+u, func(t *testing.T) {
			c, cancel := step(30 * time.Second)
			defer cancel()
			err := chromedp.Do(c, chromedp.Navigate(u))
			if err == nil || !strings.Contains(err.Error(), "ERR_BLOCKED_BY_ADMINISTRATOR") {
				t.Errorf("navigating to %s: %v, want net::ERR_BLOCKED_BY_ADMINISTRATOR", u, err)
			}
		})
	}
}
