package daemon

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/internal/i18n"
	"kpe-agent/internal/topup"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
	"kpe-agent/sync/uploader"
	"kpe-agent/sync/wire"
)

// The e-wallet at the kiosk and the counter (docs/ewallet.md part 3): after
// a KPE holder's fingerprint matched (any authentication, the e-wallet on),
// the card's purse (READ PURSE) and log (READ LOG) are read in the card
// session, after the match (selecting the purse ends the secure channel
// match-on-card runs in) and after an earlier torn transaction of the card
// was settled. The daemon keeps them in memory for that card session only
// (purseRun, wiped when the card leaves; never on disk, never logged), for
// the credential that ran the authentication. With ewallet.topup and a
// back office, "update saldo": the back office is asked for a top-up
// authorisation (TopUpCheck), each is verified (topup.Verify against the
// BKN roots, this card's serial and PTC, now) and held within
// min(ewallet.max_balance, the card's maximum), and on the holder's "yes"
// (TopUpApply) the purse engine's CREDIT runs with the authorisation's id
// as its request: one credit per authorisation, tear-safe through the
// purse journal.

// Reasons of the top-up view (api.TopUpView.Reason) besides the purse
// engine's (purse.go); the catalogue words them (kiosk.topup.reason.<r>).
const (
	topupNone        = uploader.NoOfferNone        // nothing staged for this holder
	topupUnavailable = uploader.NoOfferUnavailable // the back office issues no top-ups
	topupOffline     = uploader.NoOfferOffline     // the back office was not reached
	topupTimeout     = uploader.NoOfferTimeout     // no answer in time
	topupOff         = "off"                       // this terminal offers no top-ups (ewallet.topup, sync.url)
	topupDeclined    = "declined"                  // the holder said not now
	topupRefused     = "refused"                   // the back office refused the query, or answered nonsense
	topupForged      = "forged"                    // the authorisation is malformed or not signed by a trusted issuer key
	topupMismatch    = "mismatch"                  // the authorisation is for another card
	topupReplayed    = "replayed"                  // the authorisation is for another PTC of the card, or was used already
	topupExpired     = "expired"                   // the authorisation expired
	topupOverLimit   = "over-limit"                // the balance after it would pass ewallet.max_balance or the card's maximum
	topupPending     = "purse-pending"             // the card has an earlier transaction this terminal cannot settle
)

// purseRun is the e-wallet view and top-up of one card session.
type purseRun struct {
	reader string
	owner  string // api.Caller of the authentication ("" the token)
	kiosk  bool
	serial [8]byte
	nip    string
	tmpl   record.Record // the authentication's record: the top-up record's checks and subject
	// sod and dg1 are the card's EF.SOD and DG1 as read (copies): the
	// top-up query shows the back office with them that the NIP is the
	// card's (docs/ewallet.md). Memory only; wiped with the purse.
	sod, dg1 []byte

	mu     sync.Mutex
	st     kpe.PurseState
	log    []kpe.PurseLogEntry // newest first
	state  string              // api.TopUp*
	reason string
	offer  *topup.Authorisation
	amount uint32
	code   string
	recID  string
	busy   bool // a check or an apply runs
}

func (run *purseRun) mayUse(caller string) bool { return caller == "" || caller == run.owner }

// wipe forgets the card's purse (the card left).
func (run *purseRun) wipe() {
	run.mu.Lock()
	defer run.mu.Unlock()
	clear(run.log)
	clear(run.dg1)
	run.log, run.offer, run.st, run.nip, run.sod, run.dg1 = nil, nil, kpe.PurseState{}, "", nil, nil
}

// readPurseState reads the card's purse and log in its own PC/SC
// transaction; ok false for a card without a purse or one that could not
// be read (the authentication goes on without the view).
func (d *Daemon) readPurseState(ctx context.Context, card apdu.Card) (kpe.PurseState, []kpe.PurseLogEntry, bool) {
	if err := card.BeginTransaction(ctx); err != nil {
		return kpe.PurseState{}, nil, false
	}
	defer card.EndTransaction()
	return d.readPurseLocked(ctx, card)
}

