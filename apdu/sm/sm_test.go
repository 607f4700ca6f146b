package sm

import (
	"crypto/aes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"kpe-agent/apdu"
)

func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// RFC 4493 section 4 test vectors (AES-128 CMAC).
func TestCMACRFC4493(t *testing.T) {
	b, _ := aes.NewCipher(hx("2b7e151628aed2a6abf7158809cf4f3c"))
	msg := hx("6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51 30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710")
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "bb1d6929e95937287fa37d129b756746"},
		{16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{40, "dfa66747de9ae63030ca32611497c827"},
		{64, "51f0bebf7e3b9d92fc49741779363cfe"},
	} {
		require.Equal(t, tc.want, hex.EncodeToString(CMAC(b, msg[:tc.n])), "len %d", tc.n)
	}
}

// ICAO Doc 9303 part 11, Appendix D (worked example of BAC secure
// messaging with 3DES): SELECT EF.COM and READ BINARY of its first bytes.
func TestICAOAppendixD(t *testing.T) {
	kEnc := hx("979EC13B1CBFE9DCD01AB0FED307EAE5")
	kMAC := hx("F1CB1F1FB5ADF208806B89DC579DC1F8")
	ssc := hx("887022120C06C226")
	term, err := NewSession(TDES, kEnc, kMAC, ssc)
	require.NoError(t, err)
	card, err := NewSession(TDES, kEnc, kMAC, ssc)
	require.NoError(t, err)

	sel := apdu.Command{CLA: 0x00, INS: 0xA4, P1: 0x02, P2: 0x0C, Data: hx("011E")}
	p, err := term.Wrap(sel)
	require.NoError(t, err)
	p.Ne = 256 // Appendix D sends Le = 00
	raw, err := p.Bytes()
	require.NoError(t, err)
	require.Equal(t, "0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800", strings.ToUpper(hex.EncodeToString(raw)))

	got, err := card.UnwrapCommand(p)
	require.NoError(t, err)
	require.Equal(t, sel.Data, got.Data)

	r, err := card.WrapResponse(apdu.Response{SW: 0x9000})
	require.NoError(t, err)
	require.Equal(t, "990290008E08FA855A5D4C50A8ED", strings.ToUpper(hex.EncodeToString(r.Data)))
	plain, err := term.Unwrap(r)
	require.NoError(t, err)
	require.Equal(t, uint16(0x9000), plain.SW)

	rb := apdu.Command{CLA: 0x00, INS: 0xB0, P1: 0x00, P2: 0x00, Ne: 4}
	p, err = term.Wrap(rb)
	require.NoError(t, err)
	raw, _ = p.Bytes()
	require.Equal(t, "0CB000000D9701048E08ED6705417E96BA5500", strings.ToUpper(hex.EncodeToString(raw)))
	_, err = card.UnwrapCommand(p)
	require.NoError(t, err)

	resp := apdu.Response{Data: hx("8709019FF0EC34F9922651990290008E08AD55CC17140B2DED"), SW: 0x9000}
	plain, err = term.Unwrap(resp)
	require.NoError(t, err)
	require.Equal(t, hx("60145F01"), plain.Data)
}

func TestICAOKDF(t *testing.T) {
	// ICAO 9303 part 11 Appendix D.1: K_seed from the MRZ and the derived
	// basic access keys.
	seed := hx("239AB9CB282DAF66231DC5A4DF6BFBAE")
	require.Equal(t, "AB94FDECF2674FDFB9B391F85D7F76F2", strings.ToUpper(hex.EncodeToString(DeriveKey(TDES, seed, KDFEnc))))
	require.Equal(t, "7962D9ECE03D1ACD4C76089DCE131543", strings.ToUpper(hex.EncodeToString(DeriveKey(TDES, seed, KDFMAC))))
}

func aesPair(t *testing.T) (*Session, *Session) {
	kEnc := hx("000102030405060708090A0B0C0D0E0F")
	kMAC := hx("F0E0D0C0B0A090807060504030201000")
	ssc := hx("00000000000000000000000000000001")
	a, err := NewSession(AES128, kEnc, kMAC, ssc)
	require.NoError(t, err)
	b, err := NewSession(AES128, kEnc, kMAC, ssc)
	require.NoError(t, err)
	return a, b
}

