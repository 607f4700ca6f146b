// Package daemon is the agent's orchestration: it follows the PC/SC
// readers, gives each reader its own goroutine and each card its own
// session (agent/cards.Session), keeps the terminal SAM, runs the
// authentication workflow (card → data → fingerprint → SAM-signed record
// → outbox), publishes every state change as an event, and answers the
// local API (agent/api) through its Backend methods.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/agent/config"
	"kpe-agent/apdu"
	"kpe-agent/biometric/sensor"
	"kpe-agent/internal/i18n"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/uploader"
)

// Transport is what the daemon needs from PC/SC (apdu/pcsc.Transport).
type Transport interface {
	Readers(ctx context.Context) ([]apdu.ReaderInfo, error)
	Connect(ctx context.Context, reader string) (apdu.Card, error)
}

// Options configure a Daemon.
type Options struct {
	// Config returns the current configuration snapshot (it may change on
	// reload; the daemon reads it at each use).
	Config    func() *config.Config
	Transport Transport
	// Watch starts the reader monitor (apdu/pcsc.Transport.Watch(ctx).Events).
	Watch    func(ctx context.Context) <-chan apdu.Event
	Outbox   *outbox.Outbox
	Uploader *uploader.Uploader // nil: syncing is off
	// Sensor returns the fingerprint sensor for a card reader; nil takes
	// it from the configuration (fingerprint.sensor).
	Sensor func(reader string) (sensor.Sensor, error)
	// Cards holds the trust lists (BKN, Dukcapil roots).
	Cards cards.Options
	// SAMCode activates an inactive SAM (nil: never activate);
	// KTPSecrets activate its KTP-el function. NIKKey is the KTP-el
	// pseudonym fallback key (ktpel.pseudonym: file): with it the agent
	// computes a KTP-el record's pseudonyms itself (and warns at start);
	// nil: the SAM computes them (PSEUDONYM), the default.
	SAMCode    []byte
	KTPSecrets [][]byte
	NIKKey     []byte
	Log        *slog.Logger
	Metrics    *Metrics
	Version    string
}

// Daemon is the running agent.
type Daemon struct {
	o       Options
	log     *slog.Logger
	m       *Metrics
	ob      *outbox.Outbox
	up      *uploader.Uploader
	events  *hub
	sam     *samHolder
	started time.Time
	pcscOK  atomic.Bool
	closing atomic.Bool
	// halt ends when shutdown starts: what the API runs outside workflows
	// ("sync now") stops with it
	halt     context.Context
	haltStop context.CancelFunc

	chain sync.Mutex // one record sealed and appended at a time (hash chain)

	mu      sync.Mutex
	readers map[string]*reader
	flows   sync.WaitGroup // workflows in flight
}

