package backoffice

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"kpe-agent/internal/renewal"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// Card data renewal, the back office's side (docs/renewal.md, "Back
// office"): imports stage per NIP the new contents of the changed data
// groups; a terminal asks for an offer for a card (POST /v1/renewal/offer)
// and gets one built on the card's EF.SOD and signed by the issuer; the
// terminal's `renewal` record marks the update applied, in the same store
// transaction that stores the record.

// RenewalStatus is a staged update's state.
type RenewalStatus string

// The states of a staged update.
const (
	// RenewalStaged: waiting for the holder's card.
	RenewalStaged RenewalStatus = "staged"
	// RenewalSuperseded: a later import for the NIP replaced it before
	// it was applied.
	RenewalSuperseded RenewalStatus = "superseded"
	// RenewalApplied: a terminal's renewal record says the card holds it.
	RenewalApplied RenewalStatus = "applied"
)

// RenewalStatuses lists the states, in the staff page's order.
var RenewalStatuses = []RenewalStatus{RenewalStaged, RenewalApplied, RenewalSuperseded}

// RenewalUpdate is one staged update.
type RenewalUpdate struct {
	ID         [16]byte
	NIP        string
	Groups     map[int][]byte // DG number → the new EF content
	ImportID   [16]byte
	ImportedAt time.Time
	Status     RenewalStatus
	// Set when applied: the renewal record's authentication code, card
	// serial, terminal and signing time.
	AppliedAt       time.Time
	AppliedCode     string
	AppliedSerial   [8]byte
	AppliedTerminal string
}

// Changed is the update's group numbers, ascending.
func (u RenewalUpdate) Changed() []int {
	var out []int
	for dg := range u.Groups {
		out = append(out, dg)
	}
	slices.Sort(out)
	return out
}

// IssuedOffer is an offer the back office answered, as stored.
type IssuedOffer struct {
	UpdateID [16]byte
	Serial   [8]byte
	Sequence uint32
	BaseSOD  [32]byte
	NewSOD   [32]byte
	NotAfter time.Time
	IssuedAt time.Time
	JSON     []byte // the offer's wire JSON (internal/renewal)
}

// RenewalFilter selects updates for RenewalUpdates.
type RenewalFilter struct {
	Status RenewalStatus // "": every state
	NIP    string        // "": every NIP
	Limit  int           // 0: no limit
}

// RenewalApplication is what a verified renewal record says, on its way
// into the store with the record.
type RenewalApplication struct {
	UpdateID [16]byte
	Serial   [8]byte
	OldSOD   [32]byte
	NewSOD   [32]byte
	Code     string
	Terminal string
	At       time.Time
	SAM      [8]byte // the record's SAM serial and counter, for the alarm
	Counter  uint32
}

// RenewalStore is implemented by the stores that keep renewals (both).
// Staging is atomic per import; applying happens inside Store.Ingest.
type RenewalStore interface {
	// StageRenewals stores an import's updates in one transaction; each
	// supersedes the staged (not applied) update of its NIP.
	StageRenewals(ctx context.Context, updates []RenewalUpdate) error
	// StagedRenewal is the NIP's staged update (ErrNotFound).
	StagedRenewal(ctx context.Context, nip string) (*RenewalUpdate, error)
	// RenewalUpdates lists updates, the newest import first.
	RenewalUpdates(ctx context.Context, f RenewalFilter) ([]RenewalUpdate, error)
	// RenewalCounts counts the updates by state.
	RenewalCounts(ctx context.Context) (map[RenewalStatus]int64, error)
	// PutRenewalOffer stores an issued offer.
	PutRenewalOffer(ctx context.Context, o IssuedOffer) error
	// RenewalUpdate is the update id, in any state (ErrNotFound).
	RenewalUpdate(ctx context.Context, id [16]byte) (*RenewalUpdate, error)
	// RenewalOfferByNewSOD is the offer for the card whose new EF.SOD
	// hashes to newSOD (ErrNotFound).
	RenewalOfferByNewSOD(ctx context.Context, serial [8]byte, newSOD [32]byte) (*IssuedOffer, error)
	// RenewalOfferFor is the latest offer issued for the card in state
	// base, of the update, at the sequence (ErrNotFound).
	RenewalOfferFor(ctx context.Context, serial [8]byte, base [32]byte, update [16]byte, seq uint32) (*IssuedOffer, error)
}

