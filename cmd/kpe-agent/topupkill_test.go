package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
	"kpe-agent/internal/purse"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/labset"
	"kpe-agent/lab/pcsctest"
	hsmsigner "kpe-agent/lab/softhsm/signer"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// The top-up kill test's amounts: each step's top-up, and the one payment
// made before the steps (so that the money has both directions).
const (
	topKillAmount = 2_000
	topKillPay    = 1_000
)

// TestTopUpAgentKilledAtEveryStep kills the agent (SIGKILL) at every step
// of an "update saldo" (docs/ewallet.md, "Update saldo", tears), as
// TestPayAgentKilledAtEveryStep does for a payment: the real kpe-agent
// binary on configs/lab.yaml with the e-wallet and top-ups on
// (KPE_EWALLET_*), the card lab on pcscd/vpcd, the back office on its
// embedded store with the lab's purse masters and an issuer whose key was
// generated in a SoftHSM2 token and certified by the lab's BKN renewal
// root (as TestRenewalAgentKilledAtEveryStep), so that it signs top-up
// authorisations. One kpe-budi card pays Rp 1.000 once, then runs
// through every step, a fresh Rp 2.000 top-up staged for Budi each time.
// The steps, each made exact by a lab hold or a gate on the back office:
//
//   - offer fetched: the back office's answer to POST /v1/topup/offer
//     held, the agent killed, then the back office issues it (to nobody);
//   - offer checked: the agent killed with the verified offer in memory;
//   - credit journaled: the credit's own READ PURSE held (after the
//     journal, before the SAM's PURSE MAC);
//   - SAM PURSE MAC: held, the agent killed, the SAM then processes it;
//   - every card APDU of the apply up to and including CREDIT, each held
//     and the agent killed, then either dropped (the card pulled: it
//     never got the command) or released (processed, its answer lost);
//   - proof check: the SAM's PURSE PROOF held (the card was credited);
//   - record sealing: the SAM's SIGN RECORD of the topup record held.
//
// After each kill the agent starts again, the card is presented again
// and its holder authenticated (which settles the journal from the card's
// log), and the outbox is synced. Then, checked: the card was credited
// iff the kill's journal says it took the CREDIT (none or no SAM
// transaction: not; the SAM's transaction journaled: iff the card's PTC
// moved), and the back office has the top-up applied iff the card was
// credited. If not credited the top-up is offered again (the same id, the
// card still at its PTC) and applied. At the end of each step: the card
// credited exactly once with this top-up, the top-up applied with a
// record that verifies, one credit row in the purse ledger per applied
// top-up (no topup-replayed alarm: one topup record per id), the money
// adds up (card balance = start + the applied top-ups − the payments; the
// shadow balance the card's; no PTC missing or repeated; every card proof
// verified) and no alarm.
func TestTopUpAgentKilledAtEveryStep(t *testing.T) {
	start := time.Now()
	t.Setenv("KPE_EWALLET_ENABLED", "true")
	t.Setenv("KPE_EWALLET_MERCHANT_ID", killMerchant)
	t.Setenv("KPE_EWALLET_TOPUP", "true")
	labDir := pcsctest.RepoPath("testdata/cards/lab")
	keys, err := purse.LoadLabKeys(pcsctest.RepoPath("testdata/cards/lab/trust/purse-keys.json"))
	require.NoError(t, err)
	gate := &pathGate{path: wire.PathTopUpOffer}
	o := labOptions{purseKeys: keys, terminalHandler: gate.wrap}
	{
		m, err := labset.LoadManifest(labDir)
		require.NoError(t, err)
		ca, err := m.RenewalIssuer(labDir)
		require.NoError(t, err)
		o.issuer = hsmsigner.New(t, ca)
		o.issuerRoots, err = m.Roots(labDir, "bkn")
		require.NoError(t, err)
	}
	lt := startLabTerminalWith(t, o)
	k := &topKill{lt: lt, gate: gate}
	k.card, err = cardsim.LoadCard(pcsctest.RepoPath("testdata/cards/lab/cards/kpe-budi.json"))
	require.NoError(t, err)
	require.Equal(t, uint32(killStartPurse), purseState(t, k.card).Balance)

	// one payment first, so that the sums have both directions
	k.present(t)
	var paid api.PayResult
	st, e := lt.agent.call(t, "POST", api.PathPay, api.PayRequest{Reader: pcsctest.Slot0, Operator: "kill-test", Amount: topKillPay,
		MerchantRef: "TOPKILL-PAY", IdempotencyKey: "topkill-pay", WaitSeconds: 10}, &paid)
	require.Equal(t, http.StatusOK, st, "%+v", e)
	require.Equal(t, api.PayDone, paid.Status, "%+v", paid)
	k.lt.synced(t)
	k.remove(t)
	k.moneyAddsUp(t)

	k.step(t, "offer fetched", false, func(t *testing.T) {
		// the back office answers after the agent died: it issued the
		// authorisation, nobody holds it
		gate.arm()
		k.asyncCall(t, api.PathTopUpCheck)
		gate.waitHeld(t)
		lt.agent.kill(t)
		gate.release()
		u := k.topUpOf(t, k.staged)
		require.Equal(t, backoffice.TopUpAuthorised, u.Status, "issued for the card at its PTC")
		require.Equal(t, 1, u.Authorisations)
	})
	k.step(t, "offer checked", true, func(t *testing.T) {
		lt.agent.kill(t)
	})
	k.step(t, "credit journaled", true, func(t *testing.T) {
		// the credit's second READ PURSE is the purse transaction's own,
		// after the journal and before the SAM's PURSE MAC
		require.NoError(t, lt.lab.SetFault(0, cardsim.Fault{HoldAtAPDU: 2, HoldINS: kpe.InsReadPurse}))
		k.asyncCall(t, api.PathTopUpApply)
		k.lt.waitHold(t, 0)
		lt.agent.kill(t)
		require.NoError(t, lt.lab.ReleaseHold(0))
		j := k.lt.purseJournal(t)
		require.NotNil(t, j, "the credit is journaled")
		require.Equal(t, outbox.PurseStarted, j.Step)
		require.Equal(t, record.PurseCredit, j.Kind)
		require.Zero(t, j.SAMTxn, "no SAM transaction yet")
	})
	k.step(t, "SAM PURSE MAC", true, func(t *testing.T) {
		require.NoError(t, lt.lab.SetFault(1, cardsim.Fault{HoldAtAPDU: 1, HoldINS: sam.InsPurseMAC}))
		k.asyncCall(t, api.PathTopUpApply)
		k.lt.waitHold(t, 1)
		lt.agent.kill(t)
		require.NoError(t, lt.lab.ReleaseHold(1))
		j := k.lt.purseJournal(t)
		require.NotNil(t, j)
		require.Equal(t, outbox.PurseStarted, j.Step, "the SAM's answer died with the agent")
	})
	var seen []string
	for n, credit := 1, false; !credit; n++ {
		require.Less(t, n, 64, "no CREDIT among the apply's APDUs: %v", seen)
		var ins byte
		for _, drop := range []bool{true, false} {
			name := fmt.Sprintf("card APDU %d processed", n)
			if drop {
				name = fmt.Sprintf("card APDU %d dropped", n)
			}
			k.step(t, name, true, func(t *testing.T) {
				f := cardsim.Fault{HoldAtAPDU: n}
				if drop {
					f.RemoveAtAPDU = n
				}
				require.NoError(t, lt.lab.SetFault(0, f))
				k.asyncCall(t, api.PathTopUpApply)
				cmd := k.lt.waitHold(t, 0)
				ins = cmd[1]
				lt.agent.kill(t)
				if drop {
					// as in TestPayAgentKilledAtEveryStep: pcscd first
					// notices the death, then the card leaves
					time.Sleep(time.Second)
				}
				require.NoError(t, lt.lab.ReleaseHold(0))
				if ins == kpe.InsPurseCredit {
					j := k.lt.purseJournal(t)
					require.NotNil(t, j)
					require.Equal(t, outbox.PurseSent, j.Step, "the SAM's transaction journaled before CREDIT")
				}
			})
		}
		seen = append(seen, fmt.Sprintf("%d:%02X", n, ins))
		credit = ins == kpe.InsPurseCredit
	}
	t.Logf("card APDUs of the apply (INS), each held, the agent killed, dropped and processed: %s", strings.Join(seen, " "))
	k.step(t, "proof check", true, func(t *testing.T) {
		require.NoError(t, lt.lab.SetFault(1, cardsim.Fault{HoldAtAPDU: 1, HoldINS: sam.InsPurseProof}))
		k.asyncCall(t, api.PathTopUpApply)
		k.lt.waitHold(t, 1)
		lt.agent.kill(t)
		require.NoError(t, lt.lab.ReleaseHold(1))
		j := k.lt.purseJournal(t)
		require.NotNil(t, j)
		require.Equal(t, outbox.PurseSent, j.Step)
	})
	k.step(t, "record sealing", true, func(t *testing.T) {
		require.NoError(t, lt.lab.SetFault(1, cardsim.Fault{HoldAtAPDU: 1, HoldINS: sam.InsSignRecord}))
		k.asyncCall(t, api.PathTopUpApply)
		k.lt.waitHold(t, 1)
		lt.agent.kill(t)
		require.NoError(t, lt.lab.ReleaseHold(1))
		j := k.lt.purseJournal(t)
		require.NotNil(t, j)
		require.Equal(t, outbox.PurseDone, j.Step, "the card's proof verified, the record not stored")
	})
	cs := purseState(t, k.card)
	took := time.Since(start)
	t.Logf("%d kills in %s (with set-up): %d credits settled by the next authentication, %d applied again on a new offer; card Rp %d = Rp %d + Rp %d topped up − Rp %d paid",
		k.runs, took.Round(time.Millisecond), k.settled, k.again, cs.Balance, killStartPurse, k.credits, k.debits)
	require.Equal(t, k.runs, k.settled+k.again)
	require.Positive(t, k.settled, "some kills left the card credited")
	require.Positive(t, k.again, "some kills left the card untouched")
}

