package daemon

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
	"kpe-agent/biometric"
	"kpe-agent/biometric/sensor"
	"kpe-agent/internal/i18n"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
)

// readCard recognises and reads the card in s with the SAM, inside one
// PC/SC transaction. It reports identified and authenticated on the way.
// A card that is not genuine, or whose data is not, is an error.
func (d *Daemon) readCard(ctx context.Context, r *reader, s *cards.Session) (*cards.Result, error) {
	var res *cards.Result
	err := s.Do(ctx, func(ctx context.Context, card apdu.Card) error {
		var err error
		res, err = d.readLocked(ctx, r, card, nil, nil, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// readLocked is readCard inside the card's session goroutine; lease is
// the SAM when the caller holds it already. *began, when not nil, is set
// once the card's PC/SC transaction has begun. photo reads a KPE's photo
// too (the kiosk's self-service view shows it).
func (d *Daemon) readLocked(ctx context.Context, r *reader, card apdu.Card, lease *samLease, began *bool, photo bool) (*cards.Result, error) {
	if err := card.BeginTransaction(ctx); err != nil {
		return nil, err
	}
	defer card.EndTransaction()
	if began != nil {
		*began = true
	}
	kind, err := cards.Recognize(ctx, card, cards.DefaultProfiles)
	if err != nil {
		return nil, err
	}
	r.setState(api.StateIdentified, kind, nil)
	switch kind {
	case cards.KindUnknown:
		return nil, fail(CodeUnknownCard, nil)
	case cards.KindSAM:
		return nil, fail(CodeUnknownCard, errors.New("a SAM in a card reader"))
	}
	if lease == nil {
		if lease, err = d.sam.lease(ctx); err != nil {
			return nil, err
		}
		defer lease.release()
	}
	opts := d.o.Cards
	opts.Photo = photo && kind == cards.KindKPE
	res, err := cards.Read(ctx, card, lease.s, opts)
	if errors.Is(err, sam.ErrNotActivated) && kind == cards.KindKTPel && len(d.o.KTPSecrets) == 2 {
		d.log.Info("activating the SAM's KTP-el function")
		if err = lease.s.ActivateKTP(ctx, d.o.KTPSecrets[0], d.o.KTPSecrets[1]); err == nil {
			res, err = cards.Read(ctx, card, lease.s, opts)
		}
	}
	if err != nil {
		return nil, err
	}
	switch {
	case !res.Checks.CardAuthentic.OK:
		wipe(res)
		return nil, fail(CodeCardNotGenuine, fmt.Errorf("%s: %s", res.Checks.CardAuthentic.Code, res.Checks.CardAuthentic.Reason))
	case !res.Checks.DataAuthentic.OK:
		wipe(res)
		return nil, fail(CodeDataNotGenuine, fmt.Errorf("%s: %s", res.Checks.DataAuthentic.Code, res.Checks.DataAuthentic.Reason))
	}
	r.setState(api.StateAuthenticated, res.Kind, nil)
	return res, nil
}

// wipe zeroes what a read holds that is kept nowhere: KTP-el data, and a
// KPE's photo that no self-service view took.
func wipe(res *cards.Result) {
	if res != nil && res.KTPel != nil {
		res.KTPel.Wipe()
	}
	if res != nil && res.KPE != nil && res.KPE.Photo != nil {
		// (a result kept for the card view has none: not written here)
		clear(res.KPE.Photo)
		res.KPE.Photo = nil
	}
}

var operatorRE = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// Authenticate runs the workflow on a card reader (API): it waits for a
// card if asked, reads and authenticates the card, verifies the holder's
// fingerprint, has the SAM sign the record, commits it to the outbox and
// returns the code. Every step is an event; every failure a *Failure.
func (d *Daemon) Authenticate(ctx context.Context, req api.AuthRequest) (api.AuthResult, error) {
	c := d.cfg()
	switch {
	case d.closing.Load():
		return api.AuthResult{}, fail(CodeShuttingDown, nil)
	case !slices.Contains(c.Services, req.Service):
		return api.AuthResult{}, fail(CodeUnknownService, fmt.Errorf("service %q is not one of %v", req.Service, c.Services))
	case !operatorRE.MatchString(req.Operator):
		return api.AuthResult{}, fail(CodeBadRequest, errors.New("operator: want 1 to 64 of A-Z a-z 0-9 . _ @ -"))
	case req.WaitSeconds < 0 || time.Duration(req.WaitSeconds)*time.Second > c.Session.MaxWait:
		return api.AuthResult{}, fail(CodeBadRequest, fmt.Errorf("wait_seconds: want 0 to %.0f", c.Session.MaxWait.Seconds()))
	}
	r, err := d.pickReader(req.Reader)
	if err != nil {
		return api.AuthResult{}, err
	}
	// counted under d.mu, so that shutdown, which sets closing under it,
	// waits for every workflow that got past this point
	d.mu.Lock()
	if d.closing.Load() {
		d.mu.Unlock()
		return api.AuthResult{}, fail(CodeShuttingDown, nil)
	}
	d.flows.Add(1)
	d.mu.Unlock()
	defer d.flows.Done()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if err := r.begin(cancel, api.Caller(ctx)); err != nil {
		return api.AuthResult{}, err
	}
	defer r.end()
	res, signing, err := d.authenticate(ctx, r, req)
	if err != nil && !signing && ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) {
		// cut short by the operator's cancel or the caller gone (a pulled
		// card is told apart in authenticate)
		err = fail(CodeCancelled, err)
	}
	if err != nil {
		code := d.countFailure(err)
		d.log.Info("authentication failed", "reader", r.name, "service", req.Service, "code", code, "err", err)
		r.setState(api.StateFailed, "", err)
		return api.AuthResult{}, err
	}
	d.m.sessions.WithLabelValues("recorded").Inc()
	return res, nil
}

func (d *Daemon) pickReader(name string) (*reader, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if name != "" {
		r, ok := d.readers[name]
		if !ok {
			return nil, fail(CodeNoReader, fmt.Errorf("no reader %q", name))
		}
		return r, nil
	}
	candidates, withCard := d.cardReadersLocked()
	switch {
	case len(withCard) == 1:
		return withCard[0], nil
	case len(candidates) == 1:
		return candidates[0], nil
	case len(candidates) == 0:
		return nil, fail(CodeNoReader, nil)
	}
	return nil, fail(CodeBadRequest, errors.New("several card readers: name one in \"reader\""))
}

// cardReadersLocked returns the readers for cards (not the SAM's), and
// those of them holding a card; d.mu is held.
func (d *Daemon) cardReadersLocked() (all, withCard []*reader) {
	samReader := d.sam.readerName()
	for _, r := range d.readers {
		r.mu.Lock()
		role, present := r.role, r.present
		r.mu.Unlock()
		if role == roleSAM || r.name == samReader {
			continue
		}
		all = append(all, r)
		if present {
			withCard = append(withCard, r)
		}
	}
	return all, withCard
}

// authenticate runs the workflow on r; signing says it got past its
// point of no return (its error, if any, is then not to be told as a
// cancel or a pulled card).
func (d *Daemon) authenticate(ctx context.Context, r *reader, req api.AuthRequest) (res api.AuthResult, signing bool, err error) {
	wait := time.Duration(req.WaitSeconds) * time.Second
	deadline := time.Now().Add(wait)
	var stale *cards.Session
	var staleErr error
	for {
		s, detected, waited, err := r.session(ctx, max(time.Until(deadline), 0), stale)
		if errors.Is(err, errStillThere) {
			return api.AuthResult{}, false, staleErr // no removal came: the first failure stands
		}
		if err != nil {
			return api.AuthResult{}, false, err
		}
		out, at, err := d.tryCard(ctx, r, s, req)
		if err != nil && !at.used && !waited && wait > 0 && stale == nil && ctx.Err() == nil && cardGone(err) {
			// The card the reader showed when the workflow began left
			// before the workflow could begin with it (the last holder's
			// card pulled as the next request came in): wait for the
			// next card rather than fail. Once only.
			d.log.Info("the card left before the workflow could use it; waiting for the next card", "reader", r.name, "err", err)
			stale, staleErr = s, err
			continue
		}
		if err != nil {
			return api.AuthResult{}, at.signing, err
		}
		if waited {
			took := time.Since(detected)
			out.TapToCodeMS = float64(took.Microseconds()) / 1000
			d.m.tapToCode.Observe(took.Seconds())
		}
		d.recorded(r, req, &out)
		return out, true, nil
	}
}

// tryCard runs the workflow's card steps on s, ended early (card-removed)
// when that card is pulled, and says how far they got.
func (d *Daemon) tryCard(ctx context.Context, r *reader, s *cards.Session, req api.AuthRequest) (api.AuthResult, attempt, error) {
	// the card's removal ends this attempt (cause apdu.ErrCardRemoved);
	// the operator's cancel and shutdown end the whole workflow
	actx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if !r.holdCard(s, stop) {
		return api.AuthResult{}, attempt{}, fail(CodeCardRemoved, apdu.ErrCardRemoved)
	}
	var at attempt
	out, err := d.useCard(actx, r, s, req, &at)
	r.releaseCard()
	if err != nil && !at.signing && ctx.Err() == nil && errors.Is(context.Cause(actx), apdu.ErrCardRemoved) {
		err = fail(CodeCardRemoved, err)
	}
	return out, at, err
}

// recorded tells the reader, the event stream and the log of a workflow
// that recorded out.
func (d *Daemon) recorded(r *reader, req api.AuthRequest, out *api.AuthResult) {
	out.Message = d.texts().Message(OutcomeRecorded, d.locale(api.Locale{Lang: i18n.Lang(req.Lang), Audience: i18n.Audience(req.Audience)}))
	r.mu.Lock()
	r.state, r.err = api.StateRecorded, nil
	r.mu.Unlock()
	d.publish(api.Event{Type: api.EventSession, Reader: r.name, State: api.StateRecorded, CardKind: out.CardKind, Code: out.Code, MessageCode: OutcomeRecorded})
	d.log.Info("authentication recorded", "reader", r.name, "service", out.Service, "counter", out.Counter, "record", out.RecordID)
}

// cardGone says err is the card (not the service, not the reader, not
// a reset by another program: that card is still there) gone.
func cardGone(err error) bool {
	if errors.Is(err, apdu.ErrNoService) || errors.Is(err, apdu.ErrNoReader) || errors.Is(err, apdu.ErrCardReset) {
		return false
	}
	var f *Failure
	if errors.As(err, &f) && f.Code == CodeCardRemoved {
		return true
	}
	return errors.Is(err, apdu.ErrCardRemoved) || errors.Is(err, apdu.ErrNoCard) || errors.Is(err, cards.ErrSessionEnded)
}

// attempt is how far one try of a workflow on a card got.
type attempt struct {
	used    bool // the workflow had the card to itself (its PC/SC transaction began)
	signing bool // past the point of no return: the SAM was asked to sign
}

// useCard runs the workflow's card steps on s and records in at how far
// they got.
func (d *Daemon) useCard(ctx context.Context, r *reader, s *cards.Session, req api.AuthRequest, at *attempt) (api.AuthResult, error) {
	c := d.cfg()
	var out api.AuthResult
	kiosk := req.Service == api.ServiceKiosk
	credential := api.KioskCredential(ctx)
	// DoWait: once the record is committed the caller must hear so, even
	// when the card was pulled or the operator cancelled meanwhile.
	err := s.DoWait(ctx, func(ctx context.Context, card apdu.Card) error {
		// the SAM is leased for the read and again for the signature, not
		// while the holder finds the sensor: other readers use it meanwhile
		rctx, cancel := context.WithTimeout(ctx, c.Session.ReadTimeout)
		res, err := d.readLocked(rctx, r, card, nil, &at.used, kiosk)
		cancel()
		if err != nil {
			return err
		}
		defer wipe(res)
		// A KTP-el record's pseudonyms, before the holder is asked for a
		// finger: a SAM without the pseudonym key ends the workflow here.
		var ps *pseudonyms
		if res.KTPel != nil {
			pctx, cancel := context.WithTimeout(ctx, c.Session.ReadTimeout)
			ps, err = d.ktpPseudonyms(pctx, res.KTPel.UID, res.KTPel.Biodata.NIK)
			cancel()
			if err != nil {
				return err
			}
		}
		r.setState(api.StateFingerprint, "", nil)
		if err := d.verifyFinger(ctx, r, res, req.ConfirmLastTry || c.Fingerprint.ConfirmLastTry, req.Prompts); err != nil {
			return err
		}
		r.setState(api.StateVerified, "", nil)
		rec, err := d.newRecord(res, req, ps)
		if err != nil {
			return err
		}
		// a purse transaction of this card left unsettled (its card pulled
		// at this terminal) is settled from the card's log first
		if res.KPE != nil {
			if _, err := d.settleJournaled(ctx, r, card, res.KPE.Info.Serial, *rec); err != nil {
				d.log.Warn("purse: the card's journaled transaction could not be settled now", "reader", r.name, "err", err)
			}
		}
		// the card's purse and log for the e-wallet view (after the match:
		// selecting the purse ends the secure channel)
		pst, plog, hasPurse := d.purseAfterAuth(ctx, card, res)
		// The wait for the SAM (another reader may be reading with it) is
		// still before the point of no return: a cancel or a pulled card
		// ends it, and nothing is signed.
		lctx, lcancel := context.WithTimeout(ctx, c.Session.SignTimeout)
		lease, err := d.sam.lease(lctx)
		lcancel()
		if err != nil {
			return err
		}
		defer lease.release()
		if err := ctx.Err(); err != nil {
			return err // cancelled before the point of no return: nothing signed
		}
		// From here the signature and the commit run to their end, bounded
		// by the signing timeout only: a record the SAM signed is kept, and
		// whatever fails now is told as it is (not as the card pulled or
		// the operator's cancel meanwhile).
		at.signing = true
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.Session.SignTimeout)
		defer cancel()
		tmpl := *rec // before sealing: a renewal's record starts from it
		if err := d.commit(sctx, lease, rec); err != nil {
			return err
		}
		if d.renewable(res) {
			d.keepRenewal(r, s, api.Caller(ctx), kiosk, res, &tmpl)
		}
		if hasPurse {
			d.keepPurse(r, s, api.Caller(ctx), kiosk, res, &tmpl, pst, plog)
		}
		code, err := rec.Hash()
		if err != nil {
			return err
		}
		if kiosk {
			r.keepSelfService(s, credential, res) // takes the photo: r.result keeps none
		}
		if res.KPE != nil {
			r.mu.Lock()
			r.result = res // for the card view and the ASKES form while the card stays in
			r.mu.Unlock()
		}
		out = api.AuthResult{Code: record.CodeOf(code).String(), RecordID: hex.EncodeToString(rec.ID[:]), Service: rec.Service,
			Reader: r.name, CardKind: string(res.Kind), Counter: rec.Counter, Time: rec.Time}
		return nil
	})
	return out, err
}

// verifyFinger captures the holder's finger until the fingerprint timeout
// and verifies it: on the card for a KPE (match-on-card), on the host for
// a KTP-el (its templates never leave memory). With one try left on the
// card and confirm false, a workflow with prompts asks whether to use it
// (and captures again, once more within the timeout, when told to
// continue); one without fails with finger-last-try.
func (d *Daemon) verifyFinger(ctx context.Context, r *reader, res *cards.Result, confirm, prompts bool) error {
	sn, err := d.sensorFor(r.name)
	if err != nil {
		return err
	}
	for {
		err := d.captureAndMatch(ctx, sn, res, confirm)
		var f *Failure
		if !prompts || confirm || !errors.As(err, &f) || f.Code != CodeFingerLastTry {
			return err
		}
		if err := d.confirmLastTry(ctx, r); err != nil {
			return err
		}
		confirm = true
		r.fingerprintAgain(1)
	}
}

// captureAndMatch captures the finger until the fingerprint timeout and
// matches it (matchFinger).
func (d *Daemon) captureAndMatch(ctx context.Context, sn sensor.Sensor, res *cards.Result, confirm bool) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg().Fingerprint.Timeout)
	defer cancel()
	for {
		capture, err := sn.Capture(ctx)
		if errors.Is(err, sensor.ErrNoFinger) || errors.Is(err, biometric.ErrPlaceAgain) {
			// nothing on the sensor yet, or a poor capture: try again
			select {
			case <-ctx.Done():
				return fail(CodeFingerAgain, err)
			case <-time.After(200 * time.Millisecond):
				continue
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return fail(CodeFingerAgain, err)
			}
			return err
		}
		err = d.matchFinger(ctx, res, capture, confirm)
		capture.Wipe()
		if errors.Is(err, biometric.ErrPlaceAgain) {
			continue
		}
		return err
	}
}

