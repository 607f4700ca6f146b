package backoffice

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

//go:embed migrations/*.sql
var migrations embed.FS

// PGStore keeps the back office in PostgreSQL.
type PGStore struct {
	pool *pgxpool.Pool // ingest and the other writes
	// staff is the staff's pool: verification, terminal status, alarms,
	// reports, the staff pages, sign-in, sessions and the audit log, the
	// institutions' API and the metrics' gauges run on their own
	// connections, so they never queue behind ingest in a storm
	// (PGOptions).
	staff *pgxpool.Pool
	stop  chan struct{} // closed by Close: the partition maintenance ends
	done  chan struct{} // closed when it has ended
	once  sync.Once
}

// PartitionInterval is how often a PGStore makes the monthly record
// partitions of the current and the next month (EnsurePartitions).
const PartitionInterval = 6 * time.Hour

// OpenPostgres connects to dsn, applies the embedded migrations that the
// database has not seen (under an advisory lock, so several back-office
// processes can start together), makes the record partitions of this
// month and the next, and keeps making them every PartitionInterval
// until Close.
//
// The pools are the defaults of PGOptions; OpenPostgresWith sets them.
func OpenPostgres(ctx context.Context, dsn string) (*PGStore, error) {
	return OpenPostgresWith(ctx, dsn, PGOptions{})
}

// PGOptions sizes a PGStore's two connection pools.
type PGOptions struct {
	// Conns is the ingest pool's size (0: the DSN's pool_max_conns, else
	// pgxpool's default, max(4, CPUs)).
	Conns int
	// StaffConns is the staff pool's size (0: DefaultStaffConns):
	// connections only verification and the staff's reads use.
	StaffConns int
}

// DefaultStaffConns is the staff pool's default size.
const DefaultStaffConns = 4

// OpenPostgresWith is OpenPostgres with the pools sized by o.
func OpenPostgresWith(ctx context.Context, dsn string, o PGOptions) (*PGStore, error) {
	if o.Conns < 0 || o.StaffConns < 0 {
		return nil, fmt.Errorf("backoffice: database pools: %d and %d connections: want 0 (the default) or more", o.Conns, o.StaffConns)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("backoffice: database address: %w", err)
	}
	rcfg := cfg.Copy()
	if o.Conns > 0 {
		cfg.MaxConns = int32(o.Conns)
	}
	rcfg.MaxConns = DefaultStaffConns
	if o.StaffConns > 0 {
		rcfg.MaxConns = int32(o.StaffConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("backoffice: database: %w", err)
	}
	read, err := pgxpool.NewWithConfig(ctx, rcfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("backoffice: database: %w", err)
	}
	if err := migrate(ctx, pool, 0); err != nil {
		pool.Close()
		read.Close()
		return nil, err
	}
	s := &PGStore{pool: pool, staff: read, stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.EnsurePartitions(ctx, time.Now()); err != nil {
		pool.Close()
		read.Close()
		return nil, err
	}
	go s.maintain()
	return s, nil
}

// maintain runs EnsurePartitions every PartitionInterval until Close.
func (s *PGStore) maintain() {
	defer close(s.done)
	t := time.NewTicker(PartitionInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := s.EnsurePartitions(ctx, time.Now()); err != nil {
				// the next month's partition was made a month ahead: the
				// next tick tries again
				slog.Default().Error("backoffice: record partitions", "err", err)
			}
			cancel()
		}
	}
}

// EnsurePartitions makes the record partitions of the UTC months holding
// now and a month after now, where missing (docs/backoffice.md,
// "Storage"). Records of those months the DEFAULT partition caught move
// into the new partition. Safe from several processes at once: the
// database function serialises on the migration's advisory lock.
func (s *PGStore) EnsurePartitions(ctx context.Context, now time.Time) error {
	month := time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.pool.Exec(ctx, "SELECT kpe_record_partition($1), kpe_record_partition($2)", month, month.AddDate(0, 1, 0)); err != nil {
		return fmt.Errorf("backoffice: record partitions: %w", err)
	}
	return nil
}

// Close ends the partition maintenance and closes the pool.
func (s *PGStore) Close() error {
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		s.pool.Close()
		s.staff.Close()
	})
	return nil
}

