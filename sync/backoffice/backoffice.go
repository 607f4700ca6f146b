// Package backoffice is the reference back office: it takes batches of
// sealed records from terminals, verifies every record (SAM certificate
// chain, signature, per-SAM counter sequence, per-terminal hash chain),
// stores them idempotently, and answers code verifications, terminal
// status and the semester report (docs/backoffice.md).
//
// Storage is a Store: PostgreSQL (OpenPostgres) for production, an
// embedded bbolt file (OpenBolt) as the zero-setup default.
package backoffice

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"kpe-agent/internal/purse"
	"kpe-agent/sync/issuer"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// Config configures the back office's checks.
type Config struct {
	// CA holds the roots SAM terminal certificates must chain to.
	CA *x509.CertPool
	// AcceptSoftware accepts records signed in software (demos without a
	// SAM). Off by default: production records come from a SAM.
	AcceptSoftware bool
	// SkewTolerance is how far a terminal's clock may be from the back
	// office's before it is told (default 5 minutes).
	SkewTolerance time.Duration
	// Institutions maps a site id to the institution it reports under in
	// the semester report; a site not listed reports under its own id.
	Institutions map[string]string
	// Workers verify signatures in parallel (default GOMAXPROCS).
	Workers int
	Now     func() time.Time
	// CertificateSkew widens a SAM certificate's validity on both sides
	// when a record's signing time is judged against it: the terminal's
	// clock may be that far off (default DefaultCertificateSkew, 24 h).
	CertificateSkew time.Duration
	// PlaintextTerminals takes batches over plain HTTP, without a
	// terminal identity: their records are not bound to a terminal. For
	// lab and test set-ups only; kpe-backoffice never sets it.
	PlaintextTerminals bool
	// Password is the argon2id cost of new staff passwords (zero:
	// DefaultHashParams); a stored hash carries its own.
	Password HashParams
	// HashSlots bounds the sign-ins hashing at once (zero:
	// DefaultHashSlots; see SignIn).
	HashSlots int
	// Log gets what the service notes without failing a request (a
	// verification counter that could not be written). Default: none.
	Log *slog.Logger
	// Issuer signs the security objects and authorisations of card data
	// renewals (docs/renewal.md): a PKCS#11 token in production, a key
	// file in the lab. Nil: renewal offers are answered 503
	// renewal-unavailable.
	Issuer issuer.IssuerSigner
	// IssuerRoots are the BKN issuer CAs a card's EF.SOD must chain to
	// before the back office builds a renewal on it.
	IssuerRoots *x509.CertPool
	// TopUp are the e-wallet top-ups' limits and timing (topup.go); the
	// issuer above signs their authorisations.
	TopUp TopUpConfig
	// PurseKeys are the purse masters card proofs are checked with
	// (docs/ewallet.md). Nil: the ledger says "unchecked", never
	// "verified".
	PurseKeys *purse.Keys
}

// Service is the back office over a Store.
type Service struct {
	store Store
	cfg   Config

	mu      sync.Mutex
	keys    map[[8]byte]*samKey // SAM serial → its pinned certificate, checked
	settled map[[32]byte]bool   // SAM certificates (SHA-256) pinned or reported as conflicting
	revs    atomic.Pointer[RevocationList]

	metrics *serviceMetrics // metrics.go

	hashSlots chan struct{} // SignIn's argon2id hashes at once (signin.go)
}

