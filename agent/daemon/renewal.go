package daemon

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/internal/i18n"
	"kpe-agent/internal/renewal"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
	"kpe-agent/sync/uploader"
	"kpe-agent/sync/wire"
)

// The card data renewal (docs/renewal.md). After a KPE holder's
// fingerprint matched on the card, the daemon keeps a renewalRun for that
// card session: it asks the back office for an offer (the kiosk at once,
// after the authentication's answer; the counter when the clerk asks),
// verifies it (renewal.Verify) before anything is written, shows the data
// on the card and the new data side by side, and on the holder's
// agreement journals the update (outbox journal, fsynced), writes it with
// the SAM's update key in the card session, reads the card back in full,
// and seals the SAM-signed renewal record, the journal entry removed in the
// same outbox transaction. A card whose journal holds an entry is looked
// at first: new data on it → the missing record is written (resume); old
// data → the holder is told the last renewal was interrupted and the offer
// is made again.

// Reasons (api.RenewalView.Reason): why no offer, or why it failed. The
// catalogue words them (kiosk.renewal.reason.<reason> for the holder,
// loket.renewal.reason.<reason> for the clerk).
const (
	reasonNone         = uploader.NoOfferNone        // nothing staged for this holder
	reasonUnavailable  = uploader.NoOfferUnavailable // the back office issues no renewals
	reasonOffline      = uploader.NoOfferOffline     // the back office was not reached
	reasonTimeout      = uploader.NoOfferTimeout     // no answer in time
	reasonDeclined     = "declined"                  // the holder said not now
	reasonBadSOD       = "bad-sod"                   // the back office refused the card's security object
	reasonOfferRefused = "offer-refused"             // the offer did not verify: not written
	reasonNoUpdateKey  = "no-update-key"             // this terminal's SAM cannot renew cards
	reasonCardRemoved  = "card-removed"              // the card left before the end: insert it again
	reasonNotStarted   = "not-started"               // the journal could not be written, or holds an unsettled entry: nothing written
	reasonWriteFailed  = "write-failed"              // the card refused the update; it holds its old data
	reasonVerifyFailed = "verify-failed"             // the card read back does not hold the new data
	reasonNotRecorded  = "not-recorded"              // written, but the record could not be stored (the journal keeps it)
	reasonUnknown      = "unknown-state"             // a journal entry matched neither the old nor the new data
)

// renewalCard is what a renewal does with the card, each inside the card's
// session (cards.Session: every card operation runs in its goroutine).
type renewalCard interface {
	// Write writes u with the SAM's update key (kpe.WriteUpdate); onStep
	// is told each step.
	Write(ctx context.Context, serial [8]byte, u kpe.Update, onStep func(kpe.WriteStep, int)) error
	// Reread reads and verifies the whole card again.
	Reread(ctx context.Context) (*cards.Result, error)
}

// renewalEnv is what renewals use outside the card.
type renewalEnv struct {
	ob    *outbox.Outbox
	roots func() *x509.CertPool // the BKN issuer roots
	now   func() time.Time
	log   *slog.Logger
	// ask asks the back office for an offer (nil: no back office)
	ask func(ctx context.Context, q wire.RenewalQuery) (uploader.OfferAnswer, error)
	// seal has the SAM sign rec and appends it with AppendRenewal
	seal func(ctx context.Context, rec *record.Record) error
	// publish tells the event stream of a run's new state
	publish func(reader, state string)
}

// renewalRun is the renewal of one card session.
type renewalRun struct {
	env    *renewalEnv
	card   renewalCard
	reader string
	owner  string // api.Caller of the authentication: who may see and act ("" the token)
	kiosk  bool
	tmpl   record.Record // the authentication's record: the renewal record's checks and subject
	cs     renewal.CardState
	groups map[int][]byte // the card's data groups as read (memory only; wiped when the card leaves)

	mu          sync.Mutex
	state       string
	reason      string
	interrupted bool
	offer       *renewal.Offer
	code, recID string
	busy        bool          // a check or an apply runs
	looked      chan struct{} // closed when begin has looked at the journal
	// attempted: an apply began in this card session. The card may have
	// changed since it was read, so nothing more is checked or written
	// until it is inserted again and read afresh.
	attempted bool
}

