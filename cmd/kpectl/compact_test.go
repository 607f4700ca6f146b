package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
)

// prunedOutbox is an outbox of n records, the acknowledged ones pruned
// (free pages in the file), and how many records it keeps.
func prunedOutbox(t *testing.T, n int) (string, int) {
	t.Helper()
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "outbox.db")
	ob, err := outbox.Open(path, outbox.Options{Now: func() time.Time { return now }, Retention: time.Hour})
	require.NoError(t, err)
	defer ob.Close()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	signer := record.NewSoftwareSigner(key, testSAM, 0)
	var prev [32]byte
	var acks []outbox.Result
	for i := range n {
		id, err := record.NewID()
		require.NoError(t, err)
		r := &record.Record{ID: id, TerminalID: "t-01", SiteID: "s-01", OperatorID: "op-17", Service: "taspen",
			CardType: record.CardKPE, CardSerial: testCardSerial, SubjectKind: record.SubjectNIP, Subject: testNIP,
			CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
			Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Pass},
			Time: now, Clock: record.ClockSynced, PrevHash: prev}
		require.NoError(t, record.Seal(context.Background(), r, signer))
		seq, err := ob.Append(r)
		require.NoError(t, err)
		prev, _ = r.Hash()
		if i < n-20 {
			acks = append(acks, outbox.Result{Seq: seq, Outcome: outbox.Accepted})
		}
	}
	_, err = ob.Claim(n, 1<<30)
	require.NoError(t, err)
	require.NoError(t, ob.Settle(acks))
	now = now.Add(2 * time.Hour)
	_, err = ob.Prune()
	require.NoError(t, err)
	return path, 20
}

// kpectl queue compact copies the outbox into a smaller file that replaces
// it (the agent stopped), says the sizes before and after, removes a
// temporary file an interrupted compaction left, and refuses while the
// agent holds the outbox.
func TestQueueCompact(t *testing.T) {
	path, kept := prunedOutbox(t, 1000)
	tmp := path + outbox.CompactTempSuffix
	require.NoError(t, os.WriteFile(tmp, []byte("half a file"), 0o600))

	out, errOut, code := runCLI(t, "", "queue", "compact", "--outbox", path)
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, errOut)
	assert.Contains(t, out, "Berkas sementara dari pemadatan yang terputus dihapus: "+tmp)
	assert.Regexp(t, `Outbox `+regexp.QuoteMeta(path)+` dipadatkan: [0-9.]+ (B|KiB|MiB) → [0-9.]+ (B|KiB|MiB)\n`, out)
	_, err := os.Stat(tmp)
	assert.ErrorIs(t, err, os.ErrNotExist)

	out, errOut, code = runCLI(t, "", "queue", "compact", "--outbox", path, "--json")
	require.Equal(t, 0, code, errOut)
	var res queueCompactJSON
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Equal(t, path, res.Outbox)
	assert.Positive(t, res.AfterBytes)
	assert.LessOrEqual(t, res.AfterBytes, res.BeforeBytes)
	assert.Empty(t, res.RemovedTemp)

	ob, err := outbox.Open(path, outbox.Options{ReadOnly: true})
	require.NoError(t, err)
	st, err := ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, kept, st.Unsynced+st.Acknowledged, "every record is kept")
	require.NoError(t, ob.Close())

	agent, err := outbox.Open(path, outbox.Options{})
	require.NoError(t, err)
	start := time.Now()
	_, errOut, code = runCLI(t, "", "--lang", "en", "queue", "compact", "--outbox", path)
	assert.Equal(t, 1, code)
	assert.Less(t, time.Since(start), 3*time.Second, "no hang")
	assert.Contains(t, errOut, "The agent is running (it has the outbox open); stop it first")
	require.NoError(t, agent.Close())

	missing := filepath.Join(t.TempDir(), "nope.db")
	out, _, code = runCLI(t, "", "queue", "compact", "--outbox", missing, "--json")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `"code": "no-outbox"`)
	_, err = os.Stat(missing)
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing created")
}

func TestQueueCompactSizes(t *testing.T) {
	path, _ := prunedOutbox(t, 3000)
	out, errOut, code := runCLI(t, "", "--lang", "en", "queue", "compact", "--outbox", path, "--json")
	require.Equal(t, 0, code, errOut)
	var res queueCompactJSON
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Less(t, res.AfterBytes, res.BeforeBytes, "the pruned records' pages are given back")
}
