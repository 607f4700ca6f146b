package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"kpe-agent/internal/i18n"
	"kpe-agent/sync/wire"
)

// Thresholds.
const (
	// MaxClockSkew: a terminal clock further from the back office's is a
	// warning (records carry the terminal's time).
	MaxClockSkew = 2 * time.Minute
	// CertWarning: a certificate expiring sooner is a warning.
	CertWarning = 30 * 24 * time.Hour
)

// probe is what one request to the back office gave.
type probe struct {
	resp      *http.Response
	err       error
	peer      *x509.Certificate // the server's leaf, verified or not
	noKey     bool              // the client key could not be read: sent no client certificate
	dateFrom  string            // "" verified connection; else how the Date was obtained
	date      time.Time
	proxyURL  string
	healthURL string
}

func (r *run) backOffice(ctx context.Context) {
	r.add(r.checkClientCert())
	if strings.TrimSpace(r.cfg.Sync.URL) == "" {
		skip := Finding{Status: Skip, Code: "no-sync-url", Detail: "sync.url is empty: syncing is not configured",
			Message: i18n.Both("doctor.needs-sync-url.message")}
		for _, id := range []string{CheckBackOffice, CheckClock, CheckServerCert} {
			s := skip
			s.ID = id
			r.add(s)
		}
		return
	}
	p, cfgErr := r.probeBackOffice(ctx)
	if cfgErr != nil {
		r.add(Finding{ID: CheckBackOffice, Status: Fail, Code: "tls-config", Detail: cfgErr.Error(),
			Message: i18n.Both("doctor.backoffice.tls-config.message"),
			Action:  i18n.Both("doctor.backoffice.tls-config.action")})
		for _, id := range []string{CheckClock, CheckServerCert} {
			r.add(Finding{ID: id, Status: Skip, Code: "no-connection", Detail: "no connection to the back office",
				Message: i18n.Both("doctor.needs-connection.message")})
		}
		return
	}
	r.add(r.backOfficeFinding(p))
	r.add(r.clockFinding(p))
	r.add(r.serverCertFinding(p))
}

// tlsConfig is the uploader's TLS configuration: the configured CA (else
// the system's roots) and the terminal's client certificate.
func (r *run) tlsConfig() (*tls.Config, bool, error) {
	s := r.cfg.Sync
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CA != "" {
		b, err := os.ReadFile(s.CA)
		if err != nil {
			return nil, false, fmt.Errorf("sync.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, false, fmt.Errorf("sync.ca %s: no PEM certificate", s.CA)
		}
		c.RootCAs = pool
	}
	if s.ClientCert == "" && s.ClientKey == "" {
		return c, false, nil
	}
	if s.ClientCert == "" || s.ClientKey == "" {
		return nil, false, errors.New("sync.client_cert and sync.client_key must be set together")
	}
	cert, err := tls.LoadX509KeyPair(s.ClientCert, s.ClientKey)
	if errors.Is(err, os.ErrPermission) {
		// The key is the agent's secret: a technician without root cannot
		// read it. Probe without it; the finding says so.
		return c, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("sync.client_cert / sync.client_key: %w", err)
	}
	c.Certificates = []tls.Certificate{cert}
	return c, false, nil
}

func (r *run) probeBackOffice(ctx context.Context) (*probe, error) {
	base := strings.TrimRight(strings.TrimSpace(r.cfg.Sync.URL), "/")
	p := &probe{healthURL: base + wire.PathHealth}
	u, err := url.Parse(p.healthURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("sync.url %q is not an http(s) URL", r.cfg.Sync.URL)
	}
	tc, noKey, err := r.tlsConfig()
	if err != nil {
		return nil, err
	}
	p.noKey = noKey
	rt := r.o.HTTPTransport
	if rt == nil {
		rt = r.transport(tc)
	}
	if pu, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err == nil && pu != nil {
		pu.User = nil // never print proxy credentials
		p.proxyURL = pu.String()
	}
	p.resp, p.err = r.get(ctx, rt, p.healthURL)
	if p.err == nil {
		if p.resp.TLS != nil && len(p.resp.TLS.PeerCertificates) > 0 {
			p.peer = p.resp.TLS.PeerCertificates[0]
		}
		p.date, _ = http.ParseTime(p.resp.Header.Get("Date"))
		return p, nil
	}
	var ve *tls.CertificateVerificationError
	if errors.As(p.err, &ve) && len(ve.UnverifiedCertificates) > 0 {
		p.peer = ve.UnverifiedCertificates[0]
	}
	if isTLS(p.err) && r.o.HTTPTransport == nil {
		// Verification failed, which a wrong clock can cause: read only
		// the server's Date over an unverified connection (nothing is sent
		// but the request line, no client certificate).
		insecure := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
		if resp, err := r.get(ctx, r.transport(insecure), p.healthURL); err == nil {
			p.date, _ = http.ParseTime(resp.Header.Get("Date"))
			p.dateFrom = "an unverified connection (verification failed)"
		}
	}
	return p, nil
}

func (r *run) transport(tc *tls.Config) *http.Transport {
	d := r.o.CheckTimeout
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSClientConfig:       tc,
		DialContext:           (&net.Dialer{Timeout: d}).DialContext,
		TLSHandshakeTimeout:   d,
		ResponseHeaderTimeout: d,
		ForceAttemptHTTP2:     true,
		DisableKeepAlives:     true,
	}
}

