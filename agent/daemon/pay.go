package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
)

// Payments at the counter (POST /v1/pay, docs/ewallet.md part 2): the
// card read and authenticated as for /v1/auth, the holder's fingerprint
// matched on the card above ewallet.fingerprint_above, an earlier torn
// transaction of the card settled first, the balance read, then the purse
// engine's DEBIT (purse.go). Every payment carries the caller's
// idempotency key; its request id is answered from the request book for
// as long as the book keeps it, so a retry never debits twice.

// Error codes of payments (docs/local-api.md, the catalogue's clerk.<code>
// and holder.<code>).
const (
	CodeEWalletDisabled   = "ewallet-disabled"   // ewallet.enabled is off
	CodeAmountInvalid     = "amount-invalid"     // below 1 rupiah
	CodeAmountTooLarge    = "amount-too-large"   // above ewallet.max_payment
	CodeInsufficientFunds = "insufficient-funds" // the card's balance is below the amount: nothing was sent
	CodeNoPurse           = "no-purse"           // the card has no purse (a KTP-el, a KPE without one)
	CodePursePending      = "purse-pending"      // the card has an earlier transaction this terminal cannot settle
	// CodeEarlierSettled: settling the card's earlier torn payment found
	// it done; this request debited nothing (a second payment of the same
	// purchase is what it would likely be).
	CodeEarlierSettled = "earlier-payment-settled"
	// CodeKeyReused: the idempotency key is known with another amount or
	// merchant reference; nothing was debited.
	CodeKeyReused = "idempotency-key-reused"
)

// payPrefix is the domain of a payment's request id.
const payPrefix = "KPE-PAY\x00"

// payRequestID is the request id of a payment: the first 16 bytes of
// SHA-256("KPE-PAY\x00" ‖ terminal id ‖ "\x00" ‖ idempotency key).
func payRequestID(terminal, key string) [16]byte {
	h := sha256.Sum256([]byte(payPrefix + terminal + "\x00" + key))
	return [16]byte(h[:16])
}

