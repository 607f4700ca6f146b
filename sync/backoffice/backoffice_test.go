package backoffice_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/pgtest"
	"kpe-agent/lab/labpki"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// lab is a back office over one store with a SAM CA and one stand-in SAM.
type lab struct {
	t     *testing.T
	ca    *labpki.CA
	sam   *labpki.SAM
	store backoffice.Store
	svc   *backoffice.Service
	prev  map[string][32]byte // terminal → hash of its last record
	now   time.Time
}

var samSerial = [8]byte{0x53, 0x41, 0x4d, 0, 0, 0, 0, 7}

// t01 is the identity of terminal t-01's client certificate.
var t01 = backoffice.Identity{Terminal: "t-01"}

// eachStore runs f against the bbolt store and against PostgreSQL.
func eachStore(t *testing.T, f func(t *testing.T, l *lab)) {
	for _, kind := range []string{"bolt", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			var st backoffice.Store
			var err error
			if kind == "bolt" {
				st, err = backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
			} else {
				st, err = backoffice.OpenPostgres(context.Background(), pgtest.DB(t))
			}
			require.NoError(t, err)
			t.Cleanup(func() { st.Close() })
			f(t, newLab(t, st))
		})
	}
}

func newLab(t *testing.T, st backoffice.Store) *lab {
	ca, err := labpki.NewCA("test SAM CA")
	require.NoError(t, err)
	sam, err := ca.NewSAM(samSerial)
	require.NoError(t, err)
	svc, err := backoffice.New(st, backoffice.Config{CA: ca.Pool(), Institutions: map[string]string{"pkm-a": "Dinkes Kota A", "pkm-b": "Dinkes Kota A"},
		Password: cheap})
	require.NoError(t, err)
	return &lab{t: t, ca: ca, sam: sam, store: st, svc: svc, prev: map[string][32]byte{}, now: time.Now()}
}

func baseRecord(terminal string) *record.Record {
	id, _ := record.NewID()
	return &record.Record{
		ID: id, TerminalID: terminal, SiteID: "pkm-a", OperatorID: "clerk-1", Service: "askes",
		CardType: record.CardKPE, CardSerial: []byte{1, 2, 3, 4}, SubjectKind: record.SubjectNIP, Subject: "196608011988031001",
		CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
		Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Pass},
		Time: time.Now(), Clock: record.ClockSynced,
	}
}

// seal chains r after the terminal's last record and seals it.
func (l *lab) seal(r *record.Record, s record.Signer) []byte {
	r.PrevHash = l.prev[r.TerminalID]
	require.NoError(l.t, record.Seal(context.Background(), r, s))
	h, err := r.Hash()
	require.NoError(l.t, err)
	l.prev[r.TerminalID] = h
	b, err := r.Encode()
	require.NoError(l.t, err)
	return b
}

func (l *lab) records(n int, terminal string) [][]byte {
	var out [][]byte
	for i := 0; i < n; i++ {
		out = append(out, l.seal(baseRecord(terminal), l.sam))
	}
	return out
}

// ingest sends records as the terminal of the first (its client
// certificate's identity); as t-01 when the first does not decode (a
// malformed or malleated record is refused before binding matters).
func (l *lab) ingest(recs ...[]byte) []wire.Result {
	peer := t01
	if r, err := record.Decode(recs[0]); err == nil {
		peer = backoffice.Identity{Terminal: r.TerminalID}
	}
	res, err := l.svc.Ingest(context.Background(), &wire.Batch{Certificates: [][]byte{l.sam.Cert}, Records: recs, SentAt: time.Now()}, peer)
	require.NoError(l.t, err)
	require.Len(l.t, res.Results, len(recs))
	return res.Results
}

func statuses(rs []wire.Result) []wire.Status {
	var out []wire.Status
	for _, r := range rs {
		out = append(out, r.Status)
	}
	return out
}

func codeOf(t *testing.T, enc []byte) string {
	r, err := record.Decode(enc)
	require.NoError(t, err)
	h, err := r.Hash()
	require.NoError(t, err)
	return record.CodeOf(h).String()
}

