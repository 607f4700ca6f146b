package record

import (
	"errors"
	"fmt"
	"strings"
)

// The printed authentication code ties a paper form to exactly one record
// without revealing anything about the person: it is the first 75 bits of
// the sealed record's Hash in Crockford base32 (15 symbols), followed by
// Crockford's check symbol (the 75-bit value modulo 37), printed in groups
// of four: "7K3M-Q0ZD-9XH2-WB4*". 16 symbols in all.
//
// The check symbol catches every single wrong symbol and every swap of two
// neighbours (37 is prime and divides neither 32^k nor 31·32^k). Reading
// is forgiving as Crockford's scheme intends: lower case, O for 0, I and L
// for 1, and hyphens or spaces anywhere.

const (
	codeSymbols  = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	checkSymbols = codeSymbols + "*~$=U"
	codeData     = 15 // symbols of 5 bits: 75 bits
	// CodeLen is the number of symbols in a code, check symbol included.
	CodeLen = codeData + 1
)

// Code is a parsed authentication code: the 15 data symbols, canonical.
type Code string

// Code errors. All unwrap to ErrCode.
var (
	ErrCode       = errors.New("authentication code not valid")
	ErrCodeLength = fmt.Errorf("%w: it has 16 characters", ErrCode)
	ErrCodeSymbol = fmt.Errorf("%w: a character is not part of the code alphabet", ErrCode)
	ErrCodeCheck  = fmt.Errorf("%w: a character is mistyped (check character)", ErrCode)
)

// CodeOf returns the code of a sealed record's hash.
func CodeOf(hash [32]byte) Code {
	var b strings.Builder
	var acc uint64
	bits := 0
	in := 0
	for n := 0; n < codeData; n++ {
		for bits < 5 {
			acc = acc<<8 | uint64(hash[in])
			in++
			bits += 8
		}
		b.WriteByte(codeSymbols[(acc>>(bits-5))&31])
		bits -= 5
	}
	return Code(b.String())
}

func mod37(data string) int {
	m := 0
	for i := 0; i < len(data); i++ {
		m = (m*32 + strings.IndexByte(codeSymbols, data[i])) % 37
	}
	return m
}

// String prints the code with its check symbol in groups of four.
func (c Code) String() string {
	s := string(c) + string(checkSymbols[mod37(string(c))])
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}

// ParseCode reads a typed code and checks its check symbol.
func ParseCode(s string) (Code, error) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '-' || r == ' ':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		switch r {
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		if r > 0x7f {
			return "", ErrCodeSymbol
		}
		b.WriteRune(r)
		if b.Len() > CodeLen {
			return "", ErrCodeLength
		}
	}
	t := b.String()
	if len(t) != CodeLen {
		return "", ErrCodeLength
	}
	data, check := t[:codeData], t[codeData]
	for i := 0; i < len(data); i++ {
		if strings.IndexByte(codeSymbols, data[i]) < 0 {
			return "", ErrCodeSymbol
		}
	}
	if strings.IndexByte(checkSymbols, check) < 0 {
		return "", ErrCodeSymbol
	}
	if checkSymbols[mod37(data)] != check {
		return "", ErrCodeCheck
	}
	return Code(data), nil
}
