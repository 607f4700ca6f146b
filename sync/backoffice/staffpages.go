package backoffice

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"kpe-agent/internal/i18n"
	"kpe-agent/internal/svgchart"
	"kpe-agent/sync/wire"
)

// The staff pages (docs/staff-pages.md): dashboard, terminals, alarms and
// reports, rendered on the server in Bahasa Indonesia or English, under
// the staff listener's policy (no inline script or style: the one style
// sheet is /assets/staff.css, and the pages need no script). Each route
// requires a role (requireRole); who acts is the signed-in principal.

//go:embed page/staff/*.html page/staff/staff.css page/staff/favicon.svg
var staffPageFS embed.FS

// staffTemplates are the pages, each parsed with the layout.
var staffTemplates = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"dashboard", "terminals", "alarms", "alarm", "reports", "accounts", "audit", "renewals", "topups", "purses", "settlement"} {
		out[name] = template.Must(template.ParseFS(staffPageFS, "page/staff/layout.html", "page/staff/"+name+".html"))
	}
	return out
}()

// Who may see each page.
var (
	dashboardRoles = []Role{RoleAuditor, RoleAdmin, RoleInstitution}
	auditRoles     = []Role{RoleAuditor, RoleAdmin}
	accountRoles   = []Role{RoleAdmin}
)

// pageData is what the layout and every page read.
type pageData struct {
	Lang  i18n.Lang
	Title string // catalogue key
	Page  string // the navigation's current entry
	Body  any
	CSRF  string
	p     *Principal
	r     *http.Request
	zone  *time.Location
}

// T is the catalogue's text in the page's language.
func (d *pageData) T(key string, args ...any) string { return d.Lang.T(key, args...) }

// Account is the signed-in account's name.
func (d *pageData) Account() string { return d.p.Account }

// May says whether the principal may open a page (the navigation shows
// only those).
func (d *pageData) May(page string) bool {
	switch page {
	case "dashboard":
		return d.p.Has(dashboardRoles...)
	case "accounts":
		return d.p.Has(accountRoles...)
	case "renewals":
		return d.p.Has(renewalRoles...)
	case "topups":
		return d.p.Has(topUpRoles...)
	}
	return d.p.Has(auditRoles...)
}

