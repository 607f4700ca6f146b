package backoffice_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/kpedata"
	"kpe-agent/internal/sod"
	"kpe-agent/internal/topup"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

const topUpNIP = "196608011988031001"

var (
	topUpCard  = [8]byte{0x4B, 0x50, 0x45, 0, 0, 0, 0, 0x11}
	otherCard  = [8]byte{0x4B, 0x50, 0x45, 0, 0, 0, 0, 0x12}
	samCounter uint32
)

// topUpLab is a back office with an issuer (iss nil: none) and the top-up
// settings cfg over l's store, its clock settable, its terminal API over
// plain HTTP.
type topUpLab struct {
	*lab
	iss  *testIssuer
	card *testCard // the holder's card (topUpNIP): its EF.SOD and DG1 go with every query
	svc  *backoffice.Service
	srv  *httptest.Server
	mu   sync.Mutex
	at   time.Time
}

func newTopUpLab(t *testing.T, l *lab, iss *testIssuer, cfg backoffice.TopUpConfig, at time.Time) *topUpLab {
	tl := &topUpLab{lab: l, iss: iss, at: at}
	c := backoffice.Config{CA: l.ca.Pool(), PlaintextTerminals: true, Now: tl.now, TopUp: cfg}
	if iss != nil {
		c.Issuer, c.IssuerRoots = iss, iss.pool()
		tl.card = newTestCard(t, iss)
	} else {
		tl.card = newTestCard(t, newTestIssuer(t, "BKN"))
	}
	svc, err := backoffice.New(l.store, c)
	require.NoError(t, err)
	tl.svc = svc
	tl.srv = httptest.NewServer(svc.TerminalHandler(nil))
	t.Cleanup(tl.srv.Close)
	return tl
}

func (tl *topUpLab) now() time.Time { tl.mu.Lock(); defer tl.mu.Unlock(); return tl.at }
func (tl *topUpLab) set(at time.Time) {
	tl.mu.Lock()
	tl.at = at
	tl.mu.Unlock()
}

func (tl *topUpLab) stage(t *testing.T, amount uint32, ref string) *backoffice.TopUp {
	t.Helper()
	tu, err := tl.svc.StageTopUp(context.Background(), backoffice.TopUpRequest{NIP: topUpNIP, Amount: amount, Ref: ref}, "test")
	require.NoError(t, err)
	return tu
}

// offer posts a query for the card at ptc with balance and max and
// returns the status and the body.
func (tl *topUpLab) offer(t *testing.T, card [8]byte, ptc, balance, max uint32) (int, []byte) {
	t.Helper()
	return tl.offerQuery(t, tl.query(card, ptc, balance, max))
}

// query is the query of the lab's card, as serial card, at ptc with
// balance and max.
func (tl *topUpLab) query(card [8]byte, ptc, balance, max uint32) wire.TopUpQuery {
	return wire.TopUpQuery{Serial: hex.EncodeToString(card[:]), NIP: topUpNIP, PTC: ptc, Balance: balance, MaxBalance: max,
		SOD: tl.card.sod, DG1: tl.card.groups[1]}
}

// offerQuery posts q and returns the status and the body.
func (tl *topUpLab) offerQuery(t *testing.T, q wire.TopUpQuery) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(q)
	require.NoError(t, err)
	resp, err := http.Post(tl.srv.URL+wire.PathTopUpOffer, "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, body
}

// auths asks and answers the authorisations of a 200.
func (tl *topUpLab) auths(t *testing.T, card [8]byte, ptc, balance, max uint32) []topup.Authorisation {
	t.Helper()
	status, body := tl.offer(t, card, ptc, balance, max)
	require.Equal(t, http.StatusOK, status, "%s", body)
	var o wire.TopUpOffers
	require.NoError(t, json.Unmarshal(body, &o), "%s", body)
	require.NotNil(t, o.Authorisations, "an empty list, not null: %s", body)
	return o.Authorisations
}

func (tl *topUpLab) topUp(t *testing.T, id [16]byte) *backoffice.TopUp {
	t.Helper()
	tu, err := tl.store.(backoffice.TopUpStore).TopUp(context.Background(), id)
	require.NoError(t, err)
	return tu
}

