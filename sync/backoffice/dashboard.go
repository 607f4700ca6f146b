package backoffice

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"kpe-agent/sync/wire"
)

// The staff pages' queries (staffpages.go, docs/staff-pages.md): counts
// of authentications and verifications by hour, what each terminal's
// uploads said, and the open alarms. Both stores implement PageStore; the
// Store interface is unchanged.

// PageStore is what the staff pages read, and the few facts they need
// that the records do not hold (verification outcomes, what an upload
// said about its terminal).
type PageStore interface {
	// AuthHours counts the records by UTC hour of their time, service
	// and site, for the hours that start in [from rounded down to the
	// hour, to); only of services when it is not nil. Both stores keep
	// an hourly rollup updated in the ingest transaction.
	AuthHours(ctx context.Context, from, to time.Time, services []string) ([]HourCount, error)
	// CountVerification adds one lookup of a well-formed code at at,
	// found or not, to its UTC hour's counters.
	CountVerification(ctx context.Context, at time.Time, found bool) error
	// VerificationHours are the hourly counters of [from, to).
	VerificationHours(ctx context.Context, from, to time.Time) ([]VerifyHour, error)
	// NoteUpload keeps what an upload said about its terminal: the
	// contact time, and the agent version, backlog and oldest queued
	// record when the batch carried them; LastRecord only moves forward.
	NoteUpload(ctx context.Context, terminal string, u Upload) error
	// Terminals lists every terminal (records or uploads), by id; with
	// q.SilentSince set only those whose last contact is before it.
	Terminals(ctx context.Context, q TerminalQuery) ([]TerminalRow, error)
	// OpenAlarms counts the open alarms.
	OpenAlarms(ctx context.Context) (int64, error)
}

// HourCount is a number of authentications (records) in one UTC hour.
type HourCount struct {
	Hour          time.Time
	Service, Site string
	Count         int64
}

// VerifyHour counts the code lookups of one UTC hour.
type VerifyHour struct {
	Hour            time.Time
	Found, NotFound int64
}

// Upload is what one batch said about its terminal.
type Upload struct {
	At           time.Time // the back office's clock
	Agent        string    // "": not sent
	Backlog      *int64    // nil: not sent
	OldestQueued time.Time // zero: not sent
	LastRecord   time.Time // the newest record time the batch carried (zero: none)
}

// TerminalQuery selects terminals for PageStore.Terminals.
type TerminalQuery struct {
	SilentSince time.Time // zero: every terminal
}

// TerminalRow is one terminal as the terminals page shows it.
type TerminalRow struct {
	ID, Site     string
	Records      int64
	ChainBreaks  int64
	LastSeen     time.Time // the last upload that stored a record
	LastContact  time.Time // the last upload of any kind (LastSeen for terminals not heard since uploads were noted)
	LastRecord   time.Time // the newest record time seen
	Agent        string
	Backlog      *int64
	OldestQueued time.Time
	SAMs         []wire.SAMInfo
}

// Gaps counts the missing counters of the terminal's SAMs.
func (t TerminalRow) Gaps() (ranges int, counters int64) {
	for _, s := range t.SAMs {
		for _, g := range s.Gaps {
			ranges++
			counters += int64(g.To) - int64(g.From) + 1
		}
	}
	return ranges, counters
}

// ErrNoPages: the store does not keep what the staff pages need.
var ErrNoPages = errors.New("backoffice: the store does not serve the staff pages")

func (s *Service) pageStore() (PageStore, error) {
	ps, ok := s.store.(PageStore)
	if !ok {
		return nil, fmt.Errorf("%w (%T)", ErrNoPages, s.store)
	}
	return ps, nil
}

// noteUpload keeps what batch b said about its terminal (the peer's, or
// for an unbound sender its first record's); entries are the batch's
// decoded records, results their outcomes. A store without PageStore
// keeps nothing.
func (s *Service) noteUpload(ctx context.Context, b *wire.Batch, peer Identity, entries []Entry, results []wire.Result, now time.Time) error {
	ps, ok := s.store.(PageStore)
	if !ok {
		return nil
	}
	u := Upload{At: now, Agent: b.Agent, Backlog: b.Backlog, OldestQueued: b.OldestQueued}
	if len(u.Agent) > 64 {
		u.Agent = u.Agent[:64]
	}
	if u.Backlog != nil && *u.Backlog < 0 {
		u.Backlog = nil
	}
	terminal := peer.Terminal
	for i, e := range entries {
		if e.Rec == nil || (results[i].Status != wire.Accepted && results[i].Status != wire.Duplicate) {
			continue
		}
		if terminal == "" {
			terminal = e.Rec.TerminalID
		}
		if e.Rec.TerminalID == terminal && e.Rec.Time.After(u.LastRecord) {
			u.LastRecord = e.Rec.Time
		}
	}
	if terminal == "" {
		return nil
	}
	return ps.NoteUpload(ctx, terminal, u)
}