// Renewal errors.
var (
	// ErrNoRenewals: the store keeps no renewals.
	ErrNoRenewals = errors.New("backoffice: this store keeps no renewals")
	// ErrRenewalUnavailable: no issuer signer is configured.
	ErrRenewalUnavailable = errors.New("backoffice: renewal unavailable: no issuer signer")
	// ErrBadCardSOD: the card's EF.SOD is malformed or does not chain to
	// the issuer roots.
	ErrBadCardSOD = errors.New("backoffice: the card's EF.SOD does not verify")
	// ErrRenewalQuery: a query that breaks the wire rules.
	ErrRenewalQuery = errors.New("backoffice: renewal query not acceptable")
)

// AlarmRenewalUnmatched: a verified renewal record names an update the
// back office did not offer for that card and new EF.SOD.
const AlarmRenewalUnmatched = "renewal-unmatched"

// Offer timing.
const (
	// RenewalOfferLifetime is how long an issued offer is valid.
	RenewalOfferLifetime = 30 * time.Minute
	// RenewalOfferReuse: a stored offer is answered again while at least
	// this much of its lifetime is left.
	RenewalOfferReuse = 5 * time.Minute
)

func (s *Service) renewals() (RenewalStore, error) {
	rs, ok := s.store.(RenewalStore)
	if !ok {
		return nil, ErrNoRenewals
	}
	return rs, nil
}

// ImportResult is what an import staged.
type ImportResult struct {
	ImportID [16]byte
	At       time.Time
	Updates  []RenewalUpdate // in file order
}

func randomID() [16]byte {
	var id [16]byte
	rand.Read(id[:])
	return id
}

// ImportRenewals parses an import (ParseRenewals) and stages every change
// in one store transaction, each with a fresh random update id: all or
// nothing (*ImportError, ErrImport, for a bad file).
func (s *Service) ImportRenewals(ctx context.Context, format string, r io.Reader) (*ImportResult, error) {
	rs, err := s.renewals()
	if err != nil {
		return nil, err
	}
	changes, err := ParseRenewals(format, r)
	if err != nil {
		return nil, err
	}
	res := &ImportResult{ImportID: randomID(), At: s.cfg.Now().UTC()}
	for _, c := range changes {
		res.Updates = append(res.Updates, RenewalUpdate{ID: randomID(), NIP: c.NIP, Groups: c.Groups(), ImportID: res.ImportID,
			ImportedAt: res.At, Status: RenewalStaged})
	}
	if err := rs.StageRenewals(ctx, res.Updates); err != nil {
		return nil, err
	}
	s.cfg.Log.Info("renewal import staged", "import", hex.EncodeToString(res.ImportID[:]), "updates", len(res.Updates))
	return res, nil
}

// RenewalUpdates lists staged updates (RenewalStore.RenewalUpdates).
func (s *Service) RenewalUpdates(ctx context.Context, f RenewalFilter) ([]RenewalUpdate, error) {
	rs, err := s.renewals()
	if err != nil {
		return nil, err
	}
	return rs.RenewalUpdates(ctx, f)
}

// RenewalCounts counts updates by state.
func (s *Service) RenewalCounts(ctx context.Context) (map[RenewalStatus]int64, error) {
	rs, err := s.renewals()
	if err != nil {
		return nil, err
	}
	return rs.RenewalCounts(ctx)
}

// checkRenewalQuery checks the wire rules of a query and returns the
// card serial.
func checkRenewalQuery(q *wire.RenewalQuery) ([8]byte, error) {
	var serial [8]byte
	b, err := hex.DecodeString(q.CardSerial)
	if err != nil || len(b) != 8 {
		return serial, fmt.Errorf("%w: card_serial: want 16 hex digits", ErrRenewalQuery)
	}
	copy(serial[:], b)
	var p problems
	checkNIP(&p, 0, "nip", q.NIP)
	if p.err() != nil {
		return serial, fmt.Errorf("%w: nip: want 18 digits", ErrRenewalQuery)
	}
	if len(q.SOD) == 0 {
		return serial, fmt.Errorf("%w: sod: missing", ErrRenewalQuery)
	}
	if q.Sequence == ^uint32(0) {
		return serial, fmt.Errorf("%w: sequence: the card cannot be renewed again", ErrRenewalQuery)
	}
	return serial, nil
}

