package record_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/record"
)

func paymentSample() *record.Record {
	r := sample()
	r.Service = record.ServicePayment
	r.Purse = &record.Purse{
		Kind: record.PurseDebit, Amount: 125_000, BalanceAfter: 375_000, PTC: 7, SAMTxn: 41,
		TxnTime: 1_780_000_000_123, Proof: [8]byte{1, 2, 3, 4, 5, 6, 7, 8},
		Request:  [16]byte{0xB0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		Merchant: "apotik-sehat-01", Reference: "INV/2026/12/0001",
	}
	return r
}

func topUpSample() *record.Record {
	r := sample()
	r.Service = record.ServiceTopUp
	r.Purse = &record.Purse{
		Kind: record.PurseCredit, Amount: 500_000, BalanceAfter: 875_000, PTC: 8, SAMTxn: 42,
		TxnTime: 1_780_000_100_000, Proof: [8]byte{9, 9, 9, 9, 9, 9, 9, 9},
		Request: [16]byte{0xC0, 1}, Resolved: true,
	}
	return r
}

// sealedPurse is a sealed purse record's encoding (version 4).
func sealedPurse(t testing.TB, r *record.Record) []byte {
	if err := record.Seal(context.Background(), r, signer(t)); err != nil {
		t.Fatal(err)
	}
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Payment and top-up records are written in version 4 with the purse
// field, decode to the same record, and the signature covers the field.
func TestPurseRecordRoundTrip(t *testing.T) {
	s := signer(t)
	for _, r := range []*record.Record{paymentSample(), topUpSample()} {
		t.Run(r.Service, func(t *testing.T) {
			require.NoError(t, record.Seal(context.Background(), r, s))
			assert.Equal(t, uint8(record.VersionPurse), r.Version)
			b, err := r.Encode()
			require.NoError(t, err)
			assert.Equal(t, byte(record.VersionPurse), b[3])
			got, err := record.Decode(b)
			require.NoError(t, err)
			assert.Equal(t, r, got)
			require.NoError(t, got.Verify(&s.Key.PublicKey))

			hash, content, err := record.HashesOf(b)
			require.NoError(t, err)
			want, err := got.Hash()
			require.NoError(t, err)
			assert.Equal(t, want, hash)
			assert.Equal(t, hash, content)

			got.Purse.Amount++
			assert.ErrorIs(t, got.Verify(&s.Key.PublicKey), record.ErrSignature, "the field is signed")
		})
	}
}

func TestPurseRecordValidate(t *testing.T) {
	for name, mutate := range map[string]func(r *record.Record){
		"purse field on another service":  func(r *record.Record) { r.Service = "askes" },
		"payment without the field":       func(r *record.Record) { r.Purse = nil },
		"credit on a payment":             func(r *record.Record) { r.Purse.Kind = record.PurseCredit },
		"unknown kind":                    func(r *record.Record) { r.Purse.Kind = 9 },
		"amount 0":                        func(r *record.Record) { r.Purse.Amount = 0 },
		"PTC 0":                           func(r *record.Record) { r.Purse.PTC = 0 },
		"no time":                         func(r *record.Record) { r.Purse.TxnTime = 0 },
		"no request":                      func(r *record.Record) { r.Purse.Request = [16]byte{} },
		"payment without merchant":        func(r *record.Record) { r.Purse.Merchant = "" },
		"merchant too long":               func(r *record.Record) { r.Purse.Merchant = string(make([]byte, 33)) },
		"control character in reference":  func(r *record.Record) { r.Purse.Reference = "a\nb" },
		"short serial":                    func(r *record.Record) { r.CardSerial = []byte{1, 2, 3} },
		"version 3 with it":               func(r *record.Record) { r.Version = record.VersionRenewal },
		"version 4 without":               func(r *record.Record) { r.Purse, r.Service, r.Version = nil, "askes", record.VersionPurse },
		"renewal and purse on one record": func(r *record.Record) { r.Renewal = &record.Renewal{UpdateID: [16]byte{1}, NewSOD: [32]byte{1}} },
		"KTP-el": func(r *record.Record) {
			r.CardType, r.SubjectKind, r.Subject = record.CardKTPel, record.SubjectNIKHash, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := paymentSample()
			mutate(r)
			assert.ErrorIs(t, r.Validate(), record.ErrInvalid)
		})
	}
	for name, mutate := range map[string]func(r *record.Record){
		"merchant on a top-up":  func(r *record.Record) { r.Purse.Merchant = "x" },
		"reference on a top-up": func(r *record.Record) { r.Purse.Reference = "x" },
		"debit on a top-up":     func(r *record.Record) { r.Purse.Kind = record.PurseDebit },
	} {
		t.Run(name, func(t *testing.T) {
			r := topUpSample()
			mutate(r)
			assert.ErrorIs(t, r.Validate(), record.ErrInvalid)
		})
	}
	require.NoError(t, paymentSample().Validate())
	require.NoError(t, topUpSample().Validate())
}

// A damaged purse field, or the field under another version, is not a
// record.
func TestPurseRecordDecodeRefuses(t *testing.T) {
	b := sealedPurse(t, paymentSample())
	for name, mutate := range map[string]func(b []byte) []byte{
		"version 2": func(b []byte) []byte { b[3] = record.Version; return b },
		"version 3": func(b []byte) []byte { b[3] = record.VersionRenewal; return b },
		"flags 2": func(b []byte) []byte {
			i := purseAt(t, b)
			b[i+3] = 2
			return b
		},
		"merchant length past the field": func(b []byte) []byte {
			i := purseAt(t, b)
			b[i+2+50] = 200
			return b
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := record.Decode(mutate(append([]byte(nil), b...)))
			assert.ErrorIs(t, err, record.ErrFormat)
		})
	}
}

// purseAt is the offset of the purse field's tag in a version-4 encoding.
func purseAt(t *testing.T, b []byte) int {
	for i := 4; i+1 < len(b); i += 2 + int(b[i+1]) {
		if b[i] == 0x14 {
			return i
		}
	}
	t.Fatal("no purse field")
	return 0
}
