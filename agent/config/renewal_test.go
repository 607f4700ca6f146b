package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// renewal: on by default, but only with a back office; the offer timeout
// is 10 s by default and bounded.
func TestRenewal(t *testing.T) {
	c, err := Load(Source{File: writeFile(t, minimal)})
	require.NoError(t, err)
	require.True(t, c.Renewal.Enabled)
	require.Equal(t, 10*time.Second, c.Renewal.OfferTimeout)
	require.False(t, c.RenewalOn(), "no back office: no renewal")

	withSync := minimal + "sync:\n  url: https://bo.example:8443\n  client_cert: c.pem\n  client_key: k.pem\n  ca: ca.pem\n"
	c, err = Load(Source{File: writeFile(t, withSync)})
	require.NoError(t, err)
	require.True(t, c.RenewalOn(), "on by default with a back office")

	c, err = Load(Source{File: writeFile(t, withSync+"renewal:\n  enabled: false\n  offer_timeout: 3s\n")})
	require.NoError(t, err)
	require.False(t, c.RenewalOn())
	require.Equal(t, 3*time.Second, c.Renewal.OfferTimeout)

	c, err = Load(Source{File: writeFile(t, minimal), Environ: []string{"KPE_RENEWAL_ENABLED=false"}})
	require.NoError(t, err)
	require.False(t, c.Renewal.Enabled)

	_, err = Load(Source{File: writeFile(t, minimal+"renewal:\n  offer_timeout: 2m\n")})
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "renewal.offer_timeout")
	_, err = Load(Source{File: writeFile(t, minimal+"renewal:\n  offer_timeout: 0s\n")})
	require.ErrorContains(t, err, "renewal.offer_timeout")
}