func TestIngestDuplicateVerify(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		recs := l.records(5, "t-01")
		res := l.ingest(recs...)
		for i, r := range res {
			assert.Equal(t, wire.Accepted, r.Status, "record %d: %+v", i, r)
			assert.Equal(t, codeOf(t, recs[i]), r.Code)
		}
		assert.Contains(t, res[0].Flags, wire.FlagChainStart)
		assert.NotContains(t, res[1].Flags, wire.FlagChainBreak)

		// the same batch again, and a replayed old record: duplicates
		assert.Equal(t, []wire.Status{wire.Duplicate, wire.Duplicate, wire.Duplicate, wire.Duplicate, wire.Duplicate}, statuses(l.ingest(recs...)))
		assert.Equal(t, []wire.Status{wire.Duplicate}, statuses(l.ingest(recs[1])))
		// one record twice in one batch
		more := l.records(1, "t-01")
		assert.Equal(t, []wire.Status{wire.Accepted, wire.Duplicate}, statuses(l.ingest(more[0], more[0])))

		st, err := l.svc.Terminal(context.Background(), "t-01")
		require.NoError(t, err)
		assert.Equal(t, int64(6), st.Records, "replays are not counted")
		assert.Equal(t, int64(0), st.ChainBreaks)
		require.Len(t, st.SAMs, 1)
		assert.Equal(t, uint32(6), st.SAMs[0].LastCounter)
		assert.Empty(t, st.SAMs[0].Gaps)

		// verification of the printed code
		code := codeOf(t, recs[2])
		v, err := l.svc.Verify(context.Background(), code)
		require.NoError(t, err)
		assert.True(t, v.Valid)
		assert.Equal(t, "askes", v.Service)
		assert.Equal(t, "t-01", v.TerminalID)
		assert.Equal(t, "pass", v.Checks.Fingerprint)
		assert.Equal(t, uint32(3), v.Counter)
		assert.Equal(t, "sam", v.Signer)
		// typed sloppily: lower case, no hyphens
		v, err = l.svc.Verify(context.Background(), toLowerNoHyphen(code))
		require.NoError(t, err)
		assert.True(t, v.Valid)
		// one wrong character: the check symbol catches it
		v, err = l.svc.Verify(context.Background(), typo(code))
		require.NoError(t, err)
		assert.False(t, v.Valid)
		assert.Equal(t, "check-symbol", v.Reason)
		// a well-formed code of no record
		var h [32]byte
		h[0] = 1
		v, err = l.svc.Verify(context.Background(), record.CodeOf(h).String())
		require.NoError(t, err)
		assert.False(t, v.Valid)
		assert.Equal(t, "unknown", v.Reason)
	})
}

func toLowerNoHyphen(s string) string {
	var out []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' {
			continue
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		out = append(out, c)
	}
	return string(out)
}

// typo changes the first data symbol to another symbol of the alphabet.
func typo(code string) string {
	b := []byte(code)
	if b[0] == '7' {
		b[0] = '8'
	} else {
		b[0] = '7'
	}
	return string(b)
}

func TestRejections(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		good := l.records(1, "t-01")[0]

		forged := append([]byte(nil), good...)
		forged[len(forged)-1] ^= 0x01 // last signature byte

		r, err := record.Decode(l.records(1, "t-01")[0])
		require.NoError(t, err)
		r.Service = "taspen" // altered after signing
		altered, err := r.Encode()
		require.NoError(t, err)

		// a SAM of another CA, certificate included
		rogueCA, err := labpki.NewCA("rogue")
		require.NoError(t, err)
		rogue, err := rogueCA.NewSAM([8]byte{9, 9, 9, 9, 9, 9, 9, 9})
		require.NoError(t, err)
		rogueRec := l.seal(baseRecord("t-01"), rogue)

		// software signed
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		soft := l.seal(baseRecord("t-01"), record.NewSoftwareSigner(key, [8]byte{1}, 0))

		res, err := l.svc.Ingest(context.Background(), &wire.Batch{Certificates: [][]byte{l.sam.Cert, rogue.Cert},
			Records: [][]byte{good, forged, altered, rogueRec, soft, []byte("KPR\x01garbage")}}, t01)
		require.NoError(t, err)
		got := res.Results
		assert.Equal(t, wire.Accepted, got[0].Status)
		assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonSignature}, got[1])
		assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonSignature}, got[2])
		assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonUnknownSAM}, got[3])
		assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonSoftwareSigner}, got[4])
		assert.Equal(t, wire.Rejected, got[5].Status)
		assert.Contains(t, got[5].Reason, wire.ReasonMalformed)

		// the rogue SAM stays unknown without its certificate too
		res, err = l.svc.Ingest(context.Background(), &wire.Batch{Records: [][]byte{rogueRec}}, t01)
		require.NoError(t, err)
		assert.Equal(t, wire.ReasonUnknownSAM, res.Results[0].Reason)

		// a terminal's TLS identity must match the records it sends
		other := l.records(1, "t-02")[0]
		res, err = l.svc.Ingest(context.Background(), &wire.Batch{Records: [][]byte{other}}, t01)
		require.NoError(t, err)
		assert.Equal(t, wire.ReasonTerminal, res.Results[0].Reason)

		// nothing of the rejected was stored: the altered record's code is unknown
		v, err := l.svc.Verify(context.Background(), codeOf(t, altered))
		require.NoError(t, err)
		assert.False(t, v.Valid)
		// a forged signature makes no code of its own: the code is the
		// signed content's (docs/records.md), here the good record's
		assert.Equal(t, codeOf(t, good), codeOf(t, forged))
	})
}

