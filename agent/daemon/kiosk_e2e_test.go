package daemon_test

import (
	"bytes"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/agent/daemon"
	"kpe-agent/internal/i18n"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/pcsctest"
	"kpe-agent/sync/record"
)

// kioskVerifyURL is the rig's kiosk.verify_url (no back office page runs
// there: the QR code only names it).
const kioskVerifyURL = "http://127.0.0.1:8080/"

// kioskBrowser is the kiosk page in its browser: it calls the API with
// the credential the page was handed, never with the token.
type kioskBrowser struct {
	r      *rig
	cookie string
}

// kioskPage loads the kiosk page and keeps the credential it hands out.
func (r *rig) kioskPage(t *testing.T) *kioskBrowser {
	t.Helper()
	resp, err := http.Get(r.base + api.PathKiosk)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.Contains(t, string(body), "Masukkan KPE Anda")
	for _, c := range resp.Cookies() {
		if c.Name == api.KioskCookie {
			assert.True(t, c.HttpOnly)
			assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
			return &kioskBrowser{r: r, cookie: c.Value}
		}
	}
	t.Fatal("the kiosk page set no credential")
	return nil
}

// call makes a request with the kiosk's credential; out (when not nil)
// gets a JSON answer. It returns the status, the error (if any), and the
// raw answer with its headers.
func (k *kioskBrowser) call(t *testing.T, method, path string, body, out any) (int, api.Error, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, k.r.base+path, rd)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: api.KioskCookie, Value: k.cookie})
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if method == http.MethodPost {
		req.Header.Set("Origin", k.r.base) // the browser sends the page's own origin
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "%s %s", method, path)
	if resp.StatusCode >= 400 {
		var eb api.ErrorBody
		require.NoError(t, json.Unmarshal(raw, &eb), "%s", raw)
		return resp.StatusCode, eb.Error, raw, resp.Header
	}
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out), "%s", raw)
	}
	return resp.StatusCode, api.Error{}, raw, resp.Header
}

// authenticate runs a kiosk session with the holder's finger ready.
func (k *kioskBrowser) authenticate(t *testing.T) api.AuthResult {
	t.Helper()
	require.NoError(t, k.r.lab.PlaceFinger(0, cardsim.FingerGenuine))
	var res api.AuthResult
	status, e, _, _ := k.call(t, "POST", api.PathAuth, map[string]any{"service": "kiosk", "wait_seconds": 10}, &res)
	require.Equal(t, http.StatusOK, status, "%+v", e)
	_, err := record.ParseCode(res.Code)
	require.NoError(t, err, res.Code)
	assert.Equal(t, api.ServiceKiosk, res.Service)
	assert.Equal(t, i18n.Indonesian.T("holder.recorded"), res.Message, "worded for the card holder")
	return res
}

// notAvailable says the view (or photo) answer is 404 not-available.
func notAvailable(t *testing.T, status int, e api.Error) {
	t.Helper()
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, daemon.CodeNotAvailable, e.Code)
}

// present inserts image in slot 0 for a sub-test, and takes it out at
// its end if the sub-test did not.
func (r *rig) present(t *testing.T, image string) {
	t.Helper()
	r.insert(0, image)
	t.Cleanup(func() {
		_ = r.lab.Remove(0) // taken out already, unless the sub-test failed
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
	})
}

func (r *rig) pull(t *testing.T) {
	t.Helper()
	require.NoError(t, r.lab.Remove(0))
	pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
	r.waitReader(t, pcsctest.Slot0, func(rd api.Reader) bool { return !rd.CardPresent && rd.State == api.StateIdle })
}

