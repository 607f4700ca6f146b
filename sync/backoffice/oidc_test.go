package backoffice_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/wire"
)

// provider is a small in-process OpenID Connect provider: discovery and
// JWKS (oidctest), an authorize endpoint that signs in whoever the test
// says, and a token endpoint that checks the client and PKCE and signs
// the ID token. Tamper changes the ID token's claims.
type provider struct {
	srv    *httptest.Server
	key    *rsa.PrivateKey
	mu     sync.Mutex
	email  string
	tamper func(claims map[string]any)
	codes  map[string]grant // code → what it was issued for
}

type grant struct{ nonce, challenge, redirect string }

func newProvider(t *testing.T) *provider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	p := &provider{key: key, codes: map[string]grant{}}
	keys := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: "k1", Algorithm: "RS256"}}}
	mux := http.NewServeMux()
	mux.Handle("/", keys)
	mux.HandleFunc("GET /auth", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != "kpe-bo" || q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" || !strings.Contains(q.Get("scope"), "openid") {
			http.Error(w, "bad authorization request", 400)
			return
		}
		code := fmt.Sprintf("code-%d", time.Now().UnixNano())
		p.mu.Lock()
		p.codes[code] = grant{q.Get("nonce"), q.Get("code_challenge"), q.Get("redirect_uri")}
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		r.ParseForm()
		p.mu.Lock()
		g, ok := p.codes[r.PostForm.Get("code")]
		delete(p.codes, r.PostForm.Get("code"))
		email, tamper := p.email, p.tamper
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !ok || id != "kpe-bo" || secret != "s3cret" || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge || r.PostForm.Get("redirect_uri") != g.redirect {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		claims := map[string]any{"iss": p.srv.URL, "sub": "u1", "aud": "kpe-bo", "exp": time.Now().Add(time.Hour).Unix(),
			"iat": time.Now().Unix(), "nonce": g.nonce, "email": email, "email_verified": true}
		if tamper != nil {
			tamper(claims)
		}
		b, _ := json.Marshal(claims)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600,
			"id_token": oidctest.SignIDToken(p.key, "k1", "RS256", string(b))})
	})
	p.srv = httptest.NewServer(mux)
	keys.SetIssuer(p.srv.URL)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) as(email string, tamper func(map[string]any)) {
	p.mu.Lock()
	p.email, p.tamper = email, tamper
	p.mu.Unlock()
}