// Pool is the ingest connection pool (for tests and tools).
func (s *PGStore) Pool() *pgxpool.Pool { return s.pool }

const migrationLock = 0x4b5045 // "KPE"

// migrate applies the embedded migrations the database has not seen, up
// to version upTo (0: all).
func migrate(ctx context.Context, pool *pgxpool.Pool, upTo int) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("backoffice: database: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("backoffice: migrate: %w", err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", migrationLock)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("backoffice: migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		v, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(name, "migrations/"), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("backoffice: migration %s: name must start with its number", name)
		}
		if upTo > 0 && v > upTo {
			break
		}
		var done bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", v).Scan(&done); err != nil {
			return fmt.Errorf("backoffice: migrate: %w", err)
		}
		if done {
			continue
		}
		sql, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", v)
			return err
		})
		if err != nil {
			return fmt.Errorf("backoffice: migration %s: %w", name, err)
		}
	}
	return nil
}

// SAMCertificate implements Store.
func (s *PGStore) SAMCertificate(ctx context.Context, serial [8]byte) ([]byte, error) {
	var cert []byte
	err := s.pool.QueryRow(ctx, "SELECT cert FROM sams WHERE serial = $1", serial[:]).Scan(&cert)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return cert, err
}

// PinSAMCertificate implements Store in one transaction: the upsert keeps
// a stored certificate (first write wins; the row lock serialises
// concurrent pins), and a conflict is recorded once by its primary key.
func (s *PGStore) PinSAMCertificate(ctx context.Context, serial [8]byte, der []byte, conflict wire.Alarm) ([]byte, error) {
	var pinned []byte
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO sams (serial, cert) VALUES ($1, $2)
			ON CONFLICT (serial) DO UPDATE SET cert = coalesce(sams.cert, EXCLUDED.cert) RETURNING cert`, serial[:], der).Scan(&pinned); err != nil {
			return err
		}
		if bytes.Equal(pinned, der) {
			return nil
		}
		h := sha256.Sum256(der)
		tag, err := tx.Exec(ctx, "INSERT INTO sam_certificate_conflicts (serial, cert_hash) VALUES ($1, $2) ON CONFLICT DO NOTHING", serial[:], h[:])
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO alarms (kind, terminal_id, sam_serial, detail, at) VALUES ($1, $2, $3, $4, $5)",
			conflict.Kind, conflict.TerminalID, serial[:], conflict.Detail, conflict.At)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("backoffice: store: %w", err)
	}
	return pinned, nil
}

type pgTerminal struct {
	records, breaks int64
	seen            bool
	site            string
	sams            map[string]bool
}

// Ingest implements Store in one transaction: the SAM and terminal rows
// are locked first (in key order), so batches touching the same SAM run
// one after the other; the inserts use ON CONFLICT DO NOTHING RETURNING,
// and a record the database did not take although the checks under the
// lock said it was new fails the batch (the terminal retries).
func (s *PGStore) Ingest(ctx context.Context, entries []Entry, m Meta) ([]wire.Result, error) {
	var out []wire.Result
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, err = s.ingest(ctx, tx, entries, m)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("backoffice: store: %w", err)
	}
	return out, nil
}

func (s *PGStore) ingest(ctx context.Context, tx pgx.Tx, entries []Entry, m Meta) ([]wire.Result, error) {
	out := make([]wire.Result, len(entries))
	var serials [][]byte
	var termIDs []string
	seenSerial, seenTerm := map[[8]byte]bool{}, map[string]bool{}
	for _, e := range entries {
		if !seenSerial[e.Rec.SAMSerial] {
			seenSerial[e.Rec.SAMSerial] = true
			serials = append(serials, e.Rec.SAMSerial[:])
		}
		if !seenTerm[e.Rec.TerminalID] {
			seenTerm[e.Rec.TerminalID] = true
			termIDs = append(termIDs, e.Rec.TerminalID)
		}
	}
	slices.SortFunc(serials, func(a, b []byte) int { return strings.Compare(string(a), string(b)) })
	slices.Sort(termIDs)

	// lock the SAMs and terminals
	ledgers := map[[8]byte]*counters{}
	err := eachCounters(tx.Query(ctx, "SELECT serial, counters FROM sams WHERE serial = ANY($1) ORDER BY serial FOR UPDATE", serials))(
		func(serial []byte, l *counters) { ledgers[[8]byte(serial)] = l })
	if err != nil {
		return nil, err
	}
	for _, sn := range serials {
		if ledgers[[8]byte(sn)] == nil {
			return nil, fmt.Errorf("SAM %x has no row (its certificate was never stored)", sn)
		}
	}
	if _, err := tx.Exec(ctx, "INSERT INTO terminals (terminal_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", termIDs); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM terminals WHERE terminal_id = ANY($1) ORDER BY terminal_id FOR UPDATE", termIDs); err != nil {
		return nil, err
	}
	terms := map[string]*pgTerminal{}
	rows, err := tx.Query(ctx, `SELECT t.terminal_id, t.records, t.chain_breaks, t.site_id,
		coalesce(array_agg(encode(ts.sam_serial, 'hex')) FILTER (WHERE ts.sam_serial IS NOT NULL), '{}')
		FROM terminals t LEFT JOIN terminal_sams ts USING (terminal_id)
		WHERE t.terminal_id = ANY($1) GROUP BY t.terminal_id ORDER BY t.terminal_id`, termIDs)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		t := &pgTerminal{sams: map[string]bool{}}
		var id string
		var sams []string
		if err := rows.Scan(&id, &t.records, &t.breaks, &t.site, &sams); err != nil {
			return nil, err
		}
		for _, sn := range sams {
			t.sams[sn] = true
		}
		terms[id] = t
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}

	// what is stored already, and the predecessors
	var ks [][]byte
	var kc []int64
	var prevs [][]byte
	for _, e := range entries {
		ks = append(ks, e.Rec.SAMSerial[:])
		kc = append(kc, int64(e.Rec.Counter))
		prevs = append(prevs, e.Rec.PrevHash[:])
	}
	type skey struct {
		serial  [8]byte
		counter uint32
	}
	// what holds a SAM serial and counter: its hash, content hash and
	// terminal, and the hashes stored as its aliases
	type held struct {
		hash, content [32]byte
		terminal      string
		aliases       map[[32]byte]bool
	}
	stored := map[skey]*held{}
	rows, err = tx.Query(ctx, `SELECT r.sam_serial, r.counter, r.hash, r.encoded,
		coalesce((SELECT array_agg(a.hash) FROM record_aliases a WHERE a.sam_serial = r.sam_serial AND a.counter = r.counter), '{}')
		FROM unnest($1::bytea[], $2::bigint[]) AS k(s, c)
		JOIN record_keys rk ON rk.sam_serial = k.s AND rk.counter = k.c
		JOIN records r ON r.sam_serial = rk.sam_serial AND r.counter = rk.counter AND r.received_at = rk.received_at`, ks, kc)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var sn, h, enc []byte
		var c int64
		var aliases [][]byte
		if err := rows.Scan(&sn, &c, &h, &enc, &aliases); err != nil {
			return nil, err
		}
		r, err := record.Decode(enc)
		if err != nil {
			return nil, fmt.Errorf("stored record of SAM %x counter %d: %w", sn, c, err)
		}
		hd := &held{hash: [32]byte(h), terminal: r.TerminalID, aliases: map[[32]byte]bool{}}
		if _, hd.content, err = record.HashesOf(enc); err != nil {
			return nil, err
		}
		for _, a := range aliases {
			hd.aliases[[32]byte(a)] = true
		}
		stored[skey{[8]byte(sn), uint32(c)}] = hd
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	prevTerminal := map[[32]byte]string{}
	rows, err = tx.Query(ctx, `SELECT k.hash, r.terminal_id FROM record_keys k JOIN records r USING (sam_serial, counter, received_at) WHERE k.hash = ANY($1)
		UNION ALL SELECT a.hash, r.terminal_id FROM record_aliases a JOIN record_keys k USING (sam_serial, counter)
		JOIN records r ON r.sam_serial = k.sam_serial AND r.counter = k.counter AND r.received_at = k.received_at WHERE a.hash = ANY($1)`, prevs)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var h []byte
		var t string
		if err := rows.Scan(&h, &t); err != nil {
			return nil, err
		}
		prevTerminal[[32]byte(h)] = t
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}

	if err := lockPursesPG(ctx, tx, entries); err != nil { // pgpurse.go
		return nil, err
	}
	// decide, in batch order
	var ins struct {
		serial, hash, id, prev, enc [][]byte
		counter                     []int64
		code, term, site, svc, subj []string
		card, fp                    []int16
		at                          []time.Time
		flags                       []string // comma-joined, split in SQL
	}
	var idx []int
	var alarms []pgAlarm
	// aliases: a version-1 record's other encoding (docs/records.md)
	var al struct {
		hash, serial [][]byte
		code         []string
		counter      []int64
	}
	// hashes newly stored, records or aliases, with their terminal:
	// records of the terminal that waited for them are chain breaks no more
	var found struct {
		hash [][]byte
		term []string
	}
	for i, e := range entries {
		r := e.Rec
		k := skey{r.SAMSerial, r.Counter}
		if hd, ok := stored[k]; ok {
			switch {
			case hd.hash == e.Hash || hd.aliases[e.Hash]:
				out[i] = wire.Result{Status: wire.Duplicate, Code: e.Code}
			case hd.content == e.Content:
				out[i] = wire.Result{Status: wire.Duplicate, Code: e.Code}
				hd.aliases[e.Hash] = true
				al.hash = append(al.hash, e.Hash[:])
				al.code = append(al.code, e.Code)
				al.serial = append(al.serial, r.SAMSerial[:])
				al.counter = append(al.counter, int64(r.Counter))
				found.hash = append(found.hash, e.Hash[:])
				found.term = append(found.term, hd.terminal)
				prevTerminal[e.Hash] = hd.terminal
			default:
				out[i] = wire.Result{Status: wire.Rejected, Reason: wire.ReasonConflict}
				alarms = append(alarms, pgAlarm{conflictAlarm(r, m.Now), e.Content[:]})
			}
			continue
		}
		stored[k] = &held{hash: e.Hash, content: e.Content, terminal: r.TerminalID, aliases: map[[32]byte]bool{}}
		t := terms[r.TerminalID]
		pt, ok := prevTerminal[r.PrevHash]
		flags, broken, raised := linkage(r, ledgers[r.SAMSerial], ok && pt == r.TerminalID, t.records, m.Now, e.Flags)
		if raised != nil {
			alarms = append(alarms, pgAlarm{Alarm: *raised})
		}
		if broken {
			t.breaks++
		}
		prevTerminal[e.Hash] = r.TerminalID
		t.records++
		t.seen = true
		t.site = r.SiteID
		t.sams[hex.EncodeToString(r.SAMSerial[:])] = true
		out[i] = wire.Result{Status: wire.Accepted, Code: e.Code, Flags: flags}
		idx = append(idx, i)
		if a := renewalOf(e); a != nil { // pgrenewal.go: applied with the record, atomically
			raised, err := applyRenewalPG(ctx, tx, a, m.Now)
			if err != nil {
				return nil, err
			}
			if raised != nil {
				alarms = append(alarms, *raised)
			}
		}
		row, purseAlarms, err := ledgerPursePG(ctx, tx, e, m.Now) // pgpurse.go: the purse ledger, before the top-ups
		if err != nil {
			return nil, err
		}
		alarms = append(alarms, purseAlarms...)
		if alarms, err = topUpIngestPG(ctx, tx, e, row, m.Now, alarms); err != nil { // pgtopup.go: applied with the record, atomically
			return nil, err
		}
		ins.serial = append(ins.serial, r.SAMSerial[:])
		ins.counter = append(ins.counter, int64(r.Counter))
		ins.hash = append(ins.hash, e.Hash[:])
		ins.code = append(ins.code, e.Code)
		ins.id = append(ins.id, r.ID[:])
		ins.term = append(ins.term, r.TerminalID)
		ins.site = append(ins.site, r.SiteID)
		ins.svc = append(ins.svc, r.Service)
		ins.card = append(ins.card, int16(r.CardType))
		ins.subj = append(ins.subj, r.Subject)
		ins.fp = append(ins.fp, int16(r.Fingerprint.Outcome))
		ins.at = append(ins.at, r.Time)
		ins.prev = append(ins.prev, r.PrevHash[:])
		ins.flags = append(ins.flags, strings.Join(flags, ","))
		ins.enc = append(ins.enc, e.Encoded)
		found.hash = append(found.hash, e.Hash[:])
		found.term = append(found.term, r.TerminalID)
	}

	if len(idx) > 0 {
		// the keys first: record_keys holds the uniqueness the partitioned
		// records table cannot (migration 004)
		rows, err := tx.Query(ctx, `INSERT INTO record_keys (sam_serial, counter, hash, code, received_at)
			SELECT s, c, h, code, $5::timestamptz FROM unnest($1::bytea[], $2::bigint[], $3::bytea[], $4::text[]) AS u(s, c, h, code)
			ON CONFLICT DO NOTHING
			RETURNING sam_serial, counter`, ins.serial, ins.counter, ins.hash, ins.code, m.Now)
		if err != nil {
			return nil, err
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if n != len(idx) {
			return nil, fmt.Errorf("%d of %d new records were not inserted (a unique constraint other than SAM and counter: an authentication-code collision)", len(idx)-n, len(idx))
		}
		if _, err := tx.Exec(ctx, `INSERT INTO records (sam_serial, counter, hash, code, record_id, terminal_id, site_id, service,
				card_type, subject, fingerprint, rec_time, prev_hash, flags, received_at, encoded)
			SELECT s, c, h, code, id, term, site, svc, card, subj, fp, at, prev,
				CASE WHEN f = '' THEN '{}'::text[] ELSE string_to_array(f, ',') END, $16, enc
			FROM unnest($1::bytea[], $2::bigint[], $3::bytea[], $4::text[], $5::bytea[], $6::text[], $7::text[], $8::text[],
				$9::smallint[], $10::text[], $11::smallint[], $12::timestamptz[], $13::bytea[], $14::text[], $15::bytea[])
				AS u(s, c, h, code, id, term, site, svc, card, subj, fp, at, prev, f, enc)`,
			ins.serial, ins.counter, ins.hash, ins.code, ins.id, ins.term, ins.site, ins.svc,
			ins.card, ins.subj, ins.fp, ins.at, ins.prev, ins.flags, ins.enc, m.Now); err != nil {
			return nil, err
		}
	}
	if len(al.hash) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO record_aliases (hash, code, sam_serial, counter)
			SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::bigint[]) ON CONFLICT DO NOTHING`,
			al.hash, al.code, al.serial, al.counter); err != nil {
			return nil, err
		}
	}
	if len(found.hash) > 0 {
		// records that waited for one of these as their predecessor
		rows, err := tx.Query(ctx, `UPDATE records r SET flags = array_remove(r.flags, 'chain-break')
			FROM unnest($1::bytea[], $2::text[]) AS p(hash, terminal_id)
			WHERE r.prev_hash = p.hash AND r.terminal_id = p.terminal_id
			AND 'chain-break' = ANY(r.flags) RETURNING r.terminal_id`, found.hash, found.term)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return nil, err
			}
			// the predecessor (or the record an alias names) is of
			// this batch's terminals, so the terminal is locked and in
			// terms
			terms[id].breaks--
			terms[id].seen = true
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}

	b := &pgx.Batch{}
	for serial, l := range ledgers {
		raw, err := json.Marshal(l)
		if err != nil {
			return nil, err
		}
		b.Queue("UPDATE sams SET counters = $2 WHERE serial = $1", serial[:], raw)
	}
	for id, t := range terms {
		if !t.seen {
			continue
		}
		b.Queue(`UPDATE terminals SET records = $2, chain_breaks = $3, site_id = $4, last_seen = $5, skew_ms = $6 WHERE terminal_id = $1`,
			id, t.records, t.breaks, t.site, m.Now, m.SkewMillis)
		for sn := range t.sams {
			serial, _ := hex.DecodeString(sn)
			b.Queue("INSERT INTO terminal_sams (terminal_id, sam_serial) VALUES ($1, $2) ON CONFLICT DO NOTHING", id, serial)
		}
	}
	for _, a := range alarms {
		serial, _ := hex.DecodeString(a.SAMSerial)
		// a counter conflict's alarm carries the content hash: the unique
		// index alarms_once keeps one per SAM serial, counter and content
		b.Queue(`INSERT INTO alarms (kind, terminal_id, sam_serial, counter, detail, at, content) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (kind, sam_serial, counter, content) WHERE content IS NOT NULL DO NOTHING`,
			a.Kind, a.TerminalID, serial, int64(a.Counter), a.Detail, a.At, a.once)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// pgAlarm is an alarm on its way into the table; once, when set, is the
// conflicting record's content hash.
type pgAlarm struct {
	wire.Alarm
	once []byte
}

// eachCounters reads rows of (SAM serial, counters JSON) from a query and
// hands each to f.
func eachCounters(rows pgx.Rows, err error) func(f func(serial []byte, l *counters)) error {
	return func(f func([]byte, *counters)) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var serial, raw []byte
			if err := rows.Scan(&serial, &raw); err != nil {
				return err
			}
			l := &counters{}
			if err := json.Unmarshal(raw, l); err != nil {
				return fmt.Errorf("damaged counters of SAM %x: %w", serial, err)
			}
			f(serial, l)
		}
		return rows.Err()
	}
}

