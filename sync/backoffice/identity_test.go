package backoffice_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/pgtest"
	"kpe-agent/lab/labpki"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// ingestAs hands a batch to the service as sent by terminal (the identity
// its client certificate established).
func ingestAs(t *testing.T, svc *backoffice.Service, b *wire.Batch, terminal string) []wire.Result {
	t.Helper()
	res, err := svc.Ingest(context.Background(), b, backoffice.Identity{Terminal: terminal})
	require.NoError(t, err)
	require.Len(t, res.Results, len(b.Records))
	return res.Results
}

// post sends a batch to a terminal listener and returns the status and
// the body.
func post(t *testing.T, c *http.Client, url string, b wire.Batch) (int, []byte) {
	t.Helper()
	body, err := json.Marshal(b)
	require.NoError(t, err)
	resp, err := c.Post(url+wire.PathRecords, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

func problemCode(t *testing.T, body []byte) string {
	var p wire.Problem
	require.NoError(t, json.Unmarshal(body, &p), "%s", body)
	return p.Error
}

// Over real mutual TLS: a client certificate of the terminal CA without a
// usable identity (no common name, two common names, an id the records
// could not carry) is refused before its records are looked at; a usable
// one may send only its own records.
func TestTerminalIdentityMTLS(t *testing.T) {
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	tlsCA, err := labpki.NewCA("test terminal CA")
	require.NoError(t, err)
	srvCert, err := tlsCA.Server()
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(l.svc.TerminalHandler(nil))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: tlsCA.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()
	client := func(cert tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: tlsCA.Pool()}}}
	}
	cnOID := asn1.ObjectIdentifier{2, 5, 4, 3}
	// crypto/x509 reads the last of two common names
	twoCNs, err := asn1.Marshal(pkix.RDNSequence{{{Type: cnOID, Value: "t-01"}}, {{Type: cnOID, Value: "t-02"}}})
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		tmpl *x509.Certificate
	}{
		{"no common name", &x509.Certificate{Subject: pkix.Name{Organization: []string{"lab terminal"}}}},
		{"two common names", &x509.Certificate{RawSubject: twoCNs}},
		{"id longer than a record's", &x509.Certificate{Subject: pkix.Name{CommonName: strings.Repeat("t", 65)}}},
		{"id with a control character", &x509.Certificate{Subject: pkix.Name{CommonName: "t-02\x7f"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.tmpl.KeyUsage, c.tmpl.ExtKeyUsage = x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
			cert, err := tlsCA.ClientCert(c.tmpl)
			require.NoError(t, err)
			recs := l.records(2, "t-02") // another terminal's records
			code, body := post(t, client(cert), srv.URL, wire.Batch{Certificates: [][]byte{l.sam.Cert}, Records: recs, SentAt: time.Now()})
			assert.Equal(t, http.StatusForbidden, code, "%s", body)
			if code == http.StatusForbidden {
				assert.Equal(t, "terminal-identity", problemCode(t, body))
			}
			_, err = l.svc.Terminal(context.Background(), "t-02")
			assert.ErrorIs(t, err, backoffice.ErrNotFound, "nothing of the batch is stored")
		})
	}

	// a usable identity: its own records are taken, another's are not
	t01, err := tlsCA.Terminal("t-01")
	require.NoError(t, err)
	code, body := post(t, client(t01), srv.URL, wire.Batch{Certificates: [][]byte{l.sam.Cert}, Records: l.records(1, "t-02"), SentAt: time.Now()})
	require.Equal(t, http.StatusOK, code, "%s", body)
	res, err := wire.DecodeBatchResult(body, 1)
	require.NoError(t, err)
	assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonTerminal}, res.Results[0])
	code, body = post(t, client(t01), srv.URL, wire.Batch{Certificates: [][]byte{l.sam.Cert}, Records: l.records(1, "t-01"), SentAt: time.Now()})
	require.Equal(t, http.StatusOK, code, "%s", body)
	res, err = wire.DecodeBatchResult(body, 1)
	require.NoError(t, err)
	assert.Equal(t, wire.Accepted, res.Results[0].Status)
}

