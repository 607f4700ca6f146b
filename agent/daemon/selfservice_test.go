package daemon

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/ktpel"
	"kpe-agent/apdu/verdict"
)

func genuineChecks() cards.Checks {
	return cards.Checks{CardAuthentic: verdict.Check{OK: true}, DataAuthentic: verdict.Check{OK: true}, IdentifiersConsistent: verdict.Check{OK: true}}
}

func kpeResult(photo []byte) *cards.Result {
	return &cards.Result{Kind: cards.KindKPE, Checks: genuineChecks(), KPE: &kpe.Card{
		Info: kpe.CardInfo{Type: kpe.CardKPE},
		Identity: kpe.Identity{NIP: "197208172000031002", Name: "Budi", BirthPlace: "Yogyakarta", BirthDate: "19720817", Gender: "L",
			Address: "Jl. Malioboro", NIK: "3471011708720003", IDPNS: "A8F3"},
		Employment: kpe.Employment{Status: "PNS", GolonganRuang: "IV/c", TMTPangkat: "20200401", TMTJabatan: "2021-01",
			WorkUnits: []kpe.WorkUnit{{Level: 1, Name: "Dinas Kesehatan"}}},
		Family: kpe.Family{Members: []kpe.Member{
			{Spouse: true, Name: "Sri", NIK: "3471015503750002", BirthDate: "19750315", Relation: "Istri", Dependant: true, TambahanCard: "0000000000000102"},
			{Name: "Andi", BirthDate: "20010412", Relation: "Anak Kandung"},
		}},
		Benefits: kpe.Benefits{BPJSNumber: "0001234567890", BankName: "Bank BPD DIY", AccountMasked: "****4321"},
		Photo:    photo,
		BIT:      []byte{1, 2, 3},
	}}
}

// The view holds what the holder may see of their card, in the
// contract's shape; nothing more (no NIK, ID PNS, template).
func TestSelfServiceView(t *testing.T) {
	photo := []byte{0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3}
	res := kpeResult(photo)
	ss := newSelfService("kiosk-1", res)
	assert.Nil(t, res.KPE.Photo, "the result keeps no photo")
	assert.Equal(t, photo, ss.photo)
	b, err := json.Marshal(ss.view)
	require.NoError(t, err)
	assert.JSONEq(t, `{"kind":"kpe","verified":true,
		"identity":{"name":"Budi","nip":"197208172000031002","birth_place":"Yogyakarta","birth_date":"1972-08-17","gender":"L","address":"Jl. Malioboro"},
		"employment":{"status":"PNS","golongan_ruang":"IV/c","tmt_pangkat":"2020-04-01","tmt_jabatan":"2021-01","work_units":[{"level":1,"name":"Dinas Kesehatan"}]},
		"family":[{"role":"spouse","relation":"Istri","name":"Sri","birth_date":"1975-03-15","dependant":true,"kpe_tambahan":true},
		          {"role":"child","relation":"Anak Kandung","name":"Andi","birth_date":"2001-04-12","dependant":false,"kpe_tambahan":false}],
		"benefits":{"askes_bpjs":"0001234567890","bank":"Bank BPD DIY","account_masked":"****4321"},
		"photo":true}`, string(b))
	assert.NotContains(t, string(b), "3471", "no NIK")

	ss.wipe()
	assert.Equal(t, make([]byte, len(photo)), photo, "the photo's bytes are zeroed")
	assert.Nil(t, ss.photo)
	assert.Equal(t, api.KioskView{}, ss.view)

	// a KPE Tambahan: its link to the civil servant; no employment or
	// benefits when the card has none; a photo that is no JPEG is dropped
	res = &cards.Result{Kind: cards.KindKPETambahan, Checks: genuineChecks(), KPE: &kpe.Card{
		Info:     kpe.CardInfo{Type: kpe.CardKPETambahan},
		Identity: kpe.Identity{Name: "Sri", LinkedNIP: "197208172000031002", Relation: "S"},
		Photo:    []byte("not a jpeg"),
	}}
	notJPEG := res.KPE.Photo
	ss = newSelfService("", res)
	b, err = json.Marshal(ss.view)
	require.NoError(t, err)
	assert.JSONEq(t, `{"kind":"kpe-tambahan","verified":true,"identity":{"name":"Sri"},"tambahan":{"nip":"197208172000031002","relation":"spouse"}}`, string(b))
	assert.Equal(t, make([]byte, len(notJPEG)), notJPEG)
	assert.Nil(t, res.KPE.Photo)

	// a KTP-el: its kind and that it is verified, nothing else
	res = &cards.Result{Kind: cards.KindKTPel, Checks: genuineChecks(), KTPel: &ktpel.Card{Biodata: ktpel.Biodata{NIK: "3471015503750002", Name: "Siti"}}}
	ss = newSelfService("kiosk-2", res)
	b, err = json.Marshal(ss.view)
	require.NoError(t, err)
	assert.JSONEq(t, `{"kind":"ktpel","verified":true}`, string(b))
}

