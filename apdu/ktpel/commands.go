package ktpel

import (
	"context"
	"errors"
	"fmt"

	"kpe-agent/apdu"
	"kpe-agent/apdu/sm"
)

// The KTP-el profile's commands (docs/card-profiles.md §3). The chip has no
// AID to select: it is recognised by the UID its contactless reader gives
// and by its DF 7F0A.

// ErrUID: the reader's answer to GET DATA (UID) is not 4 to 10 bytes long,
// so the card is no ISO/IEC 14443 chip. Recognition takes it as "not a
// KTP-el"; it also wraps apdu.ErrMalformedResponse.
var ErrUID = errors.New("the reader's UID is not 4 to 10 bytes long")

// Select asks the reader for the chip's UID (the PC/SC part 3 pseudo-APDU
// FF CA 00 00 00, apdu.GetUIDCommand) and selects the DF FIDDF by file
// identifier without response data (00 A4 00 0C 02 7F 0A). It returns the
// UID, which the chip's keys are diversified from. A card that is not a
// KTP-el answers one of the two with a status error, or gives a UID of
// the wrong length (ErrUID).
func Select(ctx context.Context, c *apdu.Client) ([]byte, error) {
	uid, err := c.GetUID(ctx)
	if err != nil {
		return nil, fmt.Errorf("ktpel: get UID: %w", err)
	}
	if len(uid) < MinUIDLen || len(uid) > MaxUIDLen {
		return nil, fmt.Errorf("ktpel: %w: %w: UID of %d bytes", apdu.ErrMalformedResponse, ErrUID, len(uid))
	}
	if err := c.SelectFIDNoResponse(ctx, FIDDF); err != nil {
		return nil, fmt.Errorf("ktpel: select DF %04X: %w", FIDDF, err)
	}
	return uid, nil
}

// externalAuthenticate sends the SAM's 40-byte cryptogram and returns the
// chip's.
func externalAuthenticate(ctx context.Context, c *apdu.Client, ext []byte) ([]byte, error) {
	return c.ExternalAuthenticate(ctx, ext, AuthDataLen)
}

// SMMaxResponseData is the plain data per READ BINARY under the 3DES
// secure messaging (done by the SAM) with a 256-byte response buffer.
var SMMaxResponseData = sm.MaxPlainResponse(apdu.MaxShortNe, Suite.Cipher)
