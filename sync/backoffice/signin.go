package backoffice

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"
)

// Staff sign-in (docs/staff-signin.md): accounts with argon2id password
// hashes (accounts.go), server-side sessions (scs) in the back office's
// own store so several nodes share them, a CSRF token per session, login
// rate limits per client address and a lock-out per account.

// Session timing.
const (
	SessionIdleTimeout = 30 * time.Minute
	SessionLifetime    = 8 * time.Hour
)

// DefaultLoginPerClient is StaffConfig.LoginPerClient's default: ten
// attempts at once, then one every six seconds, per client address.
var DefaultLoginPerClient = Limit{Rate: 1.0 / 6, Burst: 10}

// The session cookie: __Host- over TLS (the browser then insists on
// Secure, Path=/ and no Domain, so a sibling host cannot plant one).
const (
	sessionCookie       = "kpe_staff"
	secureSessionCookie = "__Host-kpe_staff"
	loginCookie         = "kpe_login_csrf"
	secureLoginCookie   = "__Host-kpe_login_csrf"
	sessionAccount      = "account"
	sessionCSRF         = "csrf"
	sessionSince        = "since" // sign-in time by the Service's clock: SessionLifetime is judged by it too
)

// sessionStore is scs's store over an AccountStore: the sessions live in
// the back office's database (PostgreSQL table staff_sessions, or the
// bbolt bucket "sessions"), not in a second connection pool or file, and
// expiry is judged by the Service's clock (Config.Now). scs keeps the
// SHA-256 of the token there (HashTokenInStore), not the token.
type sessionStore struct {
	st     AccountStore
	now    func() time.Time
	recent *recentCommits
}

// sessionTouch is how far a session's expiry may move before it is
// written again when nothing else in it changed. scs commits the session
// on every request to push its idle expiry on (IdleTimeout), which would
// be a database write (and a WAL flush) per staff request, verification
// included; the idle timeout is instead kept to within this much.
const sessionTouch = time.Minute

// recentCommits remembers, per session (the token's hash, as stored),
// what this node last wrote: the data's SHA-256 and the expiry.
type recentCommits struct {
	mu sync.Mutex
	m  map[string]recentCommit
}

type recentCommit struct {
	sum    [32]byte
	expiry time.Time
}

// maxRecentCommits bounds recentCommits; beyond it the expired entries
// go, and if that is not enough, all of them (the next commit of each
// session is then written, as without the cache).
const maxRecentCommits = 10000

// skip reports whether a commit of data with expiry may be left out: this
// node wrote the same data less than sessionTouch before, with an expiry
// not yet passed.
func (r *recentCommits) skip(token string, sum [32]byte, expiry, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.m[token]
	return ok && c.sum == sum && c.expiry.After(now) && expiry.Sub(c.expiry) < sessionTouch
}

func (r *recentCommits) note(token string, sum [32]byte, expiry, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.m) >= maxRecentCommits {
		for k, c := range r.m {
			if !c.expiry.After(now) {
				delete(r.m, k)
			}
		}
		if len(r.m) >= maxRecentCommits {
			clear(r.m)
		}
	}
	r.m[token] = recentCommit{sum, expiry}
}

func (r *recentCommits) forget(token string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, token)
}

func (s sessionStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}
func (s sessionStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}
func (s sessionStore) Delete(token string) error { return s.DeleteCtx(context.Background(), token) }
func (s sessionStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	return s.st.SessionFind(ctx, token, s.now())
}

// CommitCtx stores the session. scs reckons expiry by the wall clock;
// the store judges it by the Service's clock, so the difference between
// the two (none in production) is carried over.
// A commit that changes nothing but moves the expiry by less than
// sessionTouch is left out (recentCommits).
func (s sessionStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	now := s.now()
	expiry = expiry.Add(now.Sub(time.Now()))
	sum := sha256.Sum256(b)
	if s.recent.skip(token, sum, expiry, now) {
		return nil
	}
	if err := s.st.SessionCommit(ctx, token, b, expiry); err != nil {
		s.recent.forget(token)
		return err
	}
	s.recent.note(token, sum, expiry, now)
	return nil
}
func (s sessionStore) DeleteCtx(ctx context.Context, token string) error {
	s.recent.forget(token)
	return s.st.SessionDelete(ctx, token)
}

