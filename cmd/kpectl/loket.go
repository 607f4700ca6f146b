package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
)

// errLoketOff: the agent does not serve the counter screen.
var errLoketOff = errors.New("the counter screen is off on the agent (loket.enabled: false)")

// loketOptions are kpectl loket's flags.
type loketOptions struct {
	open   bool
	asJSON bool
}

type loketJSON struct {
	URL            string `json:"url"`
	ExpiresSeconds int    `json:"expires_seconds"`
	Opened         bool   `json:"opened"`
}

// openURL opens u in the desktop's default browser, without waiting for
// it (a test replaces it). On Windows, url.dll's handler does what
// `start` does without handing the URL to cmd.exe's parser.
var openURL = func(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	case "darwin":
		cmd = exec.Command("open", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() // reaped; xdg-open hands the URL on and ends
	return nil
}

// asRoot says kpectl runs as root (sudo): a browser it started would run
// as root too (a test replaces it).
var asRoot = func() bool { return os.Geteuid() == 0 }

// loket: kpectl loket [--open] [--json] prints a one-time login link to
// the counter screen, and with --open opens it in the desktop's browser.
func (c *cli) loket(ctx context.Context, o loketOptions) error {
	cl, err := c.agent()
	if err != nil {
		return err
	}
	l, err := cl.LoketLogin(ctx)
	if isNotFound(err) {
		// not wrapped: the sentence is kpectl's, the agent's answer the detail
		return fmt.Errorf("%w (%v)", errLoketOff, err)
	}
	if err != nil {
		return err
	}
	m := c.msg.Loket
	opened := false
	var openErr error
	if o.open {
		if asRoot() {
			openErr = errors.New("running as root")
		} else if openErr = openURL(l.URL); openErr == nil {
			opened = true
		}
	}
	if o.asJSON {
		return c.printJSON(loketJSON{URL: l.URL, ExpiresSeconds: l.ExpiresSeconds, Opened: opened})
	}
	// the link alone on standard output; what to do with it on standard error
	fmt.Fprintf(c.errOut, m.Link+"\n", l.ExpiresSeconds)
	fmt.Fprintln(c.out, l.URL)
	switch {
	case opened:
		fmt.Fprintln(c.errOut, m.Opened)
	case o.open && asRoot():
		fmt.Fprintln(c.errOut, m.Root)
	case openErr != nil:
		fmt.Fprintf(c.errOut, m.OpenFailed+"\n", openErr)
	}
	return nil
}
