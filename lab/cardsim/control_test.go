package cardsim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newControlServer(t *testing.T) (*Lab, *ControlClient, *fakeVPCD) {
	t.Helper()
	v := listenVPCD(t, 0)
	abs, err := filepath.Abs(cardsDir)
	noErr(t, err)
	lab, err := NewLab(LabConfig{BasePort: v.port, Slots: 1, SwapPause: 20 * time.Millisecond, CardDir: abs, Logger: testLogger(t)})
	noErr(t, err)
	srv := httptest.NewServer(lab.Handler())
	t.Cleanup(func() {
		srv.Close()
		lab.Close()
	})
	return lab, NewControlClient(strings.TrimPrefix(srv.URL, "http://")), v
}

func controlStatus(t *testing.T, err error) int {
	t.Helper()
	var ce *ControlError
	if !errors.As(err, &ce) {
		t.Fatalf("expected a ControlError, got %v", err)
	}
	return ce.StatusCode
}

func TestControlAPI(t *testing.T) {
	_, cl, v := newControlServer(t)
	ctx := context.Background()

	slots, err := cl.Slots(ctx)
	noErr(t, err)
	equal(t, len(slots), 1, "slots")
	equal(t, slots[0].Inserted, false, "empty")

	st, err := cl.Insert(ctx, 0, "generic-fs.json") // relative to CardDir
	noErr(t, err)
	equal(t, st.Card, "generic-fs", "inserted card")
	equal(t, st.ATR, "3B888131FE4580739401A082900057", "ATR")
	conn := v.mustAccept()
	conn.atr()

	_, err = cl.Insert(ctx, 0, "generic-fs.json")
	equal(t, controlStatus(t, err), http.StatusConflict, "occupied")
	_, err = cl.Insert(ctx, 1, "generic-fs.json")
	equal(t, controlStatus(t, err), http.StatusNotFound, "bad slot")
	_, err = cl.SetFault(ctx, 7, Fault{})
	equal(t, controlStatus(t, err), http.StatusNotFound, "bad slot fault")

	st, err = cl.SetFault(ctx, 0, Fault{MalformedAtAPDU: 1, Delay: 10 * time.Millisecond})
	noErr(t, err)
	if st.Fault == nil || st.Fault.MalformedAtAPDU != 1 || st.Fault.Delay != 10*time.Millisecond {
		t.Fatalf("fault in status: %+v", st.Fault)
	}
	if got := conn.apdu(selAIDNo); len(got) != 1 {
		t.Fatalf("malformed: %X", got)
	}
	st, err = cl.ClearFault(ctx, 0)
	noErr(t, err)
	if st.Fault != nil {
		t.Fatal("fault not cleared")
	}

	abs, _ := filepath.Abs(cardsDir + "generic-fs-t0.json")
	st, err = cl.Swap(ctx, 0, abs)
	noErr(t, err)
	equal(t, st.Card, "generic-fs-t0", "swapped")
	conn.expectClosed()
	v.mustAccept()

	st, err = cl.Remove(ctx, 0)
	noErr(t, err)
	equal(t, st.Inserted, false, "removed")
	_, err = cl.Remove(ctx, 0)
	equal(t, controlStatus(t, err), http.StatusConflict, "empty")

	_, err = cl.Insert(ctx, 0, "no-such-card.json")
	equal(t, controlStatus(t, err), http.StatusBadRequest, "missing card file")
	_, err = cl.Insert(ctx, 0, "")
	equal(t, controlStatus(t, err), http.StatusBadRequest, "empty card path")
	_, err = cl.Swap(ctx, 0, "generic-fs-300.bin")
	equal(t, controlStatus(t, err), http.StatusBadRequest, "not an image")
}

func TestControlHTTPErrors(t *testing.T) {
	_, cl, _ := newControlServer(t)
	for _, tc := range []struct {
		method, path, body string
		code               int
		contains           string
	}{
		{"POST", "/v1/slots", "", 405, "not allowed"},
		{"GET", "/v1/slots/0/insert", "", 405, "not allowed"},
		{"POST", "/v1/slots/0/fault", "", 405, "not allowed"},
		{"POST", "/v1/slots/x/remove", "", 404, "no such slot"},
		{"GET", "/v2/nothing", "", 404, "no such endpoint"},
		{"POST", "/v1/slots/0/insert", `{"card":`, 400, "bad JSON"},
		{"POST", "/v1/slots/0/insert", `{"card":"a","x":1}`, 400, "unknown field"},
		{"POST", "/v1/slots/0/insert", `{"card":"generic-fs.json"} {}`, 400, "trailing data"},
		{"PUT", "/v1/slots/0/fault", `{"delay":"soon"}`, 400, "delay"},
		{"PUT", "/v1/slots/0/fault", `{"delay_count":-2}`, 400, "negative"},
		{"PUT", "/v1/slots/0/fault", `{"remove_at_apdu":2,"reinsert_after":"1s"}`, 200, `"reinsert_after":"1s"`},
		{"PUT", "/v1/slots/0/fault", `{"answer_lost_at_apdu":3}`, 200, `"answer_lost_at_apdu":3`},
		{"PUT", "/v1/slots/0/fault", `{"answer_lost_at_apdu":-3}`, 400, "negative"},
	} {
		req, err := http.NewRequest(tc.method, cl.BaseURL+tc.path, strings.NewReader(tc.body))
		noErr(t, err)
		resp, err := http.DefaultClient.Do(req)
		noErr(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.contains) {
			t.Fatalf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: content type %q", tc.method, tc.path, ct)
		}
	}
	// A dead server gives a transport error, not a ControlError.
	dead := NewControlClient("http://127.0.0.1:1/")
	if _, err := dead.Slots(context.Background()); err == nil {
		t.Fatal("no error from a dead server")
	} else {
		var ce *ControlError
		if errors.As(err, &ce) {
			t.Fatalf("unexpected ControlError %v", err)
		}
	}
}
