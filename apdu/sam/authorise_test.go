package sam_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
	"kpe-agent/lab/cardsim/samapp"
)

func sampleAuthorisation(tb testing.TB) []byte {
	tb.Helper()
	iss, err := samapp.NewTopUpIssuer("apdu/sam test")
	require.NoError(tb, err)
	a, err := iss.Authorise(kpe.PurseOrder{Kind: kpe.PurseCredit, CardSerial: [8]byte{1}, PTC: 2, Amount: 3, Time: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC).UnixMilli()})
	require.NoError(tb, err)
	return sam.EncodePurseAuthorise(a)
}

// PURSE AUTHORISE's data parses back to what was encoded, needs command
// chaining, and anything else is refused with ErrFormat.
func TestPurseAuthoriseRoundTrip(t *testing.T) {
	b := sampleAuthorisation(t)
	require.Greater(t, len(b), 255, "it goes with command chaining")
	a, err := sam.ParsePurseAuthorise(b)
	require.NoError(t, err)
	require.Equal(t, b, sam.EncodePurseAuthorise(&a))
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"truncated": b[:len(b)-1],
		"trailing":  append(bytes.Clone(b), 0x83, 0x00),
		"too long":  make([]byte, sam.MaxPurseAuthoriseData+1),
	} {
		_, err := sam.ParsePurseAuthorise(bad)
		require.ErrorIs(t, err, sam.ErrFormat, name)
	}
}

// The parser never panics; what it accepts encodes back to the same bytes.
func FuzzParsePurseAuthorise(f *testing.F) {
	b := sampleAuthorisation(f)
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := sam.ParsePurseAuthorise(b)
		if err != nil {
			if !errors.Is(err, sam.ErrFormat) {
				t.Fatalf("error without ErrFormat: %v", err)
			}
			return
		}
		if !bytes.Equal(sam.EncodePurseAuthorise(&a), b) {
			t.Fatalf("an accepted command data does not encode back to itself")
		}
	})
}