// topUpRecord is a terminal's record of a purse transaction on card that
// leaves it at ptc: a top-up (request: the top-up id) or a payment.
func (l *lab) topUpRecord(terminal string, card [8]byte, service string, request [16]byte, amount, ptc uint32) []byte {
	r := baseRecord(terminal)
	r.Service, r.CardSerial = service, card[:]
	samCounter++
	p := &record.Purse{Kind: record.PurseCredit, Amount: amount, BalanceAfter: amount, PTC: ptc, SAMTxn: samCounter,
		TxnTime: time.Now().UnixMilli(), Proof: [8]byte{1}, Request: request}
	if service == record.ServicePayment {
		p.Kind, p.Merchant, p.Reference = record.PurseDebit, "apotik-01", "INV-1"
	}
	r.Purse = p
	return l.seal(r, l.sam)
}

func alarmsOf(t *testing.T, l *lab, kind string) []wire.Alarm {
	t.Helper()
	all, err := l.store.Alarms(context.Background(), backoffice.AlarmQuery{Limit: 1000})
	require.NoError(t, err)
	var out []wire.Alarm
	for _, a := range all {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// Staging: amount at least 1, a reference used once, and the monthly
// incoming limit per NIP and calendar month in Asia/Jakarta over the
// staged, authorised and applied top-ups: exactly the limit passes, one
// rupiah more is refused with *TopUpLimitError; a cancelled top-up does
// not count; the month turns at midnight WIB (17:00 UTC).
func TestTopUpStageLimits(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		// 00:00 WIB on 1 December is 17:00 UTC on 30 November
		tl := newTopUpLab(t, l, newTestIssuer(t, "BKN"), backoffice.TopUpConfig{}, time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC))
		a := tl.stage(t, 15_000_000, "TRF-001")
		// authorise a (the limit counts authorised ones too)
		au := tl.auths(t, topUpCard, 3, 0, 20_000_000)
		require.Len(t, au, 1)
		require.Equal(t, a.ID, au[0].ID)
		tl.set(time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC))
		tl.stage(t, 24_999_999, "TRF-002")
		// 23:59:59 WIB on 31 December is 16:59:59 UTC
		tl.set(time.Date(2026, 12, 31, 16, 59, 59, 0, time.UTC))
		tl.stage(t, 1, "TRF-003") // 40,000,000 exactly
		_, err := tl.svc.StageTopUp(ctx, backoffice.TopUpRequest{NIP: topUpNIP, Amount: 1, Ref: "TRF-004"}, "test")
		var le *backoffice.TopUpLimitError
		require.ErrorAs(t, err, &le)
		assert.ErrorIs(t, err, backoffice.ErrTopUpLimit)
		assert.Equal(t, backoffice.TopUpLimitError{Month: "2026-12", Used: 40_000_000, Amount: 1, Limit: 40_000_000}, *le)
		// another NIP has its own limit
		_, err = tl.svc.StageTopUp(ctx, backoffice.TopUpRequest{NIP: "197501152000122002", Amount: 40_000_000, Ref: "TRF-005"}, "test")
		require.NoError(t, err)
		// the applied top-up still counts
		require.Equal(t, wire.Accepted, l.ingest(l.topUpRecord("t-01", topUpCard, record.ServiceTopUp, a.ID, a.Amount, 4))[0].Status)
		require.Equal(t, backoffice.TopUpApplied, tl.topUp(t, a.ID).Status)
		_, err = tl.svc.StageTopUp(ctx, backoffice.TopUpRequest{NIP: topUpNIP, Amount: 1, Ref: "TRF-004"}, "test")
		require.ErrorIs(t, err, backoffice.ErrTopUpLimit)
		// one second later it is January in Jakarta
		tl.set(time.Date(2026, 12, 31, 17, 0, 0, 0, time.UTC))
		jan := tl.stage(t, 40_000_000, "TRF-004")
		_, err = tl.svc.StageTopUp(ctx, backoffice.TopUpRequest{NIP: topUpNIP, Amount: 1, Ref: "TRF-006"}, "test")
		require.ErrorAs(t, err, &le)
		assert.Equal(t, "2027-01", le.Month)
		// a cancelled top-up does not count
		require.NoError(t, tl.svc.CancelTopUp(ctx, jan.ID))
		tl.set(tl.now().Add(time.Second))
		tl.stage(t, 40_000_000, "TRF-006")
		assert.ErrorIs(t, tl.svc.CancelTopUp(ctx, jan.ID), backoffice.ErrTopUpState, "cancelled already")
		assert.ErrorIs(t, tl.svc.CancelTopUp(ctx, a.ID), backoffice.ErrTopUpState, "applied")
		assert.ErrorIs(t, tl.svc.CancelTopUp(ctx, [16]byte{9}), backoffice.ErrNotFound)

		// the request's rules
		for _, r := range []backoffice.TopUpRequest{
			{NIP: topUpNIP, Amount: 0, Ref: "TRF-100"},
			{NIP: "1966", Amount: 1, Ref: "TRF-101"},
			{NIP: topUpNIP, Amount: 1, Ref: ""},
			{NIP: topUpNIP, Amount: 1, Ref: "TRF 102"},
			{NIP: topUpNIP, Amount: 1, Ref: strings.Repeat("x", 65)},
		} {
			_, err := tl.svc.StageTopUp(ctx, r, "test")
			assert.ErrorIs(t, err, backoffice.ErrTopUpQuery, "%+v", r)
		}
		_, err = tl.svc.StageTopUp(ctx, backoffice.TopUpRequest{NIP: "197501152000122002", Amount: 1, Ref: "TRF-001"}, "test")
		assert.ErrorIs(t, err, backoffice.ErrTopUpRef, "a reference is used once, whatever the NIP")

		got, err := tl.svc.TopUps(ctx, backoffice.TopUpFilter{NIP: topUpNIP})
		require.NoError(t, err)
		require.Len(t, got, 5)
		assert.Equal(t, "TRF-006", got[0].Ref, "the newest first")
		cancelled, err := tl.svc.TopUps(ctx, backoffice.TopUpFilter{Status: backoffice.TopUpCancelled})
		require.NoError(t, err)
		require.Len(t, cancelled, 1)
		assert.Equal(t, jan.ID, cancelled[0].ID)
	})
}