// topKill is the state of TestTopUpAgentKilledAtEveryStep.
type topKill struct {
	lt              *labTerminal
	gate            *pathGate
	card            cardsim.Card
	runs            int
	staged          [16]byte // the step's top-up
	settled, again  int      // steps whose credit the authentication settled; steps applied again
	credits, debits int64    // the ledger's, at the last check
	call            chan struct{}
}

// step is one run: a fresh top-up staged, the card presented and its
// holder authenticated, the offer checked (checked), kill (which kills
// the agent at the step), the agent again, the card again and the
// authentication, the sync and the checks, the top-up offered again and
// applied if the card did not take it, and the checks again.
func (k *topKill) step(t *testing.T, name string, checked bool, kill func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		k.runs++
		ctx := context.Background()
		lt, a := k.lt, k.lt.agent
		tu, err := lt.bo.StageTopUp(ctx, backoffice.TopUpRequest{NIP: budiNIP, Amount: topKillAmount, Ref: fmt.Sprintf("TOPKILL-%02d", k.runs)}, "cli")
		require.NoError(t, err)
		k.staged = tu.ID
		before := purseState(t, k.card)
		k.present(t)
		k.auth(t)
		if checked {
			v := k.topUp(t, api.PathTopUpCheck)
			require.Equal(t, api.TopUpAvailable, v.TopUp.State, "the staged top-up is offered: %+v", v.TopUp)
			require.Equal(t, int64(topKillAmount), v.TopUp.Amount)
		}

		kill(t)
		if k.call != nil {
			<-k.call // the request ended with the agent
			k.call = nil
		}
		_ = lt.lab.ClearFault(0)
		_ = lt.lab.ClearFault(1)
		k.gate.disarm()
		// what the next authentication must find: no journal entry or one
		// without the SAM's transaction, the card untouched; the SAM's
		// transaction journaled, credited iff the card's PTC moved
		var want bool
		if j := k.lt.purseJournal(t); j != nil && j.Step != outbox.PurseStarted {
			want = purseState(t, k.card).PTC != before.PTC
		}

		// the agent again, the card presented again, the holder's
		// authentication settles the journal
		a.restart(t)
		a.waitHealth(t, samActive)
		if st, err := lt.lab.SlotStatus(0); err == nil && st.Inserted {
			require.NoError(t, lt.lab.Remove(0))
		}
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
		require.Eventually(t, func() bool { return !a.reader(t).CardPresent }, 10*time.Second, 20*time.Millisecond, "the agent missed the removal")
		k.present(t)
		k.auth(t)
		k.lt.synced(t)
		var v api.PurseView
		st, e := a.call(t, "GET", api.PathPurse+"?reader="+url.QueryEscape(pcsctest.Slot0), nil, &v)
		require.Equal(t, http.StatusOK, st, "%+v", e)
		credited := v.PTC != int64(before.PTC)
		require.Equal(t, want, credited, "the card as the agent read it after the settlement: %+v", v)
		if credited {
			k.settled++
			require.Equal(t, int64(before.PTC)+1, v.PTC)
			require.Equal(t, int64(before.Balance)+topKillAmount, v.Balance, "credited once")
		} else {
			k.again++
			require.Equal(t, int64(before.Balance), v.Balance, "not credited: untouched")
		}
		// the back office: applied iff the card was credited
		u := k.topUpOf(t, tu.ID)
		if credited {
			require.Equal(t, backoffice.TopUpApplied, u.Status, "the card took it: applied")
		} else {
			require.NotEqual(t, backoffice.TopUpApplied, u.Status, "the card did not take it: not applied")
			require.NotEqual(t, backoffice.TopUpCancelled, u.Status)
		}
		k.moneyAddsUp(t)

		// update saldo again: the same top-up if the card did not take it
		c := k.topUp(t, api.PathTopUpCheck)
		var code string
		if credited {
			require.Equal(t, api.TopUpNone, c.TopUp.State, "nothing left to offer: %+v", c.TopUp)
			require.Equal(t, "none", c.TopUp.Reason)
		} else {
			require.Equal(t, api.TopUpAvailable, c.TopUp.State, "offered again: %+v", c.TopUp)
			require.Equal(t, int64(topKillAmount), c.TopUp.Amount)
			d := k.topUp(t, api.PathTopUpApply)
			require.Equal(t, api.TopUpDone, d.TopUp.State, "%+v", d.TopUp)
			require.Equal(t, int64(before.Balance)+topKillAmount, d.Balance)
			code = d.TopUp.Code
			c = k.topUp(t, api.PathTopUpCheck)
			require.Equal(t, api.TopUpNone, c.TopUp.State, "nothing left to offer: %+v", c.TopUp)
		}
		k.lt.synced(t)
		k.remove(t)

		// the card: credited exactly once with this top-up
		after := purseState(t, k.card)
		require.Equal(t, before.Balance+topKillAmount, after.Balance, "credited exactly once")
		require.Equal(t, before.PTC+1, after.PTC)
		u = k.topUpOf(t, tu.ID)
		require.Equal(t, backoffice.TopUpApplied, u.Status)
		require.Equal(t, killSerial, u.AppliedSerial)
		require.Equal(t, after.PTC, u.AppliedPTC)
		require.Equal(t, uint32(topKillAmount), u.AppliedAmount)
		if code != "" {
			require.Equal(t, code, u.AppliedCode, "applied by the apply's record")
		}
		ver, err := lt.bo.Verify(ctx, u.AppliedCode)
		require.NoError(t, err)
		require.True(t, ver.Valid, "the topup record verifies: %+v", ver)
		require.Equal(t, record.ServiceTopUp, ver.Service)
		require.Equal(t, int64(after.Balance), k.moneyAddsUp(t), "the card's balance is the back office's")
	})
	if t.Failed() {
		t.FailNow()
	}
}

