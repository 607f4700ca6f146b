package cardsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
)

// Lab errors.
var (
	ErrBadSlot      = errors.New("no such slot")
	ErrSlotOccupied = errors.New("slot already holds a card")
	ErrSlotEmpty    = errors.New("slot holds no card")
	ErrLabClosed    = errors.New("lab closed")
)

// LabConfig configures a Lab. Zero fields take the defaults.
type LabConfig struct {
	// VPCDHost is where pcscd's vpcd driver listens (default 127.0.0.1).
	VPCDHost string
	// BasePort is the port of slot 0; slot n uses BasePort+n (default 35963).
	BasePort int
	// Slots is the number of slots (default 2, at most 10 as in vpcd).
	Slots int
	// Logger receives slot events (default: discard).
	Logger *slog.Logger
	// SwapPause is the pause between removal and insertion in Swap, long
	// enough for pcscd to poll the empty reader (default 600ms).
	SwapPause time.Duration
	// CardDir is the base directory for relative card image paths given to
	// the HTTP control API (default: the working directory).
	CardDir string
}

// Defaults.
const (
	DefaultVPCDHost  = "127.0.0.1"
	DefaultVPCDPort  = 35963
	DefaultSlots     = 2
	MaxSlots         = 10
	DefaultSwapPause = 600 * time.Millisecond
)

// SlotStatus describes one slot.
type SlotStatus struct {
	Slot int `json:"slot"`
	// Port is the vpcd port of the slot.
	Port int `json:"port"`
	// Inserted: a card is in the slot.
	Inserted bool `json:"inserted"`
	// Card is the inserted card's name.
	Card string `json:"card,omitempty"`
	// ATR of the inserted card, hex.
	ATR string `json:"atr,omitempty"`
	// Connected: the TCP connection to vpcd is up.
	Connected bool `json:"connected"`
	// Active: vpcd has talked to the card on the current connection (it
	// accepted the connection; a second client on a busy port stays
	// connected but inactive).
	Active bool `json:"active"`
	// Powered: the reader has powered the card.
	Powered bool `json:"powered"`
	// APDUs counts the command APDUs received since the card was inserted.
	APDUs uint64 `json:"apdus"`
	// Fault is the armed fault, if any.
	Fault *Fault `json:"fault,omitempty"`
}

// Lab manages the vpcd slots of the virtual card lab: one TCP client per
// slot, connected while a card is inserted. A slot with a card keeps
// reconnecting (capped backoff 50ms → 2s) while vpcd is not listening or
// after the connection drops, so the card reappears when pcscd restarts.
type Lab struct {
	cfg   LabConfig
	log   *slog.Logger
	slots []*slot

	mu       sync.Mutex
	closed   bool
	closedCh chan struct{}
}