// Link is path in the page's language, with more query pairs (key,
// value, …).
func (d *pageData) Link(path string, kv ...string) string {
	q := url.Values{"lang": {string(d.Lang)}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return path + "?" + q.Encode()
}

// LangURL is this page in language l, its other parameters kept.
func (d *pageData) LangURL(l string) string {
	q := d.r.URL.Query()
	q.Set("lang", l)
	return d.r.URL.Path + "?" + q.Encode()
}

// when is t in the report zone, "—" when zero.
func when(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(loc).Format("2006-01-02 15:04 MST")
}

// staffPages registers the staff pages on mux (StaffHandler, which
// gives its log and the report's zone).
func (s *Service) staffPages(mux *http.ServeMux, log *slog.Logger, loc *time.Location) {
	for name, typ := range map[string]string{"staff.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml"} {
		body, err := staffPageFS.ReadFile("page/staff/" + name)
		if err != nil {
			panic(err) // embedded above
		}
		mux.HandleFunc("GET /assets/"+name, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", typ)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
		})
	}
	var render renderFunc = func(w http.ResponseWriter, r *http.Request, status int, page, title string, body any) {
		d := &pageData{Lang: pageLang(r),
			Title: title, Page: page, Body: body, CSRF: CSRFTokenFrom(r.Context()), p: PrincipalFrom(r.Context()), r: r, zone: loc}
		if v, ok := body.(interface{ localise(*pageData) }); ok {
			v.localise(d)
		}
		var buf bytes.Buffer
		if err := staffTemplates[page].ExecuteTemplate(&buf, "layout", d); err != nil {
			s.internal(w, log, err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Vary", "Accept-Language")
		w.WriteHeader(status)
		w.Write(buf.Bytes())
	}
	mux.Handle("GET /dashboard", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := PrincipalFrom(r.Context())
		now := s.cfg.Now().In(loc)
		to, err := dayParam(r, "to", now)
		if err != nil {
			problem(w, http.StatusBadRequest, "bad-range", err.Error())
			return
		}
		from, err := dayParam(r, "from", to.AddDate(0, 0, -29))
		if err != nil {
			problem(w, http.StatusBadRequest, "bad-range", err.Error())
			return
		}
		q := DashboardQuery{From: from, To: to, Zone: loc}
		if p.Scoped() {
			q.Services = p.Services
		}
		d, err := s.Dashboard(r.Context(), q, !p.Scoped(), !p.Scoped())
		if errors.Is(err, ErrRange) {
			problem(w, http.StatusBadRequest, "bad-range", strings.TrimPrefix(err.Error(), "backoffice: "))
			return
		}
		if err != nil {
			s.internal(w, log, err)
			return
		}
		v, err := dashboardView(d, pageLang(r), from, to, q.Services)
		if err != nil {
			s.internal(w, log, err)
			return
		}
		render(w, r, http.StatusOK, "dashboard", "staff.dash.title", v)
	}), dashboardRoles...))

	mux.Handle("GET /terminals", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		silent := strings.TrimSpace(r.URL.Query().Get("silent"))
		now := s.cfg.Now()
		var q TerminalQuery
		if silent != "" {
			d, err := ParseSilence(silent)
			if err != nil {
				problem(w, http.StatusBadRequest, "bad-silent", err.Error())
				return
			}
			q.SilentSince = now.Add(-d)
		}
		rows, err := s.Terminals(r.Context(), q)
		if err != nil {
			s.internal(w, log, err)
			return
		}
		render(w, r, http.StatusOK, "terminals", "staff.term.title", terminalsView(rows, silent, now, loc))
	}), auditRoles...))

	mux.Handle("GET /alarms", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		state, filter, ok := alarmState(w, r, string(wire.AlarmOpen))
		if !ok {
			return
		}
		q := AlarmQuery{Limit: 500, State: filter}
		as, err := s.Alarms(r.Context(), q)
		if err != nil {
			s.internal(w, log, err)
			return
		}
		v := alarmsView{}
		for _, st := range []string{"open", "acknowledged", "all"} {
			v.States = append(v.States, stateTab{Key: st, Label: "staff.alarm.state." + st, Current: st == state})
		}
		for _, a := range as {
			v.Alarms = append(v.Alarms, alarmRow(a, loc))
		}
		render(w, r, http.StatusOK, "alarms", "staff.alarm.title", v)
	}), auditRoles...))

	showAlarm := func(w http.ResponseWriter, r *http.Request, status int, id int64, errKey string) {
		a, ok := s.alarmOrProblem(w, r, log, id)
		if !ok {
			return
		}
		v := alarmView{alarmRowView: alarmRow(*a, loc), Detail: a.Detail, Open: a.State == wire.AlarmOpen, Error: errKey}
		for _, ev := range a.History {
			v.History = append(v.History, eventView{Type: string(ev.Type), Label: "staff.alarm.event." + string(ev.Type), At: when(ev.At, loc), By: ev.By, Comment: ev.Comment})
		}
		render(w, r, status, "alarm", "staff.alarm.one", v)
	}
	mux.Handle("GET /alarms/{id}", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := alarmID(w, r); ok {
			showAlarm(w, r, http.StatusOK, id, "")
		}
	}), auditRoles...))
	mux.Handle("POST /alarms/{id}", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := alarmID(w, r)
		if !ok {
			return
		}
		// the sign-in checked the form's csrf_token (and bounded the body)
		switch err := s.ackAs(r, log, id, wire.AlarmAck{Comment: r.PostFormValue("comment")}); {
		case errors.Is(err, ErrAck):
			showAlarm(w, r, http.StatusBadRequest, id, "staff.alarm.bad-comment")
		case errors.Is(err, ErrAcknowledged):
			showAlarm(w, r, http.StatusConflict, id, "staff.alarm.already")
		case errors.Is(err, ErrNotFound):
			problem(w, http.StatusNotFound, "unknown-alarm", "no alarm has this id")
		case err != nil:
			s.internal(w, log, err)
		default:
			http.Redirect(w, r, fmt.Sprintf("/alarms/%d?lang=%s", id, pageLang(r)), http.StatusSeeOther)
		}
	}), auditRoles...))

	mux.Handle("GET /reports", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l := pageLang(r)
		now := s.cfg.Now().In(loc)
		cur := Semester{Year: now.Year(), Half: 1 + (int(now.Month())-1)/6}
		sem := cur
		if v := r.URL.Query().Get("semester"); v != "" {
			var err error
			if sem, err = ParseSemester(v); err != nil {
				problem(w, http.StatusBadRequest, "bad-semester", err.Error())
				return
			}
		}
		v := reportsView{Zone: loc.String()}
		for i, s := 0, cur; i < 6; i, s = i+1, s.previous() {
			v.Semesters = append(v.Semesters, semesterOption{Value: s.String(), Label: l.T("staff.reports.option", s.Half, s.Year), Selected: s == sem})
		}
		if !slices.ContainsFunc(v.Semesters, func(o semesterOption) bool { return o.Selected }) {
			v.Semesters = append(v.Semesters, semesterOption{Value: sem.String(), Label: l.T("staff.reports.option", sem.Half, sem.Year), Selected: true})
		}
		from, to := sem.Bounds(loc)
		v.From, v.To = from.Format("2006-01-02"), to.AddDate(0, 0, -1).Format("2006-01-02")
		v.CSV = wire.PathReport + "?" + url.Values{"semester": {sem.String()}}.Encode()
		v.XLSX = wire.PathReport + "?" + url.Values{"semester": {sem.String()}, "format": {"xlsx"}, "lang": {string(l)}}.Encode()
		render(w, r, http.StatusOK, "reports", "staff.reports.title", v)
	}), auditRoles...))

	s.adminPages(mux, render, log, loc)   // accounts and the audit log (staffadmin.go)
	s.renewalPages(mux, render, log, loc) // card data renewals (staffrenewals.go)
	s.ewalletPages(mux, render, log, loc) // top-ups, purses, settlement (staffewallet.go)
}

