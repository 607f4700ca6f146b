package backoffice_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/big"
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
	"kpe-agent/internal/pgtest"
	"kpe-agent/internal/renewal"
	"kpe-agent/internal/sod"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// testIssuer is an issuer.IssuerSigner over an in-memory key: the
// document signer of a test issuer CA.
type testIssuer struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	ca   *x509.Certificate
}

func (i *testIssuer) Public() crypto.PublicKey { return i.key.Public() }
func (i *testIssuer) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return i.key.Sign(r, d, o)
}
func (i *testIssuer) Certificate() *x509.Certificate { return i.cert }
func (i *testIssuer) Close() error                   { return nil }

func (i *testIssuer) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(i.ca)
	return p
}

func newTestIssuer(t *testing.T, name string) *testIssuer {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	// valid from long before: tests at fixed dates (the top-up limits'
	// months) check cards signed by it
	since := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: since, NotAfter: now.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name + " document signer"},
		NotBefore: since, NotAfter: now.AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testIssuer{key: key, cert: cert, ca: ca}
}

const renewalNIP = "196608011988031001"

// testCard is a KPE as personalised: its groups and its EF.SOD, signed
// by the issuer's document signer over the groups' hashes.
type testCard struct {
	serial [8]byte
	groups map[int][]byte
	sod    []byte
	seq    uint32
}

func newTestCard(t *testing.T, iss *testIssuer) *testCard {
	t.Helper()
	groups := map[int][]byte{
		1: kpedata.Identity{NIP: renewalNIP, Name: "Drs. Budi Santoso", BirthPlace: "Bandung", BirthDate: "19660801", Gender: "L",
			Address: "Jl. Merdeka 1", NIK: "3273010108660001"}.Encode(),
		2: kpedata.Employment{Status: "PNS", Pangkat: "Penata Muda", GolonganRuang: "III/a", TMTPangkat: "20200401", Jabatan: "Analis",
			TMTJabatan: "20200401", ParentAgency: "BKN", WorkingAgency: "Kanreg I", WorkLocation: "Yogyakarta"}.Encode(),
		3: kpedata.Family{}.Encode(),
		4: kpedata.Benefits{BPJSNumber: "0001234567890", TaspenNumber: "T-123", BankName: "BRI", AccountMasked: "****1234"}.Encode(),
		6: {0x7F, 0x61, 0x03, 0x02, 0x01, 0x00},
	}
	s, err := sod.Sign(groups, iss.key, iss.cert)
	require.NoError(t, err)
	return &testCard{serial: [8]byte{0x4B, 0x50, 0x45, 0, 0, 0, 0, 0x11}, groups: groups, sod: s}
}

func (c *testCard) state() renewal.CardState {
	return renewal.CardState{Serial: c.serial, NIP: renewalNIP, SOD: c.sod, Sequence: c.seq}
}

func (c *testCard) query() wire.RenewalQuery {
	return wire.RenewalQuery{CardSerial: hex.EncodeToString(c.serial[:]), NIP: renewalNIP, SOD: c.sod, DG1: c.groups[1], Sequence: c.seq}
}

// apply writes the offer to the card, as its COMMIT does.
func (c *testCard) apply(o *renewal.Offer) {
	for dg, b := range o.Groups {
		c.groups[dg] = b
	}
	c.sod, c.seq = o.SOD, o.Sequence
}

// renewalLab is a back office with an issuer over l's store, its clock
// settable, and its terminal API over plain HTTP (the identity check is
// the records endpoint's: TestRenewalOfferIdentity).
type renewalLab struct {
	*lab
	iss *testIssuer
	svc *backoffice.Service
	srv *httptest.Server
	mu  sync.Mutex
	at  time.Time
}

func newRenewalLab(t *testing.T, l *lab, iss *testIssuer) *renewalLab {
	rl := &renewalLab{lab: l, iss: iss, at: time.Now()}
	cfg := backoffice.Config{CA: l.ca.Pool(), PlaintextTerminals: true, Now: rl.now}
	if iss != nil {
		cfg.Issuer, cfg.IssuerRoots = iss, iss.pool()
	}
	svc, err := backoffice.New(l.store, cfg)
	require.NoError(t, err)
	rl.svc = svc
	rl.srv = httptest.NewServer(svc.TerminalHandler(nil))
	t.Cleanup(rl.srv.Close)
	return rl
}

func (rl *renewalLab) now() time.Time { rl.mu.Lock(); defer rl.mu.Unlock(); return rl.at }
func (rl *renewalLab) advance(d time.Duration) {
	rl.mu.Lock()
	rl.at = rl.at.Add(d)
	rl.mu.Unlock()
}

