package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
	"kpe-agent/internal/purse"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/pcsctest"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/outbox"
)

// The kill test's merchant and payment (below ewallet.fingerprint_above:
// no finger), and Budi's purse as the lab image holds it.
const (
	killMerchant   = "kill-test-01"
	killAmount     = 1_000
	killStartPurse = 500_000
)

// killSerial is kpe-budi's card serial.
var killSerial = [8]byte{0, 0, 0, 0, 0, 0, 0x01, 0x01}

// TestPayAgentKilledAtEveryStep kills the agent (SIGKILL) at every step
// of a payment (docs/ewallet.md, "Tests and figures"), as
// TestRenewalAgentKilledAtEveryStep does for a renewal: the real
// kpe-agent binary on configs/lab.yaml with payments on
// (KPE_EWALLET_*), the card lab on pcscd/vpcd, the back office on its
// embedded store with the lab's purse masters. One kpe-budi card runs
// through every step, a payment of Rp 1.000 with a new idempotency key
// each time. The steps, each made exact by a lab hold:
//
//   - request journaled: the SAM's PURSE MAC held, the agent killed, the
//     SAM pulled so the command never reaches it (the journal has the
//     request, no SAM transaction);
//   - SAM PURSE MAC: the same, the SAM then processes it (its answer lost);
//   - every card APDU of the payment up to and including DEBIT, each held
//     and the agent killed, then either dropped (the card pulled: it never
//     got the command) or released (the card processes it, its answer
//     lost);
//   - proof check: the SAM's PURSE PROOF held (the card was debited);
//   - record sealing: the SAM's SIGN RECORD of the payment record held
//     (the signature lost with the agent).
//
// After each kill the agent starts again, the card is presented again,
// and the clerk retries the same idempotency key (after DEBIT, the
// clerk first authenticates the holder for another service, which
// settles the journal). Checked each time: the retry ends done or not
// done; the card was debited at most once, and exactly when done; the
// back office holds exactly one payment row with that merchant reference
// (its record verifies, its card proof verifies, its receipt code the
// answer's) when done and none when not; the money adds up (card balance
// + the ledger's debits = the start, the shadow balance the card's, no
// PTC missing or repeated); no alarm.
func TestPayAgentKilledAtEveryStep(t *testing.T) {
	start := time.Now()
	t.Setenv("KPE_EWALLET_ENABLED", "true")
	t.Setenv("KPE_EWALLET_MERCHANT_ID", killMerchant)
	keys, err := purse.LoadLabKeys(pcsctest.RepoPath("testdata/cards/lab/trust/purse-keys.json"))
	require.NoError(t, err)
	lt := startLabTerminalWith(t, labOptions{purseKeys: keys})
	p := &payKill{lt: lt}
	p.card, err = cardsim.LoadCard(pcsctest.RepoPath("testdata/cards/lab/cards/kpe-budi.json"))
	require.NoError(t, err)
	st := purseState(t, p.card)
	require.Equal(t, uint32(killStartPurse), st.Balance)

	p.step(t, "request journaled", false, func(t *testing.T) {
		// the payment's second READ PURSE is the purse transaction's own,
		// after the journal and before the SAM's PURSE MAC
		require.NoError(t, lt.lab.SetFault(0, cardsim.Fault{HoldAtAPDU: 2, HoldINS: kpe.InsReadPurse}))
		p.payAsync(t)
		p.lt.waitHold(t, 0)
		lt.agent.kill(t)
		require.NoError(t, lt.lab.ReleaseHold(0))
		j := p.lt.purseJournal(t)
		require.NotNil(t, j, "the request is journaled")
		require.Equal(t, outbox.PurseStarted, j.Step)
		require.Zero(t, j.SAMTxn, "no SAM transaction yet")
	})
	p.step(t, "SAM PURSE MAC", false, func(t *testing.T) {
		require.NoError(t, lt.lab.SetFault(1, cardsim.Fault{HoldAtAPDU: 1, HoldINS: sam.InsPurseMAC}))
		p.payAsync(t)
		p.lt.waitHold(t, 1)
		lt.agent.kill(t)
		require.NoError(t, lt.lab.ReleaseHold(1))
		j := p.lt.purseJournal(t)
		require.NotNil(t, j)
		require.Equal(t, outbox.PurseStarted, j.Step, "the SAM's answer died with the agent")
	})
	var seen []string
	for n, debit := 1, false; !debit; n++ {
		require.Less(t, n, 64, "no DEBIT among the payment's APDUs: %v", seen)
		var ins byte
		for _, drop := range []bool{true, false} {
			name := fmt.Sprintf("card APDU %d processed", n)
			if drop {
				name = fmt.Sprintf("card APDU %d dropped", n)
			}
			p.step(t, name, ins == kpe.InsPurseDebit, func(t *testing.T) {
				// held, then on release removed instead of answering (the
				// card never gets it) or processed
				f := cardsim.Fault{HoldAtAPDU: n}
				if drop {
					f.RemoveAtAPDU = n
				}
				require.NoError(t, lt.lab.SetFault(0, f))
				p.payAsync(t)
				cmd := p.lt.waitHold(t, 0)
				ins = cmd[1]
				lt.agent.kill(t)
				if drop {
					// a removal while pcscd still carries the dead
					// agent's transmit can leave vpcd's reader empty for
					// good: pcscd first notices the death
					time.Sleep(time.Second)
				}
				require.NoError(t, lt.lab.ReleaseHold(0))
				if ins == kpe.InsPurseDebit {
					j := p.lt.purseJournal(t)
					require.NotNil(t, j)
					require.Equal(t, outbox.PurseSent, j.Step, "the SAM's transaction journaled before DEBIT")
				}
			})
		}
		seen = append(seen, fmt.Sprintf("%d:%02X", n, ins))
		debit = ins == kpe.InsPurseDebit
	}
	t.Logf("card APDUs of the payment (INS), each held, the agent killed, dropped and processed: %s", strings.Join(seen, " "))
	p.step(t, "proof check", true, func(t *testing.T) {
		require.NoError(t, lt.lab.SetFault(1, cardsim.Fault{HoldAtAPDU: 1, HoldINS: sam.InsPurseProof}))
		p.payAsync(t)
		p.lt.waitHold(t, 1)
		lt.agent.kill(t)
		require.NoError(t, lt.lab.ReleaseHold(1))
		j := p.lt.purseJournal(t)
		require.NotNil(t, j)
		require.Equal(t, outbox.PurseSent, j.Step)
	})
	p.step(t, "record sealing", true, func(t *testing.T) {
		require.NoError(t, lt.lab.SetFault(1, cardsim.Fault{HoldAtAPDU: 1, HoldINS: sam.InsSignRecord}))
		p.payAsync(t)
		p.lt.waitHold(t, 1)
		lt.agent.kill(t)
		require.NoError(t, lt.lab.ReleaseHold(1))
		j := p.lt.purseJournal(t)
		require.NotNil(t, j)
		require.Equal(t, outbox.PurseDone, j.Step, "the card's proof verified, the record not stored")
	})
	st = purseState(t, p.card)
	took := time.Since(start)
	t.Logf("%d kills in %s (with set-up): %d payments done, %d not done; card balance Rp %d + Rp %d paid = Rp %d",
		p.runs, took.Round(time.Millisecond), p.done, p.runs-p.done, st.Balance, p.paid, killStartPurse)
}

