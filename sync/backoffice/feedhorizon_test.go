package backoffice_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/pgtest"
	"kpe-agent/lab/labpki"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/wire"
)

// A writing transaction left open in another database of the cluster
// does not hold the feed back (transaction ids are the cluster's; it
// cannot write here), while one open in the feed's own database does,
// as before: the records committed after it wait until it ends.
func TestFeedHorizonIgnoresOtherDatabases(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := pgtest.DB(t)
	st, err := backoffice.OpenPostgres(ctx, dsn)
	require.NoError(t, err)
	defer st.Close()
	ca, err := labpki.NewCA("test SAM CA")
	require.NoError(t, err)
	sam, err := ca.NewSAM([8]byte{0x53, 0x41, 0x4d, 2, 0, 0, 0, 1})
	require.NoError(t, err)
	_, err = st.PinSAMCertificate(ctx, sam.Serial(), sam.Cert, wire.Alarm{})
	require.NoError(t, err)

	// a transaction that took an xid, open in another database
	hold := func(dsn string) (xid uint64, end func()) {
		c, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		tx, err := c.Begin(ctx)
		require.NoError(t, err)
		var s string
		require.NoError(t, tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&s))
		xid, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		return xid, func() { _ = tx.Rollback(ctx); _ = c.Close(ctx) }
	}
	otherXID, endOther := hold(pgtest.DB(t))
	defer endOther()

	var prev [32]byte
	first := makeEntries(t, sam, "t-01", 3, &prev)
	_, err = st.Ingest(ctx, first, backoffice.Meta{Now: time.Now()})
	require.NoError(t, err)
	recs, next, _, err := st.Feed(ctx, []string{"askes"}, backoffice.Cursor{}, 10)
	require.NoError(t, err)
	require.Len(t, recs, len(first), "the other database's open transaction held the feed back")
	for i := range first {
		assert.Equal(t, first[i].Code, recs[i].Code)
	}
	assert.Greater(t, next.XID, otherXID, "the horizon passed the other database's transaction")

	// one open here holds back what commits after it, until it ends
	_, endHere := hold(dsn)
	second := makeEntries(t, sam, "t-01", 2, &prev)
	_, err = st.Ingest(ctx, second, backoffice.Meta{Now: time.Now()})
	require.NoError(t, err)
	recs, held, _, err := st.Feed(ctx, []string{"askes"}, next, 10)
	require.NoError(t, err)
	assert.Empty(t, recs, "the feed passed a transaction open in its own database")
	assert.False(t, held.Less(next), "the feed went back")
	endHere()
	recs, _, _, err = st.Feed(ctx, []string{"askes"}, held, 10)
	require.NoError(t, err)
	require.Len(t, recs, len(second))
	for i := range second {
		assert.Equal(t, second[i].Code, recs[i].Code)
	}
}