// A configured monthly limit is enforced at its edge as the default is.
func TestTopUpMonthlyLimitConfigured(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		tl := newTopUpLab(t, l, nil, backoffice.TopUpConfig{MonthlyLimit: 100}, time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC))
		tl.stage(t, 60, "A")
		tl.stage(t, 40, "B")
		_, err := tl.svc.StageTopUp(context.Background(), backoffice.TopUpRequest{NIP: topUpNIP, Amount: 1, Ref: "C"}, "test")
		require.ErrorIs(t, err, backoffice.ErrTopUpLimit)
	})
}

// The offer: at most one authorisation a query, for the oldest top-up
// that fits under the card's maximum and MaxBalance, bound to the card's
// serial and PTC, valid for the configured time, signed by the issuer
// (topup.Verify with the issuer roots); asked again at the same PTC, the
// same top-up (its id) again; at another PTC the authorised one is held
// and the next is offered.
func TestTopUpOffer(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		iss := newTestIssuer(t, "BKN")
		t0 := time.Now().Truncate(time.Second)
		tl := newTopUpLab(t, l, iss, backoffice.TopUpConfig{}, t0)
		a := tl.stage(t, 100_000, "TRF-A")
		tl.set(t0.Add(time.Second))
		b := tl.stage(t, 250_000, "TRF-B")

		got := tl.auths(t, topUpCard, 5, 0, 20_000_000)
		require.Len(t, got, 1)
		au := got[0]
		assert.Equal(t, a.ID, au.ID, "the oldest first; the authorisation's id is the top-up's")
		assert.Equal(t, topUpCard, au.Serial)
		assert.Equal(t, uint32(5), au.PTC)
		assert.Equal(t, uint32(100_000), au.Amount)
		assert.Equal(t, t0.Add(time.Second+backoffice.DefaultTopUpValidity).UTC(), au.NotAfter, "valid 10 minutes by default")
		require.NoError(t, topup.Verify(&au, topUpCard, 5, iss.pool(), tl.now()))
		assert.ErrorIs(t, topup.Verify(&au, topUpCard, 6, iss.pool(), tl.now()), topup.ErrReplayed)
		assert.ErrorIs(t, topup.Verify(&au, otherCard, 5, iss.pool(), tl.now()), topup.ErrMismatch)
		assert.ErrorIs(t, topup.Verify(&au, topUpCard, 5, iss.pool(), au.NotAfter), topup.ErrExpired)
		assert.ErrorIs(t, topup.Verify(&au, topUpCard, 5, newTestIssuer(t, "Other").pool(), tl.now()), topup.ErrIssuer)
		st := tl.topUp(t, a.ID)
		assert.Equal(t, backoffice.TopUpAuthorised, st.Status)
		assert.Equal(t, topUpCard, st.AuthSerial)
		assert.Equal(t, uint32(5), st.AuthPTC)
		assert.Equal(t, 1, st.Authorisations)

		// the card took nothing since: the same top-up again, a new expiry
		tl.set(t0.Add(20 * time.Minute))
		again := tl.auths(t, topUpCard, 5, 0, 20_000_000)
		require.Len(t, again, 1)
		assert.Equal(t, a.ID, again[0].ID)
		assert.True(t, again[0].NotAfter.After(au.NotAfter))
		assert.Equal(t, 2, tl.topUp(t, a.ID).Authorisations)

		// the card moved on (a may be on it): a is held, b is offered; on
		// another card too, a is held
		next := tl.auths(t, topUpCard, 6, 100_000, 20_000_000)
		require.Len(t, next, 1)
		assert.Equal(t, b.ID, next[0].ID)
		assert.Equal(t, uint32(6), next[0].PTC)
		assert.Empty(t, tl.auths(t, otherCard, 1, 0, 20_000_000), "both are authorised for the other card")

		// the balance limits: the back office's MaxBalance and the card's own
		tl.stage(t, 50_000, "TRF-C")
		assert.Empty(t, tl.auths(t, otherCard, 2, 19_950_001, 30_000_000), "Rp 50,000 does not fit under Rp 20,000,000")
		fits := tl.auths(t, otherCard, 2, 19_950_000, 30_000_000)
		require.Len(t, fits, 1, "exactly up to the maximum balance")
		assert.Equal(t, uint32(50_000), fits[0].Amount)
	})
}