func (r *run) get(ctx context.Context, rt http.RoundTripper, u string) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.CheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp, nil
}

func isTLS(err error) bool {
	var ve *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	var op *net.OpError
	return errors.As(err, &ve) || errors.As(err, &rh) ||
		(errors.As(err, &op) && op.Op == "remote error") ||
		strings.Contains(err.Error(), "tls: ")
}

// netCode classifies a failed request.
func netCode(err error) string {
	var dns *net.DNSError
	var ve *tls.CertificateVerificationError
	var op *net.OpError
	var rh tls.RecordHeaderError
	switch {
	case errors.As(err, &dns):
		return "dns"
	case errors.As(err, &op) && op.Op == "proxyconnect":
		return "proxy"
	case errors.As(err, &ve):
		var ua x509.UnknownAuthorityError
		var he x509.HostnameError
		var ci x509.CertificateInvalidError
		switch {
		case errors.As(ve.Err, &ua):
			return "tls-unknown-authority"
		case errors.As(ve.Err, &he):
			return "tls-hostname"
		case errors.As(ve.Err, &ci) && ci.Reason == x509.Expired:
			return "tls-expired"
		}
		return "tls"
	case errors.As(err, &rh):
		return "tls-not-tls"
	case errors.As(err, &op) && op.Op == "remote error":
		return "tls-rejected"
	case isRefused(err):
		return "refused"
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return "timeout"
	}
	if strings.Contains(err.Error(), "tls: ") {
		return "tls"
	}
	return "network"
}

func (r *run) networkAction() Text {
	return i18n.Both("doctor.backoffice.network.action")
}

func (r *run) backOfficeFinding(p *probe) Finding {
	f := Finding{ID: CheckBackOffice}
	f.Detail = "GET " + p.healthURL
	if p.proxyURL != "" {
		f.Detail += " via proxy " + p.proxyURL
	}
	if p.noKey {
		f.Detail += "; without client certificate: " + r.cfg.Sync.ClientKey + " is not readable"
	}
	host := p.healthURL
	if u, err := url.Parse(p.healthURL); err == nil {
		host = u.Host
	}
	if p.err != nil {
		f.Detail += ": " + p.err.Error()
		f.Code = netCode(p.err)
		f.Status = Fail
		switch f.Code {
		case "dns":
			f.Message = i18n.Both("doctor.backoffice.dns.message", host)
			f.Action = i18n.Both("doctor.backoffice.dns.action")
		case "refused":
			f.Message = i18n.Both("doctor.backoffice.refused.message", host)
			f.Action = r.networkAction()
		case "timeout", "network":
			f.Message = i18n.Both("doctor.backoffice.unreachable.message", host)
			f.Action = r.networkAction()
		case "proxy":
			f.Message = i18n.Both("doctor.backoffice.proxy.message", p.proxyURL)
			f.Action = i18n.Both("doctor.backoffice.proxy.action")
		case "tls-rejected":
			if p.noKey {
				f.Status, f.Code = Warn, "client-key-unreadable"
				f.Message = i18n.Both("doctor.backoffice.client-key-unreadable.asked.message")
				f.Action = i18n.Both("doctor.backoffice.client-key-unreadable.action")
				break
			}
			f.Message = i18n.Both("doctor.backoffice.tls-rejected.message")
			f.Action = i18n.Both("doctor.backoffice.tls-rejected.action")
		case "tls-expired":
			f.Message = i18n.Both("doctor.backoffice.tls-expired.message")
			f.Action = i18n.Both("doctor.backoffice.tls-expired.action")
		default: // tls, tls-unknown-authority, tls-hostname, tls-not-tls
			f.Message = i18n.Both("doctor.backoffice.tls-mismatch.message")
			f.Action = i18n.Both("doctor.backoffice.tls-mismatch.action")
		}
		return f
	}
	f.Detail += fmt.Sprintf(": HTTP %d", p.resp.StatusCode)
	switch sc := p.resp.StatusCode; {
	case sc == http.StatusOK:
		f.Status, f.Code = OK, "reachable"
		f.Message = i18n.Both("doctor.backoffice.reachable.message", host)
		if p.noKey {
			f.Status, f.Code = Warn, "client-key-unreadable"
			f.Message = i18n.Both("doctor.backoffice.client-key-unreadable.reachable.message")
			f.Action = i18n.Both("doctor.backoffice.client-key-unreadable.action")
		}
	case sc == http.StatusUnauthorized || sc == http.StatusForbidden:
		f.Status, f.Code = Fail, fmt.Sprintf("http-%d", sc)
		f.Message = i18n.Both("doctor.backoffice.http-unauthorized.message", sc)
		f.Action = i18n.Both("doctor.backoffice.http-unauthorized.action")
	default:
		f.Status, f.Code = Fail, fmt.Sprintf("http-%d", sc)
		f.Message = i18n.Both("doctor.backoffice.http-error.message", sc)
		f.Action = i18n.Both("doctor.backoffice.http-error.action")
	}
	return f
}

