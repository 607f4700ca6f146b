package daemon_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/agent/config"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/pcsc"
	"kpe-agent/apdu/sm"
	"kpe-agent/internal/i18n"
	"kpe-agent/internal/renewal"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/labpki"
	"kpe-agent/lab/labset"
	"kpe-agent/lab/pcsctest"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// The card data renewal through the whole terminal (docs/renewal.md):
// the back office on PostgreSQL with its issuer key in a SoftHSM2 token,
// the agent on real pcscd with the lab's SAM and Budi's KPE, the kiosk
// page's and the counter screen's credentials.

const budiNIP = "197208172000031002"

var budiSerial = [8]byte{0, 0, 0, 0, 0, 0, 0x01, 0x01}

// budiFamily is the family on Budi's lab card (testdata/cards/lab/spec.json)
// in the import format; a change of the family names it whole.
const budiFamily = `
	{"kind": "spouse", "name": "Sri Wahyuni, S.Pd.", "nik": "3471015503750002", "birth_date": "19750315", "relation": "Istri", "dependant": true, "kpe_tambahan": "0000000000000102"},
	{"kind": "child", "name": "Andi Prasetyo", "nik": "3471011204010001", "birth_date": "20010412", "relation": "Anak Kandung", "dependant": false},
	{"kind": "child", "name": "Rina Kusumawati", "nik": "3471014807040002", "birth_date": "20040708", "relation": "Anak Kandung", "dependant": true},
	{"kind": "child", "name": "Dimas Nugroho", "nik": "3471010902080003", "birth_date": "20080209", "relation": "Anak Kandung", "dependant": true},
	{"kind": "child", "name": "Putri Ayu Lestari", "nik": "3471016111120004", "birth_date": "20121121", "relation": "Anak Kandung", "dependant": true, "kpe_tambahan": "0000000000000103"}`

// budiPromotion is an import for Budi: a promotion to IV/d (tmt given)
// and a new child.
func budiPromotion(tmt string) string {
	return `[{"nip": "` + budiNIP + `",
	  "employment": {"status": "PNS", "pangkat": "Pembina Utama Madya", "golongan_ruang": "IV/d", "tmt_pangkat": "` + tmt + `",
	    "jabatan": "Kepala Bidang Pelayanan Kesehatan", "tmt_jabatan": "20210105",
	    "parent_agency": "Pemerintah Daerah Daerah Istimewa Yogyakarta", "working_agency": "Dinas Kesehatan Daerah Istimewa Yogyakarta",
	    "work_units": [{"level": 1, "name": "Dinas Kesehatan"}, {"level": 2, "name": "Bidang Pelayanan Kesehatan"}, {"level": 3, "name": "Seksi Pelayanan Kesehatan Rujukan"}],
	    "work_location": "Kota Yogyakarta"},
	  "family": [` + budiFamily + `,
	    {"kind": "child", "name": "Bayu Aji Santoso", "nik": "3471010503260005", "birth_date": "20260305", "relation": "Anak Kandung", "dependant": true}]}]`
}

// budiNewBank is an import for Budi: his benefits with another bank
// account.
const budiNewBank = `[{"nip": "` + budiNIP + `",
  "benefits": {"bpjs_number": "0001234567890", "taspen_number": "19720817200003100", "taperum_number": "TPR-3471-2000-0345",
    "taperum_status": "AKTIF", "bank": "BRI", "account_masked": "********7788"}}]`

// newRenewalRig is the rig with the issuer key in a SoftHSM2 token and
// renewal on (kpe-agent's default with a back office), the SAM in place.
func newRenewalRig(t *testing.T, o rigOptions) *rig {
	o.hsm = true
	r := newRigWith(t, o)
	r.setConf(func(c *config.Config) { c.Renewal = config.Renewal{Enabled: true, OfferTimeout: 10 * time.Second} })
	r.insert(1, "sam.json")
	r.waitHealth(samReady)
	return r
}

// stage imports one change and returns its staged update.
func (r *rig) stage(t *testing.T, body string) backoffice.RenewalUpdate {
	t.Helper()
	res, err := r.svc.ImportRenewals(context.Background(), "json", strings.NewReader(body))
	require.NoError(t, err)
	require.Len(t, res.Updates, 1)
	return res.Updates[0]
}

// update is the back office's state of the staged update id.
func (r *rig) update(t *testing.T, id [16]byte) backoffice.RenewalUpdate {
	t.Helper()
	us, err := r.svc.RenewalUpdates(context.Background(), backoffice.RenewalFilter{NIP: budiNIP})
	require.NoError(t, err)
	i := slices.IndexFunc(us, func(u backoffice.RenewalUpdate) bool { return u.ID == id })
	require.GreaterOrEqual(t, i, 0, "update %x unknown", id)
	return us[i]
}

// syncNow sends the outbox (POST /v1/sync): everything accepted.
func (r *rig) syncNow(t *testing.T) {
	t.Helper()
	var res api.SyncResult
	status, e := r.call("POST", api.PathSync, nil, &res)
	require.Equal(t, http.StatusOK, status, "%+v", e)
	require.Nil(t, res.Error)
	require.Zero(t, res.Remaining)
	require.Zero(t, res.Rejected)
}