// newRenewalRun keeps the card state of res (copies: the run outlives res).
func newRenewalRun(env *renewalEnv, card renewalCard, reader, owner string, kiosk bool, res *cards.Result, tmpl *record.Record) *renewalRun {
	k := res.KPE
	groups := make(map[int][]byte, len(k.Groups))
	for dg, b := range k.Groups {
		groups[dg] = bytes.Clone(b)
	}
	run := &renewalRun{env: env, card: card, reader: reader, owner: owner, kiosk: kiosk, tmpl: *tmpl, state: api.RenewalNone, looked: make(chan struct{}),
		cs: renewal.CardState{Serial: k.Info.Serial, NIP: k.Identity.NIP, SOD: bytes.Clone(k.SOD), Sequence: k.Update.Sequence}, groups: groups}
	run.tmpl.Service, run.tmpl.Renewal = record.ServiceRenewal, nil
	return run
}

// wipe forgets the card's data (the card left).
func (run *renewalRun) wipe() {
	run.mu.Lock()
	defer run.mu.Unlock()
	for _, b := range run.groups {
		clear(b)
	}
	run.groups, run.offer = nil, nil
	if run.state == api.RenewalAvailable || run.state == api.RenewalChecking {
		run.state = api.RenewalNone
	}
}

func (run *renewalRun) set(state, reason string) {
	run.mu.Lock()
	run.state, run.reason = state, reason
	run.mu.Unlock()
	run.env.publish(run.reader, state)
}

// serialHex is the card serial for logs: a card identifier, not the
// holder's data.
func (run *renewalRun) serialHex() string { return hex.EncodeToString(run.cs.Serial[:]) }

// begin looks at the card's journal entry, then asks for an offer when
// check. A resumed renewal (the card holds the new data, its record is
// missing) ends done.
func (run *renewalRun) begin(ctx context.Context, check bool) {
	ended := run.journaled(ctx)
	close(run.looked)
	if !ended && check {
		run.check(ctx)
	}
}

// journaled looks at the card's journal entry: a resumed renewal (or a
// card in neither state) ends the run (true).
func (run *renewalRun) journaled(ctx context.Context) bool {
	j, err := run.env.ob.Journal(run.cs.Serial)
	if err != nil {
		run.env.log.Error("renewal: the journal cannot be read", "err", err)
	}
	if j != nil {
		switch h := renewal.SODHash(run.cs.SOD); h {
		case j.NewSOD:
			run.env.log.Info("renewal: the card holds the journaled update; writing its missing record", "card", run.serialHex(), "update", hex.EncodeToString(j.UpdateID[:]))
			run.record(ctx, j.UpdateID, j.OldSOD, j.NewSOD)
			return true
		case j.OldSOD:
			run.env.log.Warn("renewal: an earlier renewal of this card was interrupted; the card holds its old data", "card", run.serialHex(), "update", hex.EncodeToString(j.UpdateID[:]), "step", j.Step.String())
			run.mu.Lock()
			run.interrupted = true
			run.mu.Unlock()
			run.env.publish(run.reader, api.RenewalInterrupted)
			if err := run.env.ob.DeleteJournal(run.cs.Serial); err != nil {
				run.env.log.Error("renewal: the journal entry cannot be removed", "err", err)
			}
		default:
			run.env.log.Warn("renewal: the card holds neither the data before nor after its journaled update; entry cleared", "card", run.serialHex(), "update", hex.EncodeToString(j.UpdateID[:]))
			if err := run.env.ob.DeleteJournal(run.cs.Serial); err != nil {
				run.env.log.Error("renewal: the journal entry cannot be removed", "err", err)
			}
			run.set(api.RenewalFailed, reasonUnknown)
			return true
		}
	}
	return false
}

// errRenewalBusy: a check or an apply runs already.
var errRenewalBusy = fail(CodeReaderBusy, errors.New("a renewal step runs already"))

