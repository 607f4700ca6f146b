package backoffice_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"

	"kpe-agent/internal/pgtest"
	"kpe-agent/internal/purse"
	"kpe-agent/lab/labpki"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// testPurseKeys are the purse masters of these tests.
var testPurseKeys = &purse.Keys{Debit: []byte("debit-master-16b"), Credit: []byte("credit-mastr-16b")}

// withPurseKeys gives l a service that checks card proofs with keys
// (nil: none).
func withPurseKeys(t *testing.T, l *lab, keys *purse.Keys) {
	svc, err := backoffice.New(l.store, backoffice.Config{CA: l.ca.Pool(), Password: cheap, PurseKeys: keys})
	require.NoError(t, err)
	l.svc = svc
}

// purseCard is a card's purse as the tests move it.
type purseCard struct {
	serial [8]byte
	ptc    uint32
	bal    uint32
	txn    uint32
}

// purseTxn is one transaction on c as a sealed record: kind moves the
// card's PTC by one (skip more moves it further first, as transactions
// whose records never arrive would) and its balance by amount; the proof
// is the card's MAC under the test masters, from internal/purse.
type purseTxn struct {
	kind     record.PurseKind
	amount   uint32
	merchant string
	skip     uint32 // PTCs to leave out before this one
	balance  *uint32
	badProof bool
	samePTC  bool // the same PTC as the last transaction (a repeat)
}

func (l *lab) purseRecord(c *purseCard, tx purseTxn) []byte {
	return l.purseRecordWith(c, tx, l.sam, "t-01")
}

// purseRecordWith is purseRecord sealed by sam at terminal.
func (l *lab) purseRecordWith(c *purseCard, tx purseTxn, sam *labpki.SAM, terminal string) []byte {
	t := l.t
	if !tx.samePTC {
		c.ptc += 1 + tx.skip
		if tx.kind == record.PurseCredit {
			c.bal += tx.amount
		} else {
			c.bal -= tx.amount
		}
	}
	if tx.balance != nil {
		c.bal = *tx.balance
	}
	c.txn++
	r := baseRecord(terminal)
	r.Service, r.CardSerial = record.ServicePayment, c.serial[:]
	if tx.kind == record.PurseCredit {
		r.Service = record.ServiceTopUp
	}
	p := &record.Purse{Kind: tx.kind, Amount: tx.amount, BalanceAfter: c.bal, PTC: c.ptc, SAMTxn: c.txn,
		TxnTime: time.Now().UnixMilli(), Merchant: tx.merchant}
	if tx.merchant != "" {
		p.Reference = "INV-" + strconv.Itoa(int(c.txn))
	}
	_, _ = rand.Read(p.Request[:])
	master := testPurseKeys.Debit
	if tx.kind == record.PurseCredit {
		master = testPurseKeys.Credit
	}
	mac, err := purse.Proof{Kind: tx.kind, CardSerial: c.serial, PTC: c.ptc, Amount: tx.amount, Balance: c.bal,
		SAMSerial: sam.Serial(), SAMTxn: c.txn}.Sign(master)
	require.NoError(t, err)
	if tx.badProof {
		mac[0] ^= 0xff
	}
	p.Proof = mac
	r.Purse = p
	return l.seal(r, sam)
}

// alarmCounts counts the purse ledger's alarms by kind. The stream's
// credits name no staged top-up, so the top-ups' own alarm
// (topup-unmatched) is raised too; it is not the ledger's and is left out.
func alarmCounts(t *testing.T, l *lab) map[string]int {
	as, err := l.svc.Alarms(context.Background(), backoffice.AlarmQuery{Limit: 1000})
	require.NoError(t, err)
	out := map[string]int{}
	for _, a := range as {
		if strings.HasPrefix(a.Kind, "purse-") {
			out[a.Kind]++
		}
	}
	return out
}

func u32(v uint32) *uint32 { return &v }

