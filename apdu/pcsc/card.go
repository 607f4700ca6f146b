package pcsc

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ebfe/scard"

	"kpe-agent/apdu"
)

// card is a connected card. It is safe for concurrent use, but operations are
// serialised: the agent gives each reader one owning goroutine anyway.
//
// Every blocking PC/SC call runs on the card's worker goroutine, started by
// Connect. The caller waits for the result or its deadline, whichever comes
// first. A worker stuck in a call that its caller abandoned does not take
// new work, so later callers time out by their own deadlines instead of
// queueing forever. (A persistent worker rather than a goroutine per call:
// spawning one per APDU let another OS thread steal it and added ~20 us to
// every round trip; see BenchmarkRoundTrip.)
type card struct {
	t      *Transport
	ctx    *scard.Context
	sc     *scard.Card
	reader string

	ops  chan *op
	quit chan struct{}
	gone chan struct{} // closed when the worker has disconnected and exited
	// endPending: EndTransaction was called while the worker was stuck;
	// the worker ends the transaction before taking its next call.
	endPending atomic.Bool

	mu     sync.Mutex
	atr    []byte
	closed bool
}

// op is one call handed to the worker. state settles, exactly once, who
// owns the result: the waiting caller, or (after the caller gave up) the
// worker, which then runs cleanup.
type op struct {
	f       func() error
	cleanup func(error)
	err     error
	done    chan struct{}
	state   atomic.Int32 // opPending, opDelivered, opAbandoned
}

const (
	opPending int32 = iota
	opDelivered
	opAbandoned
)

func newCard(t *Transport, ctx *scard.Context, sc *scard.Card, reader string) *card {
	c := &card{t: t, ctx: ctx, sc: sc, reader: reader,
		ops: make(chan *op), quit: make(chan struct{}), gone: make(chan struct{})}
	go c.work()
	return c
}

// work runs calls until Close, then releases the handle and the context.
func (c *card) work() {
	defer close(c.gone)
	for {
		select {
		case o := <-c.ops:
			o.err = o.f()
			if o.state.CompareAndSwap(opPending, opDelivered) {
				close(o.done)
			} else if o.cleanup != nil {
				o.cleanup(o.err)
			}
			if c.endPending.Swap(false) {
				_ = c.sc.EndTransaction(scard.LeaveCard)
			}
		case <-c.quit:
			_ = disconnect(c.sc)
			_ = release(c.ctx)
			return
		}
	}
}

func (c *card) Reader() string { return c.reader }

func (c *card) ATR() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.atr...)
}

// call runs f (a blocking PC/SC call on this card) on the worker under ctx.
// If ctx ends first, the caller gets a timeout at once; f keeps running, and
// when it returns, cleanup runs with its error (used to give back a
// transaction granted too late).
func (c *card) call(ctx context.Context, op string, f func() error, cleanup func(error)) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.t.opts.CommandTimeout)
		defer cancel()
	}
	o := newOp(f, cleanup)
	select {
	case c.ops <- o:
	case <-c.quit:
		return newErr(op, c.reader, apdu.ErrTransport, "card connection is closed")
	case <-ctx.Done():
		return newErr(op, c.reader, ctxKind(ctx), "card is still busy with an earlier command that timed out")
	}
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		if !o.state.CompareAndSwap(opPending, opAbandoned) {
			<-o.done // finished in the meantime: the result is ours
			return o.err
		}
		c.t.opts.Logger.Warn("pcsc: card did not answer before the deadline", "reader", c.reader, "op", op)
		return newErr(op, c.reader, ctxKind(ctx), "the card did not answer in time")
	}
}

func newOp(f func() error, cleanup func(error)) *op {
	return &op{f: f, cleanup: cleanup, done: make(chan struct{})}
}

func (c *card) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	var rsp []byte
	err := c.call(ctx, "transmit", func() error {
		var err error
		rsp, err = c.sc.Transmit(cmd)
		return err
	}, nil)
	var perr *Error
	if errors.As(err, &perr) {
		return nil, err // our own error: timeout, closed
	}
	if err != nil {
		if errors.Is(err, scard.ErrResetCard) {
			return nil, c.afterReset(ctx, "transmit")
		}
		if !errors.Is(err, scard.ErrNotTransacted) && !errors.Is(err, scard.ErrCommError) {
			return nil, refine(wrap("transmit", c.reader, err))
		}
	}
	if err == nil && len(rsp) >= 2 {
		return rsp, nil
	}
	// The exchange failed without a verdict (pcsc-lite reports a card pulled
	// out mid-command as an empty answer or NOT_TRANSACTED, while the reader
	// still says "present" until its next poll). Ask the reader, briefly.
	if c.removed(ctx) {
		return nil, newErr("transmit", c.reader, apdu.ErrCardRemoved, "card left the reader during the command")
	}
	if err != nil {
		return nil, refine(wrap("transmit", c.reader, err))
	}
	return nil, newErr("transmit", c.reader, apdu.ErrMalformedResponse,
		"response shorter than a status word")
}

