package ktpel_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/ktpel"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/cardsim/kpeapp"
)

type recorder struct {
	t    apdu.Transmitter
	cmds []string
}

func (r *recorder) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	r.cmds = append(r.cmds, strings.ToUpper(hex.EncodeToString(cmd)))
	return r.t.Transmit(ctx, cmd)
}

// chip puts a lab applet with the KTP-el parameters (or, with uid nil, a
// KPE) in an in-memory reader.
func chip(t *testing.T, uid []byte) *recorder {
	t.Helper()
	cfg := kpeapp.Config{Keys: kpe.CardKeys{Enc: make([]byte, 16), MAC: make([]byte, 16)}}
	if uid != nil {
		keys, err := ktpel.DeriveCardKeys(bytes.Repeat([]byte{0x44}, 24), []byte{1, 2, 3, 4})
		require.NoError(t, err)
		cfg = kpeapp.Config{UID: uid, DF: ktpel.FIDDF, Suite: ktpel.Suite, Keys: keys, ATR: kpeapp.ATRKTPel,
			Plain: map[uint16]bool{}, Files: map[uint16][]byte{ktpel.FIDHeader: ktpel.Header{ChipSerial: []byte{1}, Version: 1}.Encode()}}
		for _, fid := range ktpel.PlainEFs() {
			cfg.Plain[fid] = true
		}
	}
	a, err := kpeapp.New(cfg)
	require.NoError(t, err)
	r := cardsim.NewMemReader("ktpel")
	r.Insert(a)
	card, err := r.Connect(context.Background())
	require.NoError(t, err)
	return &recorder{t: card}
}

// Select is FF CA 00 00 00 then 00 A4 00 0C 02 7F 0A, and returns the UID.
func TestSelect(t *testing.T) {
	ctx := context.Background()
	uid := []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	rec := chip(t, uid)
	got, err := ktpel.Select(ctx, apdu.NewClient(rec, apdu.Limits{}))
	require.NoError(t, err)
	require.Equal(t, uid, got)
	require.Equal(t, []string{"FFCA000000", "00A4000C027F0A"}, rec.cmds)
}

// A card that answers no UID, or one of the wrong length, is not a KTP-el:
// nothing is selected after that answer.
func TestSelectNotKTPel(t *testing.T) {
	ctx := context.Background()
	rec := chip(t, nil) // a KPE: the lab's contact card refuses class FF
	_, err := ktpel.Select(ctx, apdu.NewClient(rec, apdu.Limits{}))
	var se *apdu.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, []string{"FFCA000000"}, rec.cmds)

	for _, uid := range [][]byte{{1, 2, 3}, bytes.Repeat([]byte{1}, ktpel.MaxUIDLen+1)} {
		rec := chip(t, uid)
		_, err := ktpel.Select(ctx, apdu.NewClient(rec, apdu.Limits{}))
		require.ErrorIs(t, err, ktpel.ErrUID)
		require.ErrorIs(t, err, apdu.ErrMalformedResponse)
		require.Equal(t, []string{"FFCA000000"}, rec.cmds)
	}
}

func TestGroupsAndPlainEFs(t *testing.T) {
	for dg, fid := range map[int]uint16{ktpel.DGBiodata: ktpel.FIDBiodata, ktpel.DGPhoto: ktpel.FIDPhoto,
		ktpel.DGSignature: ktpel.FIDSignature, ktpel.DGFinger1: ktpel.FIDFinger1, ktpel.DGFinger2: ktpel.FIDFinger2} {
		got, ok := ktpel.GroupFID(dg)
		require.True(t, ok)
		require.Equal(t, fid, got, "DG%d", dg)
	}
	for _, dg := range []int{0, 6} {
		_, ok := ktpel.GroupFID(dg)
		require.False(t, ok, dg)
	}
	require.Equal(t, []uint16{ktpel.FIDHeader}, ktpel.PlainEFs())
	require.Equal(t, 231, ktpel.SMMaxResponseData)
}