// staffAuth is the sign-in of one StaffHandler.
type staffAuth struct {
	s             *Service
	st            AccountStore
	plain, secure *scs.SessionManager // the request came over plain HTTP, over TLS
	limits        *verifyLimiter
	log           *slog.Logger
	oidc          *OIDC // nil: no OIDC sign-in (oidc.go)
}

func newStaffAuth(s *Service, limit Limit, maxClients int, log *slog.Logger) *staffAuth {
	st, ok := s.store.(AccountStore)
	if !ok {
		panic(fmt.Sprintf("backoffice: the store %T keeps no accounts (AccountStore)", s.store))
	}
	a := &staffAuth{s: s, st: st, log: log,
		limits: newVerifyLimiter(limit, Limit{Rate: 1e6, Burst: 1 << 30}, maxClients, log)}
	recent := &recentCommits{m: map[string]recentCommit{}}
	for i, sm := range []**scs.SessionManager{&a.plain, &a.secure} {
		m := scs.New()
		m.Store = sessionStore{st: st, now: s.cfg.Now, recent: recent}
		m.IdleTimeout = SessionIdleTimeout
		m.Lifetime = SessionLifetime
		m.HashTokenInStore = true
		m.Cookie.Name = sessionCookie
		m.Cookie.HttpOnly = true
		m.Cookie.SameSite = http.SameSiteStrictMode
		m.Cookie.Path = "/"
		m.Cookie.Persist = false // a browser session's cookie; the server ends it at 30 min idle or 8 h anyway
		if i == 1 {
			m.Cookie.Name = secureSessionCookie
			m.Cookie.Secure = true
		}
		m.ErrorFunc = func(w http.ResponseWriter, _ *http.Request, err error) {
			log.Error("staff: session store", "err", err)
			problem(w, http.StatusInternalServerError, "internal", "internal error")
		}
		*sm = m
	}
	return a
}

// sm is the session manager of r: Secure cookies when r came over TLS.
func (a *staffAuth) sm(r *http.Request) *scs.SessionManager {
	if r.TLS != nil {
		return a.secure
	}
	return a.plain
}

// wrap loads and saves the session around the gate and next.
func (a *staffAuth) wrap(next http.Handler) http.Handler {
	gated := a.gate(next)
	plain, secure := a.plain.LoadAndSave(gated), a.secure.LoadAndSave(gated)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			secure.ServeHTTP(w, r)
			return
		}
		plain.ServeHTTP(w, r)
	})
}

