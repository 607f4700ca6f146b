package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"kpe-agent/internal/i18n"
)

// Backend is what the server serves: the daemon.
type Backend interface {
	Health(loc Locale) Health
	Readers(loc Locale) []Reader
	CardView(reader string, loc Locale) (any, error)
	Prefill(reader string) (Prefill, error)
	Authenticate(ctx context.Context, req AuthRequest) (AuthResult, error)
	// Cancel cancels the workflow on reader (every reader when "": the
	// server passes "" only for a request with "all": true); a page
	// credential (Caller(ctx) not "") cancels only a workflow it started.
	// False when none ran.
	Cancel(ctx context.Context, reader string) bool
	// AnswerPrompt gives the answer to the prompt req.ID waiting on
	// req.Reader (any reader when ""); false when no such prompt waits,
	// or when it belongs to a workflow another page credential started.
	// The answer is AnswerContinue or AnswerCancel.
	AnswerPrompt(ctx context.Context, req PromptRequest) bool
	Queue() (QueueStatus, error)
	// Sync sends the outbox now; a failed attempt's error is worded for loc.
	Sync(ctx context.Context, loc Locale) (SyncResult, error)
	Subscribe(after uint64) ([]Event, <-chan Event, func())
	// Localize words an event's messages for one subscriber.
	Localize(ev Event, loc Locale) Event
	// Language is the terminal's configured language (terminal.language),
	// the last step of the language rule.
	Language() i18n.Lang
	// ErrorFor renders a Backend error: HTTP status and body.
	ErrorFor(err error, loc Locale) (int, Error)
	// KioskView is the self-service view of the card in reader, kept
	// since a successful authentication with service kiosk of that card
	// until its removal; credential is the requester's kiosk credential
	// (KioskCredential): "" (scope full) reads any, another only the view
	// its own authentication left.
	KioskView(reader, credential string) (KioskView, error)
	// KioskPhoto is that view's photo (JPEG), a copy the caller clears
	// after use.
	KioskPhoto(reader, credential string) ([]byte, error)
	// CodesToday are this terminal's records of today, in its time zone:
	// code, service, time and state only.
	CodesToday() (TodayCodes, error)
}

// ServerConfig configures the handler.
type ServerConfig struct {
	// Token is the bearer token every request but the bare health check
	// must carry.
	Token []byte
	// Port is the port the API listens on; Host headers must name it.
	Port int
	// AllowedOrigins are the browser origins (scheme://host[:port]) that
	// may call the API; requests with any other Origin are refused.
	AllowedOrigins []string
	// AllowedHosts are Host names accepted besides 127.0.0.1, [::1] and
	// localhost (for a deliberately remote-reachable API).
	AllowedHosts []string
	// Metrics serves /metrics (nil: 404).
	Metrics http.Handler
	Log     *slog.Logger
	// Heartbeat is the keep-alive period of the event stream (default 15 s).
	Heartbeat time.Duration
	// Kiosk is the self-service kiosk (kiosk.*).
	Kiosk KioskConfig
	// Loket is the counter screen (loket.*).
	Loket LoketConfig
	// MaxEventStreams caps the event streams open at once
	// (api.max_event_streams; 0: DefaultMaxEventStreams): one more is 429
	// CodeTooManyStreams with Retry-After.
	MaxEventStreams int

	now func() time.Time // tests: the kiosk and counter credentials' clock
}

// KioskConfig is the self-service kiosk's part of the API.
type KioskConfig struct {
	// Enabled serves the kiosk page (PathKiosk) and accepts the kiosk
	// credential it hands out; off, the page is 404 and no kiosk cookie
	// counts.
	Enabled bool
	// IdleTimeout and IdleWarning are the page's idle timeout and how
	// long before it the page warns (kiosk.idle_timeout, kiosk.idle_warning).
	IdleTimeout, IdleWarning time.Duration
	// VerifyURL is the back office's verify page (kiosk.verify_url): the
	// receipt's QR code (PathKioskQR) opens <VerifyURL>?code=<code>; ""
	// makes PathKioskQR 404.
	VerifyURL string
	// CardWait is the longest wait for a card the daemon allows
	// (session.max_wait): the page's attract screen keeps a kiosk
	// authentication waiting for the card this long (at most 60 s; 0: 30 s)
	// and then starts another.
	CardWait time.Duration
}

//go:embed openapi.yaml
var openAPI []byte