// ask posts a query and returns the status and the body.
func (rl *renewalLab) ask(t *testing.T, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(rl.srv.URL+wire.PathRenewalOffer, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func (rl *renewalLab) askCard(t *testing.T, c *testCard) (int, []byte) {
	t.Helper()
	return rl.askQuery(t, c.query())
}

func (rl *renewalLab) askQuery(t *testing.T, q wire.RenewalQuery) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(q)
	require.NoError(t, err)
	return rl.ask(t, b)
}

// takeOffer asks for the card's offer (200) and writes it to the card, as
// the terminal does; it answers the offer, its wire body and the hash of
// the card's EF.SOD before.
func (rl *renewalLab) takeOffer(t *testing.T, c *testCard) (o *renewal.Offer, body []byte, old [32]byte) {
	t.Helper()
	status, body := rl.askCard(t, c)
	require.Equal(t, http.StatusOK, status, "%s", body)
	o = offerOf(t, body)
	old = renewal.SODHash(c.sod)
	c.apply(o)
	return o, body, old
}

func offerOf(t *testing.T, body []byte) *renewal.Offer {
	t.Helper()
	var o renewal.Offer
	require.NoError(t, json.Unmarshal(body, &o), "%s", body)
	return &o
}

// stage imports a promotion (DG2) for the card's NIP.
func stage(t *testing.T, svc *backoffice.Service, gol string) backoffice.RenewalUpdate {
	t.Helper()
	res, err := svc.ImportRenewals(context.Background(), "csv", strings.NewReader(csvHeader+"\n"+csvRow(renewalNIP, map[int]string{4: gol})+"\n"))
	require.NoError(t, err)
	return res.Updates[0]
}

// Every answer of POST /v1/renewal/offer, on both stores.
func TestRenewalOffer(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		iss := newTestIssuer(t, "BKN")
		rl := newRenewalLab(t, l, iss)
		card := newTestCard(t, iss)

		// nothing staged for the NIP
		status, body := rl.askCard(t, card)
		assert.Equal(t, http.StatusNoContent, status, "%s", body)

		u := stage(t, rl.svc, "III/b")
		status, body = rl.askCard(t, card)
		require.Equal(t, http.StatusOK, status, "%s", body)
		o := offerOf(t, body)
		assert.Equal(t, u.ID, o.UpdateID)
		assert.Equal(t, card.seq+1, o.Sequence)
		assert.Equal(t, []int{2}, o.Changed(), "only the changed group")
		assert.WithinDuration(t, rl.now().Add(backoffice.RenewalOfferLifetime), o.NotAfter, time.Second)
		require.NoError(t, renewal.Verify(o, card.state(), iss.pool(), rl.now()), "the terminal accepts it")

		// the same card state: the same stored offer, byte for byte
		rl.advance(20 * time.Minute)
		status, again := rl.askCard(t, card)
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, body, again, "served again while at least 5 minutes are left")

		// under 5 minutes left: a new offer
		rl.advance(6 * time.Minute)
		status, fresh := rl.askCard(t, card)
		require.Equal(t, http.StatusOK, status)
		o2 := offerOf(t, fresh)
		assert.NotEqual(t, o.NewSOD, o2.NewSOD, "a new EF.SOD (a new signature)")
		assert.Equal(t, o.UpdateID, o2.UpdateID)
		require.NoError(t, renewal.Verify(o2, card.state(), iss.pool(), rl.now()))

		// the card took it: asking with its new EF.SOD answers that offer
		card.apply(o2)
		status, held := rl.askCard(t, card)
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, fresh, held)
		assert.ErrorIs(t, renewal.Verify(offerOf(t, held), card.state(), iss.pool(), rl.now()), renewal.ErrApplied,
			"the terminal sees the card holds it and records the renewal it missed")

		// staged groups the card holds already: nothing to write (204),
		// nothing recorded
		other := newTestCard(t, iss)
		_, err := rl.svc.ImportRenewals(context.Background(), "json", strings.NewReader(`[{"nip":"`+renewalNIP+`","employment":{"status":"PNS",
			"pangkat":"Penata Muda","golongan_ruang":"III/a","tmt_pangkat":"20200401","jabatan":"Analis","tmt_jabatan":"20200401",
			"parent_agency":"BKN","working_agency":"Kanreg I","work_location":"Yogyakarta"}}]`))
		require.NoError(t, err)
		status, body = rl.askCard(t, other)
		assert.Equal(t, http.StatusNoContent, status, "%s", body)

		s := scrape(t, rl.svc)
		assert.Equal(t, 2.0, s[`kpe_backoffice_renewal_offers_total{result="issued"}`])
		assert.Equal(t, 1.0, s[`kpe_backoffice_renewal_offers_total{result="served-again"}`])
		assert.Equal(t, 1.0, s[`kpe_backoffice_renewal_offers_total{result="applied-again"}`])
		assert.Equal(t, 2.0, s[`kpe_backoffice_renewal_offers_total{result="none"}`])
		assert.Equal(t, 1.0, s[`kpe_backoffice_renewal_updates{status="staged"}`])
		assert.Equal(t, 1.0, s[`kpe_backoffice_renewal_updates{status="superseded"}`])
	})
}

