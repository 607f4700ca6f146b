package cardsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"kpe-agent/apdu"
)

// MemReader is an in-process card reader: Connect returns an apdu.Card
// that calls the inserted Card directly, with the same fault injection as
// the vpcd slots. It needs no pcscd and is meant for unit tests and
// hardware-free demos.
//
// Behaviour of the connections (apdu.Card) it returns:
//   - Transmit after the card was removed (or replaced) → apdu.ErrCardRemoved.
//   - Transmit after ResetCard or another connection's Reconnect(reset)
//     → apdu.ErrCardReset once, then it works again.
//   - A ctx deadline passing during an injected Delay → apdu.ErrTimeout;
//     cancellation → context.Canceled.
//   - RemoveAtAPDU and AnswerLostAtAPDU (after the card processed the
//     command) → apdu.ErrCardRemoved (the reader becomes empty, or the
//     card comes back after ReinsertAfter); MalformedAtAPDU → the 1-byte
//     response 90 with a nil error.
//   - BeginTransaction takes the reader exclusively (other connections'
//     Transmit and BeginTransaction wait, honouring their ctx).
//   - Reconnect attaches to the card now in the reader (reset: warm reset).
type MemReader struct {
	name   string
	log    *slog.Logger
	faults faultState
	// lock is held by one Transmit or one transaction at a time.
	lock chan struct{}

	mu       sync.Mutex
	card     Card
	gen      uint64 // changes on every insertion and removal
	resetGen uint64 // changes on every reset done by someone else
	reinsert *time.Timer
	apdus    uint64
}

// NewMemReader returns an empty reader.
func NewMemReader(name string) *MemReader {
	return &MemReader{name: name, log: slog.New(slog.DiscardHandler), lock: make(chan struct{}, 1)}
}

// SetLogger sets the logger for fault and card events.
func (r *MemReader) SetLogger(l *slog.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = l.With("reader", r.name)
}

// Name returns the reader name.
func (r *MemReader) Name() string { return r.name }

// Insert puts c into the reader (replacing any card) and powers it.
func (r *MemReader) Insert(c Card) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removeLocked()
	r.insertLocked(c)
}

func (r *MemReader) insertLocked(c Card) {
	c.PowerOn()
	r.card = c
	r.gen++
}

// Remove takes the card out (no-op when empty).
func (r *MemReader) Remove() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removeLocked()
}

func (r *MemReader) removeLocked() {
	if r.reinsert != nil {
		r.reinsert.Stop()
		r.reinsert = nil
	}
	if r.card != nil {
		r.card.PowerOff()
		r.card = nil
		r.gen++
	}
}

// Card returns the inserted card, or nil.
func (r *MemReader) Card() Card {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.card
}

// ResetCard warm-resets the card as another program would: existing
// connections get apdu.ErrCardReset on their next Transmit.
func (r *MemReader) ResetCard() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.card != nil {
		r.card.Reset()
		r.resetGen++
	}
}

// SetFault arms f; APDUs are counted from 1 from now on.
func (r *MemReader) SetFault(f Fault) { r.faults.set(f) }

// ClearFault disarms the fault.
func (r *MemReader) ClearFault() { r.faults.set(Fault{}) }

// WaitHold waits until the reader holds the APDU of its HoldAtAPDU fault
// and returns that command (ErrNoHold: none armed).
func (r *MemReader) WaitHold(ctx context.Context) ([]byte, error) { return r.faults.waitHold(ctx) }

// ReleaseHold lets the held APDU reach the card (ErrNoHold: none armed).
func (r *MemReader) ReleaseHold() error { return r.faults.releaseHold() }

// APDUs counts the command APDUs transmitted through the reader.
func (r *MemReader) APDUs() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.apdus
}

// Connect connects to the inserted card (apdu.ErrNoCard when empty).
func (r *MemReader) Connect(ctx context.Context) (apdu.Card, error) {
	if err := ctx.Err(); err != nil {
		return nil, r.ctxError(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.card == nil {
		return nil, r.errorf(apdu.ErrNoCard, "connect")
	}
	return &memCard{r: r, gen: r.gen, resetGen: r.resetGen, atr: r.card.ATR()}, nil
}

func (r *MemReader) errorf(sentinel error, op string) error {
	return fmt.Errorf("cardsim: %s: %s: %w", r.name, op, sentinel)
}

func (r *MemReader) ctxError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cardsim: %s: %w (%v)", r.name, apdu.ErrTimeout, err)
	}
	return fmt.Errorf("cardsim: %s: %w", r.name, err)
}

