package backoffice

import (
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"kpe-agent/internal/i18n"
	"kpe-agent/internal/strictjson"
	"kpe-agent/sync/wire"
)

//go:embed page/verify.html
var verifyHTML string

// verifyPage is the code verification page: its words come from the
// catalogue (staff.verify.*) in both languages, so the page can switch
// without a round trip; the server picks the first language by the
// language rule (?lang, then Accept-Language, then Indonesian).
var verifyPage = template.Must(template.New("verify").Parse(verifyHTML))

// verifyTexts is the page's table, as JSON safe inside a script element.
var verifyTexts = template.JS(i18n.TableJSON("staff.verify."))

// pageLang is the language r asks for.
func pageLang(r *http.Request) i18n.Lang {
	return i18n.Negotiate(r.URL.Query().Get("lang"), "", r.Header.Get("Accept-Language"), i18n.Default)
}

func serveVerifyPage(w http.ResponseWriter, r *http.Request) {
	l := pageLang(r)
	var buf bytes.Buffer
	p := PrincipalFrom(r.Context())
	if err := verifyPage.Execute(&buf, struct {
		Lang    i18n.Lang
		Title   string
		Texts   template.JS
		Account string // the signed-in account, with a sign-out form
		CSRF    string
		SignOut string
	}{l, l.T("staff.verify.title"), verifyTexts, p.name(), CSRFTokenFrom(r.Context()), l.T("staff.signin.signout")}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Vary", "Accept-Language") // the policy and the other headers: StaffHandler
	w.Write(buf.Bytes())
}

// TerminalHandler serves the terminals' side: POST /v1/records and
// GET /v1/health. Mount it on a TLS server that requires and verifies
// client certificates; the certificate's one common name is the terminal
// id records must carry. A request without a verified certificate is
// refused (401 client-certificate), as is a certificate that names no
// usable terminal id (403 terminal-identity); plain HTTP only with
// Config.PlaintextTerminals (unbound, lab only).
//
// Admission control is on with the defaults (TerminalOptions);
// TerminalHandlerWith configures it.
func (s *Service) TerminalHandler(log *slog.Logger) http.Handler {
	return s.TerminalHandlerWith(log, TerminalOptions{})
}

// TerminalHandlerWith is TerminalHandler with admission control
// configured: beyond o.MaxBodies bodies being read or held a batch is
// answered 503 busy before its body is read; beyond o.MaxIngest batches
// verified and stored at once (and the queue) after it, with a jittered
// Retry-After.
func (s *Service) TerminalHandlerWith(log *slog.Logger, o TerminalOptions) http.Handler {
	adm := newAdmission(s, o)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.PathHealth, health)
	mux.HandleFunc("POST "+wire.PathRecords, func(w http.ResponseWriter, r *http.Request) {
		peer, status, code, detail := s.peer(r)
		if status != 0 {
			problem(w, status, code, detail)
			return
		}
		// the body first, under the body budget; the ingest slot only
		// around Ingest, so a slow uplink holds no slot while it sends
		if !adm.read() {
			adm.busy(w)
			return
		}
		defer adm.leaveBody()
		b, status, err := readBatch(r)
		if err != nil {
			problem(w, status, "bad-batch", err.Error())
			return
		}
		if !adm.enter(r.Context()) {
			adm.busy(w)
			return
		}
		res, err := s.Ingest(r.Context(), b, peer)
		adm.leave()
		switch {
		case errors.Is(err, ErrBatch):
			problem(w, http.StatusRequestEntityTooLarge, "batch-too-large", err.Error())
			return
		case err != nil:
			if log != nil {
				log.Error("ingest failed", "terminal", peer.Terminal, "records", len(b.Records), "err", err)
			}
			w.Header().Set("Retry-After", "5")
			problem(w, http.StatusServiceUnavailable, "store-unavailable", "the records were not stored; send them again")
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("POST "+wire.PathRenewalOffer, func(w http.ResponseWriter, r *http.Request) {
		s.serveRenewalOffer(w, r, log, adm)
	})
	mux.HandleFunc("POST "+wire.PathTopUpOffer, func(w http.ResponseWriter, r *http.Request) { s.serveTopUpOffer(w, r, log, adm) }) // httptopup.go
	return mux
}

// serveRenewalOffer answers POST /v1/renewal/offer (docs/renewal.md):
// the terminal's identity as for records; the body a strict
// wire.RenewalQuery of at most wire.MaxRenewalQueryBytes. The log names
// the terminal and outcome, never the NIP.
//
// An offer costs two signatures in the issuer's HSM and store writes: it
// takes an ingest slot like a batch (503 busy with Retry-After beyond).
func (s *Service) serveRenewalOffer(w http.ResponseWriter, r *http.Request, log *slog.Logger, adm *admission) {
	peer, status, code, detail := s.peer(r)
	if status != 0 {
		problem(w, status, code, detail)
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wire.MaxRenewalQueryBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		problem(w, http.StatusRequestEntityTooLarge, "bad-query", fmt.Sprintf("query larger than %d bytes", wire.MaxRenewalQueryBytes))
		return
	}
	if err != nil {
		problem(w, http.StatusBadRequest, "bad-query", err.Error())
		return
	}
	var q wire.RenewalQuery
	if err := strictjson.Decode(raw, &q); err != nil {
		problem(w, http.StatusBadRequest, "bad-query", "query JSON: "+err.Error())
		return
	}
	if !adm.enter(r.Context()) {
		adm.busy(w)
		return
	}
	body, err := s.RenewalOffer(r.Context(), &q)
	adm.leave()
	switch {
	case err == nil && body == nil:
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	case err == nil:
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	case errors.Is(err, ErrRenewalUnavailable), errors.Is(err, ErrNoRenewals):
		problem(w, http.StatusServiceUnavailable, wire.ProblemRenewalUnavailable, "this back office issues no card data renewals")
	case errors.Is(err, ErrRenewalQuery):
		problem(w, http.StatusBadRequest, "bad-query", err.Error())
	case errors.Is(err, ErrBadCardSOD):
		problem(w, http.StatusUnprocessableEntity, wire.ProblemBadSOD, err.Error())
	default:
		if log != nil && !errors.Is(err, context.Canceled) {
			log.Error("renewal offer failed", "terminal", peer.Terminal, "err", err)
		}
		w.Header().Set("Retry-After", "5")
		problem(w, http.StatusServiceUnavailable, "unavailable", "the back office cannot answer now; try again")
	}
}

func health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readBatch reads a (possibly gzip-compressed) batch within the limits.
func readBatch(r *http.Request) (*wire.Batch, int, error) {
	body := io.Reader(http.MaxBytesReader(nil, r.Body, wire.MaxBatchBytes))
	switch strings.ToLower(r.Header.Get("Content-Encoding")) {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("gzip: %v", err)
		}
		defer zr.Close()
		body = io.LimitReader(zr, wire.MaxBatchBytes+1)
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("content encoding %q: gzip or none", r.Header.Get("Content-Encoding"))
	}
	raw, err := io.ReadAll(body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || len(raw) > wire.MaxBatchBytes {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("batch larger than %d bytes", wire.MaxBatchBytes)
	}
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	var b wire.Batch
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("batch JSON: %v", err)
	}
	return &b, 0, nil // the record count is Ingest's to check (ErrBatch)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *Service) internal(w http.ResponseWriter, log *slog.Logger, err error) {
	if log != nil && !errors.Is(err, context.Canceled) {
		log.Error("request failed", "err", err)
	}
	problem(w, http.StatusServiceUnavailable, "unavailable", "the back office cannot answer now; try again")
}

func problem(w http.ResponseWriter, status int, code, detail string) {
	writeJSON(w, status, wire.Problem{Error: code, Detail: detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