// renderFunc writes a staff page: its template, title (catalogue key)
// and view, with the layout.
type renderFunc func(w http.ResponseWriter, r *http.Request, status int, page, title string, body any)

// previous is the semester before s.
func (s Semester) previous() Semester {
	if s.Half == 2 {
		return Semester{Year: s.Year, Half: 1}
	}
	return Semester{Year: s.Year - 1, Half: 2}
}

// dayParam reads a date (2006-01-02) from the query, def when absent.
func dayParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	t, err := time.ParseInLocation("2006-01-02", v, def.Location())
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: want a date such as 2026-01-31", name, v)
	}
	return t, nil
}

// ParseSilence reads the silent filter: a Go duration (90m, 24h) or a
// number of days (3d); positive, at most 10 years.
func ParseSilence(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		days, err = strconv.Atoi(n)
		d = time.Duration(days) * 24 * time.Hour
		if days > 3660 {
			d = -1
		}
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 || d > 3660*24*time.Hour {
		return 0, fmt.Errorf("silent %q: want a positive duration such as 24h, 90m or 3d", s)
	}
	return d, nil
}

// dashboardPage is the dashboard's view.
type dashboardPage struct {
	From, To   string
	Total      int64
	OpenAlarms int64
	Scope      string
	Charts     []chartView
}

type chartView struct {
	ID, Title string
	SVG       template.HTML
	Head      []string
	Rows      [][]string
}

func dashboardView(d *Dashboard, l i18n.Lang, from, to time.Time, scope []string) (*dashboardPage, error) {
	v := &dashboardPage{From: from.Format("2006-01-02"), To: to.Format("2006-01-02"), Total: d.Total, OpenAlarms: d.OpenAlarms,
		Scope: strings.Join(scope, ", ")}
	labels := make([]string, len(d.Days))
	days := make([]string, len(d.Days))
	for i, day := range d.Days {
		labels[i], days[i] = day.Format("02-01"), day.Format("2006-01-02")
	}
	add := func(id, key string, series []svgchart.Series, extra func(i int) []string, extraHead ...string) error {
		title := l.T(key)
		svg, err := svgchart.Chart{ID: id + "-svg", Title: title, Desc: l.T("staff.dash.desc", title, v.From, v.To), Labels: labels, Series: series}.SVG()
		if err != nil {
			return err
		}
		c := chartView{ID: id, Title: title, SVG: template.HTML(svg)} // svgchart escapes every text it draws
		for _, s := range series {
			c.Head = append(c.Head, s.Name)
		}
		c.Head = append(c.Head, extraHead...)
		for i := range d.Days {
			row := []string{days[i]}
			for _, s := range series {
				row = append(row, strconv.FormatInt(s.Values[i], 10))
			}
			if extra != nil {
				row = append(row, extra(i)...)
			}
			c.Rows = append(c.Rows, row)
		}
		v.Charts = append(v.Charts, c)
		return nil
	}
	for _, c := range []struct {
		id, key string
		m       map[string][]int64
	}{{"by-service", "staff.dash.by-service", d.ByService}, {"by-institution", "staff.dash.by-institution", d.ByInstitution}, {"by-site", "staff.dash.by-site", d.BySite}} {
		if err := add(c.id, c.key, seriesOf(c.m, len(d.Days)), nil); err != nil {
			return nil, err
		}
	}
	if d.Found != nil {
		series := []svgchart.Series{{Name: l.T("staff.dash.found"), Values: d.Found}, {Name: l.T("staff.dash.not-found"), Values: d.NotFound}}
		rate := func(i int) []string {
			n := d.Found[i] + d.NotFound[i]
			if n == 0 {
				return []string{"—"}
			}
			return []string{fmt.Sprintf("%.1f%%", 100*float64(d.Found[i])/float64(n))}
		}
		if err := add("verifications", "staff.dash.verifications", series, rate, l.T("staff.dash.rate")); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// seriesOf is a map's series in name order (a name with no count at all
// is not there: the stores return only what they counted).
func seriesOf(m map[string][]int64, n int) []svgchart.Series {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]svgchart.Series, 0, len(names))
	for _, k := range names {
		out = append(out, svgchart.Series{Name: k, Values: m[k][:n]})
	}
	return out
}