// TestPurseLedgerStream: a purse's stream with a duplicate, repeats, a
// gap (filled later), a balance mismatch and a bad proof: each alarm is
// raised once, the duplicate is not counted, the shadow balance follows
// the counted rows in PTC order, and the rows say what was checked.
func TestPurseLedgerStream(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		withPurseKeys(t, l, testPurseKeys)
		c := &purseCard{serial: [8]byte{0x4b, 0x50, 0x45, 0, 0, 0, 0, 1}}
		ps := l.store.(backoffice.PurseStore)

		top := l.purseRecord(c, purseTxn{kind: record.PurseCredit, amount: 100000})                 // PTC 1: 100000
		pay1 := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 20000, merchant: "m-1"}) // PTC 2: 80000
		pay2 := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 5000, merchant: "m-2"})  // PTC 3: 75000
		assert.Equal(t, []wire.Status{wire.Accepted, wire.Accepted, wire.Accepted}, statuses(l.ingest(top, pay1, pay2)))
		v, rows, err := l.svc.Purse(ctx, c.serial, 0)
		require.NoError(t, err)
		assert.Equal(t, backoffice.PurseView{CardSerial: c.serial, FirstPTC: 1, LastPTC: 3, ShadowBalance: 75000, ReportedBalance: 75000, Rows: 3}, *v)
		require.Len(t, rows, 3)
		for i, r := range rows {
			assert.Equal(t, uint32(i+1), r.PTC)
			assert.Equal(t, backoffice.ProofVerified, r.Proof)
			assert.True(t, r.Counted)
		}
		assert.Equal(t, record.PurseCredit, rows[0].Kind)
		assert.Equal(t, "m-1", rows[1].Merchant)
		assert.Equal(t, "INV-2", rows[1].Reference)
		assert.Equal(t, codeOf(t, pay1), rows[1].Code)
		assert.Empty(t, alarmCounts(t, l))

		// the same record again: a duplicate, not a second row
		assert.Equal(t, []wire.Status{wire.Duplicate}, statuses(l.ingest(pay1)))
		v, _, err = l.svc.Purse(ctx, c.serial, 0)
		require.NoError(t, err)
		assert.Equal(t, int64(3), v.Rows)
		assert.Equal(t, int64(75000), v.ShadowBalance)

		// two other records naming PTC 3: one repeat alarm, neither counted
		rep1 := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 5000, merchant: "m-2", samePTC: true})
		rep2 := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 5000, merchant: "m-2", samePTC: true})
		assert.Equal(t, []wire.Status{wire.Accepted, wire.Accepted}, statuses(l.ingest(rep1, rep2)))
		v, rows, err = l.svc.Purse(ctx, c.serial, 0)
		require.NoError(t, err)
		assert.Equal(t, int64(3), v.Rows)
		assert.Equal(t, int64(2), v.Repeats)
		assert.Equal(t, int64(75000), v.ShadowBalance)
		require.Len(t, rows, 5)
		assert.True(t, rows[2].Counted, "the first row of PTC 3 comes first and is counted")
		assert.Equal(t, codeOf(t, pay2), rows[2].Code)
		assert.False(t, rows[3].Counted)
		assert.False(t, rows[4].Counted)
		assert.Equal(t, map[string]int{backoffice.AlarmPurseRepeat: 1}, alarmCounts(t, l))

		// PTC 6 before 4 and 5: a gap alarm at once, and the missing list
		pay4 := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 500, merchant: "m-1"})  // PTC 4: 74500
		pay5 := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 500, merchant: "m-1"})  // PTC 5: 74000
		pay6 := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 1000, merchant: "m-2"}) // PTC 6: 73000
		assert.Equal(t, []wire.Status{wire.Accepted}, statuses(l.ingest(pay6)))
		v, _, err = l.svc.Purse(ctx, c.serial, 0)
		require.NoError(t, err)
		assert.Equal(t, []wire.Range{{From: 4, To: 5}}, v.Missing)
		assert.Equal(t, int64(74000), v.ShadowBalance, "75000 less PTC 6's 1000: the missing PTCs' debits are not known")
		assert.Equal(t, uint32(73000), v.ReportedBalance)
		assert.Equal(t, map[string]int{backoffice.AlarmPurseRepeat: 1, backoffice.AlarmPurseGap: 1}, alarmCounts(t, l))
		// the late records fill it: consistent on both sides, no new alarm
		assert.Equal(t, []wire.Status{wire.Accepted, wire.Accepted}, statuses(l.ingest(pay5, pay4)))
		v, _, err = l.svc.Purse(ctx, c.serial, 0)
		require.NoError(t, err)
		assert.Empty(t, v.Missing)
		assert.Equal(t, int64(73000), v.ShadowBalance)
		assert.Equal(t, v.ShadowBalance, int64(v.ReportedBalance))
		assert.Equal(t, map[string]int{backoffice.AlarmPurseRepeat: 1, backoffice.AlarmPurseGap: 1}, alarmCounts(t, l))

		// a balance that does not follow (73000 - 1000 is 72000, not 70000)
		bad := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 1000, merchant: "m-1", balance: u32(70000)}) // PTC 7
		// a proof that does not verify
		forged := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 2000, merchant: "m-1", badProof: true}) // PTC 8: 68000
		assert.Equal(t, []wire.Status{wire.Accepted, wire.Accepted}, statuses(l.ingest(bad, forged)))
		assert.Equal(t, map[string]int{backoffice.AlarmPurseRepeat: 1, backoffice.AlarmPurseGap: 1,
			backoffice.AlarmPurseMismatch: 1, backoffice.AlarmPurseBadProof: 1}, alarmCounts(t, l))
		v, rows, err = l.svc.Purse(ctx, c.serial, 0)
		require.NoError(t, err)
		last := rows[len(rows)-1]
		assert.Equal(t, uint32(8), last.PTC)
		assert.Equal(t, backoffice.ProofBad, last.Proof, "a bad proof is stored, flagged")
		assert.False(t, last.Counted, "a bad proof takes no PTC's slot")
		assert.False(t, last.Settled(), "a bad proof is withheld from settlement")
		assert.Equal(t, int64(73000-1000), v.ShadowBalance, "the forged debit moves nothing")
		assert.Equal(t, uint32(70000), v.ReportedBalance, "PTC 7's: the forged row is not the card's word")
		assert.Equal(t, int64(1), v.BadProofs)
		assert.Equal(t, uint32(7), v.LastPTC)

		// a mismatch seen from the later side: PTC 10 first, then PTC 9
		// whose balance does not lead to PTC 10's
		pay9 := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 1000, merchant: "m-1"})                       // PTC 9: 67000
		pay10 := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 1000, merchant: "m-1", balance: u32(60000)}) // PTC 10
		assert.Equal(t, []wire.Status{wire.Accepted, wire.Accepted}, statuses(l.ingest(pay10, pay9)))
		counts := alarmCounts(t, l)
		assert.Equal(t, 2, counts[backoffice.AlarmPurseGap], "PTC 10 opened a gap at 9")
		assert.Equal(t, 2, counts[backoffice.AlarmPurseMismatch], "PTC 9 to 10 does not follow")

		// without the masters the ledger says unchecked, never verified
		withPurseKeys(t, l, nil)
		pay11 := l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 1000, merchant: "m-1", badProof: true}) // PTC 11
		assert.Equal(t, []wire.Status{wire.Accepted}, statuses(l.ingest(pay11)))
		rows, err = ps.PurseRows(ctx, c.serial, 0)
		require.NoError(t, err)
		assert.Equal(t, backoffice.ProofUnchecked, rows[len(rows)-1].Proof)
		assert.Equal(t, 1, alarmCounts(t, l)[backoffice.AlarmPurseBadProof], "no check, no alarm")

		_, _, err = l.svc.Purse(ctx, [8]byte{9}, 0)
		assert.ErrorIs(t, err, backoffice.ErrNotFound)
	})
}

