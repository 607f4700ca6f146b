package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/lab/pcsctest"
)

// writeServerCert writes a self-signed server certificate for 127.0.0.1
// and its key (PEM), and returns the certificate.
func writeServerCert(t *testing.T, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "kiosk-01"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600))
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c
}

// api.allow_remote without a certificate pair is refused by check-config
// (and so by run); with the pair the agent serves its API over HTTPS
// only, and refuses a request from an http:// origin.
func TestRemoteAPIServesHTTPSOnly(t *testing.T) {
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }
	const tok = "0123456789abcdef0123456789abcdef"
	require.NoError(t, os.WriteFile(at("token"), []byte(tok), 0o600))
	cert := writeServerCert(t, at("api.crt"), at("api.key"))
	writeServerCert(t, at("other.crt"), at("other.key"))
	base := "terminal: {id: pkm-01, site: pkm}\noutbox: {path: outbox.db}\n"
	write := func(api string) string {
		p := at("agent.yaml")
		require.NoError(t, os.WriteFile(p, []byte(base+api), 0o600))
		return p
	}
	check := func(api string) (int, string) {
		var out, errOut bytes.Buffer
		code := run([]string{"check-config", "--config", write(api)}, &out, &errOut)
		return code, out.String() + errOut.String()
	}

	code, out := check("api: {token_file: token, listen: \"0.0.0.0:7531\", allow_remote: true}\n")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, `api.allow_remote: "true" needs TLS`)
	code, out = check("api: {token_file: token, listen: \"0.0.0.0:7531\", allow_remote: true, tls_cert_file: api.crt, tls_key_file: other.key}\n")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "api.tls_cert_file / api.tls_key_file")
	assert.NotContains(t, out, "PRIVATE KEY")
	require.NoError(t, os.Chmod(at("api.key"), 0o644))
	code, out = check("api: {token_file: token, listen: \"0.0.0.0:7531\", allow_remote: true, tls_cert_file: api.crt, tls_key_file: api.key}\n")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "api.tls_key_file")
	assert.Contains(t, out, "chmod 600")
	require.NoError(t, os.Chmod(at("api.key"), 0o600))

	// the agent itself, with the pair (on loopback here: allow_remote lets
	// it listen anywhere, TLS is what it needs for that)
	pcsctest.Require(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	api := fmt.Sprintf("api: {token_file: token, listen: %q, allow_remote: true, tls_cert_file: api.crt, tls_key_file: api.key, allowed_origins: [\"https://kiosk-01.example\"]}\n", addr)
	code, out = check(api)
	require.Equal(t, 0, code, out)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- runAgent(ctx, runOptions{ConfigFile: write(api), Set: map[string]string{}}, func() { close(ready) })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the agent did not stop")
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("the agent stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the agent did not get ready")
	}

	pool := x509.NewCertPool()
	pool.AddCert(cert)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(url string, hdr ...string) (int, string) {
		req, err := http.NewRequest("GET", url, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := hc.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := get("https://" + addr + "/v1/health")
	assert.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `"terminal":"pkm-01"`)
	status, body = get("https://"+addr+"/v1/readers", "Origin", "https://kiosk-01.example")
	assert.Equal(t, http.StatusOK, status, body)
	for _, origin := range []string{"http://kiosk-01.example", "http://" + addr} {
		status, body = get("https://"+addr+"/v1/readers", "Origin", origin)
		assert.Equal(t, http.StatusForbidden, status, "%s: %s", origin, body)
		assert.Contains(t, body, "forbidden-origin")
	}
	// plain HTTP is not served: the token never travels in clear
	status, body = get("http://" + addr + "/v1/health")
	assert.Equal(t, http.StatusBadRequest, status, body)
	assert.False(t, strings.Contains(body, `"status"`), body)
}