// New makes a Daemon; Run starts it.
func New(o Options) (*Daemon, error) {
	if o.Config == nil || o.Transport == nil || o.Watch == nil || o.Outbox == nil {
		return nil, errors.New("daemon: Config, Transport, Watch and Outbox are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	d := &Daemon{o: o, log: o.Log, m: o.Metrics, ob: o.Outbox, up: o.Uploader, events: newHub(),
		readers: map[string]*reader{}, started: time.Now()}
	d.sam = newSAMHolder(d)
	d.halt, d.haltStop = context.WithCancel(context.Background())
	var status func() uploader.Status
	if d.up != nil {
		status = d.up.Status
	}
	d.m.registerOutbox(d.queueNumbers, status)
	return d, nil
}

// Metrics returns the daemon's metrics.
func (d *Daemon) Metrics() *Metrics { return d.m }

func (d *Daemon) cfg() *config.Config { return d.o.Config() }

// Run follows the readers until ctx ends, then shuts down: new workflows
// are refused, the one in flight gets the configured grace to finish and
// is then cancelled, every card session is closed, and the outbox gets one
// last bounded attempt to sync. Records are durable as soon as they are
// committed, so nothing depends on that attempt. While it runs, it prunes
// the outbox's acknowledged records past the retention at start and every
// hour (the uploader also prunes after each acknowledged batch).
func (d *Daemon) Run(ctx context.Context) error {
	wctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	events := d.o.Watch(wctx)
	d.pcscOK.Store(true)
	var upDone chan struct{}
	upCtx, stopUp := context.WithCancel(context.Background())
	defer stopUp()
	if d.up != nil {
		upDone = make(chan struct{})
		go func() {
			defer close(upDone)
			_ = d.up.Run(upCtx)
		}()
	}
	pruneDone := make(chan struct{})
	go func() {
		defer close(pruneDone)
		d.pruneLoop(upCtx)
	}()
	d.log.Info("agent running", "terminal", d.cfg().Terminal.ID, "version", d.o.Version)
	if d.o.NIKKey != nil {
		d.log.Warn(PseudonymFileWarning, "key_file", d.cfg().SAM.NIKKeyFile)
	} else if f := d.cfg().SAM.NIKKeyFile; f != "" {
		d.log.Warn("sam.nik_key_file is set but not used: the SAM computes the KTP-el pseudonyms (ktpel.pseudonym: sam); delete the key file, or set ktpel.pseudonym: file to use it", "key_file", f)
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case ev, ok := <-events:
			if !ok {
				break loop
			}
			d.dispatch(ev)
		}
	}
	d.shutdown(stopWatch)
	stopUp()
	<-pruneDone
	if d.up != nil {
		<-upDone
		fctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if rep, err := d.up.Drain(fctx); err != nil {
			d.log.Info("last sync before stopping did not finish; records stay queued", "err", err)
		} else if rep.Batches > 0 {
			d.log.Info("last sync before stopping", "accepted", rep.Accepted)
		}
		cancel()
	}
	d.log.Info("agent stopped")
	return nil
}

// pruneEvery is how often the agent prunes the outbox besides after each
// acknowledged batch (the uploader's): an agent whose back office is off
// or unreachable still lets old acknowledged records go.
var pruneEvery = time.Hour

// pruneLoop prunes the outbox's acknowledged records and the e-wallet
// request book's settled outcomes past the retention (outbox.retention)
// at start and then every pruneEvery, until ctx ends.
func (d *Daemon) pruneLoop(ctx context.Context) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		switch n, err := d.ob.Prune(); {
		case err != nil:
			d.log.Error("pruning the outbox failed; acknowledged records stay until the next attempt", "err", err)
		case n > 0:
			d.log.Info("pruned acknowledged records past the retention", "records", n)
		}
		switch n, err := d.ob.PrunePurseBook(); {
		case err != nil:
			d.log.Error("pruning the e-wallet request book failed; its outcomes stay until the next attempt", "err", err)
		case n > 0:
			d.log.Info("pruned settled e-wallet request outcomes past the retention", "requests", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// shutdown refuses new workflows, cancels those still waiting for a card,
// lets the others finish within the grace, cancels them after it, and
// closes every session.
func (d *Daemon) shutdown(stopWatch func()) {
	d.mu.Lock()
	d.closing.Store(true)
	// a workflow still waiting for a card (a kiosk's attract screen) has
	// nothing to finish: it ends now, not after the grace
	for _, r := range d.readers {
		r.mu.Lock()
		waiting := r.waiting > 0
		r.mu.Unlock()
		if waiting {
			r.cancelFlow()
		}
	}
	d.mu.Unlock()
	d.haltStop()
	grace := d.cfg().Session.ShutdownGrace
	done := make(chan struct{})
	go func() { d.flows.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		d.log.Warn("a card workflow did not finish within the shutdown grace; cancelling it", "grace", grace)
		d.cancelAll()
		// a cancelled workflow ends at its next step; one past its point of
		// no return finishes its signature and commit (session.sign_timeout)
		select {
		case <-done:
		case <-time.After(d.cfg().Session.SignTimeout + 2*time.Second):
			d.log.Error("a card workflow did not end after it was cancelled; stopping anyway")
		}
	}
	stopWatch()
	d.mu.Lock()
	rs := make([]*reader, 0, len(d.readers))
	for _, r := range d.readers {
		rs = append(rs, r)
	}
	d.readers = map[string]*reader{}
	d.mu.Unlock()
	for _, r := range rs {
		r.stop()
	}
	d.sam.drop("")
}

// samReady tells every reader that the SAM is ready.
func (d *Daemon) samReady() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.readers {
		r.samReady()
	}
}

func (d *Daemon) cancelAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.readers {
		r.cancelFlow()
	}
}

