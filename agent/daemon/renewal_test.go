package daemon

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"maps"
	"math/big"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/verdict"
	"kpe-agent/internal/i18n"
	"kpe-agent/internal/kpedata"
	"kpe-agent/internal/renewal"
	"kpe-agent/internal/sod"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
	"kpe-agent/sync/uploader"
	"kpe-agent/sync/wire"
)

const renewalNIP = "196608011988031001"

var renewalNow = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

// renewalIssuer is a document signer under a CA (the BKN issuer).
type renewalIssuer struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pool *x509.CertPool
}

func newRenewalIssuer(t *testing.T) renewalIssuer {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "BKN test CA"},
		NotBefore: renewalNow.Add(-24 * time.Hour), NotAfter: renewalNow.Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "document signer"},
		NotBefore: renewalNow.Add(-24 * time.Hour), NotAfter: renewalNow.Add(180 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return renewalIssuer{key: key, cert: cert, pool: pool}
}

func employmentOf(gol string) kpedata.Employment {
	return kpedata.Employment{Status: "PNS", Pangkat: "Penata Muda", GolonganRuang: gol, TMTPangkat: "20200401", Jabatan: "Analis",
		TMTJabatan: "20200401", ParentAgency: "BKN", WorkingAgency: "Kanreg I", WorkLocation: "Yogyakarta"}
}

// fakeCard is a KPE that renewals write: it keeps its groups, EF.SOD and
// sequence, and commits an update as the card does (all or nothing).
type fakeCard struct {
	t      *testing.T
	ob     *outbox.Outbox
	mu     sync.Mutex
	serial [8]byte
	groups map[int][]byte
	sod    []byte
	seq    uint32
	writes int
	// writeErr, when set, is what Write answers; commit says whether the
	// card committed anyway (the answer to COMMIT lost)
	writeErr error
	commit   bool
	// journal is the card's journal entry at the moment of the write
	journal *outbox.Journal
}

func newFakeCard(t *testing.T, iss renewalIssuer, ob *outbox.Outbox) *fakeCard {
	groups := map[int][]byte{
		1: kpedata.Identity{NIP: renewalNIP, Name: "Budi Santoso", BirthPlace: "Bandung", BirthDate: "19660801", Gender: "L", Address: "Jl. Merdeka 1", NIK: "3273010108660001"}.Encode(),
		2: employmentOf("III/a").Encode(),
		4: kpedata.Benefits{BPJSNumber: "0001234567890", TaspenNumber: "T-123", BankName: "BRI", AccountMasked: "****1234"}.Encode(),
		6: {0x7F, 0x61, 0x03, 0x02, 0x01, 0x00},
	}
	s, err := sod.Sign(groups, iss.key, iss.cert)
	require.NoError(t, err)
	return &fakeCard{t: t, ob: ob, serial: [8]byte{0xA1, 0, 0, 0, 0, 0, 0, 7}, groups: groups, sod: s, seq: 1}
}

func (c *fakeCard) Write(_ context.Context, serial [8]byte, u kpe.Update, _ func(kpe.WriteStep, int)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	j, err := c.ob.Journal(serial)
	require.NoError(c.t, err)
	c.journal = j
	if c.writeErr != nil && !c.commit {
		return c.writeErr
	}
	maps.Copy(c.groups, u.Groups)
	c.sod, c.seq = u.SOD, u.Sequence
	return c.writeErr
}

func (c *fakeCard) Reread(context.Context) (*cards.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.result(), nil
}

// result is the card as an authentication reads it.
func (c *fakeCard) result() *cards.Result {
	ok := verdict.Check{OK: true}
	k := &kpe.Card{SOD: append([]byte(nil), c.sod...), Groups: maps.Clone(c.groups), Update: kpe.UpdateStatus{Supported: true, Sequence: c.seq}}
	k.Info.Serial, k.Info.Type, k.Identity.NIP = c.serial, kpe.CardKPE, renewalNIP
	return &cards.Result{Kind: cards.KindKPE, KPE: k, Checks: cards.Checks{CardAuthentic: ok, DataAuthentic: ok, IdentifiersConsistent: ok}}
}

