package backoffice_test

import (
	"context"
	"crypto/elliptic"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// twinOf returns enc with the signature's s replaced by n - s: the other
// valid ECDSA signature on the same content.
func twinOf(enc []byte) []byte {
	n := elliptic.P256().Params().N
	out := append([]byte(nil), enc...)
	s := new(big.Int).SetBytes(out[len(out)-32:])
	new(big.Int).Sub(n, s).FillBytes(out[len(out)-32:])
	return out
}

func (l *lab) alarms(kind, terminal string) []wire.Alarm {
	st, err := l.svc.Terminal(context.Background(), terminal)
	require.NoError(l.t, err)
	var out []wire.Alarm
	for _, a := range st.Alarms {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

func (l *lab) verifies(code string) bool {
	v, err := l.svc.Verify(context.Background(), code)
	require.NoError(l.t, err)
	return v.Valid
}

// The review's proof: the malleated twin of a record arrives first. It is
// refused with its own reason, the genuine record is then accepted, its
// printed code verifies, and no alarm is raised.
func TestMalleatedTwinFirst(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		genuine := l.records(1, "t-01")[0]
		twin := twinOf(genuine)

		res := l.ingest(twin)
		assert.Equal(t, wire.Rejected, res[0].Status, "the twin is taken: %+v", res[0])
		assert.Equal(t, wire.ReasonNonCanonical, res[0].Reason)

		res = l.ingest(genuine)
		assert.Equal(t, wire.Accepted, res[0].Status, "the genuine record: %+v", res[0])
		code := codeOf(t, genuine)
		assert.Equal(t, code, res[0].Code)
		assert.True(t, l.verifies(code), "the printed code does not verify")
		assert.Empty(t, l.alarms("counter-conflict", "t-01"))
	})
}

// A conflicting record (another content under a stored SAM serial and
// counter) submitted 51 times raises one alarm, not 51.
func TestConflictAlarmOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		l.ingest(l.records(2, "t-01")...)
		r := baseRecord("t-01")
		r.Service = "taspen"
		r.PrevHash = l.prev["t-01"]
		r.Signer, r.SAMSerial = record.SignerSAM, samSerial
		r.Time = time.UnixMilli(time.Now().UnixMilli()).UTC()
		d, err := r.Digest()
		require.NoError(t, err)
		r.Counter, r.Signature = 2, l.sam.SignAt(d, 2)
		conflicting, err := r.Encode()
		require.NoError(t, err)
		for i := 0; i < 50; i++ {
			assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonConflict}, l.ingest(conflicting)[0])
		}
		// and once more twice in one batch
		res := l.ingest(conflicting, conflicting)
		assert.Equal(t, []wire.Status{wire.Rejected, wire.Rejected}, statuses(res))
		assert.Len(t, l.alarms("counter-conflict", "t-01"), 1)

		// another conflicting content on the same counter is another alarm
		r.Service = "bapertarum"
		d, err = r.Digest()
		require.NoError(t, err)
		r.Signature = l.sam.SignAt(d, 2)
		other, err := r.Encode()
		require.NoError(t, err)
		l.ingest(other)
		l.ingest(other)
		assert.Len(t, l.alarms("counter-conflict", "t-01"), 2)
	})
}

// sealV1 seals r as a version-1 record (what terminals wrote before
// version 2) after the terminal's last record.
func (l *lab) sealV1(r *record.Record) []byte {
	r.Version = record.VersionLegacy
	r.PrevHash = l.prev[r.TerminalID]
	r.Signer, r.SAMSerial = record.SignerSAM, samSerial
	r.Time = time.UnixMilli(r.Time.UnixMilli()).UTC()
	d, err := r.Digest()
	require.NoError(l.t, err)
	r.Counter = l.sam.Counter() + 1
	l.sam.SetCounter(r.Counter)
	r.Signature = l.sam.SignAt(d, r.Counter)
	b, err := r.Encode()
	require.NoError(l.t, err)
	h, err := r.Hash()
	require.NoError(l.t, err)
	l.prev[r.TerminalID] = h
	return b
}

// A version-1 record and its malleated twin are one record: whichever
// arrives first is stored, the other is a duplicate (no dead letter, no
// alarm), and both codes verify. A successor chained on the genuine record
// that arrived between the two is a chain break until the genuine one
// comes, and then no longer.
func TestLegacyTwinIsDuplicate(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		genuine := l.sealV1(baseRecord("t-01"))
		twin := twinOf(genuine)
		next := l.records(1, "t-01")[0] // chained on the genuine record

		res := l.ingest(twin)
		require.Equal(t, wire.Accepted, res[0].Status, "%+v", res[0])
		res = l.ingest(next)
		require.Equal(t, wire.Accepted, res[0].Status)
		assert.Contains(t, res[0].Flags, wire.FlagChainBreak)

		res = l.ingest(genuine)
		assert.Equal(t, wire.Duplicate, res[0].Status, "the genuine record after its twin: %+v", res[0])
		assert.Equal(t, codeOf(t, genuine), res[0].Code)
		res = l.ingest(twin)
		assert.Equal(t, wire.Duplicate, res[0].Status)

		assert.True(t, l.verifies(codeOf(t, genuine)), "the printed code does not verify")
		assert.True(t, l.verifies(codeOf(t, twin)))
		assert.Empty(t, l.alarms("counter-conflict", "t-01"))
		st, err := l.svc.Terminal(ctx, "t-01")
		require.NoError(t, err)
		assert.Equal(t, int64(2), st.Records)
		assert.Equal(t, int64(0), st.ChainBreaks, "the successor still waits for the genuine record")
		v, err := l.svc.Verify(ctx, codeOf(t, next))
		require.NoError(t, err)
		assert.NotContains(t, v.Flags, wire.FlagChainBreak)

		// the other order, on another terminal: the genuine record first
		g2 := l.sealV1(baseRecord("t-02"))
		t2 := twinOf(g2)
		assert.Equal(t, wire.Accepted, l.ingest(g2)[0].Status)
		res = l.ingest(t2, t2)
		assert.Equal(t, []wire.Status{wire.Duplicate, wire.Duplicate}, statuses(res))
		assert.Equal(t, codeOf(t, t2), res[0].Code)
		assert.True(t, l.verifies(codeOf(t, g2)))
		assert.True(t, l.verifies(codeOf(t, t2)))
		assert.Empty(t, l.alarms("counter-conflict", "t-02"))
	})
}
