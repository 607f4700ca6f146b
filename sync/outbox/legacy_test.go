package outbox_test

import (
	"crypto/sha256"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
)

// legacyRecord is a version-1 record as terminals wrote it before version 2
// (Seal writes version 2 only, so it is signed by hand).
func legacyRecord(t *testing.T, c *chain) *record.Record {
	r := c.next(t)
	r.Version = record.VersionLegacy
	d, err := r.Digest()
	require.NoError(t, err)
	r.Signature, err = record.SignDigest(testKey, d, r.Counter, r.SAMSerial)
	require.NoError(t, err)
	return r
}

// An outbox written before version 2 goes on: its last record's hash is
// the version-1 hash (of the whole encoding), the next record, version 2,
// follows it, and from then on the chain hash is record.Hash, the content
// hash. Salvage finds records of both versions, and Import tells them apart
// by the same hash.
func TestLegacyRecordsContinue(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	ob := open(t, filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{Now: clk.Now})
	c := newChain()

	old := legacyRecord(t, c)
	_, err := ob.Append(old)
	require.NoError(t, err)
	oldEnc, err := old.Encode()
	require.NoError(t, err)
	last, err := ob.LastHash()
	require.NoError(t, err)
	assert.Equal(t, sha256.Sum256(oldEnc), last, "a version-1 record's hash is that of its whole encoding")
	c.appended(old)
	require.Equal(t, last, c.prev)

	cur := c.next(t)
	require.Equal(t, uint8(record.Version), cur.Version)
	_, err = ob.Append(cur)
	require.NoError(t, err, "the first version-2 record follows the last version-1 one")
	c.appended(cur)
	last, err = ob.LastHash()
	require.NoError(t, err)
	want, err := cur.Hash()
	require.NoError(t, err)
	assert.Equal(t, want, last, "the chain goes on with record.Hash")
	curEnc, err := cur.Encode()
	require.NoError(t, err)
	assert.NotEqual(t, sha256.Sum256(curEnc), last)
	_, err = ob.Append(c.next(t))
	require.NoError(t, err)

	damaged := append(append(append([]byte("junk KPR\x09"), oldEnc...), "more junk"...), curEnc...)
	got := outbox.SalvageBytes(damaged)
	require.Len(t, got, 2, "both versions are salvaged")
	assert.Equal(t, old, got[0])
	assert.Equal(t, cur, got[1])

	into := open(t, filepath.Join(t.TempDir(), "salvaged.db"), outbox.Options{Now: clk.Now})
	n, err := into.Import(got)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	n, err = into.Import(got)
	require.NoError(t, err)
	assert.Equal(t, 0, n, "importing again adds nothing")
}