// The card's EF.SOD must verify under the issuer roots (422 bad-sod);
// without an issuer signer the answer is 503; bad queries are 400/413.
func TestRenewalOfferRefusals(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		iss := newTestIssuer(t, "BKN")
		rl := newRenewalLab(t, l, iss)
		stage(t, rl.svc, "III/b")

		rogue := newTestCard(t, newTestIssuer(t, "Rogue"))
		status, body := rl.askCard(t, rogue)
		assert.Equal(t, http.StatusUnprocessableEntity, status)
		assert.Equal(t, wire.ProblemBadSOD, problemCode(t, body), "an EF.SOD of another issuer")

		garbled := newTestCard(t, iss)
		garbled.sod = garbled.sod[:len(garbled.sod)/2]
		status, body = rl.askCard(t, garbled)
		assert.Equal(t, http.StatusUnprocessableEntity, status)
		assert.Equal(t, wire.ProblemBadSOD, problemCode(t, body), "a malformed EF.SOD")

		// a genuine EF.SOD with a DG1 it does not cover, or with another
		// holder's NIP: nothing about the NIP is answered
		card := newTestCard(t, iss)
		q := card.query()
		q.DG1 = nil
		status, body = rl.askQuery(t, q)
		assert.Equal(t, http.StatusUnprocessableEntity, status, "no DG1: %s", body)
		other := newTestCard(t, iss)
		other.groups[1] = kpedata.Identity{NIP: "199001012015011001", Name: "Other Holder"}.Encode()
		other.sod, _ = sod.Sign(other.groups, iss.key, iss.cert)
		q = other.query()
		q.DG1 = other.groups[1]
		status, body = rl.askQuery(t, q)
		assert.Equal(t, http.StatusUnprocessableEntity, status, "another holder's card asking for this NIP: %s", body)
		assert.Equal(t, wire.ProblemBadSOD, problemCode(t, body))
		// a sequence no offer for this card's data had
		q = card.query()
		q.Sequence = 0xFFFFFFF0
		status, body = rl.askQuery(t, q)
		assert.Equal(t, http.StatusBadRequest, status, "a made-up sequence: %s", body)

		for name, q := range map[string]string{
			"unknown field": `{"card_serial":"4b50450000000011","nip":"` + renewalNIP + `","sod":"AAAA","sequence":0,"extra":1}`,
			"bad serial":    `{"card_serial":"4b50","nip":"` + renewalNIP + `","sod":"AAAA","sequence":0}`,
			"bad nip":       `{"card_serial":"4b50450000000011","nip":"123","sod":"AAAA","sequence":0}`,
			"no sod":        `{"card_serial":"4b50450000000011","nip":"` + renewalNIP + `","sequence":0}`,
			"two values":    `{} {}`,
		} {
			status, body := rl.ask(t, []byte(q))
			assert.Equal(t, http.StatusBadRequest, status, "%s: %s", name, body)
		}
		big := card.query()
		big.SOD = make([]byte, wire.MaxRenewalQueryBytes)
		raw, _ := json.Marshal(big)
		status, _ = rl.ask(t, raw)
		assert.Equal(t, http.StatusRequestEntityTooLarge, status)

		none := newRenewalLab(t, l, nil)
		status, body = none.askCard(t, card)
		assert.Equal(t, http.StatusServiceUnavailable, status)
		assert.Equal(t, wire.ProblemRenewalUnavailable, problemCode(t, body))

		s := scrape(t, rl.svc)
		assert.Equal(t, 8.0, s[`kpe_backoffice_renewal_offers_total{result="refused"}`], "the bad SODs, the foreign DG1s, the made-up sequence and the bad queries that decoded")
	})
}

