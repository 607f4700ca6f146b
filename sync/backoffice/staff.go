package backoffice

import (
	"bytes"
	"cmp"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"kpe-agent/sync/wire"
)

// StaffConfig configures the staff listener's handler (StaffHandler).
// The zero value serves loopback names only, in UTC, with the default
// verification limits.
type StaffConfig struct {
	Log  *slog.Logger   // nil: no log
	Zone *time.Location // of the semester report; nil: UTC

	// Hosts are the Host names (or IP addresses) the listener answers
	// to besides localhost, 127.0.0.1 and ::1, which it always answers
	// to: a request naming any other host is refused (403
	// forbidden-host), which is what a page reached through DNS
	// rebinding sends. A port in an entry is ignored, and so is the
	// request's (behind a proxy it is the proxy's). StaffHosts builds
	// the list from the listen address.
	Hosts []string

	// VerifyPerClient limits GET /v1/verify/{code} per client address
	// (an IPv6 client by its /64), VerifyTotal for all clients together;
	// beyond either the answer is 429 with Retry-After. A zero field
	// takes the default (DefaultVerifyPerClient, DefaultVerifyTotal).
	VerifyPerClient, VerifyTotal Limit
	// MaxClients bounds the addresses the per-client limit tracks
	// (default DefaultMaxClients). Idle ones are dropped; beyond the
	// bound, new addresses share one limit.
	MaxClients int

	// LoginPerClient limits POST /login per client address (default
	// DefaultLoginPerClient); beyond it the answer is 429 with
	// Retry-After. The lock-out per account is separate (accounts.go).
	LoginPerClient Limit

	// OIDC, when set, adds sign-in through the institution's OpenID
	// Connect provider (NewOIDC): GET /login/oidc and its callback.
	OIDC *OIDC
}

// Limit is a token bucket: Rate requests a second on average, Burst at
// once.
type Limit struct {
	Rate  float64
	Burst int
}

// The default verification limits: a clerk checking forms by hand is far
// below them; a script walking the code space is held to a crawl (the
// codes are 75 bits: guessing is hopeless anyway, the limit keeps the
// store's load bounded).
var (
	DefaultVerifyPerClient = Limit{Rate: 1, Burst: 20}
	DefaultVerifyTotal     = Limit{Rate: 20, Burst: 100}
)

// DefaultMaxClients is StaffConfig.MaxClients' default.
const DefaultMaxClients = 10000

func (l Limit) orDefault(d Limit) Limit {
	if l.Rate <= 0 {
		l.Rate = d.Rate
	}
	if l.Burst <= 0 {
		l.Burst = d.Burst
	}
	return l
}

// staffCSP is the policy of every staff answer: the page's own files
// only, no inline script or style, no framing, no plugins.
const staffCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

//go:embed page/verify.js page/verify.css
var staffAssets embed.FS

