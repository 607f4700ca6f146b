package outbox_test

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
)

// payment is the chain's next record as a payment of request req on card
// serial.
func (c *chain) payment(t testing.TB, serial [8]byte, req [16]byte) *record.Record {
	id, err := record.NewID()
	require.NoError(t, err)
	r := &record.Record{
		ID: id, TerminalID: "t-01", SiteID: "s-01", OperatorID: "loket", Service: record.ServicePayment,
		CardType: record.CardKPE, CardSerial: serial[:], SubjectKind: record.SubjectNIP, Subject: "196608011988031001",
		CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
		Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Skipped, Reason: "below-threshold"},
		Time: time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC), Clock: record.ClockSynced, PrevHash: c.prev,
		Purse: &record.Purse{Kind: record.PurseDebit, Amount: 10_000, BalanceAfter: 90_000, PTC: 5, SAMTxn: 3,
			TxnTime: 1_780_000_000_000, Request: req, Merchant: "m-1", Reference: "r-1"},
	}
	require.NoError(t, record.Seal(context.Background(), r, c.s))
	return r
}

func TestPurseJournalLifecycle(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "outbox.db")
	ob := open(t, path, outbox.Options{Now: clk.Now})
	s, req := serialOf(7), [16]byte{0xAB, 1}

	j := outbox.PurseJournal{Serial: s, Request: req, Kind: record.PurseDebit, Step: outbox.PurseStarted,
		Amount: 10_000, PTC: 4, Balance: 100_000, Merchant: "m-1", Reference: "r-1"}
	require.NoError(t, ob.StartPurse(j))
	assert.ErrorIs(t, ob.StartPurse(j), outbox.ErrPurseBusy, "the card has an entry")
	other := j
	other.Serial = serialOf(8)
	assert.ErrorIs(t, ob.StartPurse(other), outbox.ErrPurseBusy, "the request id is known")

	o, err := ob.PurseRequest(req)
	require.NoError(t, err)
	require.NotNil(t, o)
	assert.Equal(t, outbox.PurseRequestPending, o.Status)

	j.Step, j.SAMSerial, j.SAMTxn, j.TxnTime = outbox.PurseSent, [8]byte{0x53}, 3, 1_780_000_000_000
	require.NoError(t, ob.UpdatePurse(j))
	stray := j
	stray.Request = [16]byte{1}
	assert.ErrorIs(t, ob.UpdatePurse(stray), outbox.ErrPurseBusy)

	ob.Close()
	ob = open(t, path, outbox.Options{Now: clk.Now})
	got, err := ob.PurseJournalOf(s)
	require.NoError(t, err)
	require.NotNil(t, got)
	j.Time = clk.Now()
	assert.Equal(t, j.Time.UnixMilli(), got.Time.UnixMilli())
	got.Time = j.Time
	assert.Equal(t, j, *got, "the entry survives a reopen as written")

	c := newChain()
	r := c.payment(t, s, req)
	_, err = ob.AppendPurse(r, "CODE-1")
	require.NoError(t, err)
	got, err = ob.PurseJournalOf(s)
	require.NoError(t, err)
	assert.Nil(t, got, "the record ends the entry")
	o, err = ob.PurseRequest(req)
	require.NoError(t, err)
	assert.Equal(t, outbox.PurseRequestDone, o.Status)
	assert.Equal(t, r.ID, o.RecordID)
	assert.Equal(t, "CODE-1", o.Code)
	assert.Equal(t, uint32(90_000), o.Balance)
	assert.ErrorIs(t, ob.SettlePurseNotDone(s, req, "x"), outbox.ErrPurseBusy, "a done request stays done")

	// not done: the entry goes, the request says why
	req2 := [16]byte{0xCD}
	require.NoError(t, ob.StartPurse(outbox.PurseJournal{Serial: s, Request: req2, Kind: record.PurseCredit, Step: outbox.PurseStarted, Amount: 5}))
	require.NoError(t, ob.SettlePurseNotDone(s, req2, "not-in-log"))
	o, err = ob.PurseRequest(req2)
	require.NoError(t, err)
	assert.Equal(t, outbox.PurseRequestNotDone, o.Status)
	assert.Equal(t, "not-in-log", o.Reason)
	assert.Equal(t, uint32(5), o.Amount)
	js, err := ob.PurseJournals()
	require.NoError(t, err)
	assert.Empty(t, js)

	clk.t = clk.t.Add(48 * time.Hour)
	n, err := ob.PrunePurseRequests(clk.t.Add(-24 * time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}

func TestPurseJournalRefusals(t *testing.T) {
	ob := open(t, filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
	good := outbox.PurseJournal{Serial: serialOf(1), Request: [16]byte{1}, Kind: record.PurseDebit, Step: outbox.PurseStarted, Amount: 1}
	for name, mutate := range map[string]func(j *outbox.PurseJournal){
		"no request": func(j *outbox.PurseJournal) { j.Request = [16]byte{} },
		"amount 0":   func(j *outbox.PurseJournal) { j.Amount = 0 },
		"step 0":     func(j *outbox.PurseJournal) { j.Step = 0 },
		"kind 7":     func(j *outbox.PurseJournal) { j.Kind = 7 },
	} {
		j := good
		mutate(&j)
		assert.ErrorIs(t, ob.StartPurse(j), outbox.ErrPurseJournal, name)
	}
	assert.ErrorIs(t, ob.UpdatePurse(good), outbox.ErrPurseJournal, "no entry to update")
	assert.ErrorIs(t, ob.SettlePurseNotDone(serialOf(1), [16]byte{9}, "x"), outbox.ErrPurseJournal, "an unknown request")
	_, err := ob.AppendPurse(&record.Record{}, "")
	assert.ErrorIs(t, err, outbox.ErrNotRecorded)
}

// Room tells the limits before money moves; AppendPurse stores the record
// of money that moved past them (count and age), while Append still
// refuses.
func TestPurseRecordPastLimits(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)}
	ob := open(t, filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{MaxRecords: 2, MaxAge: time.Hour, Now: clk.Now})
	c := newChain()
	require.NoError(t, ob.Room())
	for i := 0; i < 2; i++ {
		r := c.next(t)
		_, err := ob.Append(r)
		require.NoError(t, err)
		c.appended(r)
	}
	var le *outbox.LimitError
	require.ErrorAs(t, ob.Room(), &le)
	assert.Equal(t, "count", le.Limit)
	assert.ErrorIs(t, ob.Room(), outbox.ErrFull)
	_, err := ob.Append(c.next(t))
	require.ErrorIs(t, err, outbox.ErrFull)

	s, req := serialOf(3), [16]byte{0xCD, 1}
	require.NoError(t, ob.StartPurse(outbox.PurseJournal{Serial: s, Request: req, Kind: record.PurseDebit, Step: outbox.PurseSent,
		Amount: 10_000, PTC: 4, Balance: 100_000, SAMSerial: [8]byte{0x53}, SAMTxn: 3, Merchant: "m-1", Reference: "r-1"}))
	r := c.payment(t, s, req)
	_, err = ob.AppendPurse(r, "CODE-1")
	require.NoError(t, err, "past the count limit")
	c.appended(r)
	o, err := ob.PurseRequest(req)
	require.NoError(t, err)
	assert.Equal(t, outbox.PurseRequestDone, o.Status)
	st, err := ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, 3, st.Unsynced)

	// the age limit as well
	clk.t = clk.t.Add(2 * time.Hour)
	require.ErrorAs(t, ob.Room(), &le)
	r = c.payment(t, serialOf(4), [16]byte{0xCD, 2})
	_, err = ob.AppendPurse(r, "CODE-2")
	require.NoError(t, err, "past the age limit")
}