// terminalsPage is the terminals page's view.
type terminalsPage struct {
	Silent string
	Rows   []terminalView
}

type terminalView struct {
	ID, Site, Contact, LastRecord, Agent, Backlog, Gaps string
	SAMs                                                []string
	Records                                             int64
	GapCount                                            int
	Silent                                              bool // no contact for a day
	backlogSince                                        time.Time
}

func terminalsView(rows []TerminalRow, silent string, now time.Time, loc *time.Location) *terminalsPage {
	v := &terminalsPage{Silent: silent}
	for _, t := range rows {
		tv := terminalView{ID: t.ID, Site: t.Site, Contact: when(t.LastContact, loc), LastRecord: when(t.LastRecord, loc), Agent: cmp.Or(t.Agent, "—"),
			Records: t.Records, Silent: t.LastContact.IsZero() || now.Sub(t.LastContact) > 24*time.Hour, Backlog: "—", backlogSince: t.OldestQueued}
		for _, s := range t.SAMs {
			tv.SAMs = append(tv.SAMs, fmt.Sprintf("%s / %d", s.Serial, s.LastCounter))
		}
		if t.Backlog != nil {
			tv.Backlog = strconv.FormatInt(*t.Backlog, 10)
		}
		ranges, missing := t.Gaps()
		tv.GapCount = ranges
		tv.Gaps = "0"
		if ranges > 0 {
			var parts []string
			for _, s := range t.SAMs {
				for _, g := range s.Gaps {
					if g.From == g.To {
						parts = append(parts, strconv.FormatUint(uint64(g.From), 10))
					} else {
						parts = append(parts, fmt.Sprintf("%d–%d", g.From, g.To))
					}
				}
			}
			tv.Gaps = fmt.Sprintf("%d (%s)", missing, strings.Join(parts, ", "))
		}
		v.Rows = append(v.Rows, tv)
	}
	return v
}

// localise puts the backlog's age in the page's language.
func (p *terminalsPage) localise(d *pageData) {
	for i := range p.Rows {
		r := &p.Rows[i]
		if r.Backlog != "—" && !r.backlogSince.IsZero() {
			r.Backlog = d.T("staff.term.backlog-since", r.Backlog, when(r.backlogSince, d.zone))
		}
	}
}

type alarmsView struct {
	States []stateTab
	Alarms []alarmRowView
}

type stateTab struct {
	Key, Label string
	Current    bool
}

type alarmRowView struct {
	ID                                   int64
	Path, Kind, Terminal, SAM, At, AckBy string
	State, StateLabel                    string
}

func alarmRow(a wire.Alarm, loc *time.Location) alarmRowView {
	v := alarmRowView{ID: a.ID, Path: fmt.Sprintf("/alarms/%d", a.ID), Kind: a.Kind, Terminal: cmp.Or(a.TerminalID, "—"), SAM: cmp.Or(a.SAMSerial, "—"),
		At: when(a.At, loc), State: string(a.State), StateLabel: "staff.alarm.state." + string(a.State), AckBy: "—"}
	if a.Counter != 0 {
		v.SAM += fmt.Sprintf(" / %d", a.Counter)
	}
	if a.Acknowledged != nil {
		v.AckBy = a.Acknowledged.By
	}
	return v
}

type alarmView struct {
	alarmRowView
	Detail  string
	Open    bool
	Error   string // catalogue key
	History []eventView
}

type eventView struct {
	Type, Label, At, By, Comment string
}

type reportsView struct {
	Semesters      []semesterOption
	From, To, Zone string
	CSV, XLSX      string
}

type semesterOption struct {
	Value, Label string
	Selected     bool
}