// validKey: 1 to 64 printable ASCII characters (space to tilde).
func validKey(k string) bool {
	if len(k) < 1 || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// validReference: at most 64 bytes of UTF-8 without control characters
// (the record's purse reference).
func validReference(s string) bool {
	if len(s) > 64 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// payStatus is the API's word for a request status.
func payStatus(s outbox.PurseStatus) string {
	switch s {
	case outbox.PurseRequestDone:
		return api.PayDone
	case outbox.PurseRequestNotDone:
		return api.PayNotDone
	}
	return api.PayPending
}

// payMessageCode is the event's message code of an outcome.
func payMessageCode(o purseOutcome) string {
	switch o.status {
	case outbox.PurseRequestDone:
		return OutcomePaymentDone
	case outbox.PurseRequestNotDone:
		return OutcomePaymentNotDone
	}
	return OutcomePaymentPending
}

// Outcomes of a payment (events' message_code; clerk.<code>, holder.<code>).
const (
	OutcomePaymentDone    = "payment-done"
	OutcomePaymentNotDone = "payment-not-done"
	OutcomePaymentPending = "payment-pending"
)

// payResult words o for the API.
func (d *Daemon) payResult(key string, o purseOutcome, loc api.Locale) api.PayResult {
	loc = d.locale(loc)
	res := api.PayResult{Status: payStatus(o.status), IdempotencyKey: key, Amount: int64(o.amount), Reason: o.reason}
	if o.status == outbox.PurseRequestDone {
		b := int64(o.balance)
		res.Code, res.RecordID, res.Balance, res.Reason = o.code, hex.EncodeToString(o.recordID[:]), &b, ""
	}
	switch {
	case res.Reason != "":
		res.Message = loc.Lang.T("loket.pay.reason." + res.Reason)
	default:
		res.Message = d.texts().Message(payMessageCode(o), loc)
	}
	return res
}

// sameRequest checks that a payment request sent under a known key is the
// one the book holds: a debit of the same amount and merchant reference
// (a book entry of encoding version 1 has no reference digest: its
// amount alone is checked).
func sameRequest(b *outbox.PurseOutcome, req api.PayRequest) error {
	switch {
	case b.Kind != record.PurseDebit:
		return errors.New("the key names a top-up")
	case int64(b.Amount) != req.Amount:
		return fmt.Errorf("the key was used for %d rupiah, not %d", b.Amount, req.Amount)
	case b.RefHash != [32]byte{} && b.RefHash != outbox.PurseRefHash(req.MerchantRef):
		return errors.New("the key was used with another merchant reference")
	}
	return nil
}

// outcomeOf is the request book's answer as an outcome. A pending
// request has no reason in the book: busy says a workflow holds the
// card's reader now, so it is in progress (in-progress); otherwise its
// card left before it was settled (card-removed).
func outcomeOf(b *outbox.PurseOutcome, busy bool) purseOutcome {
	o := purseOutcome{kind: b.Kind, status: b.Status, request: b.Request, amount: b.Amount, reason: b.Reason}
	if b.Status == outbox.PurseRequestDone {
		o.code, o.recordID, o.balance = b.Code, b.RecordID, b.Balance
	}
	if b.Status == outbox.PurseRequestPending && o.reason == "" {
		o.reason = purseCardRemoved
		if busy {
			o.reason = purseInProgress
		}
	}
	return o
}

// Pay takes a payment from the card in the named reader (API). A key the
// request book knows is answered from it (a pending one is first resolved
// when its card is in the reader); a new one reads and authenticates the
// card and debits it.
func (d *Daemon) Pay(ctx context.Context, req api.PayRequest, loc api.Locale) (api.PayResult, error) {
	c := d.cfg()
	switch {
	case d.closing.Load():
		return api.PayResult{}, fail(CodeShuttingDown, nil)
	case !c.EWalletOn():
		return api.PayResult{}, fail(CodeEWalletDisabled, nil)
	case !operatorRE.MatchString(req.Operator):
		return api.PayResult{}, fail(CodeBadRequest, errors.New("operator: want 1 to 64 of A-Z a-z 0-9 . _ @ -"))
	case !validKey(req.IdempotencyKey):
		return api.PayResult{}, fail(CodeBadRequest, errors.New("idempotency_key: want 1 to 64 printable ASCII characters"))
	case req.Amount < 1:
		return api.PayResult{}, fail(CodeAmountInvalid, fmt.Errorf("amount %d: want at least 1 rupiah", req.Amount))
	case req.Amount > int64(c.EWallet.MaxPayment):
		return api.PayResult{}, fail(CodeAmountTooLarge, fmt.Errorf("amount %d: this terminal takes at most %d", req.Amount, c.EWallet.MaxPayment))
	case !validReference(req.MerchantRef):
		return api.PayResult{}, fail(CodeBadRequest, errors.New("merchant_ref: at most 64 bytes without control characters"))
	case req.WaitSeconds < 0 || time.Duration(req.WaitSeconds)*time.Second > c.Session.MaxWait:
		return api.PayResult{}, fail(CodeBadRequest, fmt.Errorf("wait_seconds: want 0 to %.0f", c.Session.MaxWait.Seconds()))
	}
	id := payRequestID(c.Terminal.ID, req.IdempotencyKey)
	known, err := d.ob.PurseRequest(id)
	if err != nil {
		return api.PayResult{}, fail(CodeInternal, err)
	}
	if known != nil {
		// the same key again: the book's answer, never a new debit; with
		// other details it is another payment under a reused key
		if err := sameRequest(known, req); err != nil {
			return api.PayResult{}, fail(CodeKeyReused, err)
		}
		return d.PayStatus(ctx, req.Reader, req.IdempotencyKey, loc)
	}
	r, err := d.pickReader(req.Reader)
	if err != nil {
		return api.PayResult{}, err
	}
	d.mu.Lock()
	if d.closing.Load() {
		d.mu.Unlock()
		return api.PayResult{}, fail(CodeShuttingDown, nil)
	}
	d.flows.Add(1)
	d.mu.Unlock()
	defer d.flows.Done()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if err := r.begin(cancel, api.Caller(ctx)); err != nil {
		return api.PayResult{}, err
	}
	defer r.end()
	s, _, _, err := r.session(ctx, time.Duration(req.WaitSeconds)*time.Second, nil)
	if err != nil {
		return api.PayResult{}, err
	}
	t := purseTxn{kind: record.PurseDebit, request: id, amount: uint32(req.Amount), merchant: c.EWallet.MerchantID, reference: req.MerchantRef}
	out, err := d.payCard(ctx, r, s, req, t)
	if err != nil {
		code := d.countFailure(err)
		d.log.Info("payment failed", "reader", r.name, "code", code, "err", err)
		r.setState(api.StateFailed, "", err)
		return api.PayResult{}, err
	}
	d.publishPurse(r, out)
	return d.payResult(req.IdempotencyKey, out, loc), nil
}

// payCard runs a payment's card steps on s; the card's removal before
// the DEBIT is card-removed, after it the outcome (pending).
func (d *Daemon) payCard(ctx context.Context, r *reader, s *cards.Session, req api.PayRequest, t purseTxn) (purseOutcome, error) {
	c := d.cfg()
	actx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if !r.holdCard(s, stop) {
		return purseOutcome{}, fail(CodeCardRemoved, apdu.ErrCardRemoved)
	}
	defer r.releaseCard()
	var out purseOutcome
	var debiting bool
	err := s.DoWait(actx, func(ctx context.Context, card apdu.Card) error {
		rctx, cancel := context.WithTimeout(ctx, c.Session.ReadTimeout)
		res, err := d.readLocked(rctx, r, card, nil, nil, false)
		cancel()
		if err != nil {
			return err
		}
		defer wipe(res)
		if res.KPE == nil {
			return fail(CodeNoPurse, fmt.Errorf("a %s carries no purse: payments are taken from a KPE", res.Kind))
		}
		serial := res.KPE.Info.Serial
		tmpl, err := d.newRecord(res, api.AuthRequest{Operator: req.Operator, Service: record.ServicePayment}, nil)
		if err != nil {
			return err
		}
		// the fingerprint first: selecting the purse ends the card's
		// secure channel that match-on-card runs in
		if int64(t.amount) > int64(c.EWallet.FingerprintAbove) {
			r.setState(api.StateFingerprint, "", nil)
			if err := d.verifyFinger(ctx, r, res, req.ConfirmLastTry || c.Fingerprint.ConfirmLastTry, false); err != nil {
				return err
			}
			r.setState(api.StateVerified, "", nil)
		} else {
			tmpl.Fingerprint = record.Check{Outcome: record.Skipped, Reason: "below-fingerprint-threshold"}
		}
		return d.withPurseCard(ctx, card, func(lease *samLease) error {
			// an earlier transaction of this card first
			if j, prev, err := d.settleEarlier(ctx, r, card, lease, serial, *tmpl); err != nil {
				return fail(CodeInternal, err)
			} else if prev != nil {
				if prev.status == outbox.PurseRequestPending {
					return fail(CodePursePending, fmt.Errorf("an earlier purse transaction of this card is unsettled (%s)", prev.reason))
				}
				if prev.status == outbox.PurseRequestDone && j.Kind == record.PurseDebit {
					// the earlier payment went through: most likely this is
					// the same purchase under a new key; debit nothing now
					return fail(CodeEarlierSettled, fmt.Errorf("an earlier payment of this card (%d rupiah, receipt %s) was settled done; nothing was debited now", prev.amount, prev.code))
				}
			}
			st, err := kpe.ReadPurse(ctx, card, d.o.Cards.Profiles.KPEAID)
			if errors.Is(err, kpe.ErrNoPurse) {
				return fail(CodeNoPurse, err)
			}
			if err != nil {
				return err
			}
			if st.Balance < t.amount {
				return fail(CodeInsufficientFunds, fmt.Errorf("balance %d, amount %d", st.Balance, t.amount))
			}
			if err := ctx.Err(); err != nil {
				return err // cancelled or pulled before anything was journaled
			}
			// from here the transaction runs to its end: a pulled card is its
			// outcome (pending), not the call's error
			debiting = true
			d.publish(api.Event{Type: api.EventPayment, Reader: r.name, State: api.PayPaying})
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.Session.ReadTimeout+c.Session.SignTimeout)
			defer cancel()
			out, err = d.runPurse(pctx, card, lease, serial, st, t, *tmpl)
			if errors.Is(err, outbox.ErrPurseBusy) {
				return fail(CodePursePending, err)
			}
			return err
		})
	})
	if err != nil && !debiting && ctx.Err() == nil && errors.Is(context.Cause(actx), apdu.ErrCardRemoved) {
		err = fail(CodeCardRemoved, err)
	}
	return out, err
}

// PayStatus is the request book's answer for key (API); a pending payment
// is resolved first when its card is in the reader (named, or the only one
// holding a card) and no workflow runs there.
func (d *Daemon) PayStatus(ctx context.Context, reader, key string, loc api.Locale) (api.PayResult, error) {
	c := d.cfg()
	if !validKey(key) {
		return api.PayResult{}, fail(CodeBadRequest, errors.New("idempotency_key: want 1 to 64 printable ASCII characters"))
	}
	id := payRequestID(c.Terminal.ID, key)
	b, err := d.ob.PurseRequest(id)
	if err != nil {
		return api.PayResult{}, fail(CodeInternal, err)
	}
	if b == nil {
		return api.PayResult{}, fail(CodeNotAvailable, errors.New("no payment with this idempotency key on this terminal"))
	}
	busy := false
	if b.Status == outbox.PurseRequestPending {
		o, ok, inUse := d.resolveIn(ctx, reader, b.Serial)
		if ok && o.request == id {
			return d.payResult(key, o, loc), nil
		}
		busy = inUse
		if b, err = d.ob.PurseRequest(id); err != nil || b == nil {
			return api.PayResult{}, fail(CodeInternal, err)
		}
	}
	return d.payResult(key, outcomeOf(b, busy), loc), nil
}

// resolveIn settles the journal entry of the card serial when that card
// is in the reader: it reads and authenticates the card (no fingerprint:
// settling takes nothing from the card) and resolves the entry. ok says
// it got an outcome; busy that a workflow held the reader (the card's
// transaction may be running there now).
func (d *Daemon) resolveIn(ctx context.Context, name string, serial [8]byte) (purseOutcome, bool, bool) {
	if d.closing.Load() {
		return purseOutcome{}, false, false
	}
	r, err := d.pickReader(name)
	if err != nil {
		return purseOutcome{}, false, false
	}
	r.mu.Lock()
	present := r.present
	r.mu.Unlock()
	if !present {
		return purseOutcome{}, false, false
	}
	d.mu.Lock()
	if d.closing.Load() {
		d.mu.Unlock()
		return purseOutcome{}, false, false
	}
	d.flows.Add(1)
	d.mu.Unlock()
	defer d.flows.Done()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if err := r.begin(cancel, api.Caller(ctx)); err != nil {
		var f *Failure
		return purseOutcome{}, false, errors.As(err, &f) && f.Code == CodeReaderBusy
	}
	defer r.end()
	s, _, _, err := r.session(ctx, 0, nil)
	if err != nil {
		return purseOutcome{}, false, false
	}
	c := d.cfg()
	var out *purseOutcome
	err = s.DoWait(ctx, func(ctx context.Context, card apdu.Card) error {
		rctx, cancel := context.WithTimeout(ctx, c.Session.ReadTimeout)
		res, err := d.readLocked(rctx, r, card, nil, nil, false)
		cancel()
		if err != nil {
			return err
		}
		defer wipe(res)
		if res.KPE == nil || res.KPE.Info.Serial != serial {
			return nil // another card
		}
		tmpl, err := d.newRecord(res, api.AuthRequest{Operator: "agent", Service: record.ServicePayment}, nil)
		if err != nil {
			return err
		}
		tmpl.Fingerprint = record.Check{Outcome: record.Skipped, Reason: "settlement"}
		out, err = d.settleJournaled(ctx, r, card, serial, *tmpl)
		return err
	})
	if err != nil {
		d.log.Info("purse: the card in the reader could not be settled", "reader", r.name, "err", err)
	}
	if out == nil {
		return purseOutcome{}, false, false
	}
	return *out, true, false
}

var _ api.PayBackend = (*Daemon)(nil)
