package kpe

import (
	"bytes"
	"errors"
	"testing"
)

// The purse parsers reject hostile input with ErrPurseFormat and never
// panic; what they accept re-encodes to the same bytes.
func fuzzPurse[T any](f *testing.F, seed []byte, parse func([]byte) (T, error), encode func(T) []byte) {
	f.Add(seed)
	f.Add(seed[:len(seed)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parse(b)
		if err != nil {
			if !errors.Is(err, ErrPurseFormat) {
				t.Fatalf("error without ErrPurseFormat: %v", err)
			}
			return
		}
		if !bytes.Equal(encode(v), b) {
			t.Fatalf("%X re-encodes to %X", b, encode(v))
		}
	})
}

func FuzzParsePurseState(f *testing.F) {
	fuzzPurse(f, PurseState{Balance: 5, PTC: 2, MaxBalance: DefaultMaxBalance}.Encode(), ParsePurseState, PurseState.Encode)
}

func FuzzParsePurseLogRecord(f *testing.F) {
	e := PurseLogEntry{Kind: PurseDebit, Amount: 1500, Balance: 8500, PTC: 3, SAMSerial: [8]byte{0x53}, SAMTxn: 9, Time: 1_780_000_000_000}
	fuzzPurse(f, e.Encode(), ParsePurseLogRecord, PurseLogEntry.Encode)
}

func FuzzParsePurseCommand(f *testing.F) {
	c := PurseCommand{Amount: 1500, SAMSerial: [8]byte{0x53}, SAMTxn: 9, Time: -1, MAC: [8]byte{1, 2}}
	fuzzPurse(f, c.Encode(), ParsePurseCommand, PurseCommand.Encode)
}

func FuzzParsePurseAnswer(f *testing.F) {
	fuzzPurse(f, PurseAnswer{Balance: 1, PTC: 2, MAC: [8]byte{3}}.Encode(), ParsePurseAnswer, PurseAnswer.Encode)
}
