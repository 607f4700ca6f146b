package daemon

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/internal/i18n"
	"kpe-agent/sync/record"
	"kpe-agent/sync/uploader"
	"kpe-agent/sync/wire"
)

// The daemon's side of the renewal (renewal.go): the run kept on the
// reader for its card session, the card operations in that session, the
// SAM's signature, and the API.

// renewalEnv is the daemon's environment for renewals.
func (d *Daemon) renewalEnv() *renewalEnv {
	env := &renewalEnv{ob: d.ob, now: time.Now, log: d.log,
		roots:   func() *x509.CertPool { return d.o.Cards.BKNRoots },
		seal:    d.sealRenewal,
		publish: func(reader, state string) { d.publish(api.Event{Type: api.EventRenewal, Reader: reader, State: state}) }}
	if d.up != nil {
		env.ask = func(ctx context.Context, q wire.RenewalQuery) (uploader.OfferAnswer, error) {
			return d.up.RenewalOffer(ctx, q, d.cfg().Renewal.OfferTimeout)
		}
	}
	return env
}

// renewable says a renewal may follow the authentication of res: a KPE
// (not a Tambahan) whose fingerprint matched, renewal on with a back
// office, a card that knows renewals.
func (d *Daemon) renewable(res *cards.Result) bool {
	k := res.KPE
	return d.cfg().RenewalOn() && d.up != nil && k != nil && k.Info.Type == kpe.CardKPE && k.Update.Supported && len(k.SOD) > 0
}

// keepRenewal starts the renewal run of the card session s after the
// authentication of res (its record tmpl, before it was sealed) for
// owner; at the kiosk it asks for an offer at once, in the background:
// the authentication's answer does not wait for it.
func (d *Daemon) keepRenewal(r *reader, s *cards.Session, owner string, kiosk bool, res *cards.Result, tmpl *record.Record) {
	run := newRenewalRun(d.renewalEnv(), &sessionCard{d: d, s: s}, r.name, owner, kiosk, res, tmpl)
	r.mu.Lock()
	if r.sess != s || !r.present {
		r.mu.Unlock()
		run.wipe()
		return
	}
	old := r.renewal
	r.renewal, r.renewalSess = run, s
	r.mu.Unlock()
	if old != nil {
		old.wipe()
	}
	go func() {
		ctx, cancel := context.WithCancel(d.halt)
		defer cancel()
		go func() {
			select {
			case <-s.Done():
				cancel()
			case <-ctx.Done():
			}
		}()
		run.begin(ctx, kiosk)
	}()
}

// wipeRenewal forgets the reader's renewal run (the card left).
func (r *reader) wipeRenewal() {
	r.mu.Lock()
	old := r.renewal
	r.renewal, r.renewalSess = nil, nil
	r.mu.Unlock()
	if old != nil {
		old.wipe()
	}
}

// renewalFor finds the renewal run of the card in the named reader for
// the caller of ctx.
func (d *Daemon) renewalFor(ctx context.Context, name string) (*reader, *renewalRun, *cards.Session, error) {
	r, err := d.pickReader(name)
	if err != nil {
		return nil, nil, nil, err
	}
	r.mu.Lock()
	run, s := r.renewal, r.renewalSess
	ok := run != nil && r.present && r.sess == s
	r.mu.Unlock()
	if !ok || !run.mayUse(api.Caller(ctx)) {
		return nil, nil, nil, fail(CodeNotAvailable, errors.New("no KPE holder's fingerprint matched in this card session for this caller"))
	}
	return r, run, s, nil
}

// renewalLocale is loc with the terminal's defaults; a kiosk page's
// request speaks to the holder.
func (d *Daemon) renewalLocale(ctx context.Context, loc api.Locale) api.Locale {
	if api.KioskCredential(ctx) != "" {
		loc.Audience = i18n.Holder
	}
	return d.locale(loc)
}

// RenewalView is the renewal of the card in the named reader (API).
func (d *Daemon) RenewalView(ctx context.Context, name string, loc api.Locale) (api.RenewalView, error) {
	_, run, _, err := d.renewalFor(ctx, name)
	if err != nil {
		return api.RenewalView{}, err
	}
	loc = d.renewalLocale(ctx, loc)
	return run.view(loc.Lang, loc.Audience), nil
}

