package backoffice_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/pgtest"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// monthPartition is the name of the record partition of t's UTC month.
func monthPartition(t time.Time) string {
	return fmt.Sprintf("records_y%04dm%02d", t.UTC().Year(), int(t.UTC().Month()))
}

// partitionOf names the partition holding the record of code.
func partitionOf(t *testing.T, pool *pgxpool.Pool, code string) string {
	var name string
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT r.tableoid::regclass::text FROM record_keys k
		JOIN records r USING (sam_serial, counter, received_at) WHERE k.code = $1`, code).Scan(&name))
	return name
}

func partitions(t *testing.T, pool *pgxpool.Pool) []string {
	rows, err := pool.Query(context.Background(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'records'::regclass ORDER BY 1`)
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		out = append(out, n)
	}
	require.NoError(t, rows.Err())
	return out
}

// Four back offices start together on a fresh database: all open, every
// migration is applied once, records is partitioned with this month's,
// the next month's and the DEFAULT partition.
func TestMigrationsConcurrentStart(t *testing.T) {
	dsn := pgtest.DB(t)
	const nodes = 4
	stores := make([]*backoffice.PGStore, nodes)
	errs := make([]error, nodes)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			stores[i], errs[i] = backoffice.OpenPostgres(context.Background(), dsn)
		}()
	}
	close(start)
	wg.Wait()
	for i := range nodes {
		require.NoError(t, errs[i], "node %d", i)
		t.Cleanup(func() { stores[i].Close() })
	}
	pool := stores[0].Pool()
	var n, distinct, maxV int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT version), max(version) FROM schema_migrations").Scan(&n, &distinct, &maxV))
	files, err := filepath.Glob("migrations/*.sql")
	require.NoError(t, err)
	// numbers may skip (a branch holds a later one first): count the files
	last, err := strconv.Atoi(strings.SplitN(filepath.Base(files[len(files)-1]), "_", 2)[0])
	require.NoError(t, err)
	assert.Equal(t, last, maxV, "every migration applied")
	assert.Equal(t, len(files), n, "each migration once")
	assert.Equal(t, n, distinct)
	var strategy string
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT partstrat::text FROM pg_partitioned_table WHERE partrelid = 'records'::regclass").Scan(&strategy))
	assert.Equal(t, "r", strategy, "records is partitioned by range")
	now := time.Now()
	assert.ElementsMatch(t, []string{"records_default", monthPartition(now), monthPartition(now.AddDate(0, 1, -now.Day()+1))}, partitions(t, pool))

	// the maintenance from all nodes at once, for a month not made yet
	later := now.AddDate(0, 6, -now.Day()+1)
	errs = make([]error, nodes)
	for i := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = stores[i].EnsurePartitions(context.Background(), later) }()
	}
	wg.Wait()
	for i := range nodes {
		require.NoError(t, errs[i], "node %d", i)
	}
	assert.Contains(t, partitions(t, pool), monthPartition(later))
	assert.Contains(t, partitions(t, pool), monthPartition(later.AddDate(0, 1, 0)))
}

