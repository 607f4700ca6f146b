package renewal_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/kpedata"
	"kpe-agent/internal/renewal"
	"kpe-agent/internal/sod"
)

const nip = "196608011988031001"

var now = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

// issuerKey is a document signer under a CA.
type issuerKey struct {
	key   *ecdsa.PrivateKey
	cert  *x509.Certificate
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
}

func newIssuer(t testing.TB, name string) issuerKey {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	return issuerKey{ca: ca, caKey: caKey}.another(t)
}

// another is a second document signer under the same CA.
func (k issuerKey) another(t testing.TB) issuerKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "document signer"},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(180 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, k.ca, &key.PublicKey, k.caKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return issuerKey{key: key, cert: cert, ca: k.ca, caKey: k.caKey}
}

func (k issuerKey) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(k.ca)
	return p
}

// card is a KPE's groups and its EF.SOD.
type card struct {
	serial [8]byte
	groups map[int][]byte
	sod    []byte
	seq    uint32
}

func newCard(t testing.TB, iss issuerKey) *card {
	groups := map[int][]byte{
		1: kpedata.Identity{NIP: nip, Name: "Budi Santoso", BirthPlace: "Bandung", BirthDate: "19660801", Gender: "L", Address: "Jl. Merdeka 1", NIK: "3273010108660001"}.Encode(),
		2: employment("III/a").Encode(),
		4: kpedata.Benefits{BPJSNumber: "0001234567890", TaspenNumber: "T-123", BankName: "BRI", AccountMasked: "****1234"}.Encode(),
		5: {0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3},
		6: {0x7F, 0x61, 0x03, 0x02, 0x01, 0x00},
	}
	s, err := sod.Sign(groups, iss.key, iss.cert)
	require.NoError(t, err)
	return &card{serial: [8]byte{0, 0, 0, 0, 0, 0, 0, 1}, groups: groups, sod: s}
}

func employment(gol string) kpedata.Employment {
	return kpedata.Employment{Status: "PNS", Pangkat: "Penata Muda", GolonganRuang: gol, TMTPangkat: "20200401", Jabatan: "Analis", TMTJabatan: "20200401", ParentAgency: "BKN", WorkingAgency: "Kanreg I", WorkLocation: "Yogyakarta"}
}

func (c *card) state() renewal.CardState {
	return renewal.CardState{Serial: c.serial, NIP: nip, SOD: c.sod, Sequence: c.seq}
}

// apply writes an offer to the card as the card's COMMIT would.
func (c *card) apply(o *renewal.Offer) {
	for dg, b := range o.Groups {
		c.groups[dg] = b
	}
	c.sod, c.seq = o.SOD, o.Sequence
}

func staged(groups map[int][]byte) renewal.Staged {
	return renewal.Staged{UpdateID: [16]byte{0xAB, 1}, NIP: nip, Groups: groups}
}

func build(t testing.TB, iss issuerKey, c *card, groups map[int][]byte) *renewal.Offer {
	t.Helper()
	o, err := renewal.Build(renewal.BuildInput{Staged: staged(groups), Serial: c.serial, CardSOD: c.sod, CardDG1: c.groups[1], Sequence: c.seq + 1, NotAfter: now.Add(30 * time.Minute)},
		iss.pool(), now, iss.key, iss.cert)
	require.NoError(t, err)
	return o
}

