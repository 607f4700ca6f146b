package topup_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"testing"
	"time"

	"kpe-agent/internal/topup"
)

type issuer struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	ca   *x509.Certificate
}

func (i *issuer) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(i.ca)
	return p
}

var t0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

// newIssuer is a test issuer CA and its document signer, valid around t0.
func newIssuer(tb testing.TB, name string, usage x509.KeyUsage) *issuer {
	tb.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"}, NotBefore: t0.AddDate(-1, 0, 0),
		NotAfter: t0.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name + " document signer"},
		NotBefore: t0.AddDate(0, -1, 0), NotAfter: t0.AddDate(1, 0, 0), KeyUsage: usage}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &issuer{key: key, cert: cert, ca: ca}
}

var serial = [8]byte{0x4B, 0x50, 0x45, 0, 0, 0, 0, 0x11}

func signed(tb testing.TB, iss *issuer) *topup.Authorisation {
	tb.Helper()
	a := &topup.Authorisation{ID: [16]byte{1, 2, 3}, Serial: serial, PTC: 7, Amount: 150_000, NotAfter: t0.Add(10*time.Minute + 500*time.Millisecond)}
	if err := a.Sign(iss.key, iss.cert); err != nil {
		tb.Fatal(err)
	}
	return a
}

func TestSignVerify(t *testing.T) {
	iss := newIssuer(t, "BKN", x509.KeyUsageDigitalSignature)
	a := signed(t, iss)
	if !a.NotAfter.Equal(t0.Add(10*time.Minute)) || a.NotAfter.Location() != time.UTC {
		t.Fatalf("not-after kept to the second in UTC: %v", a.NotAfter)
	}
	if err := topup.Verify(a, serial, 7, iss.pool(), t0); err != nil {
		t.Fatalf("a good authorisation: %v", err)
	}
	// through the wire form and back
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back topup.Authorisation
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if err := topup.Verify(&back, serial, 7, iss.pool(), t0); err != nil {
		t.Fatalf("after the wire: %v", err)
	}
	// the last second of its validity, and the first after it
	if err := topup.Verify(a, serial, 7, iss.pool(), a.NotAfter.Add(-time.Nanosecond)); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	if err := topup.Verify(a, serial, 7, iss.pool(), a.NotAfter); !errors.Is(err, topup.ErrExpired) {
		t.Fatalf("at not-after: %v, want ErrExpired", err)
	}
}