func (d *Daemon) matchFinger(ctx context.Context, res *cards.Result, capture *biometric.Record, confirm bool) error {
	if res.KTPel != nil {
		out, err := cards.MatchOffCard(res.KTPel, capture)
		if err != nil {
			return err
		}
		if !out.Match {
			return fail(CodeFingerNoMatch, nil)
		}
		return nil
	}
	out, err := cards.VerifyOnCard(ctx, res.Channel, res.KPE.BIT, capture, cards.FingerOptions{ConfirmLastTry: confirm})
	if err != nil {
		if errors.Is(err, cards.ErrLastTry) {
			return &Failure{Code: CodeFingerLastTry, TriesLeft: 1, Err: err}
		}
		return err
	}
	if !out.Match {
		return &Failure{Code: CodeFingerNoMatch, TriesLeft: max(out.TriesLeft, 0)}
	}
	return nil
}

// PseudonymFileWarning is what the agent logs at start when it computes
// the KTP-el pseudonyms itself, with a key file (ktpel.pseudonym: file).
const PseudonymFileWarning = "KTP-el pseudonyms are computed on this PC with a key file (ktpel.pseudonym: file), not inside the SAM: whoever reads the key file can test NIKs against the records' subjects; use ktpel.pseudonym: sam"

// pseudonyms are a KTP-el record's subject (the NIK's pseudonym, hex)
// and card serial (the first 16 bytes of the chip UID's pseudonym).
type pseudonyms struct {
	subject string
	serial  []byte
}

