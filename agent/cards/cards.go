// Package cards recognises the card in a reader (docs/card-profiles.md §5)
// and reads it with its profile's reader, returning one Result that lists
// each check separately: card authentic (SAM), data authentic (issuer
// signature), identifiers consistent (docs/background.md §3), with the reason for
// any failure, and one verdict code that names the outcome.
package cards

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"kpe-agent/agent/identity"
	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/ktpel"
	"kpe-agent/apdu/sam"
	"kpe-agent/apdu/verdict"
)

// Kind is what a card turned out to be.
type Kind string

// Card kinds.
const (
	KindKPE         Kind = "kpe"
	KindKPETambahan Kind = "kpe-tambahan"
	KindKTPel       Kind = "ktpel"
	KindSAM         Kind = "sam"
	KindUnknown     Kind = "unknown"
)

// Verdict codes of a Result (the specific outcome a clerk's screen and the
// lab's sample cards are tested against).
const (
	VerdictGenuine        = "genuine"
	VerdictUnknownCard    = "unknown-card"
	VerdictSAMReady       = "sam-ready"
	VerdictSAMBlocked     = "sam-blocked"
	VerdictSAMNotActive   = "sam-not-activated"
	VerdictIdentifiersBad = string(verdict.CodeInconsistent)
)

// Profiles are the recognition parameters: an ATR pattern that hints at
// the SAM (the selection confirms it) and the applications to select.
// Cards are tried as KPE first, SAM first when the ATR holds SAMHint, and
// KTP-el first when the ATR is PC/SC's contactless form (3B 8n 80 01).
type Profiles struct {
	// SAMHint, found in an ATR's historical bytes, suggests a SAM.
	// Default: the pre-issuing data object "SAM" of the lab SAM's ATR.
	SAMHint        []byte
	KPEAID, SAMAID []byte
}

// DefaultProfiles are the lab profile's parameters.
var DefaultProfiles = Profiles{
	SAMHint: sam.ATRHint,
	KPEAID:  kpe.DefaultAID, SAMAID: sam.AID,
}

// Recognize identifies the card: by ATR hint first, then by selection in
// the hinted order (the ATR alone never decides). The card must be in a
// transaction owned by the caller.
func Recognize(ctx context.Context, card apdu.Card, p Profiles) (Kind, error) {
	atr := card.ATR()
	order := []Kind{KindKPE, KindSAM, KindKTPel}
	switch {
	case apdu.ContactlessATR(atr):
		order = []Kind{KindKTPel, KindKPE, KindSAM}
	case p.SAMHint != nil && bytes.Contains(atr, p.SAMHint):
		order = []Kind{KindSAM, KindKPE, KindKTPel}
	}
	c := apdu.NewClient(card, apdu.Limits{})
	for _, k := range order {
		var err error
		switch k {
		case KindKPE:
			err = kpe.Select(ctx, c, p.KPEAID)
		case KindSAM:
			err = sam.Select(ctx, c, p.SAMAID)
		case KindKTPel:
			_, err = ktpel.Select(ctx, c)
		}
		var se *apdu.StatusError
		switch {
		case err == nil:
			return k, nil
		case errors.As(err, &se), errors.Is(err, ktpel.ErrUID):
			continue // not this profile
		default:
			return KindUnknown, err // transport: removed, reset, timeout
		}
	}
	return KindUnknown, nil
}

// Options tune Read.
type Options struct {
	Profiles      Profiles
	Photo         bool           // read photos (not read unless asked)
	BKNRoots      *x509.CertPool // trust list for KPE issuers
	DukcapilRoots *x509.CertPool // trust list for KTP-el issuers
	Now           time.Time
}

// ErrNoSAM: a KPE or KTP-el cannot be read without a SAM to authenticate
// it.
var ErrNoSAM = errors.New("cards: no SAM to authenticate the card")

// SAM is what Read needs from the SAM: both card authentications.
type SAM interface {
	kpe.Authenticator
	ktpel.Authenticator
}

// Checks are the three checks of a card, each with its reason.
type Checks struct {
	CardAuthentic         verdict.Check `json:"card_authentic"`
	DataAuthentic         verdict.Check `json:"data_authentic"`
	IdentifiersConsistent verdict.Check `json:"identifiers_consistent"`
	FailedGroups          []int         `json:"failed_groups,omitempty"`
}

