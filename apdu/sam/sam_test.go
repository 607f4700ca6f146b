package sam_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"math/big"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"kpe-agent/apdu"
	"kpe-agent/apdu/sam"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/cardsim/samapp"
)

// recorder keeps the commands sent to the card.
type recorder struct {
	t    apdu.Transmitter
	cmds [][]byte
}

func (r *recorder) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	r.cmds = append(r.cmds, bytes.Clone(cmd))
	return r.t.Transmit(ctx, cmd)
}

// labSAM is the lab's SAM applet in an in-memory reader.
func labSAM(t *testing.T) (*recorder, *ecdsa.PrivateKey, [8]byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial := [8]byte{0x53, 0x41, 0x4D, 0, 0, 0, 0, 7}
	a, err := samapp.New(samapp.Config{Serial: serial, ActivationCode: []byte("123456"), Key: key,
		StatePath: filepath.Join(t.TempDir(), "sam.json")})
	require.NoError(t, err)
	r := cardsim.NewMemReader("sam")
	r.Insert(a)
	card, err := r.Connect(context.Background())
	require.NoError(t, err)
	return &recorder{t: card}, key, serial
}

// Select and OpenAID against the lab SAM: the recognition probe is
// 00 A4 04 0C with the AID, and a wrong AID is the card's 6A82.
func TestSelect(t *testing.T) {
	ctx := context.Background()
	rec, _, serial := labSAM(t)
	c := apdu.NewClient(rec, apdu.Limits{})
	require.NoError(t, sam.Select(ctx, c, nil))
	require.Equal(t, append([]byte{0x00, 0xA4, 0x04, 0x0C, 0x08}, sam.AID...), rec.cmds[0])
	require.NoError(t, sam.Select(ctx, c, sam.AID))
	require.ErrorIs(t, sam.Select(ctx, c, []byte{0xF0, 0x4B, 0x50, 0x45, 0x01}), apdu.ErrFileNotFound)
	_, err := sam.OpenAID(ctx, rec, []byte{0xA0, 0, 0, 0, 0x01})
	require.ErrorIs(t, err, apdu.ErrFileNotFound)

	s, err := sam.OpenAID(ctx, rec, sam.AID)
	require.NoError(t, err)
	in, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, sam.Info{Serial: serial, State: sam.Inactive, TriesLeft: 3}, in)
	require.Equal(t, "inactive", in.State.String())
}

// Activation, SIGN RECORD and the counter against the lab SAM, which
// encodes its answers with this package's encoders.
func TestActivateSignCounter(t *testing.T) {
	ctx := context.Background()
	rec, key, serial := labSAM(t)
	s, err := sam.Open(ctx, rec)
	require.NoError(t, err)

	n := len(rec.cmds)
	require.ErrorIs(t, s.Activate(ctx, nil), apdu.ErrInvalidCommand)
	require.Len(t, rec.cmds, n, "an empty code is refused before it costs a try")

	var ae *sam.ActivationError
	require.ErrorAs(t, s.Activate(ctx, []byte("000000")), &ae)
	require.Equal(t, 2, ae.TriesLeft)
	_, err = s.SignRecord(ctx, [32]byte{})
	require.ErrorIs(t, err, sam.ErrNotActivated)
	require.NoError(t, s.Activate(ctx, []byte("123456")))
	in, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, sam.Active, in.State)
	require.Equal(t, 3, in.TriesLeft)

	digest := sha256.Sum256([]byte("record"))
	sig, err := s.SignRecord(ctx, digest)
	require.NoError(t, err)
	require.Equal(t, uint32(1), sig.Counter)
	require.True(t, sig.Verify(&key.PublicKey, digest, serial))
	require.False(t, sig.Verify(&key.PublicKey, digest, [8]byte{}), "the serial is signed")
	n2, err := s.Counter(ctx)
	require.NoError(t, err)
	require.Equal(t, uint32(1), n2)
}