// ktpPseudonyms computes a KTP-el record's pseudonyms: inside the SAM
// (PSEUDONYM, with the institution's key that never leaves it), or with
// the fallback key file when one is configured (NIKKey). A SAM without
// the key is ktpel-not-configured.
func (d *Daemon) ktpPseudonyms(ctx context.Context, uid []byte, nik string) (*pseudonyms, error) {
	compute := func(dom sam.Domain, v []byte) ([sam.PseudonymLen]byte, error) {
		return sam.PseudonymOf(d.o.NIKKey, dom, v), nil
	}
	if d.o.NIKKey == nil {
		lease, err := d.sam.lease(ctx)
		if err != nil {
			return nil, err
		}
		defer lease.release()
		compute = func(dom sam.Domain, v []byte) ([sam.PseudonymLen]byte, error) { return lease.s.Pseudonym(ctx, dom, v) }
	}
	nb := []byte(nik)
	defer clear(nb)
	n, err := compute(sam.DomainNIK, nb)
	if err == nil {
		var u [sam.PseudonymLen]byte
		if u, err = compute(sam.DomainChipUID, uid); err == nil {
			return &pseudonyms{subject: hex.EncodeToString(n[:]), serial: u[:16]}, nil
		}
	}
	if errors.Is(err, sam.ErrNoPseudonym) {
		return nil, fail(CodeKTPelNotSetUp, err)
	}
	return nil, err
}

