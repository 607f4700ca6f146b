package daemon_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/agent/config"
	"kpe-agent/apdu/kpe"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/pcsctest"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
)

// E-wallet payments through the whole terminal (docs/ewallet.md, part 2):
// the agent on real pcscd with the lab's SAM (holding the purse masters)
// and Budi's KPE (a purse of Rp 500.000), POST /v1/pay with the token.

const (
	payMerchant  = "apotik-sehat-01"
	payFingerAt  = 100_000 // ewallet.fingerprint_above in these tests
	payMax       = 200_000 // ewallet.max_payment in these tests
	budiStartBal = 500_000 // the lab image's balance
)

// newPayRig is the rig with payments on and the SAM in place.
func newPayRig(t testing.TB) *rig { return newPayRigWith(t, rigOptions{}) }

func newPayRigWith(t testing.TB, o rigOptions) *rig {
	r := newRigWith(t, o)
	r.setConf(func(c *config.Config) {
		c.EWallet = config.EWallet{Enabled: true, MerchantID: payMerchant, MerchantName: "Apotik Sehat", MaxPayment: payMax,
			FingerprintAbove: payFingerAt, MaxBalance: 20_000_000, TopUpTimeout: 10 * time.Second}
	})
	r.insert(1, "sam.json")
	r.waitHealth(samReady)
	return r
}

// direct sends APDUs to a lab card in memory, past pcscd (the card's lock
// is taken by Process): how a test reads the card's purse while the agent
// is idle.
type direct struct{ c cardsim.Card }

func (d direct) Transmit(_ context.Context, cmd []byte) ([]byte, error) { return d.c.Process(cmd), nil }

// purseOf reads the card's purse and log.
func purseOf(t *testing.T, c cardsim.Card) (kpe.PurseState, []kpe.PurseLogEntry) {
	t.Helper()
	st, err := kpe.ReadPurse(context.Background(), direct{c}, nil)
	require.NoError(t, err)
	log, err := kpe.ReadPurseLog(context.Background(), direct{c}, nil)
	require.NoError(t, err)
	return st, log
}

func (r *rig) pay(t *testing.T, req api.PayRequest) (api.PayResult, int, api.Error) {
	t.Helper()
	if req.Operator == "" {
		req.Operator = "kasir-01"
	}
	var res api.PayResult
	status, e := r.call("POST", api.PathPay, req, &res)
	return res, status, e
}

func (r *rig) payStatus(t *testing.T, key string) (api.PayResult, int, api.Error) {
	t.Helper()
	var res api.PayResult
	status, e := r.call("POST", api.PathPayStatus, api.PayStatusRequest{IdempotencyKey: key}, &res)
	return res, status, e
}

// payRecords are the outbox's payment records, oldest first.
func (r *rig) payRecords(t *testing.T) []*record.Record {
	t.Helper()
	items, err := r.ob.List(0, 0)
	require.NoError(t, err)
	var out []*record.Record
	for _, it := range items {
		rec, err := record.Decode(it.Encoded)
		require.NoError(t, err)
		if rec.Service == record.ServicePayment {
			out = append(out, rec)
		}
	}
	slices.SortFunc(out, func(a, b *record.Record) int { return int(a.Counter) - int(b.Counter) })
	return out
}

// codeOf is a record's receipt code.
func codeOf(t *testing.T, rec *record.Record) string {
	t.Helper()
	h, err := rec.Hash()
	require.NoError(t, err)
	return record.CodeOf(h).String()
}

// checkPayRecord checks rec against the card's log entry e and the
// request: a SAM-signed payment record of Budi's card whose proof is the
// card's.
func checkPayRecord(t *testing.T, rec *record.Record, e kpe.PurseLogEntry, amount uint32, ref string, resolved bool) {
	t.Helper()
	require.NotNil(t, rec.Purse)
	p := rec.Purse
	assert.Equal(t, record.VersionPurse, int(rec.Version))
	assert.Equal(t, record.SignerSAM, rec.Signer)
	assert.Equal(t, budiSerial[:], rec.CardSerial)
	assert.Equal(t, budiNIP, rec.Subject)
	assert.Equal(t, record.PurseDebit, p.Kind)
	assert.Equal(t, amount, p.Amount)
	assert.Equal(t, e.Balance, p.BalanceAfter)
	assert.Equal(t, e.PTC, p.PTC)
	assert.Equal(t, e.SAMTxn, p.SAMTxn)
	assert.Equal(t, e.Time, p.TxnTime)
	assert.Equal(t, e.MAC, p.Proof)
	assert.Equal(t, payMerchant, p.Merchant)
	assert.Equal(t, ref, p.Reference)
	assert.Equal(t, resolved, p.Resolved)
	assert.Equal(t, record.Pass, rec.CardAuth.Outcome)
	assert.Equal(t, record.Pass, rec.IssuerSig.Outcome)
	assert.NoError(t, rec.Validate())
}