// A listener that asks for a client certificate but does not verify it
// (a misconfigured server): an unverified certificate names nobody.
func TestTerminalIdentityUnverifiedCertificate(t *testing.T) {
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	tlsCA, err := labpki.NewCA("test terminal CA")
	require.NoError(t, err)
	srvCert, err := tlsCA.Server()
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(l.svc.TerminalHandler(nil))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	defer srv.Close()
	selfCA, err := labpki.NewCA("anyone")
	require.NoError(t, err)
	forged, err := selfCA.Terminal("t-02")
	require.NoError(t, err)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{forged}, RootCAs: tlsCA.Pool()}}}
	code, body := post(t, c, srv.URL, wire.Batch{Certificates: [][]byte{l.sam.Cert}, Records: l.records(1, "t-02"), SentAt: time.Now()})
	assert.Equal(t, http.StatusUnauthorized, code, "%s", body)
	_, err = l.svc.Terminal(context.Background(), "t-02")
	assert.ErrorIs(t, err, backoffice.ErrNotFound)
}

// Plain HTTP names no terminal: refused unless the back office is
// configured for unbound (lab) ingestion.
func TestTerminalPlaintext(t *testing.T) {
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	srv := httptest.NewServer(l.svc.TerminalHandler(nil))
	defer srv.Close()
	code, body := post(t, srv.Client(), srv.URL, wire.Batch{Certificates: [][]byte{l.sam.Cert}, Records: l.records(1, "t-02"), SentAt: time.Now()})
	assert.Equal(t, http.StatusUnauthorized, code, "%s", body)
	_, err = l.svc.Terminal(context.Background(), "t-02")
	assert.ErrorIs(t, err, backoffice.ErrNotFound)

	lab, err := backoffice.New(st, backoffice.Config{CA: l.ca.Pool(), PlaintextTerminals: true})
	require.NoError(t, err)
	srv2 := httptest.NewServer(lab.TerminalHandler(nil))
	defer srv2.Close()
	code, body = post(t, srv2.Client(), srv2.URL, wire.Batch{Certificates: [][]byte{l.sam.Cert}, Records: l.records(1, "t-02"), SentAt: time.Now()})
	require.Equal(t, http.StatusOK, code, "%s", body)
	res, err := wire.DecodeBatchResult(body, 1)
	require.NoError(t, err)
	assert.Equal(t, wire.Accepted, res.Results[0].Status, "unbound: any terminal's records")
}

// samWith issues a stand-in SAM with serial samSerial whose certificate is
// SAMTemplate changed by mod.
func samWith(t *testing.T, ca *labpki.CA, mod func(*x509.Certificate)) *labpki.SAM {
	tmpl := labpki.SAMTemplate(samSerial)
	if mod != nil {
		mod(tmpl)
	}
	s, err := ca.NewSAMFrom(samSerial, tmpl)
	require.NoError(t, err)
	return s
}