// A database left by version 3 (one records table) with records of two
// months and a version-1 record's alias: migration 004 moves each record
// into its month's partition, and everything still works on it: codes and
// the alias verify, replays are duplicates, the next record follows the
// chain.
func TestMigration004MovesRecords(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DB(t)
	require.NoError(t, backoffice.MigratePostgres(ctx, dsn, 3))

	// records made by a lab SAM (the bbolt store only serves to build the lab)
	bolt, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer bolt.Close()
	l := newLab(t, bolt)
	genuine := l.sealV1(baseRecord("t-01"))
	twin := twinOf(genuine)
	recs := append([][]byte{genuine}, l.records(2, "t-01")...)

	now := time.Now().UTC()
	old := now.AddDate(0, -3, -now.Day()+10)
	received := []time.Time{old, old.Add(time.Hour), now}
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, `INSERT INTO sams (serial, cert, counters) VALUES ($1, $2, '{"max":3}')`, samSerial[:], l.sam.Cert)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO terminals (terminal_id, site_id, records, last_seen) VALUES ('t-01', 'pkm-a', 3, now())`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO terminal_sams (terminal_id, sam_serial) VALUES ('t-01', $1)`, samSerial[:])
	require.NoError(t, err)
	for i, enc := range recs {
		r, err := record.Decode(enc)
		require.NoError(t, err)
		h, err := r.Hash()
		require.NoError(t, err)
		flags := []string{}
		if i == 0 {
			flags = []string{wire.FlagChainStart}
		}
		_, err = pool.Exec(ctx, `INSERT INTO records (sam_serial, counter, hash, code, record_id, terminal_id, site_id, service,
			card_type, subject, fingerprint, rec_time, prev_hash, flags, received_at, encoded)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			r.SAMSerial[:], int64(r.Counter), h[:], record.CodeOf(h).String(), r.ID[:], r.TerminalID, r.SiteID, r.Service,
			int16(r.CardType), r.Subject, int16(r.Fingerprint.Outcome), r.Time, r.PrevHash[:], flags, received[i], enc)
		require.NoError(t, err)
	}
	tr, err := record.Decode(twin)
	require.NoError(t, err)
	th, err := tr.Hash()
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO record_aliases (hash, code, sam_serial, counter) VALUES ($1, $2, $3, 1)`, th[:], record.CodeOf(th).String(), samSerial[:])
	require.NoError(t, err)

	st, err := backoffice.OpenPostgres(ctx, dsn)
	require.NoError(t, err)
	defer st.Close()
	var left int
	require.NoError(t, st.Pool().QueryRow(ctx, "SELECT count(*) FROM pg_class WHERE relname = 'records_v3'").Scan(&left))
	assert.Zero(t, left, "the old table is dropped")
	assert.Equal(t, monthPartition(old), partitionOf(t, st.Pool(), codeOf(t, recs[0])))
	assert.Equal(t, monthPartition(old), partitionOf(t, st.Pool(), codeOf(t, recs[1])))
	assert.Equal(t, monthPartition(now), partitionOf(t, st.Pool(), codeOf(t, recs[2])))

	l.store = st
	l.svc, err = backoffice.New(st, backoffice.Config{CA: l.ca.Pool()})
	require.NoError(t, err)
	for _, enc := range append(recs, twin) {
		assert.True(t, l.verifies(codeOf(t, enc)))
	}
	assert.Equal(t, []wire.Status{wire.Duplicate, wire.Duplicate, wire.Duplicate, wire.Duplicate}, statuses(l.ingest(append(recs, twin)...)))
	next := l.records(1, "t-01")
	res := l.ingest(next...)
	assert.Equal(t, wire.Accepted, res[0].Status)
	assert.NotContains(t, res[0].Flags, wire.FlagChainBreak)
	ts, err := l.svc.Terminal(ctx, "t-01")
	require.NoError(t, err)
	assert.Equal(t, int64(4), ts.Records)
	require.Len(t, ts.SAMs, 1)
	assert.Equal(t, uint32(4), ts.SAMs[0].LastCounter)
	assert.Empty(t, ts.SAMs[0].Gaps)
}

// A record received in a month no partition covers (a back office whose
// clock jumped) lands in the DEFAULT partition; when the maintenance later
// makes that month's partition, the record moves into it and is still
// found.
func TestPartitionDefaultCatchesAndMoves(t *testing.T) {
	ctx := context.Background()
	st, err := backoffice.OpenPostgres(ctx, pgtest.DB(t))
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	future := time.Now().UTC().AddDate(1, 0, 0)
	l.svc, err = backoffice.New(st, backoffice.Config{CA: l.ca.Pool(), Now: func() time.Time { return future }})
	require.NoError(t, err)
	recs := l.records(2, "t-01")
	assert.Equal(t, []wire.Status{wire.Accepted, wire.Accepted}, statuses(l.ingest(recs...)))
	assert.Equal(t, "records_default", partitionOf(t, st.Pool(), codeOf(t, recs[0])))

	require.NoError(t, st.EnsurePartitions(ctx, future))
	for _, enc := range recs {
		assert.Equal(t, monthPartition(future), partitionOf(t, st.Pool(), codeOf(t, enc)))
		assert.True(t, l.verifies(codeOf(t, enc)))
	}
	var inDefault int
	require.NoError(t, st.Pool().QueryRow(ctx, "SELECT count(*) FROM records_default").Scan(&inDefault))
	assert.Zero(t, inDefault)
	// the month's next record goes straight to its partition
	more := l.records(1, "t-01")
	assert.Equal(t, wire.Accepted, l.ingest(more...)[0].Status)
	assert.Equal(t, monthPartition(future), partitionOf(t, st.Pool(), codeOf(t, more[0])))
	// made once: a second run changes nothing
	require.NoError(t, st.EnsurePartitions(ctx, future))
}
