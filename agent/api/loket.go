package api

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"kpe-agent/internal/i18n"
)

// The counter screen (loket): its page for the clerk at this PC, the
// one-time login link that opens it, and today's codes. Who may call
// what: scope.go; the design and its threats: docs/loket.md.

// LoketCookie is the name of the counter credential's cookie.
const LoketCookie = "kpe_loket"

const (
	loketKeep      = 8                // counter credentials kept: the last ones handed out
	loketLifetime  = 12 * time.Hour   // each one's life: a shift
	loketLoginKeep = 8                // one-time login codes kept
	loketLoginLife = 60 * time.Second // a login link's life
)

// LoketConfig is the counter screen's part of the API.
type LoketConfig struct {
	// Enabled serves the counter screen (PathLoket) and its login links
	// (PathLoketLogin), and accepts the counter credential; off, the page
	// and the login are 404 and no counter cookie counts.
	Enabled bool
}

// counterRoutes are the calls scope counter may make ("METHOD path"; HEAD
// counts as GET), besides the counter screen's own files (PathLoket and
// below). The receipt's QR code (PathKioskQR) draws the code the screen
// has just been given and the configured verify page: nothing the
// counter does not hold already, so the screen uses the kiosk's route
// (one generator, one route) rather than a copy of it.
var counterRoutes = map[string]bool{
	"GET " + PathHealth:     true,
	"GET " + PathReaders:    true,
	"GET " + PathEvents:     true,
	"POST " + PathAuth:      true, // any service but kiosk, with an operator
	"POST " + PathCancel:    true,
	"POST " + PathPrompt:    true,
	"GET " + PathPrefill:    true, // the ASKES form
	"GET " + PathCodesToday: true,
	"GET " + PathKioskQR:    true, // the printed form's QR code
	"GET " + PathClientJS:   true,
	// the card data renewal of the holder this credential authenticated
	"GET " + PathRenewal:         true,
	"POST " + PathRenewalCheck:   true,
	"POST " + PathRenewalApply:   true,
	"POST " + PathRenewalDecline: true,
	// e-wallet payments taken by the clerk
	"POST " + PathPay:       true,
	"POST " + PathPayStatus: true,
	// the balance and "update saldo" of the holder this credential authenticated
	"GET " + PathPurse:         true,
	"POST " + PathTopUpCheck:   true,
	"POST " + PathTopUpApply:   true,
	"POST " + PathTopUpDecline: true,
}

// isLoketPage says r asks for the counter screen or one of its files.
func isLoketPage(r *http.Request) bool { return onPage(r, PathLoket) }

// counterMay says whether scope counter may make request r.
func counterMay(r *http.Request) bool { return pageMay(r, PathLoket, counterRoutes) }

// loketCookie returns the ID of the request's counter credential (as
// pageCookie).
func (s *server) loketCookie(r *http.Request) (string, bool) {
	return s.pageCookie(r, s.loket, LoketCookie)
}

// loketFiles are the counter screen: its page (a template) and static
// files, served under PathLoket.
//
//go:embed loket/index.html loket/app.js loket/app.css
var loketFiles embed.FS

var loketTemplate = template.Must(template.ParseFS(loketFiles, "loket/index.html"))

// loketStatic are the static files and their types.
var loketStatic = map[string]string{
	"app.js":  "text/javascript; charset=utf-8",
	"app.css": "text/css; charset=utf-8",
}

// loketWords is the page's table, both languages, as JSON: the entries
// under "loket." of the catalogue.
var loketWords = string(i18n.TableJSON("loket."))

// loketText is the page's entries per language, for the server-rendered
// first words: built once, not per request.
var loketText = func() map[i18n.Lang]map[string]string {
	m := map[i18n.Lang]map[string]string{}
	for _, l := range i18n.Langs {
		m[l] = i18n.WithPrefix("loket.", l)
	}
	return m
}()

// Login states of the page.
const (
	loketLoggedIn = "ok"      // a valid counter credential came with the request
	loketNeeded   = "needed"  // none: the page says how to log in
	loketExpired  = "expired" // a login link that is used, expired or unknown
)

func (s *server) routeLoket(mux *http.ServeMux) {
	mux.HandleFunc("POST "+PathLoketLogin, s.auth(s.withLocale(s.loketLogin)))
	mux.HandleFunc("GET "+PathCodesToday, s.auth(s.withLocale(s.codesToday)))
	if s.loket != nil {
		mux.HandleFunc("GET "+PathLoket, s.loketPage)
	}
}