// The JavaScript client for frontline pages (client.js, an ES module kept
// as it is served) and its TypeScript declarations.
var (
	//go:embed client.js
	clientJSSource []byte
	//go:embed client.d.ts
	clientDTS []byte
	clientJS  = withClientWords(clientJSSource)
)

// clientWordsMarker is where client.js holds the words of its own errors;
// the agent serves it with the catalogue's words in their place.
const clientWordsMarker = "/* kpe:words */ {}"

// clientCodes are the codes of the JavaScript client's own errors: no
// answer from the agent, and an answer that is not the API's. They never
// travel on the wire.
var clientCodes = []string{"network", "bad-response"}

// withClientWords fills client.js's table of its own errors' words, by
// language and audience, from the catalogue (clerk.network, holder.network,
// ...), so that the client says nothing the catalogue does not hold.
func withClientWords(src []byte) []byte {
	words := map[i18n.Lang]map[i18n.Audience]map[string]string{}
	for _, l := range i18n.Langs {
		words[l] = map[i18n.Audience]map[string]string{}
		for _, a := range []i18n.Audience{i18n.Clerk, i18n.Holder} {
			words[l][a] = map[string]string{}
			for _, code := range clientCodes {
				words[l][a][code] = l.T(a.Key(code))
			}
		}
	}
	// json.Marshal escapes <, >, & and U+2028/U+2029: safe in a script
	b, err := json.Marshal(words)
	if err != nil {
		return src // maps of strings always marshal
	}
	return bytes.Replace(src, []byte(clientWordsMarker), []byte("/* kpe:words */ "+string(b)), 1)
}

// NewHandler returns the local API's handler.
func NewHandler(b Backend, c ServerConfig) http.Handler {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.MaxEventStreams <= 0 {
		c.MaxEventStreams = DefaultMaxEventStreams
	}
	hosts := make([]string, 0, len(c.AllowedHosts))
	for _, h := range c.AllowedHosts {
		if n, _, err := net.SplitHostPort(h); err == nil {
			h = n // the port is checked against Port
		}
		hosts = append(hosts, strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), ".")))
	}
	c.AllowedHosts = hosts
	s := &server{b: b, c: c}
	if c.Kiosk.Enabled {
		s.kiosk = newKioskCredentials(c.now)
	}
	if c.Loket.Enabled {
		s.loket = newCredentials(c.now, loketKeep, loketLifetime, "loket-")
		s.loketLogins = newCredentials(c.now, loketLoginKeep, loketLoginLife, "login-")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.refuse(w, r, http.StatusNotFound, CodeNotFound, "")
	})
	// health answers anyone, so an unknown audience is the clerk's there
	mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, r *http.Request) { s.health(w, r, s.localeOf(r)) })
	mux.HandleFunc("GET "+PathReaders, s.auth(s.withLocale(s.readers)))
	mux.HandleFunc("GET "+PathCard, s.auth(s.withLocale(s.card)))
	mux.HandleFunc("GET "+PathPrefill, s.auth(s.withLocale(s.prefill)))
	mux.HandleFunc("POST "+PathAuth, s.auth(s.authenticate))
	mux.HandleFunc("POST "+PathCancel, s.auth(s.cancel))
	mux.HandleFunc("POST "+PathPrompt, s.auth(s.prompt))
	mux.HandleFunc("GET "+PathQueue, s.auth(s.withLocale(s.queue)))
	mux.HandleFunc("POST "+PathSync, s.auth(s.withLocale(s.sync)))
	mux.HandleFunc("GET "+PathEvents, s.auth(s.withLocale(s.events)))
	mux.HandleFunc("GET "+PathOpenAPI, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(openAPI)
	})
	// the JavaScript client: no token, so that a page can load it before it
	// has one (the guard's Host and Origin checks still apply)
	mux.HandleFunc("GET "+PathClientJS, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Write(clientJS)
	})
	mux.HandleFunc("GET "+PathClientDTS, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/typescript; charset=utf-8")
		w.Write(clientDTS)
	})
	if c.Metrics != nil {
		mux.Handle("GET "+PathMetrics, s.auth(c.Metrics.ServeHTTP))
	}
	s.routeKiosk(mux)
	s.routeLoket(mux)
	s.routeRenewal(mux)
	s.routePurse(mux)
	s.routePay(mux)
	return s.guard(s.scope(mux))
}

type server struct {
	b     Backend
	c     ServerConfig
	kiosk *credentials // nil: the kiosk is off
	// loket (nil: the counter screen is off) are the counter credentials,
	// loketLogins the one-time login codes that open them
	loket, loketLogins *credentials
	// streams are the event streams open now (at most MaxEventStreams)
	streams atomic.Int64
}

