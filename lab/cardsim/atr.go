package cardsim

import (
	"errors"
	"fmt"
)

// DefaultATR is used by cards configured without an ATR. It is a T=1 ATR:
//
//	3B           TS  direct convention
//	88           T0  TD1 present, 8 historical bytes
//	81           TD1 TD2 present, T=1
//	31           TD2 TA3 and TB3 present, T=1
//	FE           TA3 IFSC = 254
//	45           TB3 BWI = 4, CWI = 5
//	80 73 94 01 A0 82 90 00  historical bytes: category 80 (compact-TLV);
//	             card capabilities 73: 94 = selection by full DF name and by
//	             FID, short EF identifiers; 01 = data unit of one byte;
//	             A0 = command chaining, extended length information in
//	             EF.ATR/INFO; status 82: 9000
//	57           TCK (XOR of T0..last historical byte)
var DefaultATR = []byte{0x3B, 0x88, 0x81, 0x31, 0xFE, 0x45, 0x80, 0x73, 0x94, 0x01, 0xA0, 0x82, 0x90, 0x00, 0x57}

// maxATRLen is the largest ATR ISO/IEC 7816-3 allows (and pcscd accepts).
const maxATRLen = 33

// ValidateATR checks the structure of an ATR per ISO/IEC 7816-3: TS is 3B
// or 3F, the interface bytes announced by T0/TDi are present, the number of
// historical bytes matches, and TCK is present and correct whenever a
// protocol other than T=0 is indicated (and absent otherwise).
func ValidateATR(atr []byte) error {
	if len(atr) < 2 || len(atr) > maxATRLen {
		return fmt.Errorf("ATR length %d out of range 2..%d", len(atr), maxATRLen)
	}
	if atr[0] != 0x3B && atr[0] != 0x3F {
		return fmt.Errorf("ATR TS %02X is neither 3B nor 3F", atr[0])
	}
	hist := int(atr[1] & 0x0F)
	y := atr[1] >> 4
	i := 2
	needTCK := false
	for {
		for bit := byte(1); bit <= 4; bit <<= 1 { // TAi, TBi, TCi
			if y&bit != 0 {
				i++
			}
		}
		if y&8 == 0 {
			break
		}
		if i >= len(atr) {
			return errors.New("ATR truncated in interface bytes")
		}
		td := atr[i]
		i++
		if td&0x0F != 0 {
			needTCK = true
		}
		y = td >> 4
	}
	i += hist
	if needTCK {
		if i >= len(atr) {
			return errors.New("ATR lacks TCK although a protocol other than T=0 is indicated")
		}
		var x byte
		for _, b := range atr[1 : i+1] {
			x ^= b
		}
		if x != 0 {
			return fmt.Errorf("ATR TCK %02X is wrong (expected %02X)", atr[i], atr[i]^x)
		}
		i++
	}
	if i != len(atr) {
		return fmt.Errorf("ATR has %d bytes, its T0/TDi bytes announce %d", len(atr), i)
	}
	return nil
}