func TestVerifyRefusals(t *testing.T) {
	iss := newIssuer(t, "BKN", x509.KeyUsageDigitalSignature)
	other := newIssuer(t, "Other", x509.KeyUsageDigitalSignature)
	noSign := newIssuer(t, "BKN-enc", x509.KeyUsageKeyAgreement)
	good := signed(t, iss)
	mod := func(f func(a *topup.Authorisation)) *topup.Authorisation {
		c := *good
		c.Signature, c.Cert = append([]byte{}, good.Signature...), append([]byte{}, good.Cert...)
		f(&c)
		return &c
	}
	for _, tc := range []struct {
		name string
		a    *topup.Authorisation
		ser  [8]byte
		ptc  uint32
		pool *x509.CertPool
		at   time.Time
		want error
	}{
		{"nil", nil, serial, 7, iss.pool(), t0, topup.ErrFormat},
		{"no signature", mod(func(a *topup.Authorisation) { a.Signature = nil }), serial, 7, iss.pool(), t0, topup.ErrFormat},
		{"bad certificate", mod(func(a *topup.Authorisation) { a.Cert = []byte{0x30, 0x01} }), serial, 7, iss.pool(), t0, topup.ErrFormat},
		{"forged: amount raised after signing", mod(func(a *topup.Authorisation) { a.Amount = 1_500_000 }), serial, 7, iss.pool(), t0, topup.ErrIssuer},
		{"forged: id changed", mod(func(a *topup.Authorisation) { a.ID[0] ^= 1 }), serial, 7, iss.pool(), t0, topup.ErrIssuer},
		{"forged: expiry extended", mod(func(a *topup.Authorisation) { a.NotAfter = a.NotAfter.Add(time.Hour) }), serial, 7, iss.pool(), t0, topup.ErrIssuer},
		{"signed by another key under the same certificate", mod(func(a *topup.Authorisation) {
			s := *a
			_ = s.Sign(other.key, other.cert)
			a.Signature = s.Signature
		}), serial, 7, iss.pool(), t0, topup.ErrIssuer},
		{"untrusted root", mod(func(a *topup.Authorisation) { _ = a.Sign(other.key, other.cert) }), serial, 7, iss.pool(), t0, topup.ErrIssuer},
		{"no roots", good, serial, 7, nil, t0, topup.ErrIssuer},
		{"certificate not for signatures", mod(func(a *topup.Authorisation) { _ = a.Sign(noSign.key, noSign.cert) }), serial, 7, noSign.pool(), t0, topup.ErrIssuer},
		{"certificate expired at the time", good, serial, 7, iss.pool(), t0.AddDate(2, 0, 0), topup.ErrIssuer},
		{"another card", good, [8]byte{0x4B, 0x50, 0x45, 0, 0, 0, 0, 0x12}, 7, iss.pool(), t0, topup.ErrMismatch},
		{"replay: the card's PTC moved", good, serial, 8, iss.pool(), t0, topup.ErrReplayed},
		{"expired", good, serial, 7, iss.pool(), t0.Add(11 * time.Minute), topup.ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := topup.Verify(tc.a, tc.ser, tc.ptc, tc.pool, tc.at)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSignRefusals(t *testing.T) {
	iss := newIssuer(t, "BKN", x509.KeyUsageDigitalSignature)
	other := newIssuer(t, "Other", x509.KeyUsageDigitalSignature)
	a := topup.Authorisation{Serial: serial, PTC: 1, Amount: 1, NotAfter: t0}
	if err := a.Sign(iss.key, other.cert); !errors.Is(err, topup.ErrIssuer) {
		t.Fatalf("a key that is not the certificate's: %v", err)
	}
	if err := a.Sign(nil, iss.cert); !errors.Is(err, topup.ErrIssuer) {
		t.Fatalf("no signer: %v", err)
	}
	z := a
	z.Amount = 0
	if err := z.Sign(iss.key, iss.cert); !errors.Is(err, topup.ErrFormat) {
		t.Fatalf("amount 0: %v", err)
	}
	if a.Signature != nil {
		t.Fatal("a refused Sign leaves no signature")
	}
}

func TestJSONStrict(t *testing.T) {
	iss := newIssuer(t, "BKN", x509.KeyUsageDigitalSignature)
	good, err := json.Marshal(signed(t, iss))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(good, &m); err != nil {
		t.Fatal(err)
	}
	edit := func(k string, v any) []byte {
		c := map[string]any{}
		for kk, vv := range m {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		b, _ := json.Marshal(c)
		return b
	}
	for name, b := range map[string][]byte{
		"unknown field":     edit("extra", 1),
		"short id":          edit("id", "0102"),
		"serial not hex":    edit("card_serial", "zz50450000000011"),
		"amount 0":          edit("amount", 0),
		"negative ptc":      edit("ptc", -1),
		"no cert":           edit("cert", nil),
		"no signature":      edit("signature", nil),
		"fractional expiry": edit("not_after", "2026-12-06T10:10:00.5Z"),
		"trailing data":     append(append([]byte{}, good...), []byte(` {}`)...),
		"key case":          []byte(`{"ID":"00"}`),
	} {
		t.Run(name, func(t *testing.T) {
			var a topup.Authorisation
			if err := a.UnmarshalJSON(b); !errors.Is(err, topup.ErrFormat) {
				t.Fatalf("%s: %v, want ErrFormat", b, err)
			}
		})
	}
}

// VerifySignature is the card-less part of Verify: it refuses what is
// forged or untrusted at the time, and does not judge serial, PTC or
// expiry (the SAM judges those against the order it is asked to MAC).
func TestVerifySignature(t *testing.T) {
	iss := newIssuer(t, "BKN", x509.KeyUsageDigitalSignature)
	other := newIssuer(t, "Other", x509.KeyUsageDigitalSignature)
	good := signed(t, iss)
	if err := topup.VerifySignature(good, iss.pool(), t0.Add(time.Hour)); err != nil {
		t.Fatalf("a good authorisation past its expiry (not judged here): %v", err)
	}
	raised := *good
	raised.Amount++
	if err := topup.VerifySignature(&raised, iss.pool(), t0); !errors.Is(err, topup.ErrIssuer) {
		t.Fatalf("amount raised: %v, want ErrIssuer", err)
	}
	if err := topup.VerifySignature(good, other.pool(), t0); !errors.Is(err, topup.ErrIssuer) {
		t.Fatalf("another root: %v, want ErrIssuer", err)
	}
	if err := topup.VerifySignature(good, iss.pool(), t0.AddDate(2, 0, 0)); !errors.Is(err, topup.ErrIssuer) {
		t.Fatalf("the certificate expired at the time: %v, want ErrIssuer", err)
	}
	if err := topup.VerifySignature(nil, iss.pool(), t0); !errors.Is(err, topup.ErrFormat) {
		t.Fatalf("nil: %v, want ErrFormat", err)
	}
}

func TestDecodeSigned(t *testing.T) {
	iss := newIssuer(t, "BKN", x509.KeyUsageDigitalSignature)
	a := signed(t, iss)
	enc := a.Encode()
	got, err := topup.DecodeSigned(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != a.ID || got.Serial != a.Serial || got.PTC != a.PTC || got.Amount != a.Amount || !got.NotAfter.Equal(a.NotAfter) || got.Cert != nil {
		t.Fatalf("decoded %+v, want the fields of %+v", got, a)
	}
	bad := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, enc...)) }
	for name, b := range map[string][]byte{
		"empty":         nil,
		"truncated":     enc[:len(enc)-1],
		"trailing byte": append(append([]byte{}, enc...), 0),
		"other outer":   bad(func(b []byte) []byte { b[0] = 0x7D; return b }),
		"format 2":      bad(func(b []byte) []byte { b[4] = 2; return b }),
		"amount 0": func() []byte {
			z := *a
			z.Amount = 0
			return z.Encode()
		}(),
	} {
		if _, err := topup.DecodeSigned(b); !errors.Is(err, topup.ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
	}
}
