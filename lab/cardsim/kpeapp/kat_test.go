package kpeapp_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/ktpel"
	"kpe-agent/apdu/sam"
	"kpe-agent/apdu/sm"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/cardsim/kpeapp"
	"kpe-agent/lab/cardsim/samapp"
	"kpe-agent/lab/pcsctest"
)

// The worked examples of docs/card-profiles.md §6 are transcripts of these
// scenarios, run against the lab applets with fixed keys and fixed
// randomness. The test compares every byte with the document;
// `go test ./lab/cardsim/kpeapp -run KAT -update-kat` rewrites them.
var updateKAT = flag.Bool("update-kat", false, "rewrite the worked examples in docs/card-profiles.md")

// counting is a deterministic "random" source: start, start+1, ...
type counting struct{ next byte }

func (c *counting) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.next
		c.next++
	}
	return len(p), nil
}

// recorder writes "> command" and "< response" lines.
type recorder struct {
	t    apdu.Transmitter
	b    strings.Builder
	mask func(cmd, rsp []byte) string // optional: renders variable responses
}

func (r *recorder) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	rsp, err := r.t.Transmit(ctx, cmd)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(&r.b, "> %s\n", spacedHex(cmd))
	if r.mask != nil {
		if s := r.mask(cmd, rsp); s != "" {
			fmt.Fprintf(&r.b, "< %s\n", s)
			return rsp, nil
		}
	}
	fmt.Fprintf(&r.b, "< %s\n", spacedHex(rsp))
	return rsp, nil
}

func (r *recorder) note(format string, args ...any) { fmt.Fprintf(&r.b, "# "+format+"\n", args...) }

func spacedHex(b []byte) string {
	var s strings.Builder
	for i := 0; i < len(b); i += 32 {
		if i > 0 {
			s.WriteString("\n  ")
		}
		fmt.Fprintf(&s, "% X", b[i:min(i+32, len(b))])
	}
	return s.String()
}

func memCard(t *testing.T, c cardsim.Card) apdu.Card {
	r := cardsim.NewMemReader("kat")
	r.Insert(c)
	card, err := r.Connect(context.Background())
	require.NoError(t, err)
	return card
}

// katAuthRead runs the mutual authentication shared by both card profiles
// (GET CHALLENGE, EXTERNAL AUTHENTICATE with the SAM's randomness A0 A1
// ...), notes the session keys, and reads 16 bytes of EF fid under secure
// messaging.
func katAuthRead(t *testing.T, rec *recorder, suite sm.Suite, keys sm.AuthKeys, authLen int, fid []byte, what string) *sm.Session {
	ctx := context.Background()
	c := apdu.NewClient(rec, apdu.Limits{})
	rndIC, err := c.GetChallenge(ctx, suite.RndLen)
	require.NoError(t, err)
	auth, ext, err := suite.Start(keys, rndIC, &counting{0xA0})
	require.NoError(t, err)
	resp, err := c.Send(ctx, apdu.Command{INS: 0x82, Data: ext, Ne: authLen})
	require.NoError(t, err)
	sk, err := auth.Finish(resp)
	require.NoError(t, err)
	rec.note("KS_enc = %X", sk.Enc)
	rec.note("KS_mac = %X", sk.MAC)
	rec.note("SSC    = %X", sk.SSC)
	sess, err := sk.Session()
	require.NoError(t, err)
	rec.note("%s", what)
	sc := apdu.NewClient(sm.Transmitter(rec, sess), apdu.Limits{})
	_, err = sc.Send(ctx, apdu.Command{INS: 0xA4, P1: 0x02, P2: 0x0C, Data: fid})
	require.NoError(t, err)
	plain, err := sc.Send(ctx, apdu.Command{INS: 0xB0, Ne: 16})
	require.NoError(t, err)
	rec.note("plain answer: %X", plain)
	return sess
}

