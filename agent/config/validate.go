package config

import (
	"net"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var (
	idPattern      = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	servicePattern = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	hostPattern    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)
)

// MaxShutdownGrace bounds session.shutdown_grace. The service wrapper
// waits 30 s for the agent after a stop request (cmd/kpe-agent's
// agentStopTimeout); after the grace, the shutdown still closes the card
// sessions and gives the uploader up to 3 s and the API up to 5 s.
const MaxShutdownGrace = 20 * time.Second

// MinOutboxRetention is outbox.retention's least value: the counter
// screen's list of today's codes (GET /v1/codes/today) reads the outbox
// back to an hour before midnight, up to 25 hours before now, and a record
// is acknowledged after it is enqueued; two days keep every one of them.
const MinOutboxRetention = 48 * time.Hour

const idWant = "1 to 64 characters among A-Z a-z 0-9 . _ - (e.g. PKM-CIBINONG-01)"

// validate checks the merged configuration's values.
func (l *loader) validate(c *Config) {
	l.checkID("terminal.id", c.Terminal.ID)
	l.checkID("terminal.site", c.Terminal.Site)
	l.oneOf("terminal.language", c.Terminal.Language, "id", "en")

	l.patterns("readers.card", c.Readers.Card)
	l.patterns("readers.sam", c.Readers.SAM)
	l.patterns("readers.ignore", c.Readers.Ignore)

	if l.oneOf("ktpel.pseudonym", c.KTPel.Pseudonym, PseudonymSAM, PseudonymFile) &&
		c.KTPel.Pseudonym == PseudonymFile && c.SAM.NIKKeyFile == "" {
		l.invalid("sam.nik_key_file", "", "missing (ktpel.pseudonym is file)",
			"the file of the KTP-el pseudonym key (at least 32 bytes, a secret file), or ktpel.pseudonym: sam")
	}

	if l.oneOf("fingerprint.sensor", c.Fingerprint.Sensor, "lab", "command", "none") {
		switch c.Fingerprint.Sensor {
		case "lab":
			// The lab sensor hands the agent whatever finger the card lab's
			// control channel was told to present: only on a lab terminal,
			// and only from the card lab on this machine.
			if !c.Terminal.Lab {
				l.invalid("fingerprint.sensor", "lab", "is allowed only when terminal.lab is true",
					"command (the terminal's sensor) or none; lab only on a card-lab terminal (terminal.lab: true)")
			}
			const labURLWant = "the URL of the card lab on this machine (a loopback host: 127.0.0.0/8, ::1 or localhost), e.g. http://127.0.0.1:35990"
			if c.Fingerprint.LabURL == "" {
				l.invalid("fingerprint.lab_url", "", "missing (fingerprint.sensor is lab)", labURLWant)
			} else if reason := checkLabURL(c.Fingerprint.LabURL); reason != "" {
				l.invalid("fingerprint.lab_url", redactUserinfo(c.Fingerprint.LabURL), reason, labURLWant)
			}
		case "command":
			if len(c.Fingerprint.Command) == 0 || c.Fingerprint.Command[0] == "" {
				l.invalid("fingerprint.command", "", "missing (fingerprint.sensor is command)", "the capture program and its arguments, e.g. [/usr/lib/kpe-agent/capture, --device, 0]")
			}
		}
	}

	for _, lf := range schemaKeys.ordered {
		if lf.kind != kindDuration {
			continue
		}
		if d := lf.field(c).Interface().(time.Duration); d <= 0 {
			l.invalid(lf.key, d.String(), "is not positive", "a duration above zero, e.g. 30s or 5m")
		}
	}

	if g := c.Session.ShutdownGrace; g > MaxShutdownGrace {
		l.invalid("session.shutdown_grace", g.String(), "is too long",
			"at most "+MaxShutdownGrace.String()+" (the service manager stops waiting for the agent after 30s, "+
				"and the shutdown also closes the card sessions, the last sync attempt and the API)")
	}

	l.checkServices(c.Services)

	if c.Outbox.Path == "" {
		l.invalid("outbox.path", "", "missing", "the outbox file, e.g. "+DefaultOutboxPath())
	}
	if c.Outbox.MaxRecords <= 0 {
		l.invalid("outbox.max_records", strconv.Itoa(c.Outbox.MaxRecords), "is not positive", "a number of records above zero, e.g. 100000")
	}
	if r := c.Outbox.Retention; r > 0 && r < MinOutboxRetention {
		l.invalid("outbox.retention", r.String(), "is too short",
			"at least "+MinOutboxRetention.String()+" (the counter screen lists today's codes from the outbox, reaching back to yesterday evening), e.g. 720h")
	}

	l.checkSync(c)
	l.checkAPI(&c.API)
	l.checkKiosk(&c.Kiosk)
	if t := c.Renewal.OfferTimeout; t > MaxOfferTimeout {
		l.invalid("renewal.offer_timeout", t.String(), "is too long", "at most "+MaxOfferTimeout.String()+" (the holder waits at the kiosk meanwhile), e.g. 10s")
	}

	l.checkEWallet(&c.EWallet)

	l.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	l.between("log.max_size_mb", c.Log.MaxSize, 1, 1024)
	l.between("log.max_files", c.Log.MaxFiles, 1, 100)
}

