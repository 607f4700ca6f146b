package record_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/record"
)

var (
	curveN = elliptic.P256().Params().N
	halfN  = new(big.Int).Rsh(curveN, 1)
)

func highS(sig [64]byte) bool { return new(big.Int).SetBytes(sig[32:]).Cmp(halfN) > 0 }

// malleate replaces s by n - s: the other valid signature on the same
// message with the same r.
func malleate(sig [64]byte) [64]byte {
	s := new(big.Int).SetBytes(sig[32:])
	new(big.Int).Sub(curveN, s).FillBytes(sig[32:])
	return sig
}

// highSigner answers like a SAM that happens to return the high s.
type highSigner struct{ *record.SoftwareSigner }

func (h highSigner) Sign(ctx context.Context, d [32]byte) (uint32, [64]byte, error) {
	c, sig, err := h.SoftwareSigner.Sign(ctx, d)
	if !highS(sig) {
		sig = malleate(sig)
	}
	return c, sig, err
}

// Every signer path gives low s: the software signer itself, and Seal with
// a signer (a SAM) that answers the high one.
func TestSignersProduceLowS(t *testing.T) {
	s := signer(t)
	for i := 0; i < 64; i++ {
		_, sig, err := s.Sign(context.Background(), [32]byte{byte(i)})
		require.NoError(t, err)
		require.False(t, highS(sig), "software signature %d has high s", i)
	}
	r := sample()
	require.NoError(t, record.Seal(context.Background(), r, highSigner{s}))
	assert.False(t, highS(r.Signature), "Seal keeps the signer's high s")
	require.NoError(t, r.Verify(&s.Key.PublicKey))
}

// A version-2 record with the high s is refused by Decode: there is one
// encoding per record, signature included.
func TestDecodeRefusesHighS(t *testing.T) {
	s := signer(t)
	r := sample()
	require.NoError(t, record.Seal(context.Background(), r, s))
	b, err := r.Encode()
	require.NoError(t, err)
	twin := r.Signature
	twin = malleate(twin)
	tb := append(append([]byte{}, b[:len(b)-32]...), twin[32:]...)
	_, err = record.Decode(tb)
	require.Error(t, err, "the malleated twin decodes")
	assert.ErrorIs(t, err, record.ErrFormat)
	assert.ErrorIs(t, err, record.ErrHighS)
	var fe *record.FormatError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, len(b)-66, fe.Offset, "the offset of the signature field")

	// the same record in memory with the high s neither verifies nor encodes
	tw := *r
	tw.Signature = twin
	err = tw.Verify(&s.Key.PublicKey)
	assert.ErrorIs(t, err, record.ErrSignature)
	assert.ErrorIs(t, err, record.ErrHighS)
	_, err = tw.Encode()
	assert.ErrorIs(t, err, record.ErrInvalid)
	assert.ErrorIs(t, err, record.ErrHighS)
	// LowS gives the record's one signature back
	assert.Equal(t, r.Signature, record.LowS(twin))
	assert.Equal(t, r.Signature, record.LowS(r.Signature))
}

// The hash (and so the code and the chain) of a version-2 record is that of
// its signed content: another signature on the same content does not change
// it.
func TestHashIgnoresSignature(t *testing.T) {
	s := signer(t)
	r := sample()
	require.NoError(t, record.Seal(context.Background(), r, s))
	h, err := r.Hash()
	require.NoError(t, err)
	for name, sig := range map[string][64]byte{"n - s": malleate(r.Signature), "other bytes": {1, 2, 3}} {
		tw := *r
		tw.Signature = sig
		th, err := tw.Hash()
		require.NoError(t, err, name)
		assert.Equal(t, h, th, name)
		assert.Equal(t, record.CodeOf(h), record.CodeOf(th), name)
	}
	// the content still counts: another counter is another record
	other := *r
	other.Counter++
	oh, err := other.Hash()
	require.NoError(t, err)
	assert.NotEqual(t, h, oh)
}

func legacy(t testing.TB) map[string]string {
	f, err := os.Open("testdata/legacy-v1.txt")
	require.NoError(t, err)
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<16)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	require.NoError(t, sc.Err())
	return out
}

func unhex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

