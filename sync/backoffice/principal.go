package backoffice

import (
	"context"
	"net/http"
	"slices"
)

// Role is what a signed-in staff member may do on the staff listener.
type Role string

// The roles. An account holds one or more.
const (
	// RoleVerifier verifies printed codes.
	RoleVerifier Role = "verifier"
	// RoleInstitution is an institution's staff (ASKES/BPJS, Taspen,
	// Bapertarum): it verifies codes and sees the dashboard, records and
	// reports of its own services (Principal.Services) only.
	RoleInstitution Role = "institution"
	// RoleAuditor reads reports, the dashboard, terminals and alarms, and
	// acknowledges alarms.
	RoleAuditor Role = "auditor"
	// RoleAdmin manages accounts, terminals and SAM revocation, and may
	// do everything the auditor may.
	RoleAdmin Role = "admin"
)

// Roles lists every role, in the order above.
var Roles = []Role{RoleVerifier, RoleInstitution, RoleAuditor, RoleAdmin}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Principal is who a staff request acts for: a signed-in account.
type Principal struct {
	Account string // the account's user name, as the audit log names it
	Roles   []Role
	// Services scopes an institution account: the record services
	// (askes, taspen, …) it may see. Empty for an account without
	// RoleInstitution; an institution account always names at least one.
	Services []string
}

// Has reports whether p holds any of roles.
func (p *Principal) Has(roles ...Role) bool {
	if p == nil {
		return false
	}
	for _, r := range roles {
		if slices.Contains(p.Roles, r) {
			return true
		}
	}
	return false
}

// Scoped reports whether p sees only Services: an institution account
// that holds none of the unscoped roles (verifier, auditor, admin).
func (p *Principal) Scoped() bool {
	return p.Has(RoleInstitution) && !p.Has(RoleVerifier, RoleAuditor, RoleAdmin)
}

// MaySee reports whether p may see records of service.
func (p *Principal) MaySee(service string) bool {
	if p == nil {
		return false
	}
	return !p.Scoped() || slices.Contains(p.Services, service)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom is the principal the sign-in put on the request's
// context, nil when nobody is signed in.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// requireRole serves next only for a principal holding one of roles:
// nobody signed in gets 401 (problem signin-required), a principal
// without the role 403 (problem forbidden-role).
func requireRole(next http.Handler, roles ...Role) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := PrincipalFrom(r.Context())
		switch {
		case p == nil:
			problem(w, http.StatusUnauthorized, "signin-required", "sign in first")
		case !p.Has(roles...):
			problem(w, http.StatusForbidden, "forbidden-role", "your account's role does not allow this")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

type csrfKey struct{}

// WithCSRFToken returns ctx carrying the signed-in session's CSRF token.
func WithCSRFToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, csrfKey{}, token)
}

// CSRFTokenFrom is the session's CSRF token the sign-in put on the
// request's context ("" when nobody is signed in). A page puts it in
// every form as the hidden field csrf_token, and a script sends it as
// the X-CSRF-Token header; a request that changes state without the
// right one is refused.
func CSRFTokenFrom(ctx context.Context) string {
	t, _ := ctx.Value(csrfKey{}).(string)
	return t
}