// The card's own maximum balance bounds the offer, and the configured
// MaxBalance and validity apply.
func TestTopUpOfferConfigured(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		t0 := time.Now().Truncate(time.Second)
		tl := newTopUpLab(t, l, newTestIssuer(t, "BKN"), backoffice.TopUpConfig{MaxBalance: 1_000_000, Validity: 2 * time.Minute}, t0)
		tl.stage(t, 600_000, "TRF-A")
		assert.Empty(t, tl.auths(t, topUpCard, 1, 500_000, 2_000_000), "over the configured maximum")
		assert.Empty(t, tl.auths(t, topUpCard, 1, 0, 599_999), "over the card's maximum")
		got := tl.auths(t, topUpCard, 1, 400_000, 1_000_000)
		require.Len(t, got, 1)
		assert.Equal(t, t0.Add(2*time.Minute).UTC(), got[0].NotAfter)
	})
}

// Refusals of the endpoint: no issuer (503 topup-unavailable), a bad
// query (400).
func TestTopUpOfferRefusals(t *testing.T) {
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	none := newTopUpLab(t, l, nil, backoffice.TopUpConfig{}, time.Now())
	none.stage(t, 1000, "TRF-1")
	status, body := none.offer(t, topUpCard, 1, 0, 1_000_000)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, wire.ProblemTopUpUnavailable, problemOf(t, string(body)))

	tl := newTopUpLab(t, l, newTestIssuer(t, "BKN"), backoffice.TopUpConfig{}, time.Now())
	for _, q := range []string{
		`{"serial":"4b50","nip":"196608011988031001","ptc":1,"balance":0,"max_balance":1}`,
		`{"serial":"4b50450000000011","nip":"1966","ptc":1,"balance":0,"max_balance":1}`,
		`{"serial":"4b50450000000011","nip":"196608011988031001","ptc":1,"balance":2,"max_balance":1}`,
		`{"serial":"4b50450000000011","nip":"196608011988031001","ptc":1,"balance":0,"max_balance":1,"extra":1}`,
		`{"serial":"4b50450000000011","nip":"196608011988031001","ptc":-1,"balance":0,"max_balance":1}`,
	} {
		resp, err := http.Post(tl.srv.URL+wire.PathTopUpOffer, "application/json", strings.NewReader(q))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, q)
	}
}

