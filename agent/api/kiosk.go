package api

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"kpe-agent/sync/record"
)

// The self-service kiosk: its page (PathKiosk), and the card holder's own
// view, photo and receipt QR code. Who may call them: scope.go.

//go:embed kiosk/index.html
var kioskPageSource string

var kioskTemplate = template.Must(template.New("kiosk").Parse(kioskPageSource))

// kioskCSP is the kiosk page's Content-Security-Policy: nothing but the
// agent's own files, no inline script or style, no framing.
const kioskCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Defaults of KioskConfig's timeouts (kiosk.idle_timeout, kiosk.idle_warning).
const (
	defaultKioskIdle    = 60 * time.Second
	defaultKioskWarning = 10 * time.Second
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
		warn = min(defaultKioskWarning, idle/2)
	}
	var b bytes.Buffer
	err := kioskTemplate.Execute(&b, struct {
		IdleTimeout, IdleWarning int
		ReceiptQR                bool
	}{int(idle.Seconds()), int(warn.Seconds()), k.VerifyURL != ""})
	return b.Bytes(), err
}

// kioskPage serves the kiosk page with a fresh kiosk credential.
func (s *server) kioskPage(w http.ResponseWriter, r *http.Request, page []byte) {
	if r.URL.Path != PathKiosk {
		s.refuse(w, r, http.StatusNotFound, CodeNotFound, "")
		return
	}
	if !ownFetch(r) {
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
	s.mintKiosk(w)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", kioskCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(page)
	}
}

// kioskData marks an answer carrying the holder's data as the agent's own:
// no other origin may embed it (an <img> of another port's page).
func kioskData(w http.ResponseWriter) {
	w.Header().Set("Cross-Origin-Resource-Policy", "same-origin")
}

func (s *server) kioskView(w http.ResponseWriter, r *http.Request, loc Locale) {
	v, err := s.b.KioskView(r.URL.Query().Get("reader"), KioskCredential(r.Context()))
	if err != nil {
		s.fail(w, err, loc)
		return
	}
	kioskData(w)
	writeJSON(w, http.StatusOK, v)
}

func (s *server) kioskPhoto(w http.ResponseWriter, r *http.Request, loc Locale) {
	b, err := s.b.KioskPhoto(r.URL.Query().Get("reader"), KioskCredential(r.Context()))
	if err != nil {
		s.fail(w, err, loc)
		return
	}
	defer clear(b)
	kioskData(w)
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
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
	kioskData(w)
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Length", strconv.Itoa(len(png)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(png)
	}
}