// newRecord builds the authentication record of a verified card: the
// minimum the back office needs, never a template, photo or KTP-el
// population data (a KTP-el's NIK and chip UID only as their pseudonyms,
// ps).
func (d *Daemon) newRecord(res *cards.Result, req api.AuthRequest, ps *pseudonyms) (*record.Record, error) {
	c := d.cfg()
	id, err := record.NewID()
	if err != nil {
		return nil, err
	}
	r := &record.Record{ID: id, TerminalID: c.Terminal.ID, SiteID: c.Terminal.Site, OperatorID: req.Operator, Service: req.Service,
		CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
		Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Pass},
		Time: time.Now(), Clock: d.clockQuality()}
	if !res.Checks.IdentifiersConsistent.OK {
		r.Identifiers = record.Check{Outcome: record.Fail, Reason: string(res.Checks.IdentifiersConsistent.Code)}
	}
	switch {
	case res.KPE != nil:
		k := res.KPE
		r.CardType, r.CardSerial = record.CardKPE, k.Info.Serial[:]
		r.SubjectKind, r.Subject = record.SubjectNIP, k.Identity.NIP
		if k.Info.Type == kpe.CardKPETambahan {
			r.CardType, r.Subject = record.CardKPETambahan, k.Identity.LinkedNIP
		}
	case res.KTPel != nil && ps != nil:
		r.CardType, r.CardSerial = record.CardKTPel, ps.serial
		r.SubjectKind, r.Subject = record.SubjectNIKHash, ps.subject
	default:
		return nil, fail(CodeUnknownCard, nil)
	}
	return r, nil
}

