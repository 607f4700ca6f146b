package backoffice

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// The institutions' interface (docs/institutions.md): the back-office
// systems of ASKES, Taspen, Bapertarum … verify codes and page through the
// records of their own services over /institution/v1/, and receive them
// by signed webhook (webhook.go).

// PathInstitution is the prefix of the institutions' API, version 1.
const PathInstitution = "/institution/v1/"

// Institution is an institution's registration.
type Institution struct {
	Name string
	// Services are the record services (Record.Service) it may see.
	Services []string
	Enabled  bool
	// Keys are its API keys, as SHA-256 hashes.
	Keys []APIKey
	// Certs are its client certificates, SHA-256 of the DER.
	Certs [][32]byte
	// WebhookURL, when set, receives its records (webhook.go), signed
	// with WebhookSecret.
	WebhookURL    string
	WebhookSecret []byte
	// InsecureWebhook allows an http:// WebhookURL (a lab); without it
	// the URL must be https.
	InsecureWebhook bool
	// Delivered is the webhook's delivery cursor: the records up to it
	// were acknowledged.
	Delivered Cursor
	// Pending, when not zero, is the end of the event in flight: the
	// records in (Delivered, Pending] were posted and not acknowledged.
	// A retry sends exactly them again, with the same event id.
	Pending Cursor
	// Failures counts the failed deliveries in a row; no delivery is
	// tried before NextAttempt. Shared by every node (webhook.go).
	Failures    int
	NextAttempt time.Time
}

// APIKey is a stored API key: its SHA-256 hash, and when a rotated key
// stops working (zero: it works until rotated).
type APIKey struct {
	Hash    [32]byte
	Created time.Time
	Expires time.Time
}

// Institution errors.
var (
	// ErrInstitution: a registration that breaks a rule (name, services,
	// webhook URL).
	ErrInstitution = errors.New("backoffice: institution not acceptable")
	// ErrInstitutionExists: the name is registered already.
	ErrInstitutionExists = errors.New("backoffice: institution exists")
	// ErrCursor: a cursor that is not one this back office gave out.
	ErrCursor = errors.New("backoffice: bad cursor")
	// ErrDeliveryMoved: the delivery cursor is not where the caller
	// read it (another dispatcher advanced it).
	ErrDeliveryMoved = errors.New("backoffice: delivery cursor moved")
	// ErrLeaseHeld: another dispatcher delivers to this institution now.
	ErrLeaseHeld = errors.New("backoffice: delivery lease held elsewhere")
	// ErrNoInstitutions: the store does not keep institutions.
	ErrNoInstitutions = errors.New("backoffice: the store does not keep institutions")
)

// InstitutionStore keeps the institutions and the record feed. The
// PostgreSQL and bbolt stores implement it.
type InstitutionStore interface {
	// AddInstitution registers in (ErrInstitutionExists).
	AddInstitution(ctx context.Context, in Institution) error
	// Institutions lists every institution with its keys and
	// certificates, by name.
	Institutions(ctx context.Context) ([]Institution, error)
	// Institution is one institution (ErrNotFound).
	Institution(ctx context.Context, name string) (*Institution, error)
	// InstitutionByCredential is the institution with the API key of
	// SHA-256 hash (cert false), or the client certificate of SHA-256
	// fingerprint hash (cert true), looked up by it: ErrNotFound when
	// none has it (whether enabled or the key live is the caller's to
	// check).
	InstitutionByCredential(ctx context.Context, hash [32]byte, cert bool) (*Institution, error)
	// RotateInstitutionKey adds key; the keys that work until rotated
	// or beyond oldExpires now stop at oldExpires (ErrNotFound).
	RotateInstitutionKey(ctx context.Context, name string, key APIKey, oldExpires time.Time) error
	// SetInstitutionEnabled enables or disables an institution
	// (ErrNotFound).
	SetInstitutionEnabled(ctx context.Context, name string, enabled bool) error
	// Feed returns up to limit records of services committed after the
	// cursor, in commit order, the cursor to go on from, and whether
	// more follow. Every record appears once in the feed, and a record
	// never appears before one the feed already passed (exactly-once
	// paging). When no more follow, next is the scan's horizon (not
	// before the last record): the feed up to it was read, matching or
	// not, so a caught-up reader does not scan the other services'
	// records again.
	Feed(ctx context.Context, services []string, after Cursor, limit int) (recs []FeedRecord, next Cursor, more bool, err error)
	// DeliveryLease takes the institution's delivery lease, for every
	// process on the store (ErrLeaseHeld). The delivery state changes
	// only through it.
	DeliveryLease(ctx context.Context, name string) (DeliveryLease, error)
}