// check asks the back office for an offer and verifies it, once begin
// has looked at the journal (a clerk's check right after the
// authentication must not race a resumed renewal's record).
func (run *renewalRun) check(ctx context.Context) error {
	select {
	case <-run.looked:
	case <-ctx.Done():
		return ctx.Err()
	}
	run.mu.Lock()
	switch {
	case run.busy:
		run.mu.Unlock()
		return errRenewalBusy
	case run.state == api.RenewalDone || run.state == api.RenewalWriting || run.state == api.RenewalInterrupted || run.groups == nil:
		run.mu.Unlock()
		return fail(CodeNotAvailable, fmt.Errorf("renewal is %s", run.state))
	case run.attempted:
		run.mu.Unlock()
		return fail(CodeNotAvailable, errors.New("a renewal was attempted in this card session: insert the card again"))
	}
	run.busy = true
	dg1 := bytes.Clone(run.groups[kpe.DGIdentity])
	run.mu.Unlock()
	defer func() {
		run.mu.Lock()
		run.busy = false
		run.mu.Unlock()
	}()
	if run.env.ask == nil {
		run.set(api.RenewalNone, reasonUnavailable)
		return nil
	}
	run.set(api.RenewalChecking, "")
	// DG1 shows the back office the card is the holder's (docs/renewal.md)
	q := wire.RenewalQuery{CardSerial: run.serialHex(), NIP: run.cs.NIP, SOD: run.cs.SOD, DG1: dg1, Sequence: run.cs.Sequence}
	ans, err := run.env.ask(ctx, q)
	switch {
	case errors.Is(err, uploader.ErrBadSOD):
		run.env.log.Warn("renewal: the back office refused the card's security object", "card", run.serialHex(), "err", err)
		run.set(api.RenewalFailed, reasonBadSOD)
		return nil
	case err != nil && ctx.Err() != nil:
		run.set(api.RenewalNone, reasonOffline)
		return nil
	case err != nil:
		run.env.log.Warn("renewal: the back office's answer is not an offer; nothing written", "card", run.serialHex(), "err", err)
		run.set(api.RenewalFailed, reasonOfferRefused)
		return nil
	case ans.Offer == nil:
		run.set(api.RenewalNone, ans.Reason)
		return nil
	}
	o := ans.Offer
	err = renewal.Verify(o, run.cs, run.env.roots(), run.env.now())
	switch {
	case err == nil:
		run.mu.Lock()
		run.offer = o
		run.mu.Unlock()
		run.set(api.RenewalAvailable, "")
	case errors.Is(err, renewal.ErrApplied) && run.recorded(o):
		// the card holds the offer's data and the outbox its record (a
		// session that ended before the upload, a later visit): nothing
		// is missing, and a second record would count the renewal twice
		run.env.log.Info("renewal: the card holds the offered update and its record is in the outbox", "card", run.serialHex(), "update", hex.EncodeToString(o.UpdateID[:]))
		run.set(api.RenewalNone, reasonNone)
	case errors.Is(err, renewal.ErrApplied):
		// the card holds the offer's data already: its record was missed
		run.env.log.Info("renewal: the card holds the offered update already; writing its missing record", "card", run.serialHex(), "update", hex.EncodeToString(o.UpdateID[:]))
		run.record(ctx, o.UpdateID, o.BaseSOD, o.NewSOD)
	default:
		// forged, replayed, for another card, expired: never written
		run.env.log.Warn("renewal: offer refused; nothing written", "card", run.serialHex(), "update", hex.EncodeToString(o.UpdateID[:]), "err", err)
		run.set(api.RenewalFailed, reasonOfferRefused)
	}
	return nil
}

// recorded says the outbox holds the renewal record of o for this card
// (in any state but dead-lettered; a record pruned after its
// acknowledgement is not found: the back office knows it then).
func (run *renewalRun) recorded(o *renewal.Offer) bool {
	items, err := run.env.ob.List(0, 0)
	if err != nil {
		run.env.log.Error("renewal: the outbox cannot be read", "err", err)
		return false
	}
	for _, it := range items {
		r, err := record.Decode(it.Encoded)
		if err != nil || r.Service != record.ServiceRenewal || r.Renewal == nil {
			continue
		}
		if r.Renewal.UpdateID == o.UpdateID && r.Renewal.NewSOD == o.NewSOD && bytes.Equal(r.CardSerial, run.cs.Serial[:]) {
			return true
		}
	}
	return false
}

// decline puts an offer aside (the holder said not now).
func (run *renewalRun) decline() error {
	run.mu.Lock()
	if run.busy || run.state == api.RenewalWriting {
		run.mu.Unlock()
		return errRenewalBusy
	}
	run.offer = nil
	run.mu.Unlock()
	run.set(api.RenewalNone, reasonDeclined)
	return nil
}

