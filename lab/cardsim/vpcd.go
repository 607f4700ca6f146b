package cardsim

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// vpcd protocol (vsmartcard's virtual PC/SC reader driver). vpcd listens,
// the card connects: connected means inserted, closed means removed. Both
// directions send frames of a 2-byte big-endian length and that many bytes.
// A 1-byte frame from vpcd is a control message; anything longer is a
// command APDU answered with the response APDU.
const (
	vpcdPowerOff = 0
	vpcdPowerOn  = 1
	vpcdReset    = 2
	vpcdGetATR   = 4
)

// Reconnection backoff of a slot whose card is inserted but which has no
// working connection to vpcd.
const (
	minBackoff  = 50 * time.Millisecond
	maxBackoff  = 2 * time.Second
	dialTimeout = 2 * time.Second
)

// slot is one vpcd reader slot of a Lab.
type slot struct {
	index  int
	addr   string
	log    *slog.Logger
	faults faultState

	mu  sync.Mutex
	ins *insertion // nil when empty
}

// insertion is one card inserted in a slot, served by a goroutine that keeps
// a connection to vpcd until the card is removed.
type insertion struct {
	card   Card
	name   string
	cancel context.CancelFunc
	done   chan struct{}

	// guarded by slot.mu
	connected bool // TCP connection established
	active    bool // vpcd has sent at least one message on it
	powered   bool
	apdus     uint64
}

// start inserts c and starts serving it. The caller holds no lock.
func (s *slot) start(c Card) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ins != nil {
		return fmt.Errorf("slot %d: %w", s.index, ErrSlotOccupied)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ins := &insertion{card: c, name: CardName(c), cancel: cancel, done: make(chan struct{})}
	s.ins = ins
	s.log.Info("card inserted", "card", ins.name)
	go s.run(ctx, ins)
	return nil
}

// stop removes the card and waits for its goroutine.
func (s *slot) stop() error {
	s.mu.Lock()
	ins := s.ins
	s.ins = nil
	s.mu.Unlock()
	if ins == nil {
		return fmt.Errorf("slot %d: %w", s.index, ErrSlotEmpty)
	}
	ins.cancel()
	<-ins.done
	s.log.Info("card removed", "card", ins.name)
	return nil
}

func (s *slot) status() SlotStatus {
	st := SlotStatus{Slot: s.index}
	if f, ok := s.faults.get(); ok {
		st.Fault = &f
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ins := s.ins; ins != nil {
		st.Inserted = true
		st.Card = ins.name
		st.ATR = fmt.Sprintf("%X", ins.card.ATR())
		st.Connected = ins.connected
		st.Active = ins.active
		st.Powered = ins.powered
		st.APDUs = ins.apdus
	}
	return st
}

func (s *slot) update(ins *insertion, f func(*insertion)) {
	s.mu.Lock()
	f(ins)
	s.mu.Unlock()
}

// run keeps ins connected to vpcd until ctx ends or a fault removes the card.
func (s *slot) run(ctx context.Context, ins *insertion) {
	defer close(ins.done)
	backoff := minBackoff
	dialer := net.Dialer{Timeout: dialTimeout}
	for {
		conn, err := dialer.DialContext(ctx, "tcp", s.addr)
		if err == nil {
			s.update(ins, func(i *insertion) { i.connected, i.active = true, false })
			s.log.Debug("connected to vpcd", "addr", s.addr)
			talked, serr := s.serve(ctx, conn, ins)
			conn.Close()
			ins.card.PowerOff()
			s.update(ins, func(i *insertion) { i.connected, i.active, i.powered = false, false, false })
			if ctx.Err() != nil {
				return
			}
			if errors.Is(serr, errFaultRemoved) {
				f, _ := s.faults.get()
				if f.ReinsertAfter <= 0 {
					s.mu.Lock()
					if s.ins == ins {
						s.ins = nil
					}
					s.mu.Unlock()
					s.log.Info("card removed by fault", "card", ins.name)
					return
				}
				s.log.Info("card removed by fault; reinserting later", "card", ins.name, "after", f.ReinsertAfter)
				if !sleepCtx(ctx, f.ReinsertAfter) {
					return
				}
				backoff = minBackoff
				continue
			}
			s.log.Info("vpcd connection closed", "err", serr)
			if talked {
				backoff = minBackoff
			}
		} else {
			if ctx.Err() != nil {
				return
			}
			s.log.Debug("vpcd not reachable", "addr", s.addr, "err", err, "retry_in", backoff)
		}
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// serve speaks the vpcd protocol on conn until it fails, ctx ends or a
// fault removes the card. talked reports whether vpcd sent anything.
func (s *slot) serve(ctx context.Context, conn net.Conn, ins *insertion) (talked bool, err error) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	r := bufio.NewReader(conn)
	var hdr [2]byte
	for {
		quickAck(conn)
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return talked, err
		}
		msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		quickAck(conn)
		if _, err := io.ReadFull(r, msg); err != nil {
			return talked, err
		}
		if !talked {
			talked = true
			s.update(ins, func(i *insertion) { i.active = true })
			s.log.Info("vpcd accepted the card", "card", ins.name)
		}
		switch len(msg) {
		case 0:
			continue // never sent by vpcd; nothing to answer
		case 1:
			if err := s.control(conn, ins, msg[0]); err != nil {
				return talked, err
			}
			continue
		}
		s.update(ins, func(i *insertion) { i.apdus++ })
		resp, act, err := exchange(ctx, &s.faults, ins.card, msg, s.log)
		if err != nil {
			return talked, err
		}
		if s.log.Enabled(ctx, slog.LevelDebug) {
			s.log.Debug("apdu", "n", act.n, "cmd", fmt.Sprintf("%X", msg), "resp", fmt.Sprintf("%X", resp))
		}
		if err := writeFrame(conn, resp); err != nil {
			return talked, err
		}
	}
}

func (s *slot) control(conn net.Conn, ins *insertion, op byte) error {
	switch op {
	case vpcdPowerOff:
		ins.card.PowerOff()
		s.update(ins, func(i *insertion) { i.powered = false })
		s.log.Debug("power off")
	case vpcdPowerOn:
		ins.card.PowerOn()
		s.update(ins, func(i *insertion) { i.powered = true })
		s.log.Debug("power on")
	case vpcdReset:
		ins.card.Reset()
		s.update(ins, func(i *insertion) { i.powered = true })
		s.log.Debug("reset")
	case vpcdGetATR:
		return writeFrame(conn, ins.card.ATR())
	default:
		s.log.Warn("unknown vpcd control message ignored", "op", op)
	}
	return nil
}

// writeFrame sends one length-prefixed frame in a single write.
func writeFrame(w io.Writer, payload []byte) error {
	if len(payload) == 0 || len(payload) > maxFramePayload {
		return fmt.Errorf("vpcd frame of %d bytes", len(payload))
	}
	buf := make([]byte, 2+len(payload))
	binary.BigEndian.PutUint16(buf, uint16(len(payload)))
	copy(buf[2:], payload)
	_, err := w.Write(buf)
	return err
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