// TestPayEndToEnd: a payment, its retry, the limits at their edges, the
// fingerprint threshold at its edge, insufficient funds, and cards
// without a purse.
func TestPayEndToEnd(t *testing.T) {
	r := newPayRig(t)
	card := freshBudi(t)
	r.insertCard(t, card)
	require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
	balance := uint32(budiStartBal)
	st, log := purseOf(t, card)
	require.Equal(t, balance, st.Balance)
	require.Empty(t, log)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs := r.events(ctx)

	var first api.PayResult
	t.Run("payment", func(t *testing.T) {
		res, status, e := r.pay(t, api.PayRequest{Amount: 25_000, MerchantRef: "INV-0001", IdempotencyKey: "pay-e2e-1"})
		require.Equal(t, http.StatusOK, status, "%+v", e)
		require.Equal(t, api.PayDone, res.Status, "%+v", res)
		balance -= 25_000
		require.NotNil(t, res.Balance)
		assert.Equal(t, int64(balance), *res.Balance)
		assert.Equal(t, int64(25_000), res.Amount)
		assert.Equal(t, "Pembayaran berhasil dan tercatat. Berikan kode struk kepada pemegang kartu.", res.Message)
		_, err := record.ParseCode(res.Code)
		require.NoError(t, err)
		// the card's balance went down by the amount, its log holds it
		st, log := purseOf(t, card)
		assert.Equal(t, balance, st.Balance)
		assert.Equal(t, uint32(1), st.PTC)
		require.Len(t, log, 1)
		// the record: signed by the SAM, the card's proof, the receipt code
		recs := r.payRecords(t)
		require.Len(t, recs, 1)
		checkPayRecord(t, recs[0], log[0], 25_000, "INV-0001", false)
		assert.Equal(t, res.Code, codeOf(t, recs[0]))
		// 25.000 is not above the threshold: no fingerprint was asked
		assert.Equal(t, record.Skipped, recs[0].Fingerprint.Outcome)
		// the request book, the journal settled
		b, err := r.ob.PurseRequest(recs[0].Purse.Request)
		require.NoError(t, err)
		require.NotNil(t, b)
		assert.Equal(t, outbox.PurseRequestDone, b.Status)
		assert.Equal(t, res.Code, b.Code)
		j, err := r.ob.PurseJournals()
		require.NoError(t, err)
		assert.Empty(t, j)
		first = res
		// the event stream told of the debit and its end
		var states []string
		timeout := time.After(5 * time.Second)
		for !slices.Contains(states, api.PayDone) {
			select {
			case ev := <-evs:
				if ev.Type == api.EventPayment {
					states = append(states, ev.State)
					if ev.State == api.PayDone {
						assert.Equal(t, res.Code, ev.Code)
						assert.Equal(t, "payment-done", ev.MessageCode)
					}
				}
			case <-timeout:
				t.Fatalf("payment events: %v", states)
			}
		}
		assert.Equal(t, []string{api.PayPaying, api.PayDone}, states)
		// the back office takes the record and its signature verifies
		r.syncNow(t)
		vd, err := r.svc.Verify(context.Background(), res.Code)
		require.NoError(t, err)
		assert.True(t, vd.Valid, "%+v", vd)
		assert.Equal(t, record.ServicePayment, vd.Service)
	})

	t.Run("retry", func(t *testing.T) {
		n := card.count()
		// the same key again: the book's answer, the card not touched
		res, status, e := r.pay(t, api.PayRequest{Amount: 25_000, MerchantRef: "INV-0001", IdempotencyKey: "pay-e2e-1"})
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Equal(t, first, res)
		assert.Empty(t, card.since(n), "a retry sends the card nothing")
		res, status, e = r.payStatus(t, "pay-e2e-1")
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Equal(t, first, res)
		st, _ := purseOf(t, card)
		assert.Equal(t, balance, st.Balance)
		assert.Len(t, r.payRecords(t), 1)
		// an unknown key
		_, status, e = r.payStatus(t, "never-used")
		assert.Equal(t, http.StatusNotFound, status)
		assert.Equal(t, "not-available", e.Code)
	})

	t.Run("limits", func(t *testing.T) {
		for _, c := range []struct {
			amount int64
			status int
			code   string
		}{{0, http.StatusBadRequest, "amount-invalid"}, {-5, http.StatusBadRequest, "amount-invalid"},
			{payMax + 1, http.StatusUnprocessableEntity, "amount-too-large"}} {
			_, status, e := r.pay(t, api.PayRequest{Amount: c.amount, IdempotencyKey: "limit"})
			assert.Equal(t, c.status, status, "amount %d", c.amount)
			assert.Equal(t, c.code, e.Code, "amount %d", c.amount)
		}
		for _, key := range []string{"", string(make([]byte, 65)), "tab\tkey", "é"} {
			_, status, e := r.pay(t, api.PayRequest{Amount: 1, IdempotencyKey: key})
			assert.Equal(t, http.StatusBadRequest, status, "key %q", key)
			assert.Equal(t, api.CodeBadRequest, e.Code, "key %q", key)
		}
		_, status, e := r.pay(t, api.PayRequest{Amount: 1, IdempotencyKey: "k", MerchantRef: "bad\x01ref"})
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, api.CodeBadRequest, e.Code)
		// the largest payment is taken (above the threshold: the finger)
		res, status, e := r.pay(t, api.PayRequest{Amount: payMax, IdempotencyKey: "pay-e2e-max"})
		require.Equal(t, http.StatusOK, status, "%+v", e)
		require.Equal(t, api.PayDone, res.Status, "%+v", res)
		balance -= payMax
		// 1 rupiah is taken
		res, status, e = r.pay(t, api.PayRequest{Amount: 1, IdempotencyKey: "pay-e2e-one"})
		require.Equal(t, http.StatusOK, status, "%+v", e)
		require.Equal(t, api.PayDone, res.Status, "%+v", res)
		balance--
		st, _ := purseOf(t, card)
		assert.Equal(t, balance, st.Balance)
		// payments off
		r.setConf(func(c *config.Config) { c.EWallet.Enabled = false })
		_, status, e = r.pay(t, api.PayRequest{Amount: 1, IdempotencyKey: "off"})
		r.setConf(func(c *config.Config) { c.EWallet.Enabled = true })
		assert.Equal(t, http.StatusConflict, status)
		assert.Equal(t, "ewallet-disabled", e.Code)
	})

	t.Run("fingerprint threshold", func(t *testing.T) {
		// an impostor's finger: the threshold itself needs none, one rupiah
		// more needs the holder's
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerImpostor))
		defer r.lab.PlaceFinger(0, cardsim.FingerGenuine)
		n := len(r.payRecords(t))
		res, status, e := r.pay(t, api.PayRequest{Amount: payFingerAt, IdempotencyKey: "pay-e2e-at"})
		require.Equal(t, http.StatusOK, status, "%+v", e)
		require.Equal(t, api.PayDone, res.Status)
		balance -= payFingerAt
		recs := r.payRecords(t)
		require.Len(t, recs, n+1)
		assert.Equal(t, record.Skipped, recs[n].Fingerprint.Outcome)
		_, status, e = r.pay(t, api.PayRequest{Amount: payFingerAt + 1, IdempotencyKey: "pay-e2e-above"})
		assert.Equal(t, http.StatusUnprocessableEntity, status)
		assert.Equal(t, "finger-no-match", e.Code)
		st, _ := purseOf(t, card)
		assert.Equal(t, balance, st.Balance, "no debit without the holder's finger")
		// the holder's finger: taken, the record says the finger matched
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		res, status, e = r.pay(t, api.PayRequest{Amount: payFingerAt + 1, IdempotencyKey: "pay-e2e-above-2"})
		require.Equal(t, http.StatusOK, status, "%+v", e)
		require.Equal(t, api.PayDone, res.Status)
		balance -= payFingerAt + 1
		recs = r.payRecords(t)
		require.Len(t, recs, n+2)
		assert.Equal(t, record.Pass, recs[n+1].Fingerprint.Outcome)
	})

	t.Run("insufficient funds", func(t *testing.T) {
		st, log := purseOf(t, card)
		require.Equal(t, balance, st.Balance)
		n := card.count()
		_, status, e := r.pay(t, api.PayRequest{Amount: int64(balance) + 1, IdempotencyKey: "pay-e2e-poor"})
		assert.Equal(t, http.StatusUnprocessableEntity, status)
		assert.Equal(t, "insufficient-funds", e.Code)
		assert.NotContains(t, card.since(n), kpe.InsPurseDebit, "no DEBIT was sent")
		st2, log2 := purseOf(t, card)
		assert.Equal(t, st, st2)
		assert.Equal(t, log, log2)
		// the whole balance is taken
		res, status, e := r.pay(t, api.PayRequest{Amount: int64(balance), IdempotencyKey: "pay-e2e-all"})
		require.Equal(t, http.StatusOK, status, "%+v", e)
		require.Equal(t, api.PayDone, res.Status)
		assert.Equal(t, int64(0), *res.Balance)
		balance = 0
	})

	t.Run("no purse", func(t *testing.T) {
		r.pull(t)
		for _, img := range []string{"kpe-nip-mismatch.json", "ktpel-siti.json"} {
			r.insert(0, img)
			r.waitReader(t, pcsctest.Slot0, func(rd api.Reader) bool { return rd.CardPresent && rd.State == api.StateAuthenticated })
			_, status, e := r.pay(t, api.PayRequest{Amount: 1_000, IdempotencyKey: "pay-e2e-" + img})
			assert.Equal(t, http.StatusUnprocessableEntity, status, img)
			assert.Equal(t, "no-purse", e.Code, img)
			r.pull(t)
		}
	})

	// the money adds up: every record's amount left the card
	var sum uint32
	for _, rec := range r.payRecords(t) {
		sum += rec.Purse.Amount
	}
	st, log = purseOf(t, card)
	assert.Equal(t, uint32(budiStartBal), st.Balance+sum)
	assert.Equal(t, balance, st.Balance)
	assert.Equal(t, uint32(len(r.payRecords(t))), st.PTC)
	assert.Len(t, log, len(r.payRecords(t)))
}