// The query carries the card's EF.SOD and DG1: the back office answers
// only when the EF.SOD verifies against its issuer roots and covers the
// DG1, whose NIP is the query's; else nothing is looked up or authorised
// (the top-up stays staged). On both stores.
func TestTopUpOfferCardData(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		iss := newTestIssuer(t, "BKN")
		tl := newTopUpLab(t, l, iss, backoffice.TopUpConfig{}, time.Now())
		tu := tl.stage(t, 100_000, "TRF-A")

		// without card data: a bad query (no agent predates the fields)
		for name, mutate := range map[string]func(*wire.TopUpQuery){
			"no sod":  func(q *wire.TopUpQuery) { q.SOD = nil },
			"no dg1":  func(q *wire.TopUpQuery) { q.DG1 = nil },
			"neither": func(q *wire.TopUpQuery) { q.SOD, q.DG1 = nil, nil },
		} {
			q := tl.query(topUpCard, 5, 0, 20_000_000)
			mutate(&q)
			status, body := tl.offerQuery(t, q)
			assert.Equal(t, http.StatusBadRequest, status, "%s: %s", name, body)
			assert.Equal(t, "bad-query", problemOf(t, string(body)), name)
		}
		status, body := tl.offerQuery(t, wire.TopUpQuery{Serial: hex.EncodeToString(topUpCard[:]), NIP: topUpNIP, PTC: 5, MaxBalance: 20_000_000})
		assert.Equal(t, http.StatusBadRequest, status, "an agent that sends no card data: %s", body)

		badCard := func(name string, q wire.TopUpQuery) {
			t.Helper()
			status, body := tl.offerQuery(t, q)
			assert.Equal(t, http.StatusUnprocessableEntity, status, "%s: %s", name, body)
			assert.Equal(t, wire.ProblemBadSOD, problemOf(t, string(body)), name)
		}
		// another holder's genuine card asking for this NIP
		other := newTestCard(t, iss)
		other.groups[1] = kpedata.Identity{NIP: "199001012015011001", Name: "Other Holder"}.Encode()
		var err error
		other.sod, err = sod.Sign(other.groups, iss.key, iss.cert)
		require.NoError(t, err)
		q := tl.query(topUpCard, 5, 0, 20_000_000)
		q.SOD, q.DG1 = other.sod, other.groups[1]
		badCard("DG1 of another NIP", q)
		// a DG1 with this NIP the EF.SOD does not cover
		q = tl.query(topUpCard, 5, 0, 20_000_000)
		q.DG1 = kpedata.Identity{NIP: topUpNIP, Name: "Somebody Else"}.Encode()
		badCard("DG1 not covered", q)
		// a genuine EF.SOD with the DG1 of the other card
		q = tl.query(topUpCard, 5, 0, 20_000_000)
		q.DG1 = other.groups[1]
		badCard("the EF.SOD covers another DG1", q)
		// a card personalised by an issuer this back office does not trust
		rogue := newTestCard(t, newTestIssuer(t, "Rogue"))
		q = tl.query(topUpCard, 5, 0, 20_000_000)
		q.SOD, q.DG1 = rogue.sod, rogue.groups[1]
		badCard("untrusted issuer", q)
		// a malformed EF.SOD
		q = tl.query(topUpCard, 5, 0, 20_000_000)
		q.SOD = q.SOD[:len(q.SOD)/2]
		badCard("malformed EF.SOD", q)
		assert.Equal(t, backoffice.TopUpStaged, tl.topUp(t, tu.ID).Status, "no refused query authorised it")
		assert.Equal(t, 0, tl.topUp(t, tu.ID).Authorisations)

		// the genuine card: answered (the serial stays the terminal's word)
		got := tl.auths(t, topUpCard, 5, 0, 20_000_000)
		require.Len(t, got, 1)
		assert.Equal(t, tu.ID, got[0].ID)
		assert.Equal(t, backoffice.TopUpAuthorised, tl.topUp(t, tu.ID).Status)

		// EF.SOD and DG1 fit; a larger body is 413
		big := tl.query(topUpCard, 5, 0, 20_000_000)
		big.SOD = make([]byte, wire.MaxTopUpQueryBytes)
		status, _ = tl.offerQuery(t, big)
		assert.Equal(t, http.StatusRequestEntityTooLarge, status)
	})
}