// The self-service kiosk through real pcscd and the card lab: the page's
// credential runs a kiosk session and reads the holder's own view until
// the card leaves, and nothing else.
func TestKioskEndToEnd(t *testing.T) {
	r := newRig(t)
	r.insert(1, "sam.json")
	r.waitHealth(samReady)
	k := r.kioskPage(t)
	reader := "?reader=" + url.QueryEscape(pcsctest.Slot0)

	t.Run("kpe", func(t *testing.T) {
		r.present(t, "kpe-budi.json")
		res := k.authenticate(t)
		last, err := r.ob.Last()
		require.NoError(t, err)
		assert.Equal(t, "kiosk", last.Service)
		assert.Equal(t, "kiosk", last.OperatorID, "recorded as the kiosk")

		var v api.KioskView
		status, e, _, hdr := k.call(t, "GET", api.PathKioskView+reader, nil, &v)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Equal(t, "same-origin", hdr.Get("Cross-Origin-Resource-Policy"))
		assert.Equal(t, "kpe", v.Kind)
		assert.True(t, v.Verified)
		require.NotNil(t, v.Identity)
		assert.Contains(t, v.Identity.Name, "Budi Santoso")
		assert.Equal(t, "197208172000031002", v.Identity.NIP)
		assert.Equal(t, "1972-08-17", v.Identity.BirthDate)
		assert.Equal(t, "Yogyakarta", v.Identity.BirthPlace)
		require.NotNil(t, v.Employment)
		assert.Equal(t, "IV/c", v.Employment.GolonganRuang)
		assert.Equal(t, "2020-04-01", v.Employment.TMTPangkat)
		assert.Len(t, v.Employment.WorkUnits, 3)
		require.Len(t, v.Family, 5)
		assert.Equal(t, "spouse", v.Family[0].Role)
		assert.True(t, v.Family[0].Tambahan, "Sri has a KPE Tambahan")
		require.NotNil(t, v.Benefits)
		assert.Equal(t, "0001234567890", v.Benefits.BPJS)
		assert.Equal(t, "****4321", v.Benefits.Account)
		assert.NotEmpty(t, v.Benefits.Taspen)
		assert.NotEmpty(t, v.Benefits.Taperum)
		assert.Nil(t, v.Tambahan)
		assert.True(t, v.Photo)
		// without a reader: the only card reader
		var again api.KioskView
		status, _, _, _ = k.call(t, "GET", api.PathKioskView, nil, &again)
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, v, again)

		// the photo, from memory: the card's own bytes
		want, err := os.ReadFile(filepath.Join(pcsctest.RepoPath(labDir), "cards", "kpe-budi-photo.jpg"))
		require.NoError(t, err)
		status, e, photo, hdr := k.call(t, "GET", api.PathKioskPhoto+reader, nil, nil)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Equal(t, "image/jpeg", hdr.Get("Content-Type"))
		assert.Equal(t, want, photo)
		// the card view still reports no photo bytes (privacy rules)
		var card map[string]any
		r.call("GET", api.PathCard+reader, nil, &card)
		assert.NotContains(t, card, "photo")

		// the receipt's QR code
		status, e, qr, hdr := k.call(t, "GET", api.PathKioskQR+"?code="+url.QueryEscape(res.Code), nil, nil)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Equal(t, "image/png", hdr.Get("Content-Type"))
		_, err = png.Decode(bytes.NewReader(qr))
		require.NoError(t, err)

		// another kiosk credential (the page loaded again, or a program
		// that loaded it) reads nothing of this session
		other := r.kioskPage(t)
		status, e, _, _ = other.call(t, "GET", api.PathKioskView+reader, nil, nil)
		notAvailable(t, status, e)
		status, e, _, _ = other.call(t, "GET", api.PathKioskPhoto+reader, nil, nil)
		notAvailable(t, status, e)
		// the token reads it
		status, _ = r.call("GET", api.PathKioskView+reader, nil, nil)
		assert.Equal(t, http.StatusOK, status)

		// the kiosk credential runs no other service and reads no other data
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"POST", api.PathAuth, map[string]any{"service": "askes", "operator": "clerk-01"}},
			{"POST", api.PathAuth, map[string]any{"service": "taspen"}},
			{"GET", api.PathCard + reader, nil},
			{"GET", api.PathPrefill + reader, nil},
			{"GET", api.PathQueue, nil},
			{"POST", api.PathSync, nil},
			{"GET", api.PathMetrics, nil},
		} {
			status, e, _, _ := k.call(t, c.method, c.path, c.body, nil)
			assert.Equal(t, http.StatusForbidden, status, "%s %s", c.method, c.path)
			assert.Equal(t, api.CodeForbiddenScope, e.Code, "%s %s", c.method, c.path)
			assert.Equal(t, i18n.Indonesian.T("holder.forbidden-scope"), e.Message)
		}
		after, err := r.ob.Last()
		require.NoError(t, err)
		assert.Equal(t, last.ID, after.ID, "nothing recorded by the refused requests")

		// the card leaves: the view and the photo are gone
		r.pull(t)
		status, e, _, _ = k.call(t, "GET", api.PathKioskView+reader, nil, nil)
		notAvailable(t, status, e)
		status, e, _, _ = k.call(t, "GET", api.PathKioskPhoto+reader, nil, nil)
		notAvailable(t, status, e)
		status, e = r.call("GET", api.PathKioskView+reader, nil, nil)
		assert.Equal(t, http.StatusNotFound, status, "%+v", e)

		// the same card again, not authenticated at the kiosk: no view
		r.insert(0, "kpe-budi.json")
		r.waitReader(t, pcsctest.Slot0, func(rd api.Reader) bool { return rd.State == api.StateAuthenticated })
		status, e, _, _ = k.call(t, "GET", api.PathKioskView+reader, nil, nil)
		notAvailable(t, status, e)
		r.pull(t)
	})

	// Another kiosk credential (another page load, or any local program
	// that loaded one) cannot cancel the kiosk's session or answer its
	// prompt; the token can.
	t.Run("only-its-own-workflow", func(t *testing.T) {
		require.NoError(t, r.lab.PlaceFinger(0, ""))
		type answer struct {
			status int
			e      api.Error
		}
		got := make(chan answer, 1)
		go func() {
			var a answer
			a.status, a.e, _, _ = k.call(t, "POST", api.PathAuth, map[string]any{"service": "kiosk", "wait_seconds": 30}, nil)
			got <- a
		}()
		r.waitReader(t, pcsctest.Slot0, func(rd api.Reader) bool { return rd.Busy })
		other := r.kioskPage(t)
		for _, body := range []any{map[string]any{"reader": pcsctest.Slot0}, map[string]any{"all": true}} {
			status, e, _, _ := other.call(t, "POST", api.PathCancel, body, nil)
			assert.Equal(t, http.StatusNotFound, status, "another kiosk credential's cancel %v", body)
			assert.Equal(t, api.CodeNotFound, e.Code)
		}
		status, e, _, _ := other.call(t, "POST", api.PathPrompt, api.PromptRequest{Reader: pcsctest.Slot0, ID: "0123456789abcdef0123456789abcdef", Answer: api.AnswerContinue}, nil)
		assert.Equal(t, http.StatusNotFound, status, "%+v", e)
		select {
		case a := <-got:
			t.Fatalf("the kiosk's session ended: %+v", a)
		case <-time.After(300 * time.Millisecond):
		}
		// its own page may cancel it
		status, e, _, _ = k.call(t, "POST", api.PathCancel, map[string]any{"reader": pcsctest.Slot0}, nil)
		require.Equal(t, http.StatusNoContent, status, "%+v", e)
		a := <-got
		assert.Equal(t, daemon.CodeCancelled, a.e.Code)
	})

	t.Run("kpe-tambahan", func(t *testing.T) {
		r.present(t, "kpe-tambahan-sri.json")
		k.authenticate(t)
		var v api.KioskView
		status, e, _, _ := k.call(t, "GET", api.PathKioskView+reader, nil, &v)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Equal(t, "kpe-tambahan", v.Kind)
		assert.True(t, v.Verified)
		require.NotNil(t, v.Tambahan)
		assert.Equal(t, "197208172000031002", v.Tambahan.NIP, "the civil servant's NIP")
		assert.Equal(t, "spouse", v.Tambahan.Relation)
		require.NotNil(t, v.Identity)
		assert.Contains(t, v.Identity.Name, "Sri")
		assert.True(t, v.Photo)
		r.pull(t)
		status, e, _, _ = k.call(t, "GET", api.PathKioskView+reader, nil, nil)
		notAvailable(t, status, e)
	})

	t.Run("ktpel", func(t *testing.T) {
		r.present(t, "ktpel-siti.json")
		k.authenticate(t)
		status, e, raw, _ := k.call(t, "GET", api.PathKioskView+reader, nil, nil)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.JSONEq(t, `{"kind":"ktpel","verified":true}`, string(raw), "identity confirmation only")
		assert.NotContains(t, strings.ToLower(string(raw)), "siti")
		status, e, _, _ = k.call(t, "GET", api.PathKioskPhoto+reader, nil, nil)
		notAvailable(t, status, e)
		r.pull(t)
		status, e, _, _ = k.call(t, "GET", api.PathKioskView+reader, nil, nil)
		notAvailable(t, status, e)
	})
}