// slotAPDUs is how many APDUs the card in slot 0 has been sent since it
// was inserted.
func (r *rig) slotAPDUs(t *testing.T) int {
	t.Helper()
	st, err := r.lab.SlotStatus(0)
	require.NoError(t, err)
	return int(st.APDUs)
}

// tracedCard is a lab card that notes the instruction of every command
// it processes (a command that a fault kept from it is not noted).
type tracedCard struct {
	cardsim.Card
	mu  sync.Mutex
	ins []byte
}

func (c *tracedCard) Process(cmd []byte) []byte {
	if len(cmd) >= 2 {
		c.mu.Lock()
		c.ins = append(c.ins, cmd[1])
		c.mu.Unlock()
	}
	return c.Card.Process(cmd)
}

func (c *tracedCard) Name() string { return cardsim.CardName(c.Card) }

// SyntheticFinger keeps the lab sensor working with the wrapped card.
func (c *tracedCard) SyntheticFinger() (uint64, int, int, bool) {
	if fh, ok := c.Card.(cardsim.FingerHolder); ok {
		return fh.SyntheticFinger()
	}
	return 0, 0, 0, false
}

// since is the instructions processed after the first n.
func (c *tracedCard) since(n int) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.ins[n:])
}

func (c *tracedCard) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ins)
}

// updateCommands counts BEGIN UPDATE, UPDATE BINARY and COMMIT UPDATE in
// ins.
func updateCommands(ins []byte) int {
	n := 0
	for _, b := range ins {
		if b == kpe.InsBeginUpdate || b == kpe.InsUpdateBinary || b == kpe.InsCommitUpdate {
			n++
		}
	}
	return n
}

const budiImage = "testdata/cards/lab/cards/kpe-budi.json"

// freshBudi is Budi's card as personalised (the lab card is its image).
func freshBudi(t *testing.T) *tracedCard {
	t.Helper()
	c, err := cardsim.LoadCard(pcsctest.RepoPath(budiImage))
	require.NoError(t, err)
	return &tracedCard{Card: c}
}

// insertCard puts c in slot 0 and waits until the agent has read it.
func (r *rig) insertCard(t *testing.T, c cardsim.Card) {
	t.Helper()
	require.NoError(t, r.lab.Insert(0, c))
	pcsctest.WaitCard(t, pcsctest.Slot0, true, 15*time.Second)
	r.waitReader(t, pcsctest.Slot0, func(rd api.Reader) bool { return rd.CardPresent && rd.State == api.StateAuthenticated })
}

// faultRemoved waits until a fault has taken the card out of slot 0 and
// the agent has seen it go.
func (r *rig) faultRemoved(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		st, err := r.lab.SlotStatus(0)
		return err == nil && !st.Inserted
	}, 20*time.Second, 10*time.Millisecond, "the fault removed the card")
	r.waitReader(t, pcsctest.Slot0, func(rd api.Reader) bool { return !rd.CardPresent })
}

// chipReader reads the card in slot 0 on its own PC/SC connection, with
// the card's keys from its image (not the agent's SAM): what is really on
// the chip, verified against the BKN roots.
type chipReader struct {
	tr    *pcsc.Transport
	keys  kpe.CardKeys
	roots *x509.CertPool
}