// payKill is the state of TestPayAgentKilledAtEveryStep.
type payKill struct {
	lt         *labTerminal
	card       cardsim.Card
	runs, done int
	paid       int64 // the ledger's debits so far
	key, ref   string
	pay        chan struct{} // closed when the payment the kill ended has returned
}

func samActive(h api.Health) bool { return h.SAM != nil && h.SAM.Present && h.SAM.State == "active" }

// step is one run: the card presented, kill (which starts the payment
// and kills the agent at the step), the agent again, the card again, the
// retry with the same key (afterDebit: an authentication first), the
// sync, and the checks.
func (p *payKill) step(t *testing.T, name string, afterDebit bool, kill func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		p.runs++
		lt, a := p.lt, p.lt.agent
		p.key, p.ref = fmt.Sprintf("kill-%02d", p.runs), fmt.Sprintf("KILL-%02d", p.runs)
		before := purseState(t, p.card)
		p.present(t)

		t0 := time.Now()
		kill(t)
		t.Logf("killed %s after the payment began", time.Since(t0).Round(time.Millisecond))
		<-p.pay // the payment's request ended with the agent
		_ = lt.lab.ClearFault(0)
		_ = lt.lab.ClearFault(1)
		// what the retry must answer: no journal entry, a fresh payment
		// (done); journaled without the SAM's transaction, not done; the
		// SAM's transaction journaled, done iff the card took the DEBIT
		var wantDone bool
		switch j := p.lt.purseJournal(t); {
		case j == nil:
			wantDone = true
		case j.Step == outbox.PurseStarted:
			wantDone = false
		default:
			wantDone = purseState(t, p.card).PTC != before.PTC
		}

		// the agent again, the card presented again
		a.restart(t)
		a.waitHealth(t, samActive)
		if st, err := lt.lab.SlotStatus(0); err == nil && st.Inserted {
			require.NoError(t, lt.lab.Remove(0))
		}
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
		require.Eventually(t, func() bool { return !a.reader(t).CardPresent }, 10*time.Second, 20*time.Millisecond, "the agent missed the removal")
		p.present(t)
		if afterDebit {
			// the holder authenticated for another service: the journal is
			// settled from the card's log
			require.NoError(t, lt.lab.PlaceFinger(0, cardsim.FingerGenuine))
			st, e := a.call(t, "POST", api.PathAuth, api.AuthRequest{Service: "askes", Operator: "kill-test", WaitSeconds: 10}, nil)
			require.Equal(t, http.StatusOK, st, "%+v", e)
		}
		var res api.PayResult
		st, e := a.call(t, "POST", api.PathPay, p.request(), &res)
		require.Equal(t, http.StatusOK, st, "the retry: %+v", e)
		require.Contains(t, []string{api.PayDone, api.PayNotDone}, res.Status, "the retry settles the payment: %+v", res)
		// asked again: the same answer, the card not touched
		var again api.PayResult
		st, e = a.call(t, "POST", api.PathPay, p.request(), &again)
		require.Equal(t, http.StatusOK, st, "%+v", e)
		require.Equal(t, res, again)
		p.lt.synced(t)
		require.NoError(t, lt.lab.Remove(0)) // the card's purse is ours to read now
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)

		// the card: debited once iff done, else untouched
		after := purseState(t, p.card)
		done := res.Status == api.PayDone
		require.Equal(t, wantDone, done, "the retry's answer: %+v", res)
		if done {
			p.done++
			require.Equal(t, before.Balance-killAmount, after.Balance, "done: debited once")
			require.Equal(t, before.PTC+1, after.PTC)
			require.NotNil(t, res.Balance)
			require.Equal(t, int64(after.Balance), *res.Balance)
		} else {
			require.Equal(t, before, after, "not done: the card untouched")
		}
		// the back office: one row of this payment iff done, verifying
		ctx := context.Background()
		view, rows, err := lt.bo.Purse(ctx, killSerial, 0)
		if errors.Is(err, backoffice.ErrNotFound) {
			view, err = &backoffice.PurseView{}, nil // no row yet
		}
		require.NoError(t, err)
		var mine []backoffice.PurseRow
		var debits int64
		for _, r := range rows {
			require.Equal(t, backoffice.ProofVerified, r.Proof, "PTC %d: the card's proof", r.PTC)
			require.True(t, r.Counted, "PTC %d counted", r.PTC)
			debits += int64(r.Amount)
			if r.Reference == p.ref {
				mine = append(mine, r)
			}
		}
		if done {
			require.Len(t, mine, 1, "exactly one payment record for the request")
			require.Equal(t, res.Code, mine[0].Code)
			require.Equal(t, killMerchant, mine[0].Merchant)
			require.Equal(t, after.PTC, mine[0].PTC)
			v, err := lt.bo.Verify(ctx, res.Code)
			require.NoError(t, err)
			require.True(t, v.Valid, "the payment record verifies: %+v", v)
			require.Equal(t, "payment", v.Service)
		} else {
			require.Empty(t, mine, "no payment record for a payment not done")
		}
		// the money adds up
		require.Equal(t, int64(killStartPurse), int64(after.Balance)+debits, "card balance + the ledger's debits = the start")
		if len(rows) > 0 {
			require.Equal(t, int64(after.Balance), view.ShadowBalance, "the shadow balance is the card's")
			require.Equal(t, after.PTC, view.LastPTC)
		}
		require.Zero(t, view.Repeats)
		require.Empty(t, view.Missing)
		alarms, err := lt.store.Alarms(ctx, backoffice.AlarmQuery{Limit: 1000})
		require.NoError(t, err)
		require.Empty(t, alarms, "no alarm (purse counter, proof, balance, SAM counter)")
		p.paid = debits
	})
	if t.Failed() {
		t.FailNow()
	}
}

