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
			Message: tf("Tidak diperiksa: sinkronisasi ke kantor pusat tidak dikonfigurasi (sync.url kosong).", "Not checked: syncing to the back office is not configured (sync.url is empty).")}
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
			Message: tf("Berkas sertifikat untuk koneksi ke kantor pusat tidak dapat dipakai.", "The certificate files for the back-office connection cannot be used."),
			Action: tf("Periksa sync.client_cert, sync.client_key dan sync.ca di konfigurasi agen: berkasnya ada, berformat PEM dan saling cocok. Bila hilang, pasang ulang sertifikat melalui penerbit/pemasang.",
				"Check sync.client_cert, sync.client_key and sync.ca in the agent's configuration: the files exist, are PEM and belong together. If they are lost, reinstall the certificate through the issuer/installer.")})
		for _, id := range []string{CheckClock, CheckServerCert} {
			r.add(Finding{ID: id, Status: Skip, Code: "no-connection", Detail: "no connection to the back office",
				Message: tf("Tidak diperiksa: tidak ada koneksi ke kantor pusat.", "Not checked: no connection to the back office.")})
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
	return tf("Periksa koneksi jaringan terminal (kabel/Wi-Fi, modem), firewall, dan proxy: bila jaringan kantor memakai proxy, atur HTTPS_PROXY untuk agen. Periksa juga sync.url. Catatan tetap tersimpan dan dikirim saat koneksi pulih.",
		"Check the terminal's network connection (cable/Wi-Fi, modem), the firewall and the proxy: if the office network uses a proxy, set HTTPS_PROXY for the agent. Check sync.url too. Records stay stored and are sent when the link is back.")
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
			f.Message = tf("Nama server kantor pusat (%s) tidak dapat ditemukan (DNS).", "The back office's name (%s) cannot be resolved (DNS).", host)
			f.Action = tf("Periksa koneksi jaringan dan pengaturan DNS terminal (coba buka situs lain), dan ejaan sync.url. Bila jaringan memakai proxy, atur HTTPS_PROXY untuk agen.",
				"Check the terminal's network connection and DNS settings (try another site) and the spelling of sync.url. If the network uses a proxy, set HTTPS_PROXY for the agent.")
		case "refused":
			f.Message = tf("Kantor pusat (%s) menolak koneksi.", "The back office (%s) refused the connection.", host)
			f.Action = r.networkAction()
		case "timeout", "network":
			f.Message = tf("Kantor pusat (%s) tidak dapat dihubungi.", "The back office (%s) cannot be reached.", host)
			f.Action = r.networkAction()
		case "proxy":
			f.Message = tf("Proxy %s tidak dapat dipakai untuk menghubungi kantor pusat.", "The proxy %s cannot be used to reach the back office.", p.proxyURL)
			f.Action = tf("Periksa HTTPS_PROXY (alamat, port, akun proxy) atau hapus bila jaringan tidak memakai proxy.",
				"Check HTTPS_PROXY (address, port, proxy account), or unset it if the network has no proxy.")
		case "tls-rejected":
			if p.noKey {
				f.Status, f.Code = Warn, "client-key-unreadable"
				f.Message = tf("Kantor pusat meminta sertifikat klien, tetapi kunci terminal tidak terbaca oleh pengguna ini.", "The back office asks for the client certificate, but this user cannot read the terminal's key.")
				f.Action = tf("Jalankan kpectl doctor sebagai root (sudo) untuk memeriksa koneksi lengkap.", "Run kpectl doctor as root (sudo) to check the full connection.")
				break
			}
			f.Message = tf("Kantor pusat menolak sertifikat klien terminal ini.", "The back office rejected this terminal's client certificate.")
			f.Action = tf("Sertifikat klien tidak cocok atau kedaluwarsa: perbarui sertifikat terminal melalui penerbit/pemasang (installer), lalu mulai ulang agen.",
				"The client certificate does not match or has expired: renew the terminal's certificate through the issuer/installer, then restart the agent.")
		case "tls-expired":
			f.Message = tf("Sertifikat server kantor pusat kedaluwarsa atau belum berlaku.", "The back office's server certificate has expired or is not yet valid.")
			f.Action = tf("Periksa jam terminal (temuan clock); bila jam benar, hubungi kantor pusat untuk memperbarui sertifikat servernya.",
				"Check the terminal's clock (the clock finding); if it is right, ask the back office to renew its server certificate.")
		default: // tls, tls-unknown-authority, tls-hostname, tls-not-tls
			f.Message = tf("Sertifikat tidak cocok: sertifikat server kantor pusat tidak dipercaya dengan CA di sync.ca.", "Certificate mismatch: the back office's server certificate is not trusted with the CA in sync.ca.")
			f.Action = tf("Periksa sync.url (alamat server yang benar, https) dan sync.ca (berkas CA dari kantor pusat/pemasang). Jaringan yang menyadap HTTPS (proxy/antivirus) juga menyebabkan ini: kecualikan alamat kantor pusat.",
				"Check sync.url (the right server, https) and sync.ca (the CA file from the back office/installer). A network that intercepts HTTPS (proxy/antivirus) causes this too: exempt the back office's address.")
		}
		return f
	}
	f.Detail += fmt.Sprintf(": HTTP %d", p.resp.StatusCode)
	switch sc := p.resp.StatusCode; {
	case sc == http.StatusOK:
		f.Status, f.Code = OK, "reachable"
		f.Message = tf("Kantor pusat dapat dihubungi (%s).", "The back office is reachable (%s).", host)
		if p.noKey {
			f.Status, f.Code = Warn, "client-key-unreadable"
			f.Message = tf("Kantor pusat dapat dihubungi, tetapi sertifikat klien tidak diuji: kunci terminal tidak terbaca oleh pengguna ini.", "The back office is reachable, but the client certificate was not tested: this user cannot read the terminal's key.")
			f.Action = tf("Jalankan kpectl doctor sebagai root (sudo) untuk memeriksa koneksi lengkap.", "Run kpectl doctor as root (sudo) to check the full connection.")
		}
	case sc == http.StatusUnauthorized || sc == http.StatusForbidden:
		f.Status, f.Code = Fail, fmt.Sprintf("http-%d", sc)
		f.Message = tf("Kantor pusat menolak terminal ini (HTTP %d).", "The back office refuses this terminal (HTTP %d).", sc)
		f.Action = tf("Pastikan terminal terdaftar di kantor pusat dan sertifikat kliennya (sync.client_cert) benar; hubungi kantor pusat.",
			"Make sure the terminal is registered at the back office and its client certificate (sync.client_cert) is right; contact the back office.")
	default:
		f.Status, f.Code = Fail, fmt.Sprintf("http-%d", sc)
		f.Message = tf("Kantor pusat menjawab dengan kesalahan HTTP %d.", "The back office answers with HTTP error %d.", sc)
		f.Action = tf("Periksa sync.url (alamat dan path); bila benar, kantor pusat sedang bermasalah: coba lagi nanti dan hubungi kantor pusat bila berlanjut. Catatan tetap tersimpan.",
			"Check sync.url (address and path); if it is right, the back office has a problem: try again later and contact it if it persists. Records stay stored.")
	}
	return f
}

