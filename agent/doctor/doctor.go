// Package doctor diagnoses a terminal for a field technician: the PC/SC
// service, the readers, the SAM, the agent, the clock, the link to the
// back office and its certificates, the disk and the outbox. Every finding
// says what is wrong in technical English (Detail) and what to do, in
// Bahasa Indonesia and English (Action). No finding holds personal data:
// cards other than the SAM are never read.
//
// Every check is bounded (Options.CheckTimeout) and so is the whole run
// (Options.Timeout): doctor never hangs, even when pcscd, the agent or the
// network do.
package doctor

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"kpe-agent/agent/api"
	"kpe-agent/agent/config"
	"kpe-agent/internal/i18n"
)

// Status of a finding.
type Status string

// Statuses, from good to bad; Skip: the check could not run or does not
// apply (Detail says why).
const (
	OK   Status = "ok"
	Skip Status = "skip"
	Warn Status = "warn"
	Fail Status = "fail"
)

func (s Status) rank() int {
	switch s {
	case OK:
		return 0
	case Skip:
		return 1
	case Warn:
		return 2
	}
	return 3
}

// Text is a sentence in Bahasa Indonesia and in English, from the
// catalogue (internal/i18n, doctor.*).
type Text = i18n.Text

// Check IDs, in the order of a report.
const (
	CheckConfig     = "config"
	CheckAgent      = "agent"
	CheckPCSC       = "pcsc"
	CheckReaders    = "readers"
	CheckSAM        = "sam"
	CheckBackOffice = "backoffice"
	CheckClock      = "clock"
	CheckClientCert = "client-cert"
	CheckServerCert = "server-cert"
	CheckDisk       = "disk"
	CheckOutbox     = "outbox"
)

var order = []string{CheckConfig, CheckAgent, CheckPCSC, CheckReaders, CheckSAM, CheckBackOffice,
	CheckClock, CheckClientCert, CheckServerCert, CheckDisk, CheckOutbox}

// Finding is one check's outcome.
type Finding struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Code names the outcome for programs ("no-service", "dns",
	// "tls-unknown-authority", "expires-soon", ...).
	Code    string `json:"code"`
	Detail  string `json:"detail"`  // technical, English
	Message Text   `json:"message"` // what was found, for the technician
	Action  Text   `json:"action,omitzero"`
}

// Report is the outcome of Run.
type Report struct {
	Findings []Finding      `json:"findings"`
	Started  time.Time      `json:"started"`
	Took     Duration       `json:"took"`
	OS       string         `json:"os"`
	Summary  map[Status]int `json:"summary"`
}

// Duration prints as a string in JSON ("1.2s").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(time.Duration(d).Round(time.Millisecond).String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// Worst is the report's worst status.
func (r Report) Worst() Status {
	w := OK
	for _, f := range r.Findings {
		if f.Status.rank() > w.rank() {
			w = f.Status
		}
	}
	return w
}

// Failed reports whether a check failed.
func (r Report) Failed() bool { return r.Worst() == Fail }

// Find returns the finding with id.
func (r Report) Find(id string) (Finding, bool) {
	for _, f := range r.Findings {
		if f.ID == id {
			return f, true
		}
	}
	return Finding{}, false
}

// Options configure Run.
type Options struct {
	// Config is the agent's configuration (nil: defaults). Fields left
	// zero take the agent's documented defaults (ApplyDefaults).
	Config *config.Config
	// ConfigErr: the configuration could not be loaded; reported as the
	// config finding (the checks go on with Config or the defaults).
	ConfigErr error
	// Agent reaches the running agent (nil: a client without token at
	// Config.API.Listen). TokenErr says why it has no token, if it has none.
	Agent    *api.Client
	TokenErr error
	// CheckTimeout bounds each check (default 5 s); Timeout the whole run
	// (default 40 s).
	CheckTimeout, Timeout time.Duration
	// Only, if set, runs only these checks (check IDs; a check's
	// sub-findings such as outbox-dead come with it).
	Only []string
	// Progress, if set, is called as each check ends (from one goroutine at
	// a time).
	Progress func(done, total int, f Finding)
	// Tests only: the clock, the OS whose actions are given (default
	// runtime.GOOS), and the back office's transport (default: built from
	// Config.Sync with the proxy from the environment).
	Now           func() time.Time
	GOOS          string
	HTTPTransport http.RoundTripper
}

// DefaultConfigFile is the agent's configuration file when neither
// --config nor KPE_CONFIG names one (config.DefaultFile).
func DefaultConfigFile() string { return config.DefaultFile() }

// ApplyDefaults returns a copy of c (nil: none) with the documented
// defaults in the zero fields doctor and kpectl use (config.Load fills
// them already; a Config made by hand may not).
func ApplyDefaults(c *config.Config) config.Config {
	var out config.Config
	if c != nil {
		out = *c
	}
	if out.API.Listen == "" {
		out.API.Listen = api.DefaultListen
	}
	if out.API.TokenFile == "" {
		out.API.TokenFile = config.DefaultTokenFile()
	}
	if out.Outbox.Path == "" {
		out.Outbox.Path = config.DefaultOutboxPath()
	}
	if out.Outbox.MaxRecords <= 0 {
		out.Outbox.MaxRecords = 100_000
	}
	if out.Outbox.MaxAge <= 0 {
		out.Outbox.MaxAge = 30 * 24 * time.Hour
	}
	return out
}