// katKPE: mutual authentication, a protected SELECT and READ BINARY, and a
// command with a corrupted MAC (6988).
func katKPE(t *testing.T) string {
	ctx := context.Background()
	serial := [8]byte{0, 0, 0, 0, 0, 0, 0, 1}
	master := bytes.Repeat([]byte{0x4B}, 16)
	keys, err := kpe.DeriveCardKeys(master, serial)
	require.NoError(t, err)
	a, err := kpeapp.New(kpeapp.Config{Keys: keys, Rand: &counting{0xC0}, Files: map[uint16][]byte{
		kpe.FIDCardInfo: kpe.CardInfo{Serial: serial, Type: kpe.CardKPE, ProfileVersion: 1, MaxResponse: 256, IssuerID: "BKN"}.Encode(),
		kpe.FIDIdentity: kpe.Identity{NIP: "196608011988031001", Name: "Contoh"}.Encode(),
	}})
	require.NoError(t, err)
	rec := &recorder{t: memCard(t, a)}
	c := apdu.NewClient(rec, apdu.Limits{})
	rec.note("K_M = 4B x 16, serial 0000000000000001; card randomness C0 C1 ..., SAM randomness A0 A1 ...")
	rec.note("K_enc = %X", keys.Enc)
	rec.note("K_mac = %X", keys.MAC)
	_, err = c.SelectAID(ctx, kpe.DefaultAID)
	require.NoError(t, err)
	sess := katAuthRead(t, rec, kpe.Suite, keys, kpe.AuthDataLen, []byte{0x01, 0x02},
		"protected SELECT EF 0102 and READ BINARY of 16 bytes (plain: 00 A4 02 0C 02 01 02, 00 B0 00 00 10)")
	rec.note("the same READ BINARY with the last MAC byte flipped: 6988, session closed")
	p, err := sess.Wrap(apdu.Command{INS: 0xB0, Ne: 16})
	require.NoError(t, err)
	raw, err := p.Bytes()
	require.NoError(t, err)
	raw[len(raw)-2] ^= 0x01 // last MAC byte (before Le)
	r, err := rec.Transmit(ctx, raw)
	require.NoError(t, err)
	require.Equal(t, []byte{0x69, 0x88}, r)
	return rec.b.String()
}

// katKTPel: UID, DF, challenge, the 40-byte EXTERNAL AUTHENTICATE and one
// protected READ BINARY (the SAM's part computed with the same code the
// SAM applet runs).
func katKTPel(t *testing.T) string {
	ctx := context.Background()
	uid := []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	master := bytes.Repeat([]byte{0x44}, 24)
	keys, err := ktpel.DeriveCardKeys(master, uid)
	require.NoError(t, err)
	a, err := kpeapp.New(kpeapp.Config{UID: uid, DF: ktpel.FIDDF, Suite: ktpel.Suite, Keys: keys, Rand: &counting{0xC0},
		Plain: map[uint16]bool{ktpel.FIDHeader: true}, ATR: kpeapp.ATRKTPel,
		Files: map[uint16][]byte{ktpel.FIDHeader: ktpel.Header{ChipSerial: uid[3:], Version: 1}.Encode(),
			ktpel.FIDBiodata: ktpel.Biodata{NIK: "3174000101900001", Name: "CONTOH"}.Encode()}})
	require.NoError(t, err)
	rec := &recorder{t: memCard(t, a)}
	c := apdu.NewClient(rec, apdu.Limits{})
	rec.note("KTP-el master = 44 x 24, UID 04 11 22 33 44 55 66; chip randomness C0 C1 ..., SAM randomness A0 A1 ...")
	rec.note("K_enc = %X", keys.Enc)
	rec.note("K_mac = %X", keys.MAC)
	_, err = c.Send(ctx, apdu.Command{CLA: 0xFF, INS: 0xCA, Ne: 256})
	require.NoError(t, err)
	_, err = c.Send(ctx, apdu.Command{INS: 0xA4, P2: 0x0C, Data: []byte{0x7F, 0x0A}})
	require.NoError(t, err)
	katAuthRead(t, rec, ktpel.Suite, keys, ktpel.AuthDataLen, []byte{0x6F, 0xF1},
		"protected SELECT EF 6FF1 and READ BINARY of 16 bytes, as the SAM's SM WRAP / SM UNWRAP produce them")
	return rec.b.String()
}

