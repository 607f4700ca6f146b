package daemon

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
)

// Today's codes: the records of the terminal's day (its time zone, not
// UTC), newest first, with their state, and nothing personal.
func TestCodesToday(t *testing.T) {
	wib := time.FixedZone("WIB", 7*3600)
	clock := time.Date(2026, 3, 2, 0, 0, 0, 0, wib)
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{Now: func() time.Time { return clock }})
	require.NoError(t, err)
	t.Cleanup(func() { ob.Close() })

	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{0x42}, 32))
	require.NoError(t, err)
	signer := record.NewSoftwareSigner(key, [8]byte{'S', 'W', 0, 0, 0, 0, 0, 9}, 0)
	var prev [32]byte
	codes := map[string]string{} // by a label
	add := func(label, service string, at time.Time) uint64 {
		t.Helper()
		id, err := record.NewID()
		require.NoError(t, err)
		r := &record.Record{ID: id, TerminalID: "pkm-01", SiteID: "pkm", OperatorID: "clerk-07", Service: service,
			CardType: record.CardKPE, CardSerial: []byte{0xCA, 0xFE, 0xBA, 0xBE}, SubjectKind: record.SubjectNIP, Subject: "197208172000031002",
			CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
			Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Pass},
			Time: at, Clock: record.ClockSynced, PrevHash: prev}
		require.NoError(t, record.Seal(context.Background(), r, signer))
		clock = at
		seq, err := ob.Append(r)
		require.NoError(t, err)
		prev, err = r.Hash()
		require.NoError(t, err)
		codes[label] = record.CodeOf(prev).String() // the code flow prints
		// and no longer the hash of the whole encoding (the version-1 rule)
		enc, err := r.Encode()
		require.NoError(t, err)
		require.NotEqual(t, record.CodeOf(sha256.Sum256(enc)).String(), codes[label])
		return seq
	}
	day := func(h, m int) time.Time { return time.Date(2026, 3, 2, h, m, 0, 0, wib) }
	add("yesterday", "askes", day(0, 0).Add(-20*time.Minute)) // 16:40 UTC the day before: still yesterday in WIB
	early := add("early", "taspen", day(0, 5))                // 17:05 UTC of the day before, today in WIB
	rejected := add("rejected", "askes", day(8, 30))
	add("queued", "bapertarum", day(9, 15))
	add("tomorrow", "askes", day(24, 0)) // a clock set ahead
	_, err = ob.Claim(10, 1<<20)
	require.NoError(t, err)
	require.NoError(t, ob.Settle([]outbox.Result{{Seq: early, Outcome: outbox.Accepted}, {Seq: rejected, Outcome: outbox.Rejected, Reason: "bad signature"}}))

	got, err := codesOn(ob, day(12, 0))
	require.NoError(t, err)
	assert.Equal(t, "2026-03-02", got.Date)
	assert.False(t, got.Truncated)
	require.Len(t, got.Codes, 3)
	assert.Equal(t, api.TodayCode{Code: codes["queued"], Service: "bapertarum", Time: day(9, 15), State: api.CodeQueued}, got.Codes[0])
	assert.Equal(t, api.TodayCode{Code: codes["rejected"], Service: "askes", Time: day(8, 30), State: api.CodeRejected}, got.Codes[1])
	assert.Equal(t, api.TodayCode{Code: codes["early"], Service: "taspen", Time: day(0, 5), State: api.CodeSynced}, got.Codes[2])

	// the answer holds no subject, card serial or operator
	b, err := json.Marshal(got)
	require.NoError(t, err)
	for _, personal := range []string{"197208172000031002", "cafebabe", "CAFEBABE", "clerk-07", "pkm-01"} {
		assert.NotContains(t, string(b), personal)
	}
	assert.Contains(t, string(b), `"time":"2026-03-02T09:15:00+07:00"`, "in the terminal's time zone")

	// the next day: only the record of that day
	got, err = codesOn(ob, day(24, 30))
	require.NoError(t, err)
	assert.Equal(t, "2026-03-03", got.Date)
	require.Len(t, got.Codes, 1)
	assert.Equal(t, codes["tomorrow"], got.Codes[0].Code)

	// the day before, in UTC, is another split of the same records
	got, err = codesOn(ob, day(0, 30).UTC())
	require.NoError(t, err)
	assert.Equal(t, "2026-03-01", got.Date)
	var labels []string
	for _, c := range got.Codes {
		for l, code := range codes {
			if code == c.Code {
				labels = append(labels, l)
			}
		}
	}
	assert.Equal(t, "early yesterday", strings.Join(labels, " "), "a UTC terminal's 1 March")
}