func TestInfoEncoding(t *testing.T) {
	in := sam.Info{Serial: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, State: sam.Blocked, TriesLeft: 0, Counter: 0x01020304}
	b := in.Encode()
	require.Equal(t, []byte{0x70, 0x16, 0x80, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x81, 0x01, 0x02, 0x82, 0x01, 0x00, 0x83, 0x04, 1, 2, 3, 4}, b)
	got, err := sam.ParseInfo(b)
	require.NoError(t, err)
	require.Equal(t, in, got)
	for _, bad := range [][]byte{nil, {0x71, 0x00}, {0x70, 0x03, 0x81, 0x01, 0x03}, b[:len(b)-1]} {
		_, err := sam.ParseInfo(bad)
		require.ErrorIs(t, err, sam.ErrFormat, "%X", bad)
	}
	require.Equal(t, "State(9)", sam.State(9).String())
}

func TestSignatureEncoding(t *testing.T) {
	sig := sam.Signature{Counter: 0x0A0B0C0D, R: big.NewInt(1), S: new(big.Int).Lsh(big.NewInt(1), 255)}
	b, err := sig.Bytes()
	require.NoError(t, err)
	require.Len(t, b, sam.SignatureLen)
	require.Equal(t, []byte{0x0A, 0x0B, 0x0C, 0x0D}, b[:4])
	require.Equal(t, byte(1), b[35])
	require.Equal(t, byte(0x80), b[36])
	back, err := sam.ParseSignature(b)
	require.NoError(t, err)
	require.Equal(t, sig.Counter, back.Counter)
	require.Zero(t, sig.R.Cmp(back.R))
	require.Zero(t, sig.S.Cmp(back.S))
	_, err = sam.ParseSignature(b[1:])
	require.ErrorIs(t, err, sam.ErrFormat)
	for _, bad := range []sam.Signature{{}, {R: big.NewInt(-1), S: big.NewInt(1)}, {R: big.NewInt(1), S: new(big.Int).Lsh(big.NewInt(1), 256)}} {
		_, err := bad.Bytes()
		require.ErrorIs(t, err, sam.ErrFormat)
	}
	require.False(t, sam.Signature{}.Verify(&ecdsa.PublicKey{}, [32]byte{}, [8]byte{}))

	msg := sam.SignedMessage([32]byte{0xAA}, 0x01020304, [8]byte{9})
	require.Len(t, msg, 32+4+8)
	require.Equal(t, byte(0xAA), msg[0])
	require.Equal(t, uint32(0x01020304), binary.BigEndian.Uint32(msg[32:36]))
	require.Equal(t, byte(9), msg[36])
}

func TestPair(t *testing.T) {
	data := sam.EncodePair([]byte{1, 2}, []byte{3})
	require.Equal(t, []byte{0x80, 0x02, 1, 2, 0x81, 0x01, 3}, data)
	a, b, err := sam.ParsePair(data)
	require.NoError(t, err)
	require.Equal(t, []byte{1, 2}, a)
	require.Equal(t, []byte{3}, b)
	a, b, err = sam.ParsePair([]byte{0x81, 0x01, 3, 0x80, 0x00})
	require.NoError(t, err, "any order")
	require.Empty(t, a)
	require.Equal(t, []byte{3}, b)
	for _, bad := range [][]byte{nil, {0x80, 0x01, 1}, {0x80, 0x05, 1}} {
		_, _, err := sam.ParsePair(bad)
		require.ErrorIs(t, err, sam.ErrFormat, "%X", bad)
	}
}

// labSAMWith is the lab's SAM applet with an institution pseudonym key
// (nil: none), activated.
func labSAMWith(t *testing.T, pseudonymKey []byte) *sam.SAM {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	a, err := samapp.New(samapp.Config{Serial: [8]byte{0x53, 0x41, 0x4D, 0, 0, 0, 0, 8}, ActivationCode: []byte("123456"), Key: key,
		StatePath: filepath.Join(t.TempDir(), "sam.json"), PseudonymKey: pseudonymKey})
	require.NoError(t, err)
	r := cardsim.NewMemReader("sam")
	r.Insert(a)
	card, err := r.Connect(context.Background())
	require.NoError(t, err)
	s, err := sam.Open(context.Background(), card)
	require.NoError(t, err)
	return s
}