func TestSelfServiceHelpers(t *testing.T) {
	for in, want := range map[string]string{"19720817": "1972-08-17", "": "", "1972081": "1972081", "1972-08-17": "1972-08-17", "1972O817": "1972O817"} {
		assert.Equal(t, want, isoDate(in), in)
	}
	assert.Equal(t, "spouse", relation("S"))
	assert.Equal(t, "child", relation("C"))
	assert.Equal(t, "X", relation("X"))
	assert.True(t, isJPEG([]byte{0xFF, 0xD8, 0xFF, 0xDB}))
	assert.False(t, isJPEG([]byte{0xFF, 0xD8, 0xFF}))
	assert.False(t, isJPEG([]byte("\x89PNG\r\n")))
}

// Who reads the view: the credential that authenticated, or the token;
// only while the card that was authenticated is in; wiped when it leaves.
func TestSelfServiceAccess(t *testing.T) {
	d := &Daemon{readers: map[string]*reader{}}
	d.sam = newSAMHolder(d)
	r := newReader(d, "r0", roleCard)
	d.readers["r0"] = r
	notAvailable := func(err error) bool {
		var f *Failure
		return errors.As(err, &f) && f.Code == CodeNotAvailable
	}

	_, err := d.KioskView("r0", "")
	assert.True(t, notAvailable(err), "no card: %v", err)

	r.present = true
	r.sess = &cards.Session{}
	photo := []byte{0xFF, 0xD8, 0xFF, 0xE0, 9, 9}
	r.keepSelfService(&cards.Session{}, "kiosk-1", kpeResult(photo))
	_, err = d.KioskView("r0", "kiosk-1")
	assert.True(t, notAvailable(err), "kept for another card session: nothing kept")
	assert.Equal(t, make([]byte, 6), photo, "and its photo zeroed")

	photo = []byte{0xFF, 0xD8, 0xFF, 0xE0, 9, 9}
	r.keepSelfService(r.sess, "kiosk-1", kpeResult(photo))
	for _, cred := range []string{"kiosk-1", ""} {
		v, err := d.KioskView("", cred)
		require.NoError(t, err, cred)
		assert.Equal(t, "Budi", v.Identity.Name)
		p, err := d.KioskPhoto("r0", cred)
		require.NoError(t, err)
		assert.Equal(t, photo, p)
		p[4] = 0
		assert.Equal(t, byte(9), photo[4], "a copy")
	}
	_, err = d.KioskView("r0", "kiosk-2")
	assert.True(t, notAvailable(err), "another kiosk credential")
	_, err = d.KioskPhoto("r0", "kiosk-2")
	assert.True(t, notAvailable(err))
	_, err = d.KioskView("r9", "")
	var f *Failure
	require.ErrorAs(t, err, &f)
	assert.Equal(t, CodeNoReader, f.Code)

	// a second kiosk authentication replaces the first, wiping it
	second := []byte{0xFF, 0xD8, 0xFF, 0xE0, 7}
	r.keepSelfService(r.sess, "kiosk-2", kpeResult(second))
	assert.Equal(t, make([]byte, 6), photo)
	_, err = d.KioskView("r0", "kiosk-1")
	assert.True(t, notAvailable(err))
	_, err = d.KioskView("r0", "kiosk-2")
	assert.NoError(t, err)

	// the card leaves: wiped
	r.present = false
	r.wipeSelfService()
	assert.Equal(t, make([]byte, 5), second)
	_, err = d.KioskView("r0", "")
	assert.True(t, notAvailable(err))
	_, err = d.KioskPhoto("r0", "kiosk-2")
	assert.True(t, notAvailable(err))

	// a KTP-el has no photo
	r.present = true
	r.keepSelfService(r.sess, "kiosk-3", &cards.Result{Kind: cards.KindKTPel, Checks: genuineChecks(), KTPel: &ktpel.Card{}})
	v, err := d.KioskView("r0", "kiosk-3")
	require.NoError(t, err)
	assert.Equal(t, api.KioskView{Kind: "ktpel", Verified: true}, v)
	_, err = d.KioskPhoto("r0", "kiosk-3")
	assert.True(t, notAvailable(err))
}
