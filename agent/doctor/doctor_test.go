package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/agent/config"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and client
// certificates, written as PEM files.
type testPKI struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
}

func newPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	p := &testPKI{dir: t.TempDir(), ca: ca, caKey: key}
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", der, 0o644)
	return p
}

func (p *testPKI) write(t *testing.T, name, typ string, der []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode))
	return path
}

// issue makes a certificate valid from notBefore to notAfter.
func (p *testPKI) issue(t *testing.T, cn string, server bool, notBefore, notAfter time.Time) (tls.Certificate, []byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, der, key
}

// clientFiles writes a client certificate and its key (0600).
func (p *testPKI) clientFiles(t *testing.T, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	_, der, key := p.issue(t, "PKM-TEST-01", false, time.Now().Add(-time.Hour), notAfter)
	k, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return p.write(t, "client.pem", "CERTIFICATE", der, 0o644), p.write(t, "client.key", "PRIVATE KEY", k, 0o600)
}

// backOffice is an mTLS back office whose certificate p issued.
func backOffice(t *testing.T, p *testPKI, serverNotAfter time.Time, h http.HandlerFunc) string {
	t.Helper()
	cert, _, _ := p.issue(t, "backoffice", true, time.Now().Add(-48*time.Hour), serverNotAfter)
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are what the tests make
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

func healthOK(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/health" {
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write([]byte(`{"status":"ok"}`))
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// noAgent is a client of an agent that does not run.
func noAgent(t *testing.T) *api.Client {
	c, err := api.NewClient(closedAddr(t), "")
	require.NoError(t, err)
	return c
}

var backOfficeChecks = []string{CheckBackOffice, CheckClock, CheckClientCert, CheckServerCert}

func runOnly(t *testing.T, cfg *config.Config, only ...string) Report {
	t.Helper()
	if cfg.Outbox.Path == "" {
		cfg.Outbox.Path = filepath.Join(t.TempDir(), "outbox.db")
	}
	return Run(context.Background(), Options{Config: cfg, Agent: noAgent(t), Only: only, CheckTimeout: 3 * time.Second})
}

func find(t *testing.T, rep Report, id string) Finding {
	t.Helper()
	f, ok := rep.Find(id)
	require.True(t, ok, "no finding %s in %+v", id, rep.Findings)
	return f
}

// requireAction checks a finding's status, code and both languages of
// its action.
func requireAction(t *testing.T, f Finding, st Status, code, id, en string) {
	t.Helper()
	require.Equal(t, st, f.Status, "%+v", f)
	require.Equal(t, code, f.Code, "%+v", f)
	require.Contains(t, f.Action.ID, id)
	require.Contains(t, f.Action.EN, en)
}

func TestBackOfficeOK(t *testing.T) {
	p := newPKI(t, "Test CA")
	url := backOffice(t, p, time.Now().Add(365*24*time.Hour), healthOK)
	certFile, keyFile := p.clientFiles(t, time.Now().Add(300*24*time.Hour))
	cfg := &config.Config{Sync: config.Sync{URL: url + "/", CA: p.caFile, ClientCert: certFile, ClientKey: keyFile}}
	rep := runOnly(t, cfg, backOfficeChecks...)
	require.Len(t, rep.Findings, 4)
	for _, f := range rep.Findings {
		require.Equal(t, OK, f.Status, "%+v", f)
		require.Empty(t, f.Action)
	}
	require.False(t, rep.Failed())
	require.Equal(t, "reachable", find(t, rep, CheckBackOffice).Code)
	require.Contains(t, find(t, rep, CheckClientCert).Detail, "PKM-TEST-01")
}

func TestBackOfficeUnreachable(t *testing.T) {
	p := newPKI(t, "Test CA")
	cfg := &config.Config{Sync: config.Sync{URL: "https://" + closedAddr(t), CA: p.caFile}}
	rep := runOnly(t, cfg, backOfficeChecks...)
	requireAction(t, find(t, rep, CheckBackOffice), Fail, "refused", "HTTPS_PROXY", "HTTPS_PROXY")
	requireAction(t, find(t, rep, CheckBackOffice), Fail, "refused", "Periksa koneksi jaringan", "Check the terminal's network connection")
	require.Equal(t, Skip, find(t, rep, CheckClock).Status)
	require.Equal(t, Skip, find(t, rep, CheckServerCert).Status)
	require.True(t, rep.Failed())

	// DNS: a name that cannot resolve (.invalid is reserved).
	cfg.Sync.URL = "https://backoffice.invalid"
	rep = runOnly(t, cfg, CheckBackOffice)
	requireAction(t, find(t, rep, CheckBackOffice), Fail, "dns", "DNS", "DNS")
}

func TestBackOfficeTLSMismatch(t *testing.T) {
	// The server's certificate comes from httptest's own CA, not from the
	// configured one.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(healthOK))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p := newPKI(t, "Other CA")
	cfg := &config.Config{Sync: config.Sync{URL: srv.URL, CA: p.caFile}}
	rep := runOnly(t, cfg, backOfficeChecks...)
	f := find(t, rep, CheckBackOffice)
	requireAction(t, f, Fail, "tls-unknown-authority", "sync.ca", "sync.ca")
	require.Contains(t, f.Message.ID, "Sertifikat tidak cocok")
	require.Contains(t, f.Message.EN, "Certificate mismatch")
	// The server's certificate was still seen, and the clock read.
	require.Equal(t, OK, find(t, rep, CheckServerCert).Status)
	clock := find(t, rep, CheckClock)
	require.Equal(t, OK, clock.Status)
	require.Contains(t, clock.Detail, "unverified connection")
}

func TestBackOfficeClientRejected(t *testing.T) {
	p := newPKI(t, "Test CA")
	url := backOffice(t, p, time.Now().Add(365*24*time.Hour), healthOK)
	other := newPKI(t, "Rogue CA")
	certFile, keyFile := other.clientFiles(t, time.Now().Add(300*24*time.Hour))
	cfg := &config.Config{Sync: config.Sync{URL: url, CA: p.caFile, ClientCert: certFile, ClientKey: keyFile}}
	rep := runOnly(t, cfg, CheckBackOffice)
	requireAction(t, find(t, rep, CheckBackOffice), Fail, "tls-rejected", "perbarui sertifikat terminal", "renew the terminal's certificate")
}

func TestBackOfficeHTTPError(t *testing.T) {
	p := newPKI(t, "Test CA")
	url := backOffice(t, p, time.Now().Add(365*24*time.Hour), func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "forbidden", http.StatusForbidden)
	})
	certFile, keyFile := p.clientFiles(t, time.Now().Add(300*24*time.Hour))
	cfg := &config.Config{Sync: config.Sync{URL: url, CA: p.caFile, ClientCert: certFile, ClientKey: keyFile}}
	rep := runOnly(t, cfg, CheckBackOffice)
	requireAction(t, find(t, rep, CheckBackOffice), Fail, "http-403", "terminal terdaftar", "registered")
}

