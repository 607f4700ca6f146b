package cards

import (
	"encoding/hex"
	"strings"

	"kpe-agent/apdu/kpe"
	"kpe-agent/internal/i18n"
)

// View is a Result made ready for JSON (kpectl read --json, and later the
// local API). It never carries a photo, a template or KTP-el population
// data: the photo is reported by size only, and a KTP-el shows only its
// checks (docs/background.md §4; KTP-el data stays in memory for the transaction).
type View struct {
	ATR        string          `json:"atr"`
	Kind       Kind            `json:"kind"`
	Verdict    string          `json:"verdict"`
	Checks     Checks          `json:"checks"`
	Warnings   []WarningView   `json:"warnings,omitempty"`
	CardInfo   *CardInfoView   `json:"card_info,omitempty"`
	Identity   *IdentityView   `json:"identity,omitempty"`
	Employment *EmploymentView `json:"employment,omitempty"`
	Family     []MemberView    `json:"family,omitempty"`
	Benefits   *BenefitsView   `json:"benefits,omitempty"`
	Photo      *PhotoView      `json:"photo,omitempty"`
	KTPel      *KTPelView      `json:"ktpel,omitempty"`
	SAM        *SAMView        `json:"sam,omitempty"`
}

// WarningView is an identifier warning in the chosen language.
type WarningView struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// CardInfoView is EF.CardInfo.
type CardInfoView struct {
	Serial         string `json:"serial"`
	Type           string `json:"type"`
	ProfileVersion int    `json:"profile_version"`
	Issuer         string `json:"issuer,omitempty"`
}

// IdentityView is DG1.
type IdentityView struct {
	NIP        string `json:"nip,omitempty"`
	Name       string `json:"name"`
	BirthPlace string `json:"birth_place,omitempty"`
	BirthDate  string `json:"birth_date,omitempty"`
	Gender     string `json:"gender,omitempty"`
	Address    string `json:"address,omitempty"`
	NIK        string `json:"nik,omitempty"`
	IDPNS      string `json:"id_pns,omitempty"`
	LinkedNIP  string `json:"linked_nip,omitempty"`
	Relation   string `json:"relation,omitempty"`
}

// EmploymentView is DG2.
type EmploymentView struct {
	Status        string         `json:"status,omitempty"`
	Pangkat       string         `json:"pangkat,omitempty"`
	GolonganRuang string         `json:"golongan_ruang,omitempty"`
	TMTPangkat    string         `json:"tmt_pangkat,omitempty"`
	Jabatan       string         `json:"jabatan,omitempty"`
	TMTJabatan    string         `json:"tmt_jabatan,omitempty"`
	ParentAgency  string         `json:"parent_agency,omitempty"`
	WorkingAgency string         `json:"working_agency,omitempty"`
	WorkUnits     []kpe.WorkUnit `json:"work_units,omitempty"`
	WorkLocation  string         `json:"work_location,omitempty"`
}

// MemberView is one DG3 family member.
type MemberView struct {
	Role         string `json:"role"` // spouse or child
	Name         string `json:"name"`
	NIK          string `json:"nik,omitempty"`
	BirthDate    string `json:"birth_date,omitempty"`
	Relation     string `json:"relation,omitempty"`
	Dependant    bool   `json:"dependant"`
	TambahanCard string `json:"kpe_tambahan,omitempty"`
}

// BenefitsView is DG4.
type BenefitsView struct {
	BPJS          string `json:"askes_bpjs,omitempty"`
	Taspen        string `json:"taspen,omitempty"`
	Taperum       string `json:"taperum,omitempty"`
	TaperumStatus string `json:"taperum_status,omitempty"`
	Bank          string `json:"bank,omitempty"`
	Account       string `json:"account_masked,omitempty"`
}

// PhotoView says a photo was read; its bytes never go into the view.
type PhotoView struct {
	Bytes int `json:"bytes"`
}

// KTPelView is all a KTP-el shows outside the transaction.
type KTPelView struct {
	Redacted     bool `json:"population_data_redacted"`
	Fingerprints int  `json:"fingerprint_templates"`
}

// SAMView is a SAM's state.
type SAMView struct {
	Serial    string `json:"serial"`
	State     string `json:"state"`
	TriesLeft int    `json:"tries_left"`
	Counter   uint32 `json:"signature_counter"`
}

// View builds the view; lang ("id" or "en", see i18n.Parse) picks the
// warning language, Bahasa Indonesia for any other.
func (r *Result) View(lang i18n.Lang) View {
	v := View{ATR: strings.ToUpper(hex.EncodeToString(r.ATR)), Kind: r.Kind, Verdict: r.Verdict, Checks: r.Checks}
	for _, w := range r.Warnings {
		v.Warnings = append(v.Warnings, WarningView{Code: w.Code, Message: w.In(lang)})
	}
	if c := r.KPE; c != nil {
		v.CardInfo = &CardInfoView{Serial: strings.ToUpper(hex.EncodeToString(c.Info.Serial[:])), Type: c.Info.Type.String(), ProfileVersion: c.Info.ProfileVersion, Issuer: c.Info.IssuerID}
		if r.Checks.CardAuthentic.OK {
			id, e, b := c.Identity, c.Employment, c.Benefits
			v.Identity = &IdentityView{id.NIP, id.Name, id.BirthPlace, id.BirthDate, id.Gender, id.Address, id.NIK, id.IDPNS, id.LinkedNIP, id.Relation}
			v.Employment = &EmploymentView{e.Status, e.Pangkat, e.GolonganRuang, e.TMTPangkat, e.Jabatan, e.TMTJabatan, e.ParentAgency, e.WorkingAgency, e.WorkUnits, e.WorkLocation}
			for _, m := range c.Family.Members {
				role := "child"
				if m.Spouse {
					role = "spouse"
				}
				v.Family = append(v.Family, MemberView{role, m.Name, m.NIK, m.BirthDate, m.Relation, m.Dependant, m.TambahanCard})
			}
			v.Benefits = &BenefitsView{b.BPJSNumber, b.TaspenNumber, b.TaperumNumber, b.TaperumStatus, b.BankName, b.AccountMasked}
		}
		if len(c.Photo) > 0 {
			v.Photo = &PhotoView{Bytes: len(c.Photo)}
		}
	}
	if c := r.KTPel; c != nil {
		v.KTPel = &KTPelView{Redacted: true, Fingerprints: len(c.Fingerprints)}
		if len(c.Photo) > 0 {
			v.Photo = &PhotoView{Bytes: len(c.Photo)}
		}
	}
	if s := r.SAMInfo; s != nil {
		v.SAM = &SAMView{Serial: strings.ToUpper(hex.EncodeToString(s.Serial[:])), TriesLeft: s.TriesLeft, Counter: s.Counter,
			State: s.State.String()}
	}
	return v
}

// Photo returns the photo bytes read from a KPE (for kpectl read --photo),
// or nil. KTP-el photos are never handed out for saving.
func (r *Result) Photo() []byte {
	if r.KPE != nil {
		return r.KPE.Photo
	}
	return nil
}