func (p *payKill) request() api.PayRequest {
	return api.PayRequest{Reader: pcsctest.Slot0, Operator: "kill-test", Amount: killAmount, MerchantRef: p.ref, IdempotencyKey: p.key, WaitSeconds: 10}
}

// present puts the card into the card reader and waits until the agent
// has read it.
func (p *payKill) present(t *testing.T) {
	t.Helper()
	require.NoError(t, p.lt.lab.Insert(0, p.card))
	pcsctest.WaitCard(t, pcsctest.Slot0, true, 15*time.Second)
	var r api.Reader
	require.Eventually(t, func() bool {
		r = p.lt.agent.reader(t)
		return r.CardPresent && r.State == api.StateAuthenticated
	}, 20*time.Second, 20*time.Millisecond, "the agent did not read the card: %+v", r)
}

// payAsync starts the clerk's payment; the kill ends its request.
func (p *payKill) payAsync(t *testing.T) {
	t.Helper()
	p.pay = p.lt.postAsync(t, api.PathPay, p.request())
}

// purseDirect sends APDUs to a lab card out of its slot.
type purseDirect struct{ c cardsim.Card }

func (d purseDirect) Transmit(_ context.Context, cmd []byte) ([]byte, error) {
	return d.c.Process(cmd), nil
}

// purseState reads the card's purse (the card out of its slot).
func purseState(t *testing.T, c cardsim.Card) kpe.PurseState {
	t.Helper()
	st, err := kpe.ReadPurse(context.Background(), purseDirect{c}, nil)
	require.NoError(t, err)
	return st
}