func TestCertificatesExpiry(t *testing.T) {
	p := newPKI(t, "Test CA")
	// Server certificate expired: verification fails with "expired".
	url := backOffice(t, p, time.Now().Add(-time.Hour), healthOK)
	certFile, keyFile := p.clientFiles(t, time.Now().Add(10*24*time.Hour))
	cfg := &config.Config{Sync: config.Sync{URL: url, CA: p.caFile, ClientCert: certFile, ClientKey: keyFile}}
	rep := runOnly(t, cfg, backOfficeChecks...)
	requireAction(t, find(t, rep, CheckBackOffice), Fail, "tls-expired", "jam terminal", "clock")
	requireAction(t, find(t, rep, CheckServerCert), Fail, "expired", "Hubungi kantor pusat", "Contact the back office")
	requireAction(t, find(t, rep, CheckClientCert), Warn, "expires-soon", "Perbarui sertifikat klien", "Renew the terminal's client certificate")
	require.Contains(t, find(t, rep, CheckClientCert).Message.EN, "expires in 9 days")
	// Each certificate's message carries its label, in each language.
	require.True(t, strings.HasPrefix(find(t, rep, CheckClientCert).Message.ID, "Klien: Sertifikat kedaluwarsa dalam "), find(t, rep, CheckClientCert).Message.ID)
	require.True(t, strings.HasPrefix(find(t, rep, CheckClientCert).Message.EN, "Client: The certificate expires in "), find(t, rep, CheckClientCert).Message.EN)
	require.True(t, strings.HasPrefix(find(t, rep, CheckServerCert).Message.ID, "Server: Sertifikat kedaluwarsa pada "), find(t, rep, CheckServerCert).Message.ID)
	require.True(t, strings.HasPrefix(find(t, rep, CheckServerCert).Message.EN, "Server: The certificate expired on "), find(t, rep, CheckServerCert).Message.EN)

	// An expired client certificate fails.
	certFile, _ = p.clientFiles(t, time.Now().Add(-time.Minute))
	cfg.Sync.ClientCert = certFile
	rep = runOnly(t, cfg, CheckClientCert)
	requireAction(t, find(t, rep, CheckClientCert), Fail, "expired", "penerbit/pemasang", "issuer/installer")
}