// A top-up record marks its top-up applied in the ingest transaction
// (code, terminal, card, PTC); a second record for it raises
// topup-replayed and changes nothing; a record with another amount, or
// for another card or PTC than authorised, is applied and raises
// topup-mismatch; one for an unknown top-up raises topup-unmatched.
func TestTopUpAppliedOnIngest(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		tl := newTopUpLab(t, l, newTestIssuer(t, "BKN"), backoffice.TopUpConfig{}, time.Now())
		a := tl.stage(t, 100_000, "TRF-A")
		tl.set(tl.now().Add(time.Second))
		b := tl.stage(t, 200_000, "TRF-B")
		tl.set(tl.now().Add(time.Second))
		c := tl.stage(t, 300_000, "TRF-C")
		au := tl.auths(t, topUpCard, 5, 0, 20_000_000)
		require.Len(t, au, 1)
		require.Equal(t, a.ID, au[0].ID)

		enc := l.topUpRecord("t-01", topUpCard, record.ServiceTopUp, a.ID, 100_000, 6)
		res := l.ingest(enc)
		require.Equal(t, wire.Accepted, res[0].Status)
		got := tl.topUp(t, a.ID)
		assert.Equal(t, backoffice.TopUpApplied, got.Status)
		assert.Equal(t, res[0].Code, got.AppliedCode)
		assert.Equal(t, "t-01", got.AppliedTerminal)
		assert.Equal(t, topUpCard, got.AppliedSerial)
		assert.Equal(t, uint32(6), got.AppliedPTC)
		assert.False(t, got.AppliedAt.IsZero())
		assert.Empty(t, alarmsOf(t, l, backoffice.AlarmTopUpMismatch))

		// the same record again is a duplicate; another record for the
		// same top-up (a second credit) is stored, flagged and applies nothing
		assert.Equal(t, wire.Duplicate, l.ingest(enc)[0].Status)
		assert.Empty(t, alarmsOf(t, l, backoffice.AlarmTopUpReplayed))
		replay := l.topUpRecord("t-02", topUpCard, record.ServiceTopUp, a.ID, 100_000, 7)
		require.Equal(t, wire.Accepted, l.ingest(replay)[0].Status, "signed by a SAM: stored")
		rep := alarmsOf(t, l, backoffice.AlarmTopUpReplayed)
		require.Len(t, rep, 1)
		assert.Equal(t, "t-02", rep[0].TerminalID)
		assert.Contains(t, rep[0].Detail, res[0].Code)
		assert.NotContains(t, rep[0].Detail, topUpNIP, "no personal data in the alarm")
		after := tl.topUp(t, a.ID)
		assert.Equal(t, res[0].Code, after.AppliedCode, "applied once")
		assert.Equal(t, uint32(6), after.AppliedPTC)

		// b is next at the card's new PTC; its record credits another amount
		au = tl.auths(t, topUpCard, 7, 200_000, 20_000_000)
		require.Len(t, au, 1)
		require.Equal(t, b.ID, au[0].ID)
		require.Equal(t, wire.Accepted, l.ingest(l.topUpRecord("t-01", topUpCard, record.ServiceTopUp, b.ID, 250_000, 8))[0].Status)
		assert.Equal(t, backoffice.TopUpApplied, tl.topUp(t, b.ID).Status, "the id is spent: applied, and flagged")
		// c never authorised, credited on another card
		require.Equal(t, wire.Accepted, l.ingest(l.topUpRecord("t-01", otherCard, record.ServiceTopUp, c.ID, 300_000, 1))[0].Status)
		assert.Equal(t, backoffice.TopUpApplied, tl.topUp(t, c.ID).Status)
		mis := alarmsOf(t, l, backoffice.AlarmTopUpMismatch)
		require.Len(t, mis, 2)
		details := mis[0].Detail + " | " + mis[1].Detail
		assert.Contains(t, details, "credits Rp 250000, staged Rp 200000")
		assert.Contains(t, details, "never authorised")
		// an unknown top-up
		require.Equal(t, wire.Accepted, l.ingest(l.topUpRecord("t-01", topUpCard, record.ServiceTopUp, [16]byte{0xEE}, 1, 9))[0].Status)
		assert.Len(t, alarmsOf(t, l, backoffice.AlarmTopUpUnmatched), 1)
		assert.Empty(t, tl.auths(t, topUpCard, 9, 0, 20_000_000), "nothing left")
		m := scrape(t, tl.svc)
		assert.Equal(t, 1.0, m[`kpe_backoffice_alarms_open{kind="topup-replayed"}`])
		assert.Equal(t, 2.0, m[`kpe_backoffice_alarms_open{kind="topup-mismatch"}`])
		assert.Equal(t, 1.0, m[`kpe_backoffice_alarms_open{kind="topup-unmatched"}`])
		assert.Equal(t, 0.0, m[`kpe_backoffice_alarms_open{kind="other"}`])
	})
}