func newChipReader(t *testing.T) *chipReader {
	t.Helper()
	raw, err := os.ReadFile(pcsctest.RepoPath(budiImage))
	require.NoError(t, err)
	var img struct {
		Keys struct{ Enc, MAC string } `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(raw, &img))
	enc, err := hex.DecodeString(img.Keys.Enc)
	require.NoError(t, err)
	mac, err := hex.DecodeString(img.Keys.MAC)
	require.NoError(t, err)
	dir := pcsctest.RepoPath(labDir)
	m, err := labset.LoadManifest(dir)
	require.NoError(t, err)
	roots, err := m.Roots(dir, "bkn")
	require.NoError(t, err)
	tr := pcsc.New(pcsc.Options{})
	t.Cleanup(func() { tr.Close() })
	return &chipReader{tr: tr, keys: kpe.CardKeys{Enc: enc, MAC: mac}, roots: roots}
}

// BeginCardAuth authenticates with the card's own keys.
func (c *chipReader) BeginCardAuth(_ context.Context, _ [8]byte, rndIC []byte) ([]byte, func(context.Context, []byte) (*sm.Session, error), error) {
	a, ext, err := kpe.StartAuth(c.keys, rndIC, rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	return ext, func(_ context.Context, resp []byte) (*sm.Session, error) { return a.Finish(resp) }, nil
}

// read reads and verifies the card (kpe.Read), which must be genuine and
// verify in full.
func (c *chipReader) read(t *testing.T) *kpe.Card {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	card, err := c.tr.Connect(ctx, pcsctest.Slot0)
	require.NoError(t, err)
	defer card.Close()
	require.NoError(t, card.BeginTransaction(ctx))
	defer card.EndTransaction()
	k, err := kpe.Read(ctx, card, c, kpe.ReadOptions{Roots: c.roots})
	require.NoError(t, err)
	require.True(t, k.Verification.CardAuthentic.OK, "%+v", k.Verification)
	require.True(t, k.Verification.DataAuthentic.OK, "the card verifies: %+v", k.Verification)
	return k
}

// pageClient calls the local API as a page does, with the credential its
// cookie holds (the kiosk's or the counter screen's).
type pageClient struct {
	r      *rig
	cookie *http.Cookie
}

func (r *rig) kioskClient(t *testing.T) *pageClient {
	return &pageClient{r: r, cookie: &http.Cookie{Name: api.KioskCookie, Value: r.kioskPage(t).cookie}}
}

// loketClient logs in to the counter screen with a one-time link, as the
// clerk's browser does, and keeps its credential.
func (r *rig) loketClient(t *testing.T) *pageClient {
	t.Helper()
	link := r.loketLink(t)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(link)
	require.NoError(t, err)
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == api.LoketCookie {
			return &pageClient{r: r, cookie: &http.Cookie{Name: ck.Name, Value: ck.Value}}
		}
	}
	t.Fatalf("the login link set no counter credential (%d)", resp.StatusCode)
	return nil
}

func (p *pageClient) call(t *testing.T, method, path string, body, out any) (int, api.Error) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.r.base+path, rd)
	require.NoError(t, err)
	req.AddCookie(p.cookie)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if method == http.MethodPost {
		req.Header.Set("Origin", p.r.base)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode >= 400 {
		var eb api.ErrorBody
		require.NoError(t, json.Unmarshal(raw, &eb), "%s", raw)
		return resp.StatusCode, eb.Error
	}
	if out != nil && len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, out), "%s", raw)
	}
	return resp.StatusCode, api.Error{}
}

var slot0 = api.RenewalRequest{Reader: pcsctest.Slot0}

// authenticate runs an authentication of the card in slot 0 with the
// holder's finger: the kiosk's (service kiosk) or the counter's (ASKES,
// a clerk). It returns the record's code.
func (p *pageClient) authenticate(t *testing.T, kiosk bool) string {
	t.Helper()
	require.NoError(t, p.r.lab.PlaceFinger(0, cardsim.FingerGenuine))
	req := map[string]any{"service": "kiosk", "wait_seconds": 10}
	if !kiosk {
		req = map[string]any{"service": "askes", "operator": "clerk-07", "wait_seconds": 10}
	}
	var res api.AuthResult
	status, e := p.call(t, "POST", api.PathAuth, req, &res)
	require.Equal(t, http.StatusOK, status, "%+v", e)
	_, err := record.ParseCode(res.Code)
	require.NoError(t, err, res.Code)
	return res.Code
}

func (p *pageClient) renewal(t *testing.T) (api.RenewalView, int, api.Error) {
	t.Helper()
	var v api.RenewalView
	status, e := p.call(t, "GET", api.PathRenewal+"?reader="+url.QueryEscape(pcsctest.Slot0), nil, &v)
	return v, status, e
}

// waitRenewal waits until the renewal view is in one of states.
func (p *pageClient) waitRenewal(t *testing.T, states ...string) api.RenewalView {
	t.Helper()
	var v api.RenewalView
	require.Eventually(t, func() bool {
		var status int
		v, status, _ = p.renewal(t)
		return status == http.StatusOK && slices.Contains(states, v.State)
	}, 15*time.Second, 20*time.Millisecond, "renewal never %v: %+v", states, v)
	return v
}

// act posts a renewal action (check, apply, decline) for slot 0.
func (p *pageClient) act(t *testing.T, path string) (api.RenewalView, int, api.Error) {
	t.Helper()
	var v api.RenewalView
	status, e := p.call(t, "POST", path, slot0, &v)
	return v, status, e
}

// field is the field with key in fs.
func field(t *testing.T, fs []api.RenewalField, key string) api.RenewalField {
	t.Helper()
	i := slices.IndexFunc(fs, func(f api.RenewalField) bool { return f.Key == key })
	require.GreaterOrEqual(t, i, 0, "no field %s in %+v", key, fs)
	return fs[i]
}

// renewalRecord is the outbox's newest record, which must be a renewal.
func (r *rig) renewalRecord(t *testing.T) *record.Record {
	t.Helper()
	rec, err := r.ob.Last()
	require.NoError(t, err)
	require.Equal(t, record.ServiceRenewal, rec.Service)
	require.NotNil(t, rec.Renewal)
	return rec
}

// TestRenewalEndToEnd: import, staging, the offer signed in SoftHSM2, the
// kiosk's comparison, the write through real pcscd, the read-back, the
// renewal record, its sync into PostgreSQL and the update applied there;
// then a second update at the counter, by a clerk, on the renewed card.
func TestRenewalEndToEnd(t *testing.T) {
	r := newRenewalRig(t, rigOptions{})
	chip := newChipReader(t)
	ctx := context.Background()

	// the card as personalised, read on its own
	card := freshBudi(t)
	r.insertCard(t, card)
	old := chip.read(t)
	require.Zero(t, old.Update.Sequence, "never renewed")
	r.pull(t)

	upd := r.stage(t, budiPromotion("20261001"))
	assert.Equal(t, []int{2, 3}, upd.Changed())
	assert.Equal(t, backoffice.RenewalStaged, r.update(t, upd.ID).Status)

	k := r.kioskClient(t)
	var code string
	t.Run("kiosk", func(t *testing.T) {
		r.insertCard(t, card)
		mark := card.count()
		k.authenticate(t, true)
		// the kiosk asks by itself; the offer is verified, nothing written
		v := k.waitRenewal(t, api.RenewalAvailable, api.RenewalFailed)
		require.Equal(t, api.RenewalAvailable, v.State, "%+v", v)
		assert.Zero(t, updateCommands(card.since(mark)), "nothing written before the holder agrees")
		require.Equal(t, len(v.Card), len(v.New))
		pangkat := field(t, v.New, "employment.pangkat")
		assert.True(t, pangkat.Changed)
		assert.Equal(t, "Pembina Utama Madya IV/d", pangkat.Value)
		assert.Equal(t, "Pembina Utama Muda IV/c", field(t, v.Card, "employment.pangkat").Value)
		assert.Equal(t, i18n.Indonesian.T("kiosk.renewal.field.employment.pangkat"), pangkat.Label)
		assert.True(t, field(t, v.New, "employment.tmt-pangkat").Changed)
		assert.Equal(t, "1 Oktober 2026", field(t, v.New, "employment.tmt-pangkat").Value, "in words, as the profile")
		assert.False(t, field(t, v.New, "employment.jabatan").Changed)
		child := field(t, v.New, "family.member.6")
		assert.True(t, child.Changed)
		assert.Contains(t, child.Value, "Bayu Aji Santoso")
		assert.Empty(t, field(t, v.Card, "family.member.6").Value, "not on the card")
		assert.False(t, field(t, v.New, "family.member.1").Changed)
		assert.NotContains(t, fmt.Sprint(v.New), "bpjs", "benefits unchanged: not compared")

		mark = card.count()
		v, status, e := k.act(t, api.PathRenewalApply)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		require.Equal(t, api.RenewalDone, v.State, "%+v", v)
		_, err := record.ParseCode(v.Code)
		require.NoError(t, err, v.Code)
		code = v.Code
		// BEGIN, the groups and EF.SOD, one COMMIT, in that order
		ins := card.since(mark)
		begin, commit := slices.Index(ins, kpe.InsBeginUpdate), slices.Index(ins, kpe.InsCommitUpdate)
		require.True(t, begin >= 0 && commit > begin, "% x", ins)
		for _, b := range ins[begin+1 : commit] {
			assert.Contains(t, []byte{kpe.InsUpdateBinary, 0xA4}, b, "only SELECT FILE and UPDATE BINARY between BEGIN and COMMIT: % x", ins)
		}
		assert.Zero(t, updateCommands(ins[:begin]), "nothing written before BEGIN: % x", ins)
		assert.Equal(t, 1, bytes.Count(ins, []byte{kpe.InsCommitUpdate}))

		rec := r.renewalRecord(t)
		assert.Equal(t, upd.ID, rec.Renewal.UpdateID)
		assert.Equal(t, renewal.SODHash(old.SOD), rec.Renewal.OldSOD)
		j, err := r.ob.Journal(budiSerial)
		require.NoError(t, err)
		assert.Nil(t, j, "the journal entry went with the record")

		// the back office: the record verifies, the update is applied
		r.syncNow(t)
		vd, err := r.svc.Verify(ctx, code)
		require.NoError(t, err)
		assert.True(t, vd.Valid)
		assert.Equal(t, record.ServiceRenewal, vd.Service)
		assert.Equal(t, terminal, vd.TerminalID)
		got := r.update(t, upd.ID)
		assert.Equal(t, backoffice.RenewalApplied, got.Status)
		assert.Equal(t, code, got.AppliedCode)
		assert.Equal(t, terminal, got.AppliedTerminal)
		assert.Equal(t, budiSerial, got.AppliedSerial)
		st, err := r.store.ByCode(ctx, code)
		require.NoError(t, err)
		require.NotNil(t, st.Rec.Renewal)
		assert.Equal(t, *rec.Renewal, *st.Rec.Renewal)

		// the card, read again by the agent on its next insertion: the
		// new data, verified; nothing more to renew
		r.pull(t)
		r.insertCard(t, card)
		k.authenticate(t, true)
		var kv api.KioskView
		status, e = k.call(t, "GET", api.PathKioskView+"?reader="+url.QueryEscape(pcsctest.Slot0), nil, &kv)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.True(t, kv.Verified)
		require.NotNil(t, kv.Employment)
		assert.Equal(t, "IV/d", kv.Employment.GolonganRuang)
		assert.Equal(t, "Pembina Utama Madya", kv.Employment.Pangkat)
		assert.Equal(t, "2026-10-01", kv.Employment.TMTPangkat)
		require.Len(t, kv.Family, 6)
		assert.Equal(t, "Bayu Aji Santoso", kv.Family[5].Name)
		// asked again once the kiosk's own check is over: nothing staged
		require.Eventually(t, func() bool {
			v, status, _ = k.act(t, api.PathRenewalCheck)
			return status == http.StatusOK
		}, 10*time.Second, 20*time.Millisecond)
		assert.Equal(t, api.RenewalNone, v.State, "an applied update is not offered again: %+v", v)
		assert.Equal(t, "none", v.Reason)
		rec2, err := r.ob.Last()
		require.NoError(t, err)
		assert.Equal(t, "kiosk", rec2.Service, "no second renewal record")

		// and on its own: the new groups and EF.SOD, the sequence moved on
		now := chip.read(t)
		assert.Equal(t, rec.Renewal.NewSOD, renewal.SODHash(now.SOD))
		assert.Equal(t, upd.Groups[2], now.Groups[2])
		assert.Equal(t, upd.Groups[3], now.Groups[3])
		assert.Equal(t, old.Groups[1], now.Groups[1])
		assert.Equal(t, old.Groups[4], now.Groups[4])
		assert.Equal(t, uint32(1), now.Update.Sequence)
		assert.Equal(t, upd.ID, now.Update.LastID)
		r.pull(t)
	})

	// the counter: the clerk's screen asks, shows, and applies the next
	// update (the card's new state is its base) with the holder's finger
	t.Run("counter", func(t *testing.T) {
		require.NotEmpty(t, code, "the kiosk part ran")
		upd2 := r.stage(t, budiNewBank)
		before := chip // the card's state before: read below, on its own
		r.insertCard(t, card)
		base := before.read(t)
		r.pull(t)
		r.insertCard(t, card)
		l := r.loketClient(t)
		mark := card.count()
		l.authenticate(t, false)
		v, status, e := l.renewal(t)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Equal(t, api.RenewalNone, v.State, "the counter asks when the clerk does")
		v, status, e = l.act(t, api.PathRenewalCheck)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		require.Equal(t, api.RenewalAvailable, v.State, "%+v", v)
		bank := field(t, v.New, "benefits.bank")
		assert.True(t, bank.Changed)
		assert.Equal(t, "BRI ********7788", bank.Value)
		assert.Equal(t, "Bank BPD DIY ****4321", field(t, v.Card, "benefits.bank").Value)
		// a kiosk credential does not reach the clerk's holder
		_, status, _ = k.renewal(t)
		assert.Equal(t, http.StatusNotFound, status)
		assert.Zero(t, updateCommands(card.since(mark)))

		v, status, e = l.act(t, api.PathRenewalApply)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		require.Equal(t, api.RenewalDone, v.State, "%+v", v)
		rec := r.renewalRecord(t)
		assert.Equal(t, upd2.ID, rec.Renewal.UpdateID)
		assert.Equal(t, renewal.SODHash(base.SOD), rec.Renewal.OldSOD)
		r.syncNow(t)
		vd, err := r.svc.Verify(ctx, v.Code)
		require.NoError(t, err)
		assert.True(t, vd.Valid)
		assert.Equal(t, record.ServiceRenewal, vd.Service)
		got := r.update(t, upd2.ID)
		assert.Equal(t, backoffice.RenewalApplied, got.Status)
		assert.Equal(t, v.Code, got.AppliedCode)
		assert.Equal(t, backoffice.RenewalApplied, r.update(t, upd.ID).Status, "the first stays applied")

		now := chip.read(t)
		assert.Equal(t, rec.Renewal.NewSOD, renewal.SODHash(now.SOD))
		assert.Equal(t, upd2.Groups[4], now.Groups[4])
		assert.Equal(t, base.Groups[2], now.Groups[2])
		assert.Equal(t, uint32(2), now.Update.Sequence)
		r.pull(t)
	})
}

// TestRenewalTearAtEveryAPDU pulls the card at every APDU of a renewal
// (the apply: the update session, the write, the read-back), once before
// the card gets the command (RemoveAtAPDU) and once after it processed it
// (AnswerLostAtAPDU), the card reinserted each time, on a fresh card each
// run. Afterwards the card verifies and holds exactly its old data or
// exactly the new; the agent, on the next authentication, records the
// renewal the card holds or offers the update again after saying it was
// interrupted; and after a sync the back office's update is applied iff
// the card holds the new data.
func TestRenewalTearAtEveryAPDU(t *testing.T) {
	started := time.Now()
	r := newRenewalRig(t, rigOptions{})
	chip := newChipReader(t)
	k := r.kioskClient(t)

	baseline := freshBudi(t)
	r.insertCard(t, baseline)
	old := chip.read(t)
	r.pull(t)

	upd := r.stage(t, budiPromotion("20261001"))
	// run renews a fresh card with fault f armed for the apply; it returns
	// the APDUs the apply sent, the instructions the card processed in it,
	// and whether the card ends with the new data. A fault without
	// ReinsertAfter leaves the card out until the agent has seen it go;
	// then it is put back, as the holder does.
	run := func(t *testing.T, f cardsim.Fault) (int, []byte, bool) {
		card := freshBudi(t)
		r.insertCard(t, card)
		k.authenticate(t, true)
		v := k.waitRenewal(t, api.RenewalAvailable, api.RenewalFailed)
		require.Equal(t, api.RenewalAvailable, v.State, "%+v", v)
		before, mark := r.slotAPDUs(t), card.count()
		if !f.IsZero() {
			require.NoError(t, r.lab.SetFault(0, f))
		}
		applied, status, e := k.act(t, api.PathRenewalApply)
		sent, ins := r.slotAPDUs(t)-before, card.since(mark)
		if f.IsZero() {
			require.Equal(t, http.StatusOK, status, "%+v", e)
			require.Equal(t, api.RenewalDone, applied.State, "%+v", applied)
		} else {
			// the card left during the apply: never done in this session
			require.Equal(t, http.StatusOK, status, "%+v", e)
			if f.ReinsertAfter == 0 {
				// the agent saw it go
				assert.Equal(t, api.RenewalInterrupted, applied.State, "%+v", applied)
				assert.Equal(t, "card-removed", applied.Reason)
				require.NoError(t, r.lab.ClearFault(0))
				require.Eventually(t, func() bool {
					st, err := r.lab.SlotStatus(0)
					return err == nil && !st.Inserted
				}, 20*time.Second, 10*time.Millisecond)
				require.NoError(t, r.lab.Insert(0, card))
			} else {
				// back before pcscd noticed: the agent takes the lost
				// answer for the card's (failed before COMMIT; after it,
				// it reads the card back and, when it holds the new data,
				// records the renewal at once) or sees it go
				assert.Contains(t, []string{api.RenewalInterrupted, api.RenewalFailed, api.RenewalDone}, applied.State, "%+v", applied)
			}
			// back in the reader, read by the agent
			require.Eventually(t, func() bool {
				st, err := r.lab.SlotStatus(0)
				return err == nil && st.Inserted && st.Connected
			}, 20*time.Second, 10*time.Millisecond)
			require.NoError(t, r.lab.ClearFault(0))
			pcsctest.WaitCard(t, pcsctest.Slot0, true, 15*time.Second)
			if applied.State != api.RenewalDone {
				k.authenticate(t, true)
			}
		}
		// settled: the renewal recorded, or offered again (none is the
		// state before the run has looked at the card)
		v = k.waitRenewal(t, api.RenewalDone, api.RenewalAvailable, api.RenewalFailed)
		got := chip.read(t)
		newData := renewal.SODHash(got.SOD) != renewal.SODHash(old.SOD)
		j, err := r.ob.Journal(budiSerial)
		require.NoError(t, err)
		assert.Nil(t, j, "the journal is settled")
		if newData {
			rec := r.renewalRecord(t)
			assert.Equal(t, upd.ID, rec.Renewal.UpdateID)
			assert.Equal(t, renewal.SODHash(old.SOD), rec.Renewal.OldSOD)
			assert.Equal(t, renewal.SODHash(got.SOD), rec.Renewal.NewSOD)
			assert.Equal(t, upd.Groups[2], got.Groups[2])
			assert.Equal(t, upd.Groups[3], got.Groups[3])
			assert.Equal(t, old.Groups[4], got.Groups[4])
			assert.Equal(t, uint32(1), got.Update.Sequence)
			assert.Equal(t, api.RenewalDone, v.State, "the renewal recorded: %+v", v)
		} else {
			assert.Equal(t, old.SOD, got.SOD)
			for dg, b := range old.Groups {
				assert.Equal(t, b, got.Groups[dg], "DG%d", dg)
			}
			assert.Zero(t, got.Update.Sequence)
			assert.Equal(t, api.RenewalAvailable, v.State, "offered again: %+v", v)
			if applied.State == api.RenewalInterrupted {
				assert.True(t, v.Interrupted, "the holder is told: %+v", v)
			}
		}
		r.syncNow(t)
		if newData {
			assert.Equal(t, backoffice.RenewalApplied, r.update(t, upd.ID).Status)
			upd = r.stage(t, budiPromotion("20261001")) // the next run's
		} else {
			assert.Equal(t, backoffice.RenewalStaged, r.update(t, upd.ID).Status)
		}
		r.pull(t)
		return sent, ins, newData
	}

	// a dry run counts the APDUs of one apply
	var n, commitAt int
	t.Run("dry", func(t *testing.T) {
		sent, ins, renewed := run(t, cardsim.Fault{})
		require.True(t, renewed)
		require.Len(t, ins, sent, "every APDU of the apply reached the card")
		n, commitAt = sent, slices.Index(ins, kpe.InsCommitUpdate)+1
	})
	require.Positive(t, n)
	require.Positive(t, commitAt)
	t.Logf("one apply sends %d APDUs to the card (COMMIT UPDATE is #%d; then the read-back)", n, commitAt)
	var olds, news []string
	tear := func(name string, f cardsim.Fault) {
		t.Run(name, func(t *testing.T) {
			_, _, renewed := run(t, f)
			if renewed {
				news = append(news, name)
			} else {
				olds = append(olds, name)
			}
		})
	}
	for pos := 1; pos <= n; pos++ {
		tear(fmt.Sprintf("remove-at-%02d", pos), cardsim.Fault{RemoveAtAPDU: pos})
		tear(fmt.Sprintf("answer-lost-at-%02d", pos), cardsim.Fault{AnswerLostAtAPDU: pos})
	}
	// the card back before pcscd noticed it left, around the COMMIT
	for _, pos := range []int{commitAt - 1, commitAt, commitAt + 1} {
		tear(fmt.Sprintf("quick-remove-at-%02d", pos), cardsim.Fault{RemoveAtAPDU: pos, ReinsertAfter: 200 * time.Millisecond})
		tear(fmt.Sprintf("quick-answer-lost-at-%02d", pos), cardsim.Fault{AnswerLostAtAPDU: pos, ReinsertAfter: 200 * time.Millisecond})
	}
	t.Logf("%d torn renewals: %d cards kept the old data, %d hold the new; %s in all", len(olds)+len(news), len(olds), len(news),
		time.Since(started).Round(time.Second))
	t.Logf("new data after: %v", news)
	// the switch is at COMMIT: a tear before it reaches the card leaves
	// the old data, once it has been processed the new
	assert.Contains(t, olds, fmt.Sprintf("remove-at-%02d", commitAt))
	assert.Contains(t, news, fmt.Sprintf("answer-lost-at-%02d", commitAt))
	assert.Len(t, news, 2*(n-commitAt)+1+3, "new data iff COMMIT was processed")
}

// forger stands in front of the back office's terminal listener and
// changes the renewal offers it answers (forge nil: passed on as they
// are); it keeps the last genuine offer it saw.
type forger struct {
	forge atomic.Pointer[func(o *renewal.Offer, q wire.RenewalQuery) []byte]
	roots *x509.CertPool
	mu    sync.Mutex
	last  []byte // the last genuine offer answered
	why   error  // renewal.Verify's answer to the last forged offer, for the card that asked
}

func (f *forger) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != wire.PathRenewalOffer {
			next.ServeHTTP(w, req)
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, req)
		out := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			f.mu.Lock()
			f.last = bytes.Clone(out)
			f.mu.Unlock()
			if forge := f.forge.Load(); forge != nil {
				var q wire.RenewalQuery
				var o renewal.Offer
				if json.Unmarshal(body, &q) != nil || o.UnmarshalJSON(out) != nil {
					http.Error(w, "forger: cannot read the exchange", http.StatusInternalServerError)
					return
				}
				out = (*forge)(&o, q)
				var forged renewal.Offer
				why := forged.UnmarshalJSON(out)
				if why == nil {
					serial, _ := hex.DecodeString(q.CardSerial)
					why = renewal.Verify(&forged, renewal.CardState{Serial: [8]byte(serial), NIP: q.NIP, SOD: q.SOD, Sequence: q.Sequence}, f.roots, time.Now())
				}
				f.mu.Lock()
				f.why = why
				f.mu.Unlock()
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

func (f *forger) set(forge func(o *renewal.Offer, q wire.RenewalQuery) []byte) { f.forge.Store(&forge) }
func (f *forger) off()                                                         { f.forge.Store(nil) }

// refusal is renewal.Verify's answer to the last forged offer.
func (f *forger) refusal() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.why
}

func (f *forger) lastOffer() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Clone(f.last)
}

func marshalOffer(t *testing.T, o *renewal.Offer) []byte {
	b, err := o.MarshalJSON()
	require.NoError(t, err)
	return b
}

// TestRenewalForgedOffersRefused: offers a back office (here a forging
// proxy in front of the real one) might answer, each refused by the agent
// before anything is written to the card: signed with a key that is not
// under the BKN roots, a security object that does not match the groups,
// and an older offer for this card replayed after a newer one was applied.
// The card saw no update command, the agent keeps no journal and makes no
// renewal record.
func TestRenewalForgedOffersRefused(t *testing.T) {
	fg := &forger{}
	r := newRenewalRig(t, rigOptions{wrapTerminal: fg.wrap})
	chip := newChipReader(t)
	k := r.kioskClient(t)
	dir := pcsctest.RepoPath(labDir)
	m, err := labset.LoadManifest(dir)
	require.NoError(t, err)
	bkn, err := m.Roots(dir, "bkn")
	require.NoError(t, err)
	fg.roots = bkn

	// a document signer under a CA the terminal does not trust
	rogueCA, err := labpki.NewCA("Rogue Issuer CA")
	require.NoError(t, err)
	rogueKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	rogueCert, err := rogueCA.DocumentSigner(&rogueKey.PublicKey, pkix.Name{CommonName: "Rogue Document Signer"})
	require.NoError(t, err)

	card := freshBudi(t)
	r.insertCard(t, card)
	old := chip.read(t)
	r.pull(t)
	first := r.stage(t, budiPromotion("20261001"))

	// refused checks that the offer was refused and nothing was written
	refused := func(t *testing.T, v api.RenewalView, mark int) {
		t.Helper()
		assert.Equal(t, api.RenewalFailed, v.State, "%+v", v)
		assert.Equal(t, "offer-refused", v.Reason)
		assert.Empty(t, v.New, "nothing shown of a refused offer")
		_, status, e := k.act(t, api.PathRenewalApply)
		assert.Equal(t, http.StatusNotFound, status, "%+v", e)
		assert.Zero(t, updateCommands(card.since(mark)), "no update command reached the card: % x", card.since(mark))
		j, err := r.ob.Journal(budiSerial)
		require.NoError(t, err)
		assert.Nil(t, j, "no journal")
		last, err := r.ob.Last()
		require.NoError(t, err)
		assert.NotEqual(t, record.ServiceRenewal, last.Service, "no renewal record")
	}

	r.insertCard(t, card)
	mark := card.count()
	t.Run("wrong-issuer-key", func(t *testing.T) {
		fg.set(func(o *renewal.Offer, q wire.RenewalQuery) []byte {
			forged, err := renewal.Build(renewal.BuildInput{Staged: renewal.Staged{UpdateID: o.UpdateID, NIP: o.NIP, Groups: o.Groups},
				Serial: o.Serial, CardSOD: q.SOD, CardDG1: q.DG1, Sequence: o.Sequence, NotAfter: o.NotAfter}, bkn, time.Now(), rogueKey, rogueCert)
			require.NoError(t, err)
			return marshalOffer(t, forged)
		})
		k.authenticate(t, true)
		refused(t, k.waitRenewal(t, api.RenewalFailed, api.RenewalAvailable), mark)
		assert.ErrorIs(t, fg.refusal(), renewal.ErrIssuer)
	})
	t.Run("sod-not-matching-the-groups", func(t *testing.T) {
		fg.set(func(o *renewal.Offer, _ wire.RenewalQuery) []byte {
			o.Groups[2] = old.Groups[2] // a genuine DG2, not the one the new EF.SOD hashes
			return marshalOffer(t, o)
		})
		v, status, e := k.act(t, api.PathRenewalCheck)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		refused(t, v, mark)
		assert.ErrorIs(t, fg.refusal(), renewal.ErrMismatch)
	})

	// the genuine offer of the first update, then a newer update applied
	fg.off()
	v, status, e := k.act(t, api.PathRenewalCheck)
	require.Equal(t, http.StatusOK, status, "%+v", e)
	require.Equal(t, api.RenewalAvailable, v.State, "the genuine offer: %+v", v)
	older := fg.lastOffer()
	var o1 renewal.Offer
	require.NoError(t, o1.UnmarshalJSON(older))
	require.Equal(t, first.ID, o1.UpdateID)
	assert.Zero(t, updateCommands(card.since(mark)))
	_, status, e = k.act(t, api.PathRenewalDecline)
	require.Equal(t, http.StatusNoContent, status, "%+v", e)
	second := r.stage(t, budiPromotion("20261101"))
	v, status, e = k.act(t, api.PathRenewalCheck)
	require.Equal(t, http.StatusOK, status, "%+v", e)
	require.Equal(t, api.RenewalAvailable, v.State, "%+v", v)
	v, status, e = k.act(t, api.PathRenewalApply)
	require.Equal(t, http.StatusOK, status, "%+v", e)
	require.Equal(t, api.RenewalDone, v.State, "%+v", v)
	assert.Equal(t, second.ID, r.renewalRecord(t).Renewal.UpdateID)
	r.syncNow(t)
	renewed := chip.read(t)
	require.Equal(t, uint32(1), renewed.Update.Sequence)
	r.pull(t)

	t.Run("older-offer-replayed", func(t *testing.T) {
		fg.set(func(*renewal.Offer, wire.RenewalQuery) []byte { return older })
		// another update staged, so the back office answers (and the
		// proxy puts the old offer in its place)
		r.stage(t, budiNewBank)
		r.insertCard(t, card)
		mark := card.count()
		k.authenticate(t, true)
		refused(t, k.waitRenewal(t, api.RenewalFailed, api.RenewalAvailable), mark)
		assert.ErrorIs(t, fg.refusal(), renewal.ErrReplayed)
		assert.True(t, r.logs.seen("renewal: offer refused; nothing written"))
		fg.off()
		now := chip.read(t)
		assert.Equal(t, renewed.SOD, now.SOD, "the card as the newer update left it")
		assert.Equal(t, renewed.Update, now.Update)
		r.pull(t)
	})
	assert.Equal(t, backoffice.RenewalApplied, r.update(t, second.ID).Status)
	assert.Equal(t, backoffice.RenewalSuperseded, r.update(t, first.ID).Status)
}
