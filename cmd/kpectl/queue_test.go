package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/leaktest"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
)

const (
	testNIP = "196608011988031001"
	testNIK = "3174012345678901"
)

var (
	testCardSerial = []byte{0xC4, 0x7E, 0x11, 0x95, 0x3A, 0xB2, 0x6D, 0x08}
	testSAM        = [8]byte{'S', 'W', 0, 0, 0, 0, 0, 7}
	testNIKHash    = record.NIKHash([]byte("institution key"), testNIK)
)

// queueFixture is an outbox with six records: 1 and 2 acknowledged, 3
// dead, 4 sending (the agent died while sending it), 5 and 6 pending. Record
// 5 is a KTP-el record (the subject is a NIK hash), the others KPE (a NIP).
type queueFixture struct {
	path string
	recs []*record.Record
	seqs []uint64
}

func newQueueFixture(t *testing.T) *queueFixture {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	signer := record.NewSoftwareSigner(key, testSAM, 0)
	f := &queueFixture{path: filepath.Join(t.TempDir(), "outbox.db")}
	ob, err := outbox.Open(f.path, outbox.Options{})
	require.NoError(t, err)
	defer ob.Close()
	var prev [32]byte
	for i := 0; i < 6; i++ {
		id, err := record.NewID()
		require.NoError(t, err)
		r := &record.Record{
			ID: id, TerminalID: "t-01", SiteID: "s-01", OperatorID: "op-17", Service: "taspen",
			CardType: record.CardKPE, CardSerial: testCardSerial, SubjectKind: record.SubjectNIP, Subject: testNIP,
			CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
			Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Pass},
			Time: time.Date(2026, 11, 23, 8, i, 0, 0, time.UTC), Clock: record.ClockSynced, PrevHash: prev,
		}
		if i == 4 {
			r.CardType, r.SubjectKind, r.Subject = record.CardKTPel, record.SubjectNIKHash, testNIKHash
		}
		require.NoError(t, record.Seal(context.Background(), r, signer))
		seq, err := ob.Append(r)
		require.NoError(t, err)
		prev, _ = r.Hash()
		f.recs = append(f.recs, r)
		f.seqs = append(f.seqs, seq)
	}
	_, err = ob.Claim(4, 1<<20)
	require.NoError(t, err)
	require.NoError(t, ob.Settle([]outbox.Result{
		{Seq: f.seqs[0], Outcome: outbox.Accepted},
		{Seq: f.seqs[1], Outcome: outbox.Duplicate},
		{Seq: f.seqs[2], Outcome: outbox.Rejected, Reason: "terminal not registered"},
	}))
	return f
}

func (f *queueFixture) code(i int) string {
	h, _ := f.recs[i].Hash()
	return record.CodeOf(h).String()
}

// noPersonalData fails when out holds a record's subject or card serial,
// raw or in hex.
func noPersonalData(t *testing.T, out string) {
	t.Helper()
	for _, n := range leaktest.Needles([]byte(testNIP), []byte(testNIK), []byte(testNIKHash), testCardSerial) {
		assert.False(t, bytes.Contains([]byte(out), n), "the output holds personal data %q:\n%s", n, out)
	}
}