// settleAll ingests payments of several cards and merchants (with a
// duplicate, a repeat and a bad proof) and returns what the settlement
// must hold per merchant, computed from the ledger's rows.
func settleFixture(t *testing.T, l *lab) (date string, want map[string][2]int64) {
	ctx := context.Background()
	withPurseKeys(t, l, testPurseKeys)
	merchants := []string{"apotik-01", "=rs-02", "pkm,03"} // a formula-like and a comma id
	var recs [][]byte
	var serials [][8]byte
	for i := 0; i < 4; i++ {
		c := &purseCard{serial: [8]byte{0x4b, 0x50, 0x45, 0, 0, 0, 1, byte(i)}}
		serials = append(serials, c.serial)
		recs = append(recs, l.purseRecord(c, purseTxn{kind: record.PurseCredit, amount: 500000}))
		for j := 0; j < 5; j++ {
			recs = append(recs, l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: uint32(1000*(i+1) + 10*j), merchant: merchants[(i+j)%3]}))
		}
		if i == 1 {
			recs = append(recs, l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 777, merchant: merchants[0], samePTC: true}))
			recs = append(recs, l.purseRecord(c, purseTxn{kind: record.PurseDebit, amount: 999, merchant: merchants[1], badProof: true}))
		}
	}
	l.ingest(recs...)
	l.ingest(recs[3], recs[4]) // duplicates
	want = map[string][2]int64{}
	var checked int
	for _, s := range serials {
		rows, err := l.store.(backoffice.PurseStore).PurseRows(ctx, s, 0)
		require.NoError(t, err)
		for _, r := range rows {
			if r.Kind == record.PurseDebit && r.Counted && r.Proof == backoffice.ProofVerified {
				w := want[r.Merchant]
				want[r.Merchant] = [2]int64{w[0] + 1, w[1] + int64(r.Amount)}
				checked++
			}
		}
	}
	require.Equal(t, 20, checked, "4 cards × 5 payments; the repeat and the bad proof are out")
	return time.Now().In(backoffice.SettlementZone).Format(time.DateOnly), want
}

