package api

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"net/url"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"kpe-agent/internal/i18n"
	"kpe-agent/sync/record"
)

// The self-service kiosk: its page (PathKiosk), and the card holder's own
// view, photo and receipt QR code. Who may call them: scope.go.

// The kiosk page: index.html, rendered once with html/template (its words
// from the catalogue's kiosk.* entries, the configuration's timeouts), and
// its script and stylesheet, served as they are under PathKiosk. No
// library, no build step.
var (
	//go:embed kiosk/index.html
	kioskPageSource string
	//go:embed kiosk/kiosk.js
	kioskJS []byte
	//go:embed kiosk/kiosk.css
	kioskCSS []byte
	//go:embed kiosk/icon.svg
	kioskIcon []byte
)

// kioskWordsPrefix is the catalogue's part for the kiosk page: the page's
// table is the entries under it, in both languages (i18n.WithPrefix).
const kioskWordsPrefix = "kiosk."

var kioskTemplate = template.Must(template.New("kiosk").Funcs(template.FuncMap{
	// the page's first words, in Bahasa Indonesia; the script words it
	// again from the table when the holder switches language
	"t": func(key string) string { return i18n.Indonesian.T(kioskWordsPrefix + key) },
}).Parse(kioskPageSource))

// kioskWords is the page's table, by language, as JSON safe inside a
// script element.
var kioskWords = template.JS(i18n.TableJSON(kioskWordsPrefix))

// kioskFiles are the page's static files under PathKiosk, with their
// types.
var kioskFiles = map[string]struct {
	typ  string
	body []byte
}{
	PathKiosk + "kiosk.js":  {"text/javascript; charset=utf-8", kioskJS},
	PathKiosk + "kiosk.css": {"text/css; charset=utf-8", kioskCSS},
	PathKiosk + "icon.svg":  {"image/svg+xml", kioskIcon}, // the page's icon: the browser asks for /favicon.ico otherwise
}

// Defaults of KioskConfig's timeouts (kiosk.idle_timeout, kiosk.idle_warning)
// and the bounds of one wait for the card (KioskConfig.CardWait).
const (
	defaultKioskIdle    = 60 * time.Second
	defaultKioskWarning = 10 * time.Second
	defaultCardWait     = 30 * time.Second
	maxCardWait         = 60 * time.Second
)

// qrSize is the side of the receipt's QR code, in pixels.
const qrSize = 256

func (s *server) routeKiosk(mux *http.ServeMux) {
	if s.kiosk != nil {
		page, err := s.renderKioskPage()
		if err != nil {
			s.c.Log.Error("local API: the kiosk page cannot be rendered", "err", err)
		}
		mux.HandleFunc("GET "+PathKiosk, func(w http.ResponseWriter, r *http.Request) { s.kioskPage(w, r, page) })
	}
	mux.HandleFunc("GET "+PathKioskView, s.auth(s.withLocale(s.kioskView)))
	mux.HandleFunc("GET "+PathKioskPhoto, s.auth(s.withLocale(s.kioskPhoto)))
	mux.HandleFunc("GET "+PathKioskQR, s.auth(s.withLocale(s.kioskQR)))
}

// renderKioskPage renders the page once: its data is the configuration's.
func (s *server) renderKioskPage() ([]byte, error) {
	k := s.c.Kiosk
	idle, warn := k.IdleTimeout, k.IdleWarning
	if idle <= 0 {
		idle = defaultKioskIdle
	}
	if warn <= 0 || warn >= idle {
		warn = defaultKioskWarning
	}
	// the warning takes at most half the idle time (the page's one rule)
	warn = min(warn, idle/2)
	wait := k.CardWait
	if wait <= 0 {
		wait = defaultCardWait
	}
	wait = min(wait, maxCardWait)
	var b bytes.Buffer
	err := kioskTemplate.Execute(&b, struct {
		IdleTimeout, IdleWarning, CardWait int
		ReceiptQR                          bool
		Words                              template.JS
	}{int(idle.Seconds()), int(warn.Seconds()), max(1, int(wait.Seconds())), k.VerifyURL != "", kioskWords})
	if err != nil {
		return nil, err // never serve a half-written page
	}
	return b.Bytes(), nil
}

// kioskPage serves the kiosk page with a fresh kiosk credential, and its
// script and stylesheet.
func (s *server) kioskPage(w http.ResponseWriter, r *http.Request, page []byte) {
	if f, ok := kioskFiles[r.URL.Path]; ok {
		writeBody(w, r, http.StatusOK, f.typ, f.body)
		return
	}
	if r.URL.Path != PathKiosk {
		s.refuse(w, r, http.StatusNotFound, CodeNotFound, "")
		return
	}
	if !s.ownFetch(r) {
		// another origin's page loading the kiosk page (a frame, an image)
		// would push the kiosk's own credential out
		s.c.Log.Warn("local API: the kiosk page requested by another origin's page refused", "sec-fetch-site", r.Header.Get("Sec-Fetch-Site"))
		s.refuse(w, r, http.StatusForbidden, CodeForbiddenOrigin, "")
		return
	}
	if page == nil {
		s.refuse(w, r, http.StatusInternalServerError, "internal", "the kiosk page cannot be rendered")
		return
	}
	s.mintKiosk(w, r)
	pageHeaders(w.Header())
	writeBody(w, r, http.StatusOK, "text/html; charset=utf-8", page)
}

func (s *server) kioskView(w http.ResponseWriter, r *http.Request, loc Locale) {
	v, err := s.b.KioskView(r.URL.Query().Get("reader"), KioskCredential(r.Context()))
	if err != nil {
		s.fail(w, err, loc)
		return
	}
	// the holder's data: no other origin may embed it
	w.Header().Set("Cross-Origin-Resource-Policy", "same-origin")
	writeJSON(w, http.StatusOK, v)
}

func (s *server) kioskPhoto(w http.ResponseWriter, r *http.Request, loc Locale) {
	b, err := s.b.KioskPhoto(r.URL.Query().Get("reader"), KioskCredential(r.Context()))
	if err != nil {
		s.fail(w, err, loc)
		return
	}
	defer clear(b)
	writeBody(w, r, http.StatusOK, "image/jpeg", b)
}

// kioskQR answers the receipt's QR code: a PNG of
// <kiosk.verify_url>?code=<code>, the code checked and written the
// canonical way.
func (s *server) kioskQR(w http.ResponseWriter, r *http.Request, loc Locale) {
	base := s.c.Kiosk.VerifyURL
	if base == "" {
		s.refuseIn(w, loc, http.StatusNotFound, CodeNotFound, "no kiosk.verify_url")
		return
	}
	code, err := record.ParseCode(r.URL.Query().Get("code"))
	if err != nil {
		s.refuseIn(w, loc, http.StatusBadRequest, CodeBadRequest, "code: "+err.Error())
		return
	}
	png, err := qrcode.Encode(base+"?code="+url.QueryEscape(code.String()), qrcode.Medium, qrSize)
	if err != nil {
		s.refuseIn(w, loc, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	writeBody(w, r, http.StatusOK, "image/png", png)
}
