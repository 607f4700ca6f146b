package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/agent/config"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/pcsctest"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// The kiosk's e-wallet through the whole terminal (docs/ewallet.md part
// 3): the back office on PostgreSQL issuing top-up authorisations with its
// issuer key, the agent on real pcscd with the lab's SAM and Budi's KPE
// (a purse of Rp 500.000), the kiosk page's credential.

// newTopUpRig is the rig with the e-wallet and update saldo on.
func newTopUpRig(t *testing.T, o rigOptions) *rig {
	r := newRigWith(t, o)
	r.setConf(func(c *config.Config) {
		c.EWallet = config.EWallet{Enabled: true, MerchantID: payMerchant, MerchantName: "Apotik Sehat", MaxPayment: payMax,
			FingerprintAbove: payFingerAt, MaxBalance: 20_000_000, TopUp: true, TopUpTimeout: 10 * time.Second}
	})
	r.insert(1, "sam.json")
	r.waitHealth(samReady)
	return r
}

// stageTopUp stages a top-up for Budi in the back office.
func (r *rig) stageTopUp(t *testing.T, amount uint32, ref string) backoffice.TopUp {
	t.Helper()
	tu, err := r.svc.StageTopUp(context.Background(), backoffice.TopUpRequest{NIP: budiNIP, Amount: amount, Ref: ref}, "cli")
	require.NoError(t, err)
	return *tu
}

// topUp is the back office's state of the top-up id.
func (r *rig) topUp(t *testing.T, id [16]byte) backoffice.TopUp {
	t.Helper()
	ts, err := r.svc.TopUps(context.Background(), backoffice.TopUpFilter{NIP: budiNIP})
	require.NoError(t, err)
	for _, tu := range ts {
		if tu.ID == id {
			return tu
		}
	}
	t.Fatalf("top-up %x unknown", id)
	return backoffice.TopUp{}
}

// shadow is the back office's shadow balance of Budi's purse.
func (r *rig) shadow(t *testing.T) int64 {
	t.Helper()
	v, _, err := r.svc.Purse(context.Background(), budiSerial, 0)
	require.NoError(t, err)
	require.NotNil(t, v)
	return v.ShadowBalance
}

// purseRecords are the outbox's purse records (payments and top-ups).
func (r *rig) purseRecords(t *testing.T) []*record.Record {
	t.Helper()
	items, err := r.ob.List(0, 0)
	require.NoError(t, err)
	var out []*record.Record
	for _, it := range items {
		rec, err := record.Decode(it.Encoded)
		require.NoError(t, err)
		if rec.Purse != nil {
			out = append(out, rec)
		}
	}
	return out
}

func (p *pageClient) purse(t *testing.T) (api.PurseView, int, api.Error) {
	t.Helper()
	var v api.PurseView
	status, e := p.call(t, "GET", api.PathPurse+"?reader="+url.QueryEscape(pcsctest.Slot0), nil, &v)
	return v, status, e
}

// topUpAct posts a top-up action (check, apply, decline) for slot 0.
func (p *pageClient) topUpAct(t *testing.T, path string) (api.PurseView, int, api.Error) {
	t.Helper()
	var v api.PurseView
	status, e := p.call(t, "POST", path, api.PurseRequest{Reader: pcsctest.Slot0}, &v)
	return v, status, e
}

