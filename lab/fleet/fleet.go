// Package fleet is the back office's load tool: it simulates a fleet of
// terminals uploading to a running back office over real mutual TLS and
// measures what the back office does with them (docs/backoffice.md,
// "Fleet run").
//
// Every simulated terminal has its own terminal id and TLS client
// certificate (from one terminal CA), its own stand-in SAM (key and SAM
// certificate from a SAM CA the back office trusts), its own hash chain
// and counter, and a backlog of sealed version-2 records of the three
// services. It posts the wire format the uploader posts (sync/wire
// batches, gzip JSON, at most Config.BatchRecords records a batch, oldest
// first), and like the uploader it honours 429 and 503 with Retry-After
// (plus jitter),
// backs off with full jitter after other failures, halves its batch after
// a 413, and sends again the records answered "retry". It does not drive
// sync/uploader itself: that needs a bbolt outbox per terminal with an
// fsync per record, and a fleet of them measures this machine's disk,
// not the back office.
//
// Two scenarios: Storm (every terminal online at once with its whole
// backlog: the morning a region's network comes back) and Steady (each
// terminal's records trickle in one by one, spread over Config.Period).
// While the fleet uploads, a prober verifies codes already accepted on
// the staff listener (GET /v1/verify/{code}).
//
// Lab only: the shipped binaries never link it (kpe-cardsim fleet runs
// it).
package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"kpe-agent/lab/labpki"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// Scenario is how the fleet's backlog reaches the back office.
type Scenario string

// Scenarios.
const (
	// Storm: every terminal comes online at once with its whole backlog.
	Storm Scenario = "storm"
	// Steady: each terminal sends its records one at a time, at random
	// moments spread over the period.
	Steady Scenario = "steady"
)

// ParseScenario reads a scenario name.
func ParseScenario(s string) (Scenario, error) {
	switch Scenario(s) {
	case Storm, Steady:
		return Scenario(s), nil
	}
	return "", fmt.Errorf("%w: scenario %q: storm or steady", ErrConfig, s)
}

// Services are the services the records are for, in turn.
var Services = []string{"askes", "taspen", "bapertarum"}

// Config configures a fleet run.
type Config struct {
	// URL is the back office's terminal API (mutual TLS), e.g.
	// https://127.0.0.1:8443.
	URL string
	// URLs, when set, are several back-office nodes' terminal APIs (URL
	// is then ignored): terminal i starts on node i mod len(URLs) and,
	// after a connection error or a request with no answer, fails over to
	// the next node.
	URLs []string
	// StaffURL is its staff listener, where the prober verifies codes;
	// empty: no prober.
	StaffURL string
	// StaffUser and StaffPassword sign the prober in on the staff
	// listener (a verifier account).
	StaffUser, StaffPassword string
	// StaffURLs, when set, are several nodes' staff listeners (StaffURL
	// is then ignored): the prober takes them in turn and tries the next
	// one after a connection error.
	StaffURLs []string
	// Verifier is the prober's HTTP client (default: one trusting Roots,
	// 30 s timeout). Give one with a cookie jar or credentials when the
	// staff listener wants a signed-in user.
	Verifier *http.Client
	// Roots are the roots the back office's server certificate chains to.
	Roots *x509.CertPool
	// TerminalCA issues the terminals' TLS client certificates; the back
	// office must trust it for client certificates.
	TerminalCA *labpki.CA
	// SAMCA issues the terminals' SAM certificates; the back office must
	// trust it for SAM certificates.
	SAMCA *labpki.CA

	Terminals int // simulated terminals (at least 1)
	Records   int // each terminal's backlog (at least 1)
	Scenario  Scenario
	// Period spreads a steady run's records (default one minute).
	Period time.Duration
	// BatchRecords is the largest batch (default 200, the uploader's
	// default; at most wire.MaxBatchRecords).
	BatchRecords int
	// Timeout bounds one request (default 2 minutes: in a storm the back
	// office queues); a timed-out batch is sent again.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the retry delays as in the
	// uploader (defaults 1 s and 30 s; Retry-After is capped by
	// MaxBackoff too).
	MinBackoff, MaxBackoff time.Duration
	// ProbeRate is the prober's verifications a second (default 20).
	ProbeRate float64
	// DBSize, when set, gives the back office's database size in bytes
	// (PostgreSQL: pg_database_size), read before and after the run.
	DBSize func(context.Context) (int64, error)
	// TerminalPrefix starts the terminal ids (default "fleet-"): a run
	// against a back office that has seen another run's terminals uses
	// another prefix.
	TerminalPrefix string
}

