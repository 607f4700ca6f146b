package pcsc

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ebfe/scard"

	"kpe-agent/apdu"
)

// card is a connected card. It is safe for concurrent use, but operations are
// serialised: the agent gives each reader one owning goroutine anyway.
type card struct {
	t      *Transport
	ctx    *scard.Context
	sc     *scard.Card
	reader string

	mu     sync.Mutex
	atr    []byte
	closed bool
	// busy is non-nil while a C call that the caller abandoned at its
	// deadline is still running; it is closed when that call returns.
	busy chan struct{}
}

func (c *card) Reader() string { return c.reader }

func (c *card) ATR() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.atr...)
}

// call runs f (a blocking PC/SC call on this card) under ctx. If ctx ends
// first, the caller gets a timeout at once, f keeps running in the
// background, and the card is marked busy until f returns; then cleanup runs
// with f's error (used to undo a transaction that arrived too late).
func (c *card) call(ctx context.Context, op string, f func() error, cleanup func(error)) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return newErr(op, c.reader, apdu.ErrTransport, "card connection is closed")
	}
	busy := c.busy
	c.mu.Unlock()
	if busy != nil {
		select {
		case <-busy:
		case <-ctx.Done():
			return newErr(op, c.reader, ctxKind(ctx), "card is still busy with an earlier command that timed out")
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.t.opts.CommandTimeout)
		defer cancel()
	}
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		ch := make(chan struct{})
		c.mu.Lock()
		c.busy = ch
		c.mu.Unlock()
		go func() {
			err := <-done
			if cleanup != nil {
				cleanup(err)
			}
			c.mu.Lock()
			if c.busy == ch {
				c.busy = nil
			}
			c.mu.Unlock()
			close(ch)
		}()
		c.t.opts.Logger.Warn("pcsc: card did not answer before the deadline", "reader", c.reader, "op", op)
		return newErr(op, c.reader, ctxKind(ctx), "the card did not answer in time")
	}
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
			return nil, wrap("transmit", c.reader, err)
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
		return nil, wrap("transmit", c.reader, err)
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
	return wrap("begin-transaction", c.reader, err)
}

func (c *card) EndTransaction() error {
	c.mu.Lock()
	busy := c.busy != nil
	c.mu.Unlock()
	if busy {
		// The abandoned call still holds the handle; pcsc-lite releases the
		// transaction when the handle is disconnected.
		return nil
	}
	return wrap("end-transaction", c.reader, c.sc.EndTransaction(scard.LeaveCard))
}

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

// Close disconnects without resetting the card. If a timed-out call is still
// running inside PC/SC, Close cancels what can be cancelled and finishes the
// cleanup in the background when that call returns, so it never blocks.
func (c *card) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	busy := c.busy
	c.mu.Unlock()
	release := func() error {
		err := c.sc.Disconnect(scard.LeaveCard)
		if rerr := c.ctx.Release(); err == nil && !errors.Is(rerr, scard.ErrInvalidHandle) {
			err = rerr
		}
		if errors.Is(err, scard.ErrInvalidHandle) || errors.Is(err, scard.ErrNoService) {
			return nil // the service is gone and took the handle with it
		}
		return wrap("disconnect", c.reader, err)
	}
	if busy != nil {
		_ = c.ctx.Cancel()
		go func() { <-busy; _ = release() }()
		return nil
	}
	return release()
}