// commit seals rec with the SAM and appends it to the outbox, one record
// at a time so that each one's PrevHash is the last record's hash. A
// record is reported only after the outbox has committed it durably.
func (d *Daemon) commit(ctx context.Context, lease *samLease, rec *record.Record) error {
	return d.commitWith(ctx, lease.signer, rec, d.ob.Append)
}

// commitWith is commit with signer and the outbox's append (Append, or
// AppendRenewal for a renewal's record).
func (d *Daemon) commitWith(ctx context.Context, signer record.Signer, rec *record.Record, appendRec func(*record.Record) (uint64, error)) error {
	d.chain.Lock()
	defer d.chain.Unlock()
	prev, err := d.ob.LastHash()
	if err != nil {
		return fail(CodeNotRecorded, err)
	}
	rec.PrevHash = prev
	if err := record.Seal(ctx, rec, signer); err != nil {
		return err
	}
	d.sam.counterUsed(rec.Counter)
	t0 := time.Now()
	_, err = appendRec(rec)
	d.m.commit.Observe(time.Since(t0).Seconds())
	if err != nil {
		if errors.Is(err, outbox.ErrFull) {
			return fail(CodeOutboxFull, err)
		}
		return fail(CodeNotRecorded, err)
	}
	if d.up != nil {
		d.up.Kick()
	}
	return nil
}

