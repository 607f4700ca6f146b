package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/doctor"
	"kpe-agent/apdu/sam"
	"kpe-agent/lab/pcsctest"
)

// doctorEnv is a configuration file and an agent address where nothing
// listens, so that a real agent on this machine does not matter.
func doctorEnv(t *testing.T, syncURL string) []string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("terminal:\n  id: PKM-TEST-01\n  site: PKM-TEST\noutbox:\n  path: %s\n", filepath.Join(dir, "outbox.db"))
	if syncURL != "" {
		ca, cert, key := testCerts(t, dir)
		cfg += fmt.Sprintf("sync:\n  url: %s\n  ca: %s\n  client_cert: %s\n  client_key: %s\n", syncURL, ca, cert, key)
	}
	file := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))
	return []string{"--config", file, "--agent", closedPort(t), "--token-file", filepath.Join(dir, "no-token")}
}

// testCerts writes a self-signed CA and a client certificate it issued.
func testCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "PKM-TEST-01"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600))
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("client.pem", "CERTIFICATE", der), write("client.key", "PRIVATE KEY", kder)
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestIntegrationDoctorPCSCStopped(t *testing.T) {
	pcsctest.Require(t)
	t.Cleanup(func() {
		if err := pcsctest.Start(); err != nil {
			t.Errorf("restarting pcscd: %v", err)
		}
		if err := pcsctest.WaitReaders(10 * time.Second); err != nil {
			t.Errorf("pcscd readers: %v", err)
		}
	})
	require.NoError(t, pcsctest.Stop())
	env := doctorEnv(t, "")

	out, errOut, code := runCLI(t, "", append(env, "doctor")...)
	require.Equal(t, 1, code, errOut)
	require.Regexp(t, `\[GAGAL\] +pcsc +Layanan kartu pintar \(pcscd\) tidak berjalan\.`, out)
	require.Contains(t, out, "→ Tindakan: Jalankan layanan pcscd: sudo systemctl start pcscd")
	require.Regexp(t, `\[PERINGATAN\] +agent`, out)
	require.Contains(t, out, "Ringkasan:")

	out, errOut, code = runCLI(t, "", append(append([]string{"--lang", "en"}, env...), "doctor")...)
	require.Equal(t, 1, code, errOut)
	require.Regexp(t, `\[FAIL\] +pcsc +The smart-card service \(pcscd\) is not running\.`, out)
	require.Contains(t, out, "→ Action: Start the pcscd service: sudo systemctl start pcscd")
	require.Regexp(t, `\[SKIPPED\] +readers`, out)
}

// The lab SAM active, no back office configured: nothing fails (the
// agent not running is a warning), exit code 0. The back office at a
// closed port: exit code 1 with the network action.
func TestIntegrationDoctorExitCodes(t *testing.T) {
	pcsctest.Require(t)
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	lab := pcsctest.Lab(t)
	pcsctest.Insert(t, lab, 0, "lab/cards/kpe-budi.json")
	pcsctest.Insert(t, lab, 1, "lab/cards/sam.json")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	card := pcsctest.Connect(t, pcsctest.Slot1)
	s, err := sam.Open(ctx, card)
	require.NoError(t, err)
	require.NoError(t, s.Activate(ctx, []byte("123456")))
	require.NoError(t, card.Close())

	out, errOut, code := runCLI(t, "", append(doctorEnv(t, ""), "doctor")...)
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	require.Regexp(t, `\[OK\] +sam +SAM aktif`, out)
	require.NotContains(t, out, "196608011988031001", "no personal data in doctor's output")

	env := doctorEnv(t, "https://"+closedPort(t))
	out, errOut, code = runCLI(t, "", append(env, "doctor")...)
	require.Equal(t, 1, code, errOut)
	require.Regexp(t, `\[GAGAL\] +backoffice +Kantor pusat \(127\.0\.0\.1:\d+\) menolak koneksi\.`, out)
	require.Contains(t, out, "→ Tindakan: Periksa koneksi jaringan terminal")
	require.Contains(t, out, "atur HTTPS_PROXY untuk agen")

	out, errOut, code = runCLI(t, "", append(append([]string{"--lang", "en"}, env...), "doctor", "--json")...)
	require.Equal(t, 1, code, errOut)
	var rep doctor.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	f, ok := rep.Find(doctor.CheckBackOffice)
	require.True(t, ok)
	require.Equal(t, doctor.Fail, f.Status)
	require.Equal(t, "refused", f.Code)
	require.Contains(t, f.Action.EN, "set HTTPS_PROXY for the agent")
	require.Contains(t, f.Action.ID, "atur HTTPS_PROXY")
	require.Equal(t, 1, rep.Summary[doctor.Fail])
}
