package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Scopes: what a request may do, by the credential it carries.
//
//   - The bearer token (Authorization: Bearer <token>) has scope full:
//     every path.
//   - The kiosk credential has scope kiosk. The kiosk page (PathKiosk,
//     served only with kiosk.enabled) hands out a fresh one each time it is
//     loaded: a cookie of 32 random bytes that the agent keeps in memory
//     (the last kioskKeep of them, each for kioskLifetime). A request with
//     a valid kiosk cookie and no Authorization header may do only what a
//     self-service kiosk does (kioskRoutes; POST PathAuth with service
//     kiosk only, its operator recorded as "kiosk" and its messages worded
//     for the card holder); anything else is 403 forbidden-scope. The
//     self-service view that a kiosk authentication leaves is readable by
//     the credential that ran it (and by scope full) only.
//
//   - The counter credential has scope counter: the counter screen
//     (PathLoket, served only with loket.enabled) of a clerk whose own
//     system has no integration. Only a holder of the token can start
//     one: POST PathLoketLogin hands out a one-time login code (loketLogin,
//     single use, loketLoginLife), and the page turns it into a cookie of
//     32 random bytes (the last loketKeep, each for loketLifetime). A
//     request with a valid counter cookie and no Authorization header may
//     do what a counter does (counterRoutes; POST PathAuth with any
//     service but kiosk and an operator, its messages worded for the
//     clerk); anything else is 403 forbidden-scope. A valid counter
//     cookie decides over a kiosk cookie beside it (one browser profile
//     that opened both pages); the counter screen's own files are served
//     whatever kiosk cookie comes with them, so that a clerk can log in.
//
// The Host and Origin checks (guard) come first, for every credential: a
// page of another origin, or one reached through DNS rebinding, gets
// nothing. The cookies are SameSite=Strict and count only on requests the
// browser marks as same-origin (Sec-Fetch-Site), so a page of another
// port on this machine (same site, another origin) cannot use them either.

// KioskCookie is the name of the kiosk credential's cookie.
const KioskCookie = "kpe_kiosk"

const (
	kioskKeep     = 8              // credentials kept: the last ones handed out
	kioskLifetime = 24 * time.Hour // each one's life
	kioskSecret   = 32             // random bytes of a credential
)

// kioskRoutes are the calls scope kiosk may make ("METHOD path"; HEAD
// counts as GET), besides the kiosk page itself (PathKiosk and below).
var kioskRoutes = map[string]bool{
	"GET " + PathHealth:     true,
	"GET " + PathReaders:    true,
	"GET " + PathEvents:     true,
	"POST " + PathAuth:      true, // service kiosk only (authenticate)
	"POST " + PathCancel:    true,
	"POST " + PathPrompt:    true, // answering the running workflow's prompt (the last fingerprint try)
	"GET " + PathKioskView:  true,
	"GET " + PathKioskPhoto: true,
	"GET " + PathKioskQR:    true,
	"GET " + PathClientJS:   true, // the JavaScript client the kiosk page runs
	// the card data renewal of the holder this credential authenticated
	"GET " + PathRenewal:         true,
	"POST " + PathRenewalCheck:   true,
	"POST " + PathRenewalApply:   true,
	"POST " + PathRenewalDecline: true,
	// the balance and "update saldo" of the holder this credential authenticated
	"GET " + PathPurse:         true,
	"POST " + PathTopUpCheck:   true,
	"POST " + PathTopUpApply:   true,
	"POST " + PathTopUpDecline: true,
}

// kioskMay says whether scope kiosk may make request r.
func kioskMay(r *http.Request) bool { return pageMay(r, PathKiosk, kioskRoutes) }

// pageMay says whether a page credential may make request r: its own page
// and files under page, or one of its routes ("METHOD path"; HEAD as GET).
func pageMay(r *http.Request, page string, routes map[string]bool) bool {
	if onPage(r, page) {
		return true
	}
	m := r.Method
	if m == http.MethodHead {
		m = http.MethodGet
	}
	return routes[m+" "+r.URL.Path]
}

// onPage says r asks for the page under page ("/kiosk/") or one of its files.
func onPage(r *http.Request, page string) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	return p == strings.TrimSuffix(page, "/") || strings.HasPrefix(p, page)
}

// credentials are the cookie credentials of one kind handed out (the
// kiosk's, the counter screen's, or the counter screen's one-time login
// codes): the last keep, each valid for life. Only their SHA-256 is kept.
type credentials struct {
	now    func() time.Time
	keep   int
	life   time.Duration
	prefix string // of the IDs: kiosk-1, kiosk-2, ...
	mu     sync.Mutex
	list   []kioskCredential // oldest first
	seq    uint64
}

type kioskCredential struct {
	hash    [sha256.Size]byte
	id      string
	expires time.Time
}

func newCredentials(now func() time.Time, keep int, life time.Duration, prefix string) *credentials {
	if now == nil {
		now = time.Now
	}
	return &credentials{now: now, keep: keep, life: life, prefix: prefix}
}

func newKioskCredentials(now func() time.Time) *credentials {
	return newCredentials(now, kioskKeep, kioskLifetime, "kiosk-")
}

// mint hands out a new credential (the cookie's value: hex), dropping the
// oldest beyond keep.
func (k *credentials) mint() string {
	b := make([]byte, kioskSecret)
	rand.Read(b) // never fails (it crashes the program instead)
	secret := hex.EncodeToString(b)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.seq++
	k.list = append(k.list, kioskCredential{hash: sha256.Sum256([]byte(secret)), id: k.prefix + strconv.FormatUint(k.seq, 10), expires: k.now().Add(k.life)})
	if n := len(k.list) - k.keep; n > 0 {
		k.list = append(k.list[:0], k.list[n:]...)
	}
	return secret
}