// readPurseLocked is readPurseState inside the caller's transaction.
func (d *Daemon) readPurseLocked(ctx context.Context, card apdu.Card) (kpe.PurseState, []kpe.PurseLogEntry, bool) {
	aid := d.o.Cards.Profiles.KPEAID
	st, err := kpe.ReadPurse(ctx, card, aid)
	if err != nil {
		if !errors.Is(err, kpe.ErrNoPurse) {
			d.log.Info("purse: the card's purse cannot be read", "err", err)
		}
		return kpe.PurseState{}, nil, false
	}
	log, err := kpe.ReadPurseLog(ctx, card, aid)
	if err != nil {
		d.log.Info("purse: the card's log cannot be read", "err", err)
		return kpe.PurseState{}, nil, false
	}
	return st, sortLog(log), true
}

// sortLog orders entries newest first (highest PTC).
func sortLog(log []kpe.PurseLogEntry) []kpe.PurseLogEntry {
	slices.SortStableFunc(log, func(a, b kpe.PurseLogEntry) int {
		switch {
		case a.PTC > b.PTC:
			return -1
		case a.PTC < b.PTC:
			return 1
		}
		return 0
	})
	return log
}

// keepPurse keeps the purse view of the card session s after the
// authentication of res (its record tmpl, before it was sealed).
func (d *Daemon) keepPurse(r *reader, s *cards.Session, owner string, kiosk bool, res *cards.Result, tmpl *record.Record, st kpe.PurseState, log []kpe.PurseLogEntry) {
	run := &purseRun{reader: r.name, owner: owner, kiosk: kiosk, serial: res.KPE.Info.Serial, nip: res.KPE.Identity.NIP, tmpl: *tmpl,
		st: st, log: log, state: api.TopUpNone, sod: bytes.Clone(res.KPE.SOD), dg1: bytes.Clone(res.KPE.Groups[kpe.DGIdentity])}
	run.tmpl.Renewal, run.tmpl.Purse = nil, nil
	if !d.cfg().TopUpOn() || d.up == nil {
		run.reason = topupOff
	}
	r.mu.Lock()
	if r.sess != s || !r.present {
		r.mu.Unlock()
		run.wipe()
		return
	}
	old := r.purse
	r.purse, r.purseSess = run, s
	r.mu.Unlock()
	if old != nil {
		old.wipe()
	}
}

// wipePurse forgets the reader's purse view (the card left).
func (r *reader) wipePurse() {
	r.mu.Lock()
	old := r.purse
	r.purse, r.purseSess = nil, nil
	r.mu.Unlock()
	if old != nil {
		old.wipe()
	}
}

// purseFor finds the purse view of the card in the named reader for the
// caller of ctx.
func (d *Daemon) purseFor(ctx context.Context, name string) (*reader, *purseRun, *cards.Session, error) {
	r, err := d.pickReader(name)
	if err != nil {
		return nil, nil, nil, err
	}
	r.mu.Lock()
	run, s := r.purse, r.purseSess
	ok := run != nil && r.present && r.sess == s
	r.mu.Unlock()
	if !ok || !run.mayUse(api.Caller(ctx)) {
		return nil, nil, nil, fail(CodeNotAvailable, errors.New("no KPE purse read in this card session for this caller"))
	}
	return r, run, s, nil
}

// purseLocale is loc with the terminal's defaults; a kiosk page's request
// speaks to the holder.
func (d *Daemon) purseLocale(ctx context.Context, loc api.Locale) api.Locale {
	if api.KioskCredential(ctx) != "" {
		loc.Audience = i18n.Holder
	}
	return d.locale(loc)
}

// view words the run for the API.
func (run *purseRun) view(lang i18n.Lang) api.PurseView {
	run.mu.Lock()
	defer run.mu.Unlock()
	v := api.PurseView{Reader: run.reader, Balance: int64(run.st.Balance), MaxBalance: int64(run.st.MaxBalance), PTC: int64(run.st.PTC),
		Transactions: make([]api.PurseTransaction, 0, len(run.log))}
	for _, e := range run.log {
		v.Transactions = append(v.Transactions, api.PurseTransaction{Kind: e.Kind.String(), Amount: int64(e.Amount),
			BalanceAfter: int64(e.Balance), Time: time.UnixMilli(e.Time).UTC()})
	}
	v.TopUp = api.TopUpView{State: run.state, Reason: run.reason, Code: run.code, RecordID: run.recID}
	if run.state != api.TopUpNone || run.offer != nil {
		v.TopUp.Amount = int64(run.amount)
	}
	if run.reason != "" {
		v.TopUp.Message = lang.T("kiosk.topup.reason." + run.reason)
	}
	return v
}

