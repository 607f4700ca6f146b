package backoffice

import (
	"bytes"
	"cmp"
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
	"strconv"
	"strings"
	"time"

	"kpe-agent/internal/i18n"
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

func serveVerifyPage(w http.ResponseWriter, r *http.Request) {
	l := i18n.Negotiate(r.URL.Query().Get("lang"), "", r.Header.Get("Accept-Language"), i18n.Default)
	var buf bytes.Buffer
	if err := verifyPage.Execute(&buf, struct {
		Lang  i18n.Lang
		Title string
		Texts template.JS
	}{l, l.T("staff.verify.title"), verifyTexts}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Vary", "Accept-Language")
	w.Write(buf.Bytes())
}

// TerminalHandler serves the terminals' side: POST /v1/records and
// GET /v1/health. Mount it on a TLS server that requires and verifies
// client certificates; the certificate's one common name is the terminal
// id records must carry. A request without a verified certificate is
// refused (401 client-certificate), as is a certificate that names no
// usable terminal id (403 terminal-identity); plain HTTP only with
// Config.PlaintextTerminals (unbound, lab only).
func (s *Service) TerminalHandler(log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.PathHealth, health)
	mux.HandleFunc("POST "+wire.PathRecords, func(w http.ResponseWriter, r *http.Request) {
		peer, status, code, detail := s.peer(r)
		if status != 0 {
			problem(w, status, code, detail)
			return
		}
		b, status, err := readBatch(r)
		if err != nil {
			problem(w, status, "bad-batch", err.Error())
			return
		}
		res, err := s.Ingest(r.Context(), b, peer)
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
	return mux
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

// StaffHandler serves back-office staff: the code verification page (/),
// GET /v1/verify/{code}, GET /v1/terminals/{id}, GET /v1/alarms and
// GET /v1/reports/semester?semester=2026-1 (CSV). It holds no personal
// data beyond what a verification shows; put it behind the institution's
// staff network or proxy.
func (s *Service) StaffHandler(log *slog.Logger, loc *time.Location) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.PathHealth, health)
	mux.HandleFunc("GET /{$}", serveVerifyPage)
	mux.HandleFunc("GET "+wire.PathVerify+"{code}", func(w http.ResponseWriter, r *http.Request) {
		v, err := s.Verify(r.Context(), r.PathValue("code"))
		if err != nil {
			s.internal(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	mux.HandleFunc("GET "+wire.PathTerminal+"{id}", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.Terminal(r.Context(), r.PathValue("id"))
		if errors.Is(err, ErrNotFound) {
			problem(w, http.StatusNotFound, "unknown-terminal", "no record from this terminal has arrived")
			return
		}
		if err != nil {
			s.internal(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /v1/alarms", func(w http.ResponseWriter, r *http.Request) {
		limit, err := strconv.Atoi(cmp.Or(r.URL.Query().Get("limit"), "100"))
		if err != nil || limit < 1 || limit > 10000 {
			problem(w, http.StatusBadRequest, "bad-limit", "limit must be 1..10000")
			return
		}
		a, err := s.store.Alarms(r.Context(), limit)
		if err != nil {
			s.internal(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"alarms": nonNil(a)})
	})
	mux.HandleFunc("GET "+wire.PathReport, func(w http.ResponseWriter, r *http.Request) {
		sem, err := ParseSemester(r.URL.Query().Get("semester"))
		if err != nil {
			problem(w, http.StatusBadRequest, "bad-semester", err.Error())
			return
		}
		lines, err := s.Report(r.Context(), sem, loc)
		if err != nil {
			s.internal(w, log, err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="ktpel-usage-%s.csv"`, sem))
		WriteReportCSV(w, lines)
	})
	return mux
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
