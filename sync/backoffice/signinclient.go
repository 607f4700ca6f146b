package backoffice

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// SignInClient signs c in on the staff listener at staffURL through its
// form, as a browser would: it fetches /login (the form's token and
// cookie), posts the name and password, and keeps the session cookie in
// c's cookie jar (one is made when c has none). For programs that call
// the staff API: the lab's fleet prober, make run's checks, tests. A
// state-changing call then needs the token StaffCSRFToken returns.
func SignInClient(ctx context.Context, c *http.Client, staffURL, user, password string) error {
	if c.Jar == nil {
		jar, err := cookiejar.New(nil)
		if err != nil {
			return err
		}
		c.Jar = jar
	}
	base := strings.TrimSuffix(staffURL, "/")
	form, err := fetch(ctx, c, http.MethodGet, base+"/login", nil)
	if err != nil {
		return fmt.Errorf("backoffice: sign-in form: %w", err)
	}
	m := formToken.FindStringSubmatch(form)
	if m == nil {
		return fmt.Errorf("backoffice: sign-in form at %s has no token", base)
	}
	v := url.Values{"user": {user}, "password": {password}, "csrf_token": {m[1]}, "next": {"/v1/health"}}
	if _, err := fetch(ctx, c, http.MethodPost, base+"/login", v); err != nil {
		return fmt.Errorf("backoffice: sign-in as %s: %w", user, err)
	}
	return nil
}

// HasSession reports whether c holds a live staff session on staffURL:
// a session cookie for its host in c's cookie jar that the server still
// accepts (a GET of the signed-in page "/", its redirect to /login not
// followed). Sessions live in the database, so one signed in on a node is
// signed in on every node the cookie reaches (cookies belong to a host,
// not a port). Signing in again while signed in would not work: GET
// /login redirects a signed-in client, so there is no form and no form
// token to post. A cookie the server no longer knows (expired, signed
// out, ended by an account change) is no session: false. An answer other
// than 200 or a redirect is an error.
func HasSession(ctx context.Context, c *http.Client, staffURL string) (bool, error) {
	u, err := url.Parse(staffURL)
	if err != nil {
		return false, fmt.Errorf("backoffice: staff URL %q: %w", staffURL, err)
	}
	if c.Jar == nil {
		return false, nil
	}
	has := false
	for _, k := range c.Jar.Cookies(u) {
		has = has || k.Name == sessionCookie || k.Name == secureSessionCookie
	}
	if !has {
		return false, nil
	}
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(staffURL, "/")+"/", nil)
	if err != nil {
		return false, err
	}
	resp, err := nc.Do(req)
	if err != nil {
		return false, fmt.Errorf("backoffice: staff session check: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusOK:
		return true, nil
	case resp.StatusCode/100 == 3:
		return false, nil
	}
	return false, fmt.Errorf("backoffice: staff session check at %s: %s", staffURL, resp.Status)
}

// StaffCSRFToken is the CSRF token of c's session on the staff listener
// (from the page's sign-out form), for the X-CSRF-Token header.
func StaffCSRFToken(ctx context.Context, c *http.Client, staffURL string) (string, error) {
	page, err := fetch(ctx, c, http.MethodGet, strings.TrimSuffix(staffURL, "/")+"/", nil)
	if err != nil {
		return "", fmt.Errorf("backoffice: staff page: %w", err)
	}
	m := signOutToken.FindStringSubmatch(page)
	if m == nil {
		return "", fmt.Errorf("backoffice: not signed in at %s", staffURL)
	}
	return m[1], nil
}

var (
	formToken    = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	signOutToken = regexp.MustCompile(`(?s)<form id="signout"[^>]*>.*?name="csrf_token" value="([^"]+)"`)
)

// fetch asks for u (a form POST when form is not nil) and returns the
// body of a 2xx answer after redirects; a sign-in that fails answers the
// form again with 401, 403 or 429.
func fetch(ctx context.Context, c *http.Client, method, u string, form url.Values) (string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("%s %s: %s", method, u, resp.Status)
	}
	return string(b), nil
}
