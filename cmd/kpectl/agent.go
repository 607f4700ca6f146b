package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"kpe-agent/agent/api"
	"kpe-agent/agent/config"
	"kpe-agent/agent/doctor"
	"kpe-agent/internal/clikit"
	"kpe-agent/sync/outbox"
)

// loadConfig loads the agent's configuration: file (-config or
// $KPE_CONFIG), else the default file, which may be missing: then the
// defaults and the KPE_* variables apply, with placeholders for
// terminal.id and terminal.site (the agent needs them, kpectl does not).
// The returned configuration is usable also when loading failed (err
// says why): the defaults and the KPE_* variables.
//
// With the default file (the installed agent's), the KPE_* and proxy
// variables the service gets from its environment files
// (/etc/default/kpe-agent, /etc/sysconfig/kpe-agent) apply too, under the
// caller's own: doctor checks what the service uses.
func (c *cli) loadConfig(file string) (config.Config, error) {
	environ := os.Environ()
	if file == "" {
		file = doctor.DefaultConfigFile()
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			file = ""
		}
		if runtime.GOOS != "windows" {
			var err error
			if environ, err = config.ServiceEnviron(environ, serviceEnvFiles...); err != nil {
				fmt.Fprintf(c.errOut, "kpectl: %v\n", err)
			}
			// the service's proxy, for doctor's back-office check (Go's
			// HTTP client reads the proxy from the process environment;
			// sudo drops the caller's)
			for _, kv := range environ {
				if k, v, _ := strings.Cut(kv, "="); slices.Contains(config.ProxyVars, k) && os.Getenv(k) == "" {
					os.Setenv(k, v)
				}
			}
		}
	}
	cfg, err := config.Load(config.Source{File: file, Environ: environ})
	if err == nil {
		return doctor.ApplyDefaults(cfg), nil
	}
	set := map[string]string{}
	for key, env := range map[string]string{"terminal.id": "KPE_TERMINAL_ID", "terminal.site": "KPE_TERMINAL_SITE"} {
		if !slices.ContainsFunc(environ, func(kv string) bool { return strings.HasPrefix(kv, env+"=") && len(kv) > len(env)+1 }) {
			set[key] = "unconfigured"
		}
	}
	fallback, ferr := config.Load(config.Source{Environ: environ, Set: set})
	if ferr != nil {
		fallback = nil // the KPE_* variables are wrong too: the defaults alone
	} else {
		fallback.Terminal.ID, fallback.Terminal.Site = "", ""
	}
	if file == "" {
		if ferr == nil {
			return doctor.ApplyDefaults(fallback), nil
		}
		return doctor.ApplyDefaults(nil), ferr
	}
	return doctor.ApplyDefaults(fallback), err
}

// serviceEnvFiles: the installed service's environment files (a test
// points it elsewhere).
var serviceEnvFiles = config.ServiceEnvFiles

// agentFor returns a client of the agent: --agent or the configuration's
// api.listen, with the token of --token-file or api.token_file. tokenErr
// says why the client has no token.
func (c *cli) agentFor(cfg config.Config) (cl *api.Client, tokenErr error, err error) {
	token, tokenErr := config.ReadToken(c.tokenFileOr(cfg.API.TokenFile))
	if tokenErr != nil {
		token = nil
	}
	cl, err = doctor.LocalAgent(cfg.API, c.agentURL, strings.TrimSpace(string(token)))
	switch {
	case errors.Is(err, doctor.ErrAgentCert):
		return nil, nil, err
	case err != nil:
		return nil, nil, clikit.UsageError{Err: err}
	}
	return cl, tokenErr, nil
}

// tokenFileOr is --token-file, else def (else the default token file).
func (c *cli) tokenFileOr(def ...string) string {
	if c.tokenFile != "" {
		return c.tokenFile
	}
	for _, d := range def {
		if d != "" {
			return d
		}
	}
	return config.DefaultTokenFile()
}

// agent is agentFor with the configuration loaded; a client without token
// is an error unless anonymous (health only).
func (c *cli) agent() (*api.Client, error) {
	cfg, err := c.loadConfig(c.configFile)
	if err != nil && c.agentURL == "" {
		fmt.Fprintln(c.errOut, err)
	}
	cl, tokenErr, err := c.agentFor(cfg)
	if err != nil {
		return nil, err
	}
	// Said only if the agent refuses the call (explain).
	c.tokenErr = tokenErr
	c.tokenPath = c.tokenFileOr(cfg.API.TokenFile)
	return cl, nil
}