// checkCard shows a terminal's query is about the holder's own card, before
// anything is answered about the NIP (the renewal and the top-up offers):
// the card's EF.SOD verifies against the issuer roots at now and covers
// its DG1, whose NIP is nip (renewal.CheckCard). ErrBadCardSOD otherwise.
// Neither is kept or logged.
func (s *Service) checkCard(cardSOD, dg1 []byte, nip string, now time.Time) error {
	if _, err := renewal.CheckCard(cardSOD, dg1, nip, s.cfg.IssuerRoots, now); err != nil {
		return fmt.Errorf("%w: %w", ErrBadCardSOD, err)
	}
	return nil
}

// Offer outcomes, for the metrics and the log.
const (
	offerIssued  = "issued"
	offerAgain   = "served-again"
	offerApplied = "applied-again" // the card holds the offer's new EF.SOD already
	offerNone    = "none"          // nothing staged, or nothing changes
	offerRefused = "refused"       // bad SOD, no issuer, bad query
)

// RenewalOffer answers a terminal's query for a card (docs/renewal.md):
// nil (and no error) when nothing is staged for the NIP or the staged
// groups are the card's already; else the offer as wire JSON. Errors:
// ErrRenewalUnavailable, ErrRenewalQuery, ErrBadCardSOD, or the store's.
func (s *Service) RenewalOffer(ctx context.Context, q *wire.RenewalQuery) ([]byte, error) {
	out, body, err := s.renewalOffer(ctx, q)
	s.metrics.renewalOffer(out)
	return body, err
}

func (s *Service) renewalOffer(ctx context.Context, q *wire.RenewalQuery) (string, []byte, error) {
	if s.cfg.Issuer == nil {
		return offerRefused, nil, ErrRenewalUnavailable
	}
	rs, err := s.renewals()
	if err != nil {
		return offerRefused, nil, err
	}
	serial, err := checkRenewalQuery(q)
	if err != nil {
		return offerRefused, nil, err
	}
	now := s.cfg.Now()
	// nothing is answered about a card before it is shown to be the
	// holder's: its EF.SOD verifies and covers its DG1, whose NIP is the
	// query's
	if err := s.checkCard(q.SOD, q.DG1, q.NIP, now); err != nil {
		return offerRefused, nil, err
	}
	current := renewal.SODHash(q.SOD)
	byNew, err := rs.RenewalOfferByNewSOD(ctx, serial, current)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return offerRefused, nil, err
	}
	// a card with a sequence holds the data of an offer this back office
	// issued for it, at that sequence; any other claim is refused, so
	// that no offer takes a sequence the card never had
	if q.Sequence > 0 && (byNew == nil || byNew.Sequence != q.Sequence) {
		return offerRefused, nil, fmt.Errorf("%w: sequence: %d is not the sequence of an offer issued for this card's data", ErrRenewalQuery, q.Sequence)
	}
	// the card holds an issued offer's data already: that offer, so the
	// terminal records the renewal it missed; once the update is applied
	// (its record arrived) the card's state is simply the base of the
	// NIP's next update, if any
	if byNew != nil {
		u, err := rs.RenewalUpdate(ctx, byNew.UpdateID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return offerRefused, nil, err
		}
		if u != nil && u.Status != RenewalApplied {
			s.cfg.Log.Info("renewal offer: the card holds it already", "update", hex.EncodeToString(byNew.UpdateID[:]))
			return offerApplied, byNew.JSON, nil
		}
	}
	u, err := rs.StagedRenewal(ctx, q.NIP)
	if errors.Is(err, ErrNotFound) {
		return offerNone, nil, nil
	}
	if err != nil {
		return offerRefused, nil, err
	}
	seq := q.Sequence + 1
	switch o, err := rs.RenewalOfferFor(ctx, serial, current, u.ID, seq); {
	case err == nil && o.NotAfter.Sub(now) >= RenewalOfferReuse:
		s.cfg.Log.Info("renewal offer served again", "update", hex.EncodeToString(u.ID[:]))
		return offerAgain, o.JSON, nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return offerRefused, nil, err
	}
	cert := s.cfg.Issuer.Certificate()
	o, err := renewal.Build(renewal.BuildInput{Staged: renewal.Staged{UpdateID: u.ID, NIP: u.NIP, Groups: u.Groups},
		Serial: serial, CardSOD: q.SOD, CardDG1: q.DG1, Sequence: seq, NotAfter: now.Add(RenewalOfferLifetime)}, s.cfg.IssuerRoots, now, s.cfg.Issuer, cert)
	if errors.Is(err, renewal.ErrUnchanged) {
		// the card holds the staged groups already (renewed elsewhere,
		// or the import repeats the card): nothing to write; the update
		// stays staged, nothing is recorded (docs/renewal.md)
		s.cfg.Log.Info("renewal offer: the card holds the staged groups already", "update", hex.EncodeToString(u.ID[:]))
		return offerNone, nil, nil
	}
	if err != nil {
		return offerRefused, nil, fmt.Errorf("backoffice: building the renewal offer: %w", err)
	}
	body, err := o.MarshalJSON()
	if err != nil {
		return offerRefused, nil, err
	}
	if err := rs.PutRenewalOffer(ctx, IssuedOffer{UpdateID: o.UpdateID, Serial: o.Serial, Sequence: o.Sequence, BaseSOD: o.BaseSOD,
		NewSOD: o.NewSOD, NotAfter: o.NotAfter, IssuedAt: now.UTC(), JSON: body}); err != nil {
		return offerRefused, nil, err
	}
	s.cfg.Log.Info("renewal offer issued", "update", hex.EncodeToString(u.ID[:]), "sequence", seq, "groups", o.Changed())
	return offerIssued, body, nil
}

