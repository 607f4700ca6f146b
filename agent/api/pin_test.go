package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A client of an agent that serves HTTPS (api.tls_cert_file) trusts
// exactly that certificate: kpectl on the terminal reaches the agent
// without a CA, and nothing else passes for it.
func TestPinnedCert(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ctWriteJSON(w, 200, Health{Status: "ok"})
	})
	srv := httptest.NewTLSServer(handler)
	t.Cleanup(srv.Close)
	// httptest's servers share one certificate: the other has its own
	other := httptest.NewUnstartedServer(handler)
	other.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	other.StartTLS()
	t.Cleanup(other.Close)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	pin, err := PinnedCert(append([]byte("# the agent's certificate\n"), certPEM...))
	require.NoError(t, err)
	c, err := NewClient(srv.URL, "t", pin)
	require.NoError(t, err)
	h, err := c.Health(ctCtx(t))
	require.NoError(t, err)
	assert.Equal(t, "ok", h.Status)

	// another server's certificate is refused, though both are valid for
	// 127.0.0.1
	c, err = NewClient(other.URL, "t", pin)
	require.NoError(t, err)
	_, err = c.Health(ctCtx(t))
	require.ErrorContains(t, err, "not the pinned one")

	_, err = PinnedCert([]byte("no certificate"))
	require.Error(t, err)
	_, err = PinnedCert(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}))
	require.Error(t, err)
}

// selfSigned is a certificate for 127.0.0.1 of its own.
func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "other"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