type statusJSON struct {
	Agent   string           `json:"agent"`
	Health  api.Health       `json:"health"`
	Readers []api.Reader     `json:"readers"`
	Queue   *api.QueueStatus `json:"queue"`
}

// status: kpectl status [--json].
func (c *cli) status(ctx context.Context, asJSON bool) error {
	cl, err := c.agent()
	if err != nil {
		return err
	}
	h, err := cl.Health(ctx)
	if err != nil {
		return err
	}
	rs, err := cl.Readers(ctx)
	if err != nil {
		return err
	}
	q, err := cl.Queue(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		if rs == nil {
			rs = []api.Reader{}
		}
		return c.printJSON(statusJSON{Agent: cl.URL(), Health: h, Readers: rs, Queue: &q})
	}
	a := c.msg.Agent
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	line := h.Status
	if h.Version != "" {
		line += ", " + a.Version + " " + h.Version
	}
	if h.Terminal != "" {
		line += ", " + a.Terminal + " " + h.Terminal
	}
	if !h.Started.IsZero() {
		line += ", " + a.Started + " " + h.Started.Local().Format("2006-01-02 15:04:05")
	}
	fmt.Fprintf(w, "%s\t%s  (%s)\n", a.Agent, line, cl.URL())
	fmt.Fprintf(w, "%s\t%s\n", a.PCSC, h.PCSC)
	if s := h.SAM; s != nil && s.Present {
		fmt.Fprintf(w, "%s\t"+a.SAMLine+"\n", a.SAM, s.State, s.Serial, s.Counter, s.Reader)
	} else {
		fmt.Fprintf(w, "%s\t%s\n", a.SAM, a.SAMMissing)
	}
	if len(rs) == 0 {
		fmt.Fprintf(w, "%s\t%s\n", a.Readers, a.NoReaders)
	}
	for i, r := range rs {
		label := ""
		if i == 0 {
			label = a.Readers
		}
		role := a.Roles[r.Role]
		if role == "" {
			role = r.Role
		}
		desc := fmt.Sprintf("%q [%s]", r.Name, role)
		if r.CardPresent {
			kind := r.Kind
			if kind == "" {
				kind = "?"
			}
			desc += " " + c.msg.CardPresent + ": " + kind
		}
		if st := a.States[r.State]; st != "" && r.State != api.StateIdle {
			desc += ", " + st
		}
		if r.Busy {
			desc += ", " + a.Busy
		}
		if r.Error != nil {
			desc += " — " + r.Error.Message + " [" + r.Error.Code + "]"
		}
		fmt.Fprintf(w, "%s\t%s\n", label, desc)
	}
	oldest := "-"
	if q.Pending+q.Sending > 0 {
		oldest = c.age(time.Duration(q.OldestUnsynced * float64(time.Second)))
	}
	fmt.Fprintf(w, "%s\t"+a.QueueLine+"\n", a.Outbox, q.Pending, q.Sending, q.Dead, percent(q.Used), oldest)
	c.printSync(w, q.Sync)
	for i, p := range h.Problems {
		label := ""
		if i == 0 {
			label = a.Problems
		}
		fmt.Fprintf(w, "%s\t%s [%s]\n", label, p.Message, p.Code)
	}
	return w.Flush()
}

func (c *cli) printSync(w *tabwriter.Writer, s api.SyncStatus) {
	a := c.msg.Agent
	if !s.Enabled {
		fmt.Fprintf(w, "%s\t%s\n", a.Sync, a.SyncOff)
		return
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return a.Never
		}
		return t.Local().Format("2006-01-02 15:04:05")
	}
	fmt.Fprintf(w, "%s\t%s\n", a.Sync, s.URL)
	fmt.Fprintf(w, "\t%s: %s, %s: %s\n", a.LastSuccess, when(s.LastSuccess), a.LastAttempt, when(s.LastAttempt))
	if !s.NextAttempt.IsZero() {
		fmt.Fprintf(w, "\t%s: %s\n", a.NextAttempt, when(s.NextAttempt))
	}
	if s.Failures > 0 || s.LastError != "" {
		fmt.Fprintf(w, "\t%s: %d, %s: %s\n", a.Failures, s.Failures, a.LastError, oneLine(s.LastError))
	}
	fmt.Fprintf(w, "\t"+a.SyncTotals+"\n", s.Accepted, s.Duplicates, s.Rejected)
	if s.ClockSkewed {
		fmt.Fprintf(w, "\t%s\n", a.ClockSkewed)
	}
}

// maxWait is the longest wait for a card the agent accepts.
const maxWait = 300 * time.Second

