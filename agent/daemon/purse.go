package daemon

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"kpe-agent/agent/api"
	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
	"kpe-agent/internal/topup"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
)

// The purse transaction engine (docs/ewallet.md, part 2): the one way the
// agent moves money on a card, for a payment (DEBIT) and a top-up
// (CREDIT), and the resolution of a transaction whose card left before
// its answer. Everything here runs inside the card's session goroutine
// (cards.Session), with the card's PC/SC transaction begun and the SAM
// leased by the caller.
//
// The order of one transaction, so that a process killed or a card
// pulled at any point leaves either the journal entry or the record:
//
//  1. StartPurse: the card's journal entry and the request, pending
//     (bbolt: fsynced before it returns);
//  2. the SAM's PURSE MAC; its SAM serial and transaction number are
//     journaled (UpdatePurse, step PurseSent) before the card is sent the
//     command (journalingSAM);
//  3. kpe.Debit or kpe.Credit: the card's proof, verified by the SAM;
//  4. the SAM-signed record with the Purse field, appended with
//     outbox.AppendPurse: record, journal removal and request done in one
//     transaction.
//
// A command that never left the terminal (the SAM or the journal failed
// before it) ends not done (SettlePurseNotDone). Once the SAM's PURSE MAC
// answered and the command was transmitted, every failure is settled from
// the card's log (resolvePurse), a refusal too: its status word may be a
// GET RESPONSE's after the card executed the command. A command that
// reached the card without its answer (the card pulled) leaves the entry: the next authentication of that card, at any flow,
// reads the card's log and settles it (resolvePurse) as done (a record
// with Resolved) or not done. One request id is never sent twice.

// Reasons of a purse request that is not done or pending (the request
// book's Reason, api.PayResult.Reason); the catalogue words them for the
// clerk (loket.pay.reason.<reason>).
const (
	purseNotSent       = "not-sent"           // the command never reached the card (it left before, or the SAM or journal failed)
	purseInsufficient  = "insufficient-funds" // the card refused: less than the amount on it
	purseOverMax       = "over-max-balance"   // the card refused: the credit would pass its maximum balance
	purseMACRefused    = "mac-refused"        // the card refused the SAM's MAC
	purseExhausted     = "purse-exhausted"    // the card's purse counter is at its end
	purseNoPurse       = "no-purse"           // the card has no purse
	purseNoKey         = "no-purse-key"       // this terminal's SAM holds no purse master
	purseRefused       = "card-refused"       // the card refused the command otherwise
	purseNotInLog      = "not-in-log"         // resolved: the card's log does not hold it, so it never took it
	purseCardRemoved   = "card-removed"       // pending: the card left while it was sent the command
	purseInProgress    = "in-progress"        // pending: the transaction runs now (a workflow holds its reader)
	purseOtherSAM      = "other-sam"          // pending: another SAM authorised it; this terminal's SAM cannot resolve it
	purseProofFailed   = "proof-failed"       // pending: the card's proof does not verify; the back office reconciles it
	purseLogOverrun    = "log-overrun"        // pending: the card made too many transactions since to tell; the back office reconciles it
	purseNotRecorded   = "not-recorded"       // pending: the card took it, the record could not be stored (the journal keeps it)
	purseUnreadableLog = "log-unreadable"     // pending: the card's log could not be read
	// purseSAMRefused: the SAM refused the top-up's authorisation (PURSE
	// AUTHORISE) or the CREDIT MAC for it, although the agent accepted
	// it (topup.Verify): a SAM with other issuer roots, or an
	// authorisation that expired between the agent's check and the
	// order's time. A credit only; the command never reached the card.
	purseSAMRefused = "sam-refused"
)

// purseTxn is one purse transaction to run.
type purseTxn struct {
	kind      record.PurseKind
	request   [16]byte
	amount    uint32
	merchant  string // a payment's merchant (ewallet.merchant_id)
	reference string // a payment's merchant reference
	// auth is a top-up's authorisation, handed to the SAM (PURSE
	// AUTHORISE) immediately before its CREDIT MAC, in the same lease.
	auth *topup.Authorisation
}

// purseOutcome is how a transaction or a resolution ended.
type purseOutcome struct {
	kind     record.PurseKind // the transaction's: a payment (debit) or a top-up (credit)
	status   outbox.PurseStatus
	request  [16]byte
	amount   uint32
	code     string // done: the record's receipt code
	recordID [16]byte
	balance  uint32 // done: the card's balance after it
	resolved bool   // done from the card's log
	reason   string // not done, pending
}

