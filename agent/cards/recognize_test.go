package cards_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/cards"
	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/ktpel"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/cardsim/kpeapp"
	"kpe-agent/lab/cardsim/samapp"
)

// recordingCard keeps the commands recognition sends.
type recordingCard struct {
	apdu.Card
	cmds []string
}

func (c *recordingCard) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	c.cmds = append(c.cmds, strings.ToUpper(hex.EncodeToString(cmd)))
	return c.Card.Transmit(ctx, cmd)
}

func inReader(t *testing.T, c cardsim.Card) *recordingCard {
	t.Helper()
	r := cardsim.NewMemReader("recognize")
	r.Insert(c)
	card, err := r.Connect(context.Background())
	require.NoError(t, err)
	return &recordingCard{Card: card}
}

// Recognition through the profiles' Select, in the order the ATR hints
// at, byte for byte (docs/card-profiles.md §5).
func TestRecognizeOrderAndCommands(t *testing.T) {
	const (
		selectKPE = "00A4040C05F04B504501"
		selectSAM = "00A4040C08F04B5045" + "53414D01"
		getUID    = "FFCA000000"
		selectDF  = "00A4000C027F0A"
	)
	ctx := context.Background()
	keys, err := kpe.DeriveCardKeys(bytes.Repeat([]byte{0x4B}, 16), [8]byte{1})
	require.NoError(t, err)
	kpeCard, err := kpeapp.New(kpeapp.Config{ATR: kpeapp.ATRKPE, Keys: keys})
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	samCard, err := samapp.New(samapp.Config{ATR: samapp.ATRSAM, ActivationCode: []byte("1"), Key: key, StatePath: filepath.Join(t.TempDir(), "sam.json")})
	require.NoError(t, err)
	chip := func(uid []byte) cardsim.Card {
		k, err := ktpel.DeriveCardKeys(bytes.Repeat([]byte{0x44}, 24), []byte{1, 2, 3, 4})
		require.NoError(t, err)
		a, err := kpeapp.New(kpeapp.Config{ATR: kpeapp.ATRKTPel, UID: uid, DF: ktpel.FIDDF, Suite: ktpel.Suite, Keys: k})
		require.NoError(t, err)
		return a
	}

	for _, tc := range []struct {
		name string
		card cardsim.Card
		kind cards.Kind
		cmds []string
	}{
		{"KPE, no hint", kpeCard, cards.KindKPE, []string{selectKPE}},
		{"SAM, hinted by its ATR", samCard, cards.KindSAM, []string{selectSAM}},
		{"KTP-el, contactless ATR", chip([]byte{4, 1, 2, 3, 4, 5, 6}), cards.KindKTPel, []string{getUID, selectDF}},
		// A UID outside 4..10 bytes is not a KTP-el: the DF is not
		// selected and the other profiles are tried.
		{"contactless chip with a 3-byte UID", chip([]byte{1, 2, 3}), cards.KindUnknown, []string{getUID, selectKPE, selectSAM}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			card := inReader(t, tc.card)
			kind, err := cards.Recognize(ctx, card, cards.DefaultProfiles)
			require.NoError(t, err)
			require.Equal(t, tc.kind, kind)
			require.Equal(t, tc.cmds, card.cmds)
		})
	}

	// Recognition selects the configured SAM AID: a profile whose SAM AID
	// the card does not hold does not recognise the lab SAM.
	p := cards.DefaultProfiles
	p.SAMAID = []byte{0xF0, 0x4B, 0x50, 0x45, 0x53, 0x41, 0x4D, 0x02}
	card := inReader(t, samCard)
	r, err := cards.Read(ctx, card, nil, cards.Options{Profiles: p})
	require.NoError(t, err)
	require.Equal(t, cards.KindUnknown, r.Kind)
}
