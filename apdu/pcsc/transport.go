package pcsc

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/ebfe/scard"

	"kpe-agent/apdu"
)

// pnpReader is the pseudo-reader that reports reader arrival and removal.
const pnpReader = `\\?PnP?\Notification`

// Options configure a Transport.
type Options struct {
	// CommandTimeout is applied to Transmit when the caller's context has no
	// deadline. ISO 7816 sets no maximum command time, so there must be one.
	// Default 30 s (long enough for on-card biometric matching).
	CommandTimeout time.Duration
	// RemovalGrace bounds how long a transmit that failed without a PC/SC
	// verdict waits for the reader to report whether the card is gone.
	// Default 1.5 s (pcsc-lite polls drivers about every 400 ms).
	RemovalGrace time.Duration
	// MinBackoff and MaxBackoff bound the delay between attempts to
	// re-establish a PC/SC context. Defaults 100 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 30 * time.Second
	}
	if o.RemovalGrace <= 0 {
		o.RemovalGrace = 1500 * time.Millisecond
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = 5 * time.Second
		if o.MaxBackoff < o.MinBackoff {
			o.MaxBackoff = o.MinBackoff
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Transport gives access to the PC/SC readers of this machine.
type Transport struct {
	opts Options

	mu  sync.Mutex
	ctx *scard.Context // for ListReaders/GetStatusChange(0); nil until needed
}

// New returns a Transport. It does not contact the PC/SC service yet.
func New(opts Options) *Transport {
	return &Transport{opts: opts.withDefaults()}
}

// Close releases the transport's own context. Cards from Connect stay open
// until their own Close.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx != nil {
		err := release(t.ctx)
		t.ctx = nil
		return wrap("release", "", err)
	}
	return nil
}

// control runs f with the transport's context, establishing it if needed and
// re-establishing it once if the service was restarted under it.
func (t *Transport) control(op string, f func(*scard.Context) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		if t.ctx == nil {
			c, err := establish()
			if err != nil {
				return wrap(op, "", err)
			}
			t.ctx = c
		}
		err := wrap(op, "", f(t.ctx))
		if !isServiceGone(err) {
			return err
		}
		_ = release(t.ctx)
		t.ctx = nil
	}
	return newErr(op, "", apdu.ErrNoService, "PC/SC service did not accept a new context")
}

// Readers lists the readers with their current state. Readers that report an
// unknown or ignore state are left out.
func (t *Transport) Readers(ctx context.Context) ([]apdu.ReaderInfo, error) {
	var out []apdu.ReaderInfo
	err := t.control("list-readers", func(c *scard.Context) error {
		names, err := c.ListReaders()
		if errors.Is(err, scard.ErrNoReadersAvailable) {
			return nil
		}
		if err != nil {
			return err
		}
		states := make([]scard.ReaderState, len(names))
		for i, n := range names {
			states[i] = scard.ReaderState{Reader: n, CurrentState: scard.StateUnaware}
		}
		if err := c.GetStatusChange(states, 0); err != nil && !errors.Is(err, scard.ErrTimeout) {
			return err
		}
		for _, s := range states {
			if s.EventState&(scard.StateUnknown|scard.StateIgnore) != 0 {
				continue
			}
			out = append(out, readerInfo(s))
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

func readerInfo(s scard.ReaderState) apdu.ReaderInfo {
	ri := apdu.ReaderInfo{
		Name:        s.Reader,
		CardPresent: s.EventState&scard.StatePresent != 0,
		Exclusive:   s.EventState&scard.StateExclusive != 0,
		InUse:       s.EventState&scard.StateInuse != 0,
		Mute:        s.EventState&scard.StateMute != 0,
	}
	if ri.CardPresent {
		ri.ATR = append([]byte(nil), s.Atr...)
	}
	return ri
}

// Connect connects to the card in reader in shared mode with T=0 or T=1.
// The returned card owns a PC/SC context of its own.
func (t *Transport) Connect(ctx context.Context, reader string) (apdu.Card, error) {
	c, err := establish()
	if err != nil {
		return nil, wrap("connect", reader, err)
	}
	type result struct {
		card *scard.Card
		err  error
	}
	done := make(chan result, 1)
	go func() {
		sc, err := connect(c, reader)
		done <- result{sc, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		// SCardConnect does not block for long in practice, but do not make
		// the caller wait: clean up when it returns.
		go func() {
			r := <-done
			if r.card != nil {
				_ = disconnect(r.card)
			}
			_ = release(c)
		}()
		return nil, newErr("connect", reader, ctxKind(ctx), ctx.Err().Error())
	}
	if r.err != nil {
		_ = release(c)
		return nil, wrap("connect", reader, r.err)
	}
	pc := newCard(t, c, r.card, reader)
	if st, err := r.card.Status(); err == nil {
		pc.atr = append([]byte(nil), st.Atr...)
	}
	return pc, nil
}

func ctxKind(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return apdu.ErrTimeout
	}
	return context.Canceled
}