func TestClockSkew(t *testing.T) {
	p := newPKI(t, "Test CA")
	url := backOffice(t, p, time.Now().Add(365*24*time.Hour), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(-10*time.Minute).UTC().Format(http.TimeFormat))
		healthOK(w, r)
	})
	certFile, keyFile := p.clientFiles(t, time.Now().Add(300*24*time.Hour))
	cfg := &config.Config{Sync: config.Sync{URL: url, CA: p.caFile, ClientCert: certFile, ClientKey: keyFile}}
	rep := runOnly(t, cfg, CheckClock)
	require.Len(t, rep.Findings, 1)
	f := find(t, rep, CheckClock)
	requireAction(t, f, Warn, "skewed", "timedatectl set-ntp true", "timedatectl set-ntp true")
	require.Contains(t, f.Message.EN, "10m")

	rep = Run(context.Background(), Options{Config: cfg, Agent: noAgent(t), Only: []string{CheckClock}, GOOS: "windows"})
	requireAction(t, find(t, rep, CheckClock), Warn, "skewed", "w32tm /resync", "w32tm /resync")
}

func TestBackOfficeNotConfigured(t *testing.T) {
	rep := runOnly(t, &config.Config{}, backOfficeChecks...)
	for _, f := range rep.Findings {
		require.Equal(t, Skip, f.Status, "%+v", f)
	}
	cfg := &config.Config{Sync: config.Sync{URL: "https://127.0.0.1:1", CA: filepath.Join(t.TempDir(), "missing.pem")}}
	rep = runOnly(t, cfg, CheckBackOffice)
	requireAction(t, find(t, rep, CheckBackOffice), Fail, "tls-config", "sync.ca", "sync.ca")
}

// fakeAgent answers health and queue like a running agent.
func fakeAgent(t *testing.T, h api.Health, q api.QueueStatus, token string) *api.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != api.PathHealth && r.Header.Get("Authorization") != "Bearer good" {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: api.Error{Code: "unauthorized"}})
			return
		}
		switch r.URL.Path {
		case api.PathHealth:
			_ = json.NewEncoder(w).Encode(h)
		case api.PathQueue:
			_ = json.NewEncoder(w).Encode(q)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := api.NewClient(srv.URL, token)
	require.NoError(t, err)
	return c
}

