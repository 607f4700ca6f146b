package backoffice

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"kpe-agent/internal/topup"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// Top-ups, the back office's side (docs/ewallet.md, part 3): staff (or
// the bank's feed through the command line) stage a top-up paid online
// for a NIP; a terminal with the holder's card present asks for
// authorisations (POST /v1/topup/offer) and gets at most one, bound to the
// card's serial and PTC and signed with the issuer key; the terminal's
// `topup` record marks the top-up applied, in the store transaction that
// stores the record.
//
// One authorisation id per top-up: the authorisation's id is the top-up's
// id, so the top-up can be applied once whatever the number of
// authorisations issued for it. Two authorisations for one top-up never
// both credit a card: an authorisation is issued again only for the same
// card at the same PTC (the card took no transaction since, so the first
// one was not used; at most one of the two can be, as the PTC moves);
// and the ingest refuses a second top-up record for an applied id (alarm
// topup-replayed).

// TopUpStatus is a staged top-up's state.
type TopUpStatus string

// The states of a top-up.
const (
	// TopUpStaged: waiting for the holder's card.
	TopUpStaged TopUpStatus = "staged"
	// TopUpAuthorised: an authorisation was issued for a card at a PTC;
	// its record has not arrived.
	TopUpAuthorised TopUpStatus = "authorised"
	// TopUpApplied: a terminal's top-up record says the card took it.
	TopUpApplied TopUpStatus = "applied"
	// TopUpCancelled: staff cancelled it before any authorisation was
	// issued (the money goes back through the bank).
	TopUpCancelled TopUpStatus = "cancelled"
)

// TopUpStatuses lists the states.
var TopUpStatuses = []TopUpStatus{TopUpStaged, TopUpAuthorised, TopUpApplied, TopUpCancelled}

// TopUp is one staged top-up.
type TopUp struct {
	ID       [16]byte
	NIP      string
	Amount   uint32 // rupiah
	Ref      string // the source reference (the bank transfer id), unique
	StagedAt time.Time
	StagedBy string // the staff account, or "cli"
	Status   TopUpStatus
	// The latest authorisation issued: the card, its PTC then, the
	// expiry and when; Authorisations counts those issued.
	AuthSerial     [8]byte
	AuthPTC        uint32
	AuthNotAfter   time.Time
	AuthorisedAt   time.Time
	Authorisations int
	// Set when applied: the top-up record's code, terminal, card serial,
	// PTC after the credit, the amount it credited and its signing time.
	AppliedAt       time.Time
	AppliedCode     string
	AppliedTerminal string
	AppliedSerial   [8]byte
	AppliedPTC      uint32
	AppliedAmount   uint32
}

// TopUpFilter selects top-ups for TopUps.
type TopUpFilter struct {
	Status TopUpStatus // "": every state
	NIP    string      // "": every NIP
	Limit  int         // 0: no limit
}

// TopUpConfig are the top-up limits and timing (Config.TopUp).
type TopUpConfig struct {
	// MonthlyLimit bounds, per NIP and calendar month in Zone, the
	// top-ups staged, authorised and applied, by their staging time
	// (0: the one serve saved in the store, SaveTopUpSettings, else
	// DefaultTopUpMonthlyLimit).
	MonthlyLimit uint64
	// MaxBalance: no authorisation takes a card's balance above it
	// (default DefaultTopUpMaxBalance); the card's own maximum applies too.
	MaxBalance uint64
	// Validity of an authorisation (default DefaultTopUpValidity).
	Validity time.Duration
	// Zone of the calendar month (default Asia/Jakarta, UTC+7).
	Zone *time.Location
}

// Top-up defaults (docs/ewallet.md, "Limits").
const (
	DefaultTopUpMonthlyLimit = 40_000_000
	DefaultTopUpMaxBalance   = 20_000_000
	DefaultTopUpValidity     = 10 * time.Minute
)

// jakarta is Asia/Jakarta (WIB, UTC+7, no daylight saving), fixed so
// that no time zone database is needed.
var jakarta = time.FixedZone("WIB", 7*3600)