// TestTopUpEndToEnd: the balance after a kiosk authentication, update
// saldo (check, the holder's yes, the credit, its record), the next check
// finds none, the back office says the top-up is applied and its shadow
// balance is the card's; the view is the authenticating credential's only
// and is gone with the card.
func TestTopUpEndToEnd(t *testing.T) {
	r := newTopUpRig(t, rigOptions{})
	k := r.kioskClient(t)
	card := freshBudi(t)
	r.insertCard(t, card)

	// no view before an authentication
	_, status, e := k.purse(t)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "not-available", e.Code)

	tu := r.stageTopUp(t, 150_000, "TRF-2026-0001")
	k.authenticate(t, true)
	v, status, e := k.purse(t)
	require.Equal(t, http.StatusOK, status, "%+v", e)
	assert.EqualValues(t, budiStartBal, v.Balance)
	assert.EqualValues(t, 20_000_000, v.MaxBalance)
	assert.Zero(t, v.PTC)
	assert.Empty(t, v.Transactions)
	assert.Equal(t, api.TopUpNone, v.TopUp.State)

	// another credential sees nothing of it
	l := r.loketClient(t)
	_, status, e = l.purse(t)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "not-available", e.Code)
	_, status, _ = l.topUpAct(t, api.PathTopUpApply)
	assert.Equal(t, http.StatusNotFound, status)

	// nothing to apply before a check
	_, status, e = k.topUpAct(t, api.PathTopUpApply)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "not-available", e.Code)

	v, status, e = k.topUpAct(t, api.PathTopUpCheck)
	require.Equal(t, http.StatusOK, status, "%+v", e)
	require.Equal(t, api.TopUpAvailable, v.TopUp.State, "%+v", v.TopUp)
	assert.EqualValues(t, 150_000, v.TopUp.Amount)
	assert.Equal(t, backoffice.TopUpAuthorised, r.topUp(t, tu.ID).Status)

	v, status, e = k.topUpAct(t, api.PathTopUpApply)
	require.Equal(t, http.StatusOK, status, "%+v", e)
	require.Equal(t, api.TopUpDone, v.TopUp.State, "%+v", v.TopUp)
	assert.EqualValues(t, budiStartBal+150_000, v.Balance)
	assert.EqualValues(t, 1, v.PTC)
	require.Len(t, v.Transactions, 1)
	assert.Equal(t, "credit", v.Transactions[0].Kind)
	assert.EqualValues(t, 150_000, v.Transactions[0].Amount)
	assert.EqualValues(t, budiStartBal+150_000, v.Transactions[0].BalanceAfter)
	_, err := record.ParseCode(v.TopUp.Code)
	require.NoError(t, err)
	st, _ := purseOf(t, card)
	assert.EqualValues(t, budiStartBal+150_000, st.Balance, "the card's balance")

	// one credit per authorisation: apply again has nothing to apply; the
	// next check finds none staged
	_, status, _ = k.topUpAct(t, api.PathTopUpApply)
	assert.Equal(t, http.StatusNotFound, status)
	v, status, _ = k.topUpAct(t, api.PathTopUpCheck)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, api.TopUpNone, v.TopUp.State)
	assert.Equal(t, "none", v.TopUp.Reason)
	assert.NotEmpty(t, v.TopUp.Message)

	// the topup record
	recs := r.purseRecords(t)
	require.Len(t, recs, 1)
	rec := recs[0]
	assert.Equal(t, record.ServiceTopUp, rec.Service)
	assert.Equal(t, record.PurseCredit, rec.Purse.Kind)
	assert.Equal(t, tu.ID, rec.Purse.Request)
	assert.EqualValues(t, 150_000, rec.Purse.Amount)
	assert.Equal(t, budiNIP, rec.Subject)
	assert.Equal(t, record.Pass, rec.Fingerprint.Outcome)
	assert.Equal(t, v.TopUp.Code, codeOf(t, rec))

	r.syncNow(t)
	got := r.topUp(t, tu.ID)
	assert.Equal(t, backoffice.TopUpApplied, got.Status)
	assert.Equal(t, v.TopUp.Code, got.AppliedCode)
	assert.EqualValues(t, 150_000, got.AppliedAmount)
	assert.Equal(t, int64(st.Balance), r.shadow(t), "the shadow balance is the card's")

	// decline: a second staged top-up put aside
	r.stageTopUp(t, 25_000, "TRF-2026-0002")
	v, _, _ = k.topUpAct(t, api.PathTopUpCheck)
	require.Equal(t, api.TopUpAvailable, v.TopUp.State)
	_, status, _ = k.topUpAct(t, api.PathTopUpDecline)
	assert.Equal(t, http.StatusNoContent, status)
	v, _, _ = k.purse(t)
	assert.Equal(t, "declined", v.TopUp.Reason)
	assert.EqualValues(t, budiStartBal+150_000, v.Balance)

	// the counter sees the balance after its own authentication
	l.authenticate(t, false)
	lv, status, e := l.purse(t)
	require.Equal(t, http.StatusOK, status, "%+v", e)
	assert.EqualValues(t, budiStartBal+150_000, lv.Balance)
	require.Len(t, lv.Transactions, 1)

	// gone with the card
	r.pull(t)
	_, status, _ = k.purse(t)
	assert.Equal(t, http.StatusNotFound, status)
	_, status, _ = l.purse(t)
	assert.Equal(t, http.StatusNotFound, status)
}

// topUpForger stands in front of the back office's terminal listener and
// keeps the last top-up offer it answered; replay set, it answers that
// instead of the back office's; tamper set, it changes the amount of the
// authorisation it passes on.
type topUpForger struct {
	mu     sync.Mutex
	last   []byte
	replay []byte
	tamper atomic.Bool
}

