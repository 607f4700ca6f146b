package kpe_test

import (
	"crypto/aes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sm"
)

// TestPurseCryptoSharedWithSM: the purse crypto moved to internal/purse
// derives and MACs exactly as apdu/sm's KDF108 and CMAC, so cards
// personalised before the move keep their keys.
func TestPurseCryptoSharedWithSM(t *testing.T) {
	master := []byte("0123456789abcdef")
	serial := [8]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}
	for kind, label := range map[kpe.PurseKind]string{kpe.PurseDebit: "KPE purse debit", kpe.PurseCredit: "KPE purse credit"} {
		got, err := kpe.DerivePurseKey(kind, master, serial)
		require.NoError(t, err)
		want, err := sm.KDF108CMAC(master, []byte(label), serial[:], 16)
		require.NoError(t, err)
		assert.Equal(t, want, got, kind.String())
		p := kpe.PurseProof{Kind: kind, CardSerial: serial, PTC: 3, Amount: 500, Balance: 1000, SAMTxn: 9}
		mac, err := kpe.PurseMAC(got, p.ProofInput())
		require.NoError(t, err)
		b, err := aes.NewCipher(got)
		require.NoError(t, err)
		assert.Equal(t, sm.CMAC(b, p.ProofInput())[:8], mac[:])
	}
	_, err := kpe.DerivePurseKey(kpe.PurseKind(5), master, serial)
	assert.ErrorIs(t, err, kpe.ErrPurseFormat)
}
