package backoffice

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"kpe-agent/sync/record"
)

// feedHorizon is the CTE h (one row, xmin): the feed's horizon, the
// lowest transaction id of the query's snapshot still in progress in
// this database, else the snapshot's xmax. Every transaction below it
// has ended as the snapshot sees it, or cannot write here. Transaction
// ids are the cluster's, and a transaction open in another database
// (another back office, a test, a migration elsewhere) would otherwise
// hold the feed back as long as it stays open. Only those
// pg_stat_activity shows as running in another database, with their
// xid, are passed over; anything it does not show (another role's
// session, a prepared transaction, one that ended since the snapshot
// was taken) holds the horizon as before. The snapshot's xids are 64
// bits and backend_xid 32: they are matched modulo 2^32 (the ids in
// flight at once span far less).
const feedHorizon = `s AS MATERIALIZED (SELECT pg_current_snapshot() AS snap),
	elsewhere AS MATERIALIZED (SELECT backend_xid::text::bigint AS x FROM pg_stat_activity
		WHERE backend_xid IS NOT NULL AND datname IS NOT NULL AND datname <> current_database()),
	h AS MATERIALIZED (SELECT coalesce(
		(SELECT min(x) FROM s, pg_snapshot_xip(s.snap) AS x
			WHERE (x::text::numeric % 4294967296)::bigint NOT IN (SELECT x FROM elsewhere)),
		(SELECT pg_snapshot_xmax(snap) FROM s)) AS xmin)`

// Feed implements InstitutionStore over record_feed (migration 007): the
// rows of transactions below the feed's horizon (feedHorizon: the lowest
// transaction of the query's snapshot still open in this database), in
// (xid, seq) order. A transaction of this database still open holds back
// every row after it, so a record committed late is never skipped; the
// feed rows are not partitioned, and the records' partitions are reached
// through record_keys (received_at). Several nodes on one database share
// the transaction ids, so the order is the same seen from any node.
//
// Each service is read on its own from the index (service, xid, seq),
// at most limit+1 rows each (LATERAL), and the few merged: the tail of
// the other services is never scanned nor sorted. When no more follow,
// next is (horizon, 0): every row below the horizon was seen, and a row
// written later has a larger xid.
func (s *PGStore) Feed(ctx context.Context, services []string, after Cursor, limit int) ([]FeedRecord, Cursor, bool, error) {
	if after.XID == 0 && after.Seq != 0 {
		return nil, Cursor{}, false, fmt.Errorf("%w: not a cursor of this store", ErrCursor)
	}
	services = slices.Compact(slices.Sorted(slices.Values(services)))
	rows, err := s.staff.Query(ctx, `WITH `+feedHorizon+`
		SELECT h.xmin::text, x.xid::text, x.seq, x.encoded, x.received_at, x.flags, x.code FROM h LEFT JOIN (
			SELECT f.xid, f.seq, r.encoded, r.received_at, r.flags, k.code
			FROM unnest($1::text[]) AS sv(service)
			CROSS JOIN LATERAL (SELECT f.xid, f.seq, f.sam_serial, f.counter FROM record_feed f
				WHERE f.service = sv.service AND (f.xid, f.seq) > ($2::text::xid8, $3::bigint)
				AND f.xid < (SELECT xmin FROM h)
				ORDER BY f.xid, f.seq LIMIT $4) f
			JOIN record_keys k ON k.sam_serial = f.sam_serial AND k.counter = f.counter
			JOIN records r ON r.sam_serial = k.sam_serial AND r.counter = k.counter AND r.received_at = k.received_at
			ORDER BY f.xid, f.seq LIMIT $4) x ON true
		ORDER BY x.xid, x.seq`, services, strconv.FormatUint(after.XID, 10), int64(after.Seq), limit+1)
	if err != nil {
		return nil, Cursor{}, false, fmt.Errorf("backoffice: feed: %w", err)
	}
	defer rows.Close()
	var out []FeedRecord
	var horizon string
	for rows.Next() {
		var xid *string
		var seq *int64
		var enc []byte
		var at *time.Time
		var code *string
		var fr FeedRecord
		if err := rows.Scan(&horizon, &xid, &seq, &enc, &at, &fr.Flags, &code); err != nil {
			return nil, Cursor{}, false, err
		}
		if xid == nil {
			continue // no row: the horizon alone
		}
		x, err := strconv.ParseUint(*xid, 10, 64)
		if err != nil {
			return nil, Cursor{}, false, fmt.Errorf("backoffice: feed: transaction id %q: %w", *xid, err)
		}
		fr.Cursor, fr.ReceivedAt, fr.Code = Cursor{XID: x, Seq: uint64(*seq)}, *at, *code // the code as ingest stored it
		if fr.Rec, err = record.Decode(enc); err != nil {
			return nil, Cursor{}, false, err
		}
		if len(fr.Flags) == 0 {
			fr.Flags = nil
		}
		out = append(out, fr)
	}
	if err := rows.Err(); err != nil {
		return nil, Cursor{}, false, fmt.Errorf("backoffice: feed: %w", err)
	}
	if len(out) > limit {
		return out[:limit], out[limit-1].Cursor, true, nil
	}
	next := after
	if len(out) > 0 {
		next = out[len(out)-1].Cursor
	}
	xmin, err := strconv.ParseUint(horizon, 10, 64)
	if err != nil {
		return nil, Cursor{}, false, fmt.Errorf("backoffice: feed: horizon %q: %w", horizon, err)
	}
	if h := (Cursor{XID: xmin}); next.Less(h) {
		next = h
	}
	return out, next, false, nil
}