// DefaultMaxEventStreams is ServerConfig.MaxEventStreams's default.
const DefaultMaxEventStreams = 16

// streamRetryAfter is the Retry-After of a refused event stream, in
// seconds: a client reconnecting in a loop waits this long.
const streamRetryAfter = "5"

// Codes of the API's own refusals.
const (
	CodeUnauthorized    = "unauthorized"
	CodeForbiddenOrigin = "forbidden-origin"
	CodeForbiddenHost   = "forbidden-host"
	CodeNotFound        = "not-found"
	CodeBadRequest      = "bad-request"
	CodeForbiddenScope  = "forbidden-scope"  // the credential may not do this (scope.go)
	CodeTooManyStreams  = "too-many-streams" // 429: api.max_event_streams event streams are open
)

// locale applies the language rule (i18n.Negotiate) to a request: its
// lang parameter, then body's lang (given by the caller, "" when there is
// no body), then Accept-Language, then the configured language. The
// audience is the audience parameter, else the body's, else the clerk; an
// unknown audience is an error.
func (s *server) locale(r *http.Request, bodyLang, bodyAudience string) (Locale, error) {
	conf := i18n.Default
	if s.b != nil {
		conf = s.b.Language()
	}
	q := r.URL.Query()
	loc := Locale{Lang: i18n.Negotiate(q.Get("lang"), bodyLang, r.Header.Get("Accept-Language"), conf)}
	if isKiosk(r) {
		// the kiosk credential speaks to the card holder, whatever it asks
		loc.Audience = i18n.Holder
		return loc, nil
	}
	if isCounter(r) {
		// the counter screen speaks to the clerk
		loc.Audience = i18n.Clerk
		return loc, nil
	}
	a := q.Get("audience")
	if a == "" {
		a = bodyAudience
	}
	var err error
	loc.Audience, err = i18n.ParseAudience(a)
	return loc, err
}

// localeOf is locale for a request without a body, for the API's own
// refusals: an unknown audience is the clerk's (the refusal says so).
func (s *server) localeOf(r *http.Request) Locale {
	loc, _ := s.locale(r, "", "")
	return loc.withAudience(i18n.Clerk)
}

// refuse answers with one of the API's own refusals, worded by the
// request's locale.
func (s *server) refuse(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	s.refuseIn(w, s.localeOf(r), status, code, detail)
}

// refuseIn answers with a refusal worded for loc. The technical detail is
// added in parentheses for the clerk (and the developer behind the
// counter application), never for a card holder.
func (s *server) refuseIn(w http.ResponseWriter, loc Locale, status int, code, detail string) {
	msg := loc.Lang.T(loc.Audience.Key(code))
	if detail != "" && loc.Audience != i18n.Holder {
		msg += " (" + detail + ")"
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kpe-agent"`)
	}
	writeJSON(w, status, ErrorBody{Error: Error{Code: code, Message: msg}})
}

// guard checks Host and Origin on every request, answers CORS preflights
// for allowed origins, and bounds request bodies. A page from another
// site, or one reached through DNS rebinding (its Host is then the
// attacker's name), cannot drive the card reader.
func (s *server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			s.c.Log.Warn("local API: request with a foreign Host refused", "host", r.Host, "path", r.URL.Path)
			s.refuse(w, r, http.StatusForbidden, CodeForbiddenHost, "")
			return
		}
		origin := r.Header.Get("Origin")
		if origin != "" && r.TLS != nil && !strings.HasPrefix(strings.ToLower(origin), "https://") {
			// served over TLS (api.tls_cert_file): a page that came over
			// plain http may have been changed on its way, whatever
			// api.allowed_origins says
			s.c.Log.Warn("local API: request from a non-https Origin refused (the API serves HTTPS)", "origin", origin, "path", r.URL.Path)
			s.refuse(w, r, http.StatusForbidden, CodeForbiddenOrigin, "")
			return
		}
		if origin != "" && !s.sameOrigin(r, origin) {
			if !slices.Contains(s.c.AllowedOrigins, origin) {
				s.c.Log.Warn("local API: request from a foreign Origin refused", "origin", origin, "path", r.URL.Path)
				s.refuse(w, r, http.StatusForbidden, CodeForbiddenOrigin, "")
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "GET, POST")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

// sameOrigin says origin is the agent's own (the request's Host, checked
// already): a page the agent served, such as the kiosk's, which browsers
// send Origin with on POST.
func (s *server) sameOrigin(r *http.Request, origin string) bool {
	return strings.EqualFold(origin, ownOrigin(r))
}

func (s *server) hostAllowed(host string) bool {
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		h, port = host, ""
	}
	if s.c.Port != 0 && port != strconv.Itoa(s.c.Port) {
		return false
	}
	h = strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
	switch h {
	case "127.0.0.1", "::1", "localhost":
		return true
	}
	return slices.Contains(s.c.AllowedHosts, h)
}