func (l *loader) checkID(key, v string) {
	if v == "" {
		l.invalid(key, "", "missing", idWant)
	} else if !idPattern.MatchString(v) {
		l.invalid(key, v, "is not a valid ID", idWant)
	}
}

// oneOf reports whether v is one of allowed, recording a problem if not.
func (l *loader) oneOf(key, v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	reason := "is not allowed"
	if v == "" {
		reason = "is empty"
	}
	l.invalid(key, v, reason, "one of "+strings.Join(allowed, ", "))
	return false
}

// checkEWallet: a merchant when payments are on; amounts a purse command
// can carry; the fingerprint threshold below the largest payment.
func (l *loader) checkEWallet(e *EWallet) {
	if e.Enabled && e.MerchantID == "" {
		l.invalid("ewallet.merchant_id", "", "missing", "the merchant id of this terminal (1 to 32 characters of a-z, 0-9, -, _, .), e.g. apotik-sehat-01; payments need it")
	} else if e.MerchantID != "" && !merchantPattern.MatchString(e.MerchantID) {
		l.invalid("ewallet.merchant_id", e.MerchantID, "is not a valid merchant id", "1 to 32 characters of a-z, 0-9, -, _, ., e.g. apotik-sehat-01")
	}
	if len(e.MerchantName) > 64 {
		l.invalid("ewallet.merchant_name", e.MerchantName, "is too long", "at most 64 bytes")
	}
	l.between("ewallet.max_payment", e.MaxPayment, 1, MaxAmount)
	l.between("ewallet.max_balance", e.MaxBalance, 1, MaxAmount)
	l.between("ewallet.fingerprint_above", e.FingerprintAbove, 0, MaxAmount)
	if t := e.TopUpTimeout; t <= 0 || t > MaxOfferTimeout {
		l.invalid("ewallet.topup_timeout", t.String(), "is out of range", "above zero and at most "+MaxOfferTimeout.String()+" (the holder waits meanwhile), e.g. 10s")
	}
}

// merchantPattern is a merchant id (record.Purse.Merchant).
var merchantPattern = regexp.MustCompile(`^[a-z0-9._-]{1,32}$`)