// journalingSAM is the SAM as kpe.Debit and kpe.Credit see it: its PURSE
// MAC's transaction is journaled (step PurseSent) before the answer goes
// back, so before the card can be sent the command. A journal that cannot
// be written fails PURSE MAC: the command is not sent.
//
// A CREDIT MAC is preceded by PURSE AUTHORISE with the top-up's
// authorisation (auth): the SAM itself refuses a credit it holds no
// verified authorisation for (docs/ewallet.md, "The SAM's check"). A
// refusal of either (sam.ErrTopUpRefused, sam.ErrCreditNotAuthorised)
// fails PURSE MAC: the command is not sent.
type journalingSAM struct {
	sam  purseSAM
	auth *topup.Authorisation
	ob   *outbox.Outbox
	j    *outbox.PurseJournal
}

// purseSAM is the SAM the purse engine uses (sam.SAM).
type purseSAM interface {
	kpe.PurseSAM
	PurseAuthorise(ctx context.Context, a *topup.Authorisation) error
}

func (s *journalingSAM) PurseMAC(ctx context.Context, o kpe.PurseOrder) ([8]byte, uint32, [kpe.PurseMACLen]byte, error) {
	if o.Kind == kpe.PurseCredit {
		if s.auth == nil {
			return [8]byte{}, 0, [kpe.PurseMACLen]byte{}, fmt.Errorf("%w: a credit without its top-up authorisation", sam.ErrCreditNotAuthorised)
		}
		if err := s.sam.PurseAuthorise(ctx, s.auth); err != nil {
			return [8]byte{}, 0, [kpe.PurseMACLen]byte{}, err
		}
	}
	serial, txn, mac, err := s.sam.PurseMAC(ctx, o)
	if err != nil {
		return serial, txn, mac, err
	}
	j := *s.j
	j.SAMSerial, j.SAMTxn, j.TxnTime, j.PTC, j.Step, j.Time = serial, txn, o.Time, o.PTC, outbox.PurseSent, time.Time{}
	if err := s.ob.UpdatePurse(j); err != nil {
		return [8]byte{}, 0, [kpe.PurseMACLen]byte{}, fmt.Errorf("purse journal: %w", err)
	}
	*s.j = j
	return serial, txn, mac, nil
}

func (s *journalingSAM) VerifyPurseProof(ctx context.Context, p kpe.PurseProof) error {
	return s.sam.VerifyPurseProof(ctx, p)
}

// serial is the leased SAM's serial.
func (l *samLease) serial() [8]byte {
	l.h.mu.Lock()
	defer l.h.mu.Unlock()
	return l.h.info.Serial
}

// purseService is the record service of a purse kind.
func purseService(k record.PurseKind) string {
	if k == record.PurseCredit {
		return record.ServiceTopUp
	}
	return record.ServicePayment
}