// apply writes the verified offer, reads the card back and records the
// renewal.
func (run *renewalRun) apply(ctx context.Context) error {
	run.mu.Lock()
	o := run.offer
	switch {
	case run.busy:
		run.mu.Unlock()
		return errRenewalBusy
	case run.state != api.RenewalAvailable || o == nil || run.attempted:
		run.mu.Unlock()
		return fail(CodeNotAvailable, fmt.Errorf("no offer to apply (renewal is %s)", run.state))
	}
	run.busy = true
	run.mu.Unlock()
	defer func() {
		run.mu.Lock()
		run.busy = false
		run.mu.Unlock()
	}()
	// the offer again, now: the holder may have taken longer than its
	// expiry to agree
	if err := renewal.Verify(o, run.cs, run.env.roots(), run.env.now()); err != nil {
		run.env.log.Warn("renewal: the offer no longer verifies; nothing written", "card", run.serialHex(), "update", hex.EncodeToString(o.UpdateID[:]), "err", err)
		run.set(api.RenewalFailed, reasonOfferRefused)
		return nil
	}
	// a journal entry for this card is an earlier renewal the next
	// insertion must settle: it is never overwritten
	if j, err := run.env.ob.Journal(run.cs.Serial); err != nil || j != nil {
		run.env.log.Warn("renewal: this card has an unsettled journal entry; nothing written", "card", run.serialHex(), "err", err)
		run.set(api.RenewalFailed, reasonNotStarted)
		return nil
	}
	run.mu.Lock()
	run.attempted = true
	run.mu.Unlock()
	old := renewal.SODHash(run.cs.SOD)
	j := outbox.Journal{Serial: run.cs.Serial, UpdateID: o.UpdateID, Sequence: o.Sequence, OldSOD: old, NewSOD: o.NewSOD, Step: outbox.JournalWriting}
	// on disk before the first command that can change the card
	if err := run.env.ob.PutJournal(j); err != nil {
		run.env.log.Error("renewal: the journal cannot be written; nothing written to the card", "err", err)
		run.set(api.RenewalFailed, reasonNotStarted)
		return nil
	}
	run.set(api.RenewalWriting, "")
	u := kpe.Update{ID: o.UpdateID, Sequence: o.Sequence, Groups: maps.Clone(o.Groups), SOD: o.SOD}
	err := run.card.Write(ctx, run.cs.Serial, u, nil)
	if err != nil {
		var ue *kpe.UpdateError
		committing := errors.As(err, &ue) && ue.Step == kpe.StepCommitted
		removed := cardGone(err) || errors.Is(err, apdu.ErrCardRemoved)
		switch {
		case errors.Is(err, kpe.ErrNoUpdateKey):
			run.env.log.Warn("renewal: the SAM holds no card update key; nothing written", "card", run.serialHex())
			run.dropJournal()
			run.set(api.RenewalFailed, reasonNoUpdateKey)
			return nil
		case committing && removed:
			// the outcome of COMMIT is unknown: the next insertion tells
			j.Step = outbox.JournalCommitUnknown
			run.putJournal(j)
			run.env.log.Warn("renewal: the card left at its commit; the next insertion tells old from new", "card", run.serialHex())
			run.set(api.RenewalInterrupted, reasonCardRemoved)
			return nil
		case removed:
			// torn before COMMIT: the card holds its old data; the entry
			// stays so that the next insertion says so
			run.env.log.Warn("renewal: the card left while the update was written; it holds its old data", "card", run.serialHex(), "err", err)
			run.set(api.RenewalInterrupted, reasonCardRemoved)
			return nil
		case !committing:
			run.env.log.Warn("renewal: the card refused the update; it holds its old data", "card", run.serialHex(), "err", err)
			run.dropJournal()
			run.set(api.RenewalFailed, reasonWriteFailed)
			return nil
		}
		// COMMIT's answer is missing but the card is there: read it back
		j.Step = outbox.JournalCommitUnknown
		run.putJournal(j)
	}
	res, err := run.card.Reread(ctx)
	if err != nil {
		j.Step = outbox.JournalCommitUnknown
		run.putJournal(j)
		run.env.log.Warn("renewal: the card cannot be read back; the next insertion tells old from new", "card", run.serialHex(), "err", err)
		if cardGone(err) || errors.Is(err, apdu.ErrCardRemoved) {
			run.set(api.RenewalInterrupted, reasonCardRemoved)
		} else {
			run.set(api.RenewalFailed, reasonVerifyFailed)
		}
		return nil
	}
	defer wipe(res)
	switch got := renewal.SODHash(res.KPE.SOD); {
	case got == old:
		run.env.log.Warn("renewal: the card read back holds its old data; the update was not committed", "card", run.serialHex())
		run.dropJournal()
		run.set(api.RenewalFailed, reasonWriteFailed)
		return nil
	case got != o.NewSOD || !newDataOK(res, o):
		j.Step = outbox.JournalCommitUnknown
		run.putJournal(j)
		run.env.log.Error("renewal: the card read back does not verify with the new data", "card", run.serialHex(), "verdict", res.Verdict)
		run.set(api.RenewalFailed, reasonVerifyFailed)
		return nil
	}
	j.Step = outbox.JournalVerified
	run.putJournal(j)
	run.record(ctx, o.UpdateID, old, o.NewSOD)
	return nil
}

