package main

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/config"
)

// With api.tls_cert_file the agent serves HTTPS only: kpectl reaches it
// over https at api.listen, trusting exactly that certificate.
func TestAgentOverTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok","terminal":"PKM-TLS"}`))
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	certFile := filepath.Join(dir, "api.crt")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644))
	var cfg config.Config
	cfg.API = config.API{Listen: strings.TrimPrefix(srv.URL, "https://"), TLSCertFile: certFile, TLSKeyFile: filepath.Join(dir, "api.key"),
		TokenFile: tokenFile(t, agentToken)}
	c := &cli{}
	cl, tokenErr, err := c.agentFor(cfg)
	require.NoError(t, err)
	require.NoError(t, tokenErr)
	require.True(t, strings.HasPrefix(cl.URL(), "https://"), cl.URL())
	h, err := cl.Health(t.Context())
	require.NoError(t, err)
	require.Equal(t, "PKM-TLS", h.Terminal)

	// a certificate file that holds none is a clear error
	require.NoError(t, os.WriteFile(certFile, []byte("nothing"), 0o644))
	_, _, err = c.agentFor(cfg)
	require.ErrorContains(t, err, "api.tls_cert_file")
}