func (r *run) clockFinding(p *probe) Finding {
	f := Finding{ID: CheckClock}
	if p.date.IsZero() {
		f.Status, f.Code, f.Detail = Skip, "no-date", "no Date header from the back office to compare with"
		f.Message = i18n.Both("doctor.clock.no-date.message")
		return f
	}
	now := r.now()
	skew := now.Sub(p.date).Round(time.Second)
	f.Detail = fmt.Sprintf("local %s, back office %s: skew %v", now.UTC().Format(time.RFC3339), p.date.UTC().Format(time.RFC3339), skew)
	if p.dateFrom != "" {
		f.Detail += " (Date read from " + p.dateFrom + ")"
	}
	if skew.Abs() <= MaxClockSkew {
		f.Status, f.Code = OK, "synced"
		f.Message = i18n.Both("doctor.clock.synced.message", skew.Abs())
		return f
	}
	f.Status, f.Code = Warn, "skewed"
	f.Message = i18n.Both("doctor.clock.skewed.message", skew.Abs())
	if r.goos == "windows" {
		f.Action = i18n.Both("doctor.clock.skewed.action.windows")
	} else {
		f.Action = i18n.Both("doctor.clock.skewed.action.ntp")
	}
	return f
}

// certFinding grades a certificate's validity period.
func (r *run) certFinding(id string, c *x509.Certificate, renew Text) Finding {
	now := r.now()
	f := Finding{ID: id, Detail: fmt.Sprintf("subject %q, issuer %q, valid %s to %s", c.Subject.CommonName, c.Issuer.CommonName,
		c.NotBefore.UTC().Format("2006-01-02"), c.NotAfter.UTC().Format("2006-01-02"))}
	date := c.NotAfter.Local().Format("2006-01-02")
	left := c.NotAfter.Sub(now)
	switch {
	case now.After(c.NotAfter):
		f.Status, f.Code = Fail, "expired"
		f.Message = i18n.Both("doctor.cert.expired.message", date)
		f.Action = renew
	case now.Before(c.NotBefore):
		f.Status, f.Code = Fail, "not-yet-valid"
		f.Message = i18n.Both("doctor.cert.not-yet-valid.message", c.NotBefore.Local().Format("2006-01-02"))
		f.Action = i18n.Both("doctor.cert.not-yet-valid.action")
	case left < CertWarning:
		f.Status, f.Code = Warn, "expires-soon"
		f.Message = i18n.Both("doctor.cert.expires-soon.message", int(left.Hours()/24), date)
		f.Action = renew
	default:
		f.Status, f.Code = OK, "valid"
		f.Message = i18n.Both("doctor.cert.valid.message", date)
	}
	return f
}

// labelled puts a certificate's label (key: a format whose one %s is the
// finding's message) around each language of t.
func labelled(key string, t Text) Text {
	return Text{ID: i18n.Indonesian.T(key, t.ID), EN: i18n.English.T(key, t.EN)}
}

func (r *run) checkClientCert() Finding {
	path := r.cfg.Sync.ClientCert
	if path == "" {
		return Finding{ID: CheckClientCert, Status: Skip, Code: "not-configured", Detail: "sync.client_cert is empty",
			Message: i18n.Both("doctor.client-cert.not-configured.message")}
	}
	b, err := os.ReadFile(path)
	var c *x509.Certificate
	if err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "CERTIFICATE" {
			err = errors.New("no PEM CERTIFICATE block")
		} else {
			c, err = x509.ParseCertificate(blk.Bytes)
		}
	}
	if err != nil {
		return Finding{ID: CheckClientCert, Status: Fail, Code: "unreadable", Detail: fmt.Sprintf("sync.client_cert %s: %v", path, err),
			Message: i18n.Both("doctor.client-cert.unreadable.message"),
			Action:  i18n.Both("doctor.client-cert.unreadable.action")}
	}
	f := r.certFinding(CheckClientCert, c, i18n.Both("doctor.client-cert.renew.action"))
	f.Detail = path + ": " + f.Detail
	f.Message = labelled("doctor.client-cert.label", f.Message)
	return f
}

func (r *run) serverCertFinding(p *probe) Finding {
	if p.peer == nil {
		return Finding{ID: CheckServerCert, Status: Skip, Code: "no-certificate", Detail: "no server certificate seen (no TLS connection)",
			Message: i18n.Both("doctor.server-cert.no-certificate.message")}
	}
	f := r.certFinding(CheckServerCert, p.peer, i18n.Both("doctor.server-cert.renew.action"))
	f.Message = labelled("doctor.server-cert.label", f.Message)
	return f
}