// DeliveryLease is a held delivery lease on one institution: the
// changes of its delivery state, each a compare-and-set on the cursor.
// On PostgreSQL they run on the lease's own session, so a lease whose
// session was lost changes nothing.
type DeliveryLease interface {
	// SetPending records the event in flight, (from, to], before it is
	// first posted (ErrDeliveryMoved when the cursor is not at from).
	SetPending(ctx context.Context, from, to Cursor) error
	// SetDelivered moves the delivery cursor from from to to, and
	// clears the event in flight and the failures (ErrDeliveryMoved).
	SetDelivered(ctx context.Context, from, to Cursor) error
	// SetBackoff stores the failures in a row and the next attempt.
	SetBackoff(ctx context.Context, failures int, next time.Time) error
	// Release gives the lease back.
	Release()
}

// FeedRecord is a record in the feed, and the cursor just after it.
type FeedRecord struct {
	Stored
	Code   string
	Cursor Cursor
}

// Cursor is a position in the record feed. On PostgreSQL it is the
// writing transaction's id and the feed row's sequence number; on bbolt
// the sequence number alone (XID 0). The zero Cursor is the start.
type Cursor struct{ XID, Seq uint64 }

const cursorVersion = 1

// String is the cursor as clients see it: opaque, URL-safe; "" for the
// start.
func (c Cursor) String() string {
	if c == (Cursor{}) {
		return ""
	}
	b := []byte{cursorVersion}
	b = binary.BigEndian.AppendUint64(b, c.XID)
	b = binary.BigEndian.AppendUint64(b, c.Seq)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Less orders cursors as the feed does.
func (c Cursor) Less(d Cursor) bool { return c.XID < d.XID || c.XID == d.XID && c.Seq < d.Seq }

// ParseCursor reads a cursor String gave; "" is the start. Anything else
// is ErrCursor.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	// the decoder skips CR and LF anywhere: a cursor has one spelling
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || strings.ContainsAny(s, "\r\n") || len(b) != 17 || b[0] != cursorVersion {
		return Cursor{}, fmt.Errorf("%w: %q", ErrCursor, s)
	}
	c := Cursor{XID: binary.BigEndian.Uint64(b[1:]), Seq: binary.BigEndian.Uint64(b[9:])}
	if c == (Cursor{}) || c.XID > math.MaxInt64 || c.Seq > math.MaxInt64 {
		return Cursor{}, fmt.Errorf("%w: %q", ErrCursor, s)
	}
	return c, nil
}

var institutionName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// CheckInstitution checks a registration's name, services and webhook.
func CheckInstitution(in Institution) error {
	if !institutionName.MatchString(in.Name) {
		return fmt.Errorf("%w: name %q: lower-case letters, digits, - and _, at most 63", ErrInstitution, in.Name)
	}
	if len(in.Services) == 0 {
		return fmt.Errorf("%w: %s: no service", ErrInstitution, in.Name)
	}
	for _, s := range in.Services {
		if strings.TrimSpace(s) == "" || s != strings.TrimSpace(s) {
			return fmt.Errorf("%w: %s: service %q", ErrInstitution, in.Name, s)
		}
	}
	if err := checkBankScope(in); err != nil { // institution_bank.go
		return err
	}
	if in.WebhookURL != "" {
		if err := checkWebhookURL(in.WebhookURL, in.InsecureWebhook); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInstitution, in.Name, err)
		}
		if len(in.WebhookSecret) < 16 {
			return fmt.Errorf("%w: %s: webhook secret shorter than 16 bytes", ErrInstitution, in.Name)
		}
	}
	return nil
}

// apiKeyPrefix starts every API key, so a leaked key is recognisable.
const apiKeyPrefix = "kpei_"

// NewAPIKey makes an API key (256 random bits) and its stored form.
func NewAPIKey(now time.Time) (string, APIKey) {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	key := apiKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	return key, APIKey{Hash: sha256.Sum256([]byte(key)), Created: now.UTC()}
}