// TestSettlementCSV: the CSV's lines are the ledger's counted, verified
// debits per merchant of the day; the trailer's totals and SHA-256 check
// out when the file is parsed back; the same data gives the same bytes;
// a day not over is refused.
func TestSettlementCSV(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		date, want := settleFixture(t, l)
		ps := l.store.(backoffice.PurseStore)
		_, err := backoffice.Settle(ctx, ps, date, time.Now(), nil)
		assert.ErrorIs(t, err, backoffice.ErrSettlementOpen)
		_, err = backoffice.Settle(ctx, ps, "2026-13-01", time.Now(), nil)
		assert.ErrorIs(t, err, backoffice.ErrSettlementDate)
		later := time.Now().Add(48 * time.Hour)
		st, err := backoffice.Settle(ctx, ps, date, later, nil)
		require.NoError(t, err)
		var buf, again bytes.Buffer
		require.NoError(t, backoffice.WriteSettlementCSV(&buf, st))
		st2, err := backoffice.Settle(ctx, ps, date, later, nil)
		require.NoError(t, err)
		require.NoError(t, backoffice.WriteSettlementCSV(&again, st2))
		assert.Equal(t, buf.String(), again.String(), "deterministic")

		raw := buf.Bytes()
		cut := bytes.LastIndex(raw[:len(raw)-1], []byte("\n")) + 1
		sum := sha256.Sum256(raw[:cut])
		lines, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
		require.NoError(t, err)
		require.Equal(t, backoffice.SettlementHeader, lines[0])
		trailer := lines[len(lines)-1]
		body := lines[1 : len(lines)-1]
		require.Len(t, body, len(want))
		var n, total int64
		got := map[string][2]int64{}
		for _, f := range body {
			require.Len(t, f, 9)
			assert.Equal(t, date, f[0])
			p, _ := strconv.ParseInt(f[2], 10, 64)
			a, _ := strconv.ParseInt(f[3], 10, 64)
			assert.Equal(t, []string{"0", "0", f[3]}, f[4:7], "no refunds yet: net is the amount")
			assert.NotEmpty(t, f[7])
			assert.NotEmpty(t, f[8])
			got[strings.TrimPrefix(f[1], "'")] = [2]int64{p, a}
			n += p
			total += a
		}
		assert.Equal(t, want, got, "per merchant: the ledger's counted verified debits")
		assert.Equal(t, "'=rs-02", body[0][1], "a formula-like id is quoted, and lines are by merchant id")
		assert.Equal(t, []string{"TOTAL", date, strconv.Itoa(len(want)), strconv.FormatInt(n, 10), strconv.FormatInt(total, 10), "0", "0",
			strconv.FormatInt(total, 10), hex.EncodeToString(sum[:])}, trailer)
		assert.Equal(t, int64(20), n)

		// another day has no lines, only the header and the trailer
		empty, err := backoffice.Settle(ctx, ps, "2020-01-01", later, nil)
		require.NoError(t, err)
		assert.Empty(t, empty.Lines)
	})
}