// renewalRig is one terminal's renewal: an outbox, a back office that
// answers offers, a SAM that signs (software), a card.
type renewalRig struct {
	t        *testing.T
	iss      renewalIssuer
	ob       *outbox.Outbox
	card     *fakeCard
	env      *renewalEnv
	signer   *record.SoftwareSigner
	answer   func(q wire.RenewalQuery) (uploader.OfferAnswer, error)
	asked    int
	events   []string
	sealFail error
	mu       sync.Mutex
}

func newRenewalRig(t *testing.T) *renewalRig {
	rg := &renewalRig{t: t, iss: newRenewalIssuer(t)}
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { ob.Close() })
	rg.ob = ob
	rg.card = newFakeCard(t, rg.iss, ob)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	rg.signer = record.NewSoftwareSigner(key, [8]byte{'S', 'A', 'M'}, 0)
	rg.env = &renewalEnv{ob: ob, roots: func() *x509.CertPool { return rg.iss.pool }, now: func() time.Time { return renewalNow },
		log: slog.New(slog.DiscardHandler),
		ask: func(_ context.Context, q wire.RenewalQuery) (uploader.OfferAnswer, error) {
			rg.mu.Lock()
			rg.asked++
			rg.mu.Unlock()
			return rg.answer(q)
		},
		seal: func(ctx context.Context, rec *record.Record) error {
			if rg.sealFail != nil {
				return rg.sealFail
			}
			prev, err := ob.LastHash()
			if err != nil {
				return err
			}
			rec.PrevHash = prev
			if err := record.Seal(ctx, rec, rg.signer); err != nil {
				return err
			}
			_, err = ob.AppendRenewal(rec)
			return err
		},
		publish: func(_, state string) {
			rg.mu.Lock()
			rg.events = append(rg.events, state)
			rg.mu.Unlock()
		}}
	return rg
}

// offer is the back office's offer for the card as it is now: DG2 with
// a new golongan, signed by iss.
func (rg *renewalRig) offer(iss renewalIssuer) *renewal.Offer {
	o, err := renewal.Build(renewal.BuildInput{
		Staged: renewal.Staged{UpdateID: [16]byte{0xAB, 1, 2, 3}, NIP: renewalNIP, Groups: map[int][]byte{2: employmentOf("III/b").Encode()}},
		Serial: rg.card.serial, CardSOD: rg.card.sod, CardDG1: rg.card.groups[1], Sequence: rg.card.seq + 1, NotAfter: renewalNow.Add(24 * time.Hour),
	}, rg.iss.pool, renewalNow, iss.key, iss.cert)
	require.NoError(rg.t, err)
	return o
}

// run is the renewal run after the holder's fingerprint matched.
func (rg *renewalRig) run() *renewalRun {
	res := rg.card.result()
	tmpl := &record.Record{TerminalID: "t-01", SiteID: "s-01", OperatorID: "kiosk", Service: api.ServiceKiosk, CardType: record.CardKPE,
		CardSerial: rg.card.serial[:], SubjectKind: record.SubjectNIP, Subject: renewalNIP,
		CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
		Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Pass}, Clock: record.ClockSynced}
	return newRenewalRun(rg.env, rg.card, "Reader 0", "kiosk-1", true, res, tmpl)
}

func (rg *renewalRig) journal() *outbox.Journal {
	j, err := rg.ob.Journal(rg.card.serial)
	require.NoError(rg.t, err)
	return j
}

func (rg *renewalRig) lastRecord() *record.Record {
	r, err := rg.ob.Last()
	require.NoError(rg.t, err)
	return r
}