// OIDC sign-in against the in-process provider: a verified e-mail of an
// enabled --oidc account signs in with that account's roles; a wrong
// nonce, a wrong audience, an unverified e-mail, a foreign state, an
// account without --oidc, a disabled or unknown one are refused and
// audited.
func TestOIDCSignIn(t *testing.T) {
	l, recs := staffLab(t)
	p := newProvider(t)
	ctx := context.Background()
	mux := http.NewServeMux()
	staff := httptest.NewServer(mux)
	defer staff.Close()
	o, err := backoffice.NewOIDC(ctx, backoffice.OIDCConfig{Issuer: p.srv.URL, ClientID: "kpe-bo", ClientSecret: "s3cret", RedirectURL: staff.URL + "/login/oidc/callback"})
	require.NoError(t, err)
	_, err = backoffice.NewOIDC(ctx, backoffice.OIDCConfig{Issuer: p.srv.URL, ClientID: "kpe-bo", RedirectURL: staff.URL + "/elsewhere"})
	assert.Error(t, err, "the redirect must be the callback")
	mux.Handle("/", l.svc.StaffHandler(backoffice.StaffConfig{OIDC: o}))

	require.NoError(t, l.svc.AddAccount(ctx, backoffice.NewAccount{Name: "rina@askes.example", Roles: []backoffice.Role{backoffice.RoleInstitution}, Services: []string{"askes"}, OIDC: true}, backoffice.Actor{}))
	require.NoError(t, l.svc.AddAccount(ctx, backoffice.NewAccount{Name: "pw@askes.example", Roles: []backoffice.Role{backoffice.RoleVerifier}, Password: testPassword}, backoffice.Actor{}))
	require.NoError(t, l.svc.AddAccount(ctx, backoffice.NewAccount{Name: "off@askes.example", Roles: []backoffice.Role{backoffice.RoleVerifier}, OIDC: true}, backoffice.Actor{}))
	require.NoError(t, l.svc.DisableAccount(ctx, "off@askes.example", backoffice.Actor{}))
	code := codeOf(t, recs[0])

	// the form offers it
	form := do(mux, request{method: "GET", path: "/login?lang=en"})
	assert.Contains(t, form.Body.String(), `href="/login/oidc?next=%2f"`)

	signIn := func(next string) (*http.Client, *http.Response) {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		resp, err := c.Get(staff.URL + "/login/oidc?next=" + url.QueryEscape(next))
		require.NoError(t, err)
		resp.Body.Close()
		return c, resp
	}
	verify := func(c *http.Client) int {
		resp, err := c.Get(staff.URL + wire.PathVerify + code)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}

	p.as("Rina@askes.example", nil)
	c, resp := signIn("/?lang=en")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, http.StatusOK, verify(c), "signed in")
	resp, err = c.Get(staff.URL + "/v1/alarms")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "the local account's roles: institution only")

	for name, tc := range map[string]struct {
		email  string
		tamper func(map[string]any)
	}{
		"wrong nonce":       {"rina@askes.example", func(c map[string]any) { c["nonce"] = "another" }},
		"wrong audience":    {"rina@askes.example", func(c map[string]any) { c["aud"] = "another-client" }},
		"wrong issuer":      {"rina@askes.example", func(c map[string]any) { c["iss"] = "https://evil.example" }},
		"expired":           {"rina@askes.example", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }},
		"unverified e-mail": {"rina@askes.example", func(c map[string]any) { c["email_verified"] = false }},
		"password-only":     {"pw@askes.example", nil},
		"disabled":          {"off@askes.example", nil},
		"unknown":           {"nobody@askes.example", nil},
	} {
		p.as(tc.email, tc.tamper)
		c, resp := signIn("/")
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, name)
		assert.Equal(t, http.StatusUnauthorized, verify(c), name)
	}

	// a callback with a state not this browser's (a forged link)
	p.as("rina@askes.example", nil)
	jar, _ := cookiejar.New(nil)
	c = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = c.Get(staff.URL + "/login/oidc")
	require.NoError(t, err)
	resp.Body.Close()
	authURL := resp.Header.Get("Location")
	resp, err = c.Get(authURL)
	require.NoError(t, err)
	resp.Body.Close()
	cb, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	q := cb.Query()
	q.Set("state", "forged")
	cb.RawQuery = q.Encode()
	resp, err = c.Get(cb.String())
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "foreign state")

	entries, err := l.svc.AuditLog(ctx, backoffice.AuditQuery{Limit: 100})
	require.NoError(t, err)
	var ok, failed int
	for _, e := range entries {
		if e.Action == backoffice.AuditSignIn && strings.HasPrefix(e.Detail, "oidc") {
			if e.Outcome == "ok" {
				ok++
			} else {
				failed++
			}
		}
	}
	assert.Equal(t, 1, ok)
	assert.Equal(t, 9, failed)
}

