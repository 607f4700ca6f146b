package daemon

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"kpe-agent/agent/api"
	"kpe-agent/internal/i18n"
	"kpe-agent/internal/kpedata"
)

// The renewal's comparison: the fields of the data groups an update
// changes, as on the card and as offered, the changed ones marked. The
// labels are the catalogue's (kiosk.renewal.field.<key>, one wording for
// the holder and the clerk).

// groupField is one field of a data group before it is worded.
type groupField struct {
	group int
	key   string
	value string
	n     int // a family member's number (family.member), else 0
}

// fieldsOf lists the fields of data group dg (raw EF content), their
// values worded in lang as the kiosk's profile words them (dates in words,
// a family member's role and dependant status from the catalogue); a
// group that does not parse lists nothing (Verify has checked the offer's).
func fieldsOf(dg int, b []byte, lang i18n.Lang) []groupField {
	date := func(s string) string { return longDate(s, lang) }
	var out []groupField
	add := func(key, v string) { out = append(out, groupField{group: dg, key: key, value: v}) }
	switch dg {
	case kpedata.DGIdentity:
		id, err := kpedata.ParseIdentity(b)
		if err != nil {
			return nil
		}
		add("personal.name", id.Name)
		add("personal.birth", strings.TrimSpace(id.BirthPlace+", "+date(id.BirthDate)))
		add("personal.address", id.Address)
	case kpedata.DGEmployment:
		e, err := kpedata.ParseEmployment(b)
		if err != nil {
			return nil
		}
		add("employment.status", e.Status)
		add("employment.pangkat", strings.TrimSpace(e.Pangkat+" "+e.GolonganRuang))
		add("employment.tmt-pangkat", date(e.TMTPangkat))
		add("employment.jabatan", e.Jabatan)
		add("employment.tmt-jabatan", date(e.TMTJabatan))
		add("employment.parent-agency", e.ParentAgency)
		add("employment.working-agency", e.WorkingAgency)
		var units []string
		for _, u := range e.WorkUnits {
			units = append(units, u.Name)
		}
		add("employment.work-units", strings.Join(units, " / "))
		add("employment.work-location", e.WorkLocation)
	case kpedata.DGFamily:
		f, err := kpedata.ParseFamily(b)
		if err != nil {
			return nil
		}
		for i, m := range f.Members {
			role := "child"
			if m.Spouse {
				role = "spouse"
			}
			parts := []string{lang.T("kiosk.role." + role), date(m.BirthDate)}
			if m.Dependant {
				parts = append(parts, lang.T("kiosk.family.dependant"))
			}
			v := fmt.Sprintf("%s (%s)", m.Name, strings.Join(parts, ", "))
			out = append(out, groupField{group: dg, key: "family.member", value: v, n: i + 1})
		}
	case kpedata.DGBenefits:
		bn, err := kpedata.ParseBenefits(b)
		if err != nil {
			return nil
		}
		add("benefits.bpjs", bn.BPJSNumber)
		add("benefits.taspen", bn.TaspenNumber)
		add("benefits.taperum", strings.TrimSpace(bn.TaperumNumber+" "+bn.TaperumStatus))
		add("benefits.bank", strings.TrimSpace(bn.BankName+" "+bn.AccountMasked))
	}
	return out
}

// fieldID is a field's identity across the two sides.
func (f groupField) id() string {
	if f.n > 0 {
		return f.key + "." + strconv.Itoa(f.n)
	}
	return f.key
}

// compareGroups words the fields of the groups in changed, on the card
// (card) and offered (offer), for lang: both lists hold the same fields in
// the same order (a field one side lacks has an empty value there).
func compareGroups(changed []int, card, offer map[int][]byte, lang i18n.Lang) (onCard, offered []api.RenewalField) {
	for _, dg := range changed {
		a, b := fieldsOf(dg, card[dg], lang), fieldsOf(dg, offer[dg], lang)
		var ids []string
		shown := false // a shown field differs
		byID := func(list []groupField) map[string]groupField {
			m := map[string]groupField{}
			for _, f := range list {
				m[f.id()] = f
				if !slices.Contains(ids, f.id()) {
					ids = append(ids, f.id())
				}
			}
			return m
		}
		ma, mb := byID(a), byID(b)
		for _, id := range ids {
			fa, fb := ma[id], mb[id]
			f := fa
			if f.key == "" {
				f = fb
			}
			label := lang.T("kiosk.renewal.field." + f.key)
			if f.n > 0 {
				label += " " + strconv.Itoa(f.n)
			}
			changed := fa.value != fb.value
			shown = shown || changed
			onCard = append(onCard, api.RenewalField{Group: dg, Key: id, Label: label, Value: fa.value, Changed: changed})
			offered = append(offered, api.RenewalField{Group: dg, Key: id, Label: label, Value: fb.value, Changed: changed})
		}
		// the group changes in something the comparison does not show (a
		// NIK, a relation, a KPE Tambahan serial, a field of a later
		// profile version): one marked row says so, so that the holder
		// never agrees to two identical columns
		if !shown && !bytes.Equal(card[dg], offer[dg]) {
			label, id := lang.T("kiosk.renewal.field.other"), "other."+strconv.Itoa(dg)
			onCard = append(onCard, api.RenewalField{Group: dg, Key: id, Label: label, Value: lang.T("kiosk.renewal.other.card"), Changed: true})
			offered = append(offered, api.RenewalField{Group: dg, Key: id, Label: label, Value: lang.T("kiosk.renewal.other.new"), Changed: true})
		}
	}
	return onCard, offered
}

// longDate words a card date (YYYYMMDD) in lang: 1 Oktober 2026; anything
// else is given as the card has it.
func longDate(s string, lang i18n.Lang) string {
	iso := isoDate(s)
	if iso == s {
		return s
	}
	months := strings.Split(lang.T("kiosk.months"), ",")
	m, err := strconv.Atoi(iso[5:7])
	if err != nil || m < 1 || m > len(months) {
		return iso
	}
	d, _ := strconv.Atoi(iso[8:])
	return strconv.Itoa(d) + " " + months[m-1] + " " + iso[:4]
}