// A SAM's signing certificate needs digitalSignature, CA:false, no
// extended key usage that limits it to TLS, and its serial in canonical
// form; one that breaks a rule is refused and its records are from an
// unknown SAM.
func TestSAMCertificateRules(t *testing.T) {
	ca, err := labpki.NewCA("test SAM CA")
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		mod  func(*x509.Certificate)
		ok   bool
	}{
		{"lab template", nil, true},
		{"extended key usage any", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} }, true},
		{"no basic constraints", func(c *x509.Certificate) { c.BasicConstraintsValid = false }, true},
		{"no key usage", func(c *x509.Certificate) { c.KeyUsage = 0 }, false},
		{"key encipherment only", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment }, false},
		{"serverAuth only", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }, false},
		{"clientAuth only", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} }, false},
		{"TLS server and client", func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		}, false},
		{"CA:true", func(c *x509.Certificate) {
			c.IsCA, c.KeyUsage = true, x509.KeyUsageDigitalSignature|x509.KeyUsageCertSign
		}, false},
		{"serial in lower case", func(c *x509.Certificate) { c.Subject.CommonName = "Terminal SAM 53414d0000000007" }, false},
		{"serial of 15 digits", func(c *x509.Certificate) { c.Subject.CommonName = "Terminal SAM 53414D000000007" }, false},
		{"serial with a sign", func(c *x509.Certificate) { c.Subject.CommonName = "Terminal SAM +53414D000000007" }, false},
		{"serial and more", func(c *x509.Certificate) { c.Subject.CommonName = "Terminal SAM 53414D0000000007 " }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
			require.NoError(t, err)
			defer st.Close()
			svc, err := backoffice.New(st, backoffice.Config{CA: ca.Pool()})
			require.NoError(t, err)
			sam := samWith(t, ca, c.mod)
			serial, _, err := svc.SAMCertificate(sam.Cert)
			l := &lab{t: t, prev: map[string][32]byte{}}
			res := ingestAs(t, svc, &wire.Batch{Certificates: [][]byte{sam.Cert}, Records: [][]byte{l.seal(baseRecord("t-01"), sam)}, SentAt: time.Now()}, "t-01")
			if c.ok {
				require.NoError(t, err)
				assert.Equal(t, samSerial, serial)
				assert.Equal(t, wire.Accepted, res[0].Status, "%+v", res[0])
				return
			}
			assert.ErrorIs(t, err, backoffice.ErrCertificate)
			assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonUnknownSAM}, res[0])
		})
	}
}

// reopenable runs f against each store kind with a function that opens
// the same store again (a back-office restart).
func reopenable(t *testing.T, f func(t *testing.T, open func() backoffice.Store)) {
	for _, kind := range []string{"bolt", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			var open func() backoffice.Store
			if kind == "bolt" {
				path := filepath.Join(t.TempDir(), "bo.db")
				open = func() backoffice.Store {
					st, err := backoffice.OpenBolt(path)
					require.NoError(t, err)
					return st
				}
			} else {
				dsn := pgtest.DB(t)
				open = func() backoffice.Store {
					st, err := backoffice.OpenPostgres(context.Background(), dsn)
					require.NoError(t, err)
					return st
				}
			}
			f(t, open)
		})
	}
}

// sealAt seals a record of terminal dated at.
func (l *lab) sealAt(terminal string, at time.Time, s record.Signer) []byte {
	r := baseRecord(terminal)
	r.Time = at
	return l.seal(r, s)
}

// Validity is judged at each record's signing time: records signed while
// the SAM certificate was valid and uploaded after it expired are taken,
// also by a restarted back office that has the certificate only from its
// store; records dated outside the validity (beyond the allowance) are
// refused with their own reasons.
func TestSAMCertificateValidityAtSigningTime(t *testing.T) {
	reopenable(t, func(t *testing.T, open func() backoffice.Store) {
		ca, err := labpki.NewCA("test SAM CA")
		require.NoError(t, err)
		t0 := time.Now().Truncate(time.Millisecond)
		from, until := t0.Add(-30*24*time.Hour), t0.Add(24*time.Hour)
		sam := samWith(t, ca, func(c *x509.Certificate) { c.NotBefore, c.NotAfter = from, until })
		now := t0.Add(60 * 24 * time.Hour) // a month after expiry
		cfg := backoffice.Config{CA: ca.Pool(), Now: func() time.Time { return now }}
		l := &lab{t: t, prev: map[string][32]byte{}}
		queued := [][]byte{l.sealAt("t-01", t0, sam), l.sealAt("t-01", t0.Add(time.Hour), sam)}

		st := open()
		svc, err := backoffice.New(st, cfg)
		require.NoError(t, err)
		res := ingestAs(t, svc, &wire.Batch{Certificates: [][]byte{sam.Cert}, Records: queued[:1], SentAt: now}, "t-01")
		assert.Equal(t, wire.Accepted, res[0].Status, "%+v", res[0])
		require.NoError(t, st.Close())

		// restart: the certificate comes back from the store
		st = open()
		defer st.Close()
		svc, err = backoffice.New(st, cfg)
		require.NoError(t, err)
		res = ingestAs(t, svc, &wire.Batch{Records: queued[1:], SentAt: now}, "t-01")
		assert.Equal(t, wire.Accepted, res[0].Status, "%+v", res[0])

		// dated after expiry beyond the allowance, or before validity
		late := l.sealAt("t-01", until.Add(backoffice.DefaultCertificateSkew+time.Minute), sam)
		early := l.sealAt("t-01", from.Add(-backoffice.DefaultCertificateSkew-time.Minute), sam)
		withinSkew := l.sealAt("t-01", until.Add(backoffice.DefaultCertificateSkew-time.Minute), sam)
		res = ingestAs(t, svc, &wire.Batch{Certificates: [][]byte{sam.Cert}, Records: [][]byte{late, early, withinSkew}, SentAt: now}, "t-01")
		assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonSAMExpired}, res[0])
		assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonSAMNotYetValid}, res[1])
		assert.Equal(t, wire.Accepted, res[2].Status, "%+v", res[2])
	})
}