func TestBuildVerifyApply(t *testing.T) {
	iss := newIssuer(t, "BKN")
	c := newCard(t, iss)
	promoted := employment("III/b").Encode()
	o := build(t, iss, c, map[int][]byte{2: promoted, 4: c.groups[4]})
	assert.Equal(t, []int{2}, o.Changed(), "an unchanged group is not written")
	assert.Equal(t, renewal.SODHash(c.sod), o.BaseSOD)
	require.NoError(t, renewal.Verify(o, c.state(), iss.pool(), now))

	// the wire form round-trips
	b, err := json.Marshal(o)
	require.NoError(t, err)
	var back renewal.Offer
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, o, &back)
	require.NoError(t, renewal.Verify(&back, c.state(), iss.pool(), now))

	// written: the card verifies with the new data, and the offer is applied
	c.apply(o)
	obj, err := sod.Parse(c.sod)
	require.NoError(t, err)
	require.NoError(t, obj.VerifySignature(iss.pool(), now))
	for dg, content := range c.groups {
		require.NoError(t, obj.CheckGroup(dg, content), "DG%d", dg)
	}
	assert.ErrorIs(t, renewal.Verify(o, c.state(), iss.pool(), now), renewal.ErrApplied)
}

// Forged offers are refused by Verify, before anything is written.
func TestVerifyRefusesForgeries(t *testing.T) {
	iss := newIssuer(t, "BKN")
	other := newIssuer(t, "not BKN")
	c := newCard(t, iss)
	promoted := map[int][]byte{2: employment("III/b").Encode()}

	t.Run("wrong issuer key", func(t *testing.T) {
		// a well-formed offer signed by a key the terminal does not trust
		c2 := newCard(t, other)
		c2.sod = c.sod // the card's real EF.SOD as base
		o, err := renewal.Build(renewal.BuildInput{Staged: staged(promoted), Serial: c.serial, CardSOD: c2.sod, CardDG1: c.groups[1], Sequence: 1, NotAfter: now.Add(time.Hour)},
			iss.pool(), now, other.key, other.cert)
		require.NoError(t, err)
		assert.ErrorIs(t, renewal.Verify(o, c.state(), iss.pool(), now), renewal.ErrIssuer)
	})
	t.Run("authorisation by another key", func(t *testing.T) {
		// another trusted document signer signs the authorisation: the
		// authorisation must come from the new EF.SOD's own signer
		o := resign(t, iss.another(t), build(t, iss, c, promoted), func(*renewal.Offer) {})
		assert.ErrorIs(t, renewal.Verify(o, c.state(), iss.pool(), now), renewal.ErrIssuer)
		// a field changed after signing
		o = build(t, iss, c, promoted)
		o.Sequence = 7
		assert.ErrorIs(t, renewal.Verify(o, c.state(), iss.pool(), now), renewal.ErrIssuer)
	})
	t.Run("group does not match the security object", func(t *testing.T) {
		o := build(t, iss, c, promoted)
		o.Groups[2] = employment("IV/e").Encode()
		assert.ErrorIs(t, renewal.Verify(o, c.state(), iss.pool(), now), renewal.ErrMismatch)
	})
	t.Run("security object changes a group without its content", func(t *testing.T) {
		// a genuine issuer signature over hashes that change DG4, but the
		// offer carries only DG2
		hashes := map[int][]byte{}
		obj, err := sod.Parse(c.sod)
		require.NoError(t, err)
		for dg, h := range obj.Hashes {
			hashes[dg] = h
		}
		h2 := sha256.Sum256(promoted[2])
		h4 := sha256.Sum256([]byte("other benefits"))
		hashes[2], hashes[4] = h2[:], h4[:]
		newSOD, err := sod.SignHashes(hashes, iss.key, iss.cert)
		require.NoError(t, err)
		o := resign(t, iss, build(t, iss, c, promoted), func(o *renewal.Offer) {
			o.SOD, o.NewSOD = newSOD, renewal.SODHash(newSOD)
		})
		assert.ErrorIs(t, renewal.Verify(o, c.state(), iss.pool(), now), renewal.ErrMismatch)
	})
	t.Run("security object swapped", func(t *testing.T) {
		o := build(t, iss, c, promoted)
		o2 := build(t, iss, c, map[int][]byte{2: employment("III/c").Encode()})
		o.SOD = o2.SOD // trusted, but not the one authorised
		assert.ErrorIs(t, renewal.Verify(o, c.state(), iss.pool(), now), renewal.ErrMismatch)
	})
	t.Run("replayed older update", func(t *testing.T) {
		c := newCard(t, iss)
		first := build(t, iss, c, promoted)
		c.apply(first)
		second := build(t, iss, c, map[int][]byte{2: employment("III/c").Encode()})
		c.apply(second)
		assert.ErrorIs(t, renewal.Verify(first, c.state(), iss.pool(), now), renewal.ErrReplayed)
		assert.ErrorIs(t, renewal.Verify(second, c.state(), iss.pool(), now), renewal.ErrApplied)
	})
	t.Run("sequence not newer", func(t *testing.T) {
		o := build(t, iss, c, promoted)
		st := c.state()
		st.Sequence = o.Sequence
		assert.ErrorIs(t, renewal.Verify(o, st, iss.pool(), now), renewal.ErrReplayed)
	})
	t.Run("another card or holder", func(t *testing.T) {
		o := build(t, iss, c, promoted)
		st := c.state()
		st.Serial[7] = 9
		assert.ErrorIs(t, renewal.Verify(o, st, iss.pool(), now), renewal.ErrMismatch)
		st = c.state()
		st.NIP = "196608011988031002"
		assert.ErrorIs(t, renewal.Verify(o, st, iss.pool(), now), renewal.ErrMismatch)
	})
	t.Run("expired", func(t *testing.T) {
		o := build(t, iss, c, promoted)
		assert.ErrorIs(t, renewal.Verify(o, c.state(), iss.pool(), now.Add(31*time.Minute)), renewal.ErrExpired)
	})
	t.Run("photo or templates", func(t *testing.T) {
		o := resign(t, iss, build(t, iss, c, promoted), func(o *renewal.Offer) { o.Groups[6] = []byte{0x7F, 0x61, 0} })
		assert.ErrorIs(t, renewal.Verify(o, c.state(), iss.pool(), now), renewal.ErrMismatch)
	})
}