func (s *server) tokenOK(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || len(s.c.Token) == 0 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), s.c.Token) == 1
}

// auth lets through a request with the token, or with the kiosk or
// counter credential (scope has let it through to this path).
func (s *server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.tokenOK(r) && !hasPageCredential(r) {
			s.refuse(w, r, http.StatusUnauthorized, CodeUnauthorized, "")
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func (s *server) fail(w http.ResponseWriter, err error, loc Locale) {
	status, e := s.b.ErrorFor(err, loc)
	if status < 400 {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, ErrorBody{Error: e})
}

// refuseBody answers a request whose body decode or noBody refused:
// 400 bad-request, worded by the catalogue for the kind of refusal (the
// clerk's sentence names the key; the card holder is told to start
// again).
func (s *server) refuseBody(w http.ResponseWriter, r *http.Request, err error) {
	loc := s.localeOf(r)
	var be *BodyError
	if !errors.As(err, &be) {
		s.refuseIn(w, loc, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	var msg string
	if loc.Audience == i18n.Holder {
		msg = loc.Lang.T(loc.Audience.Key(be.Kind))
	} else {
		msg = loc.Lang.T(loc.Audience.Key(be.Kind), be.args()...)
	}
	writeJSON(w, http.StatusBadRequest, ErrorBody{Error: Error{Code: CodeBadRequest, Message: msg}})
}

// withLocale words a handler's answer by the request's locale; an unknown
// audience is a bad request.
func (s *server) withLocale(h func(http.ResponseWriter, *http.Request, Locale)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		loc, err := s.locale(r, "", "")
		if err != nil {
			s.refuseIn(w, loc.withAudience(i18n.Clerk), http.StatusBadRequest, CodeBadRequest, err.Error())
			return
		}
		h(w, r, loc)
	}
}

// withAudience is loc with audience a when it names none.
func (loc Locale) withAudience(a i18n.Audience) Locale {
	if loc.Audience == "" {
		loc.Audience = a
	}
	return loc
}

func (s *server) health(w http.ResponseWriter, r *http.Request, loc Locale) {
	h := s.b.Health(loc)
	if !s.tokenOK(r) && !hasPageCredential(r) {
		// without the token: up or not, nothing more
		writeJSON(w, http.StatusOK, map[string]string{"status": h.Status})
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *server) readers(w http.ResponseWriter, r *http.Request, loc Locale) {
	writeJSON(w, http.StatusOK, s.b.Readers(loc))
}

func (s *server) card(w http.ResponseWriter, r *http.Request, loc Locale) {
	v, err := s.b.CardView(r.URL.Query().Get("reader"), loc)
	if err != nil {
		s.fail(w, err, loc)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *server) prefill(w http.ResponseWriter, r *http.Request, loc Locale) {
	p, err := s.b.Prefill(r.URL.Query().Get("reader"))
	if err != nil {
		s.fail(w, err, loc)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *server) authenticate(w http.ResponseWriter, r *http.Request) {
	var req AuthRequest
	if err := decode(r, &req); err != nil {
		s.refuseBody(w, r, err)
		return
	}
	loc, err := s.locale(r, req.Lang, req.Audience)
	if err != nil {
		// worded in the language the request asked for, body included
		s.refuseIn(w, loc.withAudience(i18n.Clerk), http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	if isKiosk(r) {
		if req.Service != ServiceKiosk {
			s.refuseIn(w, loc, http.StatusForbidden, CodeForbiddenScope, "service "+req.Service)
			return
		}
		req.Operator = ServiceKiosk // the clerk is nobody: recorded as the kiosk
	}
	if isCounter(r) {
		switch {
		case req.Service == ServiceKiosk:
			// a kiosk session is the card holder's own, at a kiosk
			s.refuseIn(w, loc, http.StatusForbidden, CodeForbiddenScope, "service "+req.Service)
			return
		case req.Operator == "":
			s.refuseIn(w, loc, http.StatusBadRequest, CodeBadRequest, "operator: the clerk's ID is required")
			return
		}
	}
	req.Lang, req.Audience = string(loc.Lang), string(loc.Audience)
	res, err := s.b.Authenticate(r.Context(), req)
	if err != nil {
		s.fail(w, err, loc)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *server) cancel(w http.ResponseWriter, r *http.Request) {
	var req CancelRequest
	if err := decode(r, &req); err != nil {
		s.refuseBody(w, r, err)
		return
	}
	// an empty cancel names nothing: it cancels nothing (every workflow
	// only when asked in so many words)
	switch {
	case req.Reader == "" && !req.All:
		s.refuseBody(w, r, &BodyError{Kind: CancelUnnamed})
		return
	case req.Reader != "" && req.All:
		s.refuseBody(w, r, &BodyError{Kind: CancelBoth})
		return
	}
	if !s.b.Cancel(r.Context(), req.Reader) {
		s.refuse(w, r, http.StatusNotFound, CodeNotFound, "no workflow runs")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// prompt answers the prompt a workflow waits on: 204 when taken, 404
// when no such prompt waits (a wrong ID, or one already answered or timed
// out).
func (s *server) prompt(w http.ResponseWriter, r *http.Request) {
	var req PromptRequest
	if err := decode(r, &req); err != nil {
		s.refuseBody(w, r, err)
		return
	}
	switch {
	case req.ID == "":
		s.refuse(w, r, http.StatusBadRequest, CodeBadRequest, "id: the prompt's id is required")
		return
	case req.Answer != AnswerContinue && req.Answer != AnswerCancel:
		s.refuse(w, r, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("answer %q: want %s or %s", req.Answer, AnswerContinue, AnswerCancel))
		return
	}
	if !s.b.AnswerPrompt(r.Context(), req) {
		s.refuse(w, r, http.StatusNotFound, CodeNotFound, "no such prompt waits")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) queue(w http.ResponseWriter, r *http.Request, loc Locale) {
	q, err := s.b.Queue()
	if err != nil {
		s.fail(w, err, loc)
		return
	}
	writeJSON(w, http.StatusOK, q)
}

func (s *server) sync(w http.ResponseWriter, r *http.Request, loc Locale) {
	if err := noBody(r); err != nil {
		s.refuseBody(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	res, err := s.b.Sync(ctx, loc)
	if err != nil {
		s.fail(w, err, loc)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// events streams Server-Sent Events: "id: <seq>", "event: <type>",
// "data: <Event JSON>". A client reconnecting with Last-Event-ID gets the
// events it missed while the agent still holds them.
// sseWriteTimeout bounds each write of the event stream.
const sseWriteTimeout = 30 * time.Second

func (s *server) events(w http.ResponseWriter, r *http.Request, loc Locale) {
	// each stream holds a goroutine, a subscription and a connection
	// until it closes: at most MaxEventStreams at once
	if n := s.streams.Add(1); n > int64(s.c.MaxEventStreams) {
		s.streams.Add(-1)
		s.c.Log.Warn("local API: event stream refused: too many open", "open", n-1, "max", s.c.MaxEventStreams)
		w.Header().Set("Retry-After", streamRetryAfter)
		e := Error{Code: CodeTooManyStreams, Message: loc.Lang.T(loc.Audience.Key(CodeTooManyStreams)), Retriable: true}
		writeJSON(w, http.StatusTooManyRequests, ErrorBody{Error: e})
		return
	}
	defer s.streams.Add(-1)
	// every write has a deadline: a client that stops reading is dropped
	// instead of holding its goroutine until the agent stops
	rc := http.NewResponseController(w)
	write := func(format string, a ...any) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		if _, err := fmt.Fprintf(w, format, a...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	var after uint64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		after, _ = strconv.ParseUint(v, 10, 64)
	}
	backlog, ch, stop := s.b.Subscribe(after)
	defer stop()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if !write(": kpe-agent events\n\n") {
		return
	}
	send := func(ev Event) bool {
		b, err := json.Marshal(s.b.Localize(ev, loc))
		if err != nil {
			return false
		}
		return write("id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Type, b)
	}
	for _, ev := range backlog {
		if !send(ev) {
			return
		}
	}
	tick := time.NewTicker(s.c.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-ch:
			if !ok || !send(ev) {
				return
			}
		case <-tick.C:
			if !write(": keep-alive\n\n") {
				return
			}
		}
	}
}