// ByCode implements Store.
func (s *PGStore) ByCode(ctx context.Context, code string) (*Stored, error) {
	var enc []byte
	st := &Stored{}
	err := s.staff.QueryRow(ctx, `SELECT r.encoded, r.received_at, r.flags FROM record_keys k JOIN records r USING (sam_serial, counter, received_at) WHERE k.code = $1
		UNION ALL SELECT r.encoded, r.received_at, r.flags FROM record_aliases a JOIN record_keys k USING (sam_serial, counter)
		JOIN records r ON r.sam_serial = k.sam_serial AND r.counter = k.counter AND r.received_at = k.received_at WHERE a.code = $1
		LIMIT 1`, code).Scan(&enc, &st.ReceivedAt, &st.Flags)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if st.Rec, err = record.Decode(enc); err != nil {
		return nil, err
	}
	if len(st.Flags) == 0 {
		st.Flags = nil
	}
	return st, nil
}

// Terminal implements Store.
func (s *PGStore) Terminal(ctx context.Context, id string) (*wire.TerminalStatus, error) {
	out := &wire.TerminalStatus{TerminalID: id}
	var seen *time.Time
	err := s.staff.QueryRow(ctx, "SELECT site_id, records, chain_breaks, last_seen, skew_ms FROM terminals WHERE terminal_id = $1", id).
		Scan(&out.SiteID, &out.Records, &out.ChainBreaks, &seen, &out.ClockSkewMillis)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if seen != nil {
		out.LastSeen = seen.UTC()
	}
	err = eachCounters(s.staff.Query(ctx, `SELECT s.serial, s.counters FROM sams s JOIN terminal_sams ts ON ts.sam_serial = s.serial
		WHERE ts.terminal_id = $1 ORDER BY s.serial`, id))(func(serial []byte, l *counters) {
		out.SAMs = append(out.SAMs, wire.SAMInfo{Serial: hex.EncodeToString(serial), LastCounter: l.Max, Gaps: l.Gaps})
	})
	if err != nil {
		return nil, err
	}
	out.Alarms, err = s.alarms(ctx, "WHERE a.terminal_id = $1 ORDER BY a.id", id)
	return out, err
}