// An authorised top-up whose card took another transaction at its PTC
// (a payment's record shows it) was not used: it goes back to staged and
// is offered at the card's new PTC. Until then it is held.
func TestTopUpReleasedByCardTransaction(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		tl := newTopUpLab(t, l, newTestIssuer(t, "BKN"), backoffice.TopUpConfig{}, time.Now())
		a := tl.stage(t, 100_000, "TRF-A")
		require.Len(t, tl.auths(t, topUpCard, 5, 0, 20_000_000), 1)
		assert.Empty(t, tl.auths(t, topUpCard, 6, 0, 20_000_000), "held: the card may have taken it")
		// a payment at another PTC of the card releases nothing
		require.Equal(t, wire.Accepted, l.ingest(l.topUpRecord("t-01", topUpCard, record.ServicePayment, [16]byte{0xAA}, 5_000, 5))[0].Status)
		assert.Equal(t, backoffice.TopUpAuthorised, tl.topUp(t, a.ID).Status)
		// the payment that moved the card from PTC 5 to 6
		require.Equal(t, wire.Accepted, l.ingest(l.topUpRecord("t-01", topUpCard, record.ServicePayment, [16]byte{0xAB}, 5_000, 6))[0].Status)
		got := tl.topUp(t, a.ID)
		assert.Equal(t, backoffice.TopUpStaged, got.Status)
		assert.Equal(t, 1, got.Authorisations, "its history stays")
		au := tl.auths(t, topUpCard, 6, 0, 20_000_000)
		require.Len(t, au, 1)
		assert.Equal(t, a.ID, au[0].ID)
		assert.Equal(t, uint32(6), au[0].PTC)
		// and its record at PTC 7 applies it without alarm
		require.Equal(t, wire.Accepted, l.ingest(l.topUpRecord("t-01", topUpCard, record.ServiceTopUp, a.ID, 100_000, 7))[0].Status)
		assert.Equal(t, backoffice.TopUpApplied, tl.topUp(t, a.ID).Status)
		assert.Empty(t, alarmsOf(t, l, backoffice.AlarmTopUpMismatch))
	})
}