// moneyAddsUp checks the back office's purse ledger of the card against
// its top-ups and payments and returns the shadow balance: every row's
// proof verified and counted, one credit row per applied top-up (its code
// and amount), the shadow balance = start + credits − debits, no PTC
// missing or repeated, no alarm.
func (k *topKill) moneyAddsUp(t *testing.T) int64 {
	t.Helper()
	ctx := context.Background()
	view, rows, err := k.lt.bo.Purse(ctx, killSerial, 0)
	require.NoError(t, err)
	credits := map[string]uint32{} // code → amount
	k.credits, k.debits = 0, 0
	for _, r := range rows {
		require.Equal(t, backoffice.ProofVerified, r.Proof, "PTC %d: the card's proof", r.PTC)
		require.True(t, r.Counted, "PTC %d counted", r.PTC)
		if r.Kind == record.PurseCredit {
			k.credits += int64(r.Amount)
			credits[r.Code] = r.Amount
		} else {
			k.debits += int64(r.Amount)
		}
	}
	ts, err := k.lt.bo.TopUps(ctx, backoffice.TopUpFilter{NIP: budiNIP})
	require.NoError(t, err)
	applied := 0
	for _, u := range ts {
		if u.Status != backoffice.TopUpApplied {
			continue
		}
		applied++
		amount, ok := credits[u.AppliedCode]
		require.True(t, ok, "top-up %x: its record %s is a credit row", u.ID, u.AppliedCode)
		require.Equal(t, u.Amount, amount)
	}
	require.Len(t, credits, applied, "one topup record per applied top-up, none without one")
	require.Equal(t, int64(killStartPurse)+k.credits-k.debits, view.ShadowBalance, "start + top-ups − payments = the shadow balance")
	require.Zero(t, view.Repeats)
	require.Empty(t, view.Missing)
	alarms, err := k.lt.store.Alarms(ctx, backoffice.AlarmQuery{Limit: 1000})
	require.NoError(t, err)
	require.Empty(t, alarms, "no alarm (purse counter, proof, balance, topup-replayed, SAM counter)")
	return view.ShadowBalance
}

