package cards

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"kpe-agent/apdu"
)

// ErrSessionEnded is returned for work submitted to a session that has
// ended; it wraps the cause (apdu.ErrCardRemoved when the card was pulled).
var ErrSessionEnded = errors.New("cards: card session ended")

// Session owns one card: every operation on it runs in the session's own
// goroutine, one at a time, in the order submitted (the model of
// status-keycard-go). When an operation finds the card removed, reset by
// another program, or the PC/SC service gone, the session ends: the card
// handle is closed, the goroutine exits, and every later call fails with
// ErrSessionEnded wrapping the cause. Nothing waits forever: a caller's
// context bounds its wait, and operations run under that context.
type Session struct {
	reqs chan request
	quit chan struct{}
	done chan struct{}

	mu    sync.Mutex
	cause error
	once  sync.Once
}

type request struct {
	ctx context.Context
	fn  func(context.Context, apdu.Card) error
	res chan error
}

// Start begins a session that owns card.
func Start(card apdu.Card) *Session {
	s := &Session{reqs: make(chan request), quit: make(chan struct{}), done: make(chan struct{})}
	go s.run(card)
	return s
}

func (s *Session) run(card apdu.Card) {
	defer close(s.done)
	defer card.Close()
	for {
		select {
		case <-s.quit:
			return
		case req := <-s.reqs:
			err := req.ctx.Err() // a caller that gave up meanwhile: fn does not run
			if err == nil {
				err = req.fn(req.ctx, card)
			}
			req.res <- err
			if ends(err) {
				s.end(err)
				return
			}
		}
	}
}

// ends reports whether err means the card (or PC/SC) is gone for this
// session.
func ends(err error) bool {
	return errors.Is(err, apdu.ErrCardRemoved) || errors.Is(err, apdu.ErrCardReset) ||
		errors.Is(err, apdu.ErrNoService) || errors.Is(err, apdu.ErrNoCard) || errors.Is(err, apdu.ErrNoReader)
}

func (s *Session) end(cause error) {
	s.mu.Lock()
	if s.cause == nil {
		s.cause = cause
	}
	s.mu.Unlock()
}

// Err returns why the session ended, or nil while it runs.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cause == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrSessionEnded, s.cause)
}

// Done is closed when the session's goroutine has exited.
func (s *Session) Done() <-chan struct{} { return s.done }

// Do runs fn on the card in the session's goroutine and returns its error.
// If ctx ends first, Do returns ctx's error; fn, if it started, sees the
// same ctx and stops at its next card command.
func (s *Session) Do(ctx context.Context, fn func(context.Context, apdu.Card) error) error {
	res, err := s.submit(ctx, fn)
	if err != nil {
		return err
	}
	select {
	case err := <-res:
		return result(err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DoWait is Do for work with a point of no return, such as a record
// committed to the outbox, whose outcome the caller must learn: ctx bounds
// only the wait for the session to take fn; once fn has started, DoWait
// waits for it to return. fn must honour ctx up to its point of no return
// and bound whatever follows it.
func (s *Session) DoWait(ctx context.Context, fn func(context.Context, apdu.Card) error) error {
	res, err := s.submit(ctx, fn)
	if err != nil {
		return err
	}
	return result(<-res)
}

// submit hands fn to the session's goroutine; fn's error arrives on the
// channel.
func (s *Session) submit(ctx context.Context, fn func(context.Context, apdu.Card) error) (<-chan error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req := request{ctx: ctx, fn: fn, res: make(chan error, 1)}
	select {
	case s.reqs <- req:
		return req.res, nil
	case <-s.done:
		if err := s.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: closed", ErrSessionEnded)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func result(err error) error {
	if ends(err) {
		return fmt.Errorf("%w: %w", ErrSessionEnded, err)
	}
	return err
}

// Read recognises and reads the card inside a PC/SC transaction.
func (s *Session) Read(ctx context.Context, sam SAM, o Options) (*Result, error) {
	var r *Result
	err := s.Do(ctx, func(ctx context.Context, card apdu.Card) error {
		if err := card.BeginTransaction(ctx); err != nil {
			return err
		}
		defer card.EndTransaction()
		var err error
		r, err = Read(ctx, card, sam, o)
		return err
	})
	if err != nil {
		return nil, err // r is not read: after ctx ended, fn may still be writing it
	}
	return r, nil
}

// Close ends the session (if it still runs) and waits for its goroutine;
// the card handle is closed.
func (s *Session) Close() {
	s.once.Do(func() { close(s.quit) })
	<-s.done
}