// New makes a Service. The store stays the caller's to close.
func New(store Store, cfg Config) (*Service, error) {
	if cfg.CA == nil {
		return nil, errors.New("backoffice: no CA for SAM certificates configured")
	}
	if cfg.SkewTolerance <= 0 {
		cfg.SkewTolerance = 5 * time.Minute
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.CertificateSkew <= 0 {
		cfg.CertificateSkew = DefaultCertificateSkew
	}
	if cfg.HashSlots <= 0 {
		cfg.HashSlots = DefaultHashSlots
	}
	s := &Service{store: store, cfg: cfg, keys: map[[8]byte]*samKey{}, settled: map[[32]byte]bool{},
		hashSlots: make(chan struct{}, cfg.HashSlots)}
	s.metrics = newServiceMetrics(s)
	return s, nil
}

// Errors.
var (
	// ErrNotFound: no such record or terminal.
	ErrNotFound = errors.New("backoffice: not found")
	// ErrCertificate: a SAM certificate that breaks a rule of
	// SAMCertificate (chain, key usage, CA flag, extended key usage,
	// subject naming the serial, key type).
	ErrCertificate = errors.New("backoffice: SAM certificate not acceptable")
	// ErrBatch: a batch beyond the limits.
	ErrBatch = errors.New("backoffice: batch not acceptable")
)

// ingest is Ingest without the metrics; it returns the decoded entries
// too, index for index with the results (nil Rec: not stored).
func (s *Service) ingest(ctx context.Context, b *wire.Batch, peer Identity) (*wire.BatchResult, []Entry, error) {
	if len(b.Records) > wire.MaxBatchRecords {
		return nil, nil, fmt.Errorf("%w: %d records, at most %d", ErrBatch, len(b.Records), wire.MaxBatchRecords)
	}
	now := s.cfg.Now()
	out := &wire.BatchResult{Results: make([]wire.Result, len(b.Records)), ServerTime: now.UTC()}
	if !b.SentAt.IsZero() {
		skew := now.Sub(b.SentAt)
		out.ClockSkewMillis = skew.Milliseconds()
		out.ClockSkewed = skew > s.cfg.SkewTolerance || -skew > s.cfg.SkewTolerance
	}
	for _, der := range b.Certificates {
		if err := s.offer(ctx, der, peer, now); err != nil {
			return nil, nil, err
		}
	}

	// decode
	entries := make([]Entry, len(b.Records))
	for i, enc := range b.Records {
		r, err := record.Decode(enc)
		if errors.Is(err, record.ErrHighS) {
			out.Results[i] = wire.Result{Status: wire.Rejected, Reason: wire.ReasonNonCanonical}
			continue
		}
		if err != nil {
			out.Results[i] = wire.Result{Status: wire.Rejected, Reason: wire.ReasonMalformed + ": " + err.Error()}
			continue
		}
		entries[i] = Entry{Rec: r, Encoded: enc}
	}
	// keys, policy, binding
	sams := map[[8]byte]*samKey{}
	keys := map[[8]byte]*ecdsa.PublicKey{}
	for i := range entries {
		e := &entries[i]
		if e.Rec == nil {
			continue
		}
		if e.Rec.Signer == record.SignerSoftware && !s.cfg.AcceptSoftware {
			out.Results[i] = wire.Result{Status: wire.Rejected, Reason: wire.ReasonSoftwareSigner}
			e.Rec = nil
			continue
		}
		k, seen := sams[e.Rec.SAMSerial]
		if !seen {
			pinned, err := s.key(ctx, e.Rec.SAMSerial)
			if err != nil {
				return nil, nil, err
			}
			if pinned != nil {
				// this batch's view: the pinned certificate and its
				// revocation under the list in force now
				v := *pinned
				v.revokedAt, v.revoked = s.revocation(pinned)
				k = &v
				keys[e.Rec.SAMSerial] = k.pub
			}
			sams[e.Rec.SAMSerial] = k
		}
		if reason := bindRecord(peer, e.Rec, k, s.cfg.CertificateSkew); reason != "" {
			out.Results[i] = wire.Result{Status: wire.Rejected, Reason: reason}
			e.Rec = nil
		}
	}
	// signatures, in parallel
	s.verifyAll(entries, keys, out.Results)

	var keep []Entry
	var at []int
	for i, e := range entries {
		if e.Rec == nil {
			continue
		}
		if e.Rec.Time.After(now.Add(s.cfg.SkewTolerance)) {
			e.Flags = append(e.Flags, wire.FlagClockSkewed)
		}
		e.PurseProof = CheckPurseProof(s.cfg.PurseKeys, e.Rec) // purseledger.go
		keep = append(keep, e)
		at = append(at, i)
	}
	if len(keep) > 0 {
		res, err := s.store.Ingest(ctx, keep, Meta{Now: now, SkewMillis: out.ClockSkewMillis})
		if err != nil {
			return nil, nil, err
		}
		for j, r := range res {
			out.Results[at[j]] = r
		}
	}
	if err := s.noteUpload(ctx, b, peer, entries, out.Results, now); err != nil {
		return nil, nil, err
	}
	return out, entries, nil
}

// verifyAll checks each entry's signature, in parallel; a failure clears
// the entry and sets its result.
func (s *Service) verifyAll(entries []Entry, keys map[[8]byte]*ecdsa.PublicKey, results []wire.Result) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < s.cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				e := &entries[i]
				if err := e.Rec.Verify(keys[e.Rec.SAMSerial]); err != nil {
					results[i] = wire.Result{Status: wire.Rejected, Reason: wire.ReasonSignature}
					e.Rec = nil
					continue
				}
				// the record's own rule (record.Hash): the code the
				// terminal printed, and the hash its successor names;
				// from the bytes Decode accepted, not encoded again
				h, content, err := record.HashesOf(e.Encoded)
				e.Content = content
				if err != nil { // Decode accepted it: cannot happen
					results[i] = wire.Result{Status: wire.Rejected, Reason: wire.ReasonMalformed + ": " + err.Error()}
					e.Rec = nil
					continue
				}
				e.Hash = h
				e.Code = record.CodeOf(h).String()
			}
		}()
	}
	for i := range entries {
		if entries[i].Rec != nil {
			next <- i
		}
	}
	close(next)
	wg.Wait()
}

// verify is Verify without the metrics.
func (s *Service) verify(ctx context.Context, typed string) (*wire.Verdict, error) {
	code, err := record.ParseCode(typed)
	if err != nil {
		reason := "check-symbol"
		switch {
		case errors.Is(err, record.ErrCodeLength):
			reason = "length"
		case errors.Is(err, record.ErrCodeSymbol):
			reason = "symbol"
		}
		return &wire.Verdict{Valid: false, Code: strings.TrimSpace(typed), Reason: reason}, nil
	}
	st, err := s.store.ByCode(ctx, code.String())
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	// the dashboard's counter: a verification does not fail because
	// its count could not be written
	if err := s.countVerification(ctx, st != nil); err != nil && ctx.Err() == nil {
		s.cfg.Log.Warn("verification counter not written", "err", err)
	}
	if st == nil {
		return &wire.Verdict{Valid: false, Code: code.String(), Reason: "unknown"}, nil
	}
	return verdictOf(code.String(), st), nil
}

