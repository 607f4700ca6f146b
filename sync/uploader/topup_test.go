package uploader_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/kpedata"
	"kpe-agent/internal/sod"
	"kpe-agent/internal/topup"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/uploader"
	"kpe-agent/sync/wire"
)

// keyIssuer is the back office's issuer signer over an in-memory key,
// the document signer of its own test CA.
type keyIssuer struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	ca   *x509.Certificate
}

func (i *keyIssuer) Public() crypto.PublicKey { return i.key.Public() }
func (i *keyIssuer) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return i.key.Sign(r, d, o)
}
func (i *keyIssuer) Certificate() *x509.Certificate { return i.cert }
func (i *keyIssuer) Close() error                   { return nil }
func (i *keyIssuer) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(i.ca)
	return p
}

func newKeyIssuer(t *testing.T) *keyIssuer {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "BKN test CA"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "BKN test document signer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &keyIssuer{key: key, cert: cert, ca: ca}
}

var topUpSerial = [8]byte{0x4B, 0x50, 0x45, 0, 0, 0, 0, 0x11}

// cardData is a card's EF.SOD, signed by iss over its groups, and its DG1
// with nip.
func cardData(t *testing.T, iss *keyIssuer, nip string) (efSOD, dg1 []byte) {
	t.Helper()
	dg1 = kpedata.Identity{NIP: nip, Name: "Drs. Budi Santoso", BirthPlace: "Bandung", BirthDate: "19660801", Gender: "L"}.Encode()
	efSOD, err := sod.Sign(map[int][]byte{1: dg1, 2: kpedata.Employment{Status: "PNS"}.Encode()}, iss.key, iss.cert)
	require.NoError(t, err)
	return efSOD, dg1
}

// Against the back office over mutual TLS: nothing staged is reason none;
// a staged top-up comes back as one authorisation that verifies for the
// card at its PTC; a back office without an issuer is reason
// unavailable.
func TestTopUpOfferBackOffice(t *testing.T) {
	r := newRig(t, false)
	iss := newKeyIssuer(t)
	serve := func(cfg backoffice.Config) *httptest.Server {
		cfg.CA = r.samCA.Pool()
		svc, err := backoffice.New(r.store, cfg)
		require.NoError(t, err)
		srv := httptest.NewUnstartedServer(svc.TerminalHandler(nil))
		srvCert, err := r.tlsCA.Server()
		require.NoError(t, err)
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: r.tlsCA.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		r.svc = svc
		return srv
	}
	srv := serve(backoffice.Config{Issuer: iss, IssuerRoots: iss.pool()})
	up, err := uploader.New(nil, uploader.Config{URL: srv.URL, TLS: r.client})
	require.NoError(t, err)
	ctx := context.Background()
	q := wire.TopUpQuery{Serial: hex.EncodeToString(topUpSerial[:]), NIP: "196608011988031001", PTC: 4, Balance: 10_000, MaxBalance: 20_000_000}
	q.SOD, q.DG1 = cardData(t, iss, q.NIP)

	a, err := up.TopUpOffer(ctx, q, 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, uploader.TopUpAnswer{Reason: uploader.NoOfferNone}, a)

	staged, err := r.svc.StageTopUp(ctx, backoffice.TopUpRequest{NIP: q.NIP, Amount: 250_000, Ref: "TRF-9"}, "cli")
	require.NoError(t, err)
	a, err = up.TopUpOffer(ctx, q, 5*time.Second)
	require.NoError(t, err)
	require.Len(t, a.Authorisations, 1)
	assert.Empty(t, a.Reason)
	au := a.Authorisations[0]
	assert.Equal(t, staged.ID, au.ID)
	assert.Equal(t, uint32(250_000), au.Amount)
	require.NoError(t, topup.Verify(&au, topUpSerial, 4, iss.pool(), time.Now()))
	assert.ErrorIs(t, topup.Verify(&au, topUpSerial, 5, iss.pool(), time.Now()), topup.ErrReplayed)

	// another holder's card, or one of an issuer the back office does not
	// trust, asking for this NIP: ErrBadSOD
	other := q
	other.SOD, other.DG1 = cardData(t, iss, "199001012015011001")
	_, err = up.TopUpOffer(ctx, other, 5*time.Second)
	assert.ErrorIs(t, err, uploader.ErrBadSOD)
	rogue := q
	rogue.SOD, rogue.DG1 = cardData(t, newKeyIssuer(t), q.NIP)
	_, err = up.TopUpOffer(ctx, rogue, 5*time.Second)
	assert.ErrorIs(t, err, uploader.ErrBadSOD)

	srv = serve(backoffice.Config{})
	up, err = uploader.New(nil, uploader.Config{URL: srv.URL, TLS: r.client})
	require.NoError(t, err)
	a, err = up.TopUpOffer(ctx, q, 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, uploader.TopUpAnswer{Reason: uploader.NoOfferUnavailable}, a)
}