// ErrConfig: a configuration the fleet cannot run.
var ErrConfig = errors.New("fleet: bad configuration")

// ErrIncomplete: the run ended (its context) before every record was
// taken.
var ErrIncomplete = errors.New("fleet: not every record was taken")

func (c *Config) check() error {
	switch {
	case c.URL == "" && len(c.URLs) == 0:
		return fmt.Errorf("%w: no back-office URL", ErrConfig)
	case slices.Contains(c.URLs, "") || slices.Contains(c.StaffURLs, ""):
		return fmt.Errorf("%w: an empty back-office URL", ErrConfig)
	case c.Roots == nil || c.TerminalCA == nil || c.SAMCA == nil:
		return fmt.Errorf("%w: the server roots, the terminal CA and the SAM CA are all needed", ErrConfig)
	case c.Terminals < 1 || c.Records < 1:
		return fmt.Errorf("%w: %d terminals × %d records: want at least 1 of each", ErrConfig, c.Terminals, c.Records)
	case c.Terminals > 1_000_000 || c.Records > 1_000_000:
		return fmt.Errorf("%w: %d terminals × %d records: at most a million of each", ErrConfig, c.Terminals, c.Records)
	case c.BatchRecords < 0 || c.BatchRecords > wire.MaxBatchRecords:
		return fmt.Errorf("%w: batch of %d records: at most %d", ErrConfig, c.BatchRecords, wire.MaxBatchRecords)
	case c.Period < 0 || c.Timeout < 0 || c.MinBackoff < 0 || c.MaxBackoff < 0 || c.ProbeRate < 0:
		return fmt.Errorf("%w: negative duration or rate", ErrConfig)
	}
	if c.Scenario == "" {
		c.Scenario = Storm
	}
	if _, err := ParseScenario(string(c.Scenario)); err != nil {
		return err
	}
	if c.Period == 0 {
		c.Period = time.Minute
	}
	if c.BatchRecords == 0 {
		c.BatchRecords = 200
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.ProbeRate == 0 {
		c.ProbeRate = 20
	}
	if c.TerminalPrefix == "" {
		c.TerminalPrefix = "fleet-"
	}
	if len(c.URLs) == 0 {
		c.URLs = []string{c.URL}
	}
	if len(c.StaffURLs) == 0 && c.StaffURL != "" {
		c.StaffURLs = []string{c.StaffURL}
	}
	return nil
}

// terminal is one simulated terminal.
type terminal struct {
	id      string
	node    int // index in Config.URLs it sends to now
	client  *http.Client
	certs   [][]byte // its SAM certificate
	backlog [][]byte // sealed records, oldest first
	codes   []string // the backlog's codes, in its order
}

// Fleet is a prepared fleet: keys, certificates and sealed backlogs made,
// ready to Run (once).
type Fleet struct {
	cfg       Config
	run       [2]byte // in the SAM serials: another fleet, other SAMs
	terminals []*terminal
}

// New prepares a fleet: a TLS client certificate, a SAM and a sealed
// backlog for each terminal. This is the slow part for a big fleet (a
// signature per record) and is not part of the measured run.
func New(ctx context.Context, cfg Config) (*Fleet, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	f := &Fleet{cfg: cfg, terminals: make([]*terminal, cfg.Terminals)}
	x := rand.Uint32()
	f.run = [2]byte{byte(x >> 8), byte(x)}
	var next atomic.Int64
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Terminals || ctx.Err() != nil {
					return
				}
				t, err := f.newTerminal(ctx, i)
				if err != nil {
					errs <- err
					return
				}
				f.terminals[i] = t
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *Fleet) newTerminal(ctx context.Context, i int) (*terminal, error) {
	id := fmt.Sprintf("%s%05d", f.cfg.TerminalPrefix, i)
	cert, err := f.cfg.TerminalCA.Terminal(id)
	if err != nil {
		return nil, fmt.Errorf("fleet: terminal %s certificate: %w", id, err)
	}
	serial := [8]byte{0xF1, 0xEE, f.run[0], f.run[1], byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
	sam, err := f.cfg.SAMCA.NewSAM(serial)
	if err != nil {
		return nil, fmt.Errorf("fleet: terminal %s SAM: %w", id, err)
	}
	t := &terminal{id: id, certs: [][]byte{sam.Cert}, node: i % len(f.cfg.URLs)}
	// the records' times: a backlog that built up over the last hour
	start := time.Now().Add(-time.Hour)
	step := time.Hour / time.Duration(f.cfg.Records+1)
	var prev [32]byte
	for k := range f.cfg.Records {
		rid, err := record.NewID()
		if err != nil {
			return nil, err
		}
		r := &record.Record{
			ID: rid, TerminalID: id, SiteID: fmt.Sprintf("site-%03d", i%500), OperatorID: "clerk-1",
			Service:  Services[(i+k)%len(Services)],
			CardType: record.CardKPE, CardSerial: []byte{byte(i >> 8), byte(i), byte(k >> 8), byte(k)},
			SubjectKind: record.SubjectNIP, Subject: fmt.Sprintf("1966080119880%05d", (i*7+k)%100000),
			CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
			Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Pass},
			Time: start.Add(time.Duration(k+1) * step), Clock: record.ClockSynced, PrevHash: prev,
		}
		if err := record.Seal(ctx, r, sam); err != nil {
			return nil, fmt.Errorf("fleet: terminal %s record %d: %w", id, k, err)
		}
		enc, err := r.Encode()
		if err != nil {
			return nil, err
		}
		if prev, _, err = record.HashesOf(enc); err != nil { // from the bytes at hand, not a second encoding
			return nil, err
		}
		t.backlog = append(t.backlog, enc)
		t.codes = append(t.codes, record.CodeOf(prev).String())
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: f.cfg.Roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true, MaxIdleConns: 2, IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: f.cfg.Timeout, ResponseHeaderTimeout: f.cfg.Timeout}
	t.client = &http.Client{Transport: tr, Timeout: f.cfg.Timeout}
	return t, nil
}

// URLs are the nodes the fleet uploads to.
func (f *Fleet) URLs() []string { return slices.Clone(f.cfg.URLs) }

// Codes are the verification codes of every record of the fleet.
func (f *Fleet) Codes() ([]string, error) {
	var out []string
	for _, t := range f.terminals {
		out = append(out, t.codes...)
	}
	return out, nil
}

// Report is what a run measured.
type Report struct {
	Scenario  Scenario
	Terminals int
	Records   int // the fleet's records (terminals × backlog)
	// Sent counts records posted, resends included; Accepted, Duplicate
	// and Rejected count the back office's answers (a duplicate is a
	// record it had already: a resend after a lost answer).
	Sent, Accepted, Duplicate, Rejected int
	// RejectReasons counts the rejections by reason.
	RejectReasons map[string]int
	Batches       int // batches answered 200
	// Answers429 and Answers503 count the batches answered busy, and
	// RetryAfter those that carried a Retry-After; OtherFailures the
	// batches that failed otherwise (timeouts, 5xx, connection errors),
	// all sent again.
	Answers429, Answers503, RetryAfter, OtherFailures int
	// Failovers counts terminals moving to the next node after a
	// connection error or a request with no answer (Config.URLs);
	// VerifyFailovers the prober's.
	Failovers, VerifyFailovers      int
	Elapsed                         time.Duration // from the first upload to the last record taken
	Rate                            float64       // records taken (accepted + duplicate) a second
	UploadP50, UploadP99, UploadMax time.Duration // per answered batch

	// The prober's verifications during the run: how many, their
	// latency, the 429 answers, the answers that did not find a code
	// known to be accepted (must be zero), and the errors (no answer,
	// an answer other than 200 or 429, or a body that is not a
	// verdict), by reason. VerifyUnsent counts the ticks on which the
	// prober sent nothing because 256 verifications were already in
	// flight: a stall, but of what the prober cannot tell (in one
	// process it is as likely the fleet's own run queue as the back
	// office), so it is reported beside the latency, not as an error.
	Verifies                          int
	VerifyP50, VerifyP99, VerifyMax   time.Duration
	Verify429, VerifyWrong, VerifyErr int
	VerifyUnsent                      int
	VerifyErrReasons                  map[string]int

	// DBBefore and DBAfter are the database sizes (Config.DBSize);
	// BytesPerRecord their difference over the records taken.
	DBBefore, DBAfter int64
	BytesPerRecord    float64
}

// String is the report as the command prints it.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fleet %s: %d terminals × %d records = %d records\n", r.Scenario, r.Terminals, r.Records/max(r.Terminals, 1), r.Records)
	fmt.Fprintf(&b, "records: sent %d, accepted %d, duplicate %d, rejected %d", r.Sent, r.Accepted, r.Duplicate, r.Rejected)
	if len(r.RejectReasons) > 0 {
		fmt.Fprintf(&b, " %v", r.RejectReasons)
	}
	fmt.Fprintf(&b, "\ndrained in %s: %.0f records/s over %d batches\n", r.Elapsed.Round(time.Millisecond), r.Rate, r.Batches)
	fmt.Fprintf(&b, "upload latency per batch: p50 %s, p99 %s, max %s\n", ms(r.UploadP50), ms(r.UploadP99), ms(r.UploadMax))
	fmt.Fprintf(&b, "busy answers: 429 ×%d, 503 ×%d (%d with Retry-After); other failures %d; fail-overs %d\n", r.Answers429, r.Answers503, r.RetryAfter, r.OtherFailures, r.Failovers)
	if r.Verifies > 0 || r.Verify429 > 0 || r.VerifyErr > 0 || r.VerifyUnsent > 0 {
		fmt.Fprintf(&b, "verify during the run: %d answers, p50 %s, p99 %s, max %s; 429 ×%d, wrong %d, errors %d%s, fail-overs %d, not sent (%d in flight) %d\n",
			r.Verifies, ms(r.VerifyP50), ms(r.VerifyP99), ms(r.VerifyMax), r.Verify429, r.VerifyWrong, r.VerifyErr, reasons(r.VerifyErrReasons), r.VerifyFailovers, maxProbes, r.VerifyUnsent)
	}
	if r.DBAfter > 0 {
		fmt.Fprintf(&b, "database: %d → %d bytes, %.0f bytes per record (%.2f GB per million)\n",
			r.DBBefore, r.DBAfter, r.BytesPerRecord, r.BytesPerRecord*1e6/1e9)
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// run state shared by the terminals.
type run struct {
	f *Fleet
	// encode bounds the terminals compressing a batch at once to the
	// cores: thousands of goroutines gzipping at once would fill the Go
	// run queue and delay every other goroutine of this process by
	// seconds, the prober's timing included (a real terminal has its own
	// CPU; here they share this process's).
	encode chan struct{}
	mu     sync.Mutex
	rep    Report
	lat    []time.Duration
	codes  []string // accepted codes, for the prober
}

// Run uploads every terminal's backlog by the scenario and reports. It
// returns the report with ErrIncomplete when ctx ends first.
func (f *Fleet) Run(ctx context.Context) (*Report, error) {
	r := &run{f: f, encode: make(chan struct{}, runtime.GOMAXPROCS(0)), rep: Report{Scenario: f.cfg.Scenario, Terminals: len(f.terminals), RejectReasons: map[string]int{}}}
	for _, t := range f.terminals {
		r.rep.Records += len(t.backlog)
	}
	if f.cfg.DBSize != nil {
		n, err := f.cfg.DBSize(ctx)
		if err != nil {
			return nil, fmt.Errorf("fleet: database size: %w", err)
		}
		r.rep.DBBefore = n
	}
	probeCtx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan probeResult, 1)
	if len(f.cfg.StaffURLs) > 0 {
		// signed in before the run starts (argon2id takes its time,
		// which is not the run's)
		c, err := verifierClient(ctx, f.cfg.Verifier, f.cfg.Roots, f.cfg.StaffURLs, f.cfg.StaffUser, f.cfg.StaffPassword)
		if err != nil {
			stopProbe()
			return nil, err
		}
		go func() { probeDone <- r.probe(probeCtx, c) }()
	} else {
		probeDone <- probeResult{}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, t := range f.terminals {
		wg.Add(1)
		go func() { defer wg.Done(); r.terminal(ctx, t) }()
	}
	wg.Wait()
	r.rep.Elapsed = time.Since(start)
	stopProbe()
	pr := <-probeDone

	rep := &r.rep
	taken := rep.Accepted + rep.Duplicate
	if rep.Elapsed > 0 {
		rep.Rate = float64(taken) / rep.Elapsed.Seconds()
	}
	rep.UploadP50, rep.UploadP99, rep.UploadMax = quantiles(r.lat)
	rep.Verifies, rep.Verify429, rep.VerifyWrong, rep.VerifyErr, rep.VerifyFailovers = len(pr.lat), pr.n429, pr.wrong, pr.errs, pr.failovers
	rep.VerifyUnsent, rep.VerifyErrReasons = pr.unsent, pr.reasons
	rep.VerifyP50, rep.VerifyP99, rep.VerifyMax = quantiles(pr.lat)
	if f.cfg.DBSize != nil && ctx.Err() == nil {
		n, err := f.cfg.DBSize(ctx)
		if err != nil {
			return rep, fmt.Errorf("fleet: database size: %w", err)
		}
		rep.DBAfter = n
		if rep.Accepted > 0 {
			rep.BytesPerRecord = float64(n-rep.DBBefore) / float64(rep.Accepted)
		}
	}
	if taken+rep.Rejected < rep.Records {
		return rep, fmt.Errorf("%w: %d of %d answered (%v)", ErrIncomplete, taken+rep.Rejected, rep.Records, ctx.Err())
	}
	return rep, nil
}

// quantiles: p50, p99 and the maximum (nearest rank).
func quantiles(d []time.Duration) (p50, p99, mx time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[int(q*float64(len(s)-1)+0.5)] }
	return at(.5), at(.99), s[len(s)-1]
}

// terminal uploads one terminal's backlog.
func (r *run) terminal(ctx context.Context, t *terminal) {
	cfg := r.f.cfg
	pending := t.backlog
	per := cfg.BatchRecords
	if cfg.Scenario == Steady {
		per = 1
	}
	// steady: the moments each record is made and sent, spread over the
	// period, in order
	var due []time.Duration
	if cfg.Scenario == Steady {
		for range pending {
			due = append(due, time.Duration(rand.Int64N(int64(cfg.Period))))
		}
		slices.Sort(due)
	}
	start := time.Now()
	failures := 0
	maxN := per
	for len(pending) > 0 && ctx.Err() == nil {
		if cfg.Scenario == Steady {
			i := len(t.backlog) - len(pending)
			if !sleep(ctx, time.Until(start.Add(due[i]))) {
				return
			}
		}
		n := min(maxN, len(pending))
		res, status, after, took, err := r.send(ctx, t, pending[:n])
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			r.mu.Lock()
			switch status {
			case http.StatusTooManyRequests:
				r.rep.Answers429++
			case http.StatusServiceUnavailable:
				r.rep.Answers503++
			case http.StatusRequestEntityTooLarge:
			default:
				r.rep.OtherFailures++
			}
			if after > 0 {
				r.rep.RetryAfter++
			}
			r.rep.Sent += n
			if status == 0 && len(cfg.URLs) > 1 { // no answer: try the next node
				t.node = (t.node + 1) % len(cfg.URLs)
				r.rep.Failovers++
			}
			r.mu.Unlock()
			if status == http.StatusRequestEntityTooLarge && maxN > 1 {
				maxN = max(1, maxN/2)
				continue
			}
			if !sleep(ctx, r.backoff(failures, after)) {
				return
			}
			continue
		}
		failures = 0
		var retry [][]byte
		r.mu.Lock()
		r.rep.Sent += n
		r.rep.Batches++
		r.lat = append(r.lat, took)
		for i, x := range res.Results {
			switch x.Status {
			case wire.Accepted:
				r.rep.Accepted++
				r.codes = append(r.codes, x.Code)
			case wire.Duplicate:
				r.rep.Duplicate++
			case wire.Rejected:
				r.rep.Rejected++
				r.rep.RejectReasons[x.Reason]++
			default:
				retry = append(retry, pending[i])
			}
		}
		r.mu.Unlock()
		if len(retry) == n { // no progress: back off like the uploader
			failures++
			if !sleep(ctx, r.backoff(failures, 0)) {
				return
			}
		}
		pending = append(retry, pending[n:]...)
		if maxN < per {
			maxN = min(per, maxN*2)
		}
	}
}