// dispatch routes a monitor event to its reader's goroutine.
func (d *Daemon) dispatch(ev apdu.Event) {
	switch ev.Kind {
	case apdu.ServiceLost:
		d.pcscOK.Store(false)
		d.log.Warn("smart-card service lost; waiting for it to come back", "err", ev.Err)
		d.publish(api.Event{Type: api.EventService, State: "lost", Error: d.apiError(fail(CodePCSCUnavailable, ev.Err), api.Locale{})})
		d.dropAllReaders()
		return
	case apdu.ServiceRestored:
		d.pcscOK.Store(true)
		d.log.Info("smart-card service back")
		d.publish(api.Event{Type: api.EventService, State: "restored"})
		return
	case apdu.ReaderRemoved:
		d.mu.Lock()
		r := d.readers[ev.Reader]
		delete(d.readers, ev.Reader)
		n := len(d.readers)
		d.mu.Unlock()
		d.m.readers.Set(float64(n))
		if r != nil {
			r.stop()
			d.publish(api.Event{Type: api.EventReader, Reader: ev.Reader, State: "removed"})
		}
		return
	}
	r := d.readerFor(ev.Reader)
	if r == nil {
		return // ignored by configuration
	}
	switch ev.Kind {
	case apdu.CardRemoved:
		// a read in progress ends now rather than at its next command,
		// and a workflow waiting for the finger ends too
		r.cancelStep(apdu.ErrCardRemoved)
		r.abortCard(apdu.ErrCardRemoved)
	case apdu.ReaderBusy:
		r.setError(fail(CodeReaderInUse, apdu.ErrSharingViolation))
	}
	r.send(ev)
}

func (d *Daemon) dropAllReaders() {
	d.mu.Lock()
	rs := d.readers
	d.readers = map[string]*reader{}
	d.mu.Unlock()
	d.m.readers.Set(0)
	for name, r := range rs {
		r.stop()
		d.publish(api.Event{Type: api.EventReader, Reader: name, State: "removed"})
	}
}

// readerFor returns the reader's worker, starting it on first sight; nil
// for an ignored reader.
func (d *Daemon) readerFor(name string) *reader {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.readers[name]; ok {
		return r
	}
	role := d.roleOf(name)
	if role == roleIgnored {
		return nil
	}
	r := newReader(d, name, role)
	d.readers[name] = r
	d.m.readers.Set(float64(len(d.readers)))
	go r.loop()
	d.publish(api.Event{Type: api.EventReader, Reader: name, State: "added"})
	return r
}

// Reader roles.
const (
	roleCard    = "card"
	roleSAM     = "sam"
	roleProbe   = "probe" // not configured: a SAM if its card is one
	roleIgnored = "ignored"
)

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

func (d *Daemon) roleOf(name string) string {
	c := d.cfg().Readers
	switch {
	case matchAny(c.Ignore, name):
		return roleIgnored
	case matchAny(c.SAM, name):
		return roleSAM
	case matchAny(c.Card, name):
		return roleCard
	case len(c.Card) > 0 && len(c.SAM) > 0:
		return roleIgnored // both lists given and neither names it
	case len(c.SAM) > 0:
		return roleCard
	}
	return roleProbe
}

// publish sends ev to the event stream, worded for the clerk in the
// terminal's language; each subscriber gets it reworded (Localize).
func (d *Daemon) publish(ev api.Event) {
	d.events.publish(d.Localize(ev, api.Locale{}))
}

func (d *Daemon) texts() Texts {
	m := d.cfg().Messages
	return Texts{ID: m.ID, EN: m.EN}
}

// locale is loc with the terminal's language when it names none, and the
// clerk when it names no audience (the defaults of events and logs).
func (d *Daemon) locale(loc api.Locale) api.Locale {
	if loc.Lang == "" {
		loc.Lang = d.Language()
	}
	loc.Lang = loc.Lang.OrDefault()
	if loc.Audience == "" {
		loc.Audience = i18n.Clerk
	}
	return loc
}

