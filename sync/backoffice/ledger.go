package backoffice

import (
	"encoding/hex"
	"slices"
	"time"

	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// counters is one SAM's signature-counter ledger: the highest counter seen
// and the counters below it still missing. A SAM's first counter is 1, so
// everything below the first record seen is missing until it arrives
// (BSI TR-03153's auditor view: every gap in the sequence is visible).
type counters struct {
	Max  uint32       `json:"max"`
	Gaps []wire.Range `json:"gaps,omitempty"` // sorted, disjoint, inclusive
}

// observe records a newly stored counter c (never one stored before) and
// says whether it opened a gap before itself or filled a missing counter.
func (l *counters) observe(c uint32) (gapBefore, fills bool) {
	if c > l.Max {
		if c > l.Max+1 {
			l.Gaps = append(l.Gaps, wire.Range{From: l.Max + 1, To: c - 1})
			gapBefore = true
		}
		l.Max = c
		return gapBefore, false
	}
	i, found := slices.BinarySearchFunc(l.Gaps, c, func(r wire.Range, c uint32) int {
		switch {
		case r.To < c:
			return -1
		case r.From > c:
			return 1
		}
		return 0
	})
	if !found {
		return false, false // not missing: the caller's store said it is new, so this cannot happen
	}
	r := l.Gaps[i]
	switch {
	case r.From == c && r.To == c:
		l.Gaps = slices.Delete(l.Gaps, i, i+1)
	case r.From == c:
		l.Gaps[i].From = c + 1
	case r.To == c:
		l.Gaps[i].To = c - 1
	default:
		l.Gaps[i].To = c - 1
		l.Gaps = slices.Insert(l.Gaps, i+1, wire.Range{From: c + 1, To: r.To})
	}
	return false, true
}

// missing is how many counters are missing.
func (l *counters) missing() uint64 {
	var n uint64
	for _, r := range l.Gaps {
		n += uint64(r.To-r.From) + 1
	}
	return n
}

// linkage is the one rule both stores apply to a record about to be
// stored: its SAM's counter sequence (led is updated) and its place in its
// terminal's hash chain. follows says its previous hash names a stored
// record of the same terminal; terminalRecords is how many records the
// terminal has stored. It returns the record's flags (after the given
// ones), whether it is a chain break, and the alarm it raises, if any.
func linkage(r *record.Record, led *counters, follows bool, terminalRecords int64, now time.Time, flags []string) ([]string, bool, *wire.Alarm) {
	flags = slices.Clone(flags)
	gap, fills := led.observe(r.Counter)
	if gap {
		flags = append(flags, wire.FlagGapBefore)
	}
	if fills {
		flags = append(flags, wire.FlagFillsGap)
	}
	switch {
	case r.PrevHash == [32]byte{}:
		flags = append(flags, wire.FlagChainStart)
		if terminalRecords > 0 {
			return flags, false, &wire.Alarm{Kind: "chain-restart", TerminalID: r.TerminalID, SAMSerial: hex.EncodeToString(r.SAMSerial[:]),
				Counter: r.Counter, Detail: "the terminal started a new record chain (a new or damaged outbox)", At: now}
		}
	case !follows:
		return append(flags, wire.FlagChainBreak), true, nil
	}
	return flags, false, nil
}
