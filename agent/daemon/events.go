package daemon

import (
	"sync"
	"time"

	"kpe-agent/agent/api"
)

// hub fans events out to subscribers (the API's event streams) and keeps
// the last few for a reconnecting client (Last-Event-ID). A subscriber that
// cannot keep up loses events rather than slowing the agent down.
type hub struct {
	mu   sync.Mutex
	seq  uint64
	ring []api.Event
	subs map[chan api.Event]struct{}
	now  func() time.Time
}

const ringSize = 256

func newHub() *hub {
	return &hub{subs: map[chan api.Event]struct{}{}, now: time.Now}
}

func (h *hub) publish(ev api.Event) api.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	ev.Seq = h.seq
	if ev.Time.IsZero() {
		ev.Time = h.now()
	}
	if len(h.ring) == ringSize {
		copy(h.ring, h.ring[1:])
		h.ring = h.ring[:ringSize-1]
	}
	h.ring = append(h.ring, ev)
	for ch := range h.subs {
		select {
		case ch <- ev:
		default: // too slow: this one is lost for it
		}
	}
	return ev
}

// subscribe returns the events after seq still held, and a channel of the
// next ones; cancel ends the subscription.
func (h *hub) subscribe(after uint64) ([]api.Event, <-chan api.Event, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var backlog []api.Event
	if after > 0 {
		for _, ev := range h.ring {
			if ev.Seq > after {
				backlog = append(backlog, ev)
			}
		}
	}
	ch := make(chan api.Event, 64)
	h.subs[ch] = struct{}{}
	return backlog, ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}
}
