package api

import (
	"net/http"
	"strconv"
)

// pageCSP is the Content-Security-Policy of the pages the agent serves
// itself (the kiosk's and the counter screen's): nothing but the agent's
// own files, no inline script or style, no framing. Images may be object
// URLs (blob:, which only the page's own script can make): the card's
// photo and the QR codes are shown from memory.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; " +
	"font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// pageHeaders sets the headers of a page the agent serves: its policy, no
// framing, no referrer, a browsing context of its own.
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// writeBody answers status with body of type typ, marked as the agent's
// own (no other origin may embed it: an <img> of another port's page);
// a HEAD request gets the headers only.
func writeBody(w http.ResponseWriter, r *http.Request, status int, typ string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", typ)
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// ownOrigin is the agent's origin as the request reached it (its Host,
// which the guard has checked).
func ownOrigin(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}