func (r *run) clockFinding(p *probe) Finding {
	f := Finding{ID: CheckClock}
	if p.date.IsZero() {
		f.Status, f.Code, f.Detail = Skip, "no-date", "no Date header from the back office to compare with"
		f.Message = tf("Tidak diperiksa: jam kantor pusat tidak diketahui.", "Not checked: the back office's time is unknown.")
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
		f.Message = tf("Jam terminal sesuai dengan kantor pusat (selisih %v).", "The terminal's clock agrees with the back office (skew %v).", skew.Abs())
		return f
	}
	f.Status, f.Code = Warn, "skewed"
	f.Message = tf("Jam terminal berbeda %v dari kantor pusat; waktu pada catatan akan salah.", "The terminal's clock is %v off the back office's; records will carry a wrong time.", skew.Abs())
	if r.goos == "windows" {
		f.Action = tf("Aktifkan sinkronisasi waktu: jalankan sebagai Administrator w32tm /resync (layanan Windows Time harus berjalan: sc start w32time), dan periksa zona waktu.",
			"Turn on time synchronisation: as Administrator run w32tm /resync (the Windows Time service must run: sc start w32time), and check the time zone.")
	} else {
		f.Action = tf("Aktifkan sinkronisasi waktu (NTP): sudo timedatectl set-ntp true, dan periksa zona waktu (timedatectl).",
			"Turn on time synchronisation (NTP): sudo timedatectl set-ntp true, and check the time zone (timedatectl).")
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
		f.Message = tf("Sertifikat kedaluwarsa pada %s.", "The certificate expired on %s.", date)
		f.Action = renew
	case now.Before(c.NotBefore):
		f.Status, f.Code = Fail, "not-yet-valid"
		f.Message = tf("Sertifikat belum berlaku (mulai %s): periksa jam terminal.", "The certificate is not valid yet (from %s): check the terminal's clock.", c.NotBefore.Local().Format("2006-01-02"))
		f.Action = tf("Periksa jam dan zona waktu terminal (temuan clock).", "Check the terminal's clock and time zone (the clock finding).")
	case left < CertWarning:
		f.Status, f.Code = Warn, "expires-soon"
		f.Message = tf("Sertifikat kedaluwarsa dalam %d hari (%s).", "The certificate expires in %d days (%s).", int(left.Hours()/24), date)
		f.Action = renew
	default:
		f.Status, f.Code = OK, "valid"
		f.Message = tf("Sertifikat berlaku sampai %s.", "The certificate is valid until %s.", date)
	}
	return f
}