// TestSettlementXLSX: the workbook's summary matches the CSV's lines, and
// its payments sheet has one row per settled payment, with card serials
// and no NIP.
func TestSettlementXLSX(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		date, want := settleFixture(t, l)
		var buf bytes.Buffer
		require.NoError(t, backoffice.WriteSettlementXLSX(ctx, &buf, l.store.(backoffice.PurseStore), date, time.Now().Add(48*time.Hour)))
		f, err := excelize.OpenReader(&buf)
		require.NoError(t, err)
		defer f.Close()
		sum, err := f.GetRows(backoffice.SettlementSheet)
		require.NoError(t, err)
		require.Equal(t, backoffice.SettlementHeader, sum[0])
		require.Len(t, sum, 1+len(want)+1)
		pays, err := f.GetRows(backoffice.SettlementPaymentsSheet)
		require.NoError(t, err)
		require.Equal(t, backoffice.SettlementPaymentsHeader, pays[0])
		require.Len(t, pays, 1+20)
		var total int64
		for _, p := range pays[1:] {
			a, err := strconv.ParseInt(p[5], 10, 64)
			require.NoError(t, err)
			total += a
			assert.Len(t, p[3], 16, "card serial")
			assert.Equal(t, "verified", p[12])
		}
		totalRow := sum[len(sum)-1]
		assert.Equal(t, "TOTAL", totalRow[0])
		assert.Equal(t, strconv.FormatInt(total, 10), totalRow[3])
		for _, sheet := range []string{backoffice.SettlementSheet, backoffice.SettlementPaymentsSheet} {
			rows, _ := f.GetRows(sheet)
			for _, r := range rows {
				for _, c := range r {
					assert.NotContains(t, c, "196608011988031001", "no NIP in the bank's file")
				}
			}
		}
	})
}

// TestBankScope: the bank downloads the settlement and sees no record;
// other institutions cannot download it; the bank scope stands alone and
// the e-wallet's services are nobody's.
func TestBankScope(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		askesKey, _ := institutions(t, l, nil)
		askes := codesOf(t, l.ingest(l.serviceRecords(2, "t-01", "askes")...))
		date, _ := settleFixture(t, l)
		is := l.store.(backoffice.InstitutionStore)
		bankKey, stored := backoffice.NewAPIKey(time.Now())
		require.NoError(t, is.AddInstitution(ctx, backoffice.Institution{Name: "bank-bpd", Services: []string{backoffice.ScopeBank}, Enabled: true,
			Keys: []backoffice.APIKey{stored}}))
		for _, bad := range [][]string{{backoffice.ScopeBank, "askes"}, {"payment"}, {"askes", "topup"}} {
			err := backoffice.CheckInstitution(backoffice.Institution{Name: "x", Services: bad})
			assert.ErrorIs(t, err, backoffice.ErrInstitution, "%v", bad)
		}

		svc, err := backoffice.New(l.store, backoffice.Config{CA: l.ca.Pool(), Password: cheap, Now: func() time.Time { return time.Now().Add(48 * time.Hour) }})
		require.NoError(t, err)
		h, err := svc.InstitutionHandler(backoffice.InstitutionConfig{})
		require.NoError(t, err)
		srv := httptest.NewServer(h)
		defer srv.Close()
		c := apiClient{t: t, url: srv.URL, http: srv.Client()}
		fetch := func(key, path string) (int, []byte) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var b bytes.Buffer
			_, err = b.ReadFrom(resp.Body)
			require.NoError(t, err)
			return resp.StatusCode, b.Bytes()
		}

		st, body := fetch(bankKey, "/institution/v1/settlement/"+date)
		require.Equal(t, http.StatusOK, st, string(body))
		lines, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		require.NoError(t, err)
		assert.Equal(t, "TOTAL", lines[len(lines)-1][0])
		st, body = fetch(bankKey, "/institution/v1/settlement/"+date+"?format=xlsx")
		require.Equal(t, http.StatusOK, st)
		assert.Equal(t, "PK", string(body[:2]))
		st, _ = fetch(bankKey, "/institution/v1/settlement/"+date+"?format=pdf")
		assert.Equal(t, http.StatusBadRequest, st)
		st, _ = fetch(bankKey, "/institution/v1/settlement/26-1-1")
		assert.Equal(t, http.StatusBadRequest, st)

		// the bank sees no record: verify and the feed are out of scope
		st, body = fetch(bankKey, "/institution/v1/verify/"+askes[0])
		assert.Equal(t, http.StatusForbidden, st)
		assert.Equal(t, "out-of-scope", problemCode(t, body))
		assert.Equal(t, http.StatusForbidden, c.get(bankKey, "/institution/v1/records", nil))
		// another institution sees no settlement
		assert.Equal(t, http.StatusForbidden, c.get(askesKey, "/institution/v1/settlement/"+date, nil))
		assert.Equal(t, http.StatusOK, c.get(askesKey, "/institution/v1/verify/"+askes[0], nil))
		// and no payment record through the feed
		for _, code := range c.all(askesKey, 100) {
			assert.Contains(t, askes, code)
		}

		// a day not over yet
		h2, err := l.svc.InstitutionHandler(backoffice.InstitutionConfig{})
		require.NoError(t, err)
		srv2 := httptest.NewServer(h2)
		defer srv2.Close()
		c2 := apiClient{t: t, url: srv2.URL, http: srv2.Client()}
		assert.Equal(t, http.StatusConflict, c2.get(bankKey, "/institution/v1/settlement/"+date, nil))
	})
}