func (f *topUpForger) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != wire.PathTopUpOffer {
			next.ServeHTTP(w, req)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, req)
		out := rec.Body.Bytes()
		f.mu.Lock()
		if rec.Code == http.StatusOK {
			if f.replay != nil {
				out = f.replay
			} else {
				f.last = bytes.Clone(out)
			}
		}
		f.mu.Unlock()
		if rec.Code == http.StatusOK && f.tamper.Load() {
			var m map[string][]map[string]any
			if json.Unmarshal(out, &m) == nil && len(m["authorisations"]) > 0 {
				m["authorisations"][0]["amount"] = 9_000_000
				out, _ = json.Marshal(m)
			}
		}
		for key, vs := range rec.Header() {
			w.Header()[key] = vs
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		w.Write(out)
	})
}

// TestTopUpReplayAndForgeryRefused: an authorisation captured earlier and
// served again after the card's PTC moved is refused (replayed), one whose
// amount was changed is refused (forged); neither is credited.
func TestTopUpReplayAndForgeryRefused(t *testing.T) {
	f := &topUpForger{}
	r := newTopUpRig(t, rigOptions{wrapTerminal: f.wrap})
	k := r.kioskClient(t)
	card := freshBudi(t)
	r.insertCard(t, card)
	r.stageTopUp(t, 100_000, "TRF-2026-0101")
	k.authenticate(t, true)
	v, _, _ := k.topUpAct(t, api.PathTopUpCheck)
	require.Equal(t, api.TopUpAvailable, v.TopUp.State, "%+v", v.TopUp)
	v, _, _ = k.topUpAct(t, api.PathTopUpApply)
	require.Equal(t, api.TopUpDone, v.TopUp.State, "%+v", v.TopUp)
	f.mu.Lock()
	f.replay = f.last
	f.mu.Unlock()
	require.NotNil(t, f.replay)

	second := r.stageTopUp(t, 50_000, "TRF-2026-0102")
	v, status, e := k.topUpAct(t, api.PathTopUpCheck)
	require.Equal(t, http.StatusOK, status, "%+v", e)
	assert.Equal(t, api.TopUpNone, v.TopUp.State)
	assert.Equal(t, "replayed", v.TopUp.Reason)
	assert.NotEmpty(t, v.TopUp.Message)
	_, status, _ = k.topUpAct(t, api.PathTopUpApply)
	assert.Equal(t, http.StatusNotFound, status, "nothing to apply")

	// the back office's own authorisation, its amount changed on the way
	f.mu.Lock()
	f.replay = nil
	f.mu.Unlock()
	f.tamper.Store(true)
	v, _, _ = k.topUpAct(t, api.PathTopUpCheck)
	assert.Equal(t, api.TopUpNone, v.TopUp.State)
	assert.Equal(t, "forged", v.TopUp.Reason)
	f.tamper.Store(false)

	st, _ := purseOf(t, card)
	assert.EqualValues(t, budiStartBal+100_000, st.Balance, "credited once")
	assert.Len(t, r.purseRecords(t), 1)

	// the genuine one still goes through
	v, _, _ = k.topUpAct(t, api.PathTopUpCheck)
	require.Equal(t, api.TopUpAvailable, v.TopUp.State, "%+v", v.TopUp)
	v, _, _ = k.topUpAct(t, api.PathTopUpApply)
	require.Equal(t, api.TopUpDone, v.TopUp.State, "%+v", v.TopUp)
	assert.EqualValues(t, budiStartBal+150_000, v.Balance)
	r.syncNow(t)
	assert.Equal(t, backoffice.TopUpApplied, r.topUp(t, second.ID).Status)
	assert.Equal(t, int64(budiStartBal+150_000), r.shadow(t))
}

// moneyAddsUp checks, after a sync: the card's balance is the start plus
// the top-up records' amounts minus the payment records', one record per
// top-up id and one card transaction per record, the back office's shadow
// balance is the card's, and each staged top-up is applied iff a record
// credited it. It returns the top-up ids credited.
func (r *rig) moneyAddsUp(t *testing.T, card *tracedCard, staged map[[16]byte]string) map[[16]byte]bool {
	t.Helper()
	recs := r.purseRecords(t)
	var topups, payments int64
	seen := map[[16]byte]bool{}
	for _, rec := range recs {
		switch rec.Purse.Kind {
		case record.PurseCredit:
			topups += int64(rec.Purse.Amount)
			assert.False(t, seen[rec.Purse.Request], "one record per top-up id")
			seen[rec.Purse.Request] = true
		default:
			payments += int64(rec.Purse.Amount)
		}
	}
	st, _ := purseOf(t, card)
	assert.Equal(t, int64(budiStartBal)+topups-payments, int64(st.Balance), "card balance = start + top-ups - payments")
	assert.Equal(t, int64(st.Balance), r.shadow(t), "the shadow balance is the card's")
	assert.Equal(t, uint32(len(recs)), st.PTC, "one card transaction per record")
	for id, ref := range staged {
		got := r.topUp(t, id)
		assert.Equal(t, seen[id], got.Status == backoffice.TopUpApplied, "%s: applied iff credited (%s)", ref, got.Status)
	}
	return seen
}