// A verified offer is shown side by side, written on agreement with the
// journal on disk first, read back, and recorded (renewal record with the
// update id and both SOD hashes); the journal entry is gone with it.
func TestRenewalOfferVerifiedAndWritten(t *testing.T) {
	rg := newRenewalRig(t)
	o := rg.offer(rg.iss)
	oldSOD := rg.card.sod
	rg.answer = func(q wire.RenewalQuery) (uploader.OfferAnswer, error) {
		assert.Equal(t, "a100000000000007", q.CardSerial)
		assert.Equal(t, renewalNIP, q.NIP)
		assert.Equal(t, oldSOD, q.SOD)
		assert.Equal(t, uint32(1), q.Sequence)
		return uploader.OfferAnswer{Offer: o}, nil
	}
	run := rg.run()
	run.begin(context.Background(), true)
	v := run.view(i18n.Indonesian, i18n.Holder)
	require.Equal(t, api.RenewalAvailable, v.State)
	require.NotEmpty(t, v.Card)
	require.Len(t, v.New, len(v.Card))
	changed := 0
	for i, f := range v.New {
		assert.Equal(t, 2, f.Group, "only the changed group is compared")
		assert.Equal(t, v.Card[i].Key, f.Key)
		if f.Changed {
			changed++
			assert.Equal(t, "employment.pangkat", f.Key)
			assert.Equal(t, "Penata Muda III/a", v.Card[i].Value)
			assert.Equal(t, "Penata Muda III/b", f.Value)
			assert.Equal(t, i18n.Indonesian.T("kiosk.renewal.field.employment.pangkat"), f.Label)
		}
	}
	assert.Equal(t, 1, changed)

	require.NoError(t, run.apply(context.Background()))
	v = run.view(i18n.English, i18n.Holder)
	require.Equal(t, api.RenewalDone, v.State, v.Reason)
	assert.NotEmpty(t, v.Code)
	assert.Equal(t, 1, rg.card.writes)
	require.NotNil(t, rg.card.journal, "the journal was on disk before the write")
	assert.Equal(t, outbox.JournalWriting, rg.card.journal.Step)
	assert.Equal(t, o.UpdateID, rg.card.journal.UpdateID)
	assert.Nil(t, rg.journal(), "removed with the record")
	rec := rg.lastRecord()
	require.NotNil(t, rec)
	assert.Equal(t, record.ServiceRenewal, rec.Service)
	require.NotNil(t, rec.Renewal)
	assert.Equal(t, o.UpdateID, rec.Renewal.UpdateID)
	assert.Equal(t, renewal.SODHash(oldSOD), rec.Renewal.OldSOD)
	assert.Equal(t, o.NewSOD, rec.Renewal.NewSOD)
	assert.Equal(t, renewalNIP, rec.Subject)
	h, err := rec.Hash()
	require.NoError(t, err)
	assert.Equal(t, record.CodeOf(h).String(), v.Code)
	assert.Equal(t, []string{api.RenewalChecking, api.RenewalAvailable, api.RenewalWriting, api.RenewalDone}, rg.events)
	assert.ErrorContains(t, run.apply(context.Background()), "no offer", "applied once")
}