// TestPayTear pulls the card at the DEBIT of a payment: after the card
// processed it (its answer lost) and before it reached the card, and just
// before it (the card's READ PURSE). The agent answers pending (or not
// done when the DEBIT never went), and settles the payment at the card's
// next insertion from the card's log: through any authentication, and
// through a retry of the payment with the same key. Journal entries
// without the SAM's transaction, and of another SAM, are settled or kept
// as they must be. Afterwards the money adds up.
func TestPayTear(t *testing.T) {
	r := newPayRig(t)
	card := freshBudi(t)
	r.insertCard(t, card)
	require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
	balance := uint32(budiStartBal)

	// a dry run counts the APDUs of one payment
	before, mark := r.slotAPDUs(t), card.count()
	res, status, e := r.pay(t, api.PayRequest{Amount: 10_000, IdempotencyKey: "tear-dry"})
	require.Equal(t, http.StatusOK, status, "%+v", e)
	require.Equal(t, api.PayDone, res.Status)
	balance -= 10_000
	ins := card.since(mark)
	require.Len(t, ins, r.slotAPDUs(t)-before, "every APDU of the payment reached the card")
	debitAt := slices.Index(ins, kpe.InsPurseDebit) + 1
	require.Positive(t, debitAt)
	require.Equal(t, kpe.InsReadPurse, ins[debitAt-2], "READ PURSE comes just before DEBIT")
	t.Logf("one payment sends %d APDUs to the card (DEBIT is #%d)", len(ins), debitAt)

	// torn pays with fault f armed and puts the card back once the agent
	// has seen it go
	torn := func(t *testing.T, f cardsim.Fault, key string, amount int64) api.PayResult {
		t.Helper()
		require.NoError(t, r.lab.SetFault(0, f))
		res, status, e := r.pay(t, api.PayRequest{Amount: amount, MerchantRef: "INV-" + key, IdempotencyKey: key})
		require.Equal(t, http.StatusOK, status, "%+v", e)
		require.NoError(t, r.lab.ClearFault(0))
		r.faultRemoved(t)
		return res
	}
	journal := func(t *testing.T) *outbox.PurseJournal {
		t.Helper()
		j, err := r.ob.PurseJournalOf(budiSerial)
		require.NoError(t, err)
		return j
	}

	t.Run("answer lost after DEBIT, settled by an authentication", func(t *testing.T) {
		res := torn(t, cardsim.Fault{AnswerLostAtAPDU: debitAt}, "tear-after", 20_000)
		assert.Equal(t, api.PayPending, res.Status, "%+v", res)
		assert.Equal(t, "card-removed", res.Reason)
		assert.Equal(t, "Kartu dicabut saat didebit: masukkan kembali kartu untuk mengetahui hasilnya.", res.Message)
		balance -= 20_000
		st, log := purseOf(t, card)
		require.Equal(t, balance, st.Balance, "the card took the DEBIT")
		j := journal(t)
		require.NotNil(t, j)
		assert.Equal(t, outbox.PurseSent, j.Step)
		assert.Equal(t, log[0].SAMTxn, j.SAMTxn)
		n := len(r.payRecords(t))
		// asked while the card is away: still pending, nothing debited
		got, status, e := r.payStatus(t, "tear-after")
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Equal(t, api.PayPending, got.Status)
		// the card back; the clerk authenticates it for another service
		r.insertCard(t, card)
		var auth api.AuthResult
		status, e = r.call("POST", api.PathAuth, api.AuthRequest{Service: "askes", Operator: "clerk-01"}, &auth)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Nil(t, journal(t), "settled")
		recs := r.payRecords(t)
		require.Len(t, recs, n+1)
		checkPayRecord(t, recs[n], log[0], 20_000, "INV-tear-after", true)
		// the book answers done with the record's code, without a new debit
		got, status, e = r.pay(t, api.PayRequest{Amount: 20_000, MerchantRef: "INV-tear-after", IdempotencyKey: "tear-after"})
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Equal(t, api.PayDone, got.Status, "%+v", got)
		assert.Equal(t, codeOf(t, recs[n]), got.Code)
		assert.Equal(t, int64(balance), *got.Balance)
		st, _ = purseOf(t, card)
		assert.Equal(t, balance, st.Balance, "debited once")
	})

	t.Run("removed at DEBIT, settled by the payment's retry", func(t *testing.T) {
		n := len(r.payRecords(t))
		res := torn(t, cardsim.Fault{RemoveAtAPDU: debitAt}, "tear-before", 30_000)
		assert.Equal(t, api.PayPending, res.Status, "%+v", res)
		st, _ := purseOf(t, card)
		require.Equal(t, balance, st.Balance, "the DEBIT never reached the card")
		require.NotNil(t, journal(t))
		r.insertCard(t, card)
		// the clerk retries with the same key: resolved from the log, not
		// debited
		got, status, e := r.pay(t, api.PayRequest{Amount: 30_000, MerchantRef: "INV-tear-before", IdempotencyKey: "tear-before"})
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Equal(t, api.PayNotDone, got.Status, "%+v", got)
		assert.Equal(t, "not-in-log", got.Reason)
		assert.Nil(t, journal(t))
		st, _ = purseOf(t, card)
		assert.Equal(t, balance, st.Balance)
		assert.Len(t, r.payRecords(t), n)
		// the same key stays not done; a new key pays
		got, _, _ = r.pay(t, api.PayRequest{Amount: 30_000, MerchantRef: "INV-tear-before", IdempotencyKey: "tear-before"})
		assert.Equal(t, api.PayNotDone, got.Status)
		got, status, e = r.pay(t, api.PayRequest{Amount: 30_000, IdempotencyKey: "tear-before-2"})
		require.Equal(t, http.StatusOK, status, "%+v", e)
		require.Equal(t, api.PayDone, got.Status)
		balance -= 30_000
	})

	t.Run("removed before DEBIT", func(t *testing.T) {
		n := len(r.payRecords(t))
		res := torn(t, cardsim.Fault{RemoveAtAPDU: debitAt - 1}, "tear-read", 5_000)
		assert.Equal(t, api.PayNotDone, res.Status, "%+v", res)
		assert.Equal(t, "not-sent", res.Reason)
		assert.Nil(t, journal(t))
		r.insertCard(t, card)
		st, _ := purseOf(t, card)
		assert.Equal(t, balance, st.Balance)
		assert.Len(t, r.payRecords(t), n)
	})

	t.Run("journaled before PURSE MAC", func(t *testing.T) {
		// a process killed between the journal and the SAM's answer
		req := [16]byte{1, 2, 3}
		require.NoError(t, r.ob.StartPurse(outbox.PurseJournal{Serial: budiSerial, Request: req, Kind: record.PurseDebit,
			Step: outbox.PurseStarted, Amount: 7_000, Merchant: payMerchant}))
		status, e := r.call("POST", api.PathAuth, api.AuthRequest{Service: "askes", Operator: "clerk-01"}, nil)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Nil(t, journal(t))
		b, err := r.ob.PurseRequest(req)
		require.NoError(t, err)
		assert.Equal(t, outbox.PurseRequestNotDone, b.Status)
		assert.Equal(t, "not-sent", b.Reason)
	})

	t.Run("journaled by another SAM", func(t *testing.T) {
		req := [16]byte{4, 5, 6}
		require.NoError(t, r.ob.StartPurse(outbox.PurseJournal{Serial: budiSerial, Request: req, Kind: record.PurseDebit,
			Step: outbox.PurseSent, Amount: 7_000, SAMSerial: [8]byte{9, 9, 9, 9, 9, 9, 9, 9}, SAMTxn: 3, TxnTime: time.Now().UnixMilli(), Merchant: payMerchant}))
		// this SAM cannot tell: the entry stays, and no new payment of the
		// card is taken meanwhile
		_, status, e := r.pay(t, api.PayRequest{Amount: 1_000, IdempotencyKey: "tear-other-sam"})
		assert.Equal(t, http.StatusConflict, status)
		assert.Equal(t, "purse-pending", e.Code)
		require.NotNil(t, journal(t))
		b, err := r.ob.PurseRequest(req)
		require.NoError(t, err)
		assert.Equal(t, outbox.PurseRequestPending, b.Status)
		require.NoError(t, r.ob.SettlePurseNotDone(budiSerial, req, "test"))
	})

	// the money adds up
	var sum uint32
	recs := r.payRecords(t)
	for _, rec := range recs {
		sum += rec.Purse.Amount
	}
	st, log := purseOf(t, card)
	assert.Equal(t, uint32(budiStartBal), st.Balance+sum)
	assert.Equal(t, balance, st.Balance)
	assert.Equal(t, uint32(len(recs)), st.PTC)
	assert.Len(t, log, len(recs))
}

