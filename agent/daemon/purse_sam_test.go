package daemon

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
	"kpe-agent/internal/topup"
)

// callSAM records the SAM commands the engine sends, in order; its PURSE
// MAC fails (errMAC) so that nothing is journaled, and PURSE AUTHORISE
// answers refuse.
type callSAM struct {
	calls  []string
	auths  []*topup.Authorisation
	refuse error
}

var errMAC = errors.New("test: PURSE MAC not answered")

func (s *callSAM) PurseAuthorise(_ context.Context, a *topup.Authorisation) error {
	s.calls, s.auths = append(s.calls, "authorise"), append(s.auths, a)
	return s.refuse
}

func (s *callSAM) PurseMAC(context.Context, kpe.PurseOrder) ([8]byte, uint32, [kpe.PurseMACLen]byte, error) {
	s.calls = append(s.calls, "mac")
	return [8]byte{}, 0, [kpe.PurseMACLen]byte{}, errMAC
}

func (s *callSAM) VerifyPurseProof(context.Context, kpe.PurseProof) error { return nil }

var _ purseSAM = (*sam.SAM)(nil)

// The engine hands the SAM the top-up's authorisation immediately before
// each CREDIT MAC, never before a DEBIT MAC; a refusal stops the credit
// before PURSE MAC, and a credit without an authorisation asks the SAM
// nothing.
func TestJournalingSAMAuthorisesCredits(t *testing.T) {
	ctx := context.Background()
	a := &topup.Authorisation{Amount: 5}
	credit := kpe.PurseOrder{Kind: kpe.PurseCredit, Amount: 5}

	s := &callSAM{}
	_, _, _, err := (&journalingSAM{sam: s, auth: a}).PurseMAC(ctx, credit)
	require.ErrorIs(t, err, errMAC)
	assert.Equal(t, []string{"authorise", "mac"}, s.calls)
	assert.Same(t, a, s.auths[0])

	s = &callSAM{}
	_, _, _, err = (&journalingSAM{sam: s, auth: a}).PurseMAC(ctx, kpe.PurseOrder{Kind: kpe.PurseDebit, Amount: 5})
	require.ErrorIs(t, err, errMAC)
	assert.Equal(t, []string{"mac"}, s.calls, "a debit needs no authorisation")

	s = &callSAM{refuse: fmt.Errorf("%w: %w", sam.ErrTopUpRefused, &apdu.StatusError{SW: 0x6300})}
	_, _, _, err = (&journalingSAM{sam: s, auth: a}).PurseMAC(ctx, credit)
	require.ErrorIs(t, err, sam.ErrTopUpRefused)
	assert.Equal(t, []string{"authorise"}, s.calls, "no PURSE MAC after a refusal")
	assert.Equal(t, purseSAMRefused, purseReason(&kpe.PurseError{Err: err}))

	s = &callSAM{}
	_, _, _, err = (&journalingSAM{sam: s}).PurseMAC(ctx, credit)
	require.ErrorIs(t, err, sam.ErrCreditNotAuthorised)
	assert.Empty(t, s.calls)
}
