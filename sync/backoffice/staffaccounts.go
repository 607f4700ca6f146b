package backoffice

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Account management (the admin's API on the staff listener and the
// kpe-backoffice user commands) and the audit log's API.

// NewAccount is what AddAccount takes.
type NewAccount struct {
	Name     string   `json:"name"`
	Roles    []Role   `json:"roles"`
	Services []string `json:"services,omitempty"`
	Password string   `json:"password,omitempty"` // "": none (then OIDC)
	OIDC     bool     `json:"oidc,omitempty"`
	// OIDCSubject binds the account to this subject (the ID token's sub)
	// at the OIDC provider from the start; "" : bound at its first OIDC
	// sign-in. Implies OIDC.
	OIDCSubject string `json:"oidc_subject,omitempty"`
}

// AccountView is an account as the API and `user list` show it: never
// the hash.
type AccountView struct {
	Name        string    `json:"name"`
	Roles       []Role    `json:"roles"`
	Services    []string  `json:"services,omitempty"`
	Disabled    bool      `json:"disabled"`
	Password    bool      `json:"password"`
	OIDC        bool      `json:"oidc"`
	OIDCIssuer  string    `json:"oidc_issuer,omitempty"` // the OIDC identity it is bound to ("": not yet)
	OIDCSubject string    `json:"oidc_subject,omitempty"`
	Created     time.Time `json:"created"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
}

// View is a's public view.
func (a *Account) View() AccountView {
	return AccountView{Name: a.Name, Roles: a.Roles, Services: a.Services, Disabled: a.Disabled, Password: a.PasswordHash != "",
		OIDC: a.OIDC, OIDCIssuer: a.OIDCIssuer, OIDCSubject: a.OIDCSubject, Created: a.Created, LockedUntil: a.LockedUntil}
}

// Actor is who changes accounts: a signed-in principal (nil: the
// kpe-backoffice command line, audited as "cli") and the client address.
type Actor struct {
	P      *Principal
	Client string
}

func (a Actor) principal() *Principal {
	if a.P == nil {
		return &Principal{Account: "cli"}
	}
	return a.P
}

// AddAccount creates an account (ErrAccount, ErrAccountExists) and
// audits it.
func (s *Service) AddAccount(ctx context.Context, n NewAccount, by Actor) error {
	st, err := s.accounts()
	if err != nil {
		return err
	}
	a := &Account{Name: n.Name, Roles: n.Roles, Services: n.Services, OIDC: n.OIDC || n.OIDCSubject != "", OIDCSubject: n.OIDCSubject,
		Created: s.cfg.Now().UTC()}
	if n.Password != "" {
		if err := CheckPassword(n.Password); err != nil {
			return err
		}
		a.PasswordHash = "pending" // CheckAccount wants one; hashed below, after the cheap checks
	}
	if err := CheckAccount(a); err != nil {
		return err
	}
	if n.Password != "" {
		if a.PasswordHash, err = HashPassword(n.Password, s.hashParams()); err != nil {
			return err
		}
	}
	if err := st.CreateAccount(ctx, a); err != nil {
		return err
	}
	return s.audit(ctx, by.principal(), AuditAccountAdd, a.Name, by.Client, "ok", describe(a))
}

func describe(a *Account) string {
	roles := make([]string, len(a.Roles))
	for i, r := range a.Roles {
		roles[i] = string(r)
	}
	d := "roles=" + strings.Join(roles, ",")
	if len(a.Services) > 0 {
		d += " services=" + strings.Join(a.Services, ",")
	}
	if a.OIDC {
		d += " oidc"
	}
	if a.OIDCSubject != "" {
		d += " oidc-subject=" + a.OIDCSubject
	}
	return d
}

// SetRoles replaces an account's roles and services (ErrAccount,
// ErrNotFound); the account's open sessions end (it signs in anew under
// the new roles).
func (s *Service) SetRoles(ctx context.Context, name string, roles []Role, services []string, by Actor) error {
	return s.changeAccount(ctx, name, AuditAccountRoles, by, func(a *Account) error {
		a.Roles, a.Services = roles, services
		return CheckAccount(a)
	})
}

// DisableAccount disables an account: it can no longer sign in, and its
// open sessions end at their next request (Account.SessionsAfter), also
// when it is enabled again before that.
func (s *Service) DisableAccount(ctx context.Context, name string, by Actor) error {
	return s.changeAccount(ctx, name, AuditAccountOff, by, func(a *Account) error {
		a.Disabled = true
		return nil
	})
}

// EnableAccount enables a disabled account again; sessions signed in
// before stay ended (Account.SessionsAfter): it signs in anew.
func (s *Service) EnableAccount(ctx context.Context, name string, by Actor) error {
	return s.changeAccount(ctx, name, AuditAccountOn, by, func(a *Account) error {
		a.Disabled = false
		return nil
	})
}

// SetPassword sets a new password (CheckPassword), lifts a lock-out and
// ends the account's open sessions.
func (s *Service) SetPassword(ctx context.Context, name, password string, by Actor) error {
	if err := CheckPassword(password); err != nil {
		return err
	}
	h, err := HashPassword(password, s.hashParams())
	if err != nil {
		return err
	}
	return s.changeAccount(ctx, name, AuditAccountPasswd, by, func(a *Account) error {
		a.PasswordHash, a.Failures, a.LockedUntil = h, 0, time.Time{}
		return nil
	})
}

// changeAccount changes an account through f and audits it. Every
// change it makes (roles, disable, enable, password) ends the sessions
// signed in before it: the gate refuses a session older than
// Account.SessionsAfter.
func (s *Service) changeAccount(ctx context.Context, name, action string, by Actor, f func(*Account) error) error {
	st, err := s.accounts()
	if err != nil {
		return err
	}
	var after *Account
	err = st.UpdateAccount(ctx, name, func(a *Account) error {
		if err := f(a); err != nil {
			return err
		}
		a.SessionsAfter = s.cfg.Now().UTC()
		after = a
		return nil
	})
	if err != nil {
		return err
	}
	return s.audit(ctx, by.principal(), action, name, by.Client, "ok", describe(after))
}

// ListAccounts lists the accounts by name.
func (s *Service) ListAccounts(ctx context.Context) ([]AccountView, error) {
	st, err := s.accounts()
	if err != nil {
		return nil, err
	}
	all, err := st.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]AccountView, len(all))
	for i := range all {
		out[i] = all[i].View()
	}
	return out, nil
}

// AuditLog pages the audit log, newest first.
func (s *Service) AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	st, err := s.accounts()
	if err != nil {
		return nil, err
	}
	return st.AuditLog(ctx, q)
}

// decodeJSON reads one JSON object of at most 16 KiB strictly into v.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
		return errMediaType
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<10))
	if err != nil {
		return errors.New("the body is unreadable or too long")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("the body is not acceptable: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("the body must hold one JSON object and nothing after it")
	}
	return nil
}

// accountAnswer writes the answer to an account change.
func (s *Service) accountAnswer(w http.ResponseWriter, log *slog.Logger, err error, status int) {
	switch {
	case errors.Is(err, errMediaType):
		problem(w, http.StatusUnsupportedMediaType, "bad-account", err.Error())
	case errors.Is(err, ErrAccount):
		problem(w, http.StatusBadRequest, "bad-account", strings.TrimPrefix(err.Error(), "backoffice: "))
	case errors.Is(err, ErrAccountExists):
		problem(w, http.StatusConflict, "account-exists", "an account of that name exists already")
	case errors.Is(err, ErrNotFound):
		problem(w, http.StatusNotFound, "unknown-account", "no account has this name")
	case err != nil && strings.HasPrefix(err.Error(), "the body"):
		problem(w, http.StatusBadRequest, "bad-account", err.Error())
	case err != nil:
		s.internal(w, log, err)
	default:
		w.WriteHeader(status)
	}
}

// actorOf is who acts in r: the signed-in principal from its address.
func actorOf(r *http.Request) Actor {
	return Actor{P: PrincipalFrom(r.Context()), Client: r.RemoteAddr}
}

// accountRoutes registers the admin's account API and the audit log on
// mux (StaffHandler).
func (s *Service) accountRoutes(mux *http.ServeMux, log *slog.Logger) {
	mux.Handle("GET /v1/accounts", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := s.ListAccounts(r.Context())
		if err != nil {
			s.internal(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"accounts": nonNil(v)})
	}), RoleAdmin))
	mux.Handle("POST /v1/accounts", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n NewAccount
		err := decodeJSON(w, r, &n)
		if err == nil {
			err = s.AddAccount(r.Context(), n, actorOf(r))
		}
		s.accountAnswer(w, log, err, http.StatusCreated)
	}), RoleAdmin))
	mux.Handle("POST /v1/accounts/{name}/roles", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Roles    []Role   `json:"roles"`
			Services []string `json:"services"`
		}
		err := decodeJSON(w, r, &b)
		if err == nil {
			err = s.SetRoles(r.Context(), r.PathValue("name"), b.Roles, b.Services, actorOf(r))
		}
		s.accountAnswer(w, log, err, http.StatusNoContent)
	}), RoleAdmin))
	mux.Handle("POST /v1/accounts/{name}/disable", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.accountAnswer(w, log, s.DisableAccount(r.Context(), r.PathValue("name"), actorOf(r)), http.StatusNoContent)
	}), RoleAdmin))
	mux.Handle("POST /v1/accounts/{name}/enable", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.accountAnswer(w, log, s.EnableAccount(r.Context(), r.PathValue("name"), actorOf(r)), http.StatusNoContent)
	}), RoleAdmin))
	mux.Handle("POST /v1/accounts/{name}/password", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Password string `json:"password"`
		}
		err := decodeJSON(w, r, &b)
		if err == nil {
			err = s.SetPassword(r.Context(), r.PathValue("name"), b.Password, actorOf(r))
		}
		s.accountAnswer(w, log, err, http.StatusNoContent)
	}), RoleAdmin))
	mux.Handle("GET /v1/audit", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, err := strconv.Atoi(cmp.Or(r.URL.Query().Get("limit"), "100"))
		if err != nil || limit < 1 || limit > 1000 {
			problem(w, http.StatusBadRequest, "bad-limit", "limit must be 1..1000")
			return
		}
		before, err := strconv.ParseInt(cmp.Or(r.URL.Query().Get("before"), "0"), 10, 64)
		if err != nil || before < 0 {
			problem(w, http.StatusBadRequest, "bad-before", "before must be an entry id (a whole number)")
			return
		}
		e, err := s.AuditLog(r.Context(), AuditQuery{Before: before, Limit: limit})
		if err != nil {
			s.internal(w, log, err)
			return
		}
		out := map[string]any{"entries": nonNil(e)}
		if len(e) == limit {
			out["next"] = fmt.Sprintf("/v1/audit?before=%d&limit=%d", e[len(e)-1].ID, limit)
		}
		writeJSON(w, http.StatusOK, out)
	}), RoleAuditor, RoleAdmin))
}