// verdictOf is what a verification shows of a stored record found by
// code: the staff page's and the institutions' answer (no more).
func verdictOf(code string, st *Stored) *wire.Verdict {
	r := st.Rec
	return &wire.Verdict{
		Valid: true, Code: code, Service: r.Service, Time: r.Time.UTC(), Clock: r.Clock.String(),
		TerminalID: r.TerminalID, SiteID: r.SiteID, CardType: r.CardType.String(),
		Checks: wire.Checks{CardAuth: checkText(r.CardAuth), IssuerSig: checkText(r.IssuerSig),
			Identifiers: checkText(r.Identifiers), Fingerprint: checkText(r.Fingerprint)},
		Signer: r.Signer.String(), SAMSerial: hex.EncodeToString(r.SAMSerial[:]), Counter: r.Counter,
		ReceivedAt: st.ReceivedAt.UTC(), Flags: st.Flags,
	}
}

func checkText(c record.Check) string {
	if c.Reason == "" {
		return c.Outcome.String()
	}
	return c.Outcome.String() + ": " + c.Reason
}

// Terminal returns a terminal's status.
func (s *Service) Terminal(ctx context.Context, id string) (*wire.TerminalStatus, error) {
	return s.store.Terminal(ctx, id)
}

// Store is where the back office keeps records. Ingest must be atomic per
// call and serialise calls that touch the same SAM.
type Store interface {
	// SAMCertificate returns the stored certificate of a SAM, nil when
	// the SAM is unknown.
	SAMCertificate(ctx context.Context, serial [8]byte) ([]byte, error)
	// PinSAMCertificate stores der as the SAM's certificate unless one is
	// stored already (first write wins, atomically), and returns the
	// stored one. When that differs from der, it raises conflict, at
	// most once per serial and certificate (SHA-256 of der).
	PinSAMCertificate(ctx context.Context, serial [8]byte, der []byte, conflict wire.Alarm) ([]byte, error)
	// Ingest stores verified entries and returns one result each:
	// accepted (with flags: gap-before, fills-gap, chain-break,
	// chain-start), duplicate (the same record is stored: the same
	// content hash under its SAM serial and counter), or rejected with
	// counter-conflict (another content holds its SAM serial and counter;
	// an alarm is raised, once per SAM serial, counter and content hash).
	// A duplicate whose Hash differs from the stored one's (a version-1
	// record with another signature: version 1 takes any s) is stored as
	// an alias: its code and hash then find the stored record too.
	Ingest(ctx context.Context, entries []Entry, m Meta) ([]wire.Result, error)
	// ByCode finds a record by its authentication code (ErrNotFound).
	ByCode(ctx context.Context, code string) (*Stored, error)
	// Terminal is a terminal's status (ErrNotFound).
	Terminal(ctx context.Context, id string) (*wire.TerminalStatus, error)
	// Usage lists KTP-el records with time in [from, to), grouped.
	Usage(ctx context.Context, from, to time.Time) ([]UsageRow, error)
	// Alarms lists the alarms in q.State ("": all), newest first, at most
	// q.Limit, each with its id, state and last acknowledgement, without
	// history.
	Alarms(ctx context.Context, q AlarmQuery) ([]wire.Alarm, error)
	// Alarm is one alarm with its whole history, oldest event first
	// (ErrNotFound).
	Alarm(ctx context.Context, id int64) (*wire.Alarm, error)
	// AckAlarm acknowledges an open alarm, atomically: ev (its By,
	// Comment and At; the type is set) joins the history and the alarm
	// is acknowledged. ErrNotFound for an unknown id, ErrAcknowledged
	// when it is acknowledged already (by this or a concurrent call).
	AckAlarm(ctx context.Context, id int64, ev wire.AlarmEvent) error
	Close() error
}

// Entry is a verified record on its way into the store.
type Entry struct {
	Rec     *record.Record
	Encoded []byte
	Hash    [32]byte // record.Hash: the chain hash, and the code's source
	Content [32]byte // record.ContentHash: the same for every encoding of the record
	Code    string
	Flags   []string // flags found before storage (clock)
	// PurseProof is the card proof's status of a purse record
	// (CheckPurseProof; purseledger.go); "" is unchecked.
	PurseProof ProofStatus
}

// Meta is what a store needs to know about the batch.
type Meta struct {
	Now        time.Time
	SkewMillis int64
}

// Stored is a stored record.
type Stored struct {
	Rec        *record.Record
	ReceivedAt time.Time
	Flags      []string
}

// UsageRow counts KTP-el records of one site, terminal, service, subject
// and fingerprint outcome.
type UsageRow struct {
	Site, Terminal, Service string
	Subject                 string
	Fingerprint             record.Outcome
	Count                   int64
}
