package uploader_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/renewal"
	"kpe-agent/sync/uploader"
	"kpe-agent/sync/wire"
)

func sampleOffer() *renewal.Offer {
	return &renewal.Offer{UpdateID: [16]byte{1, 2}, Serial: [8]byte{0xA1, 0, 0, 0, 0, 0, 0, 7}, NIP: "196608011988031001", Sequence: 2,
		BaseSOD: [32]byte{3}, NewSOD: [32]byte{4}, NotAfter: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC),
		Groups: map[int][]byte{2: {0x62, 0}}, SOD: []byte{0x77, 0}, Signature: []byte{0x30, 0}}
}

// The offer request: the query as sent, and each answer of the back
// office mapped to an offer, a quiet reason, or an error.
func TestRenewalOffer(t *testing.T) {
	offerJSON, err := json.Marshal(sampleOffer())
	require.NoError(t, err)
	var answer func(w http.ResponseWriter)
	var got wire.RenewalQuery
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, wire.PathRenewalOffer, r.URL.Path)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		b, _ := io.ReadAll(r.Body)
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		assert.NoError(t, dec.Decode(&got))
		answer(w)
	}))
	defer srv.Close()
	up, err := uploader.New(nil, uploader.Config{URL: srv.URL + "/"})
	require.NoError(t, err)
	q := wire.RenewalQuery{CardSerial: "a100000000000007", NIP: "196608011988031001", SOD: []byte{1, 2, 3}, Sequence: 1}
	ask := func() (uploader.OfferAnswer, error) {
		return up.RenewalOffer(context.Background(), q, time.Second)
	}
	problem := func(status int, code string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(wire.Problem{Error: code})
		}
	}

	answer = func(w http.ResponseWriter) { w.Write(offerJSON) }
	a, err := ask()
	require.NoError(t, err)
	require.NotNil(t, a.Offer)
	assert.Equal(t, sampleOffer().UpdateID, a.Offer.UpdateID)
	assert.Equal(t, q, got, "the query as sent")

	answer = func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }
	a, err = ask()
	require.NoError(t, err)
	assert.Equal(t, uploader.OfferAnswer{Reason: uploader.NoOfferNone}, a)

	answer = problem(http.StatusServiceUnavailable, wire.ProblemRenewalUnavailable)
	a, err = ask()
	require.NoError(t, err)
	assert.Equal(t, uploader.NoOfferUnavailable, a.Reason)

	answer = problem(http.StatusNotFound, "not-found") // a back office from before renewals
	a, err = ask()
	require.NoError(t, err)
	assert.Equal(t, uploader.NoOfferUnavailable, a.Reason)

	answer = problem(http.StatusBadGateway, "")
	a, err = ask()
	require.NoError(t, err)
	assert.Equal(t, uploader.NoOfferOffline, a.Reason)

	answer = problem(http.StatusUnprocessableEntity, wire.ProblemBadSOD)
	_, err = ask()
	assert.ErrorIs(t, err, uploader.ErrBadSOD)

	answer = problem(http.StatusForbidden, "forbidden")
	_, err = ask()
	assert.ErrorIs(t, err, uploader.ErrRefused)

	// strict: an unknown field, and a body beyond the limit
	answer = func(w http.ResponseWriter) { w.Write([]byte(`{"extra":1,` + string(offerJSON[1:]))) }
	_, err = ask()
	assert.ErrorIs(t, err, renewal.ErrFormat)
	answer = func(w http.ResponseWriter) { w.Write([]byte(strings.Repeat(" ", renewal.MaxOfferBytes+1))) }
	_, err = ask()
	assert.ErrorIs(t, err, renewal.ErrFormat)

	// a back office that does not answer in time
	release := make(chan struct{})
	answer = func(w http.ResponseWriter) { <-release }
	t0 := time.Now()
	a, err = up.RenewalOffer(context.Background(), q, 100*time.Millisecond)
	close(release)
	require.NoError(t, err)
	assert.Equal(t, uploader.NoOfferTimeout, a.Reason)
	assert.Less(t, time.Since(t0), 2*time.Second)

	// and one that is not there
	srv.Close()
	a, err = ask()
	require.NoError(t, err)
	assert.Equal(t, uploader.NoOfferOffline, a.Reason)
}