// NewWebhookSecret makes a webhook secret: 32 random bytes, as the text
// the institution configures (its bytes are the HMAC key).
func NewWebhookSecret() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return []byte("kpew_" + base64.RawURLEncoding.EncodeToString(b))
}

// InstitutionConfig configures InstitutionHandler.
type InstitutionConfig struct {
	Log *slog.Logger
	// Rate limits each institution's requests (default
	// DefaultInstitutionRate).
	Rate Limit
	// ClientRate limits the requests of each client address before
	// they are authenticated, so bad credentials cost little (default
	// DefaultInstitutionClientRate).
	ClientRate Limit
	Now        func() time.Time
}

// DefaultInstitutionRate: 50 requests a second, 200 at once, per
// institution.
var DefaultInstitutionRate = Limit{Rate: 50, Burst: 200}

// DefaultInstitutionClientRate: 100 requests a second, 400 at once, per
// client address (IPv6: per /64), authenticated or not.
var DefaultInstitutionClientRate = Limit{Rate: 100, Burst: 400}

// Paging limits of GET /institution/v1/records.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// RecordPage is the answer of GET /institution/v1/records.
type RecordPage struct {
	Records    []*wire.Verdict `json:"records"`
	NextCursor string          `json:"next_cursor"`
	HasMore    bool            `json:"has_more"`
}

type institutionAPI struct {
	s     *Service
	store InstitutionStore
	cfg   InstitutionConfig
	mu    sync.Mutex
	lims  map[string]*rate.Limiter
	// clients limits each address before authentication
	clients *verifyLimiter
}

// InstitutionHandler serves the institutions' API under PathInstitution.
// Mount it on a TLS server; client certificates, when used, must be
// verified by the server (tls.VerifyClientCertIfGiven with the
// institutions' CA). The store must be an InstitutionStore.
func (s *Service) InstitutionHandler(cfg InstitutionConfig) (http.Handler, error) {
	is, ok := s.store.(InstitutionStore)
	if !ok {
		return nil, ErrNoInstitutions
	}
	if cfg.Rate.Rate <= 0 || cfg.Rate.Burst <= 0 {
		cfg.Rate = DefaultInstitutionRate
	}
	if cfg.ClientRate.Rate <= 0 || cfg.ClientRate.Burst <= 0 {
		cfg.ClientRate = DefaultInstitutionClientRate
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	a := &institutionAPI{s: s, store: is, cfg: cfg, lims: map[string]*rate.Limiter{},
		clients: newVerifyLimiter(cfg.ClientRate, Limit{Rate: math.Inf(1), Burst: 1}, 10000, cfg.Log.With("api", "institutions"))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathInstitution+"verify/{code}", a.guard(a.scoped(false, a.verify)))
	mux.HandleFunc("GET "+PathInstitution+"records", a.guard(a.scoped(false, a.records)))
	mux.HandleFunc("GET "+PathInstitution+"settlement/{date}", a.guard(a.scoped(true, a.settlement))) // institution_bank.go
	mux.HandleFunc(PathInstitution, a.guard(func(w http.ResponseWriter, _ *http.Request, _ *Institution) {
		problem(w, http.StatusNotFound, "not-found", "no such resource in the institutions' API, version 1")
	}))
	return mux, nil
}

// guard authenticates the institution and applies its rate limit.
func (a *institutionAPI) guard(h func(http.ResponseWriter, *http.Request, *Institution)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// per address first: a flood of bad credentials is refused
		// before it costs a lookup
		if wait, ok := a.clients.allow(r.RemoteAddr, a.cfg.Now()); !ok {
			setRetryAfter(w, wait)
			problem(w, http.StatusTooManyRequests, "rate-limited", "too many requests from this address; try again later")
			return
		}
		in, err := a.authenticate(r)
		if err != nil {
			a.s.internal(w, a.cfg.Log, err)
			return
		}
		if in == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kpe-institution"`)
			problem(w, http.StatusUnauthorized, "unauthenticated", "an enabled institution's API key (Authorization: Bearer) or registered client certificate is required")
			return
		}
		if wait, ok := a.allow(in.Name); !ok {
			setRetryAfter(w, wait)
			problem(w, http.StatusTooManyRequests, "rate-limited", "too many requests for this institution; try again later")
			return
		}
		h(w, r, in)
	}
}

