package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/apdu"
)

// reader is one PC/SC reader. Its goroutine (loop) handles the reader's
// events in order: it connects to an inserted card and starts the card's
// session (the goroutine that owns the card), identifies and authenticates
// a card nobody is waiting for, hands a SAM to the SAM holder, and ends
// the session when the card goes. Workflows from the API run their card
// steps through the session.
type reader struct {
	d    *Daemon
	name string
	evs  chan apdu.Event
	// retry asks the goroutine to read the present card again (its read
	// failed for want of a SAM, and the SAM is ready now)
	retry chan struct{}
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once

	mu       sync.Mutex
	role     string
	sess     *cards.Session
	present  bool
	detected time.Time // when the present card was seen
	kind     cards.Kind
	state    string
	err      *Failure
	result   *cards.Result // the last identify read (KPE only; KTP-el data is never kept)
	self     *selfService  // the last kiosk authentication's view of the card (selfservice.go)
	// renewal is the card data renewal of the card session renewalSess,
	// after its holder's fingerprint matched (renewal.go)
	renewal     *renewalRun
	renewalSess *cards.Session
	// purse is the e-wallet view and top-up of the card session
	// purseSess, after its holder's fingerprint matched (kioskpurse.go)
	purse     *purseRun
	purseSess *cards.Session
	ready     chan struct{} // closed when the inserted card's session is up (or failed)
	stepStop  context.CancelCauseFunc
	busy      bool
	flowStop  context.CancelCauseFunc
	// flowOwner is the page credential that started the running workflow
	// (api.Caller), "" for the token.
	flowOwner string
	// cardStop ends the workflow's use of the card it holds when that
	// card is pulled; a workflow still waiting for a card holds none
	cardStop context.CancelCauseFunc
	waiting  int // workflows waiting for a card
	// prompt is the question the workflow waits on (state prompt)
	prompt *waitingPrompt
}

func newReader(d *Daemon, name, role string) *reader {
	return &reader{d: d, name: name, role: role, evs: make(chan apdu.Event, 64), retry: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		state: api.StateIdle, ready: make(chan struct{})}
}

func (r *reader) send(ev apdu.Event) {
	select {
	case r.evs <- ev:
	case <-r.quit:
	}
}

// stop ends the reader's goroutine and its card session.
func (r *reader) stop() {
	r.once.Do(func() { close(r.quit) })
	r.cancelStep(errReaderStopped)
	r.cancelFlow()
	<-r.done
}

func (r *reader) loop() {
	defer close(r.done)
	defer r.endCard(false)
	for {
		select {
		case <-r.quit:
			return
		case ev := <-r.evs:
			switch ev.Kind {
			case apdu.CardInserted:
				r.inserted(ev)
			case apdu.CardRemoved:
				r.endCard(true)
			}
		case <-r.retry:
			r.mu.Lock()
			s := r.sess
			again := s != nil && r.present && r.waiting == 0 && !r.busy && r.err != nil && r.err.Code == CodeNoSAM
			r.mu.Unlock()
			if again {
				r.identify(s)
			}
		}
	}
}

// samReady asks the reader to read its card again when that read failed
// for want of a SAM: at start, a card already in its reader may be read
// before the SAM in the other reader is taken.
func (r *reader) samReady() {
	select {
	case r.retry <- struct{}{}:
	default: // one pending is enough
	}
}

func (r *reader) setState(state string, kind cards.Kind, err error) {
	r.transition(state, kind, err, nil, nil)
}

// transition sets the reader's state (its card kind too when kind is
// given, and its error) and publishes the session event. hold, when not
// nil, runs under the same lock (a prompt put up with its state); more
// adds to the event (a prompt, the tries left).
func (r *reader) transition(state string, kind cards.Kind, err error, hold func(), more func(*api.Event)) {
	r.mu.Lock()
	r.state = state
	if kind != "" {
		r.kind = kind
	}
	r.err = nil
	if err != nil {
		r.err = classify(err)
	}
	if hold != nil {
		hold()
	}
	k := r.kind
	r.mu.Unlock()
	ev := api.Event{Type: api.EventSession, Reader: r.name, State: state, CardKind: string(k)}
	if err != nil {
		ev.Error = r.d.apiError(err, api.Locale{})
	} else if state == api.StateFingerprint {
		ev.MessageCode = PromptPlaceFinger
	}
	if more != nil {
		more(&ev)
	}
	r.d.publish(ev)
}

func (r *reader) setError(f *Failure) {
	r.mu.Lock()
	r.err = f
	r.mu.Unlock()
}

