// Package kpe holds the KPE and KPE Tambahan card profile of
// docs/card-profiles.md §2: the application's identifiers, its commands,
// the reader with mutual authentication and secure messaging, the
// match-on-card VERIFY, and the data groups' types (defined in
// internal/kpedata, whose strict parsers treat card data as hostile).
//
// The data-group structs hold personal data. They are for memory only:
// never log or persist them (docs/background.md §4).
package kpe

import "kpe-agent/internal/kpedata"

// File identifiers of the KPE application (profile parameters with these
// defaults; see docs/card-profiles.md §2.1).
const (
	FIDCardInfo   uint16 = 0x0101
	FIDIdentity   uint16 = 0x0102
	FIDEmployment uint16 = 0x0103
	FIDFamily     uint16 = 0x0104
	FIDBenefits   uint16 = 0x0105
	FIDPhoto      uint16 = 0x0106
	FIDBIT        uint16 = 0x0107
	FIDSOD        uint16 = 0x010F
)

// DefaultAID is the KPE application identifier (a profile parameter).
var DefaultAID = []byte{0xF0, 0x4B, 0x50, 0x45, 0x01}

// Data-group numbers used in the security object.
const (
	DGIdentity   = kpedata.DGIdentity
	DGEmployment = kpedata.DGEmployment
	DGFamily     = kpedata.DGFamily
	DGBenefits   = kpedata.DGBenefits
	DGPhoto      = kpedata.DGPhoto
	DGBIT        = kpedata.DGBIT
)

// GroupFID returns the EF that holds data group dg, and false for a
// number the profile does not define.
func GroupFID(dg int) (uint16, bool) {
	switch dg {
	case DGIdentity:
		return FIDIdentity, true
	case DGEmployment:
		return FIDEmployment, true
	case DGFamily:
		return FIDFamily, true
	case DGBenefits:
		return FIDBenefits, true
	case DGPhoto:
		return FIDPhoto, true
	case DGBIT:
		return FIDBIT, true
	}
	return 0, false
}

// PlainEFs returns the EFs readable without secure messaging (§2.1):
// EF.CardInfo, the BIT group (public by design) and EF.SOD.
func PlainEFs() []uint16 { return []uint16{FIDCardInfo, FIDBIT, FIDSOD} }

// DateLayout is the layout of every date on the card (§1: 8 ASCII digits
// YYYYMMDD), for time.Parse.
const DateLayout = "20060102"

// Codes of DG1's gender (tag 84).
const (
	GenderMale   = "L" // laki-laki
	GenderFemale = "P" // perempuan
)

// The data model lives in internal/kpedata, shared with the back office,
// which builds the new groups of a data renewal; the reader uses it under
// these names.
type (
	FormatError = kpedata.FormatError
	CardType    = kpedata.CardType
	CardInfo    = kpedata.CardInfo
	Identity    = kpedata.Identity
	WorkUnit    = kpedata.WorkUnit
	Employment  = kpedata.Employment
	Member      = kpedata.Member
	Family      = kpedata.Family
	Benefits    = kpedata.Benefits
)

// Card types of EF.CardInfo.
const (
	CardKPE         = kpedata.CardKPE
	CardKPETambahan = kpedata.CardKPETambahan
)

// ErrFormat is matched by every parse error of the data groups.
var ErrFormat = kpedata.ErrFormat

// Parsers of the data groups.
var (
	ParseCardInfo   = kpedata.ParseCardInfo
	ParseIdentity   = kpedata.ParseIdentity
	ParseEmployment = kpedata.ParseEmployment
	ParseFamily     = kpedata.ParseFamily
	ParseBenefits   = kpedata.ParseBenefits
)
