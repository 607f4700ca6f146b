package pcsc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/ebfe/scard"

	"kpe-agent/apdu"
)

// Monitor watches readers and cards. Create it with Transport.Watch.
type Monitor struct {
	// Events delivers changes in order; it is closed when the monitor stops.
	// A slow consumer delays the monitor but loses nothing.
	Events <-chan apdu.Event

	t     *Transport
	out   chan apdu.Event
	stats monitorCounters
	known map[string]readerView
}

// MonitorStats are counters that let tests and `kpectl doctor` see that the
// monitor blocks instead of polling.
type MonitorStats struct {
	// Establish counts attempts to establish a PC/SC context.
	Establish int64
	// Waits counts calls to SCardGetStatusChange.
	Waits int64
	// IdleWakeups counts GetStatusChange returns that carried no change.
	IdleWakeups int64
	// Rechecks counts answers asked again because a reader's event count
	// went backwards (readers mixed up in one answer).
	Rechecks int64
	// Confirms counts removals and swaps confirmed by a second answer.
	Confirms int64
}

type monitorCounters struct{ establish, waits, idle, rechecks, confirms atomic.Int64 }

type readerView struct {
	present bool
	atr     []byte
	busy    bool
	events  uint32
}

// Watch starts a monitor that runs until ctx ends. It reports every reader
// and card present at start as ReaderAdded / CardInserted events.
func (t *Transport) Watch(ctx context.Context) *Monitor {
	out := make(chan apdu.Event, 64)
	m := &Monitor{Events: out, t: t, out: out, known: map[string]readerView{}}
	go m.run(ctx)
	return m
}

// Stats returns the monitor's counters.
func (m *Monitor) Stats() MonitorStats {
	return MonitorStats{
		Establish:   m.stats.establish.Load(),
		Waits:       m.stats.waits.Load(),
		IdleWakeups: m.stats.idle.Load(),
		Rechecks:    m.stats.rechecks.Load(),
		Confirms:    m.stats.confirms.Load(),
	}
}

func (m *Monitor) emit(ctx context.Context, ev apdu.Event) bool {
	ev.Time = time.Now()
	select {
	case m.out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

func (m *Monitor) run(ctx context.Context) {
	defer close(m.out)
	log := m.t.opts.Logger
	backoff := m.t.opts.MinBackoff
	lost := false
	for ctx.Err() == nil {
		m.stats.establish.Add(1)
		sc, err := establish()
		if err == nil {
			if lost {
				log.Info("pcsc: service is back")
				if !m.emit(ctx, apdu.Event{Kind: apdu.ServiceRestored}) {
					_ = release(sc)
					return
				}
				lost = false
			}
			backoff = m.t.opts.MinBackoff
			err = m.watch(ctx, sc)
			_ = release(sc)
			if ctx.Err() != nil {
				return
			}
		}
		err = serviceLost(err)
		if !lost {
			log.Warn("pcsc: service unavailable; retrying", "err", err)
			// The cause first, then what it took with it.
			if !m.emit(ctx, apdu.Event{Kind: apdu.ServiceLost, Err: err}) {
				return
			}
			m.forgetAll(ctx)
			lost = true
		}
		if !sleep(ctx, backoff) {
			return
		}
		backoff *= 2
		if backoff > m.t.opts.MaxBackoff {
			backoff = m.t.opts.MaxBackoff
		}
	}
}

// forgetAll reports every known card and reader as gone: handles from a
// dead service are invalid, so consumers must start over.
func (m *Monitor) forgetAll(ctx context.Context) {
	for _, name := range sortedKeys(m.known) {
		m.drop(ctx, name)
	}
}

func (m *Monitor) drop(ctx context.Context, name string) {
	v, ok := m.known[name]
	if !ok {
		return
	}
	delete(m.known, name)
	if v.present {
		m.emit(ctx, apdu.Event{Kind: apdu.CardRemoved, Reader: name})
	}
	m.emit(ctx, apdu.Event{Kind: apdu.ReaderRemoved, Reader: name})
}

// watch blocks in GetStatusChange until the service fails or ctx ends.
func (m *Monitor) watch(ctx context.Context, sc *scard.Context) error {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
			_ = sc.Cancel() // SCardCancel wakes GetStatusChange
		case <-stop:
		}
	}()

	states, err := m.refresh(ctx, sc, nil)
	if err != nil {
		return err
	}
	quick, rechecks := 0, 0
	asked := make([]scard.ReaderState, 0, len(states))
	for ctx.Err() == nil {
		m.stats.waits.Add(1)
		began := time.Now()
		asked = append(asked[:0], states...)
		err := sc.GetStatusChange(states, -1)
		switch {
		case err == nil:
			if r := m.backwards(states); r != "" && rechecks < maxRechecks {
				// A reader's event count went back: that answer mixed up
				// readers (seen with pcsc-lite when several contexts of one
				// process wait at once). Ask again rather than report a
				// removal and an insertion that never happened.
				rechecks++
				m.stats.rechecks.Add(1)
				m.t.opts.Logger.Debug("pcsc: inconsistent reader states; asking again", "reader", r)
				copy(states, asked)
				continue
			}
			rechecks = 0
			m.confirm(sc, states, asked)
		case errors.Is(err, scard.ErrCancelled):
			if ctx.Err() != nil {
				return nil
			}
			continue
		case errors.Is(err, scard.ErrTimeout):
			continue
		case errors.Is(err, scard.ErrUnknownReader), errors.Is(err, scard.ErrReaderUnavailable):
			if states, err = m.refresh(ctx, sc, states); err != nil {
				return err
			}
			continue
		default:
			return err
		}
		changed, relist := false, false
		for i := range states {
			s := &states[i]
			if s.EventState&scard.StateChanged == 0 {
				continue
			}
			changed = true
			s.CurrentState = s.EventState &^ scard.StateChanged
			if s.Reader == pnpReader {
				relist = true
				continue
			}
			if s.EventState&(scard.StateUnknown|scard.StateIgnore|scard.StateUnavailable) != 0 {
				relist = true // dropped below
				continue
			}
			m.update(ctx, s.Reader, s)
		}
		if relist {
			if states, err = m.refresh(ctx, sc, states); err != nil {
				return err
			}
		}
		// Guard against a platform that returns at once without a change:
		// never spin the CPU.
		if !changed {
			m.stats.idle.Add(1)
			if time.Since(began) < 10*time.Millisecond {
				quick++
				if quick > 3 && !sleep(ctx, m.t.opts.MinBackoff) {
					return nil
				}
				continue
			}
		}
		quick = 0
	}
	return nil
}