// backoff is the uploader's rule: Retry-After plus full jitter over as
// long again when given, else full jitter over an exponential ceiling;
// both capped.
func (r *run) backoff(failures int, after time.Duration) time.Duration {
	cfg := r.f.cfg
	if after > 0 {
		return min(after+time.Duration(rand.Float64()*float64(after)), cfg.MaxBackoff)
	}
	ceil := cfg.MinBackoff
	for i := 1; i < failures && ceil < cfg.MaxBackoff; i++ {
		ceil *= 2
	}
	return time.Duration(rand.Float64() * float64(min(ceil, cfg.MaxBackoff)))
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// send posts one batch as the uploader does; on failure it returns the
// HTTP status (0: no answer) and the Retry-After.
func (r *run) send(ctx context.Context, t *terminal, recs [][]byte) (*wire.BatchResult, int, time.Duration, time.Duration, error) {
	select {
	case r.encode <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, 0, 0, ctx.Err()
	}
	req, err := wire.NewBatchRequest(ctx, r.f.cfg.URLs[t.node], &wire.Batch{Certificates: t.certs, Records: recs, SentAt: time.Now().UTC()})
	<-r.encode
	if err != nil {
		return nil, 0, 0, 0, err
	}
	t0 := time.Now()
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, wire.MaxBatchAnswer))
	took := time.Since(t0)
	if err != nil {
		return nil, 0, 0, took, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, wire.RetryAfter(resp.Header.Get("Retry-After"), time.Now()), took,
			fmt.Errorf("fleet: terminal %s: back office answered %s: %.200s", t.id, resp.Status, raw)
	}
	res, err := wire.DecodeBatchResult(raw, len(recs))
	return res, resp.StatusCode, 0, took, err
}

