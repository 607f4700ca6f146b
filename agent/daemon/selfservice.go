package daemon

import (
	"bytes"
	"errors"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/apdu/kpe"
)

// The self-service view (the kiosk's "Profil saya" and "Layanan"): what a
// successful authentication with service kiosk read from the card, kept
// on the reader for the card holder until the card leaves, then wiped.
// It belongs to the credential that ran the authentication (the kiosk
// page's, api.KioskCredential, or "" for the bearer token): another kiosk
// credential cannot read it. A KPE's photo is read for this workflow only
// and kept here only; a KTP-el keeps nothing but its kind (Dukcapil: its
// data stays in the transaction).

// selfService is one kiosk authentication's view of the card.
type selfService struct {
	credential string
	view       api.KioskView
	photo      []byte // a KPE's photo (JPEG), zeroed on wipe
}

// newSelfService builds the view of res, a card that passed its
// authentication, for credential. It takes a KPE's photo out of res (res
// keeps none).
func newSelfService(credential string, res *cards.Result) *selfService {
	ss := &selfService{credential: credential}
	v := api.KioskView{Kind: string(res.Kind), Verified: res.Checks.CardAuthentic.OK && res.Checks.DataAuthentic.OK}
	if c := res.KPE; c != nil {
		id, e, b := c.Identity, c.Employment, c.Benefits
		v.Identity = &api.KioskIdentity{Name: id.Name, NIP: id.NIP, BirthPlace: id.BirthPlace, BirthDate: isoDate(id.BirthDate),
			Gender: id.Gender, Address: id.Address}
		if c.Info.Type == kpe.CardKPETambahan {
			v.Tambahan = &api.KioskTambahan{NIP: id.LinkedNIP, Relation: relation(id.Relation)}
		}
		emp := api.KioskEmployment{Status: e.Status, Pangkat: e.Pangkat, GolonganRuang: e.GolonganRuang, TMTPangkat: isoDate(e.TMTPangkat),
			Jabatan: e.Jabatan, TMTJabatan: isoDate(e.TMTJabatan), ParentAgency: e.ParentAgency, WorkingAgency: e.WorkingAgency,
			WorkLocation: e.WorkLocation}
		for _, u := range e.WorkUnits {
			emp.WorkUnits = append(emp.WorkUnits, api.KioskWorkUnit{Level: u.Level, Name: u.Name})
		}
		if len(emp.WorkUnits) > 0 || e.Status+e.Pangkat+e.GolonganRuang+e.TMTPangkat+e.Jabatan+e.TMTJabatan+e.ParentAgency+e.WorkingAgency+e.WorkLocation != "" {
			v.Employment = &emp
		}
		for _, m := range c.Family.Members {
			role := "child"
			if m.Spouse {
				role = "spouse"
			}
			v.Family = append(v.Family, api.KioskMember{Role: role, Relation: m.Relation, Name: m.Name, BirthDate: isoDate(m.BirthDate),
				Dependant: m.Dependant, Tambahan: m.TambahanCard != ""})
		}
		ben := api.KioskBenefits{BPJS: b.BPJSNumber, Taspen: b.TaspenNumber, Taperum: b.TaperumNumber, TaperumStatus: b.TaperumStatus,
			Bank: b.BankName, Account: b.AccountMasked}
		if ben != (api.KioskBenefits{}) {
			v.Benefits = &ben
		}
		if isJPEG(c.Photo) {
			ss.photo, v.Photo = c.Photo, true
		} else {
			clear(c.Photo)
		}
		c.Photo = nil
	}
	ss.view = v
	return ss
}

// wipe zeroes the photo and forgets the view.
func (ss *selfService) wipe() {
	clear(ss.photo)
	ss.photo, ss.view = nil, api.KioskView{}
}

// isJPEG says b starts as a JPEG does (SOI, then a marker).
func isJPEG(b []byte) bool { return len(b) > 3 && bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}) }

// isoDate writes a card date (YYYYMMDD) as YYYY-MM-DD; anything else is
// given as the card has it.
func isoDate(s string) string {
	if len(s) != 8 {
		return s
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return s
		}
	}
	return s[:4] + "-" + s[4:6] + "-" + s[6:]
}

// relation names a KPE Tambahan's relation (DG1 tag 89: S or C).
func relation(code string) string {
	switch code {
	case "S":
		return "spouse"
	case "C":
		return "child"
	}
	return code
}

// keepSelfService keeps the self-service view of res for credential on
// r, in place of any earlier one, if sess is still the reader's card
// session (a card pulled meanwhile keeps nothing).
func (r *reader) keepSelfService(sess *cards.Session, credential string, res *cards.Result) {
	ss := newSelfService(credential, res)
	r.mu.Lock()
	if r.sess != sess || !r.present {
		r.mu.Unlock()
		ss.wipe()
		return
	}
	old := r.self
	r.self = ss
	r.mu.Unlock()
	if old != nil {
		old.wipe()
	}
}

// wipeSelfService forgets the reader's self-service view (the card left).
func (r *reader) wipeSelfService() {
	r.mu.Lock()
	old := r.self
	r.self = nil
	r.mu.Unlock()
	if old != nil {
		old.wipe()
	}
}

// errNoSelfService: no kiosk authentication of the card in the reader
// (for this credential).
var errNoSelfService = errors.New("no kiosk authentication of the card in this reader for this credential")

// selfServiceFor runs fn on the reader's self-service view, under r.mu,
// if credential may read it: "" (the bearer token) may read any, a kiosk
// credential the one its own authentication left.
func (d *Daemon) selfServiceFor(name, credential string, fn func(*selfService) error) error {
	r, err := d.pickReader(name)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ss := r.self
	if !r.present || ss == nil || (credential != "" && ss.credential != credential) {
		return fail(CodeNotAvailable, errNoSelfService)
	}
	return fn(ss)
}

// KioskView is the self-service view of the card in the named reader
// (API).
func (d *Daemon) KioskView(name, credential string) (api.KioskView, error) {
	var v api.KioskView
	err := d.selfServiceFor(name, credential, func(ss *selfService) error {
		v = ss.view
		return nil
	})
	return v, err
}

// KioskPhoto is a copy of the self-service view's photo (API); the caller
// clears it after use.
func (d *Daemon) KioskPhoto(name, credential string) ([]byte, error) {
	var photo []byte
	err := d.selfServiceFor(name, credential, func(ss *selfService) error {
		if len(ss.photo) == 0 {
			return fail(CodeNotAvailable, errors.New("the card has no photo"))
		}
		photo = bytes.Clone(ss.photo)
		return nil
	})
	return photo, err
}