// renewalOf is the application a verified record carries, nil for a
// record of another service.
func renewalOf(e Entry) *RenewalApplication {
	r := e.Rec
	if r.Service != record.ServiceRenewal || r.Renewal == nil {
		return nil
	}
	var serial [8]byte // a serial of another length matches no offer
	if len(r.CardSerial) == len(serial) {
		copy(serial[:], r.CardSerial)
	}
	return &RenewalApplication{UpdateID: r.Renewal.UpdateID, Serial: serial, OldSOD: r.Renewal.OldSOD, NewSOD: r.Renewal.NewSOD,
		Code: e.Code, Terminal: r.TerminalID, At: r.Time.UTC(), SAM: r.SAMSerial, Counter: r.Counter}
}

// applyRenewal decides on a renewal record inside a store's Ingest
// transaction: the update becomes applied when it exists and one of its
// issued offers for the record's card has the record's new EF.SOD hash
// (and its old one as base).
// Otherwise it returns the alarm to raise (the record is stored all the
// same: a SAM signed it). An update applied already stays as it is.
func applyRenewal(a *RenewalApplication, u *RenewalUpdate, offer *IssuedOffer, now time.Time) (*wire.Alarm, bool) {
	var why string
	switch {
	case u == nil:
		why = "names an update this back office never staged"
	case offer == nil || offer.UpdateID != a.UpdateID || offer.BaseSOD != a.OldSOD:
		why = "its card and new EF.SOD match no offer issued for the update"
	case u.Status == RenewalApplied:
		return nil, false
	default:
		u.Status, u.AppliedAt, u.AppliedCode, u.AppliedSerial, u.AppliedTerminal = RenewalApplied, a.At, a.Code, a.Serial, a.Terminal
		return nil, true
	}
	return &wire.Alarm{Kind: AlarmRenewalUnmatched, TerminalID: a.Terminal, SAMSerial: hex.EncodeToString(a.SAM[:]), Counter: a.Counter, At: now.UTC(),
		Detail: fmt.Sprintf("renewal record %s for update %s %s", a.Code, hex.EncodeToString(a.UpdateID[:]), why)}, false
}