// resign changes an offer and signs its authorisation again with the
// issuer's key: what an insider with the key but not the card could do.
func resign(t testing.TB, iss issuerKey, o *renewal.Offer, change func(*renewal.Offer)) *renewal.Offer {
	change(o)
	d := sha256.Sum256(o.Authorisation())
	sig, err := ecdsa.SignASN1(rand.Reader, iss.key, d[:])
	require.NoError(t, err)
	o.Signature = sig
	return o
}

func TestBuildRefuses(t *testing.T) {
	iss := newIssuer(t, "BKN")
	other := newIssuer(t, "not BKN")
	c := newCard(t, iss)
	in := func(groups map[int][]byte, cardSOD []byte) renewal.BuildInput {
		return renewal.BuildInput{Staged: staged(groups), Serial: c.serial, CardSOD: cardSOD, CardDG1: c.groups[1], Sequence: 1, NotAfter: now.Add(time.Hour)}
	}
	promoted := map[int][]byte{2: employment("III/b").Encode()}
	_, err := renewal.Build(in(promoted, []byte{0x77, 0}), iss.pool(), now, iss.key, iss.cert)
	assert.ErrorIs(t, err, renewal.ErrFormat)
	forged := newCard(t, other)
	_, err = renewal.Build(in(promoted, forged.sod), iss.pool(), now, iss.key, iss.cert)
	assert.ErrorIs(t, err, renewal.ErrIssuer, "a card whose EF.SOD does not chain to the roots")
	_, err = renewal.Build(in(map[int][]byte{2: c.groups[2]}, c.sod), iss.pool(), now, iss.key, iss.cert)
	assert.ErrorIs(t, err, renewal.ErrUnchanged)
	_, err = renewal.Build(in(map[int][]byte{5: {0xFF, 0xD8}}, c.sod), iss.pool(), now, iss.key, iss.cert)
	assert.ErrorIs(t, err, renewal.ErrMismatch)
	_, err = renewal.Build(in(map[int][]byte{2: {0x6A, 0x01}}, c.sod), iss.pool(), now, iss.key, iss.cert)
	assert.ErrorIs(t, err, renewal.ErrFormat)
	otherNIP := kpedata.Identity{NIP: "199001012015011001", Name: "X"}.Encode()
	_, err = renewal.Build(in(map[int][]byte{1: otherNIP}, c.sod), iss.pool(), now, iss.key, iss.cert)
	assert.ErrorIs(t, err, renewal.ErrMismatch)
	_, err = renewal.Build(in(promoted, c.sod), iss.pool(), now, other.key, iss.cert)
	assert.ErrorIs(t, err, renewal.ErrIssuer, "a signer whose key is not the certificate's")

	// the card's EF.SOD with another DG1 (another holder's card, or a
	// DG1 made up): nothing is built on it
	noDG1 := in(promoted, c.sod)
	noDG1.CardDG1 = nil
	_, err = renewal.Build(noDG1, iss.pool(), now, iss.key, iss.cert)
	assert.ErrorIs(t, err, renewal.ErrMismatch)
	otherCard := newCard(t, iss)
	otherCard.groups[1] = kpedata.Identity{NIP: "199001012015011001", Name: "Other Holder"}.Encode()
	otherSOD, err := sod.Sign(otherCard.groups, iss.key, iss.cert)
	require.NoError(t, err)
	mixed := in(promoted, otherSOD)
	mixed.CardDG1 = otherCard.groups[1]
	_, err = renewal.Build(mixed, iss.pool(), now, iss.key, iss.cert)
	assert.ErrorIs(t, err, renewal.ErrMismatch, "the staged NIP's groups on another holder's card")
}