// Language is the terminal's configured language (terminal.language),
// the last step of the language rule (API).
func (d *Daemon) Language() i18n.Lang { return i18n.Lang(d.cfg().Terminal.Language).OrDefault() }

// apiError renders err for the API and events.
func (d *Daemon) apiError(err error, loc api.Locale) *api.Error {
	_, e := d.texts().APIError(err, d.locale(loc))
	return &e
}

// Localize words an event for one subscriber of the event stream: its
// error and its prompt (message_code) in the subscriber's language and
// for its audience (API).
func (d *Daemon) Localize(ev api.Event, loc api.Locale) api.Event {
	loc = d.locale(loc)
	t := d.texts()
	if ev.Error != nil {
		e := *ev.Error
		e.Message = t.Message(e.Code, loc)
		ev.Error = &e
		ev.Message = e.Message
	} else if ev.MessageCode != "" {
		ev.Message = t.Message(ev.MessageCode, loc)
	}
	return ev
}

// countFailure feeds the session and APDU metrics.
func (d *Daemon) countFailure(err error) string {
	f := classify(err)
	d.m.sessions.WithLabelValues(f.Code).Inc()
	if l := swLabel(err); l != "" {
		d.m.apduErrors.WithLabelValues(l).Inc()
	}
	return f.Code
}

// Readers lists the readers (API).
func (d *Daemon) Readers(loc api.Locale) []api.Reader {
	d.mu.Lock()
	rs := make([]*reader, 0, len(d.readers))
	for _, r := range d.readers {
		rs = append(rs, r)
	}
	d.mu.Unlock()
	sort.Slice(rs, func(i, j int) bool { return rs[i].name < rs[j].name })
	out := make([]api.Reader, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.snapshot(loc))
	}
	return out
}

// Health is the agent's state in one look (API).
func (d *Daemon) Health(loc api.Locale) api.Health {
	c := d.cfg()
	h := api.Health{Status: "ok", Version: d.o.Version, Started: d.started, Terminal: c.Terminal.ID, PCSC: "ok"}
	d.mu.Lock()
	h.Readers = len(d.readers)
	cardReaders, _ := d.cardReadersLocked()
	d.mu.Unlock()
	problem := func(code string, err error) {
		h.Problems = append(h.Problems, *d.apiError(fail(code, err), loc))
	}
	if !d.pcscOK.Load() {
		h.PCSC = "unavailable"
		problem(CodePCSCUnavailable, nil)
	} else if h.Readers == 0 {
		problem(CodeNoReader, nil)
	} else if len(cardReaders) == 0 {
		problem(CodeNoReader, errors.New("the only reader holds the SAM: no reader for the cards"))
	}
	s := d.sam.status()
	h.SAM = &s
	switch {
	case !s.Present:
		problem(CodeNoSAM, nil)
	case d.sam.problemCode() != "":
		problem(d.sam.problemCode(), nil)
	}
	// no sensor configured: no authentication can end well (the kiosk's
	// out-of-service screen learns it here, not from each failed session)
	if _, err := d.sensorFor(""); err != nil {
		problem(CodeNoSensor, err)
	}
	q := d.queueNumbers()
	if q.err == nil && q.used >= 1 {
		problem(CodeOutboxFull, nil)
	}
	h.BackOffice = &api.BackOffice{State: api.BackOfficeDisabled, Queued: q.unsynced}
	if d.up != nil {
		h.BackOffice.State = api.BackOfficeOnline
		if d.up.Status().Failures > 0 {
			h.BackOffice.State = api.BackOfficeOffline
		}
	}
	if d.closing.Load() {
		problem(CodeShuttingDown, nil)
	}
	if len(h.Problems) > 0 {
		h.Status = "degraded"
	}
	return h
}

type queueNumbers struct {
	unsynced, dead int
	oldest         time.Duration
	used           float64
	stats          outbox.Stats
	err            error
}

func (d *Daemon) queueNumbers() queueNumbers {
	st, err := d.ob.Stats()
	return queueNumbers{unsynced: st.Unsynced, dead: st.Dead, oldest: st.OldestUnsynced, used: st.Used(), stats: st, err: err}
}