// PSEUDONYM: HMAC-SHA-256 under the SAM's institution pseudonym key of
// the domain byte ‖ the value, computed inside the SAM; the same as
// PseudonymOf on the host with that key; one domain's pseudonym is not
// another's; bad arguments are refused before anything is sent; a SAM
// without the key (or without the command) is ErrNoPseudonym.
func TestPseudonym(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{0x5A}, 32)
	s := labSAMWith(t, key)
	nik := []byte("3174096112900001")

	_, err := s.Pseudonym(ctx, sam.DomainNIK, nik)
	require.ErrorIs(t, err, sam.ErrNotActivated, "the terminal activation comes first")
	require.NoError(t, s.Activate(ctx, []byte("123456")))

	got, err := s.Pseudonym(ctx, sam.DomainNIK, nik)
	require.NoError(t, err)
	m := hmac.New(sha256.New, key)
	m.Write(append([]byte{0x01}, nik...))
	require.Equal(t, m.Sum(nil), got[:], "HMAC-SHA-256(key, 01 ‖ NIK)")
	require.Equal(t, sam.PseudonymOf(key, sam.DomainNIK, nik), got)
	again, err := s.Pseudonym(ctx, sam.DomainNIK, nik)
	require.NoError(t, err)
	require.Equal(t, got, again, "stable")

	uid, err := s.Pseudonym(ctx, sam.DomainChipUID, nik)
	require.NoError(t, err)
	require.NotEqual(t, got, uid, "domain-separated")
	require.Equal(t, sam.PseudonymOf(key, sam.DomainChipUID, nik), uid)
	require.NotEqual(t, sam.PseudonymOf(bytes.Repeat([]byte{0x5B}, 32), sam.DomainNIK, nik), got, "keyed")

	for name, bad := range map[string]struct {
		d sam.Domain
		v []byte
	}{
		"no value":       {sam.DomainNIK, nil},
		"value too long": {sam.DomainChipUID, make([]byte, sam.MaxPseudonymInput+1)},
		"unknown domain": {sam.Domain(9), nik},
		"zero domain":    {sam.Domain(0), nik},
	} {
		_, err := s.Pseudonym(ctx, bad.d, bad.v)
		require.ErrorIs(t, err, apdu.ErrInvalidCommand, name)
	}
	_, err = s.Pseudonym(ctx, sam.DomainChipUID, make([]byte, sam.MaxPseudonymInput))
	require.NoError(t, err, "the longest value")

	none := labSAMWith(t, nil)
	require.NoError(t, none.Activate(ctx, []byte("123456")))
	_, err = none.Pseudonym(ctx, sam.DomainNIK, nik)
	require.ErrorIs(t, err, sam.ErrNoPseudonym)
	require.ErrorIs(t, err, apdu.ErrReferenceNotFound)
}

// ParsePseudonym takes exactly 32 bytes.
func TestParsePseudonym(t *testing.T) {
	b := bytes.Repeat([]byte{7}, sam.PseudonymLen)
	p, err := sam.ParsePseudonym(b)
	require.NoError(t, err)
	require.Equal(t, b, p[:])
	for _, bad := range [][]byte{nil, b[1:], append(b, 0)} {
		_, err := sam.ParsePseudonym(bad)
		require.ErrorIs(t, err, sam.ErrFormat, "%d bytes", len(bad))
	}
	require.Equal(t, "nik", sam.DomainNIK.String())
	require.Equal(t, "chip-uid", sam.DomainChipUID.String())
	require.Equal(t, "Domain(9)", sam.Domain(9).String())
}