func TestAESRoundTripAndTamper(t *testing.T) {
	term, card := aesPair(t)
	long := make([]byte, 1000)
	for i := range long {
		long[i] = byte(i)
	}
	for _, cmd := range []apdu.Command{
		{INS: 0xA4, P1: 0x02, P2: 0x0C, Data: hx("0102")},
		{INS: 0xB0, Ne: 256},
		{INS: 0xDA, P1: 1, Data: long},
		{INS: 0xB1, Data: hx("5402FFFF"), Ne: 65536},
	} {
		p, err := term.Wrap(cmd)
		require.NoError(t, err)
		got, err := card.UnwrapCommand(p)
		require.NoError(t, err)
		require.Equal(t, cmd.Data, nilIfEmpty(got.Data))
		require.Equal(t, cmd.Ne, got.Ne)
		r, err := card.WrapResponse(apdu.Response{Data: long[:300], SW: 0x9000})
		require.NoError(t, err)
		plain, err := term.Unwrap(r)
		require.NoError(t, err)
		require.Equal(t, long[:300], plain.Data)
	}

	// A replayed response (right MAC for an older SSC) is refused and the
	// session is closed.
	r, err := card.WrapResponse(apdu.Response{SW: 0x9000})
	require.NoError(t, err)
	_, err = term.Unwrap(r)
	require.NoError(t, err)
	_, err = term.Unwrap(r)
	require.ErrorIs(t, err, ErrBadMAC)
	_, err = term.Wrap(apdu.Command{INS: 0xB0, Ne: 1})
	require.ErrorIs(t, err, ErrSessionClosed)

	for name, mutate := range map[string]func(d []byte) []byte{
		"flip ciphertext": func(d []byte) []byte { d[4] ^= 1; return d },
		"flip MAC":        func(d []byte) []byte { d[len(d)-1] ^= 1; return d },
		"drop MAC":        func(d []byte) []byte { return d[:len(d)-10] },
		"truncate":        func(d []byte) []byte { return d[:7] },
	} {
		term, card := aesPair(t)
		p, err := term.Wrap(apdu.Command{INS: 0xA4, P1: 2, P2: 0x0C, Data: hx("0102")})
		require.NoError(t, err)
		p.Data = mutate(append([]byte(nil), p.Data...))
		_, err = card.UnwrapCommand(p)
		require.ErrorIs(t, err, ErrSecureMessaging, name)
	}

	// A plain (unprotected) command in a session: 6987 on the card.
	_, card = aesPair(t)
	_, err = card.UnwrapCommand(apdu.Command{INS: 0xB0, Ne: 16})
	require.ErrorIs(t, err, ErrMissingDO)

	// The card rejects our command with a plain 6988.
	term, _ = aesPair(t)
	_, err = term.Unwrap(apdu.Response{SW: 0x6988})
	require.ErrorIs(t, err, ErrPlainError)
	require.ErrorIs(t, err, apdu.ErrSMDataObjectsIncorrect)
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// Independent oracle: Python `cryptography` 48 (KBKDFCMAC with
// CounterMode, rlen=4, llen=4, location=BeforeFixed, label, context;
// AES-ECB/CBC and CMAC for the SM wrap), script in testdata/oracle.py.
func TestKDF108Oracle(t *testing.T) {
	k, err := KDF108CMAC(hx("000102030405060708090A0B0C0D0E0F"), []byte("KPE card key"), hx("0000000000000001"), 16)
	require.NoError(t, err)
	require.Equal(t, "F31ECAA4B2FE19F110CCB22295627739", strings.ToUpper(hex.EncodeToString(k)))
	k, err = KDF108CMAC(hx("2B7E151628AED2A6ABF7158809CF4F3C"), []byte("KPE enc"), hx("0102030405060708"), 40)
	require.NoError(t, err)
	require.Equal(t, "55CE3D30A1EEC68AFDDD9E4B5B276080481C5DC21FA4249851EDFA3716208F0957C13850E0BD4513", strings.ToUpper(hex.EncodeToString(k)))
}

func TestAESWrapOracle(t *testing.T) {
	term, _ := aesPair(t)
	p, err := term.Wrap(apdu.Command{INS: 0xA4, P1: 0x02, P2: 0x0C, Data: hx("0102")})
	require.NoError(t, err)
	require.Equal(t, "871101712F20EC7332C100CD1095DBCFC9A4FD8E08A2467A6FD54A8C9A", strings.ToUpper(hex.EncodeToString(p.Data)))
	require.Equal(t, byte(0x0C), p.CLA)
}

// Binary data whose bytes are not valid UTF-8 must survive (an earlier
// unpad looked for runes, not bytes).
func TestBinaryPayload(t *testing.T) {
	term, card := aesPair(t)
	payload := []byte{0xFF, 0xD8, 0x42, 0xE0, 0x80, 0x00, 0xC3}
	r, err := card.WrapResponse(apdu.Response{Data: payload, SW: 0x9000})
	require.NoError(t, err)
	plain, err := term.Unwrap(r)
	require.NoError(t, err)
	require.Equal(t, payload, plain.Data)
}

// The sizes the readers use: 223 plain bytes per AES-protected short
// APDU (KPE) and 231 per 3DES-protected response (KTP-el), and what a
// session really produces at those sizes fits the short length fields.
func TestMaxPlainSizes(t *testing.T) {
	require.Equal(t, 223, MaxPlainResponse(256, AES128))
	require.Equal(t, 231, MaxPlainResponse(256, TDES3))
	require.Equal(t, 223, MaxPlainCommand(255, AES128))
	require.Equal(t, 0, MaxPlainResponse(10, AES128))
	for _, c := range []Cipher{AES128, TDES3} {
		kl := c.keyLen()
		s, err := NewSession(c, make([]byte, kl), make([]byte, kl), make([]byte, c.blockSize()))
		require.NoError(t, err)
		n := MaxPlainCommand(255, c)
		w, err := s.Wrap(apdu.Command{INS: 0xB0, Data: make([]byte, n), Ne: 16})
		require.NoError(t, err)
		require.LessOrEqual(t, len(w.Data), 255, c)
		w, err = s.Wrap(apdu.Command{INS: 0xB0, Data: make([]byte, n+1), Ne: 16})
		require.NoError(t, err)
		require.Greater(t, len(w.Data), 255, c)
		r, err := s.WrapResponse(apdu.Response{Data: make([]byte, MaxPlainResponse(256, c)), SW: 0x9000})
		require.NoError(t, err)
		require.LessOrEqual(t, len(r.Data), 256, c)
	}
}