// katSAM: select, a wrong then the right activation code, SIGN RECORD on
// SHA-256("KAT record") and GET COUNTER. ECDSA signatures are randomised,
// so the transcript shows their place and the test verifies them.
func katSAM(t *testing.T) string {
	ctx := context.Background()
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{0x17}, 32))
	require.NoError(t, err)
	serial := [8]byte{0x53, 0x41, 0x4D, 0, 0, 0, 0, 1}
	a, err := samapp.New(samapp.Config{Serial: serial, ActivationCode: []byte("123456"), Key: key,
		StatePath: filepath.Join(t.TempDir(), "sam.json")})
	require.NoError(t, err)
	digest := sha256.Sum256([]byte("KAT record"))
	rec := &recorder{t: memCard(t, a)}
	rec.mask = func(cmd, rsp []byte) string {
		if len(cmd) > 2 && cmd[1] == 0x40 && len(rsp) == 70 {
			var sig sam.Signature
			sig, err := sam.ParseSignature(rsp[:68])
			require.NoError(t, err)
			require.True(t, sig.Verify(&key.PublicKey, digest, serial), "SIGN RECORD signature verifies")
			return fmt.Sprintf("% X <64 bytes: ECDSA P-256 r ‖ s over digest ‖ counter ‖ serial, randomised> 90 00", rsp[:4])
		}
		return ""
	}
	rec.note("SAM serial 53 41 4D 00 00 00 00 01, activation code \"123456\", signing key d = 17 x 32")
	s, err := sam.Open(ctx, rec)
	require.NoError(t, err)
	var ae *sam.ActivationError
	require.ErrorAs(t, s.Activate(ctx, []byte("000000")), &ae)
	require.NoError(t, s.Activate(ctx, []byte("123456")))
	rec.note("SIGN RECORD, digest = SHA-256(\"KAT record\")")
	sig, err := s.SignRecord(ctx, digest)
	require.NoError(t, err)
	require.Equal(t, uint32(1), sig.Counter)
	n, err := s.Counter(ctx)
	require.NoError(t, err)
	require.Equal(t, uint32(1), n)
	return rec.b.String()
}

// katPseudonym: PSEUDONYM of a NIK and of a chip UID with a fixed
// institution pseudonym key, each checked against HMAC-SHA-256 on the host.
func katPseudonym(t *testing.T) string {
	ctx := context.Background()
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{0x17}, 32))
	require.NoError(t, err)
	pkey := bytes.Repeat([]byte{0x5A}, 32)
	a, err := samapp.New(samapp.Config{Serial: [8]byte{0x53, 0x41, 0x4D, 0, 0, 0, 0, 1}, ActivationCode: []byte("123456"), Key: key,
		StatePath: filepath.Join(t.TempDir(), "sam.json"), PseudonymKey: pkey})
	require.NoError(t, err)
	rec := &recorder{t: memCard(t, a)}
	rec.note("institution pseudonym key = 5A x 32; the SAM activated as in 6.3")
	s, err := sam.Open(ctx, rec)
	require.NoError(t, err)
	require.NoError(t, s.Activate(ctx, []byte("123456")))
	rec.note("PSEUDONYM of the NIK \"3174096112900001\": HMAC-SHA-256(key, 01 ‖ NIK)")
	nik := []byte("3174096112900001")
	p, err := s.Pseudonym(ctx, sam.DomainNIK, nik)
	require.NoError(t, err)
	require.Equal(t, sam.PseudonymOf(pkey, sam.DomainNIK, nik), p)
	rec.note("PSEUDONYM of the chip UID 04 11 22 33 44 55 66: HMAC-SHA-256(key, 02 ‖ UID)")
	uid := []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	p, err = s.Pseudonym(ctx, sam.DomainChipUID, uid)
	require.NoError(t, err)
	require.Equal(t, sam.PseudonymOf(pkey, sam.DomainChipUID, uid), p)
	return rec.b.String()
}