// NewLab returns a lab with cfg.Slots empty slots.
func NewLab(cfg LabConfig) (*Lab, error) {
	if cfg.VPCDHost == "" {
		cfg.VPCDHost = DefaultVPCDHost
	}
	if cfg.BasePort == 0 {
		cfg.BasePort = DefaultVPCDPort
	}
	if cfg.Slots == 0 {
		cfg.Slots = DefaultSlots
	}
	if cfg.SwapPause == 0 {
		cfg.SwapPause = DefaultSwapPause
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Slots < 1 || cfg.Slots > MaxSlots {
		return nil, fmt.Errorf("cardsim: %d slots (want 1..%d)", cfg.Slots, MaxSlots)
	}
	if cfg.BasePort < 1 || cfg.BasePort+cfg.Slots-1 > 65535 {
		return nil, fmt.Errorf("cardsim: base port %d out of range", cfg.BasePort)
	}
	l := &Lab{cfg: cfg, log: cfg.Logger, closedCh: make(chan struct{})}
	for i := range cfg.Slots {
		port := cfg.BasePort + i
		l.slots = append(l.slots, &slot{
			index: i,
			addr:  net.JoinHostPort(cfg.VPCDHost, strconv.Itoa(port)),
			log:   cfg.Logger.With("slot", i, "port", port),
		})
	}
	return l, nil
}

// Config returns the effective configuration.
func (l *Lab) Config() LabConfig { return l.cfg }

func (l *Lab) slot(n int) (*slot, error) {
	if n < 0 || n >= len(l.slots) {
		return nil, fmt.Errorf("slot %d: %w (have 0..%d)", n, ErrBadSlot, len(l.slots)-1)
	}
	return l.slots[n], nil
}

// Insert puts c into slot n; the slot connects to vpcd.
func (l *Lab) Insert(n int, c Card) error {
	s, err := l.slot(n)
	if err != nil {
		return err
	}
	if c == nil {
		return errors.New("cardsim: nil card")
	}
	if atr := c.ATR(); len(atr) < 2 || len(atr) > maxATRLen {
		return fmt.Errorf("cardsim: card %s: ATR of %d bytes", CardName(c), len(atr))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrLabClosed
	}
	return s.start(c)
}

// Remove takes the card out of slot n: the connection to vpcd is closed and
// no longer retried.
func (l *Lab) Remove(n int) error {
	s, err := l.slot(n)
	if err != nil {
		return err
	}
	return s.stop()
}

// Swap removes the card of slot n (if any), waits SwapPause so that pcscd
// sees the empty reader, and inserts c.
func (l *Lab) Swap(n int, c Card) error {
	s, err := l.slot(n)
	if err != nil {
		return err
	}
	if err := s.stop(); err != nil && !errors.Is(err, ErrSlotEmpty) {
		return err
	}
	t := time.NewTimer(l.cfg.SwapPause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-l.closedCh:
		return ErrLabClosed
	}
	return l.Insert(n, c)
}

// SetFault arms f on slot n; APDUs are counted from 1 from now on. A zero
// Fault clears.
func (l *Lab) SetFault(n int, f Fault) error {
	s, err := l.slot(n)
	if err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	s.faults.set(f)
	s.log.Info("fault armed", "fault", f)
	return nil
}

// ClearFault disarms the fault of slot n.
func (l *Lab) ClearFault(n int) error {
	s, err := l.slot(n)
	if err != nil {
		return err
	}
	s.faults.set(Fault{})
	s.log.Info("fault cleared")
	return nil
}

// WaitHold waits until slot n holds the APDU of its HoldAtAPDU fault and
// returns that command (ErrNoHold: none armed).
func (l *Lab) WaitHold(ctx context.Context, n int) ([]byte, error) {
	s, err := l.slot(n)
	if err != nil {
		return nil, err
	}
	return s.faults.waitHold(ctx)
}

// ReleaseHold lets slot n's held APDU reach the card and be answered
// (ErrNoHold: none armed). Removing the card instead drops it.
func (l *Lab) ReleaseHold(n int) error {
	s, err := l.slot(n)
	if err != nil {
		return err
	}
	if err := s.faults.releaseHold(); err != nil {
		return err
	}
	s.log.Info("fault: hold released")
	return nil
}

// Status reports every slot.
func (l *Lab) Status() []SlotStatus {
	out := make([]SlotStatus, len(l.slots))
	for i, s := range l.slots {
		out[i] = s.status()
		out[i].Port = l.cfg.BasePort + i
	}
	return out
}

// SlotStatus reports slot n.
func (l *Lab) SlotStatus(n int) (SlotStatus, error) {
	s, err := l.slot(n)
	if err != nil {
		return SlotStatus{}, err
	}
	st := s.status()
	st.Port = l.cfg.BasePort + n
	return st, nil
}

// Close removes every card and stops all goroutines. It is idempotent.
func (l *Lab) Close() error {
	sensors.Lock()
	delete(sensors.m, l)
	sensors.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.closedCh)
	l.mu.Unlock()
	for _, s := range l.slots {
		_ = s.stop()
	}
	return nil
}