func TestQueueStats(t *testing.T) {
	f := newQueueFixture(t)
	out, errOut, code := runCLI(t, "", "queue", "stats", "--outbox", f.path, "--json")
	require.Equal(t, 0, code, errOut)
	var st queueStatsJSON
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Equal(t, 2, st.Pending)
	assert.Equal(t, 1, st.Sending, "read-only: the agent's sending record is not reset")
	assert.Equal(t, 2, st.Acknowledged)
	assert.Equal(t, 1, st.Dead)
	assert.Equal(t, 3, st.Unsynced)
	assert.Equal(t, "none", st.Alarm)
	assert.Zero(t, st.AlarmPercent)
	assert.Equal(t, 0.0, st.CountUsedPercent) // 3 of 100,000, to one decimal
	assert.Positive(t, st.FileBytes)
	assert.Equal(t, []string{}, st.MovedAside)

	out, errOut, code = runCLI(t, "", "queue", "stats", "--outbox", f.path)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "Outbox "+f.path)
	assert.Regexp(t, `menunggu dikirim \(pending\) +2\n`, out)
	assert.Regexp(t, `sedang dikirim \(sending\) +1\n`, out)
	assert.Regexp(t, `ditolak \(dead\) +1\n`, out)
	assert.Regexp(t, `umur tertua belum terkirim +< 1 menit\n`, out)
	assert.Regexp(t, `alarm +tidak ada\n`, out)

	// the agent's limits: 3 of 5 unsynced is the 50 % alarm, 3 of 3 full
	out, errOut, code = runCLI(t, "", "--lang", "en", "queue", "stats", "--outbox", f.path, "--max-records", "5")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `pending +2\n`, out)
	assert.Contains(t, out, "count 60.0 %")
	assert.Contains(t, out, "WARNING: the outbox is 50 % full")
	out, errOut, code = runCLI(t, "", "queue", "stats", "--outbox", f.path, "--max-records", "3")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "PENUH: catatan baru DITOLAK")
	out, _, _ = runCLI(t, "", "queue", "stats", "--outbox", f.path, "--max-records", "3", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Equal(t, "full", st.Alarm)
	assert.Equal(t, 100, st.AlarmPercent)

	// the default file comes from KPE_OUTBOX
	t.Setenv("KPE_OUTBOX", f.path)
	out, errOut, code = runCLI(t, "", "queue", "stats", "--json")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `"pending": 2`)
}

func TestQueueList(t *testing.T) {
	f := newQueueFixture(t)
	out, errOut, code := runCLI(t, "", "queue", "list", "--outbox", f.path, "--json")
	require.Equal(t, 0, code, errOut)
	noPersonalData(t, out)
	var l queueListJSON
	require.NoError(t, json.Unmarshal([]byte(out), &l))
	require.Len(t, l.Records, 6)
	assert.False(t, l.Truncated)
	for i, it := range l.Records {
		assert.Equal(t, f.seqs[i], it.Seq)
		assert.Equal(t, uint32(i+1), it.Counter)
		assert.Equal(t, f.code(i), it.Code)
		assert.Equal(t, "53570000000000"+"07", it.SAMSerial)
		assert.Equal(t, "taspen", it.Service)
		assert.Equal(t, "t-01", it.Terminal)
		assert.Equal(t, f.recs[i].Time, it.Time.UTC())
	}
	states := []string{"acknowledged", "acknowledged", "dead", "sending", "pending", "pending"}
	for i, s := range states {
		assert.Equal(t, s, l.Records[i].State, "record %d", i+1)
	}
	assert.NotNil(t, l.Records[0].Acknowledged)
	assert.Equal(t, "terminal not registered", l.Records[2].Reason)
	assert.Nil(t, l.Records[2].Attempts, "a dead record's bookkeeping is not kept")
	assert.Equal(t, uint32(1), *l.Records[3].Attempts)

	for _, lang := range []string{"id", "en"} {
		out, errOut, code = runCLI(t, "", "--lang", lang, "queue", "list", "--outbox", f.path)
		require.Equal(t, 0, code, errOut)
		noPersonalData(t, out)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 7, out)
		assert.Contains(t, lines[3], "dead")
		assert.Contains(t, lines[3], f.code(2))
		assert.Contains(t, lines[3], "terminal not registered")
		assert.Contains(t, lines[5], f.code(4))
	}
	assert.True(t, strings.HasPrefix(out, "SEQ "))

	for _, tc := range []struct {
		state string
		want  []int
	}{{"pending", []int{4, 5}}, {"sending", []int{3}}, {"acknowledged", []int{0, 1}}, {"dead", []int{2}}} {
		out, errOut, code = runCLI(t, "", "queue", "list", "--outbox", f.path, "--state", tc.state, "--json")
		require.Equal(t, 0, code, errOut)
		require.NoError(t, json.Unmarshal([]byte(out), &l))
		var got []int
		for _, it := range l.Records {
			got = append(got, int(it.Counter)-1)
		}
		assert.Equal(t, tc.want, got, tc.state)
	}

	out, errOut, code = runCLI(t, "", "queue", "list", "--outbox", f.path, "-n", "3", "--json")
	require.Equal(t, 0, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &l))
	assert.Len(t, l.Records, 3)
	assert.True(t, l.Truncated)
	assert.Equal(t, "dead", l.Records[2].State)
	out, _, code = runCLI(t, "", "--lang", "en", "queue", "list", "--outbox", f.path, "-n", "2")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "the first 2 are shown")

	_, errOut, code = runCLI(t, "", "queue", "list", "--outbox", f.path, "--state", "lost")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `--state "lost"`)
	out, errOut, code = runCLI(t, "", "queue", "list", "--outbox", filepath.Join(t.TempDir(), "empty.db"))
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "Berkas outbox tidak ada")
}