// check returns the ID of the credential secret, if it is one of those
// kept and not expired.
func (k *credentials) check(secret string) (string, bool) { return k.lookup(secret, false) }

// take is check for a one-time credential: a valid secret is forgotten.
func (k *credentials) take(secret string) bool {
	_, ok := k.lookup(secret, true)
	return ok
}

// lookup finds secret among the credentials kept and not expired, every
// kept one compared in constant time, and forgets it when remove.
func (k *credentials) lookup(secret string, remove bool) (string, bool) {
	if len(secret) != 2*kioskSecret {
		return "", false
	}
	h := sha256.Sum256([]byte(secret))
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	found := -1
	for i, c := range k.list {
		if subtle.ConstantTimeCompare(h[:], c.hash[:]) == 1 && now.Before(c.expires) {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	id := k.list[found].id
	if remove {
		k.list = slices.Delete(k.list, found, found+1)
	}
	return id, true
}

// credential is who made a request, once scope has looked.
type credential struct {
	kiosk   bool   // scope kiosk
	counter bool   // scope counter
	id      string // the kiosk credential's ID
}

type credentialKey struct{}

// KioskCredential returns the ID of the kiosk credential ctx's request
// was made with, or "" when it was not made with one (the bearer token:
// scope full). The daemon keeps a kiosk authentication's self-service
// view for that credential.
func KioskCredential(ctx context.Context) string {
	c, _ := ctx.Value(credentialKey{}).(credential)
	if !c.kiosk {
		return ""
	}
	return c.id
}

// Caller returns the ID of the page credential (the kiosk's or the
// counter screen's) ctx's request was made with, or "" for the bearer
// token. A page credential may cancel, or answer the prompt of, only a
// workflow it started itself; the token may do so for any.
func Caller(ctx context.Context) string {
	c, _ := ctx.Value(credentialKey{}).(credential)
	return c.id
}

func isKiosk(r *http.Request) bool {
	c, _ := r.Context().Value(credentialKey{}).(credential)
	return c.kiosk
}

func isCounter(r *http.Request) bool {
	c, _ := r.Context().Value(credentialKey{}).(credential)
	return c.counter
}

// hasPageCredential says r carries the kiosk's or the counter screen's
// credential (scope has let it through to its path).
func hasPageCredential(r *http.Request) bool { return isKiosk(r) || isCounter(r) }

// scope gives a request carrying a valid counter cookie and no
// Authorization header scope counter, else one carrying a valid kiosk
// cookie scope kiosk, and refuses with 403 forbidden-scope what that
// scope may not do. Other requests pass as they are: the token is checked
// by auth.
func (s *server) scope(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := s.loketCookie(r); ok {
			r = r.WithContext(context.WithValue(r.Context(), credentialKey{}, credential{counter: true, id: id}))
			if !counterMay(r) {
				s.c.Log.Warn("local API: the counter credential may not do this", "method", r.Method, "path", r.URL.Path)
				s.refuse(w, r, http.StatusForbidden, CodeForbiddenScope, r.Method+" "+r.URL.Path)
				return
			}
		} else if id, ok := s.kioskCookie(r); ok && !(s.loket != nil && isLoketPage(r)) {
			r = r.WithContext(context.WithValue(r.Context(), credentialKey{}, credential{kiosk: true, id: id}))
			if !kioskMay(r) {
				s.c.Log.Warn("local API: the kiosk credential may not do this", "method", r.Method, "path", r.URL.Path)
				s.refuse(w, r, http.StatusForbidden, CodeForbiddenScope, r.Method+" "+r.URL.Path)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// kioskCookie returns the ID of the request's kiosk credential: with the
// kiosk enabled, no Authorization header, a same-origin request (or one
// the browser does not mark) and a valid cookie.
func (s *server) kioskCookie(r *http.Request) (string, bool) {
	return s.pageCookie(r, s.kiosk, KioskCookie)
}

// pageCookie returns the ID of the request's page credential of one kind
// (creds, held in cookie name): with that kind enabled (creds not nil), no
// Authorization header, a same-origin request (or one the browser does
// not mark) and a valid cookie.
func (s *server) pageCookie(r *http.Request, creds *credentials, name string) (string, bool) {
	if creds == nil || r.Header.Get("Authorization") != "" || !s.ownFetch(r) {
		return "", false
	}
	c, err := r.Cookie(name)
	if err != nil {
		return "", false
	}
	return creds.check(c.Value)
}

// ownFetch says the browser made r for the agent's own page, or for the
// user (a typed address, a kiosk browser's start page): its
// Sec-Fetch-Site is same-origin or none, and an Origin it carries is the
// agent's own. Programs send neither. A request from a page of another
// origin (same-site: another port of this machine; cross-site) neither
// uses nor gets the kiosk or counter credential, also from a browser
// that sends no Fetch Metadata, and also when that origin is one of
// api.allowed_origins (those may call the API with the token only).
func (s *server) ownFetch(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && !s.sameOrigin(r, o) {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// mintKiosk sets a fresh kiosk credential on the answer.
func (s *server) mintKiosk(w http.ResponseWriter, r *http.Request) {
	setPageCookie(w, r, KioskCookie, s.kiosk.mint())
}

// setPageCookie sets a page credential (kiosk, counter screen): a session
// cookie for this origin only, out of the page's script's reach; over TLS
// (api.tls_cert_file) it is Secure, so it never travels in clear.
func setPageCookie(w http.ResponseWriter, r *http.Request, name, value string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}