// TestPayTearAtEveryAPDU pulls the card at every APDU of a payment, once
// before the card gets the command (RemoveAtAPDU) and once after it
// processed it (AnswerLostAtAPDU), and puts it back. The clerk then asks
// again with the same key (POST /v1/pay: answered from the book, a
// pending one settled from the card's log, one the book does not know
// taken afresh). Every payment ends done or not done, none pending, and
// the money adds up: the card's balance went down by exactly the amounts
// of the payment records, one record per payment done, each request done
// at most once. Then the outbox is synced to the back office on
// PostgreSQL (checkMoney): card balance + the ledger's debits = the start
// balance, the shadow balance is the card's, every PTC once with its proof
// verified, no purse alarm, and the merchant's settlement pays exactly the
// payment records.
func TestPayTearAtEveryAPDU(t *testing.T) {
	r := newPayRig(t)
	card := freshBudi(t)
	r.insertCard(t, card)
	require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))

	mark := card.count()
	res, status, e := r.pay(t, api.PayRequest{Amount: 1_000, IdempotencyKey: "sweep-dry"})
	require.Equal(t, http.StatusOK, status, "%+v", e)
	require.Equal(t, api.PayDone, res.Status)
	n := len(card.since(mark))
	require.Positive(t, n)
	done := map[string]bool{"sweep-dry": true}

	run := func(t *testing.T, key string, f cardsim.Fault) {
		require.NoError(t, r.lab.SetFault(0, f))
		res, status, e := r.pay(t, api.PayRequest{Amount: 1_000, IdempotencyKey: key})
		require.NoError(t, r.lab.ClearFault(0))
		if status == http.StatusOK {
			require.Contains(t, []string{api.PayDone, api.PayNotDone, api.PayPending}, res.Status)
		} else {
			// the card left before anything was journaled
			assert.Equal(t, "card-removed", e.Code, "%+v", e)
		}
		r.faultRemoved(t)
		r.insertCard(t, card)
		again, status, e := r.pay(t, api.PayRequest{Amount: 1_000, IdempotencyKey: key})
		require.Equal(t, http.StatusOK, status, "%+v", e)
		require.Contains(t, []string{api.PayDone, api.PayNotDone}, again.Status, "settled: %+v", again)
		if res.Status == api.PayDone || res.Status == api.PayNotDone {
			assert.Equal(t, res.Status, again.Status, "the book's answer")
		}
		done[key] = again.Status == api.PayDone
		j, err := r.ob.PurseJournals()
		require.NoError(t, err)
		assert.Empty(t, j)
	}
	for pos := 1; pos <= n; pos++ {
		for _, c := range []struct {
			name string
			f    cardsim.Fault
		}{{"remove", cardsim.Fault{RemoveAtAPDU: pos}}, {"answer-lost", cardsim.Fault{AnswerLostAtAPDU: pos}}} {
			key := fmt.Sprintf("sweep-%s-%02d", c.name, pos)
			t.Run(key, func(t *testing.T) { run(t, key, c.f) })
		}
	}

	// the money adds up
	recs := r.payRecords(t)
	var sum uint32
	seen := map[[16]byte]bool{}
	for _, rec := range recs {
		sum += rec.Purse.Amount
		assert.False(t, seen[rec.Purse.Request], "one record per request")
		seen[rec.Purse.Request] = true
	}
	want := 0
	for key, ok := range done {
		if ok {
			want++
			assert.True(t, seen[payRequestIDOf(key)], "%s done has its record", key)
		}
	}
	assert.Len(t, recs, want)
	st, log := purseOf(t, card)
	assert.Equal(t, uint32(budiStartBal), st.Balance+sum)
	assert.Equal(t, uint32(len(recs)), st.PTC, "one card transaction per record")
	if len(log) < kpe.PurseLogSize {
		assert.Len(t, log, len(recs))
	}
	t.Logf("%d tears: %d payments done, %d not done", 2*n, want-1, 2*n+1-want)
	// and end to end: the outbox synced to the back office on PostgreSQL,
	// its ledger, shadow balance and settlement agree with the card
	rows := r.checkMoney(t, card, budiStartBal)
	t.Logf("back office: %d ledger rows, every proof verified; the settlement pays Rp %d", len(rows), budiStartBal-st.Balance)
}

