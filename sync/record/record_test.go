package record_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/record"
)

func sample() *record.Record {
	return &record.Record{
		ID:          [16]byte{0x01, 0x8f, 0x3a, 0x4b, 0x5c, 0x6d, 0x7e, 0x8f, 0x90, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07},
		TerminalID:  "pkm-cilandak-01",
		SiteID:      "puskesmas-cilandak",
		OperatorID:  "petugas-017",
		Service:     "askes",
		CardType:    record.CardKPE,
		CardSerial:  []byte{0x4b, 0x50, 0x45, 0x00, 0x00, 0x00, 0x01, 0x23},
		SubjectKind: record.SubjectNIP,
		Subject:     "196608011988031001",
		CardAuth:    record.Check{Outcome: record.Pass},
		IssuerSig:   record.Check{Outcome: record.Pass},
		Identifiers: record.Check{Outcome: record.Pass},
		Fingerprint: record.Check{Outcome: record.Skipped, Reason: "no-sensor"},
		Time:        time.Date(2026, 11, 23, 9, 15, 0, 123_000_000, time.UTC),
		Clock:       record.ClockSynced,
		Signer:      record.SignerSoftware,
	}
}

func signer(t testing.TB) *record.SoftwareSigner {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return record.NewSoftwareSigner(k, [8]byte{'S', 'A', 'M', 0, 0, 0, 0, 7}, 41)
}

func TestSealEncodeDecodeVerify(t *testing.T) {
	s := signer(t)
	r := sample()
	r.Time = r.Time.Add(456 * time.Microsecond) // cut to the millisecond by Seal
	require.NoError(t, record.Seal(context.Background(), r, s))
	assert.Equal(t, uint32(42), r.Counter)
	assert.Equal(t, record.SignerSoftware, r.Signer)
	assert.Equal(t, s.Serial(), r.SAMSerial)
	assert.Equal(t, 123_000_000, r.Time.Nanosecond())
	require.NoError(t, r.Verify(&s.Key.PublicKey))

	b, err := r.Encode()
	require.NoError(t, err)
	got, err := record.Decode(b)
	require.NoError(t, err)
	assert.Equal(t, r, got)
	require.NoError(t, got.Verify(&s.Key.PublicKey))

	again, err := got.Encode()
	require.NoError(t, err)
	assert.Equal(t, b, again, "one encoding per record")

	other := signer(t)
	assert.ErrorIs(t, r.Verify(&other.Key.PublicKey), record.ErrSignature)
	assert.ErrorIs(t, r.Verify(nil), record.ErrSignature)
}

// Changing any field, the counter or the serial breaks the signature.
func TestAnyChangeBreaksSignature(t *testing.T) {
	s := signer(t)
	r := sample()
	require.NoError(t, record.Seal(context.Background(), r, s))
	pub := &s.Key.PublicKey
	mutations := map[string]func(*record.Record){
		"id":          func(r *record.Record) { r.ID[15] ^= 1 },
		"terminal":    func(r *record.Record) { r.TerminalID += "x" },
		"site":        func(r *record.Record) { r.SiteID = "other" },
		"operator":    func(r *record.Record) { r.OperatorID = "petugas-018" },
		"service":     func(r *record.Record) { r.Service = "taspen" },
		"card type":   func(r *record.Record) { r.CardType = record.CardKPETambahan },
		"card serial": func(r *record.Record) { r.CardSerial = append([]byte{}, 1, 2, 3) },
		"subject":     func(r *record.Record) { r.Subject = "196608011988031002" },
		"card auth":   func(r *record.Record) { r.CardAuth = record.Check{Outcome: record.Fail, Reason: "clone"} },
		"issuer sig":  func(r *record.Record) { r.IssuerSig = record.Check{Outcome: record.Fail, Reason: "group-2"} },
		"identifiers": func(r *record.Record) { r.Identifiers = record.Check{Outcome: record.Fail, Reason: "nip-birth-date"} },
		"fingerprint": func(r *record.Record) { r.Fingerprint = record.Check{Outcome: record.Pass} },
		"reason":      func(r *record.Record) { r.Fingerprint.Reason = "no-sensor2" },
		"time":        func(r *record.Record) { r.Time = r.Time.Add(time.Millisecond) },
		"clock":       func(r *record.Record) { r.Clock = record.ClockUnsynced },
		"signer":      func(r *record.Record) { r.Signer = record.SignerSAM },
		"sam serial":  func(r *record.Record) { r.SAMSerial[0] ^= 1 },
		"prev hash":   func(r *record.Record) { r.PrevHash[31] = 1 },
		"counter":     func(r *record.Record) { r.Counter++ },
		"signature":   func(r *record.Record) { r.Signature[10] ^= 1 },
	}
	for name, m := range mutations {
		c := *r
		c.CardSerial = append([]byte(nil), r.CardSerial...)
		m(&c)
		assert.ErrorIs(t, c.Verify(pub), record.ErrSignature, name)
	}
	require.NoError(t, r.Verify(pub), "the original still verifies")
}