// The request book keeps the amount and a digest of the merchant
// reference of every request (encoding version 2) and still reads the
// outcomes of version 1, which have no digest.
func TestPurseOutcomeRefHash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	ob := open(t, path, outbox.Options{})
	s, req := serialOf(5), [16]byte{0xEF, 1}
	require.NoError(t, ob.StartPurse(outbox.PurseJournal{Serial: s, Request: req, Kind: record.PurseDebit, Step: outbox.PurseStarted,
		Amount: 10_000, PTC: 4, Balance: 100_000, Merchant: "m-1", Reference: "INV-1"}))
	o, err := ob.PurseRequest(req)
	require.NoError(t, err)
	assert.Equal(t, outbox.PurseRefHash("INV-1"), o.RefHash, "pending")
	assert.Equal(t, uint32(10_000), o.Amount)
	require.NoError(t, ob.SettlePurseNotDone(s, req, "not-sent"))
	o, err = ob.PurseRequest(req)
	require.NoError(t, err)
	assert.Equal(t, outbox.PurseRefHash("INV-1"), o.RefHash, "not done")
	assert.NotEqual(t, outbox.PurseRefHash("INV-2"), o.RefHash)

	c := newChain()
	req2 := [16]byte{0xEF, 2}
	r := c.payment(t, s, req2) // reference "r-1"
	_, err = ob.AppendPurse(r, "CODE-1")
	require.NoError(t, err)
	o, err = ob.PurseRequest(req2)
	require.NoError(t, err)
	assert.Equal(t, outbox.PurseRefHash("r-1"), o.RefHash, "done")

	// an outcome written by version 1: no digest
	ob.Close()
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	v1 := []byte{1, byte(outbox.PurseRequestDone), byte(record.PurseDebit)}
	v1 = append(v1, s[:]...)
	v1 = binary.BigEndian.AppendUint32(v1, 7_000)
	v1 = append(v1, make([]byte, 16)...) // record id
	v1 = binary.BigEndian.AppendUint32(v1, 93_000)
	v1 = binary.BigEndian.AppendUint64(v1, uint64(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC).UnixMilli()))
	v1 = append(v1, 6)
	v1 = append(v1, "CODE-0"...)
	v1 = append(v1, 0)
	req3 := [16]byte{0xEF, 3}
	require.NoError(t, db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("purse-requests")).Put(req3[:], v1) }))
	require.NoError(t, db.Close())
	ob = open(t, path, outbox.Options{})
	o, err = ob.PurseRequest(req3)
	require.NoError(t, err)
	require.NotNil(t, o)
	assert.Equal(t, outbox.PurseRequestDone, o.Status)
	assert.Equal(t, uint32(7_000), o.Amount)
	assert.Equal(t, "CODE-0", o.Code)
	assert.Equal(t, [32]byte{}, o.RefHash, "unknown in version 1")
	// a version the book does not know is refused
	ob.Close()
	db, err = bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	v1[0] = 9
	require.NoError(t, db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("purse-requests")).Put(req3[:], v1) }))
	require.NoError(t, db.Close())
	ob = open(t, path, outbox.Options{})
	_, err = ob.PurseRequest(req3)
	assert.ErrorIs(t, err, outbox.ErrPurseJournal)
}
