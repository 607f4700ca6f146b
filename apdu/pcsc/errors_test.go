package pcsc

import (
	"errors"
	"testing"

	"github.com/ebfe/scard"
	"github.com/stretchr/testify/require"

	"kpe-agent/apdu"
)

func TestErrorKinds(t *testing.T) {
	for code, kind := range map[scard.Error]error{
		scard.ErrRemovedCard:      apdu.ErrCardRemoved,
		scard.ErrNoSmartcard:      apdu.ErrCardRemoved,
		scard.ErrResetCard:        apdu.ErrCardReset,
		scard.ErrNoService:        apdu.ErrNoService,
		scard.ErrServiceStopped:   apdu.ErrNoService,
		scard.ErrCommError:        apdu.ErrNoService,
		scard.ErrSharingViolation: apdu.ErrSharingViolation,
		scard.ErrUnknownReader:    apdu.ErrNoReader,
		scard.ErrTimeout:          apdu.ErrTimeout,
		scard.ErrNotTransacted:    apdu.ErrTransport,
	} {
		err := wrap("op", "r", code)
		require.ErrorIs(t, err, kind, code.Error())
		var pe *Error
		require.True(t, errors.As(err, &pe))
		require.Equal(t, uint32(code), pe.Code)
	}
}

// Whatever code a dying pcscd produces, the monitor's ServiceLost says
// ErrNoService and keeps the code.
func TestServiceLostKind(t *testing.T) {
	err := serviceLost(scard.Error(0x8010006A)) // W_SECURITY_VIOLATION, seen in CI
	require.ErrorIs(t, err, apdu.ErrNoService)
	require.Contains(t, err.Error(), "0x8010006A")
	require.ErrorIs(t, serviceLost(scard.ErrNoService), apdu.ErrNoService)
}