func (k *topKill) topUpOf(t *testing.T, id [16]byte) backoffice.TopUp {
	t.Helper()
	ts, err := k.lt.bo.TopUps(context.Background(), backoffice.TopUpFilter{NIP: budiNIP})
	require.NoError(t, err)
	for _, u := range ts {
		if u.ID == id {
			return u
		}
	}
	t.Fatalf("top-up %x unknown", id)
	return backoffice.TopUp{}
}

// present puts the card into the card reader and waits until the agent
// has read it.
func (k *topKill) present(t *testing.T) {
	t.Helper()
	require.NoError(t, k.lt.lab.Insert(0, k.card))
	pcsctest.WaitCard(t, pcsctest.Slot0, true, 15*time.Second)
	var r api.Reader
	require.Eventually(t, func() bool {
		r = k.lt.agent.reader(t)
		return r.CardPresent && r.State == api.StateAuthenticated
	}, 20*time.Second, 20*time.Millisecond, "the agent did not read the card: %+v", r)
}

// remove takes the card out (its purse is the test's to read then).
func (k *topKill) remove(t *testing.T) {
	t.Helper()
	require.NoError(t, k.lt.lab.Remove(0))
	pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
}

// auth is the holder's authentication, the finger on the sensor: it
// settles the card's journal and reads its purse.
func (k *topKill) auth(t *testing.T) {
	t.Helper()
	require.NoError(t, k.lt.lab.PlaceFinger(0, cardsim.FingerGenuine))
	st, e := k.lt.agent.call(t, "POST", api.PathAuth, api.AuthRequest{Service: "askes", Operator: "kill-test", WaitSeconds: 10}, nil)
	require.Equal(t, http.StatusOK, st, "%+v", e)
}