// katUpdate: the renewal status, the update session (EXTERNAL
// AUTHENTICATE P2 82 with the update keys), BEGIN UPDATE, one protected
// UPDATE BINARY and a COMMIT UPDATE refused because EF.SOD was not written
// (a signed EF.SOD is not deterministic, so the example stops there).
func katUpdate(t *testing.T) string {
	ctx := context.Background()
	serial := [8]byte{0, 0, 0, 0, 0, 0, 0, 1}
	keys, err := kpe.DeriveCardKeys(bytes.Repeat([]byte{0x4B}, 16), serial)
	require.NoError(t, err)
	upd, err := kpe.DeriveUpdateKeys(bytes.Repeat([]byte{0x55}, 16), serial)
	require.NoError(t, err)
	a, err := kpeapp.New(kpeapp.Config{Keys: keys, UpdateKeys: upd, Rand: &counting{0xC0}, Files: map[uint16][]byte{
		kpe.FIDCardInfo:   kpe.CardInfo{Serial: serial, Type: kpe.CardKPE, ProfileVersion: 1, MaxResponse: 256, IssuerID: "BKN"}.Encode(),
		kpe.FIDEmployment: kpe.Employment{Status: "PNS"}.Encode(),
		kpe.FIDSOD:        bytes.Repeat([]byte{0x77}, 32),
	}})
	require.NoError(t, err)
	rec := &recorder{t: memCard(t, a)}
	c := apdu.NewClient(rec, apdu.Limits{})
	rec.note("K_UM = 55 x 16, serial 0000000000000001; card randomness C0 C1 ..., SAM randomness A0 A1 ...")
	rec.note("update K_enc = %X", upd.Enc)
	rec.note("update K_mac = %X", upd.MAC)
	rec.note("kpe.ReadUpdateStatus: SELECT, then the renewal status (plain GET DATA 80 CA 01 10): never renewed")
	st, err := kpe.ReadUpdateStatus(ctx, rec, nil)
	require.NoError(t, err)
	require.Equal(t, kpe.UpdateStatus{Supported: true}, st)
	rec.note("update session: EXTERNAL AUTHENTICATE with P2 82 (the update keys)")
	rndIC, err := c.GetChallenge(ctx, kpe.RndLen)
	require.NoError(t, err)
	auth, ext, err := kpe.Suite.Start(upd, rndIC, &counting{0xA0})
	require.NoError(t, err)
	resp, err := c.Send(ctx, apdu.Command{INS: 0x82, P2: kpe.KeyRefUpdate, Data: ext, Ne: kpe.AuthDataLen})
	require.NoError(t, err)
	sk, err := auth.Finish(resp)
	require.NoError(t, err)
	rec.note("KS_enc = %X", sk.Enc)
	rec.note("KS_mac = %X", sk.MAC)
	rec.note("SSC    = %X", sk.SSC)
	sess, err := sk.Session()
	require.NoError(t, err)
	sc := apdu.NewClient(sm.Transmitter(rec, sess), apdu.Limits{})
	dg2 := kpe.Employment{Status: "PNS", GolonganRuang: "IV/d"}.Encode()
	b := kpe.BeginUpdate{ID: [16]byte{0x1D, 1}, Sequence: 1, EFs: []kpe.StagedEF{{FID: kpe.FIDEmployment, Size: len(dg2)}, {FID: kpe.FIDSOD, Size: 32}}}
	rec.note("BEGIN UPDATE (plain: 80 54 00 00 %02X %X)", len(b.Encode()), b.Encode())
	_, err = sc.Send(ctx, apdu.Command{CLA: kpe.CLAProprietary, INS: kpe.InsBeginUpdate, Data: b.Encode()})
	require.NoError(t, err)
	rec.note("SELECT EF 0103 and UPDATE BINARY of the new DG2 (plain: 00 D6 00 00 %02X %X)", len(dg2), dg2)
	_, err = sc.Send(ctx, apdu.Command{INS: 0xA4, P1: 0x02, P2: 0x0C, Data: []byte{0x01, 0x03}})
	require.NoError(t, err)
	_, err = sc.Send(ctx, apdu.Command{INS: kpe.InsUpdateBinary, Data: dg2})
	require.NoError(t, err)
	rec.note("COMMIT UPDATE (plain: 80 56 00 00) before EF.SOD was written: 6985, the card unchanged")
	_, err = sc.Send(ctx, apdu.Command{CLA: kpe.CLAProprietary, INS: kpe.InsCommitUpdate})
	require.ErrorIs(t, err, apdu.ErrConditionsNotSatisfied)
	require.Equal(t, kpe.Employment{Status: "PNS"}.Encode(), a.File(kpe.FIDEmployment))
	return rec.b.String()
}

var katBlock = regexp.MustCompile("(?s)(<!-- kat:([a-z-]+) -->\n```\n)(.*?)(```)")

func TestKAT(t *testing.T) {
	scenarios := map[string]func(*testing.T) string{"kpe-auth": katKPE, "ktpel-auth": katKTPel, "sam-sign": katSAM, "sam-pseudonym": katPseudonym, "kpe-update": katUpdate}
	path := pcsctest.RepoPath("docs/card-profiles.md")
	doc, err := os.ReadFile(path)
	require.NoError(t, err)
	found := map[string]bool{}
	out := katBlock.ReplaceAllFunc(doc, func(m []byte) []byte {
		g := katBlock.FindSubmatch(m)
		name := string(g[2])
		run, ok := scenarios[name]
		require.True(t, ok, "unknown worked example %q", name)
		found[name] = true
		got := run(t)
		if !*updateKAT {
			require.Equal(t, string(g[3]), got, "worked example %s in docs/card-profiles.md differs (rerun with -update-kat if the profile changed on purpose)", name)
		}
		return append(append(append([]byte(nil), g[1]...), got...), g[4]...)
	})
	for name := range scenarios {
		require.True(t, found[name], "docs/card-profiles.md has no worked example %s", name)
	}
	if *updateKAT {
		require.NoError(t, os.WriteFile(path, out, 0o644))
	}
}
