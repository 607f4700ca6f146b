package kpeapp_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/pcsc"
	"kpe-agent/apdu/sam"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/pcsctest"
)

// throughPCSC puts card in the lab's first reader and samApplet in the
// second, connects to both through real pcscd, activates the SAM and
// begins a transaction on the card; everything is closed at the end of
// the test.
func throughPCSC(t *testing.T, card, samApplet cardsim.Card) (context.Context, apdu.Card, *sam.SAM) {
	t.Helper()
	lab := pcsctest.Lab(t)
	require.NoError(t, lab.Insert(0, card))
	require.NoError(t, lab.Insert(1, samApplet))
	pcsctest.WaitCard(t, pcsctest.Slot0, true, 15*time.Second)
	pcsctest.WaitCard(t, pcsctest.Slot1, true, 15*time.Second)
	tr := pcsc.New(pcsc.Options{})
	t.Cleanup(func() { tr.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	c, err := tr.Connect(ctx, pcsctest.Slot0)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	samCard, err := tr.Connect(ctx, pcsctest.Slot1)
	require.NoError(t, err)
	t.Cleanup(func() { samCard.Close() })
	s, err := sam.Open(ctx, samCard)
	require.NoError(t, err)
	require.NoError(t, s.Activate(ctx, []byte("123456")))
	require.NoError(t, c.BeginTransaction(ctx))
	t.Cleanup(func() { c.EndTransaction() })
	return ctx, c, s
}

// Through real pcscd: a genuine KPE, a clone and a tampered card each get
// their own verdict.
func TestIntegrationKPEVerdicts(t *testing.T) {
	pcsctest.Require(t)
	is := newIssuer(t)
	for _, tc := range []struct {
		name  string
		check func(t *testing.T, c *kpe.Card)
	}{
		{"genuine", func(t *testing.T, c *kpe.Card) {
			require.True(t, c.Verification.CardAuthentic.OK)
			require.True(t, c.Verification.DataAuthentic.OK, c.Verification.DataAuthentic.Reason)
			require.Equal(t, "196608011988031001", c.Identity.NIP)
			require.Len(t, c.Photo, 12000)
		}},
		{"clone", func(t *testing.T, c *kpe.Card) {
			require.False(t, c.Verification.CardAuthentic.OK, "a clone is never reported genuine")
			require.Empty(t, c.Identity.NIP)
		}},
		{"tampered", func(t *testing.T, c *kpe.Card) {
			require.True(t, c.Verification.CardAuthentic.OK)
			require.Equal(t, []int{kpe.DGEmployment}, c.Verification.FailedGroups)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := sampleCard(t, is, master, nil)
			switch tc.name {
			case "clone":
				a = sampleCard(t, is, bytes.Repeat([]byte{0x99}, 16), nil)
			case "tampered":
				a = sampleCard(t, is, master, func(f map[uint16][]byte) {
					f[kpe.FIDEmployment] = kpe.Employment{Status: "PNS", GolonganRuang: "IV/e"}.Encode()
				})
			}
			ctx, card, s := throughPCSC(t, a, newLabSAM(t))
			// The production path: the SAM in the second reader authenticates
			// the card; the master key never leaves it.
			got, err := kpe.Read(ctx, card, s, kpe.ReadOptions{Photo: true, Roots: is.roots, Now: now})
			require.NoError(t, err)
			tc.check(t, got)
		})
	}
}

// Through real pcscd: the lab SAM in the second reader opens the update
// session, WriteUpdate renews DG2 and DG3, and the card read back
// verifies with the new groups and reports the update.
func TestIntegrationWriteUpdate(t *testing.T) {
	pcsctest.Require(t)
	is := newIssuer(t)
	a := renewableCard(t, is)
	u, _ := renewal(t, is, a, 1, "IV/d")
	ctx, card, s := throughPCSC(t, a, newLabSAMWithUpdate(t))
	require.NoError(t, kpe.WriteUpdate(ctx, card, s, updSerial, u, kpe.WriteOptions{}))
	got, err := kpe.Read(ctx, card, s, kpe.ReadOptions{Roots: is.roots, Now: now})
	require.NoError(t, err)
	require.True(t, got.Verification.DataAuthentic.OK, got.Verification.DataAuthentic.Reason)
	require.Equal(t, "IV/d", got.Employment.GolonganRuang)
	require.Equal(t, kpe.UpdateStatus{Supported: true, Sequence: 1, LastID: u.ID}, got.Update)
}