func (c TopUpConfig) withDefaults() TopUpConfig {
	if c.MonthlyLimit == 0 {
		c.MonthlyLimit = DefaultTopUpMonthlyLimit
	}
	if c.MaxBalance == 0 {
		c.MaxBalance = DefaultTopUpMaxBalance
	}
	if c.Validity <= 0 {
		c.Validity = DefaultTopUpValidity
	}
	if c.Zone == nil {
		c.Zone = jakarta
	}
	return c
}

// TopUpStore is implemented by the stores that keep top-ups (both).
// Applying happens inside Store.Ingest.
type TopUpStore interface {
	// StageTopUp stores t, atomically with the check that the NIP's
	// top-ups staged in [from, to) (staged, authorised or applied) plus
	// t's amount stay within limit (*TopUpLimitError) and that t's
	// reference is new (ErrTopUpRef).
	StageTopUp(ctx context.Context, t TopUp, from, to time.Time, limit uint64) error
	// TopUp is the top-up id, in any state (ErrNotFound).
	TopUp(ctx context.Context, id [16]byte) (*TopUp, error)
	// TopUps lists top-ups, the newest staged first.
	TopUps(ctx context.Context, f TopUpFilter) ([]TopUp, error)
	// PendingTopUps are the NIP's staged and authorised top-ups, the
	// oldest first.
	PendingTopUps(ctx context.Context, nip string) ([]TopUp, error)
	// AuthoriseTopUp records an authorisation issued for the card at
	// ptc: the top-up must be staged, or authorised for that card at that
	// PTC (ErrTopUpState).
	AuthoriseTopUp(ctx context.Context, id [16]byte, serial [8]byte, ptc uint32, notAfter, at time.Time) error
	// CancelTopUp cancels a staged top-up (ErrNotFound, ErrTopUpState).
	CancelTopUp(ctx context.Context, id [16]byte) error
}

// TopUpSettings are the top-up limits `serve` runs with, kept in the
// store so that the command line's `topup stage` applies the same
// monthly limit (docs/ewallet.md, "Limits").
type TopUpSettings struct {
	MonthlyLimit uint64
	MaxBalance   uint64
	UpdatedAt    time.Time
}

// TopUpSettingsStore keeps the TopUpSettings (both stores).
type TopUpSettingsStore interface {
	// SaveTopUpSettings replaces the settings.
	SaveTopUpSettings(ctx context.Context, s TopUpSettings) error
	// TopUpSettings are the settings saved (nil: none yet).
	TopUpSettings(ctx context.Context) (*TopUpSettings, error)
}

// SaveTopUpSettings keeps the service's top-up limits (with their
// defaults) in the store; serve does it at its start.
func (s *Service) SaveTopUpSettings(ctx context.Context) error {
	ss, ok := s.store.(TopUpSettingsStore)
	if !ok {
		return ErrNoTopUps
	}
	cfg := s.cfg.TopUp.withDefaults()
	if cfg.MonthlyLimit > math.MaxInt64 || cfg.MaxBalance > math.MaxInt64 {
		return fmt.Errorf("%w: a top-up limit above %d", ErrTopUpQuery, int64(math.MaxInt64))
	}
	return ss.SaveTopUpSettings(ctx, TopUpSettings{MonthlyLimit: cfg.MonthlyLimit, MaxBalance: cfg.MaxBalance, UpdatedAt: s.cfg.Now().UTC()})
}

// monthlyLimit is the limit StageTopUp applies: the service's own when
// configured, else the one serve saved in the store, else the default.
func (s *Service) monthlyLimit(ctx context.Context) (uint64, error) {
	if s.cfg.TopUp.MonthlyLimit != 0 {
		return s.cfg.TopUp.MonthlyLimit, nil
	}
	if ss, ok := s.store.(TopUpSettingsStore); ok {
		saved, err := ss.TopUpSettings(ctx)
		if err != nil {
			return 0, err
		}
		if saved != nil && saved.MonthlyLimit != 0 {
			return saved.MonthlyLimit, nil
		}
	}
	return DefaultTopUpMonthlyLimit, nil
}

// AuditBy appends an audit entry for an action taken outside the staff
// API, by actor (the command line's is "cli").
func (s *Service) AuditBy(ctx context.Context, actor, action, target, detail string) error {
	return s.audit(ctx, &Principal{Account: actor}, action, target, "", "ok", detail)
}