// authenticate finds the enabled institution the request authenticates
// as: by API key when an Authorization header is present, else by a
// verified client certificate's fingerprint; looked up by the hash (one
// indexed query for a credential nobody has), the key's hash then
// compared in constant time and its expiry checked. nil: none.
func (a *institutionAPI) authenticate(r *http.Request) (*Institution, error) {
	var want [32]byte
	var byKey bool
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, key, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
			return nil, nil
		}
		want, byKey = sha256.Sum256([]byte(key)), true
	} else if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
		want = sha256.Sum256(r.TLS.PeerCertificates[0].Raw)
	} else {
		return nil, nil
	}
	in, err := a.store.InstitutionByCredential(r.Context(), want, !byKey)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := a.cfg.Now()
	match := 0
	if byKey {
		for _, k := range in.Keys {
			live := k.Expires.IsZero() || now.Before(k.Expires)
			if subtle.ConstantTimeCompare(k.Hash[:], want[:]) == 1 && live {
				match = 1
			}
		}
	} else {
		for _, c := range in.Certs {
			match |= subtle.ConstantTimeCompare(c[:], want[:])
		}
	}
	if match != 1 || !in.Enabled {
		return nil, nil
	}
	return in, nil
}

func (a *institutionAPI) allow(name string) (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.lims[name]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(a.cfg.Rate.Rate), a.cfg.Rate.Burst)
		a.lims[name] = l
	}
	now := a.cfg.Now()
	res := l.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}

// AuditInstitutionRecords is the audit action of a page of records an
// institution read (its verifications are AuditVerify).
const AuditInstitutionRecords = "records"

// auditActor is the audit log's actor of an institution's request.
func auditActor(in *Institution) *Principal { return &Principal{Account: "institution:" + in.Name} }

// verify answers GET verify/{code}: 200 with the verdict for a record of
// the institution's services; a record of another service answers
// exactly as an unknown code (404); a malformed code 400. Every
// verification is in the audit log (actor institution:NAME); when it
// cannot be written the request fails (503), as the staff's do.
func (a *institutionAPI) verify(w http.ResponseWriter, r *http.Request, in *Institution) {
	v, err := a.s.Verify(r.Context(), r.PathValue("code"))
	if err != nil {
		a.s.internal(w, a.cfg.Log, err)
		return
	}
	status, answer, outcome, detail := http.StatusOK, v, "valid", v.Service
	switch {
	case v.Valid && slices.Contains(in.Services, v.Service):
	case v.Valid || v.Reason == "unknown":
		status, answer, outcome = http.StatusNotFound, &wire.Verdict{Valid: false, Code: v.Code, Reason: "unknown"}, "invalid: unknown"
		if v.Valid {
			outcome = "not-visible" // another service's record: answered as unknown
		}
	default:
		status, outcome, detail = http.StatusBadRequest, "invalid: "+v.Reason, ""
	}
	if err := a.s.audit(r.Context(), auditActor(in), AuditVerify, v.Code, r.RemoteAddr, outcome, detail); err != nil {
		a.s.internal(w, a.cfg.Log, err)
		return
	}
	writeJSON(w, status, answer)
}

