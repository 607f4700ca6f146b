package backoffice

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The admin's accounts page and the audit log page (docs/staff-pages.md).
// The accounts page's forms change accounts through the same Service
// methods as the account API (AddAccount, SetRoles, DisableAccount,
// EnableAccount, SetPassword), which check and audit every change; the
// page only reads the forms and says the outcome in the user's language.

// auditPageSize is how many audit entries one page shows.
const auditPageSize = 50

// accountsDone are the messages after a change (?done=), by the change.
var accountsDone = map[string]string{
	"added":    "staff.accounts.done.added",
	"roles":    "staff.accounts.done.roles",
	"disabled": "staff.accounts.done.disabled",
	"enabled":  "staff.accounts.done.enabled",
	"password": "staff.accounts.done.password",
}

// accountsPage is the accounts page's view.
type accountsPage struct {
	Accounts []accountRow
	Roles    []roleOption // the add form's checkboxes
	Done     string       // catalogue key of the last change's message
	DoneName string
	Error    string // catalogue key of the error
	ErrorOn  string // the account whose form failed ("" : the add form)
	Message  string // the error in the page's language (localise)
	Add      addForm
}

// localise words the error: the password's bounds are the constants'.
func (p *accountsPage) localise(d *pageData) {
	switch p.Error {
	case "":
	case "staff.accounts.err." + ReasonPasswordShort:
		p.Message = d.T(p.Error, MinPassword)
	case "staff.accounts.err." + ReasonPasswordLong:
		p.Message = d.T(p.Error, MaxPassword)
	default:
		p.Message = d.T(p.Error)
	}
}

type roleOption struct {
	Value, Label string
	Checked      bool
}

type accountRow struct {
	Name, Services, Created, LockedUntil string
	RoleLabels, Methods                  []string // catalogue keys
	Roles                                []roleOption
	Disabled                             bool
	Path                                 string // /accounts/{name}
}

// addForm is what the add form held (shown again after an error; never
// the passwords).
type addForm struct {
	Name, Services string
	Roles          []string
	OIDC           bool
}

func roleOptions(have []string) []roleOption {
	out := make([]roleOption, len(Roles))
	for i, r := range Roles {
		out[i] = roleOption{Value: string(r), Label: "staff.accounts.role." + string(r), Checked: slices.Contains(have, string(r))}
	}
	return out
}

func accountRowOf(a AccountView, now time.Time, loc *time.Location) accountRow {
	roles := make([]string, len(a.Roles))
	row := accountRow{Name: a.Name, Services: strings.Join(a.Services, ", "), Created: when(a.Created, loc), LockedUntil: "—",
		Disabled: a.Disabled, Path: "/accounts/" + url.PathEscape(a.Name)}
	for i, r := range a.Roles {
		roles[i] = string(r)
		row.RoleLabels = append(row.RoleLabels, "staff.accounts.role."+string(r))
	}
	row.Roles = roleOptions(roles)
	if a.Password {
		row.Methods = append(row.Methods, "staff.accounts.method.password")
	}
	if a.OIDC {
		row.Methods = append(row.Methods, "staff.accounts.method.oidc")
	}
	if !a.LockedUntil.IsZero() && a.LockedUntil.After(now) {
		row.LockedUntil = when(a.LockedUntil, loc)
	}
	return row
}

// accountErrKey is the catalogue key and status of an account change's
// error; ok is false for an error the user cannot mend (internal).
func accountErrKey(err error) (key string, status int, ok bool) {
	var ae *AccountError
	switch {
	case errors.As(err, &ae):
		return "staff.accounts.err." + ae.Reason, http.StatusBadRequest, true
	case errors.Is(err, ErrAccountExists):
		return "staff.accounts.err.exists", http.StatusConflict, true
	case errors.Is(err, ErrNotFound):
		return "staff.accounts.err.unknown", http.StatusNotFound, true
	case errors.Is(err, errPasswordMismatch):
		return "staff.accounts.err.mismatch", http.StatusBadRequest, true
	}
	return "", 0, false
}