// authOptions are kpectl auth's flags.
type authOptions struct {
	service, operator, reader string
	wait, timeout             time.Duration
	confirm, asJSON           bool
}

// auth: kpectl auth --service S --operator ID [-r READER] [--wait 30s]
// [--confirm-last-try] [--json] [--timeout 5m]. While the agent works, the
// session's progress is printed from its event stream; Ctrl-C cancels the
// session on the agent.
func (c *cli) auth(ctx context.Context, o authOptions) error {
	switch {
	case o.service == "" || o.operator == "":
		return clikit.Usagef("--service and --operator must not be empty")
	case o.wait < 0 || o.wait > maxWait:
		return clikit.Usagef("--wait must be between 0 and %v", maxWait)
	case o.timeout <= 0:
		return clikit.Usagef("--timeout must be positive")
	}
	cl, err := c.agent()
	if err != nil {
		return err
	}
	a := c.msg.Agent
	req := api.AuthRequest{Reader: o.reader, Service: o.service, Operator: o.operator,
		WaitSeconds: int(o.wait.Round(time.Second) / time.Second), ConfirmLastTry: o.confirm, Lang: c.lang}

	// Follow the events from before the request, so none is missed.
	start := time.Now()
	ectx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	events := make(chan api.Event)
	if !o.asJSON {
		if s, err := cl.OpenEvents(ectx); err == nil {
			go func() {
				defer close(events)
				defer s.Close()
				for {
					ev, err := s.Next()
					if err != nil {
						return
					}
					select {
					case events <- ev:
					case <-ectx.Done():
						return
					}
				}
			}()
		} else if errors.Is(err, api.ErrNotRunning) {
			return err
		} else {
			close(events)
		}
	} else {
		close(events)
	}

	actx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	type result struct {
		res api.AuthResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := cl.Auth(actx, req)
		done <- result{r, err}
	}()
	if req.WaitSeconds > 0 && !o.asJSON {
		fmt.Fprintf(c.out, a.Waiting+"\n", req.WaitSeconds)
	}
	followed := o.reader
	last := ""
	var res result
	// The answer and the session's events travel on two connections: the
	// answer can come first. After it, the followed reader's events are
	// still printed until its session ends (ended: its latest state ends a
	// session), for at most drainFor, so that no progress line is lost or
	// printed after the outcome. A failure with no event of the reader
	// (seen) may have had no session at all: nothing to wait for.
	seen, ended := false, false
	var drain <-chan time.Time
	over := func() bool { // once answered: the session's end was seen
		if res.err == nil {
			return last == api.StateRecorded
		}
		return ended
	}
wait:
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				if drain != nil {
					break wait
				}
				continue
			}
			if ev.Type != api.EventSession || (!ev.Time.IsZero() && ev.Time.Before(start.Add(-time.Second))) {
				continue
			}
			if followed == "" && ev.State != api.StateIdle && ev.State != api.StateRemoved {
				followed = ev.Reader
			}
			if ev.Reader != followed {
				continue
			}
			seen = true
			ended = sessionEnded(ev.State)
			// The outcome (recorded or failed) is printed from the answer.
			if ev.State != last && ev.State != api.StateRecorded && ev.State != api.StateFailed && ev.State != api.StateIdle {
				text := a.States[ev.State]
				if text == "" {
					text = ev.State
				}
				if ev.State == api.StateIdentified && ev.CardKind != "" {
					text += ": " + ev.CardKind
				}
				fmt.Fprintf(c.out, "%s  %s\n", time.Now().Format("15:04:05"), text)
			}
			last = ev.State
			if drain != nil && over() {
				break wait
			}
		case res = <-done:
			if res.err == nil && res.res.Reader != "" && res.res.Reader != followed {
				// a success names its reader, whose events may not be here yet
				followed, last, seen, ended = res.res.Reader, "", false, false
			}
			if events == nil || over() || ctx.Err() != nil || (!seen && res.err != nil) {
				break wait
			}
			done = nil
			t := time.NewTimer(drainFor)
			defer t.Stop()
			drain = t.C
		case <-drain:
			break wait
		}
	}
	stopEvents()

	if ctx.Err() != nil {
		// Interrupted (Ctrl-C): cancel the session on the agent too. The
		// request closed with ctx already ends it; the cancel names the
		// reader, and without one known (no event seen) nothing more is
		// sent: never a cancel of every reader's workflow.
		if followed != "" {
			cctx, ccancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer ccancel()
			if err := cl.Cancel(cctx, followed); err != nil && !isNotFound(err) {
				fmt.Fprintf(c.errOut, a.CancelFailed+"\n", err)
			}
		}
		if o.asJSON {
			_ = c.printJSON(api.ErrorBody{Error: api.Error{Code: "cancelled", Message: a.Cancelled, Retriable: true}})
		} else {
			fmt.Fprintln(c.out, a.Cancelled)
		}
		return errReported
	}
	if res.err != nil {
		var ae *api.APIError
		if !errors.As(res.err, &ae) || ae.Status == http.StatusUnauthorized {
			return res.err
		}
		if o.asJSON {
			_ = c.printJSON(api.ErrorBody{Error: ae.Err})
			return errReported
		}
		fmt.Fprintf(c.out, a.Failed+": %s\n", ae.Err.Code, ae.Err.Message)
		if ae.Err.TriesLeft > 0 {
			fmt.Fprintf(c.out, "  "+a.TriesLeft+"\n", ae.Err.TriesLeft)
		}
		if ae.Err.Code == "finger-last-try" {
			fmt.Fprintln(c.out, "  "+a.LastTryHint)
		}
		return errReported
	}
	r := res.res
	if o.asJSON {
		return c.printJSON(r)
	}
	fmt.Fprintf(c.out, "%s  %s %s\n", time.Now().Format("15:04:05"), a.Recorded, r.Code)
	fmt.Fprintf(c.out, "  "+a.RecordLine+"\n", r.Counter, r.Reader, r.CardKind)
	if r.Message != "" {
		fmt.Fprintln(c.out, "  "+r.Message)
	}
	return nil
}