// Top-up errors.
var (
	// ErrNoTopUps: the store keeps no top-ups.
	ErrNoTopUps = errors.New("backoffice: this store keeps no top-ups")
	// ErrTopUpUnavailable: no issuer signer is configured.
	ErrTopUpUnavailable = errors.New("backoffice: top-up unavailable: no issuer signer")
	// ErrTopUpQuery: a query or a staging request that breaks the rules.
	ErrTopUpQuery = errors.New("backoffice: top-up request not acceptable")
	// ErrTopUpLimit: staging it would pass the NIP's monthly limit
	// (*TopUpLimitError).
	ErrTopUpLimit = errors.New("backoffice: top-up over the monthly limit")
	// ErrTopUpRef: a top-up with this source reference is staged already.
	ErrTopUpRef = errors.New("backoffice: a top-up with this source reference exists")
	// ErrTopUpState: the top-up is not in a state that allows it.
	ErrTopUpState = errors.New("backoffice: the top-up's state does not allow it")
)

// TopUpLimitError says by how much a top-up would pass the limit.
type TopUpLimitError struct {
	Month  string // YYYY-MM in the configured zone
	Used   uint64 // staged, authorised and applied in the month before it
	Amount uint64
	Limit  uint64
}

func (e *TopUpLimitError) Error() string {
	return fmt.Sprintf("backoffice: top-up of Rp %d over the monthly limit: Rp %d of Rp %d used in %s", e.Amount, e.Used, e.Limit, e.Month)
}

// Unwrap makes it ErrTopUpLimit.
func (e *TopUpLimitError) Unwrap() error { return ErrTopUpLimit }

// Alarms of top-up records (docs/ewallet.md).
const (
	// AlarmTopUpReplayed: a second top-up record for an applied top-up.
	AlarmTopUpReplayed = "topup-replayed"
	// AlarmTopUpMismatch: a top-up record that does not match its top-up
	// (another amount, another card or PTC than authorised, a top-up
	// never authorised); it is applied all the same.
	AlarmTopUpMismatch = "topup-mismatch"
	// AlarmTopUpUnmatched: a top-up record names a top-up this back
	// office never staged.
	AlarmTopUpUnmatched = "topup-unmatched"
)

// The top-up alarms have their series of kpe_backoffice_alarms_open
// (metrics.go), zero included; added here so that each part of the
// e-wallet keeps its own kinds.
func init() {
	AlarmKinds = append(AlarmKinds, AlarmTopUpReplayed, AlarmTopUpMismatch, AlarmTopUpUnmatched)
}

// Audit actions of top-ups.
const (
	AuditTopUpStage  = "topup-stage"  // target: the top-up id; detail: amount and reference
	AuditTopUpCancel = "topup-cancel" // target: the top-up id
)

func (s *Service) topUps() (TopUpStore, error) {
	ts, ok := s.store.(TopUpStore)
	if !ok {
		return nil, ErrNoTopUps
	}
	return ts, nil
}

// TopUpRequest is what staff stage.
type TopUpRequest struct {
	NIP    string `json:"nip"`
	Amount uint32 `json:"amount"`
	Ref    string `json:"ref"`
}

// The fields of a staging request a TopUpFieldError names.
const (
	TopUpFieldNIP    = "nip"
	TopUpFieldAmount = "amount"
	TopUpFieldRef    = "ref"
)

// TopUpFieldError is a staging request's field that breaks the rules
// (its reason in English, for logs and the JSON API); it matches
// ErrTopUpQuery. NotASCII tells a reference with other characters from
// one of the wrong length.
type TopUpFieldError struct {
	Field, Reason string
	NotASCII      bool
}

func (e *TopUpFieldError) Error() string {
	return fmt.Sprintf("%s: %s: %s", ErrTopUpQuery, e.Field, e.Reason)
}

// Is matches ErrTopUpQuery.
func (e *TopUpFieldError) Is(target error) bool { return target == ErrTopUpQuery }

// maxTopUpRef bounds a source reference.
const maxTopUpRef = 64