// topUp makes an update saldo call (check, apply) for the card reader.
func (k *topKill) topUp(t *testing.T, path string) api.PurseView {
	t.Helper()
	var v api.PurseView
	st, e := k.lt.agent.call(t, "POST", path, api.PurseRequest{Reader: pcsctest.Slot0}, &v)
	require.Equal(t, http.StatusOK, st, "%s: %+v", path, e)
	return v
}

// asyncCall starts an update saldo call; the kill ends its request.
func (k *topKill) asyncCall(t *testing.T, path string) {
	t.Helper()
	k.call = k.lt.postAsync(t, path, api.PurseRequest{Reader: pcsctest.Slot0})
}

// pathGate holds the terminal's next POST to path at the back office when
// armed; release passes it on (the back office answers a caller that may
// be gone) and returns when the back office has answered.
type pathGate struct {
	path    string
	mu      sync.Mutex
	armed   bool
	held    chan struct{}
	decided chan struct{}
	served  chan struct{}
}

func (g *pathGate) arm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed, g.held, g.decided, g.served = true, make(chan struct{}), make(chan struct{}), make(chan struct{})
}

func (g *pathGate) disarm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = false
}

func (g *pathGate) waitHeld(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	held := g.held
	g.mu.Unlock()
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatalf("no POST %s reached the back office", g.path)
	}
}

func (g *pathGate) release() {
	g.mu.Lock()
	d, s := g.decided, g.served
	g.mu.Unlock()
	close(d)
	<-s
}

func (g *pathGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		hold := g.armed && r.Method == http.MethodPost && r.URL.Path == g.path
		var held, decided, served chan struct{}
		if hold {
			g.armed = false
			held, decided, served = g.held, g.decided, g.served
		}
		g.mu.Unlock()
		if !hold {
			next.ServeHTTP(w, r)
			return
		}
		defer close(served)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "body", http.StatusBadRequest)
			return
		}
		close(held)
		<-decided
		r = r.Clone(context.WithoutCancel(r.Context()))
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}