// Usage implements Store, grouped in SQL.
func (s *PGStore) Usage(ctx context.Context, from, to time.Time) ([]UsageRow, error) {
	rows, err := s.staff.Query(ctx, `SELECT site_id, terminal_id, service, subject, fingerprint, count(*) FROM records
		WHERE card_type = $1 AND rec_time >= $2 AND rec_time < $3 GROUP BY 1, 2, 3, 4, 5`, int16(record.CardKTPel), from, to)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (UsageRow, error) {
		var u UsageRow
		var fp int16
		err := row.Scan(&u.Site, &u.Terminal, &u.Service, &u.Subject, &fp, &u.Count)
		u.Fingerprint = record.Outcome(fp)
		return u, err
	})
}

// Alarms implements Store.
func (s *PGStore) Alarms(ctx context.Context, q AlarmQuery) ([]wire.Alarm, error) {
	if q.State == "" {
		return s.alarms(ctx, "ORDER BY a.id DESC LIMIT $1", q.Limit)
	}
	return s.alarms(ctx, "WHERE a.state = $2 ORDER BY a.id DESC LIMIT $1", q.Limit, string(q.State))
}

// alarmColumns are the columns alarms and Alarm read: the alarm and its
// last acknowledgement.
const alarmColumns = `SELECT a.id, a.state, a.kind, a.terminal_id, a.sam_serial, a.counter, a.detail, a.at, e.actor, e.comment, e.at FROM alarms a
	LEFT JOIN LATERAL (SELECT actor, comment, at FROM alarm_events WHERE alarm_id = a.id AND type = 'acknowledged' ORDER BY id DESC LIMIT 1) e ON true `

