package record_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/record"
)

func renewalSample() *record.Record {
	r := sample()
	r.Service = record.ServiceRenewal
	r.Fingerprint = record.Check{Outcome: record.Pass}
	r.Renewal = &record.Renewal{
		UpdateID: [16]byte{0xA0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		OldSOD:   [32]byte{0x11, 0x22},
		NewSOD:   [32]byte{0x33, 0x44},
	}
	return r
}

// A renewal's record is written in version 3 with its field, decodes to
// the same record, and its signature covers the field.
func TestRenewalRecordRoundTrip(t *testing.T) {
	s := signer(t)
	r := renewalSample()
	require.NoError(t, record.Seal(context.Background(), r, s))
	assert.Equal(t, uint8(record.VersionRenewal), r.Version)
	b, err := r.Encode()
	require.NoError(t, err)
	assert.Equal(t, byte(record.VersionRenewal), b[3])
	got, err := record.Decode(b)
	require.NoError(t, err)
	assert.Equal(t, r, got)
	require.NoError(t, got.Verify(&s.Key.PublicKey))

	hash, content, err := record.HashesOf(b)
	require.NoError(t, err)
	want, err := got.Hash()
	require.NoError(t, err)
	assert.Equal(t, want, hash)
	assert.Equal(t, hash, content, "version 3 hashes like version 2: the content hash")

	// the field is signed: another new hash breaks the signature
	got.Renewal.NewSOD[0] ^= 1
	assert.ErrorIs(t, got.Verify(&s.Key.PublicKey), record.ErrSignature)

	// any other record stays version 2
	plain := sample()
	require.NoError(t, record.Seal(context.Background(), plain, s))
	assert.Equal(t, uint8(record.Version), plain.Version)
}

func TestRenewalRecordValidate(t *testing.T) {
	for name, mutate := range map[string]func(r *record.Record){
		"renewal field on another service":  func(r *record.Record) { r.Service = "askes" },
		"renewal service without the field": func(r *record.Record) { r.Renewal = nil },
		"KTP-el": func(r *record.Record) {
			r.CardType, r.SubjectKind, r.Subject = record.CardKTPel, record.SubjectNIKHash, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		},
		"no update id":      func(r *record.Record) { r.Renewal.UpdateID = [16]byte{} },
		"nothing changed":   func(r *record.Record) { r.Renewal.NewSOD = r.Renewal.OldSOD },
		"version 2 with it": func(r *record.Record) { r.Version = record.Version },
		"version 3 without": func(r *record.Record) { r.Renewal, r.Service, r.Version = nil, "askes", record.VersionRenewal },
	} {
		t.Run(name, func(t *testing.T) {
			r := renewalSample()
			mutate(r)
			assert.ErrorIs(t, r.Validate(), record.ErrInvalid)
		})
	}
	require.NoError(t, renewalSample().Validate())
}

// A version-2 encoding with the renewal field, or a version-3 encoding
// without it, is not a record.
func TestRenewalRecordDecodeRefuses(t *testing.T) {
	s := signer(t)
	r := renewalSample()
	require.NoError(t, record.Seal(context.Background(), r, s))
	b, err := r.Encode()
	require.NoError(t, err)
	v2 := append([]byte(nil), b...)
	v2[3] = record.Version
	_, err = record.Decode(v2)
	assert.ErrorIs(t, err, record.ErrFormat)

	plain := sample()
	require.NoError(t, record.Seal(context.Background(), plain, s))
	p, err := plain.Encode()
	require.NoError(t, err)
	p[3] = record.VersionRenewal
	_, err = record.Decode(p)
	assert.ErrorIs(t, err, record.ErrFormat)

	p[3] = record.VersionPurse
	_, err = record.Decode(p)
	assert.ErrorIs(t, err, record.ErrFormat)

	p[3] = 5
	_, err = record.Decode(p)
	assert.ErrorIs(t, err, record.ErrFormat)
}
