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

// judge decides which answers confirm asks again about: a present card
// reported gone or swapped, not a flag of the same card changing.
func TestMonitorJudge(t *testing.T) {
	atr := []byte{0x3b, 0x8d}
	known := readerView{present: true, atr: atr, events: 675}
	st := func(events uint32, flags scard.StateFlag, atr []byte) *scard.ReaderState {
		return &scard.ReaderState{EventState: scard.StateFlag(events<<16) | flags, Atr: atr}
	}
	for _, tc := range []struct {
		name             string
		v                readerView
		s                *scard.ReaderState
		present, swapped bool
	}{
		{"same card, now in use", known, st(675, scard.StatePresent|scard.StateInuse, atr), true, false},
		{"card gone", known, st(676, scard.StateEmpty, nil), false, false},
		{"mute card counts as gone", known, st(675, scard.StatePresent|scard.StateMute, atr), false, false},
		{"another ATR", known, st(675, scard.StatePresent, []byte{0x3b, 0x8f}), true, true},
		{"same ATR, events moved", known, st(677, scard.StatePresent, atr), true, true},
		{"inserted into an empty reader", readerView{}, st(1, scard.StatePresent, atr), true, false},
	} {
		present, swapped := judge(tc.v, tc.s)
		assert.Equal(t, tc.present, present, tc.name)
		assert.Equal(t, tc.swapped, swapped, tc.name)
	}
}