// Forged, replayed and foreign offers are refused before anything is
// written; so is an answer that is not an offer.
func TestRenewalRefusedOffers(t *testing.T) {
	for _, c := range []struct {
		name  string
		offer func(rg *renewalRig) *renewal.Offer
	}{
		{"forged", func(rg *renewalRig) *renewal.Offer {
			o := rg.offer(rg.iss)
			o.Groups[2] = employmentOf("IV/e").Encode() // not what the issuer signed
			return o
		}},
		{"untrusted issuer", func(rg *renewalRig) *renewal.Offer {
			other := newRenewalIssuer(t)
			o, err := renewal.Build(renewal.BuildInput{
				Staged: renewal.Staged{UpdateID: [16]byte{9}, NIP: renewalNIP, Groups: map[int][]byte{2: employmentOf("IV/e").Encode()}},
				Serial: rg.card.serial, CardSOD: rg.card.sod, CardDG1: rg.card.groups[1], Sequence: 2, NotAfter: renewalNow.Add(time.Hour),
			}, rg.iss.pool, renewalNow, other.key, other.cert)
			require.NoError(t, err)
			return o
		}},
		{"replayed", func(rg *renewalRig) *renewal.Offer {
			o := rg.offer(rg.iss)
			rg.card.seq = 5 // the card moved on since
			return o
		}},
		{"another card", func(rg *renewalRig) *renewal.Offer {
			o := rg.offer(rg.iss)
			rg.card.serial[7] = 8
			return o
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rg := newRenewalRig(t)
			o := c.offer(rg)
			rg.answer = func(wire.RenewalQuery) (uploader.OfferAnswer, error) { return uploader.OfferAnswer{Offer: o}, nil }
			run := rg.run()
			run.begin(context.Background(), true)
			v := run.view(i18n.Indonesian, i18n.Holder)
			assert.Equal(t, api.RenewalFailed, v.State)
			assert.Equal(t, reasonOfferRefused, v.Reason)
			assert.Equal(t, i18n.Indonesian.T("kiosk.renewal.reason.offer-refused"), v.Message)
			assert.Empty(t, v.New, "nothing of a refused offer is shown")
			assert.Error(t, run.apply(context.Background()))
			assert.Zero(t, rg.card.writes, "nothing written")
			assert.Nil(t, rg.journal())
			assert.Nil(t, rg.lastRecord())
		})
	}
	rg := newRenewalRig(t)
	rg.answer = func(wire.RenewalQuery) (uploader.OfferAnswer, error) {
		return uploader.OfferAnswer{}, renewal.ErrFormat
	}
	run := rg.run()
	run.begin(context.Background(), true)
	assert.Equal(t, reasonOfferRefused, run.view(i18n.English, i18n.Clerk).Reason)
	rg.answer = func(wire.RenewalQuery) (uploader.OfferAnswer, error) {
		return uploader.OfferAnswer{}, uploader.ErrBadSOD
	}
	require.NoError(t, run.check(context.Background()))
	assert.Equal(t, reasonBadSOD, run.view(i18n.English, i18n.Clerk).Reason)
}

// No offer: the reason is shown quietly, worded for the audience.
func TestRenewalNoOffer(t *testing.T) {
	rg := newRenewalRig(t)
	for _, reason := range []string{uploader.NoOfferNone, uploader.NoOfferOffline, uploader.NoOfferTimeout, uploader.NoOfferUnavailable} {
		rg.answer = func(wire.RenewalQuery) (uploader.OfferAnswer, error) {
			return uploader.OfferAnswer{Reason: reason}, nil
		}
		run := rg.run()
		run.begin(context.Background(), true)
		v := run.view(i18n.Indonesian, i18n.Clerk)
		assert.Equal(t, api.RenewalNone, v.State)
		assert.Equal(t, reason, v.Reason)
		assert.Equal(t, i18n.Indonesian.T("loket.renewal.reason."+reason), v.Message)
		assert.NotEqual(t, "loket.renewal.reason."+reason, v.Message, "worded")
	}
	// the counter's run waits for the clerk
	rg.asked = 0
	rg.run().begin(context.Background(), false)
	assert.Zero(t, rg.asked)
}

// The card holds the offered data already (its record was missed): the
// renewal record is written now, nothing is written to the card.
func TestRenewalAppliedEarlier(t *testing.T) {
	rg := newRenewalRig(t)
	o := rg.offer(rg.iss)
	oldSOD := rg.card.sod
	maps.Copy(rg.card.groups, o.Groups)
	rg.card.sod, rg.card.seq = o.SOD, o.Sequence
	rg.answer = func(wire.RenewalQuery) (uploader.OfferAnswer, error) { return uploader.OfferAnswer{Offer: o}, nil }
	run := rg.run()
	run.begin(context.Background(), true)
	v := run.view(i18n.Indonesian, i18n.Holder)
	require.Equal(t, api.RenewalDone, v.State, v.Reason)
	assert.NotEmpty(t, v.Code)
	assert.Zero(t, rg.card.writes)
	rec := rg.lastRecord()
	require.NotNil(t, rec)
	assert.Equal(t, renewal.SODHash(oldSOD), rec.Renewal.OldSOD)
	assert.Equal(t, o.NewSOD, rec.Renewal.NewSOD)
}