// TestTopUpTearAtEveryAPDU pulls Budi's card at every APDU of one update
// saldo, before the card processed it (remove) and after (answer lost).
// After each: the card back, a kiosk authentication (which settles a torn
// credit from the card's log), sync. Then the money adds up: the card's
// balance is the start plus the top-up records' amounts, one record per
// top-up id, the back office's shadow balance is the card's, and each
// staged top-up is applied iff the card was credited with it.
func TestTopUpTearAtEveryAPDU(t *testing.T) {
	started := time.Now()
	r := newTopUpRig(t, rigOptions{})
	k := r.kioskClient(t)
	card := freshBudi(t)
	r.insertCard(t, card)

	// the dry run: how many APDUs one update saldo sends
	dry := r.stageTopUp(t, 1_000, "SWEEP-DRY")
	k.authenticate(t, true)
	v, _, _ := k.topUpAct(t, api.PathTopUpCheck)
	require.Equal(t, api.TopUpAvailable, v.TopUp.State, "%+v", v.TopUp)
	mark := card.count()
	v, _, _ = k.topUpAct(t, api.PathTopUpApply)
	require.Equal(t, api.TopUpDone, v.TopUp.State, "%+v", v.TopUp)
	n := len(card.since(mark))
	require.Positive(t, n)
	staged := map[[16]byte]string{dry.ID: "dry"}
	credited := 1
	outcomes := map[string]int{}

	tear := func(t *testing.T, ref string, f cardsim.Fault) {
		tu := r.stageTopUp(t, 1_000, ref)
		staged[tu.ID] = ref
		v, status, e := k.topUpAct(t, api.PathTopUpCheck)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		require.Equal(t, api.TopUpAvailable, v.TopUp.State, "%+v", v.TopUp)
		require.NoError(t, r.lab.SetFault(0, f))
		applied, status, e := k.topUpAct(t, api.PathTopUpApply)
		require.NoError(t, r.lab.ClearFault(0))
		if status == http.StatusOK {
			require.Contains(t, []string{api.TopUpDone, api.TopUpNotDone, api.TopUpPending}, applied.TopUp.State)
			outcomes[applied.TopUp.State]++
		} else {
			assert.Equal(t, "card-removed", e.Code, "%+v", e)
			outcomes[e.Code]++
		}
		r.faultRemoved(t)
		r.insertCard(t, card)
		k.authenticate(t, true) // settles a torn credit from the card's log
		j, err := r.ob.PurseJournals()
		require.NoError(t, err)
		require.Empty(t, j, "settled")
		r.syncNow(t)
		r.moneyAddsUp(t, card, staged)
	}
	for pos := 1; pos <= n; pos++ {
		for _, c := range []struct {
			name string
			f    cardsim.Fault
		}{{"remove", cardsim.Fault{RemoveAtAPDU: pos}}, {"answer-lost", cardsim.Fault{AnswerLostAtAPDU: pos}}} {
			ref := fmt.Sprintf("SWEEP-%s-%02d", c.name, pos)
			t.Run(ref, func(t *testing.T) { tear(t, ref, c.f) })
		}
	}
	// what a tear left staged is credited now, once
	for {
		v, _, _ := k.topUpAct(t, api.PathTopUpCheck)
		if v.TopUp.State != api.TopUpAvailable {
			require.Equal(t, "none", v.TopUp.Reason, "%+v", v.TopUp)
			break
		}
		v, _, _ = k.topUpAct(t, api.PathTopUpApply)
		require.Equal(t, api.TopUpDone, v.TopUp.State, "%+v", v.TopUp)
		credited++
	}
	r.syncNow(t)
	seen := r.moneyAddsUp(t, card, staged)
	assert.Len(t, seen, len(staged), "every staged top-up credited exactly once in the end")
	assert.Positive(t, outcomes[api.TopUpPending], "some tears left the credit pending (settled by the next authentication)")
	t.Logf("%d tears (%v); %d top-ups credited afterwards on a new check; %s", 2*n, outcomes, credited-1, time.Since(started).Round(time.Second))
}