func TestAgentRunning(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{Outbox: config.Outbox{Path: filepath.Join(dir, "outbox.db")}}
	require.NoError(t, os.WriteFile(cfg.Outbox.Path+".corrupt-20261123T080000.000", []byte("x"), 0o600))
	h := api.Health{Status: "ok", Version: "1.0", SAM: &api.SAM{Present: true, Reader: "R1", Serial: "53414D0000000001", State: "inactive", TriesLeft: 3}}
	q := api.QueueStatus{Pending: 10, Dead: 2, Used: 0.85}
	rep := Run(context.Background(), Options{Config: cfg, Agent: fakeAgent(t, h, q, "good"), Only: []string{CheckAgent, CheckSAM, CheckOutbox}})
	require.Equal(t, OK, find(t, rep, CheckAgent).Status, "%+v", find(t, rep, CheckAgent))
	// The agent holds the SAM: its state comes from the agent.
	sam := find(t, rep, CheckSAM)
	requireAction(t, sam, Warn, "inactive", "sam.activation_code_file", "sam.activation_code_file")
	require.Contains(t, sam.Detail, "as reported by the agent")
	requireAction(t, find(t, rep, CheckOutbox), Warn, "filling", "kpectl sync now", "kpectl sync now")
	requireAction(t, find(t, rep, "outbox-dead"), Warn, "dead", "kpectl queue list --state dead", "kpectl queue list --state dead")
	requireAction(t, find(t, rep, "outbox-damaged"), Warn, "moved-aside", "kpectl queue salvage", "kpectl queue salvage")
	require.Equal(t, []string{CheckAgent, CheckSAM, CheckOutbox, "outbox-dead", "outbox-damaged"}, ids(rep))

	// Full outbox, blocked SAM, missing SAM.
	h.SAM.State = "blocked"
	q = api.QueueStatus{Used: 1}
	rep = Run(context.Background(), Options{Config: cfg, Agent: fakeAgent(t, h, q, "good"), Only: []string{CheckSAM, CheckOutbox}})
	requireAction(t, find(t, rep, CheckSAM), Fail, "blocked", "hubungi penerbit SAM", "contact the SAM issuer")
	requireAction(t, find(t, rep, CheckOutbox), Fail, "full", "kpectl sync now", "kpectl sync now")
	h.SAM = &api.SAM{Present: false}
	rep = Run(context.Background(), Options{Config: cfg, Agent: fakeAgent(t, h, q, "good"), Only: []string{CheckSAM}})
	requireAction(t, find(t, rep, CheckSAM), Fail, "missing", "Masukkan SAM ke slot SAM pembaca, lalu jalankan ulang kpectl doctor",
		"Insert the SAM into the reader's SAM slot, then run kpectl doctor again")

	// Degraded.
	h = api.Health{Status: "degraded", Problems: []api.Error{{Code: "no-sam"}}}
	rep = Run(context.Background(), Options{Config: cfg, Agent: fakeAgent(t, h, q, "good"), Only: []string{CheckAgent}})
	f := find(t, rep, CheckAgent)
	require.Equal(t, Warn, f.Status)
	require.Equal(t, "degraded", f.Code)
	require.Contains(t, f.Detail, "no-sam")
}

func TestAgentToken(t *testing.T) {
	cfg := &config.Config{Outbox: config.Outbox{Path: filepath.Join(t.TempDir(), "outbox.db")}}
	h := api.Health{Status: "ok"}
	// Rejected token.
	rep := Run(context.Background(), Options{Config: cfg, Agent: fakeAgent(t, h, api.QueueStatus{}, "bad"), Only: []string{CheckAgent, CheckSAM, CheckOutbox}})
	requireAction(t, find(t, rep, CheckAgent), Warn, "token-rejected", "--token-file", "--token-file")
	require.Equal(t, Skip, find(t, rep, CheckSAM).Status)
	require.Equal(t, Skip, find(t, rep, CheckOutbox).Status)
	// No token at all.
	rep = Run(context.Background(), Options{Config: cfg, Agent: fakeAgent(t, h, api.QueueStatus{}, ""), Only: []string{CheckAgent}})
	requireAction(t, find(t, rep, CheckAgent), Warn, "no-token", "sudo kpectl doctor", "sudo kpectl doctor")
}

func TestAgentNotRunning(t *testing.T) {
	for goos, action := range map[string]string{"linux": "sudo systemctl start kpe-agent", "windows": "sc start kpe-agent"} {
		rep := Run(context.Background(), Options{Config: &config.Config{}, Agent: noAgent(t), Only: []string{CheckAgent}, GOOS: goos})
		requireAction(t, find(t, rep, CheckAgent), Warn, "not-running", action, action)
	}
}