func (l *loader) between(key string, v, lo, hi int) {
	if v < lo || v > hi {
		l.invalid(key, strconv.Itoa(v), "is out of range", "a whole number from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
	}
}

func (l *loader) patterns(key string, list []string) {
	const want = `reader name patterns such as "ACS ACR39U*" (path.Match syntax: * ? [a-z] \)`
	for _, p := range list {
		if p == "" {
			l.invalid(key, "", "has an empty pattern", want)
			return
		}
		if _, err := path.Match(p, ""); err != nil {
			l.invalid(key, p, "is not a valid pattern", want)
			return
		}
	}
}

func (l *loader) checkServices(list []string) {
	const want = "a list of service names of a-z, 0-9 and - (1 to 32 characters), e.g. [askes, taspen, bapertarum, kiosk]"
	if len(list) == 0 {
		l.invalid("services", "", "is empty", want)
		return
	}
	seen := map[string]bool{}
	for _, s := range list {
		if !servicePattern.MatchString(s) {
			l.invalid("services", s, "is not a valid service name", want)
			return
		}
		if seen[s] {
			l.invalid("services", s, "is listed twice", "each service once")
			return
		}
		seen[s] = true
	}
}

func (l *loader) checkSync(c *Config) {
	const want = "\"\" (no syncing) or the back office's https://host[:port]"
	u := c.Sync.URL
	if u == "" {
		return
	}
	if reason := checkSyncURL(u, c.Terminal.Lab); reason != "" {
		l.invalid("sync.url", redactUserinfo(u), reason, want)
		return
	}
	// https://bo.example:8443/ is the same back office: the slash is
	// dropped, so the snapshot holds the URL without a path.
	c.Sync.URL = strings.TrimSuffix(u, "/")
	for _, k := range []struct{ key, v, want string }{
		{"sync.client_cert", c.Sync.ClientCert, "this terminal's certificate (PEM file)"},
		{"sync.client_key", c.Sync.ClientKey, "this terminal's private key (PEM file, mode 0600)"},
		{"sync.ca", c.Sync.CA, "the back office's CA certificates (PEM file)"},
	} {
		if k.v == "" {
			l.invalid(k.key, "", "missing (sync.url is set)", k.want)
		}
	}
}

func checkSyncURL(s string, lab bool) string {
	u, err := url.Parse(s)
	if err != nil {
		return "is not a URL"
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !lab {
			return "uses http (allowed only when terminal.lab is true)"
		}
	default:
		return "is not an https URL"
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return "has no host"
	}
	if u.User != nil {
		return "has user information"
	}
	if u.Path != "" && u.Path != "/" {
		return "has a path"
	}
	if u.RawQuery != "" || u.ForceQuery || hasFragment(s) {
		return "has a query or fragment"
	}
	if reason := checkPort(u.Port()); reason != "" {
		return reason
	}
	return ""
}

// hasFragment reports whether the URL s has a fragment, an empty one
// (https://bo.example/#) too: url.URL's Fragment does not tell that one
// from none.
func hasFragment(s string) bool {
	return strings.Contains(s, "#")
}

func checkHTTPURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "is not a URL"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "is not an http or https URL"
	}
	if u.Host == "" || u.Hostname() == "" {
		return "has no host"
	}
	return checkPort(u.Port())
}

// checkLabURL checks the card lab's URL: http(s) on a loopback host.
func checkLabURL(s string) string {
	if reason := checkHTTPURL(s); reason != "" {
		return reason
	}
	u, _ := url.Parse(s) // checkHTTPURL parsed it
	if !isLoopback(u.Hostname()) {
		return "is not on a loopback host"
	}
	return ""
}

func checkPort(p string) string {
	if p == "" {
		return ""
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "has an invalid port"
	}
	return ""
}