// OIDC binds an account to one identity at the provider (iss, sub): the
// first sign-in binds it, another subject with the same verified e-mail
// is refused; an account made with a subject takes only that one; an
// admin account is refused unless AllowAdmin; a next holding dots
// survives the flow cookie.
func TestOIDCBinding(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		p := newProvider(t)
		ctx := context.Background()
		mux := http.NewServeMux()
		staff := httptest.NewServer(mux)
		defer staff.Close()
		cfg := backoffice.OIDCConfig{Issuer: p.srv.URL, ClientID: "kpe-bo", ClientSecret: "s3cret", RedirectURL: staff.URL + "/login/oidc/callback"}
		o, err := backoffice.NewOIDC(ctx, cfg)
		require.NoError(t, err)
		cfg.AllowAdmin = true
		withAdmin, err := backoffice.NewOIDC(ctx, cfg)
		require.NoError(t, err)
		var h atomic.Value // the staff handler: one without AllowAdmin, then one with
		h.Store(l.svc.StaffHandler(backoffice.StaffConfig{OIDC: o}))
		mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.Load().(http.Handler).ServeHTTP(w, r) }))
		add := func(n backoffice.NewAccount) { require.NoError(t, l.svc.AddAccount(ctx, n, backoffice.Actor{})) }
		add(backoffice.NewAccount{Name: "rina@askes.example", Roles: []backoffice.Role{backoffice.RoleVerifier}, OIDC: true})
		add(backoffice.NewAccount{Name: "given@askes.example", Roles: []backoffice.Role{backoffice.RoleVerifier}, OIDCSubject: "u7"})
		add(backoffice.NewAccount{Name: "boss@askes.example", Roles: []backoffice.Role{backoffice.RoleAdmin}, OIDC: true})
		assert.ErrorIs(t, l.svc.AddAccount(ctx, backoffice.NewAccount{Name: "x@askes.example", Roles: []backoffice.Role{backoffice.RoleVerifier},
			OIDCSubject: "bad subject\n"}, backoffice.Actor{}), backoffice.ErrAccount)

		signIn := func(email, sub, next string) (int, string) {
			p.as(email, func(c map[string]any) { c["sub"] = sub })
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar}
			resp, err := c.Get(staff.URL + "/login/oidc?next=" + url.QueryEscape(next))
			require.NoError(t, err)
			defer resp.Body.Close()
			var b strings.Builder
			_, _ = io.Copy(&b, resp.Body)
			return resp.StatusCode, b.String()
		}
		account := func(name string) *backoffice.Account {
			a, err := l.store.(backoffice.AccountStore).Account(ctx, name)
			require.NoError(t, err)
			return a
		}

		code, body := signIn("rina@askes.example", "u1", "/audit?account=a.b")
		assert.Equal(t, http.StatusOK, code)
		assert.Contains(t, body, `url=/audit?account=a.b"`, "next with dots")
		assert.Equal(t, p.srv.URL, account("rina@askes.example").OIDCIssuer, "bound at the first sign-in")
		assert.Equal(t, "u1", account("rina@askes.example").OIDCSubject)
		code, _ = signIn("rina@askes.example", "u2", "/")
		assert.Equal(t, http.StatusUnauthorized, code, "another identity with the same e-mail")
		code, _ = signIn("rina@askes.example", "u1", "/")
		assert.Equal(t, http.StatusOK, code, "the bound identity again")

		code, _ = signIn("given@askes.example", "u1", "/")
		assert.Equal(t, http.StatusUnauthorized, code, "not the subject given at creation")
		code, _ = signIn("given@askes.example", "u7", "/")
		assert.Equal(t, http.StatusOK, code, "the subject given at creation")
		assert.Equal(t, p.srv.URL, account("given@askes.example").OIDCIssuer, "its issuer filled at the first sign-in")

		code, _ = signIn("boss@askes.example", "u9", "/")
		assert.Equal(t, http.StatusUnauthorized, code, "admin through OIDC: refused by default")
		assert.Empty(t, account("boss@askes.example").OIDCSubject, "a refused sign-in binds nothing")
		h.Store(l.svc.StaffHandler(backoffice.StaffConfig{OIDC: withAdmin}))
		code, _ = signIn("boss@askes.example", "u9", "/")
		assert.Equal(t, http.StatusOK, code, "admin through OIDC when allowed")
	})
}