// The offer endpoint takes the records endpoint's identity: without a
// client certificate (and without the lab's plain HTTP) it is 401.
func TestRenewalOfferIdentity(t *testing.T) {
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	iss := newTestIssuer(t, "BKN")
	svc, err := backoffice.New(l.store, backoffice.Config{CA: l.ca.Pool(), Issuer: iss, IssuerRoots: iss.pool()})
	require.NoError(t, err)
	srv := httptest.NewServer(svc.TerminalHandler(nil))
	defer srv.Close()
	q, _ := json.Marshal(newTestCard(t, iss).query())
	resp, err := http.Post(srv.URL+wire.PathRenewalOffer, "application/json", bytes.NewReader(q))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, "client-certificate", problemCode(t, b))
}

// renewalRecord is the terminal's record of a renewal written to card.
func (l *lab) renewalRecord(terminal string, card *testCard, update [16]byte, old, next [32]byte) []byte {
	r := baseRecord(terminal)
	r.Service, r.CardSerial = record.ServiceRenewal, card.serial[:]
	r.Subject = renewalNIP
	r.Renewal = &record.Renewal{UpdateID: update, OldSOD: old, NewSOD: next}
	return l.seal(r, l.sam)
}

// A verified renewal record marks its update applied, in the ingest
// transaction; a record for an unknown update, or for a new EF.SOD no
// offer of the update has, is stored all the same and raises an alarm.
// A superseded update the card took is applied too.
func TestRenewalAppliedOnIngest(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		iss := newTestIssuer(t, "BKN")
		rl := newRenewalLab(t, l, iss)
		card := newTestCard(t, iss)
		u := stage(t, rl.svc, "III/b")
		o, _, old := rl.takeOffer(t, card)

		// a newer import arrives while the card is being written: the
		// update the card took is applied all the same
		newer := stage(t, rl.svc, "III/c")

		enc := l.renewalRecord("t-01", card, u.ID, old, o.NewSOD)
		res := l.ingest(enc)
		require.Equal(t, wire.Accepted, res[0].Status)
		got, err := rl.svc.RenewalUpdates(ctx, backoffice.RenewalFilter{Status: backoffice.RenewalApplied})
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Equal(t, u.ID, got[0].ID)
		assert.Equal(t, res[0].Code, got[0].AppliedCode)
		assert.Equal(t, "t-01", got[0].AppliedTerminal)
		assert.Equal(t, card.serial, got[0].AppliedSerial)
		assert.False(t, got[0].AppliedAt.IsZero())
		staged, err := l.store.(backoffice.RenewalStore).StagedRenewal(ctx, renewalNIP)
		require.NoError(t, err)
		assert.Equal(t, newer.ID, staged.ID, "the newer import stays staged, built on the card's new EF.SOD next time")

		// the same record again: a duplicate, nothing changes
		assert.Equal(t, wire.Duplicate, l.ingest(enc)[0].Status)

		// unknown update; a known update with a new EF.SOD it was never
		// offered with
		unknown := l.renewalRecord("t-01", card, [16]byte{0xEE}, old, o.NewSOD)
		mismatch := l.renewalRecord("t-01", card, newer.ID, o.NewSOD, [32]byte{0x01})
		wrongBase := l.renewalRecord("t-01", card, u.ID, [32]byte{0x02}, o.NewSOD)
		res = l.ingest(unknown, mismatch, wrongBase)
		assert.Equal(t, []wire.Status{wire.Accepted, wire.Accepted, wire.Accepted}, statuses(res), "signed by a SAM: stored")
		alarms, err := l.store.Alarms(ctx, backoffice.AlarmQuery{Limit: 100})
		require.NoError(t, err)
		var unmatched []wire.Alarm
		for _, a := range alarms {
			if a.Kind == backoffice.AlarmRenewalUnmatched {
				unmatched = append(unmatched, a)
			}
		}
		require.Len(t, unmatched, 3)
		for _, a := range unmatched {
			assert.Equal(t, "t-01", a.TerminalID)
			assert.NotContains(t, a.Detail, renewalNIP, "no personal data in the alarm")
		}
		details := unmatched[0].Detail + unmatched[1].Detail + unmatched[2].Detail
		assert.Equal(t, 1, strings.Count(details, "never staged"))
		assert.Equal(t, 2, strings.Count(details, "match no offer"), "a new EF.SOD never offered; an offer's new EF.SOD on another base")
		staged, err = l.store.(backoffice.RenewalStore).StagedRenewal(ctx, renewalNIP)
		require.NoError(t, err)
		assert.Equal(t, backoffice.RenewalStaged, staged.Status, "a mismatching record applies nothing")

		counts, err := rl.svc.RenewalCounts(ctx)
		require.NoError(t, err)
		assert.Equal(t, map[backoffice.RenewalStatus]int64{backoffice.RenewalApplied: 1, backoffice.RenewalStaged: 1}, counts)
		m := scrape(t, rl.svc)
		assert.Equal(t, 1.0, m[`kpe_backoffice_renewal_updates{status="applied"}`])
		assert.Equal(t, 3.0, m[`kpe_backoffice_alarms_open{kind="renewal-unmatched"}`], "the three unmatched records")
	})
}

