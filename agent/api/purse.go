package api

import (
	"context"
	"net/http"
)

// The e-wallet at the kiosk and the counter (docs/ewallet.md part 3,
// docs/local-api.md): the balance and last transactions of the card in a
// reader, and its "update saldo" (check, apply, decline). They act on the
// purse view the daemon keeps for the card session in which the holder's
// fingerprint matched, for the credential that ran that authentication.
// Scope kiosk and scope counter may call them; every answer is no-store.

// PurseBackend is the Backend's e-wallet view and top-up part; a Backend
// without it answers the routes 404.
type PurseBackend interface {
	PurseView(ctx context.Context, reader string, loc Locale) (PurseView, error)
	TopUpCheck(ctx context.Context, reader string, loc Locale) (PurseView, error)
	TopUpApply(ctx context.Context, reader string, loc Locale) (PurseView, error)
	TopUpDecline(ctx context.Context, reader string) error
}

func (s *server) routePurse(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathPurse, s.auth(s.withLocale(s.purseView)))
	mux.HandleFunc("POST "+PathTopUpCheck, s.auth(s.withLocale(s.purseAct(func(pb PurseBackend, r *http.Request, req PurseRequest, loc Locale) (*PurseView, error) {
		v, err := pb.TopUpCheck(r.Context(), req.Reader, loc)
		return &v, err
	}))))
	mux.HandleFunc("POST "+PathTopUpApply, s.auth(s.withLocale(s.purseAct(func(pb PurseBackend, r *http.Request, req PurseRequest, loc Locale) (*PurseView, error) {
		v, err := pb.TopUpApply(r.Context(), req.Reader, loc)
		return &v, err
	}))))
	mux.HandleFunc("POST "+PathTopUpDecline, s.auth(s.withLocale(s.purseAct(func(pb PurseBackend, r *http.Request, req PurseRequest, _ Locale) (*PurseView, error) {
		return nil, pb.TopUpDecline(r.Context(), req.Reader)
	}))))
}

// purseBackend is the Backend's purse part, or a 404 answered.
func (s *server) purseBackend(w http.ResponseWriter, loc Locale) PurseBackend {
	pb, ok := s.b.(PurseBackend)
	if !ok {
		s.refuseIn(w, loc, http.StatusNotFound, CodeNotFound, "no e-wallet view on this agent")
		return nil
	}
	return pb
}

func (s *server) purseView(w http.ResponseWriter, r *http.Request, loc Locale) {
	pb := s.purseBackend(w, loc)
	if pb == nil {
		return
	}
	v, err := pb.PurseView(r.Context(), r.URL.Query().Get("reader"), loc)
	if err != nil {
		s.fail(w, err, loc)
		return
	}
	w.Header().Set("Cross-Origin-Resource-Policy", "same-origin")
	writeJSON(w, http.StatusOK, v)
}

// purseAct decodes a PurseRequest and runs act: its view (200), or 204
// when it answers none.
func (s *server) purseAct(act func(PurseBackend, *http.Request, PurseRequest, Locale) (*PurseView, error)) func(http.ResponseWriter, *http.Request, Locale) {
	return func(w http.ResponseWriter, r *http.Request, loc Locale) {
		var req PurseRequest
		if err := decode(r, &req); err != nil {
			s.refuseBody(w, r, err)
			return
		}
		pb := s.purseBackend(w, loc)
		if pb == nil {
			return
		}
		v, err := act(pb, r, req, loc)
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