// PurseView is the purse of the card in the named reader (API).
func (d *Daemon) PurseView(ctx context.Context, name string, loc api.Locale) (api.PurseView, error) {
	_, run, _, err := d.purseFor(ctx, name)
	if err != nil {
		return api.PurseView{}, err
	}
	return run.view(d.purseLocale(ctx, loc).Lang), nil
}

// claim marks the run busy; false when a check or an apply runs.
func (run *purseRun) claim() bool {
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.busy {
		return false
	}
	run.busy = true
	return true
}

func (run *purseRun) unclaim() {
	run.mu.Lock()
	run.busy = false
	run.mu.Unlock()
}

func (run *purseRun) setNone(reason string) {
	run.mu.Lock()
	run.state, run.reason, run.offer, run.amount = api.TopUpNone, reason, nil, 0
	run.mu.Unlock()
}

// topupReason is the reason of an authorisation topup.Verify refused.
func topupReason(err error) string {
	switch {
	case errors.Is(err, topup.ErrMismatch):
		return topupMismatch
	case errors.Is(err, topup.ErrReplayed):
		return topupReplayed
	case errors.Is(err, topup.ErrExpired):
		return topupExpired
	}
	return topupForged // ErrFormat, ErrIssuer
}

// checkAuthorisation verifies a for the card at st: the signature and
// binding (topup.Verify), the limits, and that this terminal never ran it
// (its request book). "" when it may be credited.
func (d *Daemon) checkAuthorisation(a *topup.Authorisation, serial [8]byte, st kpe.PurseState) string {
	if err := topup.Verify(a, serial, st.PTC, d.o.Cards.BKNRoots, time.Now()); err != nil {
		d.log.Warn("top-up: an authorisation is refused", "card_serial", hex.EncodeToString(serial[:]), "err", err)
		return topupReason(err)
	}
	limit := uint64(min(uint32(max(d.cfg().EWallet.MaxBalance, 0)), st.MaxBalance))
	if uint64(st.Balance)+uint64(a.Amount) > limit {
		return topupOverLimit
	}
	b, err := d.ob.PurseRequest(a.ID)
	switch {
	case err != nil:
		d.log.Error("top-up: the request book cannot be read", "err", err)
		return topupPending
	case b == nil:
		return ""
	case b.Status == outbox.PurseRequestNotDone:
		// the card never took it: it may be tried again (creditCard
		// drops the book's outcome first)
		return ""
	case b.Status == outbox.PurseRequestPending:
		return topupPending
	}
	d.log.Warn("top-up: an authorisation this terminal has credited already is refused", "card_serial", hex.EncodeToString(serial[:]))
	return topupReplayed
}