// records answers GET records?cursor=C&limit=N.
func (a *institutionAPI) records(w http.ResponseWriter, r *http.Request, in *Institution) {
	q := r.URL.Query()
	after, err := ParseCursor(q.Get("cursor"))
	if err != nil {
		problem(w, http.StatusBadRequest, "bad-cursor", "the cursor is not one this API gave out")
		return
	}
	limit := DefaultPageSize
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxPageSize {
			problem(w, http.StatusBadRequest, "bad-limit", fmt.Sprintf("limit: a whole number from 1 to %d", MaxPageSize))
			return
		}
		limit = n
	}
	page, err := feedPage(r.Context(), a.store, in.Services, after, limit)
	if errors.Is(err, ErrCursor) {
		problem(w, http.StatusBadRequest, "bad-cursor", "the cursor is not one this API gave out")
		return
	}
	if err != nil {
		a.s.internal(w, a.cfg.Log, err)
		return
	}
	if err := a.s.audit(r.Context(), auditActor(in), AuditInstitutionRecords, after.String(), r.RemoteAddr, "ok",
		fmt.Sprintf("%d records, next cursor %s", len(page.Records), page.NextCursor)); err != nil {
		a.s.internal(w, a.cfg.Log, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// feedPage is one page of the feed as the API and the webhooks show it.
func feedPage(ctx context.Context, st InstitutionStore, services []string, after Cursor, limit int) (*RecordPage, error) {
	recs, next, more, err := st.Feed(ctx, services, after, limit)
	if err != nil {
		return nil, err
	}
	page := &RecordPage{Records: []*wire.Verdict{}, NextCursor: next.String(), HasMore: more}
	for i := range recs {
		page.Records = append(page.Records, verdictOf(recs[i].Code, &recs[i].Stored))
	}
	return page, nil
}

// codeOf is a stored record's own code.
func codeOf(r *record.Record) (string, error) {
	h, err := r.Hash()
	if err != nil {
		return "", err
	}
	return record.CodeOf(h).String(), nil
}

// institutionJSON is how the bbolt store keeps an institution.
type institutionJSON struct {
	Name          string    `json:"name"`
	Services      []string  `json:"services"`
	Enabled       bool      `json:"enabled"`
	Keys          []keyJSON `json:"keys"`
	Certs         [][]byte  `json:"certs"`
	WebhookURL    string    `json:"webhook_url,omitempty"`
	WebhookSecret []byte    `json:"webhook_secret,omitempty"`
	Insecure      bool      `json:"insecure_webhook,omitempty"`
	Delivered     string    `json:"delivered,omitempty"`
	Pending       string    `json:"pending,omitempty"`
	Failures      int       `json:"failures,omitempty"`
	NextAttempt   time.Time `json:"next_attempt,omitzero"`
}

type keyJSON struct {
	Hash    []byte    `json:"hash"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
}

func (in *Institution) toJSON() ([]byte, error) {
	j := institutionJSON{Name: in.Name, Services: in.Services, Enabled: in.Enabled, WebhookURL: in.WebhookURL,
		WebhookSecret: in.WebhookSecret, Insecure: in.InsecureWebhook, Delivered: in.Delivered.String(), Pending: in.Pending.String(),
		Failures: in.Failures, NextAttempt: in.NextAttempt, Certs: [][]byte{}, Keys: []keyJSON{}}
	for _, k := range in.Keys {
		j.Keys = append(j.Keys, keyJSON{Hash: k.Hash[:], Created: k.Created, Expires: k.Expires})
	}
	for _, c := range in.Certs {
		j.Certs = append(j.Certs, c[:])
	}
	return json.Marshal(j)
}

func institutionFromJSON(raw []byte) (*Institution, error) {
	var j institutionJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("backoffice: damaged institution entry: %w", err)
	}
	in := &Institution{Name: j.Name, Services: j.Services, Enabled: j.Enabled, WebhookURL: j.WebhookURL, WebhookSecret: j.WebhookSecret,
		InsecureWebhook: j.Insecure, Failures: j.Failures, NextAttempt: j.NextAttempt}
	var err error
	if in.Delivered, err = ParseCursor(j.Delivered); err != nil {
		return nil, err
	}
	if in.Pending, err = ParseCursor(j.Pending); err != nil {
		return nil, err
	}
	for _, k := range j.Keys {
		if len(k.Hash) != 32 {
			return nil, fmt.Errorf("backoffice: damaged institution entry %s: key hash", j.Name)
		}
		in.Keys = append(in.Keys, APIKey{Hash: [32]byte(k.Hash), Created: k.Created, Expires: k.Expires})
	}
	for _, c := range j.Certs {
		if len(c) != 32 {
			return nil, fmt.Errorf("backoffice: damaged institution entry %s: certificate fingerprint", j.Name)
		}
		in.Certs = append(in.Certs, [32]byte(c))
	}
	return in, nil
}

// rotateKeys is RotateInstitutionKey on an institution in memory.
func rotateKeys(in *Institution, key APIKey, oldExpires time.Time) {
	for i := range in.Keys {
		if k := &in.Keys[i]; k.Expires.IsZero() || k.Expires.After(oldExpires) {
			k.Expires = oldExpires
		}
	}
	in.Keys = append(in.Keys, key)
}