func TestOutboxFile(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{Outbox: config.Outbox{Path: filepath.Join(dir, "outbox.db")}}
	rep := runOnly(t, cfg, CheckOutbox)
	require.Equal(t, "none-yet", find(t, rep, CheckOutbox).Code)
	require.Equal(t, OK, find(t, rep, CheckOutbox).Status)

	require.NoError(t, os.WriteFile(cfg.Outbox.Path, []byte(strings.Repeat("garbage!", 1024)), 0o600))
	rep = runOnly(t, cfg, CheckOutbox)
	requireAction(t, find(t, rep, CheckOutbox), Fail, "damaged", "kpectl queue salvage", "kpectl queue salvage")
}

func TestDisk(t *testing.T) {
	rep := runOnly(t, &config.Config{Outbox: config.Outbox{Path: filepath.Join(t.TempDir(), "sub", "dir", "outbox.db")}}, CheckDisk)
	f := find(t, rep, CheckDisk)
	require.Contains(t, []Status{OK, Warn, Fail}, f.Status)
	require.Contains(t, f.Detail, "free of")
}

// The whole run is bounded even when a check hangs: here the agent
// accepts the connection and never answers.
func TestRunBounded(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) })
	c, err := api.NewClient(srv.URL, "")
	require.NoError(t, err)
	start := time.Now()
	rep := Run(context.Background(), Options{Config: &config.Config{}, Agent: c, Only: []string{CheckAgent}, CheckTimeout: 300 * time.Millisecond})
	require.Less(t, time.Since(start), 3*time.Second)
	require.Equal(t, Warn, find(t, rep, CheckAgent).Status)
}

func TestReportJSON(t *testing.T) {
	rep := Run(context.Background(), Options{Config: &config.Config{}, Agent: noAgent(t), Only: []string{CheckConfig, CheckAgent}})
	b, err := json.Marshal(rep)
	require.NoError(t, err)
	var back struct {
		Findings []struct {
			ID, Status, Code string
			Action           map[string]string
		}
		Summary map[string]int
		Took    string
	}
	require.NoError(t, json.Unmarshal(b, &back))
	require.Len(t, back.Findings, 2)
	require.Equal(t, "agent", back.Findings[1].ID)
	require.NotEmpty(t, back.Findings[1].Action["id"])
	require.NotEmpty(t, back.Findings[1].Action["en"])
	require.Equal(t, 1, back.Summary["warn"])
	require.NotEmpty(t, back.Took)
	require.NotContains(t, string(b), `"action":{"id":"","en":""}`)
}

func ids(rep Report) []string {
	var out []string
	for _, f := range rep.Findings {
		out = append(out, f.ID)
	}
	return out
}

// The explicit key-file fallback for the KTP-el pseudonyms is a warning
// the technician sees, with what to do; the SAM (the default) is not.
func TestConfigPseudonymFileWarns(t *testing.T) {
	file := &config.Config{File: "/etc/kpe-agent/agent.yaml", KTPel: config.KTPel{Pseudonym: config.PseudonymFile}}
	f := find(t, Run(context.Background(), Options{Config: file, Agent: noAgent(t), Only: []string{CheckConfig}}), CheckConfig)
	require.Equal(t, Warn, f.Status)
	require.Equal(t, "pseudonym-file", f.Code)
	require.Contains(t, f.Message.EN, "/etc/kpe-agent/agent.yaml")
	require.NotEmpty(t, f.Action.ID)
	require.NotEmpty(t, f.Action.EN)

	sam := &config.Config{File: "/etc/kpe-agent/agent.yaml", KTPel: config.KTPel{Pseudonym: config.PseudonymSAM}}
	f = find(t, Run(context.Background(), Options{Config: sam, Agent: noAgent(t), Only: []string{CheckConfig}}), CheckConfig)
	require.Equal(t, OK, f.Status)
	require.Equal(t, "loaded", f.Code)
}