// countVerification counts a lookup of a well-formed code.
func (s *Service) countVerification(ctx context.Context, found bool) error {
	ps, ok := s.store.(PageStore)
	if !ok {
		return nil
	}
	return ps.CountVerification(ctx, s.cfg.Now(), found)
}

// DashboardQuery selects the dashboard's numbers.
type DashboardQuery struct {
	From, To time.Time      // days in Zone, both included
	Zone     *time.Location // the report zone
	Services []string       // nil: every service (a scoped principal's services otherwise)
}

// MaxDashboardDays bounds a dashboard range.
const MaxDashboardDays = 366

// Dashboard is the dashboard's numbers over a range of days.
type Dashboard struct {
	Days          []time.Time        // midnight of each day in the zone, oldest first
	ByService     map[string][]int64 // service → count per day
	ByInstitution map[string][]int64 // institution (Config.Institutions, else the site) → per day
	BySite        map[string][]int64 // site → per day
	Found         []int64            // verifications per day
	NotFound      []int64            // verifications per day
	Total         int64              // authentications in the range
	OpenAlarms    int64              // -1 when not asked
}

// Dashboard reads the dashboard's numbers. Days are folded from UTC
// hours: exact for zones whole hours off UTC (every Indonesian zone).
// verifications and alarms are read only when asked (an unscoped
// principal's view).
func (s *Service) Dashboard(ctx context.Context, q DashboardQuery, verifications, alarms bool) (*Dashboard, error) {
	ps, err := s.pageStore()
	if err != nil {
		return nil, err
	}
	loc := q.Zone
	if loc == nil {
		loc = time.UTC
	}
	from := time.Date(q.From.Year(), q.From.Month(), q.From.Day(), 0, 0, 0, 0, loc)
	to := time.Date(q.To.Year(), q.To.Month(), q.To.Day(), 0, 0, 0, 0, loc).AddDate(0, 0, 1)
	if !from.Before(to) {
		return nil, fmt.Errorf("%w: the range ends before it starts", ErrRange)
	}
	d := &Dashboard{ByService: map[string][]int64{}, ByInstitution: map[string][]int64{}, BySite: map[string][]int64{}, OpenAlarms: -1}
	for day := from; day.Before(to); day = day.AddDate(0, 0, 1) {
		d.Days = append(d.Days, day)
		if len(d.Days) > MaxDashboardDays {
			return nil, fmt.Errorf("%w: at most %d days", ErrRange, MaxDashboardDays)
		}
	}
	dayOf := func(h time.Time) int {
		t := h.In(loc)
		i, _ := slices.BinarySearchFunc(d.Days, t, func(day, t time.Time) int {
			if day.After(t) {
				return 1
			}
			return -1
		})
		return i - 1
	}
	add := func(m map[string][]int64, k string, i int, n int64) {
		if m[k] == nil {
			m[k] = make([]int64, len(d.Days))
		}
		m[k][i] += n
	}
	rows, err := ps.AuthHours(ctx, from, to, q.Services)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		i := dayOf(r.Hour)
		if i < 0 || i >= len(d.Days) {
			continue
		}
		inst := r.Site
		if name, ok := s.cfg.Institutions[r.Site]; ok {
			inst = name
		}
		add(d.ByService, r.Service, i, r.Count)
		add(d.BySite, r.Site, i, r.Count)
		add(d.ByInstitution, inst, i, r.Count)
		d.Total += r.Count
	}
	if verifications {
		d.Found, d.NotFound = make([]int64, len(d.Days)), make([]int64, len(d.Days))
		vs, err := ps.VerificationHours(ctx, from, to)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			if i := dayOf(v.Hour); i >= 0 && i < len(d.Days) {
				d.Found[i] += v.Found
				d.NotFound[i] += v.NotFound
			}
		}
	}
	if alarms {
		if d.OpenAlarms, err = ps.OpenAlarms(ctx); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// ErrRange: a dashboard range that is not acceptable.
var ErrRange = errors.New("backoffice: range not acceptable")

// Terminals lists terminals for the terminals page.
func (s *Service) Terminals(ctx context.Context, q TerminalQuery) ([]TerminalRow, error) {
	ps, err := s.pageStore()
	if err != nil {
		return nil, err
	}
	return ps.Terminals(ctx, q)
}
