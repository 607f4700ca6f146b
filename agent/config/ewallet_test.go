package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ewallet: off by default with the regulation's defaults; on, it needs a
// merchant; every amount is bounded at its edges.
func TestEWallet(t *testing.T) {
	c, err := Load(Source{File: writeFile(t, minimal)})
	require.NoError(t, err)
	require.False(t, c.EWalletOn())
	require.False(t, c.TopUpOn())
	require.Equal(t, EWallet{MaxPayment: 20_000_000, FingerprintAbove: 500_000, MaxBalance: 20_000_000, TopUp: true, TopUpTimeout: 10 * time.Second}, c.EWallet)

	_, err = Load(Source{File: writeFile(t, minimal+"ewallet:\n  enabled: true\n")})
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "ewallet.merchant_id")

	on := minimal + "ewallet:\n  enabled: true\n  merchant_id: apotik-sehat-01\n"
	c, err = Load(Source{File: writeFile(t, on)})
	require.NoError(t, err)
	require.True(t, c.EWalletOn())
	require.False(t, c.TopUpOn(), "no back office: no top-up")

	withSync := on + "sync:\n  url: https://bo.example:8443\n  client_cert: c.pem\n  client_key: k.pem\n  ca: ca.pem\n"
	c, err = Load(Source{File: writeFile(t, withSync)})
	require.NoError(t, err)
	require.True(t, c.TopUpOn())

	for _, ok := range []string{
		"  max_payment: 1\n", "  max_payment: 4294967295\n", "  fingerprint_above: 0\n",
		"  max_balance: 4294967295\n", "  topup_timeout: 1m\n",
	} {
		_, err := Load(Source{File: writeFile(t, on+ok)})
		require.NoError(t, err, ok)
	}
	for key, bad := range map[string]string{
		"ewallet.max_payment":       "  max_payment: 0\n",
		"ewallet.max_balance":       "  max_balance: 4294967296\n",
		"ewallet.fingerprint_above": "  fingerprint_above: -1\n",
		"ewallet.topup_timeout":     "  topup_timeout: 61s\n",
		"ewallet.merchant_name":     "  merchant_name: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
	} {
		_, err := Load(Source{File: writeFile(t, on+bad)})
		require.ErrorIs(t, err, ErrInvalid, key)
		require.ErrorContains(t, err, key)
	}
	_, err = Load(Source{File: writeFile(t, minimal+"ewallet:\n  merchant_id: Apotik Sehat\n")})
	require.ErrorContains(t, err, "ewallet.merchant_id")
}
