package purse_test

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/purse"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

// TestMACKnownAnswers checks the AES-CMAC against NIST SP 800-38B's
// AES-128 examples (empty, one block, 40 bytes), truncated to 8 bytes.
func TestMACKnownAnswers(t *testing.T) {
	key := unhex(t, "2b7e151628aed2a6abf7158809cf4f3c")
	msg := unhex(t, "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411")
	for _, c := range []struct {
		n    int
		want string
	}{{0, "bb1d6929e9593728"}, {16, "070a16b46b4d4144"}, {40, "dfa66747de9ae630"}} {
		got, err := purse.MAC(key, msg[:c.n])
		require.NoError(t, err)
		assert.Equal(t, c.want, hex.EncodeToString(got[:]), "message of %d bytes", c.n)
	}
	_, err := purse.MAC(key[:5], nil)
	assert.ErrorIs(t, err, purse.ErrFormat)
}

func TestProofSignVerify(t *testing.T) {
	dm, cm := unhex(t, "000102030405060708090a0b0c0d0e0f"), unhex(t, "f0e0d0c0b0a090807060504030201000")
	p := purse.Proof{Kind: purse.Debit, CardSerial: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, PTC: 7, Amount: 15000, Balance: 85000,
		SAMSerial: [8]byte{9, 9, 9, 9, 9, 9, 9, 9}, SAMTxn: 42}
	mac, err := p.Sign(dm)
	require.NoError(t, err)
	p.MAC = mac
	ok, err := p.Verify(dm)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = p.Verify(cm) // the other master
	require.NoError(t, err)
	assert.False(t, ok)
	other := p
	other.CardSerial[0] ^= 1 // a proof from another card
	ok, _ = other.Verify(dm)
	assert.False(t, ok)
	other = p
	other.Balance++ // a changed balance
	ok, _ = other.Verify(dm)
	assert.False(t, ok)
	// keys differ per card and per kind
	k1, err := purse.DeriveKey(purse.Debit, dm, [8]byte{1})
	require.NoError(t, err)
	k2, _ := purse.DeriveKey(purse.Debit, dm, [8]byte{2})
	k3, _ := purse.DeriveKey(purse.Credit, dm, [8]byte{1})
	assert.Len(t, k1, 16)
	assert.NotEqual(t, k1, k2)
	assert.NotEqual(t, k1, k3)
	_, err = purse.DeriveKey(purse.Kind(3), dm, [8]byte{1})
	assert.ErrorIs(t, err, purse.ErrFormat)
	_, err = purse.Proof{Kind: 9}.Verify(dm)
	assert.ErrorIs(t, err, purse.ErrFormat)
}

func TestParseKeys(t *testing.T) {
	good := `{"debit_master": "000102030405060708090a0b0c0d0e0f", "credit_master": "F0E0D0C0B0A090807060504030201000"}`
	k, err := purse.ParseKeys([]byte(good))
	require.NoError(t, err)
	assert.Equal(t, unhex(t, "000102030405060708090a0b0c0d0e0f"), k.Master(purse.Debit))
	assert.Equal(t, unhex(t, "f0e0d0c0b0a090807060504030201000"), k.Master(purse.Credit))
	assert.Nil(t, k.Master(7))
	for name, bad := range map[string]string{
		"not json":      `debit`,
		"missing":       `{"debit_master": "000102030405060708090a0b0c0d0e0f"}`,
		"unknown field": `{"debit_master": "000102030405060708090a0b0c0d0e0f", "credit_master": "000102030405060708090a0b0c0d0e0f", "x": 1}`,
		"duplicate":     `{"debit_master": "000102030405060708090a0b0c0d0e0f", "debit_master": "000102030405060708090a0b0c0d0e0f", "credit_master": "000102030405060708090a0b0c0d0e0f"}`,
		"case folded":   `{"Debit_Master": "000102030405060708090a0b0c0d0e0f", "credit_master": "000102030405060708090a0b0c0d0e0f"}`,
		"short":         `{"debit_master": "0001", "credit_master": "000102030405060708090a0b0c0d0e0f"}`,
		"not hex":       `{"debit_master": "zz0102030405060708090a0b0c0d0e0f", "credit_master": "000102030405060708090a0b0c0d0e0f"}`,
		"trailing":      good + `{}`,
	} {
		_, err := purse.ParseKeys([]byte(bad))
		assert.ErrorIs(t, err, purse.ErrKeysFile, name)
	}
}

func TestLoadKeysMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "purse-keys.json")
	raw := `{"debit_master": "000102030405060708090a0b0c0d0e0f", "credit_master": "f0e0d0c0b0a090807060504030201000"}`
	require.NoError(t, os.WriteFile(path, []byte(raw), 0o644))
	_, err := purse.LoadKeys(path)
	assert.ErrorIs(t, err, purse.ErrKeysMode)
	k, err := purse.LoadLabKeys(path)
	require.NoError(t, err)
	assert.Len(t, k.Debit, 16)
	require.NoError(t, os.Chmod(path, 0o600))
	_, err = purse.LoadKeys(path)
	require.NoError(t, err)
	_, err = purse.LoadKeys(filepath.Join(dir, "absent.json"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = purse.LoadLabKeys(dir)
	assert.ErrorIs(t, err, purse.ErrKeysFile)
}

func FuzzParseKeys(f *testing.F) {
	f.Add([]byte(`{"debit_master": "000102030405060708090a0b0c0d0e0f", "credit_master": "f0e0d0c0b0a090807060504030201000"}`))
	f.Add([]byte(`{"debit_master": ""}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		k, err := purse.ParseKeys(raw)
		if err != nil {
			if k != nil {
				t.Fatal("keys with an error")
			}
			return
		}
		if len(k.Debit) != 16 || len(k.Credit) != 16 {
			t.Fatalf("masters of %d and %d bytes", len(k.Debit), len(k.Credit))
		}
	})
}
