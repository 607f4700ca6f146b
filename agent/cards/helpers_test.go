package cards_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/cards"
	"kpe-agent/apdu"
	"kpe-agent/apdu/sam"
	"kpe-agent/lab/labset"
)

// labOptions trusts the set's BKN and Dukcapil issuers.
func labOptions(t *testing.T, dir string, m *labset.Manifest) cards.Options {
	bkn, err := m.Roots(dir, "bkn")
	require.NoError(t, err)
	duk, err := m.Roots(dir, "dukcapil")
	require.NoError(t, err)
	return cards.Options{BKNRoots: bkn, DukcapilRoots: duk}
}

// openLabSAM selects the set's SAM and activates it for the terminal and,
// with the two installation secrets, for KTP-el.
func openLabSAM(t *testing.T, ctx context.Context, tx apdu.Transmitter, m *labset.Manifest) *sam.SAM {
	s, err := sam.Open(ctx, tx)
	require.NoError(t, err)
	require.NoError(t, s.Activate(ctx, []byte(m.SAM.ActivationCode)))
	require.NoError(t, s.ActivateKTP(ctx, []byte(m.SAM.KTPSecret1), []byte(m.SAM.KTPSecret2)))
	return s
}