// On PostgreSQL the update is applied in the transaction that stores the
// renewal record: while it is open nobody sees either, and a back office
// killed before its commit (the transaction rolled back) leaves neither;
// the terminal sends the record again and both are there.
func TestRenewalAppliedAtomically(t *testing.T) {
	ctx := context.Background()
	st, err := backoffice.OpenPostgres(ctx, pgtest.DB(t))
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	iss := newTestIssuer(t, "BKN")
	rl := newRenewalLab(t, l, iss)
	card := newTestCard(t, iss)
	u := stage(t, rl.svc, "III/b")
	status, body := rl.askCard(t, card)
	require.Equal(t, http.StatusOK, status)
	o := offerOf(t, body)
	l.ingest(l.records(1, "t-01")...) // the SAM's certificate pinned, the chain started

	enc := l.renewalRecord("t-01", card, u.ID, renewal.SODHash(card.sod), o.NewSOD)
	r, err := record.Decode(enc)
	require.NoError(t, err)
	h, content, err := record.HashesOf(enc)
	require.NoError(t, err)
	code := record.CodeOf(h).String()
	entry := backoffice.Entry{Rec: r, Encoded: enc, Hash: h, Content: content, Code: code}
	staged := func() backoffice.RenewalStatus {
		us, err := rl.svc.RenewalUpdates(ctx, backoffice.RenewalFilter{NIP: renewalNIP})
		require.NoError(t, err)
		require.Len(t, us, 1)
		return us[0].Status
	}
	err = st.IngestThenAbort(ctx, []backoffice.Entry{entry}, backoffice.Meta{Now: time.Now()}, func() {
		assert.Equal(t, backoffice.RenewalStaged, staged(), "not applied before the commit")
		_, err := st.ByCode(ctx, code)
		assert.ErrorIs(t, err, backoffice.ErrNotFound)
	})
	require.NoError(t, err)
	assert.Equal(t, backoffice.RenewalStaged, staged(), "killed before the commit: not applied")
	_, err = st.ByCode(ctx, code)
	assert.ErrorIs(t, err, backoffice.ErrNotFound, "and the record not stored")

	assert.Equal(t, wire.Accepted, l.ingest(enc)[0].Status, "the terminal sends it again")
	assert.Equal(t, backoffice.RenewalApplied, staged())
	_, err = st.ByCode(ctx, code)
	assert.NoError(t, err)
}

// Once a renewal's record has arrived, a card holding that update's data
// is not given its offer again (the terminal would record the renewal a
// second time); the card's new EF.SOD is the base of the NIP's next
// update. Found by agent/daemon's TestRenewalEndToEnd: every later visit
// of the renewed card wrote another renewal record, and a newer update
// staged for the NIP was never offered.
func TestRenewalOfferAfterApplied(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		iss := newTestIssuer(t, "BKN")
		rl := newRenewalLab(t, l, iss)
		card := newTestCard(t, iss)
		u := stage(t, rl.svc, "III/b")
		o, body, old := rl.takeOffer(t, card)

		// the record not yet arrived: the offer, so the terminal records it
		status, held := rl.askCard(t, card)
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, body, held)

		res := l.ingest(l.renewalRecord("t-01", card, u.ID, old, o.NewSOD))
		require.Equal(t, wire.Accepted, res[0].Status)
		status, body = rl.askCard(t, card)
		assert.Equal(t, http.StatusNoContent, status, "applied: nothing more for this card: %s", body)

		// the NIP's next update is built on the card's new EF.SOD
		next := stage(t, rl.svc, "III/c")
		status, body = rl.askCard(t, card)
		require.Equal(t, http.StatusOK, status, "%s", body)
		o2 := offerOf(t, body)
		assert.Equal(t, next.ID, o2.UpdateID)
		assert.Equal(t, o.NewSOD, o2.BaseSOD)
		assert.Equal(t, o.Sequence+1, o2.Sequence)
		require.NoError(t, renewal.Verify(o2, card.state(), iss.pool(), rl.now()))
	})
}
