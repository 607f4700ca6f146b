package backoffice

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Sign-in through the institution's OpenID Connect provider
// (docs/staff-signin.md, "OIDC"): the authorization code flow with
// state, nonce and PKCE (S256). The provider's verified e-mail address
// must name an enabled local account made with --oidc; the roles are
// that account's. The account is bound to one identity at the provider,
// the ID token's (iss, sub): at its first OIDC sign-in, or from its
// creation (--oidc-subject); then only that identity signs in as it, even
// if the provider later gives its e-mail address to someone else. An
// account holding admin may not sign in through OIDC unless
// OIDCConfig.AllowAdmin says so: the provider, run by the institution,
// would otherwise hold the keys to the back office's accounts.

// OIDCConfig configures the provider.
type OIDCConfig struct {
	Issuer       string // the provider's issuer URL (its discovery document is under it)
	ClientID     string
	ClientSecret string // never logged
	RedirectURL  string // this listener's /login/oidc/callback, as the provider knows it
	// HTTPClient reaches the provider (nil: http.DefaultClient).
	HTTPClient *http.Client
	// AllowAdmin lets accounts holding the admin role sign in through
	// the provider (default: refused; they sign in with a password).
	AllowAdmin bool
}

// OIDC is a discovered provider, for StaffConfig.OIDC.
type OIDC struct {
	oauth      oauth2.Config
	verifier   *oidc.IDTokenVerifier
	client     *http.Client
	allowAdmin bool
}

// NewOIDC discovers the provider at c.Issuer (its
// /.well-known/openid-configuration).
func NewOIDC(ctx context.Context, c OIDCConfig) (*OIDC, error) {
	if c.Issuer == "" || c.ClientID == "" || c.RedirectURL == "" {
		return nil, errors.New("backoffice: OIDC needs the issuer, the client id and the redirect URL")
	}
	if u, err := url.Parse(c.RedirectURL); err != nil || u.Host == "" || u.Path != oidcCallback {
		return nil, fmt.Errorf("backoffice: OIDC redirect URL %q: want this listener's address with the path %s", c.RedirectURL, oidcCallback)
	}
	client := c.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, client), c.Issuer)
	if err != nil {
		return nil, fmt.Errorf("backoffice: OIDC provider %s: %w", c.Issuer, err)
	}
	return &OIDC{
		oauth: oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: c.RedirectURL,
			Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email"}},
		verifier:   p.Verifier(&oidc.Config{ClientID: c.ClientID}),
		client:     client,
		allowAdmin: c.AllowAdmin,
	}, nil
}

const (
	oidcStart    = "/login/oidc"
	oidcCallback = "/login/oidc/callback"
	// the flow's cookie: state, nonce and PKCE verifier until the
	// callback. SameSite=Lax: the callback is a navigation from the
	// provider's site, which a Strict cookie would not follow.
	oidcCookie       = "kpe_oidc"
	secureOIDCCookie = "__Host-kpe_oidc"
	oidcFlowTime     = 10 * time.Minute
)

func oidcCookieName(r *http.Request) string {
	if r.TLS != nil {
		return secureOIDCCookie
	}
	return oidcCookie
}

// oidcBegin sends the browser to the provider.
func (a *staffAuth) oidcBegin(w http.ResponseWriter, r *http.Request) {
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	next := localNext(r.URL.Query().Get("next"))
	path := oidcStart
	if r.TLS != nil {
		path = "/"
	}
	// next may hold dots: base64url keeps it one field of the cookie
	http.SetCookie(w, &http.Cookie{Name: oidcCookieName(r), Value: strings.Join([]string{state, nonce, verifier, base64.RawURLEncoding.EncodeToString([]byte(next))}, "."),
		Path: path, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode, MaxAge: int(oidcFlowTime / time.Second)})
	http.Redirect(w, r, a.oidc.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusSeeOther)
}

var errOIDC = errors.New("backoffice: OIDC sign-in refused")