func TestOfferJSONStrict(t *testing.T) {
	iss := newIssuer(t, "BKN")
	c := newCard(t, iss)
	o := build(t, iss, c, map[int][]byte{2: employment("III/b").Encode()})
	good, err := json.Marshal(o)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(good, &m))
	for name, change := range map[string]func(map[string]any){
		"unknown field":   func(m map[string]any) { m["extra"] = 1 },
		"short serial":    func(m map[string]any) { m["card_serial"] = "00" },
		"bad NIP":         func(m map[string]any) { m["nip"] = "12" },
		"group 5":         func(m map[string]any) { m["groups"] = map[string]any{"5": "AAEC"} },
		"group 02":        func(m map[string]any) { m["groups"] = map[string]any{"02": "AAEC"} },
		"no groups":       func(m map[string]any) { delete(m, "groups") },
		"no signature":    func(m map[string]any) { delete(m, "signature") },
		"no expiry":       func(m map[string]any) { delete(m, "not_after") },
		"bad hex in hash": func(m map[string]any) { m["new_sod"] = "zz" },
	} {
		t.Run(name, func(t *testing.T) {
			cp := map[string]any{}
			for k, v := range m {
				cp[k] = v
			}
			change(cp)
			b, err := json.Marshal(cp)
			require.NoError(t, err)
			var o renewal.Offer
			assert.ErrorIs(t, json.Unmarshal(b, &o), renewal.ErrFormat)
		})
	}
	var back renewal.Offer
	assert.ErrorIs(t, back.UnmarshalJSON(append(good, []byte(" {}")...)), renewal.ErrFormat)
	// keys exactly as documented and once: encoding/json alone would take
	// "NIP" for "nip" and the last of two
	upper := bytes.Replace(good, []byte(`"nip"`), []byte(`"NIP"`), 1)
	assert.ErrorIs(t, back.UnmarshalJSON(upper), renewal.ErrFormat, "an upper-case key")
	twice := append(bytes.TrimSuffix(good, []byte("}")), []byte(`,"nip":"199001012015011001"}`)...)
	assert.ErrorIs(t, back.UnmarshalJSON(twice), renewal.ErrFormat, "a key given twice")
	require.NoError(t, back.UnmarshalJSON(good))
}