// Version-1 records, as the version-1 code wrote them, are read as before:
// both signatures, the high s too, decode and verify, re-encode to the same
// bytes, and keep the code that was printed for them.
func TestLegacyV1(t *testing.T) {
	g := legacy(t)
	k, err := x509.ParsePKIXPublicKey(unhex(t, g["pub"]))
	require.NoError(t, err)
	pub := k.(*ecdsa.PublicKey)
	for _, v := range []struct{ enc, code string }{{"enc", "code"}, {"twin", "twincode"}} {
		enc := unhex(t, g[v.enc])
		r, err := record.Decode(enc)
		require.NoError(t, err, v.enc)
		require.NoError(t, r.Verify(pub), v.enc)
		again, err := r.Encode()
		require.NoError(t, err, v.enc)
		assert.Equal(t, enc, again, v.enc)
		h, err := r.Hash()
		require.NoError(t, err, v.enc)
		assert.Equal(t, sha256.Sum256(enc), h, "%s: the version-1 hash is that of the whole encoding", v.enc)
		assert.Equal(t, g[v.code], record.CodeOf(h).String(), v.enc)
		hb, err := record.HashOf(enc)
		require.NoError(t, err)
		assert.Equal(t, h, hb, v.enc)
		assert.Equal(t, uint8(record.VersionLegacy), r.Version, v.enc)
	}

	// the twins are one record: the same content hash
	a, err := record.Decode(unhex(t, g["enc"]))
	require.NoError(t, err)
	b, err := record.Decode(unhex(t, g["twin"]))
	require.NoError(t, err)
	ca, err := a.ContentHash()
	require.NoError(t, err)
	cb, err := b.ContentHash()
	require.NoError(t, err)
	assert.Equal(t, ca, cb)

	// sealing again writes version 2
	s := signer(t)
	require.NoError(t, record.Seal(context.Background(), a, s))
	assert.Equal(t, uint8(record.Version), a.Version)
	enc, err := a.Encode()
	require.NoError(t, err)
	assert.Equal(t, []byte{'K', 'P', 'R', 2}, enc[:4])
}

// A version-2 record's hash is its content hash, and HashOf agrees.
func TestHashV2IsContentHash(t *testing.T) {
	r := sample()
	require.NoError(t, record.Seal(context.Background(), r, signer(t)))
	enc, err := r.Encode()
	require.NoError(t, err)
	assert.Equal(t, []byte{'K', 'P', 'R', 2}, enc[:4], "Seal writes version 2")
	h, err := r.Hash()
	require.NoError(t, err)
	c, err := r.ContentHash()
	require.NoError(t, err)
	assert.Equal(t, c, h)
	want := sha256.Sum256(append([]byte("KPE-RECORD-CONTENT\x00"), enc[:len(enc)-66]...))
	assert.Equal(t, want, h, "the documented bytes")
	hb, err := record.HashOf(enc)
	require.NoError(t, err)
	assert.Equal(t, h, hb)
	_, err = record.HashOf(enc[:10])
	assert.ErrorIs(t, err, record.ErrFormat)

	r.Version = 7
	_, err = r.Encode()
	assert.ErrorIs(t, err, record.ErrInvalid)
}

// HashesOf gives, from the bytes alone, what Hash and ContentHash give
// from the decoded record, for both versions; a frame that is not a
// sealed record's is ErrFormat.
func TestHashesOfMatchesTheRecord(t *testing.T) {
	g := legacy(t)
	for name, enc := range map[string][]byte{"v2": sealed(t), "v1": unhex(t, g["enc"]), "v1-twin": unhex(t, g["twin"])} {
		r, err := record.Decode(enc)
		require.NoError(t, err, name)
		wantHash, err := r.Hash()
		require.NoError(t, err, name)
		wantContent, err := r.ContentHash()
		require.NoError(t, err, name)
		hash, content, err := record.HashesOf(enc)
		require.NoError(t, err, name)
		assert.Equal(t, wantHash, hash, name)
		assert.Equal(t, wantContent, content, name)
	}
	enc := sealed(t)
	for name, bad := range map[string][]byte{
		"empty":         nil,
		"short":         enc[:40],
		"magic":         append([]byte("XPR"), enc[3:]...),
		"version":       append([]byte{'K', 'P', 'R', 9}, enc[4:]...),
		"no signature":  enc[:len(enc)-1],
		"trailing byte": append(append([]byte(nil), enc...), 0),
	} {
		_, _, err := record.HashesOf(bad)
		assert.ErrorIs(t, err, record.ErrFormat, name)
	}
}
