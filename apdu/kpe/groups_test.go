package kpe

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"kpe-agent/internal/tlv"
)

// Sample data: invented people, realistic shapes.
func sampleIdentity() Identity {
	return Identity{
		NIP: "196608011988031001", Name: "Dr. Ir. Bambang Sutrisno, M.Si.", BirthPlace: "Yogyakarta",
		BirthDate: "19660801", Gender: "L", Address: "Jl. Malioboro No. 12, Yogyakarta",
		NIK: "3471010108660001", IDPNS: "A5EB03E23BFBF6A0E040640A040252AD",
	}
}

func sampleEmployment() Employment {
	return Employment{
		Status: "PNS", Pangkat: "Pembina Utama Muda", GolonganRuang: "IV/c", TMTPangkat: "20180401",
		Jabatan: "Kepala Bagian Umum", TMTJabatan: "20200115", ParentAgency: "Badan Kepegawaian Negara",
		WorkingAgency: "Kantor Regional I BKN", WorkLocation: "Yogyakarta",
		WorkUnits: []WorkUnit{{Level: 1, Name: "Kantor Regional I"}, {Level: 2, Name: "Bagian Umum"}, {Level: 3, Name: "Subbagian Tata Usaha"}},
	}
}

func sampleFamily() Family {
	return Family{Members: []Member{
		{Spouse: true, Name: "Sri Wahyuni", NIK: "3471014506700002", BirthDate: "19700605", Relation: "ISTRI", Dependant: true, TambahanCard: "0000000000000102"},
		{Name: "Rina Sutrisno", NIK: "3471015203950003", BirthDate: "19950312", Relation: "ANAK", Dependant: false},
		{Name: "Adi Sutrisno", NIK: "3471011011030004", BirthDate: "20031110", Relation: "ANAK", Dependant: true, TambahanCard: "0000000000000103"},
	}}
}

func TestRoundTrips(t *testing.T) {
	ci := CardInfo{Serial: [8]byte{0, 0, 0, 0, 0, 0, 1, 1}, Type: CardKPE, ProfileVersion: 1, MaxResponse: 256, IssuerID: "BKN"}
	gotCI, err := ParseCardInfo(ci.Encode())
	require.NoError(t, err)
	require.Equal(t, ci, gotCI)

	id := sampleIdentity()
	id.Extra = map[tlv.Tag][]byte{0x8A: []byte("future field")}
	gotID, err := ParseIdentity(id.Encode())
	require.NoError(t, err)
	require.Equal(t, id, gotID)

	emp := sampleEmployment()
	gotEmp, err := ParseEmployment(emp.Encode())
	require.NoError(t, err)
	require.Equal(t, emp, gotEmp)

	fam := sampleFamily()
	gotFam, err := ParseFamily(fam.Encode())
	require.NoError(t, err)
	require.Equal(t, fam, gotFam)

	ben := Benefits{BPJSNumber: "0001234567890", TaspenNumber: "19660801198803", TaperumNumber: "TP-0099123",
		TaperumStatus: "AKTIF", BankName: "BRI", AccountMasked: "************4321"}
	gotBen, err := ParseBenefits(ben.Encode())
	require.NoError(t, err)
	require.Equal(t, ben, gotBen)

	// EF contents are padded after the template.
	padded := append(ben.Encode(), 0x00, 0x00, 0xFF)
	_, err = ParseBenefits(padded)
	require.NoError(t, err)
}

func TestParseErrors(t *testing.T) {
	id := sampleIdentity().Encode()
	for name, tc := range map[string]struct {
		b     []byte
		parse func([]byte) error
	}{
		"truncated":           {id[:len(id)-3], func(b []byte) error { _, err := ParseIdentity(b); return err }},
		"wrong template":      {sampleEmployment().Encode(), func(b []byte) error { _, err := ParseIdentity(b); return err }},
		"trailing object":     {append(append([]byte{}, id...), 0x80, 0x01, 0x00), func(b []byte) error { _, err := ParseIdentity(b); return err }},
		"duplicate field":     {tlv.NewConstructed(0x61, tlv.New(0x80, []byte("1")), tlv.New(0x80, []byte("2")), tlv.New(0x81, []byte("x"))).Bytes(), func(b []byte) error { _, err := ParseIdentity(b); return err }},
		"not utf8":            {tlv.NewConstructed(0x61, tlv.New(0x80, []byte("1")), tlv.New(0x81, []byte{0xFF, 0xFE})).Bytes(), func(b []byte) error { _, err := ParseIdentity(b); return err }},
		"missing name":        {tlv.NewConstructed(0x61, tlv.New(0x80, []byte("1"))).Bytes(), func(b []byte) error { _, err := ParseIdentity(b); return err }},
		"unknown constructed": {tlv.NewConstructed(0x61, tlv.New(0x81, []byte("x")), tlv.NewConstructed(0xA5)).Bytes(), func(b []byte) error { _, err := ParseIdentity(b); return err }},
		"application tag":     {tlv.NewConstructed(0x61, tlv.New(0x81, []byte("x")), tlv.New(0x42, []byte("y"))).Bytes(), func(b []byte) error { _, err := ParseIdentity(b); return err }},
		"bad work unit":       {tlv.NewConstructed(0x6A, tlv.NewConstructed(0xA0, tlv.New(0x80, []byte("9")), tlv.New(0x81, []byte("x")))).Bytes(), func(b []byte) error { _, err := ParseEmployment(b); return err }},
		"bad member tag":      {tlv.NewConstructed(0x6B, tlv.NewConstructed(0xA2, tlv.New(0x80, []byte("x")))).Bytes(), func(b []byte) error { _, err := ParseFamily(b); return err }},
		"bad dependant":       {tlv.NewConstructed(0x6B, tlv.NewConstructed(0xA1, tlv.New(0x80, []byte("x")), tlv.New(0x84, []byte{7}))).Bytes(), func(b []byte) error { _, err := ParseFamily(b); return err }},
		"short serial":        {tlv.NewConstructed(0x70, tlv.New(0x80, []byte{1}), tlv.New(0x81, []byte{1}), tlv.New(0x82, []byte{1}), tlv.New(0x83, []byte{1})).Bytes(), func(b []byte) error { _, err := ParseCardInfo(b); return err }},
		"bad card type":       {tlv.NewConstructed(0x70, tlv.New(0x80, make([]byte, 8)), tlv.New(0x81, []byte{9}), tlv.New(0x82, []byte{1}), tlv.New(0x83, []byte{1})).Bytes(), func(b []byte) error { _, err := ParseCardInfo(b); return err }},
		"empty":               {nil, func(b []byte) error { _, err := ParseBenefits(b); return err }},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.parse(tc.b)
			require.Error(t, err)
			require.ErrorIs(t, err, ErrFormat)
			var fe *FormatError
			require.True(t, errors.As(err, &fe), "%T", err)
		})
	}
}