// StaffHandler serves back-office staff: the sign-in (GET/POST /login,
// POST /logout), the code verification page (/) and its files
// (/assets/), GET /v1/verify/{code}, GET /v1/terminals/{id}, GET
// /v1/alarms (?state=open|acknowledged|all), GET /v1/alarms/{id} (with
// its history), POST /v1/alarms/{id}/ack, GET
// /v1/reports/semester?semester=2026-1 (CSV, or XLSX with
// &format=xlsx), GET /v1/audit and the admin's /v1/accounts; and the
// staff pages (staffpages.go, staffadmin.go, staffrenewals.go,
// staffewallet.go): /dashboard, /terminals, /alarms, /reports,
// /accounts, /audit, /renewals, /topups, /purses and /settlement.
//
// Every request is checked first for its Host (StaffConfig.Hosts); every
// answer carries the security headers (staffCSP, nosniff, no framing, no
// referrer, no caching); everything but /login, /assets/, GET
// /v1/health and GET /metrics needs a signed-in account with a role the
// route allows (docs/staff-signin.md); verification and sign-in are rate
// limited; a request that changes state needs the session's CSRF token,
// and a cross-site browser request that changes state is refused (403
// cross-site). Verifications, report downloads, sign-ins and outs,
// account changes and alarm acknowledgements go into the audit log.
func (s *Service) StaffHandler(c StaffConfig) http.Handler {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	loc := cmp.Or(c.Zone, time.UTC)
	limits := newVerifyLimiter(c.VerifyPerClient.orDefault(DefaultVerifyPerClient), c.VerifyTotal.orDefault(DefaultVerifyTotal),
		cmp.Or(c.MaxClients, DefaultMaxClients), log)
	auth := newStaffAuth(s, c.LoginPerClient.orDefault(DefaultLoginPerClient), cmp.Or(c.MaxClients, DefaultMaxClients), log)
	staff := func(roles ...Role) func(http.HandlerFunc) http.Handler {
		return func(f http.HandlerFunc) http.Handler { return requireRole(f, roles...) }
	}
	anyRole, auditor := staff(Roles...), staff(auditRoles...)

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.PathHealth, health)
	mux.Handle("GET /metrics", s.MetricsHandler()) // Prometheus (metrics.go): staff network only, like the rest
	mux.Handle("GET /{$}", anyRole(serveVerifyPage))
	mux.HandleFunc("GET /login", auth.getLogin)
	mux.HandleFunc("POST /login", auth.postLogin)
	mux.Handle("POST /logout", anyRole(auth.postLogout))
	if c.OIDC != nil {
		auth.oidc = c.OIDC
		mux.HandleFunc("GET "+oidcStart, auth.oidcBegin)
		mux.HandleFunc("GET "+oidcCallback, auth.oidcCallback)
	}
	s.staffPages(mux, log, loc) // the staff pages (staffpages.go)
	s.topUpAPI(mux, log)        // the top-ups (httptopup.go)
	for _, name := range []string{"verify.js", "verify.css"} {
		body, err := staffAssets.ReadFile("page/" + name)
		if err != nil {
			panic(err) // embedded above
		}
		typ := "text/javascript; charset=utf-8"
		if strings.HasSuffix(name, ".css") {
			typ = "text/css; charset=utf-8"
		}
		mux.HandleFunc("GET /assets/"+name, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", typ)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
		})
	}
	mux.Handle("GET "+wire.PathVerify+"{code}", anyRole(func(w http.ResponseWriter, r *http.Request) {
		if wait, ok := limits.allow(r.RemoteAddr, time.Now()); !ok {
			secs := setRetryAfter(w, wait)
			problem(w, http.StatusTooManyRequests, "rate-limited", fmt.Sprintf("too many verifications; try again in %d s", secs))
			return
		}
		v, err := s.Verify(r.Context(), r.PathValue("code"))
		if err != nil {
			s.internal(w, log, err)
			return
		}
		p := PrincipalFrom(r.Context())
		outcome, detail := "valid", ""
		if v.Valid && !p.MaySee(v.Service) {
			// another service's record: exactly what an unknown code gets
			v, detail = &wire.Verdict{Valid: false, Code: v.Code, Reason: "unknown"}, "another service's record (out of scope)"
		}
		if !v.Valid {
			outcome = "invalid: " + v.Reason
		}
		if err := s.audit(r.Context(), p, AuditVerify, v.Code, r.RemoteAddr, outcome, detail); err != nil {
			s.internal(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}))
	mux.Handle("GET "+wire.PathTerminal+"{id}", auditor(func(w http.ResponseWriter, r *http.Request) {
		st, err := s.Terminal(r.Context(), r.PathValue("id"))
		if errors.Is(err, ErrNotFound) {
			problem(w, http.StatusNotFound, "unknown-terminal", "no record from this terminal has arrived")
			return
		}
		if err != nil {
			s.internal(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	}))
	mux.Handle("GET "+wire.PathAlarms, auditor(func(w http.ResponseWriter, r *http.Request) {
		limit, err := strconv.Atoi(cmp.Or(r.URL.Query().Get("limit"), "100"))
		if err != nil || limit < 1 || limit > 10000 {
			problem(w, http.StatusBadRequest, "bad-limit", "limit must be 1..10000")
			return
		}
		_, state, ok := alarmState(w, r, "all")
		if !ok {
			return
		}
		q := AlarmQuery{Limit: limit, State: state}
		a, err := s.Alarms(r.Context(), q)
		if err != nil {
			s.internal(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"alarms": nonNil(a)})
	}))
	mux.Handle("GET "+wire.PathAlarms+"/{id}", auditor(func(w http.ResponseWriter, r *http.Request) {
		id, ok := alarmID(w, r)
		if !ok {
			return
		}
		if a, ok := s.alarmOrProblem(w, r, log, id); ok {
			writeJSON(w, http.StatusOK, a)
		}
	}))
	mux.Handle("POST "+wire.PathAlarms+"/{id}/ack", auditor(func(w http.ResponseWriter, r *http.Request) {
		id, ok := alarmID(w, r)
		if !ok {
			return
		}
		ack, err := decodeAck(w, r)
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, errMediaType) {
				status = http.StatusUnsupportedMediaType
			}
			problem(w, status, "bad-ack", err.Error())
			return
		}
		switch err := s.ackAs(r, log, id, ack); {
		case errors.Is(err, ErrAck):
			problem(w, http.StatusBadRequest, "bad-ack", strings.TrimPrefix(err.Error(), "backoffice: "))
		case errors.Is(err, ErrNotFound):
			problem(w, http.StatusNotFound, "unknown-alarm", "no alarm has this id")
		case errors.Is(err, ErrAcknowledged):
			problem(w, http.StatusConflict, "already-acknowledged", "the alarm is acknowledged already; its history shows by whom")
		case err != nil:
			s.internal(w, log, err)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	mux.Handle("GET "+wire.PathReport, auditor(func(w http.ResponseWriter, r *http.Request) {
		sem, err := ParseSemester(r.URL.Query().Get("semester"))
		if err != nil {
			problem(w, http.StatusBadRequest, "bad-semester", err.Error())
			return
		}
		format := cmp.Or(r.URL.Query().Get("format"), "csv")
		if format != "csv" && format != "xlsx" {
			problem(w, http.StatusBadRequest, "bad-format", fmt.Sprintf("format %q: want csv (the default) or xlsx", format))
			return
		}
		lines, err := s.Report(r.Context(), sem, loc)
		if err != nil {
			s.internal(w, log, err)
			return
		}
		name := fmt.Sprintf("ktpel-usage-%s.%s", sem, format)
		if err := s.audit(r.Context(), PrincipalFrom(r.Context()), AuditReport, sem.String(), r.RemoteAddr, "ok", format); err != nil {
			s.internal(w, log, err)
			return
		}
		if format == "csv" {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, name))
			WriteReportCSV(w, lines)
			return
		}
		// The whole workbook first: a failure is a problem answer, not
		// half a file.
		var buf bytes.Buffer
		lang := pageLang(r)
		if err := WriteReportXLSX(&buf, ReportMeta{Semester: sem, Zone: loc, Lang: lang, Created: time.Now()}, lines); err != nil {
			s.internal(w, log, err)
			return
		}
		w.Header().Set("Content-Type", XLSXType)
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, name))
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.Write(buf.Bytes())
	}))
	s.accountRoutes(mux, log)
	s.purseRoutes(mux, log, auditor) // staffpurse.go: the purse ledger and the settlement

	// Besides the session's CSRF token (signin.go), a browser request
	// that is not same-origin (Sec-Fetch-Site, or else Origin against
	// Host) is refused for every method but GET, HEAD and OPTIONS.
	// Clients that send neither header (curl, scripts) are not browsers
	// and pass this check (not the token's).
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Warn("staff: cross-site request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"),
			"sec_fetch_site", r.Header.Get("Sec-Fetch-Site"), "client", r.RemoteAddr)
		problem(w, http.StatusForbidden, "cross-site", "cross-site requests that change state are refused")
	}))
	guarded := csrf.Handler(auth.wrap(mux))

	hosts := make([]string, 0, len(c.Hosts)+3)
	for _, h := range append([]string{"localhost", "127.0.0.1", "::1"}, c.Hosts...) {
		hosts = append(hosts, hostName(h))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", staffCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if !slices.Contains(hosts, hostName(r.Host)) {
			log.Warn("staff: request with a foreign Host refused", "host", r.Host, "path", r.URL.Path, "client", r.RemoteAddr)
			problem(w, http.StatusForbidden, "forbidden-host", "this server does not answer to that host name")
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

// alarmState reads an alarm list's ?state= (def when absent): the value,
// and the filter it means ("" for all). Anything but open, acknowledged
// and all is answered 400 bad-state, and ok is false.
func alarmState(w http.ResponseWriter, r *http.Request, def string) (v string, state wire.AlarmState, ok bool) {
	v = cmp.Or(r.URL.Query().Get("state"), def)
	switch v {
	case "all":
		return v, "", true
	case string(wire.AlarmOpen), string(wire.AlarmAcknowledged):
		return v, wire.AlarmState(v), true
	}
	problem(w, http.StatusBadRequest, "bad-state", fmt.Sprintf("state %q: want open, acknowledged or all (the default here: %s)", v, def))
	return v, "", false
}

// alarmOrProblem is alarm id with its history; when there is none it
// answers 404 unknown-alarm (500 on a store failure) and ok is false.
func (s *Service) alarmOrProblem(w http.ResponseWriter, r *http.Request, log *slog.Logger, id int64) (a *wire.Alarm, ok bool) {
	a, err := s.Alarm(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		problem(w, http.StatusNotFound, "unknown-alarm", "no alarm has this id")
	case err != nil:
		s.internal(w, log, err)
	default:
		return a, true
	}
	return nil, false
}

// ackAs acknowledges alarm id as the request's principal, and logs and
// audits it (done or refused): the API and the alarm page both use it.
func (s *Service) ackAs(r *http.Request, log *slog.Logger, id int64, ack wire.AlarmAck) error {
	p := PrincipalFrom(r.Context())
	err := s.AckAlarm(r.Context(), id, p.name(), ack)
	outcome := "ok"
	if err != nil {
		outcome = "refused: " + strings.TrimPrefix(err.Error(), "backoffice: ")
	}
	if aerr := s.audit(r.Context(), p, AuditAlarmAck, strconv.FormatInt(id, 10), r.RemoteAddr, outcome, ack.Comment); aerr != nil && err == nil {
		err = aerr
	}
	if err == nil {
		log.Info("staff: alarm acknowledged", "alarm", id, "by", p.name(), "client", r.RemoteAddr)
	}
	return err
}

// maxAckBody bounds the body of POST /v1/alarms/{id}/ack: the longest
// acceptable acknowledgement, every character escaped, fits.
const maxAckBody = 8 << 10

var errMediaType = errors.New("the body must be JSON (Content-Type: application/json)")

// decodeAck reads an acknowledgement strictly: a JSON body holding one
// object with only the key comment, nothing after it (who acknowledges
// is the session's account). CheckAck judges the value.
func decodeAck(w http.ResponseWriter, r *http.Request) (wire.AlarmAck, error) {
	var a wire.AlarmAck
	if mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
		return a, errMediaType
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAckBody))
	if err != nil {
		return a, fmt.Errorf("the body is unreadable or longer than %d bytes", maxAckBody)
	}
	if !utf8.Valid(body) {
		// encoding/json would turn the bad bytes into U+FFFD
		return a, errors.New("the body is not valid UTF-8")
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return a, errors.New(`the body must be one JSON object: {"comment": "..."}`)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return a, fmt.Errorf("the body is not an acknowledgement: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return a, errors.New("the body must hold one JSON object and nothing after it")
	}
	return a, nil
}