// AddInstitution implements InstitutionStore, in one transaction.
func (s *PGStore) AddInstitution(ctx context.Context, in Institution) error {
	if err := CheckInstitution(in); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO institutions (name, services, enabled, webhook_url, webhook_secret, insecure_webhook, delivered)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, in.Name, in.Services, in.Enabled, in.WebhookURL, nonNil(in.WebhookSecret), in.InsecureWebhook, in.Delivered.String()); err != nil {
			return err
		}
		for _, k := range in.Keys {
			if _, err := tx.Exec(ctx, "INSERT INTO institution_keys (hash, institution, created_at, expires_at) VALUES ($1, $2, $3, $4)",
				k.Hash[:], in.Name, k.Created, nullTime(k.Expires)); err != nil {
				return err
			}
		}
		for _, c := range in.Certs {
			if _, err := tx.Exec(ctx, "INSERT INTO institution_certs (fingerprint, institution) VALUES ($1, $2)", c[:], in.Name); err != nil {
				return err
			}
		}
		return nil
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		if pe.TableName == "institution_certs" {
			return fmt.Errorf("%w: %s: the client certificate is registered for another institution", ErrInstitution, in.Name)
		}
		return fmt.Errorf("%w: %s", ErrInstitutionExists, in.Name)
	}
	return err
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Institutions implements InstitutionStore, from one snapshot.
func (s *PGStore) Institutions(ctx context.Context) ([]Institution, error) {
	return s.institutions(ctx, "")
}

// Institution implements InstitutionStore.
func (s *PGStore) Institution(ctx context.Context, name string) (*Institution, error) {
	all, err := s.institutions(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: institution %s", ErrNotFound, name)
	}
	return &all[0], nil
}

// InstitutionByCredential implements InstitutionStore: the key's or the
// certificate's primary key finds the owner.
func (s *PGStore) InstitutionByCredential(ctx context.Context, hash [32]byte, cert bool) (*Institution, error) {
	q := "SELECT institution FROM institution_keys WHERE hash = $1"
	if cert {
		q = "SELECT institution FROM institution_certs WHERE fingerprint = $1"
	}
	var name string
	err := s.staff.QueryRow(ctx, q, hash[:]).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: credential", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("backoffice: institution credential: %w", err)
	}
	return s.Institution(ctx, name)
}

