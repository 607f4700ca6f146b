package daemon

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"sync"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/agent/signing"
	"kpe-agent/apdu"
	"kpe-agent/apdu/sam"
	"kpe-agent/sync/record"
)

// samHolder keeps the terminal SAM. Card workflows lease it one at a time
// (lease): a KPE's authentication, a KTP-el's secure messaging (every
// command goes through the SAM) and the record's signature all run inside
// one lease, which also holds a PC/SC transaction on the SAM so no other
// program interleaves.
type samHolder struct {
	d    *Daemon
	slot chan struct{} // the lease: one holder at a time

	mu      sync.Mutex
	reader  string
	card    apdu.Card
	s       *sam.SAM
	signer  *signing.SAMSigner
	info    sam.Info
	problem string // a code that makes the SAM unusable (blocked, not activated, counter behind)
}

func newSAMHolder(d *Daemon) *samHolder {
	return &samHolder{d: d, slot: make(chan struct{}, 1)}
}

// tryTake connects to the card in r and keeps it when it is a SAM. It
// reports whether it did.
func (h *samHolder) tryTake(ctx context.Context, r *reader) bool {
	h.mu.Lock()
	busy := h.card != nil && h.reader != r.name
	h.mu.Unlock()
	if busy {
		return false // one SAM is enough; a second one is left alone
	}
	card, err := h.d.o.Transport.Connect(ctx, r.name)
	if err != nil {
		h.d.log.Warn("cannot connect to the card", "reader", r.name, "err", err)
		return false
	}
	if err := card.BeginTransaction(ctx); err != nil {
		card.Close()
		return false
	}
	kind, err := cards.Recognize(ctx, card, cards.DefaultProfiles)
	if err != nil || kind != cards.KindSAM {
		card.EndTransaction()
		card.Close()
		return false
	}
	s, err := sam.Open(ctx, card)
	if err != nil {
		card.EndTransaction()
		card.Close()
		h.d.log.Warn("the SAM does not answer", "reader", r.name, "err", err)
		r.setState(api.StateFailed, cards.KindSAM, err)
		r.markReady()
		return true
	}
	problem, info := h.prepare(ctx, s)
	var signer *signing.SAMSigner
	if problem == "" {
		if signer, err = signing.New(ctx, s); err != nil {
			problem = classify(err).Code
			h.d.log.Error("the SAM's terminal certificate is not usable", "err", err)
		}
	}
	// the transaction ends before the SAM is handed out: a lease begins
	// its own on the same handle
	card.EndTransaction()
	h.mu.Lock()
	if h.card != nil && h.reader != r.name {
		// another reader's SAM was taken meanwhile
		h.mu.Unlock()
		card.Close()
		return false
	}
	h.reader, h.card, h.s, h.signer, h.info, h.problem = r.name, card, s, signer, info, problem
	h.mu.Unlock()
	// the role stays: a probed reader is the SAM's while it holds it
	// (readerName), and a card reader again once the SAM is taken out
	r.mu.Lock()
	r.kind = cards.KindSAM
	r.mu.Unlock()
	h.d.m.samCounter.Set(float64(info.Counter))
	serial := strings.ToUpper(hex.EncodeToString(info.Serial[:]))
	if problem != "" {
		h.d.log.Error("the SAM cannot sign", "reader", r.name, "serial", serial, "problem", problem)
		r.setState(api.StateFailed, cards.KindSAM, fail(problem, nil))
	} else {
		h.d.log.Info("SAM ready", "reader", r.name, "serial", serial, "counter", info.Counter)
		if h.d.up != nil {
			h.d.up.SetCertificates([][]byte{signer.Certificate().Raw})
		}
		r.setState(api.StateIdentified, cards.KindSAM, nil)
		h.d.samReady()
	}
	ev := api.Event{Type: api.EventSAM, Reader: r.name, State: "ready"}
	if problem != "" {
		ev.State, ev.Error = "unusable", h.d.apiError(fail(problem, nil), api.Locale{})
	}
	h.d.publish(ev)
	r.markReady()
	return true
}