// runPurse runs t on the card (serial, its purse state st read in this
// card transaction). tmpl is the authentication's record: the purse
// record's checks, subject and operator. An error means nothing was
// journaled (ErrPurseBusy: the card or the request has an entry;
// outbox-full: the outbox is at its count or age limit, and the record of
// the money moved would be stored past it, so no money is moved).
func (d *Daemon) runPurse(ctx context.Context, card apdu.Card, lease *samLease, serial [8]byte, st kpe.PurseState, t purseTxn, tmpl record.Record) (purseOutcome, error) {
	if err := d.ob.Room(); err != nil {
		return purseOutcome{}, fail(CodeOutboxFull, err)
	}
	j := outbox.PurseJournal{Serial: serial, Request: t.request, Kind: t.kind, Step: outbox.PurseStarted, Amount: t.amount,
		PTC: st.PTC, Balance: st.Balance, Merchant: t.merchant, Reference: t.reference}
	if err := d.ob.StartPurse(j); err != nil {
		return purseOutcome{}, err
	}
	js := &journalingSAM{sam: lease.s, auth: t.auth, ob: d.ob, j: &j}
	run := kpe.Debit
	if t.kind == record.PurseCredit {
		run = kpe.Credit
	}
	res, err := run(ctx, card, js, serial, t.amount, time.Now())
	if err == nil {
		j.Step, j.Time = outbox.PurseDone, time.Time{}
		if err := d.ob.UpdatePurse(j); err != nil {
			d.log.Error("purse: the journal cannot be updated", "step", j.Step.String(), "err", err)
		}
		p := &record.Purse{Kind: t.kind, Amount: t.amount, BalanceAfter: res.Proof.Balance, PTC: res.Proof.PTC, SAMTxn: res.Proof.SAMTxn,
			TxnTime: res.Time, Proof: res.Proof.MAC, Request: t.request, Merchant: t.merchant, Reference: t.reference}
		return d.sealPurse(ctx, lease, tmpl, j, p), nil
	}
	var pe *kpe.PurseError
	sent := errors.As(err, &pe) && pe.Sent
	switch {
	case !sent:
		// it never left the terminal (the purse unreadable, the SAM or
		// the journal failed): the card cannot have taken it
		reason := purseReason(err)
		d.log.Info("purse: not done", "card_serial", hex.EncodeToString(serial[:]), "kind", t.kind.String(), "reason", reason, "err", err)
		return d.settleNotDone(j, reason), nil
	case cardGone(err) || errors.Is(err, apdu.ErrCardRemoved) || errors.Is(err, apdu.ErrTransport):
		// sent, answer lost: the next insertion reads the card's log
		d.log.Warn("purse: the card left while it was sent the command; the next insertion settles it", "card_serial", hex.EncodeToString(serial[:]),
			"kind", t.kind.String(), "sam_txn", j.SAMTxn, "err", err)
		return purseOutcome{kind: t.kind, status: outbox.PurseRequestPending, request: t.request, amount: t.amount, reason: purseCardRemoved}, nil
	}
	// sent and answered, but not with a proof that verifies: a refusal
	// (its status word may be a GET RESPONSE's after the card executed
	// the command, or the answer to a re-sent command after 6Cxx), a
	// malformed answer, a proof that fails. The card's log tells whether
	// it took the transaction; a refusal names the reason when it did not.
	d.log.Warn("purse: the card's answer is not a verified proof; looking into its log", "card_serial", hex.EncodeToString(serial[:]), "err", err)
	return d.resolvePurseAs(ctx, card, lease, j, tmpl, notTakenReason(err)), nil
}

// notTakenReason is the reason of a transmitted command that the card's
// log shows it did not take: the card's refusal when it answered one,
// not-in-log otherwise.
func notTakenReason(err error) string {
	if r := purseReason(err); r != purseNotSent {
		return r
	}
	return purseNotInLog
}

// purseReason is the reason code of a transaction that never reached the
// card or that the card refused.
func purseReason(err error) string {
	switch {
	case errors.Is(err, kpe.ErrInsufficientFunds):
		return purseInsufficient
	case errors.Is(err, kpe.ErrOverMaxBalance):
		return purseOverMax
	case errors.Is(err, kpe.ErrPurseMAC):
		return purseMACRefused
	case errors.Is(err, kpe.ErrPurseExhausted):
		return purseExhausted
	case errors.Is(err, kpe.ErrNoPurse):
		return purseNoPurse
	case errors.Is(err, kpe.ErrNoPurseKey):
		return purseNoKey
	case errors.Is(err, sam.ErrTopUpRefused) || errors.Is(err, sam.ErrCreditNotAuthorised):
		return purseSAMRefused
	}
	var se *apdu.StatusError
	if errors.As(err, &se) && !cardGone(err) {
		return purseRefused
	}
	return purseNotSent
}

// settleNotDone ends j not done with reason.
func (d *Daemon) settleNotDone(j outbox.PurseJournal, reason string) purseOutcome {
	out := purseOutcome{kind: j.Kind, status: outbox.PurseRequestNotDone, request: j.Request, amount: j.Amount, reason: reason}
	if err := d.ob.SettlePurseNotDone(j.Serial, j.Request, reason); err != nil {
		// the entry stays: the next insertion settles it again
		d.log.Error("purse: the journal entry cannot be settled", "card_serial", hex.EncodeToString(j.Serial[:]), "err", err)
		out.status = outbox.PurseRequestPending
	}
	return out
}