// acquire takes the reader lock, honouring ctx.
func (r *MemReader) acquire(ctx context.Context) error {
	select {
	case r.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return r.ctxError(ctx.Err())
	}
}

func (r *MemReader) release() { <-r.lock }

// faultRemove removes the card of generation gen after a RemoveAtAPDU
// fault and schedules its reinsertion.
func (r *MemReader) faultRemove(gen uint64, reinsertAfter time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen != gen || r.card == nil {
		return
	}
	c := r.card
	r.removeLocked()
	r.log.Info("card removed by fault", "card", CardName(c))
	if reinsertAfter <= 0 {
		return
	}
	emptyGen := r.gen
	var t *time.Timer
	t = time.AfterFunc(reinsertAfter, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.reinsert != t || r.gen != emptyGen || r.card != nil {
			return
		}
		r.reinsert = nil
		r.insertLocked(c)
		r.log.Info("card reinserted after fault", "card", CardName(c))
	})
	r.reinsert = t
}

// memCard is one connection to a MemReader's card.
type memCard struct {
	r *MemReader

	mu       sync.Mutex
	gen      uint64
	resetGen uint64
	atr      []byte
	closed   bool
	inTx     bool
}

var _ apdu.Card = (*memCard)(nil)

func (m *memCard) Reader() string { return m.r.name }

func (m *memCard) ATR() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.atr)
}

// check verifies that the connection is usable and returns the card.
func (m *memCard) check(op string) (Card, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, 0, m.r.errorf(apdu.ErrTransport, op+" on a closed connection")
	}
	m.r.mu.Lock()
	defer m.r.mu.Unlock()
	if m.r.card == nil || m.r.gen != m.gen {
		return nil, 0, m.r.errorf(apdu.ErrCardRemoved, op)
	}
	if m.r.resetGen != m.resetGen {
		m.resetGen = m.r.resetGen
		return nil, 0, m.r.errorf(apdu.ErrCardReset, op)
	}
	return m.r.card, m.gen, nil
}

func (m *memCard) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, m.r.ctxError(err)
	}
	if _, _, err := m.check("transmit"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	inTx := m.inTx
	m.mu.Unlock()
	if !inTx {
		if err := m.r.acquire(ctx); err != nil {
			return nil, err
		}
		defer m.r.release()
	}
	// Check again: the card may have gone while we waited.
	card, gen, err := m.check("transmit")
	if err != nil {
		return nil, err
	}
	m.r.mu.Lock()
	m.r.apdus++
	log := m.r.log
	m.r.mu.Unlock()
	resp, act, err := exchange(ctx, &m.r.faults, card, cmd, log)
	switch {
	case errors.Is(err, errFaultRemoved):
		m.r.faultRemove(gen, act.reinsertAfter)
		return nil, m.r.errorf(apdu.ErrCardRemoved, "transmit")
	case err != nil:
		return nil, m.r.ctxError(err)
	}
	return resp, nil
}

func (m *memCard) BeginTransaction(ctx context.Context) error {
	if _, _, err := m.check("begin transaction"); err != nil {
		return err
	}
	m.mu.Lock()
	if m.inTx {
		m.mu.Unlock()
		return m.r.errorf(apdu.ErrTransport, "begin transaction: already in a transaction")
	}
	m.mu.Unlock()
	if err := m.r.acquire(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		m.r.release()
		return m.r.errorf(apdu.ErrTransport, "begin transaction on a closed connection")
	}
	m.inTx = true
	return nil
}

func (m *memCard) EndTransaction() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.inTx {
		return m.r.errorf(apdu.ErrTransport, "end transaction: no transaction")
	}
	m.inTx = false
	m.r.release()
	return nil
}

func (m *memCard) Reconnect(ctx context.Context, reset bool) error {
	if err := ctx.Err(); err != nil {
		return m.r.ctxError(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return m.r.errorf(apdu.ErrTransport, "reconnect on a closed connection")
	}
	m.r.mu.Lock()
	defer m.r.mu.Unlock()
	if m.r.card == nil {
		return m.r.errorf(apdu.ErrNoCard, "reconnect")
	}
	if reset {
		m.r.card.Reset()
		m.r.resetGen++
	}
	m.gen, m.resetGen, m.atr = m.r.gen, m.r.resetGen, m.r.card.ATR()
	return nil
}

func (m *memCard) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	if m.inTx {
		m.inTx = false
		m.r.release()
	}
	return nil
}