func (r *run) checkClientCert() Finding {
	path := r.cfg.Sync.ClientCert
	if path == "" {
		return Finding{ID: CheckClientCert, Status: Skip, Code: "not-configured", Detail: "sync.client_cert is empty",
			Message: tf("Tidak diperiksa: tidak ada sertifikat klien (sync.client_cert).", "Not checked: no client certificate (sync.client_cert).")}
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
			Message: tf("Sertifikat klien terminal tidak dapat dibaca.", "The terminal's client certificate cannot be read."),
			Action: tf("Periksa sync.client_cert (berkas PEM sertifikat terminal); bila hilang, pasang ulang sertifikat melalui penerbit/pemasang.",
				"Check sync.client_cert (the terminal's PEM certificate file); if it is lost, reinstall the certificate through the issuer/installer.")}
	}
	f := r.certFinding(CheckClientCert, c, tf("Perbarui sertifikat klien terminal melalui penerbit/pemasang (installer), lalu mulai ulang agen.",
		"Renew the terminal's client certificate through the issuer/installer, then restart the agent."))
	f.Detail = path + ": " + f.Detail
	f.Message = Text{ID: "Klien: " + f.Message.ID, EN: "Client: " + f.Message.EN}
	return f
}

func (r *run) serverCertFinding(p *probe) Finding {
	if p.peer == nil {
		return Finding{ID: CheckServerCert, Status: Skip, Code: "no-certificate", Detail: "no server certificate seen (no TLS connection)",
			Message: tf("Tidak diperiksa: sertifikat server kantor pusat tidak diterima.", "Not checked: no server certificate was received from the back office.")}
	}
	f := r.certFinding(CheckServerCert, p.peer, tf("Hubungi kantor pusat: sertifikat server mereka harus diperbarui.",
		"Contact the back office: its server certificate must be renewed."))
	f.Message = Text{ID: "Server: " + f.Message.ID, EN: "Server: " + f.Message.EN}
	return f
}
