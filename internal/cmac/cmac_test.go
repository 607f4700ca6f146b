package cmac_test

import (
	"crypto/aes"
	"crypto/des"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/cmac"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

// NIST SP 800-38B's examples: AES-128 (empty, one block, 40 bytes, 64
// bytes) and three-key TDEA (empty, 8 bytes, 20 bytes).
func TestSumKnownAnswers(t *testing.T) {
	aesKey := unhex(t, "2b7e151628aed2a6abf7158809cf4f3c")
	msg := unhex(t, "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	b, err := aes.NewCipher(aesKey)
	require.NoError(t, err)
	for _, c := range []struct {
		n    int
		want string
	}{{0, "bb1d6929e95937287fa37d129b756746"}, {16, "070a16b46b4d4144f79bdd9dd04a287c"}, {40, "dfa66747de9ae63030ca32611497c827"}, {64, "51f0bebf7e3b9d92fc49741779363cfe"}} {
		assert.Equal(t, c.want, hex.EncodeToString(cmac.Sum(b, msg[:c.n])), "AES, %d bytes", c.n)
	}
	d, err := des.NewTripleDESCipher(unhex(t, "8aa83bf8cbda10620bc1bf19fbb6cd58bc313d4a371ca8b5"))
	require.NoError(t, err)
	tmsg := unhex(t, "6bc1bee22e409f96e93d7e117393172aae2d8a57")
	assert.Equal(t, "b7a688e122ffaf95", hex.EncodeToString(cmac.Sum(d, nil)), "TDEA, empty")
	assert.Equal(t, "8e8f293136283797", hex.EncodeToString(cmac.Sum(d, tmsg[:8])), "TDEA, 8 bytes")
	assert.Equal(t, "743ddbe0ce2dc2ed", hex.EncodeToString(cmac.Sum(d, tmsg)), "TDEA, 20 bytes")
}

func TestKDF108(t *testing.T) {
	key := unhex(t, "000102030405060708090a0b0c0d0e0f")
	k1, err := cmac.KDF108(key, []byte("label"), []byte("context"), 16)
	require.NoError(t, err)
	k2, err := cmac.KDF108(key, []byte("label"), []byte("context"), 40)
	require.NoError(t, err)
	assert.Len(t, k2, 40)
	assert.NotEqual(t, k1, k2[:16], "L is part of every block's input")
	k3, err := cmac.KDF108(key, []byte("label"), []byte("contexu"), 16)
	require.NoError(t, err)
	assert.NotEqual(t, k1, k3)
	for _, n := range []int{0, -1, 1<<16 + 1} {
		_, err := cmac.KDF108(key, nil, nil, n)
		assert.ErrorIs(t, err, cmac.ErrKDF, "length %d", n)
	}
	_, err = cmac.KDF108(key[:5], nil, nil, 16)
	assert.ErrorIs(t, err, cmac.ErrKDF)
}