func (s *PGStore) alarms(ctx context.Context, where string, args ...any) ([]wire.Alarm, error) {
	rows, err := s.staff.Query(ctx, alarmColumns+where, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanAlarm)
}

func scanAlarm(row pgx.CollectableRow) (wire.Alarm, error) {
	var a wire.Alarm
	var serial []byte
	var counter *int64
	var by, comment *string
	var ackAt *time.Time
	err := row.Scan(&a.ID, &a.State, &a.Kind, &a.TerminalID, &serial, &counter, &a.Detail, &a.At, &by, &comment, &ackAt)
	a.SAMSerial = hex.EncodeToString(serial)
	if counter != nil {
		a.Counter = uint32(*counter)
	}
	a.At = a.At.UTC()
	if by != nil && comment != nil && ackAt != nil {
		a.Acknowledged = &wire.AlarmEvent{Type: wire.AlarmEventAcknowledged, At: ackAt.UTC(), By: *by, Comment: *comment}
	}
	return a, err
}

// Alarm implements Store, from one snapshot (the alarm's state and its
// events agree).
func (s *PGStore) Alarm(ctx context.Context, id int64) (*wire.Alarm, error) {
	var a wire.Alarm
	err := pgx.BeginTxFunc(ctx, s.staff, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, alarmColumns+"WHERE a.id = $1", id)
		if err != nil {
			return err
		}
		if a, err = pgx.CollectExactlyOneRow(rows, scanAlarm); errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, "SELECT type, at, actor, comment FROM alarm_events WHERE alarm_id = $1 ORDER BY id", id)
		if err != nil {
			return err
		}
		events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (wire.AlarmEvent, error) {
			var ev wire.AlarmEvent
			err := row.Scan(&ev.Type, &ev.At, &ev.By, &ev.Comment)
			ev.At = ev.At.UTC()
			return ev, err
		})
		a.History = append([]wire.AlarmEvent{{Type: wire.AlarmEventRaised, At: a.At}}, events...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// AckAlarm implements Store in one transaction: the conditional update
// takes the row lock, so of two concurrent acknowledgements (on one node
// or two) one changes the state and the other finds it changed.
func (s *PGStore) AckAlarm(ctx context.Context, id int64, ev wire.AlarmEvent) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE alarms SET state = 'acknowledged' WHERE id = $1 AND state = 'open'", id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var exists bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM alarms WHERE id = $1)", id).Scan(&exists); err != nil {
				return err
			}
			if exists {
				return ErrAcknowledged
			}
			return ErrNotFound
		}
		_, err = tx.Exec(ctx, "INSERT INTO alarm_events (alarm_id, type, actor, comment, at) VALUES ($1, 'acknowledged', $2, $3, $4)",
			id, ev.By, ev.Comment, ev.At)
		return err
	})
}