// drainFor bounds how long kpectl auth, once answered, waits for the rest
// of the session's events (a variable for a test).
var drainFor = 1500 * time.Millisecond

// sessionEnded: after state, the session's workflow is over.
func sessionEnded(state string) bool {
	switch state {
	case api.StateRecorded, api.StateFailed, api.StateRemoved, api.StateIdle:
		return true
	}
	return false
}

func isNotFound(err error) bool {
	var ae *api.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// sync: kpectl sync now [--json] [--timeout 2m].
func (c *cli) sync(ctx context.Context, asJSON bool, timeout time.Duration) error {
	if timeout <= 0 {
		return clikit.Usagef("--timeout must be positive")
	}
	cl, err := c.agent()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p := c.newProgress()
	start := time.Now()
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			p.Show("%s %s", c.msg.Agent.SendingNow, time.Since(start).Round(time.Second))
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	r, err := cl.Sync(ctx)
	close(stop)
	p.Clear()
	a := c.msg.Agent
	var ae *api.APIError
	switch {
	case errors.As(err, &ae) && ae.Status != http.StatusUnauthorized:
		if asJSON {
			_ = c.printJSON(api.ErrorBody{Error: ae.Err})
		} else {
			fmt.Fprintf(c.out, "%s %s %s\n", a.SyncFailed, ae.Err.Message, fmt.Sprintf(a.APIError, ae.Err.Code, ae.Status))
		}
		return errReported
	case err != nil:
		return err
	}
	if asJSON {
		if err := c.printJSON(r); err != nil {
			return err
		}
		if r.Error != nil {
			return errReported
		}
		return nil
	}
	fmt.Fprintf(c.out, a.SyncResult+"\n", r.Sent, r.Accepted, r.Duplicates, r.Rejected, r.Remaining)
	if r.Error != nil {
		fmt.Fprintf(c.out, "%s %s [%s]\n", a.SyncFailed, r.Error.Message, r.Error.Code)
		return errReported
	}
	return nil
}

// monitorAgent: kpectl monitor --via-agent [--json] streams the agent's
// events, reconnecting when the agent restarts.
func (c *cli) monitorAgent(ctx context.Context, asJSON bool) error {
	cl, err := c.agent()
	if err != nil {
		return err
	}
	a := c.msg.Agent
	enc := json.NewEncoder(c.out)
	var lastSeq uint64
	first := true
	for ctx.Err() == nil {
		s, err := cl.OpenEventsAfter(ctx, lastSeq)
		if err != nil {
			var ae *api.APIError
			if first || errors.As(err, &ae) {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		} else {
			if first && !asJSON {
				fmt.Fprintf(c.out, a.WatchingAgent+"\n", cl.URL())
			}
			first = false
			for {
				ev, nerr := s.Next()
				if nerr != nil {
					err = nerr
					break
				}
				lastSeq = ev.Seq
				if asJSON {
					if err := enc.Encode(ev); err != nil {
						s.Close()
						return err
					}
					continue
				}
				fmt.Fprintln(c.out, c.eventLine(ev))
			}
			s.Close()
		}
		if ctx.Err() != nil {
			return nil
		}
		fmt.Fprintf(c.errOut, a.Reconnecting+"\n", err)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	return nil
}

// eventLine is one of the agent's events for a technician.
func (c *cli) eventLine(ev api.Event) string {
	a := c.msg.Agent
	t := ev.Time
	if t.IsZero() {
		t = time.Now()
	}
	kind := a.Events[ev.Type]
	if kind == "" {
		kind = ev.Type
	}
	line := fmt.Sprintf("%s  %-12s", t.Local().Format("15:04:05.000"), kind)
	if ev.Reader != "" {
		line += fmt.Sprintf(" %q", ev.Reader)
	}
	if ev.State != "" {
		st := ev.State
		if ev.Type == api.EventSession && a.States[ev.State] != "" {
			st = a.States[ev.State]
		}
		line += "  " + st
	}
	if ev.CardKind != "" {
		line += " (" + ev.CardKind + ")"
	}
	if ev.Code != "" {
		line += "  " + ev.Code
	}
	if ev.Error != nil {
		line += fmt.Sprintf("  [%s] %s", ev.Error.Code, ev.Error.Message)
	} else if ev.Message != "" {
		line += "  " + ev.Message
	}
	return oneLine(line)
}

// queueAgentStatsJSON is queue stats --json when the running agent holds
// the outbox: the fields the agent's /v1/queue gives.
type queueAgentStatsJSON struct {
	Source                string         `json:"source"` // "agent"
	Outbox                string         `json:"outbox"`
	Agent                 string         `json:"agent"`
	Pending               int            `json:"pending"`
	Sending               int            `json:"sending"`
	Acknowledged          int            `json:"acknowledged"`
	Dead                  int            `json:"dead"`
	Unsynced              int            `json:"unsynced"`
	OldestUnsyncedSeconds float64        `json:"oldest_unsynced_seconds"`
	UsedPercent           float64        `json:"used_percent"`
	AlarmPercent          int            `json:"alarm_percent"`
	Alarm                 string         `json:"alarm"`
	Sync                  api.SyncStatus `json:"sync"`
}

// queueStatsFromAgent is queue stats through the agent's API, for when the
// agent holds the outbox (locked). Without an agent answer, the lock error
// stands.
func (c *cli) queueStatsFromAgent(ctx context.Context, path string, asJSON bool, locked error) error {
	cl, err := c.agent()
	if err != nil {
		return locked
	}
	q, err := cl.Queue(ctx)
	if err != nil {
		fmt.Fprintln(c.errOut, c.explain(err))
		return locked
	}
	alarm := 0.0
	for _, l := range outbox.AlarmLevels {
		if q.Used >= l {
			alarm = l
		}
	}
	if q.Used >= 1 {
		alarm = 1
	}
	if asJSON {
		return c.printJSON(queueAgentStatsJSON{Source: "agent", Outbox: path, Agent: cl.URL(),
			Pending: q.Pending, Sending: q.Sending, Acknowledged: q.Acknowledged, Dead: q.Dead, Unsynced: q.Pending + q.Sending,
			OldestUnsyncedSeconds: q.OldestUnsynced, UsedPercent: percent(q.Used), AlarmPercent: int(alarm*100 + 0.5),
			Alarm: alarmLevel(alarm), Sync: q.Sync})
	}
	fmt.Fprintf(c.out, c.msg.Agent.FromAgent+"\n", path)
	qm := c.msg.Queue
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "  %s\t%d\n", qm.Pending, q.Pending)
	fmt.Fprintf(w, "  %s\t%d\n", qm.Sending, q.Sending)
	fmt.Fprintf(w, "  %s\t%d\n", qm.Acknowledged, q.Acknowledged)
	fmt.Fprintf(w, "  %s\t%d\n", qm.Dead, q.Dead)
	oldest := "-"
	if q.Pending+q.Sending > 0 {
		oldest = c.age(time.Duration(q.OldestUnsynced * float64(time.Second)))
	}
	fmt.Fprintf(w, "  %s\t%s\n", qm.Oldest, oldest)
	fmt.Fprintf(w, "  %s\t%.1f %%\n", qm.Use, percent(q.Used))
	fmt.Fprintf(w, "  %s\t%s\n", qm.Alarm, c.alarmText(alarm))
	if err := w.Flush(); err != nil {
		return err
	}
	w = tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	c.printSync(w, q.Sync)
	return w.Flush()
}