// inserted connects to the new card and starts its session.
func (r *reader) inserted(ev apdu.Event) {
	r.endCard(false) // a missed removal
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.mu.Lock()
	r.present, r.detected, r.kind, r.result = true, ev.Time, "", nil
	if r.detected.IsZero() {
		r.detected = time.Now()
	}
	role := r.role
	r.mu.Unlock()
	r.setState(api.StateDetected, "", nil)
	if role == roleSAM || role == roleProbe {
		if ok := r.d.sam.tryTake(ctx, r); ok {
			return
		}
		if role == roleSAM {
			r.setState(api.StateFailed, "", fail(CodeNoSAM, errors.New("the card in the SAM reader is not a SAM")))
			r.markReady()
			return
		}
	}
	card, err := r.d.o.Transport.Connect(ctx, r.name)
	if err != nil {
		r.d.log.Warn("cannot connect to the card", "reader", r.name, "err", err)
		r.setState(api.StateFailed, "", err)
		r.markReady()
		return
	}
	s := cards.Start(card)
	r.mu.Lock()
	r.sess = s
	waiting := r.waiting > 0
	r.mu.Unlock()
	r.markReady()
	if !waiting {
		r.identify(s)
	}
}

func (r *reader) markReady() {
	r.mu.Lock()
	select {
	case <-r.ready:
	default:
		close(r.ready)
	}
	r.mu.Unlock()
}

// identify reads a card that was inserted with no workflow waiting: the
// clerk's application can then show the card's data and prefill forms.
func (r *reader) identify(s *cards.Session) {
	ctx, stop := context.WithCancelCause(context.Background())
	ctx, cancel := context.WithTimeout(ctx, r.d.cfg().Session.ReadTimeout)
	r.mu.Lock()
	r.stepStop = stop
	r.mu.Unlock()
	defer func() {
		cancel()
		stop(nil)
		r.mu.Lock()
		r.stepStop = nil
		r.mu.Unlock()
	}()
	res, err := r.d.readCard(ctx, r, s)
	if err != nil {
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, apdu.ErrCardRemoved):
			// the removal's own event follows; the reader goes idle
			r.d.countFailure(fail(CodeCardRemoved, err))
			return
		case errors.Is(cause, errReaderStopped):
			return
		}
		r.d.countFailure(err)
		r.setState(api.StateFailed, "", err)
		return
	}
	if res.KTPel != nil {
		res.KTPel.Wipe() // population data stays in the transaction
		res.KTPel = nil
	}
	r.mu.Lock()
	r.result = res
	r.mu.Unlock()
	r.setState(api.StateAuthenticated, "", nil)
}

// endCard closes the card's session; removed says the card was taken out.
func (r *reader) endCard(removed bool) {
	if removed {
		r.cancelStep(apdu.ErrCardRemoved)
	} else {
		r.cancelStep(errReaderStopped)
	}
	r.mu.Lock()
	s := r.sess
	wasPresent := r.present
	r.sess, r.present, r.result = nil, false, nil
	r.ready = make(chan struct{})
	r.mu.Unlock()
	r.wipeSelfService()
	r.wipeRenewal()
	r.wipePurse()
	if s != nil {
		s.Close()
	}
	r.d.sam.drop(r.name)
	if removed && wasPresent {
		r.setState(api.StateRemoved, "", nil)
		r.mu.Lock()
		r.state, r.kind = api.StateIdle, ""
		r.mu.Unlock()
	}
}

// fire calls the cancel function in *stop (a field guarded by r.mu), if
// any, with cause, and reports whether there was one.
func (r *reader) fire(stop *context.CancelCauseFunc, cause error) bool {
	r.mu.Lock()
	f := *stop
	r.mu.Unlock()
	if f == nil {
		return false
	}
	f(cause)
	return true
}

// cancelStep ends the automatic read in progress, if any, with cause.
func (r *reader) cancelStep(cause error) { r.fire(&r.stepStop, cause) }

// errReaderStopped ends what a reader does when the agent stops or the
// reader goes away.
var errReaderStopped = errors.New("the reader's goroutine stopped")

// cancelFlow cancels the API workflow (the operator's cancel, shutdown).
func (r *reader) cancelFlow() bool { return r.fire(&r.flowStop, context.Canceled) }

// begin marks the reader busy for an API workflow: reader-busy when one
// runs already.
func (r *reader) begin(cancel context.CancelCauseFunc, owner string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.quit: // the reader went away (or the agent stops) since it was picked
		return fail(CodeNoReader, errReaderStopped)
	default:
	}
	if r.busy {
		return fail(CodeReaderBusy, nil)
	}
	r.busy, r.flowStop, r.flowOwner = true, cancel, owner
	return nil
}