// A journal entry whose new data the card holds: the record is written at
// the next authentication without asking the back office (resume); the
// record's failure before kept the entry (journal or record, never
// neither).
func TestRenewalResumeFromJournal(t *testing.T) {
	rg := newRenewalRig(t)
	o := rg.offer(rg.iss)
	rg.answer = func(wire.RenewalQuery) (uploader.OfferAnswer, error) { return uploader.OfferAnswer{Offer: o}, nil }
	run := rg.run()
	run.begin(context.Background(), true)
	rg.sealFail = errors.New("SAM gone")
	require.NoError(t, run.apply(context.Background()))
	v := run.view(i18n.English, i18n.Holder)
	assert.Equal(t, api.RenewalFailed, v.State)
	assert.Equal(t, reasonNotRecorded, v.Reason)
	assert.Equal(t, 1, rg.card.writes)
	j := rg.journal()
	require.NotNil(t, j, "no record: the journal keeps the renewal")
	assert.Equal(t, outbox.JournalVerified, j.Step)
	assert.Nil(t, rg.lastRecord())

	rg.sealFail = nil
	rg.asked = 0
	run = rg.run() // the card inserted again, the holder authenticated
	run.begin(context.Background(), true)
	v = run.view(i18n.English, i18n.Holder)
	require.Equal(t, api.RenewalDone, v.State, v.Reason)
	assert.Zero(t, rg.asked, "resumed from the journal")
	assert.Equal(t, 1, rg.card.writes, "not written again")
	assert.Nil(t, rg.journal())
	rec := rg.lastRecord()
	require.NotNil(t, rec)
	assert.Equal(t, o.UpdateID, rec.Renewal.UpdateID)
}

// The card pulled during the writing (before COMMIT): interrupted, the
// journal kept; at the next insertion the card holds its old data: the
// holder is told so and the offer is made again.
func TestRenewalInterrupted(t *testing.T) {
	rg := newRenewalRig(t)
	o := rg.offer(rg.iss)
	rg.answer = func(wire.RenewalQuery) (uploader.OfferAnswer, error) { return uploader.OfferAnswer{Offer: o}, nil }
	run := rg.run()
	run.begin(context.Background(), true)
	rg.card.writeErr = &kpe.UpdateError{Step: kpe.StepGroupWritten, Err: apdu.ErrCardRemoved}
	require.NoError(t, run.apply(context.Background()))
	v := run.view(i18n.Indonesian, i18n.Holder)
	assert.Equal(t, api.RenewalInterrupted, v.State)
	assert.Equal(t, reasonCardRemoved, v.Reason)
	assert.Equal(t, i18n.Indonesian.T("kiosk.renewal.reason.card-removed"), v.Message)
	require.NotNil(t, rg.journal(), "the next insertion needs it")
	assert.Nil(t, rg.lastRecord())

	rg.card.writeErr = nil
	run = rg.run()
	run.begin(context.Background(), true)
	v = run.view(i18n.Indonesian, i18n.Holder)
	assert.True(t, v.Interrupted, "the holder is told the card holds its old data")
	assert.Equal(t, api.RenewalAvailable, v.State, "offered again")
	assert.Nil(t, rg.journal())
	require.NoError(t, run.apply(context.Background()))
	assert.Equal(t, api.RenewalDone, run.view(i18n.English, i18n.Holder).State)

	// COMMIT's answer lost, the card committed: read back and recorded
	rg2 := newRenewalRig(t)
	o2 := rg2.offer(rg2.iss)
	rg2.answer = func(wire.RenewalQuery) (uploader.OfferAnswer, error) { return uploader.OfferAnswer{Offer: o2}, nil }
	run = rg2.run()
	run.begin(context.Background(), true)
	rg2.card.writeErr, rg2.card.commit = &kpe.UpdateError{Step: kpe.StepCommitted, Err: apdu.ErrTransport}, true
	require.NoError(t, run.apply(context.Background()))
	assert.Equal(t, api.RenewalDone, run.view(i18n.English, i18n.Holder).State)
	assert.Nil(t, rg2.journal())

	// a journal entry matching neither side: reported and cleared
	rg3 := newRenewalRig(t)
	require.NoError(t, rg3.ob.PutJournal(outbox.Journal{Serial: rg3.card.serial, Sequence: 9, OldSOD: [32]byte{1}, NewSOD: [32]byte{2}, Step: outbox.JournalCommitUnknown}))
	rg3.answer = func(wire.RenewalQuery) (uploader.OfferAnswer, error) {
		return uploader.OfferAnswer{Reason: uploader.NoOfferNone}, nil
	}
	run = rg3.run()
	run.begin(context.Background(), true)
	assert.Equal(t, reasonUnknown, run.view(i18n.English, i18n.Clerk).Reason)
	assert.Nil(t, rg3.journal())
}