// refresh re-lists readers, drops vanished or unusable ones, adds new ones
// and returns the state slice to wait on (PnP pseudo-reader last).
func (m *Monitor) refresh(ctx context.Context, sc *scard.Context, old []scard.ReaderState) ([]scard.ReaderState, error) {
	names, err := sc.ListReaders()
	if errors.Is(err, scard.ErrNoReadersAvailable) {
		names, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	prev := map[string]scard.ReaderState{}
	for _, s := range old {
		prev[s.Reader] = s
	}
	current := map[string]bool{}
	var states []scard.ReaderState
	for _, n := range names {
		s, ok := prev[n]
		if !ok {
			s = scard.ReaderState{Reader: n, CurrentState: scard.StateUnaware}
		}
		states = append(states, s)
	}
	if len(states) > 0 {
		// Learn the state of new readers now, so unusable ones are dropped
		// before anything is reported about them.
		probe := make([]scard.ReaderState, len(states))
		copy(probe, states)
		for i := range probe {
			probe[i].CurrentState = scard.StateUnaware
		}
		if err := sc.GetStatusChange(probe, 0); err != nil && !errors.Is(err, scard.ErrTimeout) {
			if !errors.Is(err, scard.ErrUnknownReader) {
				return nil, err
			}
		}
		kept := states[:0]
		for i, s := range probe {
			if s.EventState&(scard.StateUnknown|scard.StateIgnore|scard.StateUnavailable) != 0 {
				m.t.opts.Logger.Info("pcsc: ignoring reader in unknown state", "reader", s.Reader)
				continue
			}
			current[s.Reader] = true
			st := states[i]
			if _, seen := m.known[s.Reader]; !seen {
				m.known[s.Reader] = readerView{}
				m.emit(ctx, apdu.Event{Kind: apdu.ReaderAdded, Reader: s.Reader})
			}
			m.update(ctx, s.Reader, &probe[i])
			st.CurrentState = probe[i].EventState &^ scard.StateChanged
			kept = append(kept, st)
		}
		states = kept
	}
	for _, name := range sortedKeys(m.known) {
		if !current[name] {
			m.drop(ctx, name)
		}
	}
	pnp := scard.ReaderState{Reader: pnpReader, CurrentState: scard.StateUnaware}
	if len(old) > 0 && old[len(old)-1].Reader == pnpReader {
		pnp = old[len(old)-1]
	}
	// pcsc-lite keeps the reader count in the high word of the PnP state.
	pnp.CurrentState = scard.StateFlag(uint32(len(names)) << 16)
	return append(states, pnp), nil
}

// maxRechecks bounds the answers in a row the monitor asks again for
// (backwards); past it, the answer is taken as it is.
const maxRechecks = 3

// backwards returns the first reader whose changed state carries a card
// event count lower than the one last seen for it (pcsc-lite and WinSCard
// count card events in the high word; the count only grows, modulo 2^16),
// or "" when every count is plausible.
func (m *Monitor) backwards(states []scard.ReaderState) string {
	for i := range states {
		s := &states[i]
		if s.Reader == pnpReader || s.EventState&scard.StateChanged == 0 {
			continue
		}
		v, ok := m.known[s.Reader]
		if !ok || v.events == 0 {
			continue
		}
		if int16(uint16(uint32(s.EventState)>>16)-uint16(v.events)) < 0 {
			return s.Reader
		}
	}
	return ""
}

// confirm asks pcscd again, at once, for the state of every reader whose
// answer would report its card removed or swapped, and takes the new
// answer for those readers: a card (above all the SAM) is not dropped on
// the word of one answer that may have mixed readers up (see backwards).
// asked holds the states the answer was asked against. When the second
// answer fails, or goes back itself, the first one stands.
func (m *Monitor) confirm(sc *scard.Context, states, asked []scard.ReaderState) {
	var idx []int
	for i := range states {
		s := &states[i]
		if s.Reader == pnpReader || s.EventState&scard.StateChanged == 0 {
			continue
		}
		if v, ok := m.known[s.Reader]; ok && v.present {
			if present, swapped := judge(v, s); !present || swapped {
				idx = append(idx, i)
			}
		}
	}
	if len(idx) == 0 {
		return
	}
	probe := make([]scard.ReaderState, len(idx))
	for k, i := range idx {
		probe[k] = scard.ReaderState{Reader: states[i].Reader, CurrentState: scard.StateUnaware}
	}
	if err := sc.GetStatusChange(probe, 0); err != nil && !errors.Is(err, scard.ErrTimeout) {
		return
	}
	for k := range probe {
		probe[k].EventState |= scard.StateChanged // judged like any answer
	}
	if m.backwards(probe) != "" {
		return
	}
	m.stats.confirms.Add(1)
	for k, i := range idx {
		now := probe[k].EventState &^ scard.StateChanged
		states[i].Atr = probe[k].Atr
		states[i].EventState = now
		if now != asked[i].CurrentState {
			states[i].EventState |= scard.StateChanged
		}
	}
}

// judge reads a reader's reported state against what was last emitted
// for it (v): whether a card is present, and whether it is another card
// than the one reported.
func judge(v readerView, s *scard.ReaderState) (present, swapped bool) {
	present = s.EventState&scard.StatePresent != 0 && s.EventState&scard.StateMute == 0
	// The high word of the event state counts card events in the reader
	// (pcsc-lite and WinSCard): a change with the card still present means
	// it was swapped, even for an identical ATR.
	events := uint32(s.EventState) >> 16
	swapped = v.present && present && (!bytes.Equal(s.Atr, v.atr) || (v.events != 0 && events != v.events))
	return present, swapped
}

// update compares a reader's reported state with what was last emitted.
func (m *Monitor) update(ctx context.Context, name string, s *scard.ReaderState) {
	v := m.known[name]
	present, swapped := judge(v, s)
	busy := s.EventState&scard.StateExclusive != 0
	events := uint32(s.EventState) >> 16
	if l := m.t.opts.Logger; l.Enabled(ctx, slog.LevelDebug) {
		l.Debug("pcsc: reader state", "reader", name, "state", fmt.Sprintf("%#x", uint32(s.EventState)), "atr", fmt.Sprintf("%X", s.Atr), "was_present", v.present, "was_events", v.events)
	}
	v.events = events
	switch {
	case present && !v.present:
		v.present, v.atr = true, append([]byte(nil), s.Atr...)
		m.emit(ctx, apdu.Event{Kind: apdu.CardInserted, Reader: name, ATR: v.atr})
	case !present && v.present:
		v.present, v.atr = false, nil
		m.emit(ctx, apdu.Event{Kind: apdu.CardRemoved, Reader: name})
	case swapped:
		m.emit(ctx, apdu.Event{Kind: apdu.CardRemoved, Reader: name})
		v.atr = append([]byte(nil), s.Atr...)
		m.emit(ctx, apdu.Event{Kind: apdu.CardInserted, Reader: name, ATR: v.atr})
	}
	if busy && !v.busy {
		m.emit(ctx, apdu.Event{Kind: apdu.ReaderBusy, Reader: name})
	}
	v.busy = busy
	m.known[name] = v
}

// serviceLost describes why the monitor lost its context. Whatever the
// platform code (pcsc-lite reports a dying pcscd as F_COMM_ERROR,
// NO_SERVICE or even W_SECURITY_VIOLATION, seen in CI), the monitor only
// gets here when its context is unusable, so the event says ErrNoService
// and keeps the code for diagnostics.
func serviceLost(err error) error {
	err = wrap("monitor", "", err)
	var pe *Error
	if errors.As(err, &pe) && pe.Kind != apdu.ErrNoService {
		return &Error{Op: pe.Op, Code: pe.Code, Kind: apdu.ErrNoService, Detail: pe.Kind.Error() + ": " + pe.Detail}
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func sortedKeys(m map[string]readerView) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