// RenewalCheck asks the back office for an offer for the card in the
// named reader and verifies it (API; the counter's clerk asks, the kiosk
// asks by itself).
func (d *Daemon) RenewalCheck(ctx context.Context, name string, loc api.Locale) (api.RenewalView, error) {
	_, run, _, err := d.renewalFor(ctx, name)
	if err != nil {
		return api.RenewalView{}, err
	}
	if d.closing.Load() {
		return api.RenewalView{}, fail(CodeShuttingDown, nil)
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(d.halt, cancel)()
	if err := run.check(cctx); err != nil {
		return api.RenewalView{}, err
	}
	loc = d.renewalLocale(ctx, loc)
	return run.view(loc.Lang, loc.Audience), nil
}

// RenewalDecline puts the offer aside (API).
func (d *Daemon) RenewalDecline(ctx context.Context, name string) error {
	_, run, _, err := d.renewalFor(ctx, name)
	if err != nil {
		return err
	}
	return run.decline()
}

// RenewalApply writes the offered update to the card in the named reader
// (API): the holder agreed. It returns when the renewal ended (done,
// failed, interrupted); the reader is busy meanwhile, and a pulled card
// ends it (interrupted).
func (d *Daemon) RenewalApply(ctx context.Context, name string, loc api.Locale) (api.RenewalView, error) {
	r, run, s, err := d.renewalFor(ctx, name)
	if err != nil {
		return api.RenewalView{}, err
	}
	d.mu.Lock()
	if d.closing.Load() {
		d.mu.Unlock()
		return api.RenewalView{}, fail(CodeShuttingDown, nil)
	}
	d.flows.Add(1)
	d.mu.Unlock()
	defer d.flows.Done()
	// the write runs to its end whatever the caller does (a closed page
	// must not tear it); the card's removal ends it
	c := d.cfg()
	actx, stop := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stop(nil)
	actx, cancel := context.WithTimeout(actx, 2*c.Session.ReadTimeout+c.Session.SignTimeout)
	defer cancel()
	if err := r.begin(func(error) {}, api.Caller(ctx)); err != nil {
		return api.RenewalView{}, err
	}
	defer r.end()
	if !r.holdCard(s, stop) {
		return api.RenewalView{}, fail(CodeCardRemoved, apdu.ErrCardRemoved)
	}
	defer r.releaseCard()
	if err := run.apply(actx); err != nil {
		return api.RenewalView{}, err
	}
	loc = d.renewalLocale(ctx, loc)
	return run.view(loc.Lang, loc.Audience), nil
}

// sessionCard is a renewal's card: the reader's card session.
type sessionCard struct {
	d *Daemon
	s *cards.Session
}

// Write implements renewalCard: kpe.WriteUpdate with the SAM's update key,
// inside one PC/SC transaction on the card.
func (c *sessionCard) Write(ctx context.Context, serial [8]byte, u kpe.Update, onStep func(kpe.WriteStep, int)) error {
	return c.s.DoWait(ctx, func(ctx context.Context, card apdu.Card) error {
		if err := card.BeginTransaction(ctx); err != nil {
			return err
		}
		defer card.EndTransaction()
		lease, err := c.d.sam.lease(ctx)
		if err != nil {
			return err
		}
		defer lease.release()
		return kpe.WriteUpdate(ctx, card, lease.s, serial, u, kpe.WriteOptions{AID: c.d.o.Cards.Profiles.KPEAID, OnStep: onStep})
	})
}

// Reread implements renewalCard: the whole card read and verified again
// (its photo not).
func (c *sessionCard) Reread(ctx context.Context) (*cards.Result, error) {
	var res *cards.Result
	err := c.s.DoWait(ctx, func(ctx context.Context, card apdu.Card) error {
		if err := card.BeginTransaction(ctx); err != nil {
			return err
		}
		defer card.EndTransaction()
		lease, err := c.d.sam.lease(ctx)
		if err != nil {
			return err
		}
		defer lease.release()
		o := c.d.o.Cards
		o.Photo = false
		res, err = cards.Read(ctx, card, lease.s, o)
		return err
	})
	if err != nil {
		return nil, err
	}
	if res.KPE == nil {
		return nil, fail(CodeUnknownCard, fmt.Errorf("the card read back is a %s", res.Kind))
	}
	return res, nil
}

// sealRenewal has the SAM sign rec and stores it, the card's journal entry
// removed in the same outbox transaction.
func (d *Daemon) sealRenewal(ctx context.Context, rec *record.Record) error {
	c := d.cfg()
	lctx, cancel := context.WithTimeout(ctx, c.Session.SignTimeout)
	defer cancel()
	lease, err := d.sam.lease(lctx)
	if err != nil {
		return err
	}
	defer lease.release()
	sctx, cancel2 := context.WithTimeout(context.WithoutCancel(ctx), c.Session.SignTimeout)
	defer cancel2()
	return d.commitWith(sctx, lease.signer, rec, d.ob.AppendRenewal)
}

var _ api.RenewalBackend = (*Daemon)(nil)