// run is one doctor run's state.
type run struct {
	o    Options
	cfg  config.Config
	goos string
	now  func() time.Time

	mu       sync.Mutex
	findings []Finding
	done     int
	total    int
}

// wants reports whether any of ids is to be run.
func (r *run) wants(ids ...string) bool {
	if len(r.o.Only) == 0 {
		return true
	}
	for _, id := range ids {
		for _, o := range r.o.Only {
			if o == id {
				return true
			}
		}
	}
	return false
}

// checkOf is the check a finding belongs to (outbox-dead: outbox).
func checkOf(id string) string {
	for _, c := range order {
		if id == c || strings.HasPrefix(id, c+"-") && !slices.Contains(order, id) {
			return c
		}
	}
	return id
}

func (r *run) add(f Finding) {
	if !r.wants(checkOf(f.ID)) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.findings = append(r.findings, f)
	r.done++
	if r.o.Progress != nil {
		r.o.Progress(r.done, max(r.total, r.done), f)
	}
}

// Run runs every check and returns the report. It never panics and
// returns within Options.Timeout (a check still running then is reported
// as failed by its timeout).
func Run(ctx context.Context, o Options) Report {
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 5 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 40 * time.Second
	}
	r := &run{o: o, cfg: ApplyDefaults(o.Config), goos: o.GOOS, now: o.Now}
	for _, id := range order {
		if r.wants(id) {
			r.total++
		}
	}
	if r.goos == "" {
		r.goos = runtime.GOOS
	}
	if r.now == nil {
		r.now = time.Now
	}
	if o.Agent == nil {
		if c, err := LocalAgent(r.cfg.API, "", ""); err == nil {
			r.o.Agent = c
		}
	}
	start := r.now()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	r.add(r.checkConfig())
	ag := r.checkAgent(ctx)

	var wg sync.WaitGroup
	if r.wants(CheckPCSC, CheckReaders, CheckSAM) {
		wg.Go(func() { r.pcscChain(ctx, ag) })
	}
	if r.wants(CheckBackOffice, CheckClock, CheckClientCert, CheckServerCert) {
		wg.Go(func() { r.backOffice(ctx) })
	}
	wg.Go(func() {
		if r.wants(CheckDisk) {
			r.add(r.checkDisk())
		}
		if r.wants(CheckOutbox) {
			r.checkOutbox(ctx, ag)
		}
	})
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-ctx.Done():
		// A check overran the whole budget: report what is missing.
	}

	r.mu.Lock()
	got := map[string]bool{}
	for _, f := range r.findings {
		got[f.ID] = true
	}
	findings := append([]Finding(nil), r.findings...)
	r.mu.Unlock()
	for _, id := range order {
		if !got[id] && r.wants(id) {
			findings = append(findings, Finding{ID: id, Status: Fail, Code: "timeout",
				Detail:  fmt.Sprintf("the check did not end within doctor's %v budget", o.Timeout),
				Message: i18n.Both("doctor.timeout.message"),
				Action:  i18n.Both("doctor.timeout.action")})
		}
	}
	slices.SortStableFunc(findings, func(a, b Finding) int {
		return slices.Index(order, checkOf(a.ID)) - slices.Index(order, checkOf(b.ID))
	})
	rep := Report{Findings: findings, Started: start, Took: Duration(r.now().Sub(start)), OS: r.goos, Summary: map[Status]int{}}
	for _, f := range findings {
		rep.Summary[f.Status]++
	}
	return rep
}

// bounded runs f with a deadline of CheckTimeout; when f does not return
// in time (a PC/SC call that ignores its context), its result is dropped.
func bounded[T any](ctx context.Context, d time.Duration, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- result{err: fmt.Errorf("internal error: %v", p)}
			}
		}()
		v, err := f(ctx)
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		select {
		case r := <-ch: // it ended just in time
			return r.v, r.err
		default:
		}
		var zero T
		return zero, fmt.Errorf("no answer within %v: %w", d, ctx.Err())
	}
}

func (r *run) checkConfig() Finding {
	f := Finding{ID: CheckConfig}
	switch {
	case r.o.ConfigErr != nil:
		f.Status, f.Code, f.Detail = Fail, "invalid", r.o.ConfigErr.Error()
		f.Message = i18n.Both("doctor.config.invalid.message")
		f.Action = i18n.Both("doctor.config.invalid.action")
	case r.cfg.File == "":
		f.Status, f.Code, f.Detail = OK, "defaults", "no configuration file: the defaults apply"
		f.Message = i18n.Both("doctor.config.defaults.message")
	case r.cfg.KTPel.Pseudonym == config.PseudonymFile:
		// the explicit fallback: the agent logs it at start; the doctor
		// keeps it in front of the technician
		f.Status, f.Code = Warn, "pseudonym-file"
		f.Detail = "loaded from " + r.cfg.File + "; ktpel.pseudonym: file (the KTP-el pseudonym key is a file on this PC, not in the SAM)"
		f.Message = i18n.Both("doctor.config.pseudonym-file.message", r.cfg.File)
		f.Action = i18n.Both("doctor.config.pseudonym-file.action")
	default:
		f.Status, f.Code, f.Detail = OK, "loaded", "loaded from "+r.cfg.File
		f.Message = i18n.Both("doctor.config.loaded.message", r.cfg.File)
	}
	return f
}