// prepare activates an inactive SAM when the code is configured, and
// checks its counter against the outbox's last record: the SAM persists
// its counter before it answers, so it may be ahead (answers lost to a
// pulled card or a power cut: a gap the back office flags) but never
// behind, unless this is not the SAM that signed them or it was reset.
func (h *samHolder) prepare(ctx context.Context, s *sam.SAM) (string, sam.Info) {
	info, err := s.Info(ctx)
	if err != nil {
		return classify(err).Code, info
	}
	if info.State == sam.Inactive && h.d.o.SAMCode != nil {
		if err := s.Activate(ctx, h.d.o.SAMCode); err != nil {
			h.d.log.Error("SAM activation failed; not retrying (each wrong code costs a try)", "err", err)
		} else {
			h.d.log.Info("SAM activated")
		}
		if info, err = s.Info(ctx); err != nil {
			return classify(err).Code, info
		}
	}
	switch info.State {
	case sam.Blocked:
		return CodeSAMBlocked, info
	case sam.Inactive:
		return CodeSAMNotActivated, info
	}
	last, err := h.d.ob.Last()
	if err != nil {
		h.d.log.Error("cannot read the outbox's last record for the SAM counter check", "err", err)
		return "", info
	}
	if last != nil && last.Signer == record.SignerSAM && last.SAMSerial == info.Serial {
		switch {
		case info.Counter < last.Counter:
			h.d.log.Error("SAM counter is behind the outbox's last record: refusing to sign", "sam_counter", info.Counter, "last_record_counter", last.Counter)
			return CodeSAMCounter, info
		case info.Counter > last.Counter:
			h.d.log.Warn("SAM counter is ahead of the outbox's last record (signatures whose answer was lost); the back office will see a gap",
				"sam_counter", info.Counter, "last_record_counter", last.Counter, "gap", info.Counter-last.Counter)
		}
	}
	return "", info
}

// drop forgets the SAM when it was in reader (or always when reader is
// "").
func (h *samHolder) drop(reader string) {
	h.mu.Lock()
	if h.card == nil || (reader != "" && h.reader != reader) {
		h.mu.Unlock()
		return
	}
	card, name := h.card, h.reader
	h.reader, h.card, h.s, h.signer, h.problem = "", nil, nil, nil, ""
	h.mu.Unlock()
	card.Close()
	h.d.log.Warn("SAM removed", "reader", name)
	h.d.publish(api.Event{Type: api.EventSAM, Reader: name, State: "removed", Error: h.d.apiError(fail(CodeNoSAM, nil), api.Locale{})})
}

func (h *samHolder) readerName() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reader
}

func (h *samHolder) problemCode() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.problem
}

func (h *samHolder) status() api.SAM {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.card == nil {
		return api.SAM{}
	}
	return api.SAM{Present: true, Reader: h.reader, Serial: strings.ToUpper(hex.EncodeToString(h.info.Serial[:])),
		State:     h.info.State.String(),
		TriesLeft: h.info.TriesLeft, Counter: h.info.Counter}
}

// samLease is the SAM for one workflow.
type samLease struct {
	h      *samHolder
	s      *sam.SAM
	signer *signing.SAMSigner
	card   apdu.Card
}

// lease waits for the SAM (bounded by ctx) and starts a transaction on it.
func (h *samHolder) lease(ctx context.Context) (*samLease, error) {
	select {
	case h.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	h.mu.Lock()
	l := &samLease{h: h, s: h.s, signer: h.signer, card: h.card}
	problem := h.problem
	h.mu.Unlock()
	switch {
	case l.card == nil:
		<-h.slot
		return nil, fail(CodeNoSAM, cards.ErrNoSAM)
	case problem != "":
		<-h.slot
		return nil, fail(problem, nil)
	}
	if err := l.card.BeginTransaction(ctx); err != nil {
		<-h.slot
		if errors.Is(err, apdu.ErrCardRemoved) || errors.Is(err, apdu.ErrNoCard) {
			return nil, fail(CodeNoSAM, err)
		}
		return nil, err
	}
	return l, nil
}

func (l *samLease) release() {
	l.card.EndTransaction()
	<-l.h.slot
}

// counterUsed records the counter of a signature.
func (h *samHolder) counterUsed(c uint32) {
	h.mu.Lock()
	h.info.Counter = c
	h.mu.Unlock()
	h.d.m.samCounter.Set(float64(c))
}