// The first valid certificate stored for a SAM serial is pinned: a second
// one for the same serial (another key, the same CA), sent by another
// terminal, raises one alarm however often it comes, is not used, and
// the real SAM's next record still verifies, also after a restart.
func TestSAMCertificatePinned(t *testing.T) {
	reopenable(t, func(t *testing.T, open func() backoffice.Store) {
		ca, err := labpki.NewCA("test SAM CA")
		require.NoError(t, err)
		genuine, impostor := samWith(t, ca, nil), samWith(t, ca, nil)
		cfg := backoffice.Config{CA: ca.Pool()}
		l := &lab{t: t, prev: map[string][32]byte{}}
		st := open()
		svc, err := backoffice.New(st, cfg)
		require.NoError(t, err)
		res := ingestAs(t, svc, &wire.Batch{Certificates: [][]byte{genuine.Cert}, Records: [][]byte{l.seal(baseRecord("t-01"), genuine)}, SentAt: time.Now()}, "t-01")
		require.Equal(t, wire.Accepted, res[0].Status)

		impostor.SetCounter(100)
		for range 2 {
			res = ingestAs(t, svc, &wire.Batch{Certificates: [][]byte{impostor.Cert}, Records: [][]byte{l.seal(baseRecord("t-66"), impostor)}, SentAt: time.Now()}, "t-66")
			assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonSignature}, res[0], "verified with the pinned key")
		}
		// the real SAM's next record, in a batch without its certificate
		res = ingestAs(t, svc, &wire.Batch{Records: [][]byte{l.seal(baseRecord("t-01"), genuine)}, SentAt: time.Now()}, "t-01")
		assert.Equal(t, wire.Accepted, res[0].Status, "%+v", res[0])
		conflicts := func(st backoffice.Store) int {
			as, err := st.Alarms(context.Background(), backoffice.AlarmQuery{Limit: 100})
			require.NoError(t, err)
			n := 0
			for _, a := range as {
				if a.Kind == "sam-certificate-conflict" {
					n++
					assert.Equal(t, "53414d0000000007", a.SAMSerial)
					assert.Equal(t, "t-66", a.TerminalID)
				}
			}
			return n
		}
		assert.Equal(t, 1, conflicts(st))
		require.NoError(t, st.Close())

		// after a restart: still pinned, still one alarm
		st = open()
		defer st.Close()
		svc, err = backoffice.New(st, cfg)
		require.NoError(t, err)
		res = ingestAs(t, svc, &wire.Batch{Certificates: [][]byte{impostor.Cert}, Records: [][]byte{l.seal(baseRecord("t-66"), impostor)}, SentAt: time.Now()}, "t-66")
		assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonSignature}, res[0])
		res = ingestAs(t, svc, &wire.Batch{Records: [][]byte{l.seal(baseRecord("t-01"), genuine)}, SentAt: time.Now()}, "t-01")
		assert.Equal(t, wire.Accepted, res[0].Status, "%+v", res[0])
		assert.Equal(t, 1, conflicts(st))
	})
}