// maxProbes bounds the prober's verifications in flight.
const maxProbes = 256

type probeResult struct {
	lat                          []time.Duration
	n429, wrong, errs, failovers int
	unsent                       int            // ticks with maxProbes in flight
	reasons                      map[string]int // errs by reason
}

// fail counts an error under its reason.
func (p *probeResult) fail(reason string) {
	p.errs++
	if p.reasons == nil {
		p.reasons = map[string]int{}
	}
	p.reasons[reason]++
}

// errClass names a request's error by kind, so the reasons stay few.
func errClass(err error) string {
	var ne net.Error
	var op *net.OpError
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &op):
		return op.Op
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	return "other"
}

// reasons is the error reasons as " (reason ×n, …)", sorted, or "".
func reasons(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, m[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// probe verifies accepted codes on the staff listener at the probe rate
// until ctx ends. It is open-loop: each verification starts on its tick,
// whether or not the ones before have been answered (a slow answer does
// not thin the sample), at most maxProbes in flight (a tick beyond that
// sends nothing and is counted as unsent).
func (r *run) probe(ctx context.Context, c *http.Client) probeResult {
	return probe(ctx, c, r.f.cfg.StaffURLs, r.f.cfg.ProbeRate, func() string {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.codes) == 0 {
			return ""
		}
		return r.codes[rand.IntN(len(r.codes))]
	})
}

// ProbeConfig configures Probe: a verifier on its own, in a process of
// its own (kpe-cardsim fleet --probe-only), so a fleet saturating its own
// process's scheduler does not show up as verification latency.
type ProbeConfig struct {
	StaffURLs []string
	// Client is the verifier's HTTP client (default: plain, trusting
	// Roots, 30 s timeout); give one with a cookie jar or credentials
	// when the staff listener wants a signed-in user.
	Client *http.Client
	Roots  *x509.CertPool
	// User and Password sign the client in on every staff listener (a
	// verifier account); empty: the client is used as it is.
	User, Password string
	Rate           float64 // verifications a second (default 20)
	// Code gives a code to verify, one known to be stored; "" skips the
	// tick.
	Code func() string
}

// ProbeReport is what Probe measured.
type ProbeReport struct {
	Verifies                             int
	P50, P99, Max                        time.Duration
	Answers429, Wrong, Errors, Failovers int
	Unsent                               int            // ticks with 256 verifications in flight
	ErrReasons                           map[string]int // Errors by reason
}

// String is the report as the command prints it.
func (p ProbeReport) String() string {
	return fmt.Sprintf("verify: %d answers, p50 %s, p99 %s, max %s; 429 ×%d, wrong %d, errors %d%s, fail-overs %d, not sent (%d in flight) %d\n",
		p.Verifies, ms(p.P50), ms(p.P99), ms(p.Max), p.Answers429, p.Wrong, p.Errors, reasons(p.ErrReasons), p.Failovers, maxProbes, p.Unsent)
}

// Probe verifies codes on the staff listeners at the rate until ctx ends.
func Probe(ctx context.Context, pc ProbeConfig) (ProbeReport, error) {
	if len(pc.StaffURLs) == 0 || pc.Code == nil || pc.Rate < 0 {
		return ProbeReport{}, fmt.Errorf("%w: the prober wants staff URLs, a code source and a rate of 0 (the default) or more", ErrConfig)
	}
	if pc.Rate == 0 {
		pc.Rate = 20
	}
	c, err := verifierClient(ctx, pc.Client, pc.Roots, pc.StaffURLs, pc.User, pc.Password)
	if err != nil {
		return ProbeReport{}, err
	}
	defer c.CloseIdleConnections()
	pr := probe(ctx, c, pc.StaffURLs, pc.Rate, pc.Code)
	out := ProbeReport{Verifies: len(pr.lat), Answers429: pr.n429, Wrong: pr.wrong, Errors: pr.errs, Failovers: pr.failovers,
		Unsent: pr.unsent, ErrReasons: pr.reasons}
	out.P50, out.P99, out.Max = quantiles(pr.lat)
	return out, nil
}

// verifierClient is c (default: plain, trusting roots, 30 s timeout)
// signed in as user on each staff listener (sessions live in the shared
// database, but a cookie belongs to a host).
func verifierClient(ctx context.Context, c *http.Client, roots *x509.CertPool, staff []string, user, password string) (*http.Client, error) {
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, MaxIdleConnsPerHost: 64}}
	}
	if user == "" {
		return c, nil
	}
	for _, u := range staff {
		live, err := backoffice.HasSession(ctx, c, u)
		if err != nil {
			return nil, fmt.Errorf("fleet: the prober's session on the staff listener %s: %w", u, err)
		}
		if live {
			continue // another node's session: cookies belong to a host, not a port, and sessions to the database
		}
		if err := backoffice.SignInClient(ctx, c, u, user, password); err != nil {
			return nil, fmt.Errorf("fleet: the prober's sign-in on the staff listener %s: %w", u, err)
		}
	}
	return c, nil
}