// removed waits up to RemovalGrace (and never past ctx) for the reader to
// report whether the card is still the one we connected to.
func (c *card) removed(ctx context.Context) bool {
	grace := c.t.opts.RemovalGrace
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < grace {
			grace = left
		}
	}
	st := []scard.ReaderState{{Reader: c.reader, CurrentState: scard.StateUnaware}}
	if err := c.ctx.GetStatusChange(st, 0); err != nil {
		return errors.Is(err, scard.ErrUnknownReader) || errors.Is(err, scard.ErrReaderUnavailable)
	}
	if st[0].EventState&scard.StatePresent == 0 {
		return true
	}
	if grace <= 0 {
		return false
	}
	st[0].CurrentState = st[0].EventState &^ scard.StateChanged
	if err := c.ctx.GetStatusChange(st, grace); err != nil {
		return !errors.Is(err, scard.ErrTimeout)
	}
	// Any change (empty, or present again with a new event count) means the
	// card we talked to is gone.
	return true
}

// afterReset reconnects after someone reset the card, and tells the caller
// that its secure session is gone.
func (c *card) afterReset(ctx context.Context, op string) error {
	if err := c.reconnect(ctx, scard.LeaveCard); err != nil {
		return err
	}
	return newErr(op, c.reader, apdu.ErrCardReset, "reconnected; redo card authentication")
}

func (c *card) BeginTransaction(ctx context.Context) error {
	err := c.call(ctx, "begin-transaction", c.sc.BeginTransaction, func(err error) {
		if err == nil { // granted after the caller gave up: give it back
			_ = c.sc.EndTransaction(scard.LeaveCard)
		}
	})
	var perr *Error
	if errors.As(err, &perr) {
		return err
	}
	if errors.Is(err, scard.ErrResetCard) {
		return c.afterReset(ctx, "begin-transaction")
	}
	return refine(wrap("begin-transaction", c.reader, err))
}

// EndTransaction never blocks for long. If the worker is stuck in a call
// whose caller gave up, the transaction is ended by the worker as soon as
// that call returns and before it takes any other call, so a following
// BeginTransaction can never be overtaken by this End.
func (c *card) EndTransaction() error {
	o := newOp(func() error { return c.sc.EndTransaction(scard.LeaveCard) }, nil)
	wait := time.NewTimer(endHandoff)
	defer wait.Stop()
	select {
	case c.ops <- o:
		<-o.done
		return wrap("end-transaction", c.reader, o.err)
	case <-c.quit:
		return nil // Close disconnects, which ends the transaction
	case <-wait.C:
		c.endPending.Store(true)
		return nil
	}
}

// endHandoff is how long EndTransaction waits for an idle worker; an idle
// worker takes an op within microseconds.
const endHandoff = 50 * time.Millisecond

func (c *card) Reconnect(ctx context.Context, reset bool) error {
	d := scard.LeaveCard
	if reset {
		d = scard.ResetCard
	}
	return c.reconnect(ctx, d)
}

func (c *card) reconnect(ctx context.Context, d scard.Disposition) error {
	err := c.call(ctx, "reconnect", func() error {
		return c.sc.Reconnect(scard.ShareShared, scard.ProtocolAny, d)
	}, nil)
	var perr *Error
	if errors.As(err, &perr) {
		return err
	}
	if err != nil {
		return wrap("reconnect", c.reader, err)
	}
	if st, err := c.sc.Status(); err == nil {
		c.mu.Lock()
		c.atr = append([]byte(nil), st.Atr...)
		c.mu.Unlock()
	}
	return nil
}

// Close disconnects without resetting the card and waits for that (up to
// closeWait): if the worker is stuck in a call, it disconnects when that
// call returns.
func (c *card) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		_ = c.ctx.Cancel() // wakes a removal check waiting in GetStatusChange
		close(c.quit)
	}
	c.mu.Unlock()
	// Wait for the disconnect, so that nothing of this card is still inside
	// the PC/SC library when the caller moves on (or the process exits);
	// a worker stuck in an abandoned call is not waited for past closeWait.
	select {
	case <-c.gone:
	case <-time.After(closeWait):
		c.t.opts.Logger.Warn("pcsc: card still busy at close; it disconnects when its call returns", "reader", c.reader)
	}
	return nil
}

// closeWait bounds how long Close waits for the card's worker.
const closeWait = 2 * time.Second