// The staff API: an admin stages (201, audited) and cancels; the limit
// and a used reference are 422 and 409; a verifier lists and stages
// nothing; nobody signed in is 401.
func TestTopUpStaffAPI(t *testing.T) {
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	h := l.svc.StaffHandler(backoffice.StaffConfig{Zone: wib})
	adm, tok := signedIn(t, l, h, &backoffice.Principal{Account: "boss", Roles: []backoffice.Role{backoffice.RoleAdmin}})
	ver, verTok := signedIn(t, l, h, verifier)

	a := staffCall(adm, "POST", backoffice.PathTopUps, `{"nip":"196608011988031001","amount":40000000,"ref":"TRF-1"}`, "X-CSRF-Token", tok)
	require.Equal(t, http.StatusCreated, a.status, a.body)
	var v backoffice.TopUpView
	require.NoError(t, json.Unmarshal([]byte(a.body), &v))
	assert.Equal(t, backoffice.TopUpStaged, v.Status)
	assert.Equal(t, "boss", v.StagedBy)
	e := auditOf(t, l.svc, backoffice.AuditTopUpStage, v.ID)
	require.Len(t, e, 1)
	assert.NotContains(t, e[0].Detail, topUpNIP)

	a = staffCall(adm, "POST", backoffice.PathTopUps, `{"nip":"196608011988031001","amount":1,"ref":"TRF-2"}`, "X-CSRF-Token", tok)
	assert.Equal(t, http.StatusUnprocessableEntity, a.status, a.body)
	assert.Equal(t, "topup-limit", problemOf(t, a.body))
	a = staffCall(adm, "POST", backoffice.PathTopUps, `{"nip":"197501152000122002","amount":1,"ref":"TRF-1"}`, "X-CSRF-Token", tok)
	assert.Equal(t, http.StatusConflict, a.status, a.body)
	a = staffCall(adm, "POST", backoffice.PathTopUps, `{"nip":"197501152000122002","amount":1,"ref":"TRF-3","x":1}`, "X-CSRF-Token", tok)
	assert.Equal(t, http.StatusBadRequest, a.status, a.body)
	a = staffCall(adm, "POST", backoffice.PathTopUps, `{"nip":"197501152000122002","amount":1,"ref":"TRF-3"}`)
	assert.Equal(t, http.StatusForbidden, a.status, "no CSRF token: %s", a.body)

	a = staffCall(ver, "POST", backoffice.PathTopUps, `{"nip":"197501152000122002","amount":1,"ref":"TRF-3"}`, "X-CSRF-Token", verTok)
	assert.Equal(t, http.StatusForbidden, a.status, a.body)
	a = staffCall(ver, "GET", backoffice.PathTopUps+"?status=staged", "")
	require.Equal(t, http.StatusOK, a.status, a.body)
	var list struct{ TopUps []backoffice.TopUpView }
	require.NoError(t, json.Unmarshal([]byte(a.body), &list))
	require.Len(t, list.TopUps, 1)
	assert.Equal(t, v.ID, list.TopUps[0].ID)
	assert.Equal(t, http.StatusBadRequest, staffCall(ver, "GET", backoffice.PathTopUps+"?status=lost", "").status)
	assert.Equal(t, http.StatusUnauthorized, staffCall(h, "GET", backoffice.PathTopUps, "").status)

	a = staffCall(adm, "POST", backoffice.PathTopUps+"/"+v.ID+"/cancel", "", "X-CSRF-Token", tok)
	require.Equal(t, http.StatusNoContent, a.status, a.body)
	a = staffCall(adm, "POST", backoffice.PathTopUps+"/"+v.ID+"/cancel", "", "X-CSRF-Token", tok)
	assert.Equal(t, http.StatusConflict, a.status, a.body)
	a = staffCall(adm, "POST", backoffice.PathTopUps+"/00/cancel", "", "X-CSRF-Token", tok)
	assert.Equal(t, http.StatusBadRequest, a.status, a.body)
	ts, err := l.svc.TopUps(context.Background(), backoffice.TopUpFilter{})
	require.NoError(t, err)
	require.Len(t, ts, 1)
	assert.Equal(t, backoffice.TopUpCancelled, ts[0].Status)
	require.Len(t, auditOf(t, l.svc, backoffice.AuditTopUpCancel, v.ID), 1)
}
