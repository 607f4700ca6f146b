package api

import (
	"context"
	"net/http"
)

// The card data renewal's routes (docs/renewal.md, docs/local-api.md):
// the view of the card in a reader, the offer check, apply and decline.
// They act on the renewal the daemon keeps for the card session in which
// the holder's fingerprint matched, for the credential that ran that
// authentication (the kiosk page's, the counter screen's, or the token).
// Scope kiosk and scope counter may call them (scope.go); every answer is
// no-store (the holder's data) and not embeddable by another origin.

// RenewalBackend is the Backend's renewal part; a Backend without it
// answers the routes 404.
type RenewalBackend interface {
	RenewalView(ctx context.Context, reader string, loc Locale) (RenewalView, error)
	RenewalCheck(ctx context.Context, reader string, loc Locale) (RenewalView, error)
	RenewalApply(ctx context.Context, reader string, loc Locale) (RenewalView, error)
	RenewalDecline(ctx context.Context, reader string) error
}

func (s *server) routeRenewal(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathRenewal, s.auth(s.withLocale(s.renewalView)))
	mux.HandleFunc("POST "+PathRenewalCheck, s.auth(s.withLocale(s.renewalAct(func(rb RenewalBackend, r *http.Request, req RenewalRequest, loc Locale) (*RenewalView, error) {
		v, err := rb.RenewalCheck(r.Context(), req.Reader, loc)
		return &v, err
	}))))
	mux.HandleFunc("POST "+PathRenewalApply, s.auth(s.withLocale(s.renewalAct(func(rb RenewalBackend, r *http.Request, req RenewalRequest, loc Locale) (*RenewalView, error) {
		v, err := rb.RenewalApply(r.Context(), req.Reader, loc)
		return &v, err
	}))))
	mux.HandleFunc("POST "+PathRenewalDecline, s.auth(s.withLocale(s.renewalAct(func(rb RenewalBackend, r *http.Request, req RenewalRequest, _ Locale) (*RenewalView, error) {
		return nil, rb.RenewalDecline(r.Context(), req.Reader)
	}))))
}

// renewalBackend is the Backend's renewal part, or a 404 answered.
func (s *server) renewalBackend(w http.ResponseWriter, loc Locale) RenewalBackend {
	rb, ok := s.b.(RenewalBackend)
	if !ok {
		s.refuseIn(w, loc, http.StatusNotFound, CodeNotFound, "no card data renewal on this agent")
		return nil
	}
	return rb
}

func (s *server) renewalView(w http.ResponseWriter, r *http.Request, loc Locale) {
	rb := s.renewalBackend(w, loc)
	if rb == nil {
		return
	}
	v, err := rb.RenewalView(r.Context(), r.URL.Query().Get("reader"), loc)
	if err != nil {
		s.fail(w, err, loc)
		return
	}
	w.Header().Set("Cross-Origin-Resource-Policy", "same-origin")
	writeJSON(w, http.StatusOK, v)
}

// renewalAct decodes a RenewalRequest and runs act: its view (200), or
// 204 when it answers none.
func (s *server) renewalAct(act func(RenewalBackend, *http.Request, RenewalRequest, Locale) (*RenewalView, error)) func(http.ResponseWriter, *http.Request, Locale) {
	return func(w http.ResponseWriter, r *http.Request, loc Locale) {
		var req RenewalRequest
		if err := decode(r, &req); err != nil {
			s.refuseBody(w, r, err)
			return
		}
		rb := s.renewalBackend(w, loc)
		if rb == nil {
			return
		}
		v, err := act(rb, r, req, loc)
		if err != nil {
			s.fail(w, err, loc)
			return
		}
		if v == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Cross-Origin-Resource-Policy", "same-origin")
		writeJSON(w, http.StatusOK, v)
	}
}