// institutions reads the institution named name, or all ("").
func (s *PGStore) institutions(ctx context.Context, name string) ([]Institution, error) {
	var out []Institution
	err := pgx.BeginTxFunc(ctx, s.staff, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, `SELECT name, services, enabled, webhook_url, webhook_secret, insecure_webhook, delivered,
			pending, failures, next_attempt FROM institutions WHERE $1 = '' OR name = $1 ORDER BY name`, name)
		if err != nil {
			return err
		}
		at := map[string]int{}
		for rows.Next() {
			var in Institution
			var delivered, pending string
			var next *time.Time
			if err := rows.Scan(&in.Name, &in.Services, &in.Enabled, &in.WebhookURL, &in.WebhookSecret, &in.InsecureWebhook, &delivered,
				&pending, &in.Failures, &next); err != nil {
				return err
			}
			if in.Delivered, err = ParseCursor(delivered); err != nil {
				return err
			}
			if in.Pending, err = ParseCursor(pending); err != nil {
				return err
			}
			if next != nil {
				in.NextAttempt = *next
			}
			if len(in.WebhookSecret) == 0 {
				in.WebhookSecret = nil
			}
			at[in.Name] = len(out)
			out = append(out, in)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT institution, hash, created_at, expires_at FROM institution_keys
			WHERE $1 = '' OR institution = $1 ORDER BY created_at, hash`, name)
		if err != nil {
			return err
		}
		for rows.Next() {
			var owner string
			var h []byte
			var k APIKey
			var exp *time.Time
			if err := rows.Scan(&owner, &h, &k.Created, &exp); err != nil {
				return err
			}
			k.Hash = [32]byte(h)
			if exp != nil {
				k.Expires = *exp
			}
			if i, ok := at[owner]; ok {
				out[i].Keys = append(out[i].Keys, k)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, "SELECT institution, fingerprint FROM institution_certs WHERE $1 = '' OR institution = $1 ORDER BY fingerprint", name)
		if err != nil {
			return err
		}
		for rows.Next() {
			var owner string
			var fp []byte
			if err := rows.Scan(&owner, &fp); err != nil {
				return err
			}
			if i, ok := at[owner]; ok {
				out[i].Certs = append(out[i].Certs, [32]byte(fp))
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("backoffice: institutions: %w", err)
	}
	return out, nil
}

// RotateInstitutionKey implements InstitutionStore, in one transaction.
func (s *PGStore) RotateInstitutionKey(ctx context.Context, name string, key APIKey, oldExpires time.Time) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "SELECT 1 FROM institutions WHERE name = $1 FOR UPDATE", name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: institution %s", ErrNotFound, name)
		}
		if _, err := tx.Exec(ctx, `UPDATE institution_keys SET expires_at = $2 WHERE institution = $1
			AND (expires_at IS NULL OR expires_at > $2)`, name, oldExpires); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO institution_keys (hash, institution, created_at, expires_at) VALUES ($1, $2, $3, $4)",
			key.Hash[:], name, key.Created, nullTime(key.Expires))
		return err
	})
}

// SetInstitutionEnabled implements InstitutionStore.
func (s *PGStore) SetInstitutionEnabled(ctx context.Context, name string, enabled bool) error {
	tag, err := s.pool.Exec(ctx, "UPDATE institutions SET enabled = $2 WHERE name = $1", name, enabled)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: institution %s", ErrNotFound, name)
	}
	return nil
}

// deliveryLock is the first key of the delivery leases' advisory locks
// ("KPW"); the second is hashtext of the institution's name.
const deliveryLock = 0x4b5057

// pgLease is a delivery lease: a session advisory lock on a connection
// of its own, outside both pools (it neither takes an ingest connection
// nor is handed back to one). Every node on the database sees the lock;
// it ends with the session. The delivery state changes run on the same
// session: when the session is lost (and the lock with it) they fail
// instead of moving the cursor under another node's lease.
type pgLease struct {
	conn *pgx.Conn
	name string
	once sync.Once
}

// DeliveryLease implements InstitutionStore.
func (s *PGStore) DeliveryLease(ctx context.Context, name string) (DeliveryLease, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("backoffice: delivery lease: %w", err)
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, hashtext($2))", int32(deliveryLock), name).Scan(&got); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("backoffice: delivery lease: %w", err)
	}
	if !got {
		conn.Close(context.Background())
		return nil, ErrLeaseHeld
	}
	return &pgLease{conn: conn, name: name}, nil
}

// Release implements DeliveryLease: closing the session ends the lock.
func (l *pgLease) Release() {
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l.conn.Close(ctx)
	})
}

// casDelivery runs a compare-and-set of the delivery state on the
// lease's session: the lock must still be ours (pg_locks of this
// backend), the cursor at from.
func (l *pgLease) casDelivery(ctx context.Context, set string, from Cursor, args ...any) error {
	args = append([]any{l.name, from.String(), int32(deliveryLock)}, args...)
	tag, err := l.conn.Exec(ctx, `UPDATE institutions SET `+set+` WHERE name = $1 AND delivered = $2
		AND EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
			AND classid = $3::int::oid AND objid = hashtext($1)::oid AND objsubid = 2)`, args...)
	if err != nil {
		return fmt.Errorf("backoffice: delivery state: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrDeliveryMoved
	}
	return nil
}

// SetPending implements DeliveryLease.
func (l *pgLease) SetPending(ctx context.Context, from, to Cursor) error {
	return l.casDelivery(ctx, "pending = $4", from, to.String())
}

// SetDelivered implements DeliveryLease.
func (l *pgLease) SetDelivered(ctx context.Context, from, to Cursor) error {
	return l.casDelivery(ctx, "delivered = $4, pending = '', failures = 0, next_attempt = NULL", from, to.String())
}

// SetBackoff implements DeliveryLease.
func (l *pgLease) SetBackoff(ctx context.Context, failures int, next time.Time) error {
	tag, err := l.conn.Exec(ctx, "UPDATE institutions SET failures = $2, next_attempt = $3 WHERE name = $1", l.name, failures, next)
	if err != nil {
		return fmt.Errorf("backoffice: delivery state: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: institution %s", ErrNotFound, l.name)
	}
	return nil
}