// TestStaffPurseAPI: GET /v1/purses/{serial} shows the view and the rows
// without NIP, GET /v1/settlement/{date} the day's file, for the auditor
// roles only; a day not over is 409.
func TestStaffPurseAPI(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		date, want := settleFixture(t, l)
		h := l.svc.StaffHandler(backoffice.StaffConfig{})
		aud := signInAs(t, l.svc, h, "audit.siti", []backoffice.Role{backoffice.RoleAuditor})
		ver := signInAs(t, l.svc, h, "loket.budi", []backoffice.Role{backoffice.RoleVerifier})
		serial := "4b50450000000101"
		rec := do(aud.as(h), request{method: "GET", path: "/v1/purses/" + serial})
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		assert.NotContains(t, rec.Body.String(), "196608011988031001", "no NIP")
		var p backoffice.PurseJSON
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
		assert.Equal(t, serial, p.CardSerial)
		assert.Equal(t, uint32(1), p.FirstPTC)
		assert.Equal(t, uint32(6), p.LastPTC, "a top-up and five payments; the repeat and the bad proof are not PTCs of their own")
		assert.Equal(t, int64(1), p.Repeats)
		assert.Equal(t, int64(1), p.BadProofs)
		assert.Equal(t, date, p.Ledger[0].SettlementDate)
		assert.Len(t, p.Ledger, 8)
		assert.Equal(t, int64(p.ReportedBalance), p.ShadowBalance)
		assert.Equal(t, "bad", p.Ledger[7].Proof)
		for path, code := range map[string]int{"/v1/purses/zz": 400, "/v1/purses/0000000000000099": 404, "/v1/purses/" + serial + "?limit=0": 400,
			"/v1/settlement/" + date: 409, "/v1/settlement/2026-02-30": 400, "/v1/settlement/2020-01-01?format=doc": 400} {
			rec := do(aud.as(h), request{method: "GET", path: path})
			assert.Equal(t, code, rec.Code, "%s: %s", path, rec.Body.String())
		}
		for _, path := range []string{"/v1/purses/" + serial, "/v1/settlement/2020-01-01"} {
			assert.Equal(t, http.StatusForbidden, do(ver.as(h), request{method: "GET", path: path}).Code, path)
		}

		svc, err := backoffice.New(l.store, backoffice.Config{CA: l.ca.Pool(), Password: cheap, Now: func() time.Time { return time.Now().Add(48 * time.Hour) }})
		require.NoError(t, err)
		h2 := svc.StaffHandler(backoffice.StaffConfig{})
		aud2 := signInAs(t, svc, h2, "audit.rina", []backoffice.Role{backoffice.RoleAuditor})
		rec = do(aud2.as(h2), request{method: "GET", path: "/v1/settlement/" + date})
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		assert.Contains(t, rec.Header().Get("Content-Disposition"), "kpe-settlement-"+date+".csv")
		lines, err := csv.NewReader(rec.Body).ReadAll()
		require.NoError(t, err)
		assert.Len(t, lines, 1+len(want)+1)
		rec = do(aud2.as(h2), request{method: "GET", path: "/v1/settlement/" + date + "?format=xlsx"})
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, backoffice.XLSXType, rec.Header().Get("Content-Type"))
	})
}

