// Package kpedata is the KPE and KPE Tambahan data model of
// docs/card-profiles.md §2.2: the data groups as typed Go structs, with
// their strict BER-TLV parsers and encoders. The terminal's reader
// (apdu/kpe, which re-exports these types) parses what a card holds; the
// back office encodes the new groups of a data renewal (docs/renewal.md);
// the lab personalises its cards with the same encoders.
//
// Parsers treat card data as hostile: every malformed structure gives a
// *FormatError naming the data group, never a panic. Unknown primitive
// context tags inside a group are kept in Extra (a later profile version may
// add fields); an unknown constructed tag rejects the group.
//
// These structs hold personal data. On a terminal they are for memory only:
// never log or persist them (docs/background.md §4).
package kpedata

import (
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"kpe-agent/internal/tlv"
)

// Data-group numbers used in the security object (docs/card-profiles.md
// §2.1).
const (
	DGIdentity   = 1
	DGEmployment = 2
	DGFamily     = 3
	DGBenefits   = 4
	DGPhoto      = 5
	DGBIT        = 6
)

// Application tags of the data-group templates.
const (
	tagCardInfo   tlv.Tag = 0x70
	tagIdentity   tlv.Tag = 0x61
	tagEmployment tlv.Tag = 0x6A
	tagFamily     tlv.Tag = 0x6B
	tagBenefits   tlv.Tag = 0x6C
	tagSpouse     tlv.Tag = 0xA0
	tagChild      tlv.Tag = 0xA1
	tagWorkUnit   tlv.Tag = 0xA0
)

// ErrFormat is matched by every parse error of this package.
var ErrFormat = errors.New("kpe: malformed data group")

// FormatError says which group and which field is malformed.
type FormatError struct {
	Group string // "CardInfo", "DG1 Identity", ...
	Field string // tag or field name, may be empty
	Err   error  // cause (tlv errors included)
}

func (e *FormatError) Error() string {
	msg := "kpe: " + e.Group
	if e.Field != "" {
		msg += " " + e.Field
	}
	return msg + ": " + e.Err.Error()
}

func (e *FormatError) Unwrap() []error { return []error{ErrFormat, e.Err} }

// CardType distinguishes a civil servant's KPE from a family member's.
type CardType byte

const (
	CardKPE          CardType = 0x01
	CardKPETambahan  CardType = 0x02
	maxReasonableLen          = 4096 // longest text field we accept
)

func (t CardType) String() string {
	switch t {
	case CardKPE:
		return "KPE"
	case CardKPETambahan:
		return "KPE Tambahan"
	}
	return fmt.Sprintf("unknown(%02X)", byte(t))
}

// CardInfo is EF.CardInfo, readable without authentication.
type CardInfo struct {
	Serial         [8]byte
	Type           CardType
	ProfileVersion int
	MaxResponse    int // largest response data the card returns
	IssuerID       string
}

// Identity is DG1.
type Identity struct {
	NIP        string
	Name       string // with titles
	BirthPlace string
	BirthDate  string // YYYYMMDD (DateLayout)
	Gender     string // GenderMale or GenderFemale
	Address    string
	NIK        string
	IDPNS      string // 32 characters
	LinkedNIP  string // KPE Tambahan: NIP of the civil servant
	Relation   string // KPE Tambahan: "S" spouse, "C" child
	Extra      map[tlv.Tag][]byte
}

// WorkUnit is one level of the organisational path (echelon I-III).
type WorkUnit struct {
	Level int
	Name  string
}

// Employment is DG2.
type Employment struct {
	Status        string // CPNS, PNS, PENSIUN
	Pangkat       string
	GolonganRuang string
	TMTPangkat    string // YYYYMMDD
	Jabatan       string
	TMTJabatan    string
	ParentAgency  string
	WorkingAgency string
	WorkUnits     []WorkUnit
	WorkLocation  string
	Extra         map[tlv.Tag][]byte
}

// Member is a spouse or a child in DG3.
type Member struct {
	Spouse       bool // false: child
	Name         string
	NIK          string
	BirthDate    string
	Relation     string
	Dependant    bool
	TambahanCard string // serial of the member's KPE Tambahan, hex, may be empty
}

// Family is DG3.
type Family struct {
	Members []Member
}

// Benefits is DG4.
type Benefits struct {
	BPJSNumber    string
	TaspenNumber  string
	TaperumNumber string
	TaperumStatus string
	BankName      string
	AccountMasked string
	Extra         map[tlv.Tag][]byte
}

// field describes one primitive text field of a group.
type field struct {
	tag  tlv.Tag
	name string
	dst  *string
}

// parseTemplate parses exactly one constructed object with the given tag
// from b (00/FF padding after it is allowed, as EF contents are padded).
func parseTemplate(group string, b []byte, tag tlv.Tag) (tlv.TLV, error) {
	list, err := tlv.ParseWith(b, tlv.Options{AllowPadding: true})
	if err != nil {
		return tlv.TLV{}, &FormatError{Group: group, Err: err}
	}
	if len(list) != 1 || list[0].Tag != tag {
		return tlv.TLV{}, &FormatError{Group: group, Err: fmt.Errorf("want one %s template", tag)}
	}
	return list[0], nil
}

// fill assigns the primitive children of t to the fields, collecting
// unknown primitive context tags in extra and rejecting duplicates, unknown
// constructed tags and invalid text.
func fill(group string, t tlv.TLV, fields []field, extra *map[tlv.Tag][]byte, constructed func(tlv.TLV) error) error {
	seen := map[tlv.Tag]bool{}
	for _, c := range t.Children {
		if seen[c.Tag] && !c.Tag.Constructed() {
			return &FormatError{Group: group, Field: c.Tag.String(), Err: errors.New("duplicate field")}
		}
		seen[c.Tag] = true
		if c.Tag.Constructed() {
			if constructed == nil {
				return &FormatError{Group: group, Field: c.Tag.String(), Err: errors.New("unexpected constructed object")}
			}
			if err := constructed(c); err != nil {
				return err
			}
			continue
		}
		matched := false
		for _, f := range fields {
			if f.tag == c.Tag {
				s, err := text(c.Value)
				if err != nil {
					return &FormatError{Group: group, Field: f.name, Err: err}
				}
				*f.dst = s
				matched = true
				break
			}
		}
		if matched {
			continue
		}
		if c.Tag.Class() != tlv.ClassContext || extra == nil {
			return &FormatError{Group: group, Field: c.Tag.String(), Err: errors.New("unexpected field")}
		}
		if *extra == nil {
			*extra = map[tlv.Tag][]byte{}
		}
		(*extra)[c.Tag] = append([]byte(nil), c.Value...)
	}
	return nil
}

func text(b []byte) (string, error) {
	if len(b) > maxReasonableLen {
		return "", fmt.Errorf("text of %d bytes is too long", len(b))
	}
	if !utf8.Valid(b) {
		return "", errors.New("text is not UTF-8")
	}
	return string(b), nil
}

func encodeFields(fields []field) []tlv.TLV {
	var out []tlv.TLV
	for _, f := range fields {
		if *f.dst != "" {
			out = append(out, tlv.New(f.tag, []byte(*f.dst)))
		}
	}
	return out
}

func encodeExtra(extra map[tlv.Tag][]byte) []tlv.TLV {
	var tags []tlv.Tag
	for t := range extra {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	var out []tlv.TLV
	for _, t := range tags {
		out = append(out, tlv.New(t, extra[t]))
	}
	return out
}
