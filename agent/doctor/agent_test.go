package doctor

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kpe-agent/agent/config"
)

// With api.tls_cert_file the doctor (and kpectl) reach the agent over
// https, trusting exactly that certificate; without it, plain http.
func TestLocalAgentFollowsTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer srv.Close()
	certFile := filepath.Join(t.TempDir(), "api.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := strings.TrimPrefix(srv.URL, "https://")

	c, err := LocalAgent(config.API{Listen: listen, TLSCertFile: certFile}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.URL(), "https://") {
		t.Errorf("client URL %s; want https", c.URL())
	}
	if h, err := c.Health(context.Background()); err != nil || h.Status != "ok" {
		t.Errorf("health over the pinned TLS = %+v, %v", h, err)
	}

	plain, err := LocalAgent(config.API{Listen: listen}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain.URL(), "http://") {
		t.Errorf("client URL without TLS %s; want http", plain.URL())
	}

	_, err = LocalAgent(config.API{Listen: listen, TLSCertFile: filepath.Join(t.TempDir(), "missing.pem")}, "", "")
	if !errors.Is(err, ErrAgentCert) {
		t.Errorf("a missing certificate file: %v; want ErrAgentCert", err)
	}
}
