package sm

import (
	"crypto/cipher"

	"kpe-agent/internal/cmac"
)

// CMAC computes the CMAC of msg (NIST SP 800-38B) with a 16-byte (AES) or
// 8-byte (DES/3DES) block cipher (internal/cmac, which the purse shares).
func CMAC(b cipher.Block, msg []byte) []byte { return cmac.Sum(b, msg) }