// payRequestIDOf is the request id of a payment key at the rig's terminal.
func payRequestIDOf(key string) [16]byte {
	h := sha256.Sum256([]byte("KPE-PAY\x00" + terminal + "\x00" + key))
	return [16]byte(h[:16])
}

// TestPayStatusAfterDebit: the card takes the DEBIT but the terminal gets
// a status word (a GET RESPONSE that fails after 61xx, a reader's error;
// with 6Cxx the agent re-sends the DEBIT, which the card refuses since
// its PTC moved). The agent reads the card's log and ends the payment
// done with a resolved record, never not done with the card debited; a
// refusal the log confirms ends not done with the card's reason.
func TestPayStatusAfterDebit(t *testing.T) {
	r := newPayRig(t)
	card := freshBudi(t)
	r.insertCard(t, card)
	require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
	balance := uint32(budiStartBal)
	mark := card.count()
	res, status, e := r.pay(t, api.PayRequest{Amount: 1_000, IdempotencyKey: "sw-dry"})
	require.Equal(t, http.StatusOK, status, "%+v", e)
	require.Equal(t, api.PayDone, res.Status)
	balance -= 1_000
	ins := card.since(mark)
	debitAt := slices.Index(ins, kpe.InsPurseDebit) + 1
	require.Positive(t, debitAt)

	for _, sw := range []uint16{0x6985, 0x6982, 0x6F00, 0x6C10} {
		key := fmt.Sprintf("sw-%04X", sw)
		t.Run(key, func(t *testing.T) {
			n := len(r.payRecords(t))
			require.NoError(t, r.lab.SetFault(0, cardsim.Fault{StatusAtAPDU: debitAt, Status: sw}))
			res, status, e := r.pay(t, api.PayRequest{Amount: 2_000, MerchantRef: "INV-" + key, IdempotencyKey: key})
			require.NoError(t, r.lab.ClearFault(0))
			require.Equal(t, http.StatusOK, status, "%+v", e)
			balance -= 2_000
			st, log := purseOf(t, card)
			require.Equal(t, balance, st.Balance, "the card took the DEBIT")
			assert.Equal(t, api.PayDone, res.Status, "%+v", res)
			require.NotNil(t, res.Balance)
			assert.Equal(t, int64(balance), *res.Balance)
			recs := r.payRecords(t)
			require.Len(t, recs, n+1)
			checkPayRecord(t, recs[n], log[0], 2_000, "INV-"+key, true)
			assert.Equal(t, codeOf(t, recs[n]), res.Code)
			j, err := r.ob.PurseJournals()
			require.NoError(t, err)
			assert.Empty(t, j)
		})
	}

	t.Run("a log entry at another PTC is not the journaled one", func(t *testing.T) {
		// a journal entry naming the SAM's transaction of the card's last
		// log entry, but journaled at that entry's own PTC (the entry
		// would be at PTC+1): it must not be settled from that entry
		_, log := purseOf(t, card)
		e := log[0]
		req := [16]byte{7, 7, 7}
		require.NoError(t, r.ob.StartPurse(outbox.PurseJournal{Serial: budiSerial, Request: req, Kind: record.PurseDebit, Step: outbox.PurseSent,
			Amount: e.Amount, PTC: e.PTC, SAMSerial: e.SAMSerial, SAMTxn: e.SAMTxn, TxnTime: e.Time, Merchant: payMerchant}))
		n := len(r.payRecords(t))
		status, er := r.call("POST", api.PathAuth, api.AuthRequest{Service: "askes", Operator: "clerk-01"}, nil)
		require.Equal(t, http.StatusOK, status, "%+v", er)
		assert.Len(t, r.payRecords(t), n, "no second record of the card's transaction")
		j, err := r.ob.PurseJournalOf(budiSerial)
		require.NoError(t, err)
		require.NotNil(t, j, "left to the back office")
		b, err := r.ob.PurseRequest(req)
		require.NoError(t, err)
		assert.Equal(t, outbox.PurseRequestPending, b.Status)
		require.NoError(t, r.ob.SettlePurseNotDone(budiSerial, req, "test"))
	})
}

