package kpedata

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"kpe-agent/internal/tlv"
)

// ParseCardInfo parses EF.CardInfo: 70 { 80 serial, 81 type, 82 version,
// 83 largest response, 84 issuer id }.
func ParseCardInfo(b []byte) (CardInfo, error) {
	const group = "CardInfo"
	t, err := parseTemplate(group, b, tagCardInfo)
	if err != nil {
		return CardInfo{}, err
	}
	var ci CardInfo
	var serial, typ, version, maxResp []byte
	for _, c := range t.Children {
		switch c.Tag {
		case 0x80:
			serial = c.Value
		case 0x81:
			typ = c.Value
		case 0x82:
			version = c.Value
		case 0x83:
			maxResp = c.Value
		case 0x84:
			if ci.IssuerID, err = text(c.Value); err != nil {
				return CardInfo{}, &FormatError{Group: group, Field: "issuer", Err: err}
			}
		default:
			if c.Tag.Constructed() || c.Tag.Class() != tlv.ClassContext {
				return CardInfo{}, &FormatError{Group: group, Field: c.Tag.String(), Err: errors.New("unexpected field")}
			}
		}
	}
	if len(serial) != 8 {
		return CardInfo{}, &FormatError{Group: group, Field: "serial", Err: fmt.Errorf("want 8 bytes, got %d", len(serial))}
	}
	copy(ci.Serial[:], serial)
	if len(typ) != 1 || (CardType(typ[0]) != CardKPE && CardType(typ[0]) != CardKPETambahan) {
		return CardInfo{}, &FormatError{Group: group, Field: "card type", Err: errors.New("want 01 or 02")}
	}
	ci.Type = CardType(typ[0])
	if ci.ProfileVersion, err = readUint(version, 1); err != nil || ci.ProfileVersion == 0 {
		return CardInfo{}, &FormatError{Group: group, Field: "profile version", Err: errOr(err, "zero")}
	}
	if ci.MaxResponse, err = readUint(maxResp, 3); err != nil || ci.MaxResponse == 0 {
		return CardInfo{}, &FormatError{Group: group, Field: "largest response", Err: errOr(err, "zero")}
	}
	return ci, nil
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

// readUint decodes a big-endian unsigned integer of 1..max bytes.
func readUint(b []byte, max int) (int, error) {
	if len(b) == 0 || len(b) > max {
		return 0, fmt.Errorf("integer of %d bytes, want 1..%d", len(b), max)
	}
	n := 0
	for _, x := range b {
		n = n<<8 | int(x)
	}
	return n, nil
}

func minimalUint(n int) []byte {
	if n == 0 {
		return []byte{0}
	}
	var out []byte
	for ; n > 0; n >>= 8 {
		out = append([]byte{byte(n)}, out...)
	}
	return out
}

// Encode returns EF.CardInfo.
func (ci CardInfo) Encode() []byte {
	kids := []tlv.TLV{
		tlv.New(0x80, ci.Serial[:]),
		tlv.New(0x81, []byte{byte(ci.Type)}),
		tlv.New(0x82, minimalUint(ci.ProfileVersion)),
		tlv.New(0x83, minimalUint(ci.MaxResponse)),
	}
	if ci.IssuerID != "" {
		kids = append(kids, tlv.New(0x84, []byte(ci.IssuerID)))
	}
	return tlv.NewConstructed(tagCardInfo, kids...).Bytes()
}

func (d *Identity) fields() []field {
	return []field{
		{0x80, "NIP", &d.NIP}, {0x81, "name", &d.Name}, {0x82, "place of birth", &d.BirthPlace},
		{0x83, "date of birth", &d.BirthDate}, {0x84, "gender", &d.Gender}, {0x85, "address", &d.Address},
		{0x86, "NIK", &d.NIK}, {0x87, "ID PNS", &d.IDPNS}, {0x88, "linked NIP", &d.LinkedNIP},
		{0x89, "relation", &d.Relation},
	}
}

// ParseIdentity parses DG1.
func ParseIdentity(b []byte) (Identity, error) {
	const group = "DG1 Identity"
	t, err := parseTemplate(group, b, tagIdentity)
	if err != nil {
		return Identity{}, err
	}
	var d Identity
	if err := fill(group, t, d.fields(), &d.Extra, nil); err != nil {
		return Identity{}, err
	}
	if d.NIP == "" && d.LinkedNIP == "" {
		return Identity{}, &FormatError{Group: group, Field: "NIP", Err: errors.New("missing")}
	}
	if d.Name == "" {
		return Identity{}, &FormatError{Group: group, Field: "name", Err: errors.New("missing")}
	}
	return d, nil
}

// Encode returns DG1.
func (d Identity) Encode() []byte {
	kids := append(encodeFields(d.fields()), encodeExtra(d.Extra)...)
	return tlv.NewConstructed(tagIdentity, kids...).Bytes()
}

func (d *Employment) fields() []field {
	return []field{
		{0x80, "status", &d.Status}, {0x81, "pangkat", &d.Pangkat}, {0x82, "golongan ruang", &d.GolonganRuang},
		{0x83, "TMT pangkat", &d.TMTPangkat}, {0x84, "jabatan", &d.Jabatan}, {0x85, "TMT jabatan", &d.TMTJabatan},
		{0x86, "parent agency", &d.ParentAgency}, {0x87, "working agency", &d.WorkingAgency},
		{0x89, "work location", &d.WorkLocation},
	}
}

// ParseEmployment parses DG2.
func ParseEmployment(b []byte) (Employment, error) {
	const group = "DG2 Employment"
	t, err := parseTemplate(group, b, tagEmployment)
	if err != nil {
		return Employment{}, err
	}
	var d Employment
	err = fill(group, t, d.fields(), &d.Extra, func(c tlv.TLV) error {
		if c.Tag != tagWorkUnit {
			return &FormatError{Group: group, Field: c.Tag.String(), Err: errors.New("unexpected constructed object")}
		}
		var level, name string
		if err := fill(group, c, []field{{0x80, "work unit level", &level}, {0x81, "work unit name", &name}}, nil, nil); err != nil {
			return err
		}
		n, err := strconv.Atoi(level)
		if err != nil || n < 1 || n > 4 || name == "" {
			return &FormatError{Group: group, Field: "work unit", Err: errors.New("want level 1..4 and a name")}
		}
		d.WorkUnits = append(d.WorkUnits, WorkUnit{Level: n, Name: name})
		return nil
	})
	if err != nil {
		return Employment{}, err
	}
	return d, nil
}

// Encode returns DG2.
func (d Employment) Encode() []byte {
	kids := encodeFields(d.fields())
	for _, u := range d.WorkUnits {
		kids = append(kids, tlv.NewConstructed(tagWorkUnit,
			tlv.New(0x80, []byte(strconv.Itoa(u.Level))), tlv.New(0x81, []byte(u.Name))))
	}
	kids = append(kids, encodeExtra(d.Extra)...)
	return tlv.NewConstructed(tagEmployment, kids...).Bytes()
}

// maxMembers bounds DG3 (the chip budgets 10 % of 68 KB each for spouses
// and children, docs/background.md §2; far fewer than this fit).
const maxMembers = 64

// ParseFamily parses DG3.
func ParseFamily(b []byte) (Family, error) {
	const group = "DG3 Family"
	t, err := parseTemplate(group, b, tagFamily)
	if err != nil {
		return Family{}, err
	}
	var f Family
	for _, c := range t.Children {
		if c.Tag != tagSpouse && c.Tag != tagChild {
			return Family{}, &FormatError{Group: group, Field: c.Tag.String(), Err: errors.New("want A0 (spouse) or A1 (child)")}
		}
		if len(f.Members) == maxMembers {
			return Family{}, &FormatError{Group: group, Err: fmt.Errorf("more than %d members", maxMembers)}
		}
		m := Member{Spouse: c.Tag == tagSpouse}
		var dependant, card string
		fs := []field{{0x80, "name", &m.Name}, {0x81, "NIK", &m.NIK}, {0x82, "date of birth", &m.BirthDate},
			{0x83, "relation", &m.Relation}, {0x84, "dependant", &dependant}, {0x85, "KPE Tambahan", &card}}
		if err := fill(group, c, fs, nil, nil); err != nil {
			return Family{}, err
		}
		if m.Name == "" {
			return Family{}, &FormatError{Group: group, Field: "member name", Err: errors.New("missing")}
		}
		switch dependant {
		case "", "\x00":
		case "\x01":
			m.Dependant = true
		default:
			return Family{}, &FormatError{Group: group, Field: "dependant", Err: errors.New("want 00 or 01")}
		}
		if card != "" {
			m.TambahanCard = hex.EncodeToString([]byte(card))
		}
		f.Members = append(f.Members, m)
	}
	return f, nil
}

// Encode returns DG3.
func (f Family) Encode() []byte {
	var kids []tlv.TLV
	for _, m := range f.Members {
		tag := tagChild
		if m.Spouse {
			tag = tagSpouse
		}
		var g []tlv.TLV
		g = append(g, encodeFields([]field{{0x80, "", &m.Name}, {0x81, "", &m.NIK}, {0x82, "", &m.BirthDate}, {0x83, "", &m.Relation}})...)
		dep := byte(0)
		if m.Dependant {
			dep = 1
		}
		g = append(g, tlv.New(0x84, []byte{dep}))
		if card, err := hex.DecodeString(m.TambahanCard); err == nil && len(card) > 0 {
			g = append(g, tlv.New(0x85, card))
		}
		kids = append(kids, tlv.NewConstructed(tag, g...))
	}
	return tlv.NewConstructed(tagFamily, kids...).Bytes()
}

func (d *Benefits) fields() []field {
	return []field{
		{0x80, "BPJS number", &d.BPJSNumber}, {0x81, "Taspen number", &d.TaspenNumber},
		{0x82, "Taperum number", &d.TaperumNumber}, {0x83, "Taperum status", &d.TaperumStatus},
		{0x84, "bank", &d.BankName}, {0x85, "account", &d.AccountMasked},
	}
}

// ParseBenefits parses DG4.
func ParseBenefits(b []byte) (Benefits, error) {
	const group = "DG4 Benefits"
	t, err := parseTemplate(group, b, tagBenefits)
	if err != nil {
		return Benefits{}, err
	}
	var d Benefits
	if err := fill(group, t, d.fields(), &d.Extra, nil); err != nil {
		return Benefits{}, err
	}
	return d, nil
}

// Encode returns DG4.
func (d Benefits) Encode() []byte {
	kids := append(encodeFields(d.fields()), encodeExtra(d.Extra)...)
	return tlv.NewConstructed(tagBenefits, kids...).Bytes()
}
