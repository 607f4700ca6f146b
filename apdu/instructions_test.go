package apdu

import (
	"context"
	"testing"
)

// The selections without response data that the profiles' Select use,
// EXTERNAL AUTHENTICATE and the PC/SC GET DATA for the UID, byte for byte.
func TestProfileCommands(t *testing.T) {
	ctx := context.Background()
	s := newScript(t,
		step{"00A4040C05 F04B504501", "9000", nil},
		step{"00A4040C05 F04B504501", "6A82", nil},
		step{"00A4000C02 7F0A", "9000", nil},
		step{"0082000004 01020304 08", "1112131415161718 9000", nil},
		step{"0082000002 0102", "9000", nil},
		step{"0082000002 0102 08", "6300", nil},
		step{"FFCA000000", "04112233445566 9000", nil},
		step{"FFCA000000", "6E00", nil},
	)
	c := NewClient(s, Limits{})
	must(t, c.SelectAIDNoResponse(ctx, h("F04B504501")))
	errIs(t, c.SelectAIDNoResponse(ctx, h("F04B504501")), ErrFileNotFound)
	must(t, c.SelectFIDNoResponse(ctx, 0x7F0A))
	b, err := c.ExternalAuthenticate(ctx, h("01020304"), 8)
	must(t, err)
	hexEq(t, b, h("1112131415161718"))
	b, err = c.ExternalAuthenticate(ctx, h("0102"), 0)
	must(t, err)
	eq(t, len(b), 0)
	_, err = c.ExternalAuthenticate(ctx, h("0102"), 8)
	errIs(t, err, ErrVerificationFailed)
	uid, err := c.GetUID(ctx)
	must(t, err)
	hexEq(t, uid, h("04112233445566"))
	_, err = c.GetUID(ctx)
	errIs(t, err, ErrCLANotSupported)
	s.done()

	// Bad arguments never reach the card.
	errIs(t, c.SelectAIDNoResponse(ctx, nil), ErrInvalidCommand)
	errIs(t, c.SelectAIDNoResponse(ctx, make([]byte, MaxAIDLen+1)), ErrInvalidCommand)
	_, err = c.ExternalAuthenticate(ctx, nil, 8)
	errIs(t, err, ErrInvalidCommand)
}

func TestPCSCPart3(t *testing.T) {
	raw, err := GetUIDCommand.Bytes()
	must(t, err)
	hexEq(t, raw, h("FFCA000000"))
	eq(t, IsGetUID(raw), true)
	eq(t, IsGetUID(h("FFCA0100")), true) // another P1 is still GET DATA: the chip answers 6A81
	eq(t, IsGetUID(h("00CA0000")), false)
	eq(t, IsGetUID(h("FFCA")), false)
	for atr, want := range map[string]bool{
		"3B8880014B5450454C007781B9":                true,  // the lab's KTP-el
		"3B8F8001804F0CA000000306030001000000006A":  true,  // a MIFARE Classic under PC/SC
		"3B8D8131FE45807394 01A0644B50450182900069": false, // the lab's KPE (contact, T=1)
		"3B88":     false,
		"3B0A8001": false,
	} {
		eq(t, ContactlessATR(h(atr)), want, atr)
	}
}