// Each answer of a back office mapped to authorisations, a quiet reason,
// or an error: the query as sent; strict JSON; timeout and offline.
func TestTopUpOfferAnswers(t *testing.T) {
	iss := newKeyIssuer(t)
	au := topup.Authorisation{ID: [16]byte{7}, Serial: topUpSerial, PTC: 3, Amount: 1000, NotAfter: time.Now().Add(time.Minute)}
	require.NoError(t, au.Sign(iss, iss.cert))
	offers, err := json.Marshal(wire.TopUpOffers{Authorisations: []topup.Authorisation{au}})
	require.NoError(t, err)
	var answer func(w http.ResponseWriter)
	var got wire.TopUpQuery
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, wire.PathTopUpOffer, r.URL.Path)
		b, _ := io.ReadAll(r.Body)
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		assert.NoError(t, dec.Decode(&got))
		answer(w)
	}))
	defer srv.Close()
	up, err := uploader.New(nil, uploader.Config{URL: srv.URL + "/"})
	require.NoError(t, err)
	q := wire.TopUpQuery{Serial: hex.EncodeToString(topUpSerial[:]), NIP: "196608011988031001", PTC: 3, Balance: 1, MaxBalance: 2_000_000}
	q.SOD, q.DG1 = cardData(t, iss, q.NIP)
	ask := func() (uploader.TopUpAnswer, error) { return up.TopUpOffer(context.Background(), q, time.Second) }
	problem := func(status int, code string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(wire.Problem{Error: code})
		}
	}

	answer = func(w http.ResponseWriter) { w.Write(offers) }
	a, err := ask()
	require.NoError(t, err)
	require.Len(t, a.Authorisations, 1)
	assert.Equal(t, au.ID, a.Authorisations[0].ID)
	require.NoError(t, topup.Verify(&a.Authorisations[0], topUpSerial, 3, iss.pool(), time.Now()))
	assert.Equal(t, q, got, "the query as sent, EF.SOD and DG1 with it")

	answer = func(w http.ResponseWriter) { w.Write([]byte(`{"authorisations":[]}`)) }
	a, err = ask()
	require.NoError(t, err)
	assert.Equal(t, uploader.TopUpAnswer{Reason: uploader.NoOfferNone}, a)

	for code, reason := range map[int]string{http.StatusServiceUnavailable: uploader.NoOfferUnavailable, http.StatusNotFound: uploader.NoOfferUnavailable} {
		answer = problem(code, wire.ProblemTopUpUnavailable)
		a, err = ask()
		require.NoError(t, err)
		assert.Equal(t, reason, a.Reason)
	}
	answer = problem(http.StatusServiceUnavailable, "unavailable") // busy or store down
	a, err = ask()
	require.NoError(t, err)
	assert.Equal(t, uploader.NoOfferOffline, a.Reason)
	answer = problem(http.StatusTooManyRequests, "busy")
	a, err = ask()
	require.NoError(t, err)
	assert.Equal(t, uploader.NoOfferOffline, a.Reason)

	answer = problem(http.StatusForbidden, "forbidden")
	_, err = ask()
	assert.ErrorIs(t, err, uploader.ErrRefused)
	answer = problem(http.StatusBadRequest, "bad-query")
	_, err = ask()
	assert.ErrorIs(t, err, uploader.ErrRefused)
	answer = problem(http.StatusUnprocessableEntity, wire.ProblemBadSOD)
	_, err = ask()
	assert.ErrorIs(t, err, uploader.ErrBadSOD, "the card's data refused")
	answer = problem(http.StatusUnprocessableEntity, "other")
	_, err = ask()
	assert.ErrorIs(t, err, uploader.ErrRefused)

	// strict: unknown fields at either level, null, too large
	for _, body := range []string{
		`{"authorisations":[],"extra":1}`,
		`{"authorisations":[{"extra":1}]}`,
		`{"authorisations":null}`,
		`{}`,
		strings.Repeat(" ", wire.MaxTopUpOffersBytes+1),
	} {
		answer = func(w http.ResponseWriter) { w.Write([]byte(body)) }
		_, err = ask()
		assert.ErrorIs(t, err, topup.ErrFormat, "%.60s", body)
	}

	release := make(chan struct{})
	answer = func(w http.ResponseWriter) { <-release }
	t0 := time.Now()
	a, err = up.TopUpOffer(context.Background(), q, 100*time.Millisecond)
	close(release)
	require.NoError(t, err)
	assert.Equal(t, uploader.NoOfferTimeout, a.Reason)
	assert.Less(t, time.Since(t0), 2*time.Second)

	srv.Close()
	a, err = ask()
	require.NoError(t, err)
	assert.Equal(t, uploader.NoOfferOffline, a.Reason)
}