func probe(ctx context.Context, c *http.Client, staff []string, rate float64, pick func() string) probeResult {
	var (
		mu sync.Mutex
		pr probeResult
		wg sync.WaitGroup
	)
	var turn atomic.Int64
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	slots := make(chan struct{}, maxProbes)
	one := func(code string) {
		defer func() { <-slots; wg.Done() }()
		first := int(turn.Add(1)) % len(staff)
		var (
			resp *http.Response
			err  error
			t0   time.Time
		)
		for k := range staff { // the next node after a connection error
			var req *http.Request
			req, err = http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet,
				strings.TrimSuffix(staff[(first+k)%len(staff)], "/")+wire.PathVerify+code, nil)
			if err != nil {
				break
			}
			t0 = time.Now()
			if resp, err = c.Do(req); err == nil {
				break
			}
			if k+1 < len(staff) {
				mu.Lock()
				pr.failovers++
				mu.Unlock()
			}
		}
		var v wire.Verdict
		var derr error
		if err == nil {
			derr = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&v)
			resp.Body.Close()
		}
		took := time.Since(t0)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			pr.fail("no answer: " + errClass(err))
		case resp.StatusCode == http.StatusTooManyRequests:
			pr.n429++
		case resp.StatusCode != http.StatusOK:
			pr.fail(fmt.Sprintf("status %d", resp.StatusCode))
		case derr != nil:
			pr.fail("not a verdict")
		case !v.Valid:
			pr.wrong++
		default:
			pr.lat = append(pr.lat, took)
		}
	}
	for {
		select {
		case <-ctx.Done():
			wg.Wait() // the ones in flight finish (bounded by the client's timeout)
			return pr
		case <-tick.C:
		}
		if ctx.Err() != nil {
			continue // a tick and the end both ready: select picks either, and nothing is sent after the end
		}
		code := pick()
		if code == "" {
			continue
		}
		select {
		case slots <- struct{}{}:
			wg.Add(1)
			go one(code)
		default:
			mu.Lock()
			pr.unsent++
			mu.Unlock()
		}
	}
}