// sealPurse has the SAM sign the purse record built from tmpl and p and
// stores it with AppendPurse (the journal entry goes, the request is
// done, in one transaction). A record that cannot be stored leaves the
// entry: pending, resolved at the card's next insertion.
func (d *Daemon) sealPurse(ctx context.Context, lease *samLease, tmpl record.Record, j outbox.PurseJournal, p *record.Purse) purseOutcome {
	rec := tmpl
	rec.Service, rec.Purse, rec.Renewal, rec.Version = purseService(p.Kind), p, nil, 0
	rec.Time = time.Now()
	var err error
	out := purseOutcome{kind: j.Kind, status: outbox.PurseRequestPending, request: j.Request, amount: j.Amount, reason: purseNotRecorded}
	if rec.ID, err = record.NewID(); err != nil {
		d.log.Error("purse: no record id", "err", err)
		return out
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg().Session.SignTimeout)
	defer cancel()
	var code string
	err = d.commitWith(sctx, lease.signer, &rec, func(r *record.Record) (uint64, error) {
		h, err := r.Hash()
		if err != nil {
			return 0, err
		}
		code = record.CodeOf(h).String()
		return d.ob.AppendPurse(r, code)
	})
	if err != nil {
		d.log.Error("purse: the card took the transaction but its record cannot be stored; the journal keeps it", "card_serial", hex.EncodeToString(j.Serial[:]), "err", err)
		return out
	}
	d.log.Info("purse transaction recorded", "kind", p.Kind.String(), "amount", p.Amount, "resolved", p.Resolved, "record", hex.EncodeToString(rec.ID[:]))
	return purseOutcome{kind: j.Kind, status: outbox.PurseRequestDone, request: j.Request, amount: j.Amount, code: code, recordID: rec.ID, balance: p.BalanceAfter, resolved: p.Resolved}
}

// resolvePurse settles the journal entry j from the card's log: found
// (and its proof verified by the SAM), done with a record marked
// Resolved; not found while the log reaches back to it, not done. An
// entry journaled before PURSE MAC answered never reached the card. Only
// the SAM that authorised it resolves it (this terminal's SAM since).
func (d *Daemon) resolvePurse(ctx context.Context, card apdu.Card, lease *samLease, j outbox.PurseJournal, tmpl record.Record) purseOutcome {
	return d.resolvePurseAs(ctx, card, lease, j, tmpl, purseNotInLog)
}

// resolvePurseAs is resolvePurse with the reason of a transaction the log
// shows the card did not take.
func (d *Daemon) resolvePurseAs(ctx context.Context, card apdu.Card, lease *samLease, j outbox.PurseJournal, tmpl record.Record, notTaken string) purseOutcome {
	pending := func(reason string) purseOutcome {
		return purseOutcome{kind: j.Kind, status: outbox.PurseRequestPending, request: j.Request, amount: j.Amount, reason: reason}
	}
	card8 := hex.EncodeToString(j.Serial[:])
	if j.SAMTxn == 0 {
		d.log.Info("purse: a journaled transaction never reached the card; not done", "card_serial", card8, "request", hex.EncodeToString(j.Request[:]))
		return d.settleNotDone(j, purseNotSent)
	}
	if got := lease.serial(); got != j.SAMSerial {
		d.log.Warn("purse: the journaled transaction was authorised by another SAM; this SAM cannot resolve it",
			"card_serial", card8, "journal_sam", hex.EncodeToString(j.SAMSerial[:]), "sam", hex.EncodeToString(got[:]))
		return pending(purseOtherSAM)
	}
	log, err := kpe.ReadPurseLog(ctx, card, d.o.Cards.Profiles.KPEAID)
	if err != nil {
		d.log.Warn("purse: the card's log cannot be read; the transaction stays pending", "card_serial", card8, "err", err)
		if cardGone(err) {
			return pending(purseCardRemoved)
		}
		return pending(purseUnreadableLog)
	}
	e, found := kpe.FindInLog(log, j.SAMSerial, j.SAMTxn)
	if !found {
		// the log holds the last PurseLogSize transactions: when it is
		// full and its oldest is past the journaled one's, the card may
		// have taken it and pushed it out since
		if len(log) == kpe.PurseLogSize && log[len(log)-1].PTC > j.PTC+1 {
			d.log.Error("purse: the card's log no longer reaches the journaled transaction; the back office reconciles it", "card_serial", card8, "ptc", j.PTC)
			return pending(purseLogOverrun)
		}
		d.log.Info("purse: the card's log does not hold the journaled transaction; not done", "card_serial", card8, "sam_txn", j.SAMTxn, "reason", notTaken)
		return d.settleNotDone(j, notTaken)
	}
	// the entry is the journaled transaction only when it is the one the
	// SAM authorised for the card's PTC then: the next PTC
	if e.Kind != j.Kind || e.Amount != j.Amount || e.Time != j.TxnTime || e.PTC != j.PTC+1 {
		d.log.Error("purse: the card's log entry of the journaled transaction does not match it", "card_serial", card8, "sam_txn", j.SAMTxn)
		return pending(purseProofFailed)
	}
	if err := lease.s.VerifyPurseProof(ctx, e.Proof(j.Serial)); err != nil {
		d.log.Error("purse: the card's proof in its log does not verify", "card_serial", card8, "sam_txn", j.SAMTxn, "err", err)
		if cardGone(err) {
			return pending(purseCardRemoved)
		}
		return pending(purseProofFailed)
	}
	d.log.Info("purse: the card's log holds the journaled transaction; recording it", "card_serial", card8, "sam_txn", j.SAMTxn)
	p := &record.Purse{Kind: j.Kind, Amount: j.Amount, BalanceAfter: e.Balance, PTC: e.PTC, SAMTxn: e.SAMTxn, TxnTime: e.Time,
		Proof: e.MAC, Request: j.Request, Merchant: j.Merchant, Reference: j.Reference, Resolved: true}
	return d.sealPurse(ctx, lease, tmpl, j, p)
}