func TestHashChainsAndCode(t *testing.T) {
	s := signer(t)
	a := sample()
	require.NoError(t, record.Seal(context.Background(), a, s))
	ha, err := a.Hash()
	require.NoError(t, err)
	b := sample()
	b.ID[0] = 2
	b.PrevHash = ha
	require.NoError(t, record.Seal(context.Background(), b, s))
	hb, err := b.Hash()
	require.NoError(t, err)
	assert.NotEqual(t, ha, hb)
	assert.NotEqual(t, record.CodeOf(ha), record.CodeOf(hb))
	assert.Equal(t, uint32(43), b.Counter)
}

func TestValidate(t *testing.T) {
	cases := map[string]func(*record.Record){
		"zero id":        func(r *record.Record) { r.ID = [16]byte{} },
		"empty terminal": func(r *record.Record) { r.TerminalID = "" },
		"control char":   func(r *record.Record) { r.OperatorID = "a\nb" },
		"long site":      func(r *record.Record) { r.SiteID = strings.Repeat("s", 65) },
		"bad utf-8":      func(r *record.Record) { r.SiteID = "\xff" },
		"service case":   func(r *record.Record) { r.Service = "ASKES" },
		"no card type":   func(r *record.Record) { r.CardType = 0 },
		"no serial":      func(r *record.Record) { r.CardSerial = nil },
		"long serial":    func(r *record.Record) { r.CardSerial = make([]byte, 17) },
		"short nip":      func(r *record.Record) { r.Subject = "1966" },
		"nip on ktp-el":  func(r *record.Record) { r.CardType = record.CardKTPel },
		"nik hash on kpe": func(r *record.Record) {
			r.SubjectKind, r.Subject = record.SubjectNIKHash, record.NIKHash([]byte("k"), "3174096112900001")
		},
		"fail without reason":  func(r *record.Record) { r.CardAuth = record.Check{Outcome: record.Fail} },
		"no outcome":           func(r *record.Record) { r.IssuerSig = record.Check{} },
		"reason with spaces":   func(r *record.Record) { r.Fingerprint.Reason = "no sensor" },
		"zero time":            func(r *record.Record) { r.Time = time.Time{} },
		"clock unknown":        func(r *record.Record) { r.Clock = 9 },
		"signer unknown":       func(r *record.Record) { r.Signer = 0 },
		"subject kind unknown": func(r *record.Record) { r.SubjectKind = 7 },
	}
	for name, m := range cases {
		r := sample()
		m(r)
		err := r.Validate()
		assert.ErrorIs(t, err, record.ErrInvalid, name)
		_, err = r.Encode()
		assert.ErrorIs(t, err, record.ErrInvalid, name)
	}
	r := sample()
	r.CardType, r.SubjectKind, r.Subject = record.CardKTPel, record.SubjectNIKHash, record.NIKHash([]byte("institution key"), "3174096112900001")
	require.NoError(t, r.Validate())
	assert.NotContains(t, r.Subject, "3174096112900001")
	r.SubjectKind, r.Subject = record.SubjectNIK, "3174096112900001"
	require.NoError(t, r.Validate(), "the NIK itself is a configuration choice")
}

func sealed(t testing.TB) []byte {
	r := sample()
	require.NoError(t, record.Seal(context.Background(), r, signer(t)))
	b, err := r.Encode()
	require.NoError(t, err)
	return b
}

func TestDecodeRefuses(t *testing.T) {
	b := sealed(t)
	var fe *record.FormatError
	for n := 0; n < len(b); n++ {
		_, err := record.Decode(b[:n])
		require.ErrorIs(t, err, record.ErrFormat, "truncated to %d", n)
	}
	cases := map[string][]byte{
		"magic":     append([]byte("XPR"), b[3:]...),
		"version":   append([]byte{'K', 'P', 'R', 3}, b[4:]...),
		"version 0": append([]byte{'K', 'P', 'R', 0}, b[4:]...),
		"trailing":  append(append([]byte{}, b...), 0),
		"too long":  make([]byte, record.MaxEncoded+1),
	}
	// field order: swap the terminal and site fields
	i := 4 + 2 + 16
	tl := int(b[i+1])
	sl := int(b[i+2+tl+1])
	swapped := append([]byte{}, b[:i]...)
	swapped = append(swapped, b[i+2+tl:i+2+tl+2+sl]...)
	swapped = append(swapped, b[i:i+2+tl]...)
	swapped = append(swapped, b[i+2+tl+2+sl:]...)
	cases["order"] = swapped
	// a field length that lies
	lying := append([]byte{}, b...)
	lying[4+1] = 15
	cases["id length"] = lying
	for name, c := range cases {
		_, err := record.Decode(c)
		require.ErrorAs(t, err, &fe, name)
		assert.ErrorIs(t, err, record.ErrFormat, name)
	}
	// valid framing, invalid value: an unknown card type
	bad := append([]byte{}, b...)
	idx := bytes.Index(bad, []byte{0x06, 0x01, byte(record.CardKPE)})
	require.Positive(t, idx)
	bad[idx+2] = 9
	_, err := record.Decode(bad)
	assert.ErrorIs(t, err, record.ErrFormat)
	assert.ErrorIs(t, err, record.ErrInvalid)
}

func TestSignerFailureLeavesRecord(t *testing.T) {
	r := sample()
	before := *r
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := record.Seal(ctx, r, signer(t))
	assert.ErrorIs(t, err, record.ErrSign)
	assert.True(t, errors.Is(err, context.Canceled))
	assert.Equal(t, before, *r)
}