func TestQueueRetry(t *testing.T) {
	f := newQueueFixture(t)
	_, errOut, code := runCLI(t, "", "queue", "retry", "--outbox", f.path)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "SEQ")
	_, _, code = runCLI(t, "", "queue", "retry", "--outbox", f.path, "--all", "3")
	assert.Equal(t, 2, code)
	_, errOut, code = runCLI(t, "", "queue", "retry", "--outbox", f.path, "three")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `"three"`)

	// a record that is not dead: nothing moves
	_, errOut, code = runCLI(t, "", "--lang", "en", "queue", "retry", "--outbox", f.path, strconv.FormatUint(f.seqs[4], 10))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "not in the dead-letter queue")

	// SEQ before the flags, as a technician may type it
	out, errOut, code := runCLI(t, "", "queue", "retry", strconv.FormatUint(f.seqs[2], 10), "--outbox", f.path)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "1 catatan dikembalikan ke antrean (pending)")
	out, errOut, code = runCLI(t, "", "queue", "stats", "--outbox", f.path, "--json")
	require.Equal(t, 0, code, errOut)
	var st queueStatsJSON
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Zero(t, st.Dead)
	assert.Equal(t, 4, st.Pending, "the retried record and the one the agent was sending (the writable open resets it)")
	assert.Equal(t, 4, st.Unsynced)

	out, errOut, code = runCLI(t, "", "queue", "retry", "--outbox", f.path, "--all", "--json")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `"requeued": 0`)
}

func TestQueueLockedByTheAgent(t *testing.T) {
	f := newQueueFixture(t)
	agent, err := outbox.Open(f.path, outbox.Options{})
	require.NoError(t, err)
	defer agent.Close()
	for _, args := range [][]string{
		{"queue", "stats", "--outbox", f.path},
		{"queue", "list", "--outbox", f.path},
		{"--lang", "en", "queue", "retry", "--outbox", f.path, "--all"},
	} {
		start := time.Now()
		_, errOut, code := runCLI(t, "", args...)
		assert.Equal(t, 1, code, args)
		assert.Less(t, time.Since(start), 3*time.Second, "no hang")
		if args[0] == "--lang" {
			assert.Contains(t, errOut, "The agent is running (it has the outbox open); stop it first or use the local API.")
		} else {
			assert.Contains(t, errOut, "Agen sedang berjalan")
		}
	}
}

func TestQueueDamagedFileIsNotMovedAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte("garbage "), 2048), 0o600))
	for _, sub := range []string{"stats", "list"} {
		_, errOut, code := runCLI(t, "", "queue", sub, "--outbox", path)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "Berkas outbox rusak")
	}
	_, errOut, code := runCLI(t, "", "queue", "retry", "--outbox", path, "--all")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "Berkas outbox rusak")
	names, err := filepath.Glob(path + "*")
	require.NoError(t, err)
	assert.Equal(t, []string{path}, names, "nothing moved aside")
}