// TestPayOutboxFull: with the back office away and outbox.max_records 2,
// a payment that would take the outbox past its limit is refused before
// anything is journaled or debited (outbox-full), while the record of a
// torn payment settled from the card's log is stored past the limit: the
// money already moved.
func TestPayOutboxFull(t *testing.T) {
	r := newPayRigWith(t, rigOptions{outbox: outbox.Options{MaxRecords: 2},
		wrapTerminal: func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
		}})
	card := freshBudi(t)
	r.insertCard(t, card)
	require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
	mark := card.count()
	res, status, e := r.pay(t, api.PayRequest{Amount: 1_000, IdempotencyKey: "full-1"})
	require.Equal(t, http.StatusOK, status, "%+v", e)
	require.Equal(t, api.PayDone, res.Status)
	debitAt := slices.Index(card.since(mark), kpe.InsPurseDebit) + 1
	require.Positive(t, debitAt)

	// torn: the card takes the DEBIT, its answer is lost
	require.NoError(t, r.lab.SetFault(0, cardsim.Fault{AnswerLostAtAPDU: debitAt}))
	res, status, e = r.pay(t, api.PayRequest{Amount: 2_000, IdempotencyKey: "full-torn"})
	require.NoError(t, r.lab.ClearFault(0))
	require.Equal(t, http.StatusOK, status, "%+v", e)
	require.Equal(t, api.PayPending, res.Status)
	r.faultRemoved(t)

	// another card's authentication fills the outbox
	r.insert(0, "ktpel-siti.json")
	status, e = r.call("POST", api.PathAuth, api.AuthRequest{Service: "kiosk", Operator: "clerk-01", WaitSeconds: 10}, nil)
	require.Equal(t, http.StatusOK, status, "%+v", e)
	require.NoError(t, r.lab.Remove(0))
	pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
	st, err := r.ob.Stats()
	require.NoError(t, err)
	require.Equal(t, 2, st.Unsynced, "the back office takes nothing")
	require.ErrorIs(t, r.ob.Room(), outbox.ErrFull)

	// the torn payment is settled and recorded past the limit
	r.insertCard(t, card)
	got, status, e := r.payStatus(t, "full-torn")
	require.Equal(t, http.StatusOK, status, "%+v", e)
	assert.Equal(t, api.PayDone, got.Status, "%+v", got)
	assert.Len(t, r.payRecords(t), 2)
	purse, _ := purseOf(t, card)
	require.Equal(t, uint32(budiStartBal-3_000), purse.Balance)

	// a new payment is refused before anything moves
	_, status, e = r.pay(t, api.PayRequest{Amount: 500, IdempotencyKey: "full-3"})
	assert.Equal(t, http.StatusInsufficientStorage, status)
	assert.Equal(t, "outbox-full", e.Code, "%+v", e)
	after, _ := purseOf(t, card)
	assert.Equal(t, purse, after, "nothing debited")
	b, err := r.ob.PurseRequest(payRequestIDOf("full-3"))
	require.NoError(t, err)
	assert.Nil(t, b, "nothing journaled")
	j, err := r.ob.PurseJournals()
	require.NoError(t, err)
	assert.Empty(t, j)
}