// TopUpCheck asks the back office for a top-up authorisation for the card
// in the named reader and verifies it (API).
func (d *Daemon) TopUpCheck(ctx context.Context, name string, loc api.Locale) (api.PurseView, error) {
	_, run, _, err := d.purseFor(ctx, name)
	if err != nil {
		return api.PurseView{}, err
	}
	lang := d.purseLocale(ctx, loc).Lang
	if d.closing.Load() {
		return api.PurseView{}, fail(CodeShuttingDown, nil)
	}
	if !d.cfg().TopUpOn() || d.up == nil {
		run.setNone(topupOff)
		return run.view(lang), nil
	}
	if !run.claim() {
		return api.PurseView{}, fail(CodeReaderBusy, errors.New("a top-up of this card runs"))
	}
	defer run.unclaim()
	run.mu.Lock()
	st, serial, nip, efSOD, dg1 := run.st, run.serial, run.nip, run.sod, run.dg1
	run.mu.Unlock()
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(d.halt, cancel)()
	// EF.SOD and DG1 show the back office the NIP is the card's
	q := wire.TopUpQuery{Serial: hex.EncodeToString(serial[:]), NIP: nip, PTC: st.PTC, Balance: st.Balance, MaxBalance: st.MaxBalance,
		SOD: efSOD, DG1: dg1}
	ans, err := d.up.TopUpOffer(cctx, q, d.cfg().EWallet.TopUpTimeout)
	if err != nil {
		if errors.Is(err, uploader.ErrBadSOD) {
			d.log.Warn("top-up: the back office refused the card's security object", "card_serial", hex.EncodeToString(serial[:]), "err", err)
		} else {
			d.log.Warn("top-up: the back office's answer is refused", "err", err)
		}
		run.setNone(topupRefused)
		return run.view(lang), nil
	}
	if len(ans.Authorisations) == 0 {
		run.setNone(ans.Reason)
		return run.view(lang), nil
	}
	a := ans.Authorisations[0]
	if reason := d.checkAuthorisation(&a, serial, st); reason != "" {
		run.setNone(reason)
		return run.view(lang), nil
	}
	run.mu.Lock()
	run.state, run.reason, run.offer, run.amount, run.code, run.recID = api.TopUpAvailable, "", &a, a.Amount, "", ""
	run.mu.Unlock()
	return run.view(lang), nil
}

// TopUpDecline puts the offered top-up aside (API).
func (d *Daemon) TopUpDecline(ctx context.Context, name string) error {
	_, run, _, err := d.purseFor(ctx, name)
	if err != nil {
		return err
	}
	if !run.claim() {
		return fail(CodeReaderBusy, errors.New("a top-up of this card runs"))
	}
	defer run.unclaim()
	run.setNone(topupDeclined)
	return nil
}

// TopUpApply credits the offered top-up to the card in the named reader
// (API): the holder agreed. It returns when the credit ended (done, not
// done, pending); the reader is busy meanwhile.
func (d *Daemon) TopUpApply(ctx context.Context, name string, loc api.Locale) (api.PurseView, error) {
	r, run, s, err := d.purseFor(ctx, name)
	if err != nil {
		return api.PurseView{}, err
	}
	lang := d.purseLocale(ctx, loc).Lang
	if !run.claim() {
		return api.PurseView{}, fail(CodeReaderBusy, errors.New("a top-up of this card runs"))
	}
	defer run.unclaim()
	run.mu.Lock()
	a := run.offer
	run.offer = nil // one try per authorisation: ask again afterwards
	run.mu.Unlock()
	if a == nil {
		return api.PurseView{}, fail(CodeNotAvailable, errors.New("no top-up is offered for this card: check first"))
	}
	d.mu.Lock()
	if d.closing.Load() {
		d.mu.Unlock()
		return api.PurseView{}, fail(CodeShuttingDown, nil)
	}
	d.flows.Add(1)
	d.mu.Unlock()
	defer d.flows.Done()
	// the credit runs to its end whatever the caller does (a closed page
	// must not tear it); the card's removal ends it
	actx, stop := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stop(nil)
	if err := r.begin(func(error) {}, api.Caller(ctx)); err != nil {
		return api.PurseView{}, err
	}
	defer r.end()
	if !r.holdCard(s, stop) {
		return api.PurseView{}, fail(CodeCardRemoved, apdu.ErrCardRemoved)
	}
	defer r.releaseCard()
	out, err := d.creditCard(actx, r, s, run, a)
	if err != nil {
		d.log.Info("top-up failed", "reader", r.name, "err", err)
		return api.PurseView{}, err
	}
	d.publishTopUp(r, out)
	run.mu.Lock()
	run.amount, run.code, run.recID, run.reason = a.Amount, "", "", out.reason
	switch out.status {
	case outbox.PurseRequestDone:
		run.state, run.code, run.recID = api.TopUpDone, out.code, hex.EncodeToString(out.recordID[:])
	case outbox.PurseRequestNotDone:
		run.state = api.TopUpNotDone
	default:
		run.state = api.TopUpPending
	}
	run.mu.Unlock()
	return run.view(lang), nil
}

