package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/systest"
	"kpe-agent/lab/labpki"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// kpe-backoffice serve --sam-crl FILE: a revoking CRL written to the file
// takes effect on SIGHUP (the poll interval is an hour here), and the
// revoked SAM's later records are refused as revoked-sam.
func TestServeReloadsCRLOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	pki, err := labpki.Write(filepath.Join(dir, "pki"), "lab-01")
	require.NoError(t, err)
	ca, err := labpki.NewCA("test SAM CA")
	require.NoError(t, err)
	sam, err := ca.NewSAM([8]byte{0x53, 0x41, 0x4d, 0, 0, 0, 0, 1})
	require.NoError(t, err)
	samCA := filepath.Join(dir, "sam-ca.pem")
	require.NoError(t, os.WriteFile(samCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o644))
	crlFile := filepath.Join(dir, "sam.crl")
	writeCRL := func(entries ...x509.RevocationListEntry) {
		der, err := ca.CRL(int64(len(entries)+1), entries...)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(crlFile, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644))
	}
	writeCRL()

	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr systest.Buffer
	done := make(chan error, 1)
	o := serveOptions{listen: "127.0.0.1:0", staff: "127.0.0.1:0", dbPath: filepath.Join(dir, "bo.db"), samCA: samCA,
		tlsCert: pki.ServerCert, tlsKey: pki.ServerKey, clientCA: pki.TLSCA, skew: time.Minute, certSkew: time.Hour,
		crl: crlFile, crlPoll: time.Hour, zone: "UTC", inst: multi{},
		perClient: backoffice.DefaultVerifyPerClient, total: backoffice.DefaultVerifyTotal}
	go func() { done <- serve(ctx, o, &stdout, &stderr) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	ready := regexp.MustCompile(`terminals https://(\S+),`)
	require.Eventually(t, func() bool { return ready.MatchString(stdout.String()) }, 10*time.Second, 10*time.Millisecond, "%s", stderr.String())
	url := "https://" + ready.FindStringSubmatch(stdout.String())[1]

	client, err := tls.LoadX509KeyPair(pki.TerminalCert, pki.TerminalKey)
	require.NoError(t, err)
	roots, err := labpki.LoadPool(pki.TLSCA)
	require.NoError(t, err)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{client}, RootCAs: roots}}}
	var prev [32]byte
	send := func() wire.Result {
		id, _ := record.NewID()
		r := &record.Record{ID: id, TerminalID: "lab-01", SiteID: "pkm-a", OperatorID: "clerk", Service: "askes",
			CardType: record.CardKPE, CardSerial: []byte{1, 2, 3, 4}, SubjectKind: record.SubjectNIP, Subject: "196608011988031001",
			CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
			Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Pass},
			Time: time.Now(), Clock: record.ClockSynced, PrevHash: prev}
		require.NoError(t, record.Seal(context.Background(), r, sam))
		prev, err = r.Hash()
		require.NoError(t, err)
		enc, err := r.Encode()
		require.NoError(t, err)
		body, err := json.Marshal(wire.Batch{Certificates: [][]byte{sam.Cert}, Records: [][]byte{enc}, SentAt: time.Now()})
		require.NoError(t, err)
		resp, err := c.Post(url+wire.PathRecords, "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", buf.String())
		res, err := wire.DecodeBatchResult(buf.Bytes(), 1)
		require.NoError(t, err)
		return res.Results[0]
	}
	assert.Equal(t, wire.Accepted, send().Status)

	e, err := labpki.Revoked(sam, time.Now().Add(-time.Second))
	require.NoError(t, err)
	writeCRL(e)
	assert.Equal(t, wire.Accepted, send().Status, "not reloaded before the poll or SIGHUP")
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return regexp.MustCompile(`SAM revocation list loaded.*revoked=1`).MatchString(stderr.String())
	},
		10*time.Second, 10*time.Millisecond, "%s", stderr.String())
	assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonRevoked}, send())
}
