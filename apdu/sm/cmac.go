package sm

import (
	"crypto/cipher"
	"crypto/subtle"
)

// CMAC computes the CMAC of msg (NIST SP 800-38B) with a 16-byte (AES) or
// 8-byte (DES/3DES) block cipher.
func CMAC(b cipher.Block, msg []byte) []byte {
	bs := b.BlockSize()
	k1, k2 := cmacSubkeys(b)
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

func cmacSubkeys(b cipher.Block) (k1, k2 []byte) {
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