// oidcCallback takes the provider's answer: the state must be the
// cookie's, the code is exchanged with the PKCE verifier, the ID token
// is verified (signature, issuer, audience, expiry) and its nonce must
// be the cookie's; its verified e-mail names the account.
func (a *staffAuth) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if wait, ok := a.limits.allow(r.RemoteAddr, time.Now()); !ok {
		setRetryAfter(w, wait)
		a.loginForm(w, r, http.StatusTooManyRequests, "limited")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookieName(r), Path: map[bool]string{true: "/", false: oidcStart}[r.TLS != nil], MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	acc, next, detail, err := a.oidcAccount(r)
	if errors.Is(err, errOIDC) {
		a.log.Warn("staff: OIDC sign-in refused", "why", detail, "client", r.RemoteAddr)
		if err := a.s.audit(r.Context(), nil, AuditSignIn, oidcTarget(acc), r.RemoteAddr, "failed", "oidc: "+detail); err != nil {
			a.s.internal(w, a.log, err)
			return
		}
		a.loginForm(w, r, http.StatusUnauthorized, "failed")
		return
	}
	if err != nil {
		a.s.internal(w, a.log, err)
		return
	}
	if err := a.s.audit(r.Context(), nil, AuditSignIn, acc.Name, r.RemoteAddr, "ok", "oidc"); err != nil {
		a.s.internal(w, a.log, err)
		return
	}
	if !a.startSession(w, r, acc.Name) {
		return
	}
	a.log.Info("staff: signed in through OIDC", "account", acc.Name, "client", r.RemoteAddr)
	// A page that goes on by itself, not a redirect: the browser came
	// from the provider's site, and the rest of that navigation would not
	// carry the SameSite=Strict session cookie.
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	oidcDone.Execute(w, next)
}

var oidcDone = template.Must(template.New("done").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={{.}}"><title>OK</title></head>
<body><p><a href="{{.}}">{{.}}</a></p></body></html>
`))

func oidcTarget(a *Account) string {
	if a == nil {
		return ""
	}
	return a.Name
}

// oidcAccount runs the callback's checks; a refusal wraps errOIDC and
// detail says why (for the log and the audit, never the browser).
func (a *staffAuth) oidcAccount(r *http.Request) (acc *Account, next, detail string, err error) {
	refuse := func(why string) (*Account, string, string, error) { return nil, "/", why, errOIDC }
	c, cerr := r.Cookie(oidcCookieName(r))
	if cerr != nil {
		return refuse("no flow cookie (expired, or not started here)")
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 4 {
		return refuse("a malformed flow cookie")
	}
	state, nonce, verifier := parts[0], parts[1], parts[2]
	n, _ := base64.RawURLEncoding.DecodeString(parts[3])
	next = localNext(string(n))
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return refuse("the provider answered " + e)
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
		return refuse("the state is not this browser's")
	}
	ctx := oidc.ClientContext(r.Context(), a.oidc.client)
	tok, err := a.oidc.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return refuse("the code exchange failed: " + err.Error())
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return refuse("the token answer holds no ID token")
	}
	id, err := a.oidc.verifier.Verify(ctx, raw)
	if err != nil {
		return refuse("the ID token: " + err.Error())
	}
	if subtle.ConstantTimeCompare([]byte(id.Nonce), []byte(nonce)) != 1 {
		return refuse("the ID token's nonce is not this flow's")
	}
	var claims struct {
		Email    string `json:"email"`
		Verified bool   `json:"email_verified"`
	}
	if err := id.Claims(&claims); err != nil {
		return refuse("the ID token's claims: " + err.Error())
	}
	if claims.Email == "" || !claims.Verified {
		return refuse("no verified e-mail address in the ID token")
	}
	name := strings.ToLower(claims.Email)
	acc, err = a.st.Account(r.Context(), name)
	if errors.Is(err, ErrNotFound) {
		return refuse("no account " + name)
	}
	if err != nil {
		return nil, "/", "", err
	}
	switch {
	case acc.Disabled:
		return acc, "/", "account disabled", errOIDC
	case !acc.OIDC:
		return acc, "/", "the account may not sign in through OIDC", errOIDC
	case acc.Principal().Has(RoleAdmin) && !a.oidc.allowAdmin:
		return acc, "/", "an admin account signs in with its password (OIDC for admins is not allowed here)", errOIDC
	case id.Subject == "" || len(id.Subject) > 255:
		return acc, "/", "the ID token's subject is empty or too long", errOIDC
	case acc.OIDCSubject != "" && (acc.OIDCSubject != id.Subject || acc.OIDCIssuer != "" && acc.OIDCIssuer != id.Issuer):
		return acc, "/", "the account is bound to another identity at the provider", errOIDC
	}
	if acc.OIDCIssuer == "" {
		// bind: the first identity to sign in is the only one from now on
		err := a.st.UpdateAccount(r.Context(), acc.Name, func(b *Account) error {
			if b.OIDCSubject != "" && (b.OIDCSubject != id.Subject || b.OIDCIssuer != "" && b.OIDCIssuer != id.Issuer) {
				return errOIDC // another sign-in bound it meanwhile
			}
			b.OIDCIssuer, b.OIDCSubject = id.Issuer, id.Subject
			return nil
		})
		if errors.Is(err, errOIDC) {
			return acc, "/", "the account is bound to another identity at the provider", errOIDC
		}
		if err != nil {
			return nil, "/", "", err
		}
		a.log.Info("staff: account bound to its OIDC identity", "account", acc.Name, "issuer", id.Issuer, "subject", id.Subject)
	}
	return acc, next, "", nil
}