// loketLogin hands out a one-time login link to the counter screen. Only
// the token may ask (scope): kpectl loket, run by whoever can read it.
func (s *server) loketLogin(w http.ResponseWriter, r *http.Request, loc Locale) {
	if s.loket == nil {
		s.refuseIn(w, loc, http.StatusNotFound, CodeNotFound, "the counter screen is off (loket.enabled: false)")
		return
	}
	if err := noBody(r); err != nil {
		s.refuseBody(w, r, err)
		return
	}
	// the Host is one the guard accepted: the address the caller reached
	// the agent by, and the one the browser on this PC reaches it by
	u := ownOrigin(r) + PathLoket + "?login=" + url.QueryEscape(s.loketLogins.mint())
	s.c.Log.Info("local API: a login link to the counter screen was handed out")
	writeJSON(w, http.StatusOK, LoketLogin{URL: u, ExpiresSeconds: int(loketLoginLife / time.Second)})
}

func (s *server) codesToday(w http.ResponseWriter, r *http.Request, loc Locale) {
	c, err := s.b.CodesToday()
	if err != nil {
		s.fail(w, err, loc)
		return
	}
	if c.Codes == nil {
		c.Codes = []TodayCode{}
	}
	writeJSON(w, http.StatusOK, c)
}

// loketPage serves the counter screen and its files. With ?login=CODE, a
// valid one-time code gives the browser a fresh counter credential and
// sends it on to the page without the code (out of the address bar and
// the history); a used, expired or unknown one is refused.
func (s *server) loketPage(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, PathLoket)
	if name != "" {
		s.loketFile(w, r, name)
		return
	}
	if !s.ownFetch(r) {
		// another origin's page loading the counter screen (a frame, a
		// link with a stolen code): nothing
		s.c.Log.Warn("local API: the counter screen requested by another origin's page refused", "sec-fetch-site", r.Header.Get("Sec-Fetch-Site"))
		s.refuse(w, r, http.StatusForbidden, CodeForbiddenOrigin, "")
		return
	}
	state, status := loketNeeded, http.StatusOK
	if q := r.URL.Query(); q.Has("login") {
		if s.loketLogins.take(q.Get("login")) {
			// a session cookie: gone when the browser closes; the agent
			// honours it for loketLifetime at most
			setPageCookie(w, r, LoketCookie, s.loket.mint())
			s.c.Log.Info("local API: the counter screen was opened with a login link")
			w.Header().Set("Referrer-Policy", "no-referrer")
			w.Header().Set("Location", PathLoket)
			w.WriteHeader(http.StatusSeeOther)
			return
		}
		s.c.Log.Warn("local API: a used, expired or unknown login link to the counter screen refused")
		state, status = loketExpired, http.StatusForbidden
	} else if _, ok := s.loketCookie(r); ok {
		state = loketLoggedIn
	}
	conf := i18n.Default
	if s.b != nil {
		conf = s.b.Language()
	}
	lang := i18n.Negotiate(r.URL.Query().Get("lang"), "", r.Header.Get("Accept-Language"), conf)
	var b bytes.Buffer
	err := loketTemplate.Execute(&b, struct {
		Lang         i18n.Lang
		W            map[string]string
		Words, Login string
		QR           bool
	}{lang, loketText[lang], loketWords, state, s.c.Kiosk.VerifyURL != ""})
	if err != nil {
		s.refuse(w, r, http.StatusInternalServerError, "internal", "the counter screen cannot be rendered")
		return
	}
	pageHeaders(w.Header())
	w.Header().Set("Vary", "Accept-Language, Cookie")
	writeBody(w, r, status, "text/html; charset=utf-8", b.Bytes())
}

// loketFile serves one of the counter screen's static files.
func (s *server) loketFile(w http.ResponseWriter, r *http.Request, name string) {
	typ, ok := loketStatic[name]
	if !ok {
		s.refuse(w, r, http.StatusNotFound, CodeNotFound, "")
		return
	}
	b, err := loketFiles.ReadFile("loket/" + name)
	if err != nil {
		s.refuse(w, r, http.StatusNotFound, CodeNotFound, "")
		return
	}
	writeBody(w, r, http.StatusOK, typ, b)
}