func (d *Daemon) clockQuality() record.ClockQuality {
	if d.up != nil && d.up.ClockSkewed() {
		return record.ClockSkewed
	}
	if clockSynced() {
		return record.ClockSynced
	}
	return record.ClockUnsynced
}

// current returns the identify read of the card in the named reader (or
// the only reader holding one).
func (d *Daemon) current(name string) (*cards.Result, error) {
	r, err := d.pickReader(name)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case !r.present:
		return nil, fail(CodeNoCard, nil)
	case r.result == nil && r.err != nil:
		return nil, r.err
	case r.result == nil:
		return nil, fail(CodeNotAvailable, errors.New("the card has not been read (yet)"))
	}
	return r.result, nil
}

// CardView is the current card's data within the privacy rules (API):
// no photo, template or KTP-el population data.
func (d *Daemon) CardView(name string, loc api.Locale) (any, error) {
	res, err := d.current(name)
	if err != nil {
		return nil, err
	}
	return res.View(d.locale(loc).Lang), nil
}

// Prefill is the ASKES / BPJS form filled from the current KPE (API).
func (d *Daemon) Prefill(name string) (api.Prefill, error) {
	res, err := d.current(name)
	if err != nil {
		return api.Prefill{}, err
	}
	if res.KPE == nil {
		return api.Prefill{}, fail(CodeNotAvailable, errors.New("only a KPE or KPE Tambahan fills the ASKES form"))
	}
	v := res.View(i18n.Indonesian)
	p := api.Prefill{CardKind: string(res.Kind), Verified: res.Checks.CardAuthentic.OK && res.Checks.DataAuthentic.OK}
	if id := v.Identity; id != nil {
		p.Name, p.NIP, p.LinkedNIP, p.Relation = id.Name, id.NIP, id.LinkedNIP, id.Relation
		p.BirthPlace, p.BirthDate, p.Gender, p.Address = id.BirthPlace, isoDate(id.BirthDate), id.Gender, id.Address
	}
	if b := v.Benefits; b != nil {
		p.BPJS = b.BPJS
	}
	if e := v.Employment; e != nil {
		p.Agency, p.GolonganRuang = e.WorkingAgency, e.GolonganRuang
	}
	return p, nil
}