// open reports whether r may be served without sign-in: the sign-in
// itself, the page files, the health check and the metrics (which are
// for the staff network's Prometheus; the listener belongs on the staff
// network only).
func open(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case p == "/login":
		return r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodPost
	case p == oidcStart || p == oidcCallback:
		return r.Method == http.MethodGet
	case strings.HasPrefix(p, "/assets/"):
		return true
	case p == "/v1/health" || p == "/metrics":
		return r.Method == http.MethodGet || r.Method == http.MethodHead
	}
	return false
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// gate puts the signed-in principal and its CSRF token on the context,
// sends requests without one to the sign-in (pages) or answers 401
// (API), and refuses a state-changing request without the session's
// CSRF token (403 csrf).
func (a *staffAuth) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sm := a.sm(r)
		ctx := r.Context()
		var p *Principal
		if name := sm.GetString(ctx, sessionAccount); name != "" {
			acc, err := a.st.Account(ctx, name)
			since := time.Unix(0, sm.GetInt64(ctx, sessionSince))
			expired := a.s.cfg.Now().Sub(since) >= SessionLifetime
			switch {
			case err == nil && !acc.Disabled && !expired && !since.Before(acc.SessionsAfter):
				p = acc.Principal()
			case err == nil || errors.Is(err, ErrNotFound):
				// expired, disabled, removed, or signed in before a new
				// password, roles, disable or enable: signed out
				if err := sm.Destroy(ctx); err != nil {
					a.s.internal(w, a.log, err)
					return
				}
			default:
				a.s.internal(w, a.log, err)
				return
			}
		}
		if p != nil {
			ctx = WithCSRFToken(WithPrincipal(ctx, p), sm.GetString(ctx, sessionCSRF))
			r = r.WithContext(ctx)
		}
		if open(r) {
			next.ServeHTTP(w, r)
			return
		}
		if p == nil {
			if strings.HasPrefix(r.URL.Path, "/v1/") || unsafeMethod(r.Method) {
				problem(w, http.StatusUnauthorized, "signin-required", "sign in first")
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if unsafeMethod(r.Method) {
			tok := r.Header.Get("X-CSRF-Token")
			if tok == "" {
				r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
				tok = r.PostFormValue("csrf_token")
			}
			want := CSRFTokenFrom(ctx)
			if want == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(want)) != 1 {
				a.log.Warn("staff: request without the session's CSRF token refused", "method", r.Method, "path", r.URL.Path, "account", p.Account, "client", r.RemoteAddr)
				problem(w, http.StatusForbidden, "csrf", "the request lacks this session's CSRF token (form field csrf_token or header X-CSRF-Token)")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// localNext is next when it is a path on this server, else "/".
func localNext(next string) string {
	u, err := url.Parse(next)
	if next == "" || err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(next, "/") ||
		strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") || strings.HasPrefix(u.Path, "/login") {
		return "/"
	}
	return next
}

const base64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

//go:embed page/login.html
var loginHTML string

var loginPage = template.Must(template.New("login").Parse(loginHTML))

// The sign-in page's words (catalogue keys, as literals for the
// catalogue's tests).
var loginWords = map[string]string{
	"Title": "staff.signin.title", "User": "staff.signin.user", "Password": "staff.signin.password",
	"Button": "staff.signin.button", "Intro": "staff.signin.intro",
}

var loginMessages = map[string]string{
	"failed":  "staff.signin.failed",
	"limited": "staff.signin.rate-limited",
	"expired": "staff.signin.expired",
	"signed":  "staff.signin.signed-out",
	"busy":    "staff.signin.busy",
}

// loginForm writes the sign-in form with a pre-session CSRF token:
// a random value in a cookie (HttpOnly, SameSite=Strict, Path=/login;
// __Host- and Secure over TLS) and the same in the form's hidden field;
// the POST must bring both, equal (double submit). Nothing on the server
// is kept before sign-in.
func (a *staffAuth) loginForm(w http.ResponseWriter, r *http.Request, status int, msg string) {
	l := pageLang(r)
	name := loginCookie
	path := "/login"
	if r.TLS != nil {
		name, path = secureLoginCookie, "/"
	}
	// the browser's token stays while it has one: another form (a second
	// tab, the favicon's redirect) must not void the first
	tok := randomToken()
	if c, err := r.Cookie(name); err == nil && len(c.Value) == len(tok) && strings.Trim(c.Value, base64url) == "" {
		tok = c.Value
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: tok, Path: path, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int(time.Hour / time.Second)})
	words := map[string]string{}
	for k, key := range loginWords {
		words[k] = l.T(key)
	}
	if msg != "" {
		words["Message"] = l.T(loginMessages[msg])
	}
	if a.oidc != nil {
		words["OIDC"] = l.T("staff.signin.oidc")
	}
	next := localNext(r.FormValue("next"))
	var buf bytes.Buffer
	if err := loginPage.Execute(&buf, map[string]any{"Lang": l, "W": words, "CSRF": tok, "Next": next, "Lang2": string(l)}); err != nil {
		a.s.internal(w, a.log, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (a *staffAuth) getLogin(w http.ResponseWriter, r *http.Request) {
	if PrincipalFrom(r.Context()) != nil {
		http.Redirect(w, r, localNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	msg := ""
	if r.URL.Query().Has("signed-out") {
		msg = "signed"
	}
	a.loginForm(w, r, http.StatusOK, msg)
}

func (a *staffAuth) postLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		a.loginForm(w, r, http.StatusBadRequest, "failed")
		return
	}
	name := loginCookie
	if r.TLS != nil {
		name = secureLoginCookie
	}
	c, err := r.Cookie(name)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf_token"))) != 1 {
		a.log.Warn("staff: sign-in without the form's token refused", "client", r.RemoteAddr)
		a.loginForm(w, r, http.StatusForbidden, "expired")
		return
	}
	if wait, ok := a.limits.allow(r.RemoteAddr, time.Now()); !ok {
		setRetryAfter(w, wait)
		a.loginForm(w, r, http.StatusTooManyRequests, "limited")
		return
	}
	user := strings.ToLower(strings.TrimSpace(r.PostFormValue("user")))
	acc, err := a.s.SignIn(r.Context(), user, r.PostFormValue("password"), r.RemoteAddr)
	if errors.Is(err, ErrSignIn) {
		a.loginForm(w, r, http.StatusUnauthorized, "failed")
		return
	}
	if errors.Is(err, ErrBusy) {
		w.Header().Set("Retry-After", "5")
		a.loginForm(w, r, http.StatusServiceUnavailable, "busy")
		return
	}
	if err != nil {
		a.s.internal(w, a.log, err)
		return
	}
	if !a.startSession(w, r, acc.Name) {
		return
	}
	a.log.Info("staff: signed in", "account", acc.Name, "client", r.RemoteAddr)
	http.Redirect(w, r, localNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// startSession makes r's session the signed-in session of account, under
// a new token (no session fixation), with a fresh CSRF token and the
// sign-in time. On a store failure it answers 500 and reports false.
func (a *staffAuth) startSession(w http.ResponseWriter, r *http.Request, account string) bool {
	sm := a.sm(r)
	if err := sm.RenewToken(r.Context()); err != nil {
		a.s.internal(w, a.log, err)
		return false
	}
	sm.Put(r.Context(), sessionAccount, account)
	sm.Put(r.Context(), sessionCSRF, randomToken())
	sm.Put(r.Context(), sessionSince, a.s.cfg.Now().UnixNano())
	return true
}

func (a *staffAuth) postLogout(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	if err := a.s.audit(r.Context(), p, AuditSignOut, p.Account, r.RemoteAddr, "ok", ""); err != nil {
		a.s.internal(w, a.log, err)
		return
	}
	if err := a.sm(r).Destroy(r.Context()); err != nil {
		a.s.internal(w, a.log, err)
		return
	}
	a.log.Info("staff: signed out", "account", p.Account, "client", r.RemoteAddr)
	http.Redirect(w, r, "/login?signed-out=1", http.StatusSeeOther)
}

// ErrSignIn: the name, the password or the account's state (locked,
// disabled, OIDC only) does not allow a sign-in. Deliberately one error:
// the answer does not tell which.
var ErrSignIn = errors.New("backoffice: sign-in refused")

// accounts is the store's AccountStore.
func (s *Service) accounts() (AccountStore, error) {
	st, ok := s.store.(AccountStore)
	if !ok {
		return nil, fmt.Errorf("backoffice: the store %T keeps no accounts", s.store)
	}
	return st, nil
}

func (s *Service) hashParams() HashParams {
	if s.cfg.Password == (HashParams{}) {
		return DefaultHashParams
	}
	return s.cfg.Password
}

var dummyHashes sync.Map // HashParams → a hash of a random password

// dummyHash is a hash under the service's parameters that no password
// matches, checked for an unknown or unusable account so that the answer
// takes as long as for a real one.
func (s *Service) dummyHash() string {
	p := s.hashParams()
	if h, ok := dummyHashes.Load(p); ok {
		return h.(string)
	}
	h, _ := HashPassword(randomToken(), p)
	dummyHashes.Store(p, h)
	return h
}

// DefaultHashSlots is how many sign-ins hash at once by default: with
// DefaultHashParams each argon2id hash takes 64 MiB, so the sign-in's
// memory budget is 4 × 64 MiB = 256 MiB per node however many requests
// arrive. A sign-in waits at most HashWait for a slot, then is refused
// with ErrBusy (POST /login: 503 and Retry-After).
const (
	DefaultHashSlots = 4
	HashWait         = 2 * time.Second
)

// ErrBusy: every hashing slot stayed taken for HashWait; try again later.
var ErrBusy = errors.New("backoffice: sign-in busy, try again")

// checkPassword checks pw against hash in one of the Service's hashing
// slots (ErrBusy when none frees within HashWait or ctx ends first).
func (s *Service) checkPassword(ctx context.Context, hash, pw string) (bool, error) {
	t := time.NewTimer(HashWait)
	defer t.Stop()
	select {
	case s.hashSlots <- struct{}{}:
	case <-t.C:
		return false, ErrBusy
	case <-ctx.Done():
		return false, ErrBusy
	}
	defer func() { <-s.hashSlots }()
	return CheckPasswordHash(hash, pw)
}

// auditName is the sign-in's audit target: the name when it is a valid
// user name (at most 64 bytes), else "(invalid name)".
func auditName(name string) string {
	if userName.MatchString(name) {
		return name
	}
	return "(invalid name)"
}

// SignIn checks name and password at the Service's clock and returns the
// account, or ErrSignIn (ErrBusy when no hashing slot frees in time).
// Every attempt costs one argon2id hash, whether the name exists or not,
// and one write to the store: a failure counts against the account
// (MaxLoginFailures, then LockoutDuration) or, for an unknown name,
// against its hash's bucket; a success clears the count in one atomic
// step that refuses an account locked, disabled or given a new password
// meanwhile. Each attempt is audited (sign-in: ok, failed or locked).
func (s *Service) SignIn(ctx context.Context, name, password, client string) (*Account, error) {
	st, err := s.accounts()
	if err != nil {
		return nil, err
	}
	name = auditName(name) // a name breaking the rules (NUL, too long, …) names no account
	acc, err := st.Account(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	hash := s.dummyHash()
	usable := acc != nil && acc.PasswordHash != "" && !acc.Disabled
	if usable {
		hash = acc.PasswordHash
	}
	ok, err := s.checkPassword(ctx, hash, password)
	if errors.Is(err, ErrBusy) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("backoffice: account %s: %w", name, err)
	}
	now := s.cfg.Now() // after the hash: the lock is judged when the answer is given
	target := name
	if usable && ok {
		done, err := st.LoginSucceeded(ctx, name, hash, now)
		if err != nil {
			return nil, err
		}
		if done {
			if err := s.audit(ctx, nil, AuditSignIn, target, client, "ok", "password"); err != nil {
				return nil, err
			}
			return acc, nil
		}
		// locked, disabled or a new password since the account was read
		outcome, detail := "locked", "right password refused: locked, disabled or changed meanwhile"
		if err := s.audit(ctx, nil, AuditSignIn, target, client, outcome, detail); err != nil {
			return nil, err
		}
		return nil, ErrSignIn
	}
	until, err := st.LoginFailed(ctx, name, now)
	if err != nil {
		return nil, err
	}
	outcome, detail := "failed", ""
	switch {
	case acc == nil:
		detail = "unknown name"
	case acc.Disabled:
		detail = "disabled"
	case acc.PasswordHash == "":
		detail = "no password (OIDC only)"
	case acc.LockedUntil.After(now):
		outcome, detail = "locked", "locked until "+acc.LockedUntil.UTC().Format(time.RFC3339)
	default:
		detail = "wrong password"
		if !until.IsZero() {
			outcome, detail = "locked", "wrong password; locked until "+until.UTC().Format(time.RFC3339)
		}
	}
	if err := s.audit(ctx, nil, AuditSignIn, target, client, outcome, detail); err != nil {
		return nil, err
	}
	return nil, ErrSignIn
}

// audit appends an entry at the Service's clock; p is who acted (nil:
// nobody signed in yet, as at sign-in).
func (s *Service) audit(ctx context.Context, p *Principal, action, target, client, outcome, detail string) error {
	st, err := s.accounts()
	if err != nil {
		return err
	}
	e := &AuditEntry{At: s.cfg.Now().UTC(), Action: action, Target: target, Client: client, Outcome: outcome, Detail: detail}
	if p != nil {
		e.Actor = p.Account
	}
	if err := st.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("backoffice: audit log: %w", err)
	}
	return nil
}

// name is p's account name, "" for nil.
func (p *Principal) name() string {
	if p == nil {
		return ""
	}
	return p.Account
}