// newDataOK says the card read back passed every check and holds the
// offered groups.
func newDataOK(res *cards.Result, o *renewal.Offer) bool {
	c := res.Checks
	if !c.CardAuthentic.OK || !c.DataAuthentic.OK || res.KPE == nil {
		return false
	}
	for dg, b := range o.Groups {
		if !bytes.Equal(res.KPE.Groups[dg], b) {
			return false
		}
	}
	return true
}

func (run *renewalRun) putJournal(j outbox.Journal) {
	j.Time = time.Time{}
	if err := run.env.ob.PutJournal(j); err != nil {
		run.env.log.Error("renewal: the journal cannot be updated", "step", j.Step.String(), "err", err)
	}
}

func (run *renewalRun) dropJournal() {
	if err := run.env.ob.DeleteJournal(run.cs.Serial); err != nil {
		run.env.log.Error("renewal: the journal entry cannot be removed", "err", err)
	}
}

// record seals and stores the renewal record (the journal entry goes in
// the same transaction) and ends the run done with its code.
func (run *renewalRun) record(ctx context.Context, id [16]byte, oldSOD, newSOD [32]byte) {
	rec := run.tmpl
	var err error
	if rec.ID, err = record.NewID(); err != nil {
		run.set(api.RenewalFailed, reasonNotRecorded)
		return
	}
	rec.Time = run.env.now()
	rec.Renewal = &record.Renewal{UpdateID: id, OldSOD: oldSOD, NewSOD: newSOD}
	if err := run.env.seal(ctx, &rec); err != nil {
		run.env.log.Error("renewal: the renewal record cannot be stored; the journal keeps the renewal", "card", run.serialHex(), "err", err)
		run.set(api.RenewalFailed, reasonNotRecorded)
		return
	}
	h, err := rec.Hash()
	if err != nil {
		run.set(api.RenewalFailed, reasonNotRecorded)
		return
	}
	run.mu.Lock()
	run.code, run.recID = record.CodeOf(h).String(), hex.EncodeToString(rec.ID[:])
	run.mu.Unlock()
	run.env.log.Info("renewal recorded", "reader", run.reader, "update", hex.EncodeToString(id[:]), "record", run.recID)
	run.set(api.RenewalDone, "")
}

// view is the run for the API, worded in lang for audience.
func (run *renewalRun) view(lang i18n.Lang, audience i18n.Audience) api.RenewalView {
	run.mu.Lock()
	defer run.mu.Unlock()
	v := api.RenewalView{Reader: run.reader, State: run.state, Reason: run.reason, Interrupted: run.interrupted}
	if run.reason != "" {
		prefix := "kiosk.renewal.reason."
		if audience != i18n.Holder {
			prefix = "loket.renewal.reason."
		}
		v.Message = lang.T(prefix + run.reason)
	}
	if o := run.offer; o != nil && run.groups != nil && (run.state == api.RenewalAvailable || run.state == api.RenewalWriting) {
		v.Card, v.New = compareGroups(o.Changed(), run.groups, o.Groups, lang)
	}
	if run.state == api.RenewalDone {
		v.Code, v.RecordID = run.code, run.recID
	}
	return v
}

// mayUse says caller (api.Caller) may see and act on the run: the token
// any, a page credential the run of its own authentication.
func (run *renewalRun) mayUse(caller string) bool { return caller == "" || caller == run.owner }