var errPasswordMismatch = errors.New("backoffice: the two passwords differ")

// formServices reads the services field: names separated by commas or
// spaces.
func formServices(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// formRoles reads the role checkboxes.
func formRoles(r *http.Request) []Role {
	r.ParseForm() // parsed already unless the token came in X-CSRF-Token; a bad body reads as empty
	var out []Role
	for _, v := range r.PostForm["role"] {
		out = append(out, Role(v))
	}
	return out
}

// formPassword is the password typed twice (errPasswordMismatch when the
// two differ).
func formPassword(r *http.Request) (string, error) {
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("password2") {
		return "", errPasswordMismatch
	}
	return pw, nil
}

// auditPage is the audit log page's view.
type auditPage struct {
	Account, Action, From, To string
	Actions                   []actionOption
	Entries                   []auditRow
	Error                     string // catalogue key
	Before                    int64
	next                      int64 // the id the next page starts below (0: no next page)
	Next, Newest              string
}

type actionOption struct {
	Value, Label string
	Selected     bool
}

type auditRow struct {
	ID                                                        int64
	At, Actor, Action, Label, Target, Client, Outcome, Detail string
}

// localise puts the paging links, in the page's language, on the view.
func (p *auditPage) localise(d *pageData) {
	kv := []string{}
	for _, f := range [][2]string{{"account", p.Account}, {"action", p.Action}, {"from", p.From}, {"to", p.To}} {
		if f[1] != "" {
			kv = append(kv, f[0], f[1])
		}
	}
	if p.next > 0 {
		p.Next = d.Link("/audit", append(slices.Clone(kv), "before", strconv.FormatInt(p.next, 10))...)
	}
	if p.Before > 0 {
		p.Newest = d.Link("/audit", kv...)
	}
}

// adminPages registers the accounts page (admin) and the audit log page
// (auditor, admin) on mux.
func (s *Service) adminPages(mux *http.ServeMux, render renderFunc, log *slog.Logger, loc *time.Location) {
	showAccounts := func(w http.ResponseWriter, r *http.Request, status int, v *accountsPage) {
		all, err := s.ListAccounts(r.Context())
		if err != nil {
			s.internal(w, log, err)
			return
		}
		for _, a := range all {
			v.Accounts = append(v.Accounts, accountRowOf(a, s.cfg.Now(), loc))
		}
		v.Roles = roleOptions(v.Add.Roles)
		render(w, r, status, "accounts", "staff.accounts.title", v)
	}
	// answer ends a change: 303 back to the list with its message, or
	// the page again with the error (on the add form or the account's).
	answer := func(w http.ResponseWriter, r *http.Request, err error, done, name string, v *accountsPage) {
		if err == nil {
			q := url.Values{"lang": {string(pageLang(r))}, "done": {done}, "account": {name}}
			http.Redirect(w, r, "/accounts?"+q.Encode()+"#account-"+url.PathEscape(name), http.StatusSeeOther)
			return
		}
		key, status, ok := accountErrKey(err)
		if !ok {
			s.internal(w, log, err)
			return
		}
		v.Error = key
		showAccounts(w, r, status, v)
	}

	mux.Handle("GET /accounts", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := &accountsPage{}
		if key, ok := accountsDone[r.URL.Query().Get("done")]; ok {
			v.Done, v.DoneName = key, r.URL.Query().Get("account")
		}
		showAccounts(w, r, http.StatusOK, v)
	}), accountRoles...))

	// the forms: the sign-in checked the csrf_token (and bounded the body)
	mux.Handle("POST /accounts", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := NewAccount{Name: strings.TrimSpace(r.PostFormValue("name")), Roles: formRoles(r),
			Services: formServices(r.PostFormValue("services")), OIDC: r.PostFormValue("oidc") != ""}
		pw, err := formPassword(r)
		if err == nil {
			n.Password = pw
			err = s.AddAccount(r.Context(), n, actorOf(r))
		}
		v := &accountsPage{Add: addForm{Name: n.Name, Services: r.PostFormValue("services"), OIDC: n.OIDC}}
		for _, role := range n.Roles {
			v.Add.Roles = append(v.Add.Roles, string(role))
		}
		answer(w, r, err, "added", n.Name, v)
	}), accountRoles...))
	mux.Handle("POST /accounts/{name}/roles", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		err := s.SetRoles(r.Context(), name, formRoles(r), formServices(r.PostFormValue("services")), actorOf(r))
		answer(w, r, err, "roles", name, &accountsPage{ErrorOn: name})
	}), accountRoles...))
	mux.Handle("POST /accounts/{name}/disable", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		answer(w, r, s.DisableAccount(r.Context(), name, actorOf(r)), "disabled", name, &accountsPage{ErrorOn: name})
	}), accountRoles...))
	mux.Handle("POST /accounts/{name}/enable", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		answer(w, r, s.EnableAccount(r.Context(), name, actorOf(r)), "enabled", name, &accountsPage{ErrorOn: name})
	}), accountRoles...))
	mux.Handle("POST /accounts/{name}/password", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		pw, err := formPassword(r)
		if err == nil {
			err = s.SetPassword(r.Context(), name, pw, actorOf(r))
		}
		answer(w, r, err, "password", name, &accountsPage{ErrorOn: name})
	}), accountRoles...))

	mux.Handle("GET /audit", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		qv := r.URL.Query()
		v := &auditPage{Account: strings.TrimSpace(qv.Get("account")), Action: qv.Get("action"), From: qv.Get("from"), To: qv.Get("to")}
		for _, a := range AuditActions {
			v.Actions = append(v.Actions, actionOption{Value: a, Label: "staff.audit.action." + a, Selected: a == v.Action})
		}
		q, errKey := auditQuery(qv, v, loc)
		if errKey != "" {
			v.Error = errKey
			render(w, r, http.StatusBadRequest, "audit", "staff.audit.title", v)
			return
		}
		es, err := s.AuditLog(r.Context(), q)
		if err != nil {
			s.internal(w, log, err)
			return
		}
		if len(es) > auditPageSize {
			es = es[:auditPageSize]
			v.next = es[len(es)-1].ID
		}
		for _, e := range es {
			row := auditRow{ID: e.ID, At: when(e.At, loc), Actor: e.Actor, Action: e.Action, Target: e.Target, Client: e.Client, Outcome: e.Outcome, Detail: e.Detail}
			if slices.Contains(AuditActions, e.Action) {
				row.Label = "staff.audit.action." + e.Action
			}
			v.Entries = append(v.Entries, row)
		}
		render(w, r, http.StatusOK, "audit", "staff.audit.title", v)
	}), auditRoles...))
}

// auditQuery reads the audit page's filters and paging into a query one
// entry longer than a page (to know whether there is a next page), or
// names the error (a catalogue key).
func auditQuery(qv url.Values, v *auditPage, loc *time.Location) (AuditQuery, string) {
	q := AuditQuery{Account: v.Account, Limit: auditPageSize + 1}
	if v.Action != "" {
		if !slices.Contains(AuditActions, v.Action) {
			return q, "staff.audit.bad-action"
		}
		q.Action = v.Action
	}
	for _, f := range []struct {
		s string
		t *time.Time
	}{{v.From, &q.From}, {v.To, &q.To}} {
		if f.s == "" {
			continue
		}
		t, err := time.ParseInLocation("2006-01-02", f.s, loc)
		if err != nil {
			return q, "staff.audit.bad-date"
		}
		*f.t = t
	}
	if !q.To.IsZero() {
		q.To = q.To.AddDate(0, 0, 1) // the whole last day
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return q, "staff.audit.bad-range"
	}
	if b := qv.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 1 {
			return q, "staff.audit.bad-before"
		}
		q.Before, v.Before = n, n
	}
	return q, ""
}