// alarmID is the {id} of an alarm path: a positive decimal integer, else
// a 400 answer is written and ok is false.
func alarmID(w http.ResponseWriter, r *http.Request) (id int64, ok bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		problem(w, http.StatusBadRequest, "bad-alarm-id", "an alarm id is a positive whole number")
		return 0, false
	}
	return id, true
}

// hostName is the host of a Host header or a configured name, as
// compared: without port, brackets and a final dot, lower case.
func hostName(host string) string {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
}

// StaffHosts is StaffConfig.Hosts for a listener on listen (host:port)
// and the names staff reach it by (--staff-host): the names, and the
// listen address's host when it is one; for a listener on every address
// (":8080", "0.0.0.0:8080", "[::]:8080") the machine's interface
// addresses instead. A name must be a bare host name or IP address
// (a port is allowed and ignored).
func StaffHosts(listen string, names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		h := hostName(n)
		if h == "" || strings.ContainsAny(h, "/@?#* \t") || strings.Contains(n, "://") {
			return nil, fmt.Errorf("staff host %q: want a host name or IP address, such as bo.example.go.id", n)
		}
		out = append(out, h)
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("staff listen address %q: %v", listen, err)
	}
	if ip, err := netip.ParseAddr(host); host != "" && (err != nil || !ip.IsUnspecified()) {
		return append(out, hostName(host)), nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("staff listen address %q: the machine's addresses: %v", listen, err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().WithZone("").String())
		}
	}
	return out, nil
}
