package apdu

import "context"

// PC/SC part 3 (Interoperability Specification for ICCs and Personal
// Computer Systems, part 3, §3.2.2.1) defines pseudo-APDUs that a
// contactless reader answers itself, without passing them to the chip, and
// the ATR such a reader builds for an ISO/IEC 14443 chip. They live here,
// next to the ISO/IEC 7816-4 commands, rather than in apdu/pcsc (the cgo
// binding: the card profiles must not depend on it) or in a card profile
// (any contactless chip has a UID, whatever its application; apdu/ktpel
// uses it, the lab plays the reader's part for its KTP-el chip).

// CLAPCSC is the class byte of the PC/SC part 3 pseudo-APDUs.
const CLAPCSC byte = 0xFF

// GetUIDCommand is GET DATA for the chip's UID: FF CA 00 00 00 (P1 00 the
// UID, P2 00, Le 00: the whole UID).
var GetUIDCommand = Command{CLA: CLAPCSC, INS: InsGetData, P1: 0x00, P2: 0x00, Ne: MaxShortNe}

// GetUID asks a contactless reader for the UID of the chip it holds
// (GetUIDCommand). A contact reader usually refuses the class or the
// instruction with a status word; that error is returned as is. The UID's
// length is not checked here: what a profile accepts is its business.
func (c *Client) GetUID(ctx context.Context) ([]byte, error) {
	return c.Send(ctx, GetUIDCommand)
}

// IsGetUID reports whether raw is the PC/SC GET DATA pseudo-APDU (CLA FF,
// INS CA), whatever its P1-P2; the lab's contactless chip answers it in the
// reader's place.
func IsGetUID(raw []byte) bool {
	return len(raw) >= 4 && raw[0] == CLAPCSC && raw[1] == InsGetData
}

// ContactlessATR reports whether atr is the ATR a PC/SC reader builds for
// a contactless chip: 3B 8n 80 01 (TS; T0 with TD1 present and n
// historical bytes; TD1 80: TD2 present, T=0; TD2 01: T=1).
func ContactlessATR(atr []byte) bool {
	return len(atr) >= 4 && atr[0] == 0x3B && atr[1]&0xF0 == 0x80 && atr[2] == 0x80 && atr[3] == 0x01
}
