package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kpe-agent check-config (and run, which loads the same way) exits
// non-zero with a message naming the key, the file and the expected form.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("0123456789abcdef0123456789abcdef"), 0o600))
	write := func(body string) string {
		p := filepath.Join(dir, "agent.yaml")
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	good := "terminal: {id: pkm-01, site: pkm}\napi: {token_file: token}\noutbox: {path: outbox.db}\n"
	for _, c := range []struct {
		name, body string
		args       []string
		code       int
		want       []string
	}{
		{"good", good, nil, 0, []string{"ok (terminal pkm-01)"}},
		{"unknown key", good + "log: {levle: debug}\n", nil, 1, []string{"agent.yaml:4", "log.levle", "unknown key", "did you mean log.level"}},
		{"bad value", good + "sync: {interval: soon}\n", nil, 1, []string{"agent.yaml:4", "sync.interval", `"soon"`, "30s"}},
		{"bad flag value", good, []string{"--set", "api.listen=0.0.0.0:7531"}, 1, []string{"--set api.listen", "loopback"}},
		{"token too open", good, nil, 1, []string{"api.token_file", "chmod 600"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mode := os.FileMode(0o600)
			if c.name == "token too open" {
				mode = 0o644
			}
			require.NoError(t, os.Chmod(filepath.Join(dir, "token"), mode))
			var out, errOut bytes.Buffer
			code := run(append([]string{"check-config", "--config", write(c.body)}, c.args...), &out, &errOut)
			assert.Equal(t, c.code, code, "stdout %q stderr %q", out.String(), errOut.String())
			for _, w := range c.want {
				assert.Contains(t, out.String()+errOut.String(), w)
			}
		})
	}
}

// writeCertKey writes a self-signed certificate and its key (PEM).
func writeCertKey(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pkm-01"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600))
}

// check-config reads every file run reads at start, the same way: the
// back office's client certificate and key (a secret), its CA and the
// issuers' trust lists, not only the token and the SAM secrets.
func TestCheckConfigReadsWhatRunReads(t *testing.T) {
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }
	require.NoError(t, os.WriteFile(at("token"), []byte("0123456789abcdef0123456789abcdef"), 0o600))
	writeCertKey(t, at("client.pem"), at("client-key.pem"))
	writeCertKey(t, at("other.pem"), at("other-key.pem"))
	writeCertKey(t, at("ca.pem"), at("ca-key.pem"))
	require.NoError(t, os.WriteFile(at("empty.pem"), []byte("no certificate here\n"), 0o644))
	cfgFile := at("agent.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(`terminal: {id: pkm-01, site: pkm}
api: {token_file: token}
outbox: {path: outbox.db}
sync: {url: "https://bo.example.go.id:8443", client_cert: client.pem, client_key: client-key.pem, ca: ca.pem}
trust: {bkn: ca.pem, dukcapil: ca.pem}
`), 0o600))
	check := func(t *testing.T, set ...string) (int, string) {
		t.Helper()
		args := []string{"check-config", "--config", cfgFile}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	code, out := check(t)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "ok (terminal pkm-01)")

	for _, c := range []struct {
		name string
		set  []string
		want []string
	}{
		{"client key readable by others", []string{"sync.client_key=" + at("open-key.pem")},
			[]string{"sync.client_key", "open-key.pem", "chmod 600"}},
		{"missing client certificate", []string{"sync.client_cert=" + at("nope.pem")}, []string{"sync.client_cert", "nope.pem"}},
		{"key of another certificate", []string{"sync.client_key=" + at("other-key.pem")}, []string{"sync.client_cert / sync.client_key"}},
		{"no CA certificate", []string{"sync.ca=" + at("empty.pem")}, []string{"sync.ca", "holds no PEM certificate"}},
		{"missing BKN list", []string{"trust.bkn=" + at("nope.pem")}, []string{"trust.bkn", "nope.pem"}},
		{"Dukcapil list without a certificate", []string{"trust.dukcapil=" + at("empty.pem")}, []string{"trust.dukcapil", "holds no PEM certificate"}},
		{"every problem at once", []string{"sync.ca=" + at("empty.pem"), "trust.bkn=" + at("nope.pem"), "ktpel.pseudonym=file", "sam.nik_key_file=" + at("nope")},
			[]string{"sync.ca", "trust.bkn", "sam.nik_key_file"}},
		{"pseudonym fallback key too short", []string{"ktpel.pseudonym=file", "sam.nik_key_file=" + at("short-key")},
			[]string{"sam.nik_key_file", "short-key", "31 bytes", "key shorter than 32 bytes"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := os.ReadFile(at("client-key.pem"))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(at("open-key.pem"), b, 0o600))
			require.NoError(t, os.Chmod(at("open-key.pem"), 0o644))
			require.NoError(t, os.WriteFile(at("short-key"), []byte(strings.Repeat("k", 31)+"\n"), 0o600))
			code, out := check(t, c.set...)
			if c.name == "client key readable by others" && runtime.GOOS == "windows" {
				require.Equal(t, 0, code, out)
				return
			}
			require.Equal(t, 1, code, out)
			for _, w := range c.want {
				require.Contains(t, out, w)
			}
			require.NotContains(t, out, "PRIVATE KEY")
		})
	}
}