func checkTopUpRequest(r TopUpRequest) error {
	var p problems
	checkNIP(&p, 0, "nip", r.NIP)
	if p.err() != nil {
		return &TopUpFieldError{Field: TopUpFieldNIP, Reason: "want 18 digits"}
	}
	if r.Amount < 1 {
		return &TopUpFieldError{Field: TopUpFieldAmount, Reason: "at least Rp 1"}
	}
	if r.Ref == "" || len(r.Ref) > maxTopUpRef || strings.TrimSpace(r.Ref) != r.Ref {
		return &TopUpFieldError{Field: TopUpFieldRef, Reason: fmt.Sprintf("1 to %d bytes, no surrounding spaces", maxTopUpRef)}
	}
	for _, c := range r.Ref {
		if c < 0x21 || c > 0x7E {
			return &TopUpFieldError{Field: TopUpFieldRef, Reason: "printable ASCII only", NotASCII: true}
		}
	}
	return nil
}

// monthOf is the calendar month of at in zone, as [from, to) and its name.
func monthOf(at time.Time, zone *time.Location) (from, to time.Time, name string) {
	l := at.In(zone)
	from = time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, zone)
	return from, from.AddDate(0, 1, 0), from.Format("2006-01")
}

// StageTopUp stages a top-up paid for the NIP (by: the staff account or
// "cli"): ErrTopUpQuery for a bad request, *TopUpLimitError over the
// monthly limit, ErrTopUpRef for a reference staged before.
func (s *Service) StageTopUp(ctx context.Context, r TopUpRequest, by string) (*TopUp, error) {
	ts, err := s.topUps()
	if err != nil {
		return nil, err
	}
	if err := checkTopUpRequest(r); err != nil {
		return nil, err
	}
	cfg := s.cfg.TopUp.withDefaults()
	limit, err := s.monthlyLimit(ctx)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	t := TopUp{ID: randomID(), NIP: r.NIP, Amount: r.Amount, Ref: r.Ref, StagedAt: now, StagedBy: by, Status: TopUpStaged}
	from, to, _ := monthOf(now, cfg.Zone)
	if err := ts.StageTopUp(ctx, t, from, to, limit); err != nil {
		return nil, err
	}
	s.cfg.Log.Info("top-up staged", "topup", hex.EncodeToString(t.ID[:]), "amount", t.Amount)
	return &t, nil
}

// limitError is the error for a month with used rupiah before a top-up
// of amount, when they pass limit; nil otherwise.
func limitError(used, amount, limit uint64, from time.Time) error {
	if used+amount <= limit {
		return nil
	}
	return &TopUpLimitError{Month: from.Format("2006-01"), Used: used, Amount: amount, Limit: limit}
}

// TopUps lists top-ups (TopUpStore.TopUps).
func (s *Service) TopUps(ctx context.Context, f TopUpFilter) ([]TopUp, error) {
	ts, err := s.topUps()
	if err != nil {
		return nil, err
	}
	return ts.TopUps(ctx, f)
}

// CancelTopUp cancels a staged top-up; one with an authorisation out
// cannot be (ErrTopUpState): the card may have taken it.
func (s *Service) CancelTopUp(ctx context.Context, id [16]byte) error {
	ts, err := s.topUps()
	if err != nil {
		return err
	}
	return ts.CancelTopUp(ctx, id)
}

// checkTopUpQuery checks the wire rules of a query and returns the card
// serial.
func checkTopUpQuery(q *wire.TopUpQuery) ([8]byte, error) {
	var serial [8]byte
	b, err := hex.DecodeString(q.Serial)
	if err != nil || len(b) != 8 {
		return serial, fmt.Errorf("%w: serial: want 16 hex digits", ErrTopUpQuery)
	}
	copy(serial[:], b)
	var p problems
	checkNIP(&p, 0, "nip", q.NIP)
	if p.err() != nil {
		return serial, fmt.Errorf("%w: nip: want 18 digits", ErrTopUpQuery)
	}
	if q.Balance > q.MaxBalance {
		return serial, fmt.Errorf("%w: balance above the card's maximum", ErrTopUpQuery)
	}
	if q.PTC == ^uint32(0) {
		return serial, fmt.Errorf("%w: ptc: the card's purse counter is exhausted", ErrTopUpQuery)
	}
	if len(q.SOD) == 0 {
		return serial, fmt.Errorf("%w: sod: missing", ErrTopUpQuery)
	}
	if len(q.DG1) == 0 {
		return serial, fmt.Errorf("%w: dg1: missing", ErrTopUpQuery)
	}
	return serial, nil
}

