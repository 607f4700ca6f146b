package sm

import (
	"crypto/aes"
	"crypto/des"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"

	"kpe-agent/internal/cmac"
)

// Cipher selects the block cipher of a secure-messaging session.
type Cipher int

const (
	TDES   Cipher = iota + 1 // 2-key 3DES (16-byte keys), ICAO 9303 BAC style
	TDES3                    // 3-key 3DES (24-byte keys), KTP-el
	AES128                   // KPE
	AES256
)

func (c Cipher) String() string {
	switch c {
	case TDES:
		return "3DES-2key"
	case TDES3:
		return "3DES-3key"
	case AES128:
		return "AES-128"
	case AES256:
		return "AES-256"
	}
	return fmt.Sprintf("Cipher(%d)", int(c))
}

func (c Cipher) keyLen() int {
	switch c {
	case TDES:
		return 16
	case TDES3:
		return 24
	case AES128:
		return 16
	case AES256:
		return 32
	}
	return 0
}

func (c Cipher) blockSize() int {
	if c == AES128 || c == AES256 {
		return aes.BlockSize
	}
	return des.BlockSize
}

// KDF counters of ICAO 9303 part 11 §9.7.1.
const (
	KDFEnc uint32 = 1
	KDFMAC uint32 = 2
)

// DeriveKey is the key derivation function of ICAO 9303 part 11 §9.7.1:
// the key is the first bytes of H(seed ‖ counter) with SHA-1 for 3DES and
// AES-128 and SHA-256 for AES-256; 3DES keys get odd DES parity (for 2-key
// 3DES K1 ‖ K2, for 3-key the first 24 bytes of SHA-256).
func DeriveKey(c Cipher, seed []byte, counter uint32) []byte {
	in := binary.BigEndian.AppendUint32(append([]byte(nil), seed...), counter)
	var h []byte
	switch c {
	case AES256, TDES3:
		s := sha256.Sum256(in)
		h = s[:]
	default:
		s := sha1.Sum(in)
		h = s[:]
	}
	k := append([]byte(nil), h[:c.keyLen()]...)
	if c == TDES || c == TDES3 {
		for i := range k {
			k[i] = k[i]&0xFE | byte(bits.OnesCount8(k[i]&0xFE)+1)&1
		}
	}
	return k
}

// KDF108CMAC is the NIST SP 800-108r1 key-derivation function in counter
// mode with AES-CMAC as the PRF. Block i (from 1) is
//
//	CMAC(key, [i]32 ‖ label ‖ 0x00 ‖ context ‖ [L]32)
//
// where [x]32 is a 32-bit big-endian integer and L the output length in
// bits; the output is the first outLen bytes of block 1 ‖ block 2 ‖ ...
// KPE cards get their key as KDF108CMAC(master, "KPE card key", serial, 16).
func KDF108CMAC(key, label, context []byte, outLen int) ([]byte, error) {
	k, err := cmac.KDF108(key, label, context, outLen)
	if err != nil {
		return nil, fmt.Errorf("sm: %w", err)
	}
	return k, nil
}