func TestQueueSalvage(t *testing.T) {
	f := newQueueFixture(t)
	// wreck both bbolt meta pages
	w, err := os.OpenFile(f.path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = w.WriteAt(make([]byte, 8192), 0)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	_, errOut, code := runCLI(t, "", "queue", "stats", "--outbox", f.path)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "rusak")

	out, errOut, code := runCLI(t, "", "queue", "salvage", f.path)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "6 catatan dipulihkan dari "+f.path)
	assert.Contains(t, out, "SAM 5357000000000007: 6 catatan, penghitung 1–6, tidak ada yang hilang")
	noPersonalData(t, out)

	newPath := filepath.Join(t.TempDir(), "salvaged.db")
	out, errOut, code = runCLI(t, "", "--lang", "en", "queue", "salvage", f.path, "--out", newPath, "--json")
	require.Equal(t, 0, code, errOut)
	var res queueSalvageJSON
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Equal(t, 6, res.Recovered)
	assert.Equal(t, 6, res.Written)
	require.Len(t, res.SAMs, 1)
	assert.Equal(t, samSummary{SAMSerial: "5357000000000007", Records: 6, FirstCounter: 1, LastCounter: 6,
		Missing: [][2]uint32{}, Repeated: []uint32{}}, res.SAMs[0])

	ob, err := outbox.Open(newPath, outbox.Options{})
	require.NoError(t, err)
	st, err := ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, 6, st.Pending, "every record recovered, acknowledged ones too: the back office answers duplicate")
	items, err := ob.Claim(10, 1<<20)
	require.NoError(t, err)
	require.Len(t, items, 6)
	for i, it := range items {
		enc, err := f.recs[i].Encode()
		require.NoError(t, err)
		assert.Equal(t, enc, it.Encoded)
	}
	require.NoError(t, ob.Close())

	// -out never overwrites
	_, errOut, code = runCLI(t, "", "--lang", "en", "queue", "salvage", f.path, "--out", newPath)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "The --out file exists")
	_, errOut, code = runCLI(t, "", "queue", "salvage")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "want one damaged outbox file")
}

// Salvage's summary: per SAM the first and last counter and the gaps.
func TestSalvageSummary(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	rec := func(sam byte, counter uint32) *record.Record {
		id, err := record.NewID()
		require.NoError(t, err)
		r := &record.Record{
			ID: id, TerminalID: "t", SiteID: "s", OperatorID: "o", Service: "askes",
			CardType: record.CardKPE, CardSerial: []byte{1}, SubjectKind: record.SubjectNIP, Subject: testNIP,
			CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
			Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Pass},
			Time: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), Clock: record.ClockSynced,
		}
		require.NoError(t, record.Seal(context.Background(), r, record.NewSoftwareSigner(key, [8]byte{sam}, counter-1)))
		return r
	}
	recs := []*record.Record{rec(1, 3), rec(1, 4), rec(1, 7), rec(1, 7), rec(1, 9), rec(2, 1)}
	got := summarise(recs)
	require.Len(t, got, 2)
	assert.Equal(t, samSummary{SAMSerial: "0100000000000000", Records: 5, FirstCounter: 3, LastCounter: 9,
		Missing: [][2]uint32{{5, 6}, {8, 8}}, MissingCount: 3, Repeated: []uint32{7}}, got[0])
	assert.Equal(t, samSummary{SAMSerial: "0200000000000000", Records: 1, FirstCounter: 1, LastCounter: 1,
		Missing: [][2]uint32{}, Repeated: []uint32{}}, got[1])
	assert.Equal(t, "5-6, 8", ranges(got[0].Missing))
	many := make([][2]uint32, 25)
	for i := range many {
		many[i] = [2]uint32{uint32(2 * i), uint32(2 * i)}
	}
	assert.True(t, strings.HasSuffix(ranges(many), "38, … (+5)"))
	assert.Empty(t, summarise(nil))
}

func TestQueueUsage(t *testing.T) {
	// Without a subcommand: the usage, listing them, on standard error.
	_, errOut, code := runCLI(t, "", "queue")
	assert.Equal(t, 2, code)
	assert.Regexp(t, `(?s)stats.*list.*retry.*salvage`, errOut)
	_, errOut, code = runCLI(t, "", "queue", "flush")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `perintah tidak dikenal: "flush"`)
	assert.Contains(t, errOut, "Run 'kpectl queue --help' for usage.")
	out, _, code := runCLI(t, "", "queue", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "salvage")
	_, errOut, code = runCLI(t, "", "queue", "list", "-n", "-1")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--limit (-n) must not be negative")
}