// TestPayKeysAndEarlierPayment: a known key sent with another amount or
// merchant reference is refused (idempotency-key-reused) and debits
// nothing; a payment asked about while its DEBIT runs is pending
// in-progress, not card-removed; a new payment that settles the card's
// earlier torn payment as done debits nothing in the same call
// (earlier-payment-settled).
func TestPayKeysAndEarlierPayment(t *testing.T) {
	r := newPayRig(t)
	card := freshBudi(t)
	r.insertCard(t, card)
	require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
	mark := card.count()
	res, status, e := r.pay(t, api.PayRequest{Amount: 1_000, MerchantRef: "INV-A", IdempotencyKey: "reuse-1"})
	require.Equal(t, http.StatusOK, status, "%+v", e)
	require.Equal(t, api.PayDone, res.Status)
	debitAt := slices.Index(card.since(mark), kpe.InsPurseDebit) + 1
	require.Positive(t, debitAt)
	balance := uint32(budiStartBal - 1_000)

	t.Run("a key reused with other details", func(t *testing.T) {
		for _, req := range []api.PayRequest{{Amount: 2_000, MerchantRef: "INV-A"}, {Amount: 1_000, MerchantRef: "INV-B"}, {Amount: 1_000}} {
			req.IdempotencyKey = "reuse-1"
			_, status, e := r.pay(t, req)
			assert.Equal(t, http.StatusConflict, status, "%+v", req)
			assert.Equal(t, "idempotency-key-reused", e.Code, "%+v", req)
		}
		got, status, e := r.pay(t, api.PayRequest{Amount: 1_000, MerchantRef: "INV-A", IdempotencyKey: "reuse-1"})
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Equal(t, res.Code, got.Code, "the same request: the book's answer")
		st, _ := purseOf(t, card)
		assert.Equal(t, balance, st.Balance, "debited once")
	})

	t.Run("asked while the DEBIT runs", func(t *testing.T) {
		require.NoError(t, r.lab.SetFault(0, cardsim.Fault{HoldAtAPDU: 1, HoldINS: kpe.InsPurseDebit}))
		done := make(chan api.PayResult, 1)
		go func() {
			res, _, _ := r.pay(t, api.PayRequest{Amount: 3_000, IdempotencyKey: "hold-1"})
			done <- res
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_, err := r.lab.WaitHold(ctx, 0)
		require.NoError(t, err)
		got, status, e := r.payStatus(t, "hold-1")
		require.NoError(t, r.lab.ReleaseHold(0))
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Equal(t, api.PayPending, got.Status)
		assert.Equal(t, "in-progress", got.Reason, "%+v", got)
		res := <-done
		require.NoError(t, r.lab.ClearFault(0))
		assert.Equal(t, api.PayDone, res.Status, "%+v", res)
		balance -= 3_000
	})

	t.Run("a new payment that settles the earlier one", func(t *testing.T) {
		require.NoError(t, r.lab.SetFault(0, cardsim.Fault{AnswerLostAtAPDU: debitAt}))
		res, status, e := r.pay(t, api.PayRequest{Amount: 4_000, IdempotencyKey: "early-1"})
		require.NoError(t, r.lab.ClearFault(0))
		require.Equal(t, http.StatusOK, status, "%+v", e)
		require.Equal(t, api.PayPending, res.Status)
		balance -= 4_000
		r.faultRemoved(t)
		r.insertCard(t, card)
		// the clerk makes a new key for the same purchase
		_, status, e = r.pay(t, api.PayRequest{Amount: 4_000, IdempotencyKey: "early-2"})
		assert.Equal(t, http.StatusConflict, status)
		assert.Equal(t, "earlier-payment-settled", e.Code, "%+v", e)
		st, _ := purseOf(t, card)
		assert.Equal(t, balance, st.Balance, "not debited again")
		got, status, e := r.payStatus(t, "early-1")
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Equal(t, api.PayDone, got.Status)
		b, err := r.ob.PurseRequest(payRequestIDOf("early-2"))
		require.NoError(t, err)
		assert.Nil(t, b, "nothing journaled for the new key")
	})

	t.Run("a torn top-up settled is told as a top-up", func(t *testing.T) {
		// a credit journaled before the SAM's MAC (a process killed
		// there), settled not done by the next authentication
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		evs := r.events(ctx)
		req := [16]byte{0x70, 1}
		require.NoError(t, r.ob.StartPurse(outbox.PurseJournal{Serial: budiSerial, Request: req, Kind: record.PurseCredit,
			Step: outbox.PurseStarted, Amount: 50_000}))
		status, e := r.call("POST", api.PathAuth, api.AuthRequest{Service: "askes", Operator: "clerk-01"}, nil)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		b, err := r.ob.PurseRequest(req)
		require.NoError(t, err)
		require.Equal(t, outbox.PurseRequestNotDone, b.Status)
		var got []api.Event
		for len(got) == 0 {
			select {
			case ev := <-evs:
				if ev.Type == api.EventPayment || ev.Type == api.EventTopUp {
					got = append(got, ev)
				}
			case <-ctx.Done():
				t.Fatal("no purse event")
			}
		}
		assert.Equal(t, api.EventTopUp, got[0].Type, "%+v", got[0])
		assert.Equal(t, api.PayNotDone, got[0].State)
		assert.NotContains(t, got[0].MessageCode, "payment")
	})
}
