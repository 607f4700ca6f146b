// Package cmac is CMAC (NIST SP 800-38B) and the SP 800-108r1 key
// derivation in counter mode with AES-CMAC: the one implementation that
// secure messaging (apdu/sm) and the purse (internal/purse, which the back
// office uses too) share.
package cmac

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
)

// Sum computes the CMAC of msg with a 16-byte (AES) or 8-byte (DES/3DES)
// block cipher.
func Sum(b cipher.Block, msg []byte) []byte {
	bs := b.BlockSize()
	k1, k2 := subkeys(b)
	n := (len(msg) + bs - 1) / bs
	last := make([]byte, bs)
	if n > 0 && len(msg)%bs == 0 {
		subtle.XORBytes(last, msg[(n-1)*bs:], k1)
	} else {
		if n == 0 {
			n = 1
		}
		rest := msg[(n-1)*bs:]
		copy(last, rest)
		last[len(rest)] = 0x80
		subtle.XORBytes(last, last, k2)
	}
	x := make([]byte, bs)
	for i := 0; i < n-1; i++ {
		subtle.XORBytes(x, x, msg[i*bs:(i+1)*bs])
		b.Encrypt(x, x)
	}
	subtle.XORBytes(x, x, last)
	b.Encrypt(x, x)
	return x
}

func subkeys(b cipher.Block) (k1, k2 []byte) {
	bs := b.BlockSize()
	rb := byte(0x87)
	if bs == 8 {
		rb = 0x1B
	}
	l := make([]byte, bs)
	b.Encrypt(l, l)
	k1 = shiftLeft(l, rb)
	k2 = shiftLeft(k1, rb)
	return k1, k2
}

// shiftLeft multiplies a block by x in GF(2^n) (the subkey step).
func shiftLeft(in []byte, rb byte) []byte {
	out := make([]byte, len(in))
	var carry byte
	for i := len(in) - 1; i >= 0; i-- {
		out[i] = in[i]<<1 | carry
		carry = in[i] >> 7
	}
	if carry != 0 {
		out[len(out)-1] ^= rb
	}
	return out
}

// ErrKDF: a key or output length KDF108 cannot take.
var ErrKDF = errors.New("cmac: bad KDF108 input")

// KDF108 is the NIST SP 800-108r1 key-derivation function in counter mode
// with AES-CMAC as the PRF. Block i (from 1) is
//
//	CMAC(key, [i]32 ‖ label ‖ 0x00 ‖ context ‖ [L]32)
//
// where [x]32 is a 32-bit big-endian integer and L the output length in
// bits; the output is the first outLen bytes of block 1 ‖ block 2 ‖ ...
func KDF108(key, label, context []byte, outLen int) ([]byte, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: key: %w", ErrKDF, err)
	}
	if outLen <= 0 || outLen > 1<<16 {
		return nil, fmt.Errorf("%w: output length %d out of range", ErrKDF, outLen)
	}
	fixed := make([]byte, 0, len(label)+1+len(context)+4)
	fixed = append(append(append(fixed, label...), 0x00), context...)
	fixed = binary.BigEndian.AppendUint32(fixed, uint32(outLen*8))
	var out []byte
	for i := uint32(1); len(out) < outLen; i++ {
		out = append(out, Sum(b, append(binary.BigEndian.AppendUint32(nil, i), fixed...))...)
	}
	return out[:outLen], nil
}
