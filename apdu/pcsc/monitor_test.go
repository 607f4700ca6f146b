package pcsc

import (
	"testing"

	"github.com/ebfe/scard"
	"github.com/stretchr/testify/assert"
)

func TestMonitorBackwards(t *testing.T) {
	m := &Monitor{known: map[string]readerView{
		"A": {present: true, events: 675},
		"B": {present: true, events: 23},
		"W": {present: true, events: 0xffff},
		"N": {}, // seen, no count yet
	}}
	st := func(reader string, events uint32, flags scard.StateFlag) scard.ReaderState {
		return scard.ReaderState{Reader: reader, EventState: scard.StateFlag(events<<16) | flags}
	}
	changed := scard.StateChanged | scard.StatePresent
	for _, tc := range []struct {
		name   string
		states []scard.ReaderState
		want   string
	}{
		{"counts grow", []scard.ReaderState{st("A", 676, scard.StateChanged|scard.StateEmpty), st("B", 23, scard.StatePresent)}, ""},
		// the answer seen under load: A got B's state and B got A's
		{"readers mixed up", []scard.ReaderState{st("A", 23, changed), st("B", 676, scard.StateChanged|scard.StateEmpty)}, "A"},
		{"unchanged entries are not judged", []scard.ReaderState{st("A", 23, scard.StatePresent)}, ""},
		{"wraps at 2^16", []scard.ReaderState{st("W", 1, changed)}, ""},
		{"unknown reader", []scard.ReaderState{st("C", 1, changed)}, ""},
		{"no count yet", []scard.ReaderState{st("N", 1, changed)}, ""},
		{"pnp ignored", []scard.ReaderState{st(pnpReader, 0, scard.StateChanged)}, ""},
		{"only the second", []scard.ReaderState{st("A", 677, changed), st("B", 22, changed)}, "B"},
	} {
		assert.Equal(t, tc.want, m.backwards(tc.states), tc.name)
	}
}