func (r *reader) end() {
	r.mu.Lock()
	r.busy, r.flowStop, r.flowOwner = false, nil, ""
	r.mu.Unlock()
}

// mayControl says caller (api.Caller: "" for the token) may cancel the
// reader's workflow or answer its prompt: the token may, a page
// credential only when it started the workflow. Another kiosk page, or
// any local process that loaded one, cannot cancel the kiosk's session
// or spend a card's last fingerprint try.
func (r *reader) mayControl(caller string) bool {
	if caller == "" {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.busy && r.flowOwner == caller
}

// holdCard registers stop as what ends the workflow's use of s when its
// card is pulled. It is false when s is no longer the reader's session:
// the card went between the handing out of s and now.
func (r *reader) holdCard(s *cards.Session, stop context.CancelCauseFunc) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sess != s {
		return false
	}
	r.cardStop = stop
	return true
}

func (r *reader) releaseCard() {
	r.mu.Lock()
	r.cardStop = nil
	r.mu.Unlock()
}

// abortCard ends the workflow's use of the card with cause (the card was
// pulled). A workflow waiting for a card is not touched: the next card
// is the one it waits for.
func (r *reader) abortCard(cause error) { r.fire(&r.cardStop, cause) }

// staleGrace is how long session waits for the removal of a card found
// gone (skip) before it takes that card as still there (errStillThere).
const staleGrace = 2 * time.Second

// errStillThere: the card found gone was not reported removed within
// staleGrace.
var errStillThere = errors.New("the card found gone is still reported in the reader")

// session waits up to wait for a card and returns its session and when it
// was detected; waited says the card arrived during the wait. skip, when
// not nil, is a session whose card was found gone: it is not handed out
// again, session waits for the next card instead (errStillThere when no
// removal is reported within staleGrace).
func (r *reader) session(ctx context.Context, wait time.Duration, skip *cards.Session) (s *cards.Session, detected time.Time, waited bool, err error) {
	r.mu.Lock()
	r.waiting++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.waiting--
		r.mu.Unlock()
	}()
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	began := time.Now()
	for {
		r.mu.Lock()
		present, ready, sess, role := r.present, r.ready, r.sess, r.role
		r.mu.Unlock()
		if role == roleSAM || r.d.sam.readerName() == r.name {
			return nil, time.Time{}, false, fail(CodeBadRequest, errors.New("that reader holds the SAM"))
		}
		if present && (skip == nil || sess != skip) {
			select {
			case <-ready:
				r.mu.Lock()
				sess, detected, rerr := r.sess, r.detected, r.err
				r.mu.Unlock()
				if skip != nil && sess == skip {
					continue // the gone card's removal is on its way
				}
				if sess == nil {
					if rerr != nil {
						return nil, time.Time{}, false, rerr
					}
					return nil, time.Time{}, false, fail(CodeCardError, errors.New("no session with the card"))
				}
				return sess, detected, waited, nil
			case <-ctx.Done():
				return nil, time.Time{}, false, ctx.Err()
			}
		}
		if timer == nil {
			return nil, time.Time{}, false, fail(CodeNoCard, nil)
		}
		waited = true
		// wait for an insertion: the ready channel is replaced on removal
		// and closed once the new card's session is up (the gone card's
		// channel is closed already: not waited on)
		if skip != nil && sess == skip {
			if time.Since(began) > staleGrace {
				return nil, time.Time{}, false, errStillThere
			}
			ready = nil
		}
		select {
		case <-ready:
		case <-timer:
			return nil, time.Time{}, false, fail(CodeNoCard, errors.New("no card within the wait"))
		case <-ctx.Done():
			return nil, time.Time{}, false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
			// present may have changed without ready closing yet
		}
	}
}

// snapshot is the reader for the API.
func (r *reader) snapshot(loc api.Locale) api.Reader {
	r.mu.Lock()
	defer r.mu.Unlock()
	role := r.role
	if role == roleProbe {
		role = roleCard
		if r.d.sam.readerName() == r.name {
			role = roleSAM
		}
	}
	out := api.Reader{Name: r.name, Role: role, CardPresent: r.present, Kind: string(r.kind), State: r.state, Busy: r.busy}
	if r.err != nil {
		out.Error = r.d.apiError(r.err, loc)
	}
	if r.prompt != nil && r.state == api.StatePrompt {
		p := r.prompt.Prompt
		out.Prompt = &p
	}
	return out
}