// Result is one card read.
type Result struct {
	Kind     Kind               `json:"kind"`
	ATR      []byte             `json:"-"`
	Verdict  string             `json:"verdict"`
	Checks   Checks             `json:"checks"`
	Warnings []identity.Warning `json:"-"`
	KPE      *kpe.Card          `json:"-"`
	// Channel is the KPE's secure-messaging channel after the read (nil
	// otherwise), for the fingerprint VERIFY in the same card session.
	Channel apdu.Transmitter `json:"-"`
	KTPel   *ktpel.Card      `json:"-"`
	SAMInfo *sam.Info        `json:"-"`
}

// Read recognises the card and reads it. The caller owns card (and its
// transaction) and s; s may be nil only for SAM and unknown cards.
func Read(ctx context.Context, card apdu.Card, s SAM, o Options) (*Result, error) {
	if o.Profiles.KPEAID == nil {
		o.Profiles = DefaultProfiles
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	kind, err := Recognize(ctx, card, o.Profiles)
	if err != nil {
		return nil, err
	}
	r := &Result{Kind: kind, ATR: card.ATR()}
	switch kind {
	case KindUnknown:
		r.Verdict = VerdictUnknownCard
		return r, nil
	case KindSAM:
		sm, err := sam.OpenAID(ctx, card, o.Profiles.SAMAID)
		if err != nil {
			return nil, err
		}
		info, err := sm.Info(ctx)
		if err != nil {
			return nil, err
		}
		r.SAMInfo = &info
		r.Verdict = map[sam.State]string{sam.Blocked: VerdictSAMBlocked, sam.Active: VerdictSAMReady, sam.Inactive: VerdictSAMNotActive}[info.State]
		return r, nil
	}
	if s == nil {
		return nil, ErrNoSAM
	}
	var v verdict.Verification
	if kind == KindKTPel {
		c, err := ktpel.Read(ctx, card, s, ktpel.ReadOptions{Photo: o.Photo, Roots: o.DukcapilRoots, Now: o.Now})
		if err != nil {
			return nil, err
		}
		r.KTPel, v = c, c.Verification
		if v.CardAuthentic.OK {
			r.Warnings = identity.CheckKTPel(c.Biodata.NIK, c.Biodata.BirthDate, c.Biodata.Gender, o.Now)
		}
	} else {
		c, ch, err := kpe.ReadSession(ctx, card, s, kpe.ReadOptions{AID: o.Profiles.KPEAID, Photo: o.Photo, Roots: o.BKNRoots, Now: o.Now})
		if err != nil {
			return nil, err
		}
		r.KPE, r.Channel, v = c, ch, c.Verification
		if c.Info.Type == kpe.CardKPETambahan {
			r.Kind = KindKPETambahan
		}
		if v.CardAuthentic.OK {
			r.Warnings = identity.CheckKPE(c, o.Now)
		}
	}
	r.Checks = Checks{CardAuthentic: v.CardAuthentic, DataAuthentic: v.DataAuthentic, FailedGroups: v.FailedGroups}
	switch {
	case !v.CardAuthentic.OK:
		r.Checks.IdentifiersConsistent = verdict.Check{Code: verdict.CodeNotChecked, Reason: "not checked: the card is not authentic"}
	case len(r.Warnings) > 0:
		r.Checks.IdentifiersConsistent = verdict.Check{Code: verdict.CodeInconsistent, Reason: warningText(r.Warnings)}
	default:
		r.Checks.IdentifiersConsistent = verdict.Check{OK: true}
	}
	r.Verdict = verdictOf(r.Checks)
	return r, nil
}

func verdictOf(c Checks) string {
	switch {
	case !c.CardAuthentic.OK:
		return string(c.CardAuthentic.Code)
	case !c.DataAuthentic.OK && c.DataAuthentic.Code == verdict.CodeTampered:
		return fmt.Sprintf("%s:%d", verdict.CodeTampered, c.FailedGroups[0])
	case !c.DataAuthentic.OK:
		return string(c.DataAuthentic.Code)
	case !c.IdentifiersConsistent.OK:
		return VerdictIdentifiersBad
	}
	return VerdictGenuine
}

func warningText(ws []identity.Warning) string {
	var b bytes.Buffer
	for i, w := range ws {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(w.EN)
	}
	return b.String()
}
