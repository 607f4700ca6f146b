package backoffice

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"kpe-agent/internal/strictjson"
	"kpe-agent/sync/wire"
)

// serveTopUpOffer answers POST /v1/topup/offer (docs/ewallet.md, part 3):
// the terminal's identity as for records; the body a strict
// wire.TopUpQuery of at most wire.MaxTopUpQueryBytes; the answer 200
// wire.TopUpOffers (no authorisation when none can be issued), 422
// bad-sod when the card's EF.SOD and DG1 do not show the NIP is the
// card's (renewal.CheckCard), 400 bad-query without them. An
// authorisation costs a signature in the issuer's HSM and a store write:
// it takes an ingest slot like a batch. The log names the terminal and
// the top-up id, never the NIP.
func (s *Service) serveTopUpOffer(w http.ResponseWriter, r *http.Request, log *slog.Logger, adm *admission) {
	peer, status, code, detail := s.peer(r)
	if status != 0 {
		problem(w, status, code, detail)
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wire.MaxTopUpQueryBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		problem(w, http.StatusRequestEntityTooLarge, "bad-query", fmt.Sprintf("query larger than %d bytes", wire.MaxTopUpQueryBytes))
		return
	}
	if err != nil {
		problem(w, http.StatusBadRequest, "bad-query", err.Error())
		return
	}
	var q wire.TopUpQuery
	if err := strictjson.Decode(raw, &q); err != nil {
		problem(w, http.StatusBadRequest, "bad-query", "query JSON: "+err.Error())
		return
	}
	if !adm.enter(r.Context()) {
		adm.busy(w)
		return
	}
	auths, err := s.TopUpOffer(r.Context(), &q)
	adm.leave()
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, wire.TopUpOffers{Authorisations: nonNil(auths)})
	case errors.Is(err, ErrTopUpUnavailable), errors.Is(err, ErrNoTopUps):
		problem(w, http.StatusServiceUnavailable, wire.ProblemTopUpUnavailable, "this back office issues no top-ups")
	case errors.Is(err, ErrTopUpQuery):
		problem(w, http.StatusBadRequest, "bad-query", err.Error())
	case errors.Is(err, ErrBadCardSOD):
		problem(w, http.StatusUnprocessableEntity, wire.ProblemBadSOD, err.Error())
	default:
		if log != nil && !errors.Is(err, context.Canceled) {
			log.Error("top-up offer failed", "terminal", peer.Terminal, "err", err)
		}
		w.Header().Set("Retry-After", "5")
		problem(w, http.StatusServiceUnavailable, "unavailable", "the back office cannot answer now; try again")
	}
}

// Who may list the top-ups and who may stage and cancel them.
var (
	topUpRoles      = []Role{RoleVerifier, RoleAdmin}
	topUpStageRoles = []Role{RoleAdmin}
)

// PathTopUps is the staff API of top-ups: GET (?status=&nip=&limit=) lists
// them, POST stages one ({"nip", "amount", "ref"}), POST /{id}/cancel
// cancels a staged one.
const PathTopUps = "/v1/topups"

// maxTopUpBody bounds a staging request's body.
const maxTopUpBody = 4 << 10

// TopUpView is a top-up as the staff API and the command line show it.
type TopUpView struct {
	ID              string      `json:"id"`
	NIP             string      `json:"nip"`
	Amount          uint32      `json:"amount"`
	Ref             string      `json:"ref"`
	StagedAt        time.Time   `json:"staged_at"`
	StagedBy        string      `json:"staged_by"`
	Status          TopUpStatus `json:"status"`
	Authorisations  int         `json:"authorisations"`
	AuthSerial      string      `json:"auth_serial,omitempty"`
	AuthPTC         *uint32     `json:"auth_ptc,omitempty"`
	AuthNotAfter    *time.Time  `json:"auth_not_after,omitempty"`
	AppliedAt       *time.Time  `json:"applied_at,omitempty"`
	AppliedCode     string      `json:"applied_code,omitempty"`
	AppliedTerminal string      `json:"applied_terminal,omitempty"`
	AppliedSerial   string      `json:"applied_serial,omitempty"`
	AppliedPTC      *uint32     `json:"applied_ptc,omitempty"`
}

// View is the top-up's TopUpView.
func (t TopUp) View() TopUpView {
	v := TopUpView{ID: hex.EncodeToString(t.ID[:]), NIP: t.NIP, Amount: t.Amount, Ref: t.Ref, StagedAt: t.StagedAt.UTC(), StagedBy: t.StagedBy,
		Status: t.Status, Authorisations: t.Authorisations}
	if t.Status == TopUpAuthorised || t.Status == TopUpApplied && t.Authorisations > 0 {
		ptc, na := t.AuthPTC, t.AuthNotAfter.UTC()
		v.AuthSerial, v.AuthPTC, v.AuthNotAfter = hex.EncodeToString(t.AuthSerial[:]), &ptc, &na
	}
	if t.Status == TopUpApplied {
		at, ptc := t.AppliedAt.UTC(), t.AppliedPTC
		v.AppliedAt, v.AppliedCode, v.AppliedTerminal, v.AppliedSerial, v.AppliedPTC = &at, t.AppliedCode, t.AppliedTerminal,
			hex.EncodeToString(t.AppliedSerial[:]), &ptc
	}
	return v
}