// A SAM without the update key, and a card that refuses: failed, the
// journal entry removed, the card holds its old data.
func TestRenewalWriteFailures(t *testing.T) {
	for _, c := range []struct {
		err    error
		reason string
	}{
		{&kpe.UpdateError{Step: kpe.StepAuthenticated, Err: kpe.ErrNoUpdateKey}, reasonNoUpdateKey},
		{&kpe.UpdateError{Step: kpe.StepBegun, Err: kpe.ErrUpdateRefused}, reasonWriteFailed},
	} {
		rg := newRenewalRig(t)
		o := rg.offer(rg.iss)
		rg.answer = func(wire.RenewalQuery) (uploader.OfferAnswer, error) { return uploader.OfferAnswer{Offer: o}, nil }
		run := rg.run()
		run.begin(context.Background(), true)
		rg.card.writeErr = c.err
		require.NoError(t, run.apply(context.Background()))
		v := run.view(i18n.English, i18n.Holder)
		assert.Equal(t, api.RenewalFailed, v.State)
		assert.Equal(t, c.reason, v.Reason)
		assert.Nil(t, rg.journal())
		assert.Nil(t, rg.lastRecord())
	}
}

// Declined: the offer is put aside; the card's data is wiped with the run.
func TestRenewalDeclineAndWipe(t *testing.T) {
	rg := newRenewalRig(t)
	o := rg.offer(rg.iss)
	rg.answer = func(wire.RenewalQuery) (uploader.OfferAnswer, error) { return uploader.OfferAnswer{Offer: o}, nil }
	run := rg.run()
	run.begin(context.Background(), true)
	require.NoError(t, run.decline())
	v := run.view(i18n.English, i18n.Holder)
	assert.Equal(t, api.RenewalNone, v.State)
	assert.Equal(t, reasonDeclined, v.Reason)
	assert.Error(t, run.apply(context.Background()))
	g := run.groups[2]
	run.wipe()
	assert.Nil(t, run.groups)
	assert.Equal(t, make([]byte, len(g)), g, "the group's bytes are zeroed")
	assert.True(t, run.mayUse(""))
	assert.True(t, run.mayUse("kiosk-1"))
	assert.False(t, run.mayUse("kiosk-2"), "another kiosk credential")
}

// A group that changes only in what the comparison does not show (here a
// family member's NIK) gets one marked row, so the holder never agrees to
// two identical columns; a group whose shown fields change gets none.
func TestRenewalComparisonShowsHiddenChanges(t *testing.T) {
	fam := func(nik string) []byte {
		return kpedata.Family{Members: []kpedata.Member{{Spouse: true, Name: "Sri Wahyuni", NIK: nik, BirthDate: "19750315", Dependant: true}}}.Encode()
	}
	card := map[int][]byte{3: fam("3471015503750002"), 2: employmentOf("III/a").Encode()}
	offer := map[int][]byte{3: fam("3471015503750009"), 2: employmentOf("III/b").Encode()}
	onCard, offered := compareGroups([]int{2, 3}, card, offer, i18n.Indonesian)
	var other []string
	for i, f := range offered {
		if f.Group == 3 && f.Changed {
			other = append(other, f.Key)
			assert.Equal(t, i18n.Indonesian.T("kiosk.renewal.other.card"), onCard[i].Value)
		}
		assert.NotContains(t, f.Value, "3471015503750009", "the NIK is not shown")
	}
	assert.Equal(t, []string{"other.3"}, other)
	for _, f := range offered {
		assert.NotEqual(t, "other.2", f.Key, "DG2's change is shown by its fields")
	}
}
