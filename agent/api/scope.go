package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
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
// The Host and Origin checks (guard) come first, for every credential: a
// page of another origin, or one reached through DNS rebinding, gets
// nothing. The cookie is SameSite=Strict and counts only on requests the
// browser marks as same-origin (Sec-Fetch-Site), so a page of another
// port on this machine (same site, another origin) cannot use it either.

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
}

// kioskMay says whether scope kiosk may make request r.
func kioskMay(r *http.Request) bool {
	m := r.Method
	if m == http.MethodHead {
		m = http.MethodGet
	}
	p := r.URL.Path
	if m == http.MethodGet && (p == strings.TrimSuffix(PathKiosk, "/") || strings.HasPrefix(p, PathKiosk)) {
		return true
	}
	return kioskRoutes[m+" "+p]
}

// kioskCredentials are the kiosk credentials handed out: the last
// kioskKeep, each valid for kioskLifetime. Only their SHA-256 is kept.
type kioskCredentials struct {
	now  func() time.Time
	mu   sync.Mutex
	list []kioskCredential // oldest first
	seq  uint64
}

type kioskCredential struct {
	hash    [sha256.Size]byte
	id      string
	expires time.Time
}

func newKioskCredentials(now func() time.Time) *kioskCredentials {
	if now == nil {
		now = time.Now
	}
	return &kioskCredentials{now: now}
}

// mint hands out a new credential (the cookie's value: hex), dropping the
// oldest beyond kioskKeep.
func (k *kioskCredentials) mint() string {
	b := make([]byte, kioskSecret)
	rand.Read(b) // never fails (it crashes the program instead)
	secret := hex.EncodeToString(b)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.seq++
	k.list = append(k.list, kioskCredential{hash: sha256.Sum256([]byte(secret)), id: "kiosk-" + strconv.FormatUint(k.seq, 10), expires: k.now().Add(kioskLifetime)})
	if n := len(k.list) - kioskKeep; n > 0 {
		k.list = append(k.list[:0], k.list[n:]...)
	}
	return secret
}

// check returns the ID of the credential secret, if it is one of those
// kept and not expired. Every kept one is compared, in constant time.
func (k *kioskCredentials) check(secret string) (string, bool) {
	if len(secret) != 2*kioskSecret {
		return "", false
	}
	h := sha256.Sum256([]byte(secret))
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	id := ""
	for _, c := range k.list {
		if subtle.ConstantTimeCompare(h[:], c.hash[:]) == 1 && now.Before(c.expires) {
			id = c.id
		}
	}
	return id, id != ""
}

// credential is who made a request, once scope has looked.
type credential struct {
	kiosk bool
	id    string // the kiosk credential's ID
}

type credentialKey struct{}

// KioskCredential returns the ID of the kiosk credential ctx's request
// was made with, or "" when it was not made with one (the bearer token:
// scope full). The daemon keeps a kiosk authentication's self-service
// view for that credential.
func KioskCredential(ctx context.Context) string {
	c, _ := ctx.Value(credentialKey{}).(credential)
	return c.id
}

func isKiosk(r *http.Request) bool {
	c, _ := r.Context().Value(credentialKey{}).(credential)
	return c.kiosk
}

// scope gives a request carrying a valid kiosk cookie and no
// Authorization header scope kiosk, and refuses with 403 forbidden-scope
// what that scope may not do. Other requests pass as they are: the token
// is checked by auth.
func (s *server) scope(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := s.kioskCookie(r); ok {
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
	if s.kiosk == nil || r.Header.Get("Authorization") != "" {
		return "", false
	}
	if !ownFetch(r) {
		return "", false
	}
	c, err := r.Cookie(KioskCookie)
	if err != nil {
		return "", false
	}
	return s.kiosk.check(c.Value)
}

// ownFetch says the browser made r for the agent's own page, or for the
// user (a typed address, a kiosk browser's start page): its
// Sec-Fetch-Site is same-origin or none. Programs send none of it. A
// request from a page of another origin (same-site: another port of this
// machine; cross-site) neither uses nor gets the kiosk credential.
func ownFetch(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// mintKiosk sets a fresh kiosk credential on the answer.
func (s *server) mintKiosk(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: KioskCookie, Value: s.kiosk.mint(), Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
}