// TopUpOffer answers a terminal's query for a card (docs/ewallet.md):
// at most one authorisation, for the oldest of the NIP's top-ups that can
// be issued for this card at its PTC and fits under the card's maximum
// balance and MaxBalance. A top-up authorised for this card at this PTC
// is issued again (the card took no transaction since); one authorised
// for another card or PTC is held until its record arrives, or a record
// of the card's transaction at that PTC shows it was not used (the
// ingest puts it back to staged). Nothing is answered before the card is
// shown to be the NIP's: its EF.SOD verifies against the issuer roots and
// covers its DG1, whose NIP is the query's (renewal.CheckCard, as the
// renewal offer); the serial stays the terminal's word (neither carries
// it). Errors: ErrTopUpUnavailable, ErrNoTopUps, ErrTopUpQuery,
// ErrBadCardSOD, or the store's.
func (s *Service) TopUpOffer(ctx context.Context, q *wire.TopUpQuery) ([]topup.Authorisation, error) {
	if s.cfg.Issuer == nil {
		return nil, ErrTopUpUnavailable
	}
	ts, err := s.topUps()
	if err != nil {
		return nil, err
	}
	serial, err := checkTopUpQuery(q)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	if err := s.checkCard(q.SOD, q.DG1, q.NIP, now); err != nil {
		return nil, err
	}
	cfg := s.cfg.TopUp.withDefaults()
	pending, err := ts.PendingTopUps(ctx, q.NIP)
	if err != nil {
		return nil, err
	}
	room := uint64(q.MaxBalance) - uint64(q.Balance)
	if cfg.MaxBalance < uint64(q.Balance) {
		room = 0
	} else {
		room = min(room, cfg.MaxBalance-uint64(q.Balance))
	}
	for _, t := range pending {
		switch {
		case t.Status == TopUpAuthorised && (t.AuthSerial != serial || t.AuthPTC != q.PTC):
			continue // held: it may be on its card already
		case uint64(t.Amount) > room:
			continue
		}
		a := topup.Authorisation{ID: t.ID, Serial: serial, PTC: q.PTC, Amount: t.Amount, NotAfter: now.Add(cfg.Validity)}
		if err := a.Sign(s.cfg.Issuer, s.cfg.Issuer.Certificate()); err != nil {
			return nil, fmt.Errorf("backoffice: signing a top-up authorisation: %w", err)
		}
		if err := ts.AuthoriseTopUp(ctx, t.ID, serial, q.PTC, a.NotAfter, now.UTC()); errors.Is(err, ErrTopUpState) {
			return nil, nil // another query took it meanwhile; the terminal asks again
		} else if err != nil {
			return nil, err
		}
		s.cfg.Log.Info("top-up authorised", "topup", hex.EncodeToString(t.ID[:]), "ptc", q.PTC, "again", t.Status == TopUpAuthorised)
		return []topup.Authorisation{a}, nil
	}
	return nil, nil
}

// purseTxn is what a record with a purse field says, on its way into the
// store with the record.
type purseTxn struct {
	TopUp    bool // a top-up record (ServiceTopUp, a credit)
	Kind     record.PurseKind
	Request  [16]byte
	Serial   [8]byte
	PTC      uint32 // after the transaction
	Amount   uint32
	Code     string
	Terminal string
	At       time.Time
	SAM      [8]byte
	Counter  uint32
}

// purseTxnOf is the purse transaction a record carries, nil for a record
// without one.
func purseTxnOf(e Entry) *purseTxn {
	r := e.Rec
	if r.Purse == nil {
		return nil
	}
	x := &purseTxn{TopUp: r.Service == record.ServiceTopUp, Kind: r.Purse.Kind, Request: r.Purse.Request, PTC: r.Purse.PTC,
		Amount: r.Purse.Amount, Code: e.Code, Terminal: r.TerminalID, At: r.Time.UTC(), SAM: r.SAMSerial, Counter: r.Counter}
	if len(r.CardSerial) == len(x.Serial) {
		copy(x.Serial[:], r.CardSerial)
	}
	return x
}