// TestPurseLedgerConcurrentPG: batches of two SAMs naming the same two
// cards in opposite orders, ingested at once on PostgreSQL, neither
// deadlock nor lose a row: every PTC is counted once and the shadow
// balance is the cards' own.
func TestPurseLedgerConcurrentPG(t *testing.T) {
	ctx := context.Background()
	st, err := backoffice.OpenPostgres(ctx, pgtest.DB(t))
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	other, err := l.ca.NewSAM([8]byte{0x53, 0x41, 0x4d, 0, 0, 0, 0, 8})
	require.NoError(t, err)
	// both SAMs' certificates stored once
	l.ingest(l.records(1, "t-01")...)
	_, err = l.svc.Ingest(ctx, &wire.Batch{Certificates: [][]byte{other.Cert}, Records: [][]byte{l.seal(baseRecord("t-02"), other)}, SentAt: time.Now()},
		backoffice.Identity{Terminal: "t-02"})
	require.NoError(t, err)
	x := &purseCard{serial: [8]byte{0x4b, 0x50, 0x45, 0, 0, 0, 2, 1}, bal: 0}
	y := &purseCard{serial: [8]byte{0x4b, 0x50, 0x45, 0, 0, 0, 2, 2}, bal: 0}
	const rounds = 15
	entry := func(enc []byte) backoffice.Entry {
		r, err := record.Decode(enc)
		require.NoError(t, err)
		h, content, err := record.HashesOf(enc)
		require.NoError(t, err)
		return backoffice.Entry{Rec: r, Encoded: enc, Hash: h, Content: content, Code: record.CodeOf(h).String()}
	}
	var a, b [][]backoffice.Entry
	for i := 0; i < rounds; i++ {
		// batch a (SAM 7, t-01): x then y; batch b (SAM 8, t-02): y then x
		xa := entry(l.purseRecord(x, purseTxn{kind: record.PurseCredit, amount: 100}))
		ya := entry(l.purseRecord(y, purseTxn{kind: record.PurseCredit, amount: 100}))
		a = append(a, []backoffice.Entry{xa, ya})
		yb := l.purseRecordWith(y, purseTxn{kind: record.PurseCredit, amount: 100}, other, "t-02")
		xb := l.purseRecordWith(x, purseTxn{kind: record.PurseCredit, amount: 100}, other, "t-02")
		b = append(b, []backoffice.Entry{entry(yb), entry(xb)})
	}
	errs := make(chan error, 2*rounds)
	done := make(chan struct{})
	for _, batches := range [][][]backoffice.Entry{a, b} {
		go func() {
			defer func() { done <- struct{}{} }()
			for _, batch := range batches {
				_, err := st.Ingest(ctx, batch, backoffice.Meta{Now: time.Now()})
				errs <- err
			}
		}()
	}
	<-done
	<-done
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, c := range []*purseCard{x, y} {
		v, err := st.Purse(ctx, c.serial)
		require.NoError(t, err)
		assert.Equal(t, int64(2*rounds), v.Rows)
		assert.Equal(t, int64(c.bal), v.ShadowBalance)
		assert.Empty(t, v.Missing)
		assert.Equal(t, uint32(2*rounds), v.LastPTC)
	}
}