// creditCard runs the credit of a on the card in s: an earlier journal
// entry of the card settled first, the purse read again and a checked
// against it, then the engine's CREDIT; the purse and log read afresh
// after it (done). A refusal before anything was journaled is a not-done
// outcome with its reason, not an error.
func (d *Daemon) creditCard(ctx context.Context, r *reader, s *cards.Session, run *purseRun, a *topup.Authorisation) (purseOutcome, error) {
	c := d.cfg()
	run.mu.Lock()
	serial, tmpl := run.serial, run.tmpl
	run.mu.Unlock()
	notDone := func(reason string) purseOutcome {
		return purseOutcome{kind: record.PurseCredit, status: outbox.PurseRequestNotDone, request: a.ID, amount: a.Amount, reason: reason}
	}
	var out purseOutcome
	err := s.DoWait(ctx, func(ctx context.Context, card apdu.Card) error {
		return d.withPurseCard(ctx, card, func(lease *samLease) error {
			rctx, cancel := context.WithTimeout(ctx, c.Session.ReadTimeout+c.Session.SignTimeout)
			defer cancel()
			if _, prev, err := d.settleEarlier(rctx, r, card, lease, serial, tmpl); err != nil {
				return fail(CodeInternal, err)
			} else if prev != nil && prev.status == outbox.PurseRequestPending {
				out = notDone(topupPending)
				return nil
			}
			st, err := kpe.ReadPurse(rctx, card, d.o.Cards.Profiles.KPEAID)
			if err != nil {
				return err
			}
			if reason := d.checkAuthorisation(a, serial, st); reason != "" {
				out = notDone(reason)
				return nil
			}
			// a top-up that was not done before (the card never took it) is
			// tried again under the same request id
			if b, err := d.ob.PurseRequest(a.ID); err != nil {
				return fail(CodeInternal, err)
			} else if b != nil {
				if err := d.ob.ForgetPurseNotDone(a.ID); err != nil {
					out = notDone(topupReplayed)
					return nil
				}
			}
			if err := ctx.Err(); err != nil {
				return err // the card pulled before anything was journaled
			}
			// from here the credit runs to its end: a pulled card is its
			// outcome (pending), not the call's error
			d.publish(api.Event{Type: api.EventTopUp, Reader: r.name, State: api.PayPaying})
			pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), c.Session.ReadTimeout+c.Session.SignTimeout)
			defer pcancel()
			out, err = d.runPurse(pctx, card, lease, serial, st, purseTxn{kind: record.PurseCredit, request: a.ID, amount: a.Amount, auth: a}, tmpl)
			if errors.Is(err, outbox.ErrPurseBusy) {
				out = notDone(topupReplayed)
				return nil
			}
			if err != nil {
				return err
			}
			if out.status == outbox.PurseRequestDone {
				after, log, ok := d.readPurseLocked(pctx, card)
				run.mu.Lock()
				if ok {
					run.st, run.log = after, log
				} else {
					// not read back: the proof's balance, the counter one
					// on from the one read before the credit
					run.st.Balance, run.st.PTC = out.balance, st.PTC+1
				}
				run.mu.Unlock()
			}
			return nil
		})
	})
	if err != nil && cardGone(err) {
		err = fail(CodeCardRemoved, err)
	}
	return out, err
}

// publishTopUp tells the event stream of a top-up's outcome.
func (d *Daemon) publishTopUp(r *reader, out purseOutcome) {
	d.publish(api.Event{Type: api.EventTopUp, Reader: r.name, State: payStatus(out.status), Code: out.code})
}

// purseAfterAuth is the authentication's purse step: after the finger
// matched and an earlier transaction was settled, the card's purse and
// log, for a KPE with the e-wallet on.
func (d *Daemon) purseAfterAuth(ctx context.Context, card apdu.Card, res *cards.Result) (st kpe.PurseState, log []kpe.PurseLogEntry, ok bool) {
	if res.KPE == nil || !d.cfg().EWalletOn() {
		return st, nil, false
	}
	rctx, cancel := context.WithTimeout(ctx, d.cfg().Session.ReadTimeout)
	defer cancel()
	return d.readPurseState(rctx, card)
}

var _ api.PurseBackend = (*Daemon)(nil)