func (x *purseTxn) alarm(kind, detail string, now time.Time) wire.Alarm {
	return wire.Alarm{Kind: kind, TerminalID: x.Terminal, SAMSerial: hex.EncodeToString(x.SAM[:]), Counter: x.Counter, At: now.UTC(),
		Detail: fmt.Sprintf("top-up record %s for top-up %s %s", x.Code, hex.EncodeToString(x.Request[:]), detail)}
}

// applyTopUp decides on a top-up record inside a store's Ingest
// transaction, given its top-up (nil: unknown). It answers the alarms to
// raise and whether t changed (to applied). A top-up record always
// applies its top-up unless applied already: a SAM signed that the card
// took the credit, so the id is spent; what does not match is flagged.
func applyTopUp(x *purseTxn, t *TopUp, now time.Time) ([]wire.Alarm, bool) {
	if t == nil {
		return []wire.Alarm{x.alarm(AlarmTopUpUnmatched, "names a top-up this back office never staged", now)}, false
	}
	if t.Status == TopUpApplied {
		return []wire.Alarm{x.alarm(AlarmTopUpReplayed, "was applied already by record "+t.AppliedCode, now)}, false
	}
	var why []string
	switch {
	case x.Kind != record.PurseCredit:
		why = append(why, "is not a credit")
	case t.Status != TopUpAuthorised:
		why = append(why, "credits a top-up never authorised (state "+string(t.Status)+")")
	case t.AuthSerial != x.Serial:
		why = append(why, fmt.Sprintf("credits card %X, authorised for %X", x.Serial, t.AuthSerial))
	case uint64(x.PTC) != uint64(t.AuthPTC)+1:
		why = append(why, fmt.Sprintf("leaves the card at PTC %d, authorised at %d", x.PTC, t.AuthPTC))
	}
	if x.Amount != t.Amount {
		why = append(why, fmt.Sprintf("credits Rp %d, staged Rp %d", x.Amount, t.Amount))
	}
	var alarms []wire.Alarm
	if len(why) > 0 {
		alarms = append(alarms, x.alarm(AlarmTopUpMismatch, strings.Join(why, "; "), now))
	}
	t.Status, t.AppliedAt, t.AppliedCode, t.AppliedTerminal = TopUpApplied, x.At, x.Code, x.Terminal
	t.AppliedSerial, t.AppliedPTC, t.AppliedAmount = x.Serial, x.PTC, x.Amount
	return alarms, true
}

// mayApply says whether a top-up record may spend its top-up id, given
// its ledger row (nil: none): not when its card proof is bad (the ledger
// raised purse-bad-proof; the top-up keeps its state), so a forged
// record cannot use up a top-up the card never took.
func mayApply(row *PurseRow) bool { return row == nil || row.Proof != ProofBad }

// mayRelease says whether a purse record's ledger row may put the
// top-ups held for its card at the PTC it moved from back to staged: only
// a row the ledger counted whose proof is not bad (with the purse keys:
// verified). A forged or repeated record at that PTC releases nothing, so
// the held top-up cannot be authorised again and credited twice.
func mayRelease(row *PurseRow) bool { return row != nil && row.Counted && row.Proof != ProofBad }

// released reports whether a purse transaction shows that the top-up t,
// authorised, was not used: x is the card's transaction at t's PTC (the
// card's PTC after it is one more) and is not t's credit. t goes back to
// staged.
func released(x *purseTxn, t *TopUp) bool {
	if t.Status != TopUpAuthorised || t.AuthSerial != x.Serial || uint64(t.AuthPTC)+1 != uint64(x.PTC) {
		return false
	}
	if x.TopUp && x.Request == t.ID {
		return false
	}
	t.Status, t.AuthSerial, t.AuthPTC, t.AuthNotAfter = TopUpStaged, [8]byte{}, 0, time.Time{}
	return true
}