// Queue is the outbox and sync status (API).
func (d *Daemon) Queue() (api.QueueStatus, error) {
	q := d.queueNumbers()
	if q.err != nil {
		return api.QueueStatus{}, q.err
	}
	st := q.stats
	out := api.QueueStatus{Pending: st.Pending, Sending: st.Sending, Acknowledged: st.Acknowledged, Dead: st.Dead,
		OldestUnsynced: st.OldestUnsynced.Seconds(), Used: st.Used()}
	out.Sync.URL = d.cfg().Sync.URL
	if d.up != nil {
		s := d.up.Status()
		out.Sync = api.SyncStatus{Enabled: true, URL: d.cfg().Sync.URL, LastAttempt: s.LastAttempt, LastSuccess: s.LastSuccess,
			LastError: s.LastError, Failures: s.Failures, NextAttempt: s.NextAttempt, ClockSkewed: s.ClockSkewed,
			Accepted: s.Accepted, Duplicates: s.Duplicates, Rejected: s.Rejected}
	}
	return out, nil
}

// Sync sends the outbox now (API).
func (d *Daemon) Sync(ctx context.Context, loc api.Locale) (api.SyncResult, error) {
	if d.up == nil {
		return api.SyncResult{}, fail(CodeSyncDisabled, nil)
	}
	if d.closing.Load() {
		return api.SyncResult{}, fail(CodeShuttingDown, nil)
	}
	// shutdown's last attempt must not wait behind this one
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(d.halt, cancel)()
	rep, err := d.up.Drain(ctx)
	res := api.SyncResult{Sent: rep.Accepted + rep.Duplicates + rep.Rejected, Accepted: rep.Accepted, Duplicates: rep.Duplicates, Rejected: rep.Rejected}
	if q := d.queueNumbers(); q.err == nil {
		res.Remaining = q.unsynced
	}
	ev := api.Event{Type: api.EventSync, State: "ok"}
	if err != nil {
		code := CodeSyncFailed
		if d.halt.Err() != nil {
			code = CodeShuttingDown // cut short by the shutdown; its last attempt follows
		}
		res.Error = d.apiError(fail(code, err), loc)
		ev.State, ev.Error = "failed", d.apiError(fail(code, err), api.Locale{})
	}
	d.publish(ev)
	return res, nil
}

// Subscribe streams events (API): those after seq still held, then new
// ones until cancel.
func (d *Daemon) Subscribe(after uint64) ([]api.Event, <-chan api.Event, func()) {
	return d.events.subscribe(after)
}

// Cancel cancels the workflow on reader, or on every reader when it is
// "" (API). It reports whether one was running. A page credential (the
// kiosk's, the counter screen's: api.Caller) cancels only what it
// started.
func (d *Daemon) Cancel(ctx context.Context, name string) bool {
	caller := api.Caller(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	any := false
	for n, r := range d.readers {
		if (name == "" || n == name) && r.mayControl(caller) {
			any = r.cancelFlow() || any
		}
	}
	return any
}

// ErrorFor renders an error of the daemon for the API: status and body.
func (d *Daemon) ErrorFor(err error, loc api.Locale) (int, api.Error) {
	return d.texts().APIError(err, d.locale(loc))
}

func (d *Daemon) sensorFor(reader string) (sensor.Sensor, error) {
	if d.o.Sensor != nil {
		return d.o.Sensor(reader)
	}
	f := d.cfg().Fingerprint
	switch f.Sensor {
	case "lab":
		return sensor.Lab{Control: f.LabURL, Slot: labSlot(reader)}, nil
	case "command":
		return sensor.External{Command: f.Command}, nil
	}
	return nil, fail(CodeNoSensor, errors.New("fingerprint.sensor is none"))
}

// labSlot is the vpcd slot of a lab reader ("Virtual PCD 00 01" → 1).
func labSlot(reader string) int {
	if n := len(reader); n > 0 && reader[n-1] >= '0' && reader[n-1] <= '9' {
		return int(reader[n-1] - '0')
	}
	return 0
}

func (d *Daemon) String() string { return fmt.Sprintf("daemon(%s)", d.cfg().Terminal.ID) }

var _ api.Backend = (*Daemon)(nil)