func (l *loader) checkAPI(a *API) {
	const listenWant = "host:port on a loopback address, e.g. 127.0.0.1:7531 (any address only with api.allow_remote: true)"
	host, port, err := net.SplitHostPort(a.Listen)
	switch {
	case err != nil:
		l.invalid("api.listen", a.Listen, "is not host:port", listenWant)
	case checkPort(port) != "" || port == "":
		l.invalid("api.listen", a.Listen, "has an invalid port", listenWant)
	case !a.AllowRemote && !isLoopback(host):
		l.invalid("api.listen", a.Listen, "is not a loopback address", listenWant)
	}
	if a.TokenFile == "" {
		l.invalid("api.token_file", "", "missing", "the file holding the API's bearer token, e.g. "+DefaultTokenFile())
	}
	for _, o := range a.AllowedOrigins {
		if reason := checkOrigin(o); reason != "" {
			l.invalid("api.allowed_origins", redactUserinfo(o), reason, "origins such as https://portal.example.go.id or http://localhost:3000 (scheme://host[:port], no path, no trailing slash)")
			break
		}
		if a.TLS() && strings.HasPrefix(strings.ToLower(o), "http://") {
			// a page loaded over http may be anyone's on the way: it
			// must not drive an API that serves HTTPS for that reason
			l.invalid("api.allowed_origins", redactUserinfo(o), "is an http:// origin (the API serves HTTPS: api.tls_cert_file is set)",
				"https:// origins only, e.g. https://kiosk-01.example.go.id")
			break
		}
	}
	// Off loopback the token and the card holders' data cross the
	// network: only over TLS.
	const pairWant = "the API's certificate (PEM file) and its key (PEM, a secret file: mode 0600), both set, e.g. /etc/kpe-agent/api.crt and /etc/kpe-agent/secrets/api.key"
	switch {
	case a.TLSCertFile == "" && a.TLSKeyFile != "":
		l.invalid("api.tls_cert_file", "", "missing (api.tls_key_file is set)", pairWant)
	case a.TLSCertFile != "" && a.TLSKeyFile == "":
		l.invalid("api.tls_key_file", "", "missing (api.tls_cert_file is set)", pairWant)
	case a.AllowRemote && !a.TLS():
		l.invalid("api.allow_remote", "true", "needs TLS: api.tls_cert_file and api.tls_key_file are not set (the token would cross the network in clear)",
			"false (loopback only), or a certificate pair in api.tls_cert_file and api.tls_key_file")
	}
	l.between("api.max_event_streams", a.MaxEventStreams, 1, 1024)
	for _, h := range a.AllowedHosts {
		if reason := checkHost(h); reason != "" {
			l.invalid("api.allowed_hosts", h, reason, "host names such as kiosk-01.local or kiosk-01.local:7531")
			break
		}
	}
}

func (l *loader) checkKiosk(k *Kiosk) {
	// each duration is checked above zero with the others
	if k.IdleWarning > 0 && k.IdleTimeout > 0 && k.IdleWarning >= k.IdleTimeout {
		l.invalid("kiosk.idle_warning", k.IdleWarning.String(), "is not shorter than kiosk.idle_timeout ("+k.IdleTimeout.String()+")",
			"a warning shorter than the idle timeout, e.g. 10s with idle_timeout 60s")
	}
	if k.VerifyURL != "" {
		if reason := checkVerifyURL(k.VerifyURL); reason != "" {
			l.invalid("kiosk.verify_url", redactUserinfo(k.VerifyURL), reason,
				"\"\" (no QR code) or the back office's verify page, http(s)://host[:port][/path] with no query or fragment, e.g. https://bo.example.go.id/")
		}
	}
}

// checkVerifyURL checks the back office's verify page: the kiosk's QR
// code adds ?code=<code> to it, so it has no query or fragment.
func checkVerifyURL(s string) string {
	if reason := checkHTTPURL(s); reason != "" {
		return reason
	}
	u, _ := url.Parse(s) // checkHTTPURL parsed it
	switch {
	case u.User != nil:
		return "has user information"
	case u.RawQuery != "" || u.ForceQuery || hasFragment(s):
		return "has a query or fragment"
	}
	return ""
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkOrigin(s string) string {
	if s == "*" || strings.Contains(s, "*") {
		return "is a wildcard (list each origin)"
	}
	if s == "null" {
		return "is the null origin (not allowed)"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "is not a URL"
	}
	if u.Scheme == "" || u.Opaque != "" || u.Host == "" {
		return "is not scheme://host"
	}
	if u.User != nil {
		return "has user information"
	}
	if u.Path == "/" {
		return "has a trailing slash"
	}
	if u.Path != "" {
		return "has a path"
	}
	if u.RawQuery != "" || u.ForceQuery || hasFragment(s) {
		return "has a query or fragment"
	}
	if u.Hostname() == "" {
		return "has no host"
	}
	return checkPort(u.Port())
}

func checkHost(s string) string {
	host := s
	if h, p, err := net.SplitHostPort(s); err == nil {
		if reason := checkPort(p); reason != "" || p == "" {
			return "has an invalid port"
		}
		host = h
	}
	if net.ParseIP(strings.Trim(host, "[]")) != nil {
		return ""
	}
	if !hostPattern.MatchString(host) {
		return "is not a host name"
	}
	return ""
}