func TestCounterConflictAndGaps(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		first := l.records(2, "t-01") // counters 1, 2
		l.ingest(first...)

		// the same counter (2) on different content: rejected, alarm
		r := baseRecord("t-01")
		r.Service = "taspen"
		r.PrevHash = l.prev["t-01"]
		r.Signer, r.SAMSerial = record.SignerSAM, samSerial
		r.Time = time.UnixMilli(time.Now().UnixMilli()).UTC()
		d, err := r.Digest()
		require.NoError(t, err)
		r.Counter, r.Signature = 2, l.sam.SignAt(d, 2)
		twin, err := r.Encode()
		require.NoError(t, err)
		res := l.ingest(twin)
		assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonConflict}, res[0])
		st, err := l.svc.Terminal(ctx, "t-01")
		require.NoError(t, err)
		require.NotEmpty(t, st.Alarms)
		assert.Equal(t, "counter-conflict", st.Alarms[0].Kind)
		assert.Equal(t, uint32(2), st.Alarms[0].Counter)

		// counters 3 and 4 are signed but lost; 5 arrives: a gap
		l.sam.SetCounter(4)
		five := l.records(1, "t-01")
		res = l.ingest(five...)
		assert.Contains(t, res[0].Flags, wire.FlagGapBefore)
		assert.NotContains(t, res[0].Flags, wire.FlagChainBreak, "the lost counters were never in the outbox: the chain goes on")
		st, err = l.svc.Terminal(ctx, "t-01")
		require.NoError(t, err)
		assert.Equal(t, []wire.Range{{From: 3, To: 4}}, st.SAMs[0].Gaps)
		assert.Equal(t, uint32(5), st.SAMs[0].LastCounter)
		assert.Equal(t, int64(0), st.ChainBreaks)

		// a late record with counter 3 fills part of the gap
		late := baseRecord("t-01")
		late.PrevHash = hashOf(t, first[1])
		late.Signer, late.SAMSerial = record.SignerSAM, samSerial
		late.Time = time.UnixMilli(time.Now().UnixMilli()).UTC()
		d, err = late.Digest()
		require.NoError(t, err)
		late.Counter, late.Signature = 3, l.sam.SignAt(d, 3)
		lateEnc, err := late.Encode()
		require.NoError(t, err)
		res = l.ingest(lateEnc)
		assert.Equal(t, wire.Accepted, res[0].Status)
		assert.Contains(t, res[0].Flags, wire.FlagFillsGap)
		st, err = l.svc.Terminal(ctx, "t-01")
		require.NoError(t, err)
		assert.Equal(t, []wire.Range{{From: 4, To: 4}}, st.SAMs[0].Gaps)
	})
}

func hashOf(t *testing.T, enc []byte) [32]byte {
	r, err := record.Decode(enc)
	require.NoError(t, err)
	h, err := r.Hash()
	require.NoError(t, err)
	return h
}

// A record whose predecessor arrives later is a chain break until then.
func TestChainBreakResolved(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		recs := l.records(3, "t-01")
		res := l.ingest(recs[0], recs[2])
		assert.Contains(t, res[1].Flags, wire.FlagChainBreak)
		st, err := l.svc.Terminal(context.Background(), "t-01")
		require.NoError(t, err)
		assert.Equal(t, int64(1), st.ChainBreaks)
		assert.Equal(t, []wire.Range{{From: 2, To: 2}}, st.SAMs[0].Gaps)

		res = l.ingest(recs[1])
		assert.Contains(t, res[0].Flags, wire.FlagFillsGap)
		st, err = l.svc.Terminal(context.Background(), "t-01")
		require.NoError(t, err)
		assert.Equal(t, int64(0), st.ChainBreaks)
		assert.Empty(t, st.SAMs[0].Gaps)
		v, err := l.svc.Verify(context.Background(), codeOf(t, recs[2]))
		require.NoError(t, err)
		assert.NotContains(t, v.Flags, wire.FlagChainBreak)

		// a terminal starting a new chain (a fresh outbox) raises an alarm
		l.prev["t-01"] = [32]byte{}
		res = l.ingest(l.records(1, "t-01")...)
		assert.Contains(t, res[0].Flags, wire.FlagChainStart)
		st, err = l.svc.Terminal(context.Background(), "t-01")
		require.NoError(t, err)
		require.NotEmpty(t, st.Alarms)
		assert.Equal(t, "chain-restart", st.Alarms[len(st.Alarms)-1].Kind)
	})
}
