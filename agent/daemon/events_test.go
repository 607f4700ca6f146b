package daemon

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"kpe-agent/agent/api"
)

func TestHubBacklogAndSlowSubscriber(t *testing.T) {
	h := newHub()
	for range ringSize + 10 {
		h.publish(api.Event{Type: api.EventReader})
	}
	// a client that saw event 250 gets what came after, from the ring
	backlog, ch, cancel := h.subscribe(250)
	assert.Len(t, backlog, ringSize+10-250)
	assert.Equal(t, uint64(251), backlog[0].Seq)
	// a subscriber that never reads loses events but never blocks the hub
	for range 200 {
		h.publish(api.Event{Type: api.EventSync})
	}
	assert.Len(t, ch, cap(ch))
	cancel()
	cancel() // twice is harmless
	_, ok := <-drain(ch)
	assert.False(t, ok)
	// too old: only what the ring holds
	backlog, _, cancel = h.subscribe(1)
	defer cancel()
	assert.Len(t, backlog, ringSize)
}

func drain(ch <-chan api.Event) <-chan api.Event {
	for len(ch) > 0 {
		<-ch
	}
	return ch
}