// withPurseCard runs fn in the card's session with the SAM leased and
// the card's PC/SC transaction begun, as every purse transaction and
// resolution runs.
func (d *Daemon) withPurseCard(ctx context.Context, card apdu.Card, fn func(lease *samLease) error) error {
	lctx, cancel := context.WithTimeout(ctx, d.cfg().Session.SignTimeout)
	lease, err := d.sam.lease(lctx)
	cancel()
	if err != nil {
		return err
	}
	defer lease.release()
	if err := card.BeginTransaction(ctx); err != nil {
		return err
	}
	defer card.EndTransaction()
	return fn(lease)
}

// settleEarlier resolves the card's purse journal entry, if it has one,
// inside withPurseCard (resolvePurse with ctx; tmpl is the
// authentication's record) and tells the event stream. It returns the
// entry and its outcome, both nil when the card had none.
func (d *Daemon) settleEarlier(ctx context.Context, r *reader, card apdu.Card, lease *samLease, serial [8]byte, tmpl record.Record) (*outbox.PurseJournal, *purseOutcome, error) {
	j, err := d.ob.PurseJournalOf(serial)
	if err != nil || j == nil {
		return nil, nil, err
	}
	out := d.resolvePurse(ctx, card, lease, *j, tmpl)
	d.publishPurse(r, out)
	return j, &out, nil
}

// settleJournaled resolves the card's purse journal entry, if it has one,
// in an authentication of any flow (the card read and its holder's
// fingerprint checked as the flow asks; tmpl is its record). It runs in
// the card's session; only a card with an entry costs the SAM's lease and
// a card transaction. It returns the outcome, nil when the card had no
// entry.
func (d *Daemon) settleJournaled(ctx context.Context, r *reader, card apdu.Card, serial [8]byte, tmpl record.Record) (*purseOutcome, error) {
	if j, err := d.ob.PurseJournalOf(serial); err != nil || j == nil {
		return nil, err
	}
	var out *purseOutcome
	err := d.withPurseCard(ctx, card, func(lease *samLease) error {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg().Session.ReadTimeout)
		defer cancel()
		var err error
		_, out, err = d.settleEarlier(rctx, r, card, lease, serial, tmpl)
		return err
	})
	return out, err
}

// publishPurse tells the event stream of a purse outcome: a payment's
// (debit) as a payment event with its message code, a top-up's (credit)
// as a topup event, as the kiosk's own (publishTopUp).
func (d *Daemon) publishPurse(r *reader, out purseOutcome) {
	if out.kind == record.PurseCredit {
		d.publishTopUp(r, out)
		return
	}
	ev := api.Event{Type: api.EventPayment, Reader: r.name, State: payStatus(out.status), Code: out.code, MessageCode: payMessageCode(out)}
	d.publish(ev)
}