// ParseTopUpID reads a top-up id (32 hex digits).
func ParseTopUpID(s string) ([16]byte, error) {
	var id [16]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("%w: id: want 32 hex digits", ErrTopUpQuery)
	}
	copy(id[:], b)
	return id, nil
}

// topUpAPI adds the staff API of top-ups to mux. Staging and
// cancelling go into the audit log (the target is the top-up id, never
// the NIP).
func (s *Service) topUpAPI(mux *http.ServeMux, log *slog.Logger) {
	mux.Handle("GET "+PathTopUps, requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		st := TopUpStatus(q.Get("status"))
		if st != "" && !containsStatus(st) {
			problem(w, http.StatusBadRequest, "bad-status", "status: staged, authorised, applied or cancelled")
			return
		}
		limit, err := strconv.Atoi(cmp.Or(q.Get("limit"), "500"))
		if err != nil || limit < 1 || limit > 10000 {
			problem(w, http.StatusBadRequest, "bad-limit", "limit must be 1..10000")
			return
		}
		ts, err := s.TopUps(r.Context(), TopUpFilter{Status: st, NIP: q.Get("nip"), Limit: limit})
		if err != nil {
			s.topUpProblem(w, log, err)
			return
		}
		views := []TopUpView{}
		for _, t := range ts {
			views = append(views, t.View())
		}
		writeJSON(w, http.StatusOK, map[string]any{"topups": views})
	}), topUpRoles...))
	mux.Handle("POST "+PathTopUps, requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
			problem(w, http.StatusUnsupportedMediaType, "bad-media-type", "send application/json")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTopUpBody))
		if err != nil {
			problem(w, http.StatusBadRequest, "bad-request", fmt.Sprintf("the body is unreadable or longer than %d bytes", maxTopUpBody))
			return
		}
		var req TopUpRequest
		if err := strictjson.Decode(body, &req); err != nil {
			problem(w, http.StatusBadRequest, "bad-request", `the body must be {"nip": "...", "amount": n, "ref": "..."}: `+err.Error())
			return
		}
		who := PrincipalFrom(r.Context())
		t, err := s.StageTopUp(r.Context(), req, who.Account)
		if err != nil {
			s.topUpProblem(w, log, err)
			return
		}
		if err := s.audit(r.Context(), who, AuditTopUpStage, hex.EncodeToString(t.ID[:]), r.RemoteAddr, "ok",
			fmt.Sprintf("Rp %d, ref %s", t.Amount, t.Ref)); err != nil && log != nil {
			log.Error("top-up staged, but its audit entry was not written", "topup", hex.EncodeToString(t.ID[:]), "err", err)
		}
		writeJSON(w, http.StatusCreated, t.View())
	}), topUpStageRoles...))
	mux.Handle("POST "+PathTopUps+"/{id}/cancel", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := ParseTopUpID(r.PathValue("id"))
		if err != nil {
			s.topUpProblem(w, log, err)
			return
		}
		if err := s.CancelTopUp(r.Context(), id); err != nil {
			s.topUpProblem(w, log, err)
			return
		}
		if err := s.audit(r.Context(), PrincipalFrom(r.Context()), AuditTopUpCancel, hex.EncodeToString(id[:]), r.RemoteAddr, "ok", ""); err != nil && log != nil {
			log.Error("top-up cancelled, but its audit entry was not written", "topup", hex.EncodeToString(id[:]), "err", err)
		}
		w.WriteHeader(http.StatusNoContent)
	}), topUpStageRoles...))
}

func containsStatus(st TopUpStatus) bool {
	for _, x := range TopUpStatuses {
		if x == st {
			return true
		}
	}
	return false
}

// topUpProblem answers a top-up error with its problem.
func (s *Service) topUpProblem(w http.ResponseWriter, log *slog.Logger, err error) {
	var le *TopUpLimitError
	switch {
	case errors.As(err, &le):
		problem(w, http.StatusUnprocessableEntity, "topup-limit", le.Error())
	case errors.Is(err, ErrTopUpRef):
		problem(w, http.StatusConflict, "topup-ref-exists", err.Error())
	case errors.Is(err, ErrTopUpQuery):
		problem(w, http.StatusBadRequest, "bad-request", err.Error())
	case errors.Is(err, ErrNotFound):
		problem(w, http.StatusNotFound, "unknown-topup", "no such top-up")
	case errors.Is(err, ErrTopUpState):
		problem(w, http.StatusConflict, "topup-state", err.Error())
	case errors.Is(err, ErrNoTopUps):
		problem(w, http.StatusServiceUnavailable, wire.ProblemTopUpUnavailable, "this back office keeps no top-ups")
	default:
		s.internal(w, log, err)
	}
}
