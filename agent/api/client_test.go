package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"
)

const ctToken = "s3cret-token"

// fakeAgent serves canned answers; it checks the bearer token on every
// path but health, like the agent.
func ctFakeAgent(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != PathHealth && r.Header.Get("Authorization") != "Bearer "+ctToken {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"code":"unauthorized","message":"bad token","retriable":false}}`)
			return
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL, ctToken)
	require.NoError(t, err)
	return c
}

func ctWriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func ctCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClientCalls(t *testing.T) {
	var gotAuth AuthRequest
	var gotCancel CancelRequest
	c := ctFakeAgent(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "GET " + PathHealth:
			ctWriteJSON(w, 200, Health{Status: "ok", Version: "1.0", PCSC: "ok", Readers: 2,
				SAM: &SAM{Present: true, State: "active", Serial: "53414d0000000001", Counter: 7}})
		case "GET " + PathReaders:
			ctWriteJSON(w, 200, []Reader{{Name: "R0", Role: "card", State: StateIdle}, {Name: "R1", Role: "sam", CardPresent: true, Kind: "sam", State: StateIdle}})
		case "GET " + PathCard:
			require.Equal(t, "R0", r.URL.Query().Get("reader"))
			_, _ = io.WriteString(w, `{"kind":"kpe","verdict":"genuine"}`)
		case "GET " + PathPrefill:
			require.Equal(t, "", r.URL.Query().Get("reader"))
			ctWriteJSON(w, 200, Prefill{CardKind: "kpe", Verified: true})
		case "POST " + PathAuth:
			require.Equal(t, "application/json", r.Header.Get("Content-Type"))
			require.NoError(t, json.NewDecoder(r.Body).Decode(&gotAuth))
			ctWriteJSON(w, 200, AuthResult{Code: "ABCD-EFGH-JKLM", Service: gotAuth.Service, Reader: "R0", Counter: 8})
		case "POST " + PathCancel:
			require.NoError(t, json.NewDecoder(r.Body).Decode(&gotCancel))
			w.WriteHeader(http.StatusNoContent)
		case "GET " + PathQueue:
			ctWriteJSON(w, 200, QueueStatus{Pending: 3, Used: 0.25, Sync: SyncStatus{Enabled: true, URL: "https://bo"}})
		case "POST " + PathSync:
			ctWriteJSON(w, 200, SyncResult{Sent: 3, Accepted: 3})
		case "POST " + PathLoketLogin:
			ctWriteJSON(w, 200, LoketLogin{URL: "http://127.0.0.1:7531/loket/?login=" + strings.Repeat("ab", 32), ExpiresSeconds: 60})
		case "GET " + PathCodesToday:
			ctWriteJSON(w, 200, TodayCodes{Date: "2026-03-02", Codes: []TodayCode{{Code: "ABCD-EFGH-JKLM-NPQR", Service: "askes", State: CodeSynced}}})
		default:
			http.NotFound(w, r)
		}
	})
	ctx := ctCtx(t)
	h, err := c.Health(ctx)
	require.NoError(t, err)
	require.Equal(t, "active", h.SAM.State)
	require.Equal(t, uint32(7), h.SAM.Counter)

	rs, err := c.Readers(ctx)
	require.NoError(t, err)
	require.Len(t, rs, 2)
	require.Equal(t, "sam", rs[1].Role)

	raw, err := c.Card(ctx, "R0")
	require.NoError(t, err)
	require.JSONEq(t, `{"kind":"kpe","verdict":"genuine"}`, string(raw))

	p, err := c.Prefill(ctx, "")
	require.NoError(t, err)
	require.True(t, p.Verified)

	res, err := c.Auth(ctx, AuthRequest{Service: "taspen", Operator: "op-1", WaitSeconds: 30, ConfirmLastTry: true})
	require.NoError(t, err)
	require.Equal(t, "ABCD-EFGH-JKLM", res.Code)
	require.Equal(t, AuthRequest{Service: "taspen", Operator: "op-1", WaitSeconds: 30, ConfirmLastTry: true}, gotAuth)

	require.NoError(t, c.Cancel(ctx, "R0"))
	require.Equal(t, CancelRequest{Reader: "R0"}, gotCancel)
	gotCancel = CancelRequest{}
	require.NoError(t, c.CancelAll(ctx))
	require.Equal(t, CancelRequest{All: true}, gotCancel)
	// an empty reader is not "every reader": refused before sending
	gotCancel = CancelRequest{Reader: "untouched"}
	require.ErrorIs(t, c.Cancel(ctx, ""), ErrNoReader)
	require.Equal(t, CancelRequest{Reader: "untouched"}, gotCancel)

	q, err := c.Queue(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, q.Pending)
	require.True(t, q.Sync.Enabled)

	sr, err := c.Sync(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, sr.Accepted)

	l, err := c.LoketLogin(ctx)
	require.NoError(t, err)
	require.Equal(t, 60, l.ExpiresSeconds)
	require.Equal(t, "http://127.0.0.1:7531/loket/?login="+strings.Repeat("ab", 32), l.URL)

	tc, err := c.CodesToday(ctx)
	require.NoError(t, err)
	require.Equal(t, "2026-03-02", tc.Date)
	require.Equal(t, CodeSynced, tc.Codes[0].State)
}

func TestClientErrors(t *testing.T) {
	c := ctFakeAgent(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case PathAuth:
			ctWriteJSON(w, http.StatusConflict, ErrorBody{Error: Error{Code: "reader-busy", Message: "Pembaca sedang melayani transaksi lain.", Retriable: true}})
		case PathCancel:
			ctWriteJSON(w, http.StatusNotFound, ErrorBody{Error: Error{Code: "not-running", Message: "nothing runs"}})
		case PathQueue:
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<html>proxy error</html>")
		case PathReaders:
			_, _ = io.WriteString(w, `[{"name":`)
		}
	})
	ctx := ctCtx(t)
	_, err := c.Auth(ctx, AuthRequest{Service: "askes", Operator: "x"})
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusConflict, ae.Status)
	require.Equal(t, "reader-busy", ae.Err.Code)
	require.True(t, ae.Err.Retriable)

	err = c.Cancel(ctx, "R0")
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusNotFound, ae.Status)

	_, err = c.Queue(ctx)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "http-502", ae.Err.Code)
	require.Contains(t, ae.Err.Message, "proxy error")

	_, err = c.Readers(ctx)
	require.ErrorContains(t, err, "malformed answer")
	require.False(t, errors.As(err, &ae))

	// A wrong token: 401 with the agent's body.
	bad, err := NewClient(c.URL(), "wrong")
	require.NoError(t, err)
	_, err = bad.Queue(ctx)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusUnauthorized, ae.Status)
}

func TestClientNotRunning(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now

	c, err := NewClient(addr, "")
	require.NoError(t, err)
	require.Equal(t, "http://"+addr, c.URL())
	_, err = c.Health(ctCtx(t))
	require.ErrorIs(t, err, ErrNotRunning)
	var nr *NotRunningError
	require.ErrorAs(t, err, &nr)
	require.Equal(t, "http://"+addr, nr.URL)
	var op *net.OpError
	require.ErrorAs(t, err, &op)

	_, err = c.OpenEvents(ctCtx(t))
	require.ErrorIs(t, err, ErrNotRunning)
	evs, errc := c.Events(ctCtx(t))
	_, open := <-evs
	require.False(t, open)
	require.ErrorIs(t, <-errc, ErrNotRunning)
}

func TestClientURL(t *testing.T) {
	for _, bad := range []string{"ftp://x", "http://", "::"} {
		_, err := NewClient(bad, "")
		require.Error(t, err, bad)
	}
	c, err := NewClient("http://127.0.0.1:7531/", "")
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:7531", c.URL())
	require.False(t, c.HasToken())
}

// An agent URL with user:password@ (KPE_AGENT_URL=http://u:pw@...) is
// refused, and no error repeats the password.
func TestClientURLNoUserinfo(t *testing.T) {
	for _, bad := range []string{"http://u:S3cretPw@127.0.0.1:7531", "https://S3cretPw@127.0.0.1:7531",
		"u:S3cretPw@127.0.0.1:7531", "http://u:S3cretPw@127.0.0.1:7531/%zz", "http://u:S3cretPw@[::1"} {
		_, err := NewClient(bad, "")
		require.Error(t, err, bad)
		require.NotContains(t, err.Error(), "S3cretPw", bad)
	}
}

// A call on an agent that does not answer is bounded by the client's
// timeout, not left hanging.
func TestClientTimeout(t *testing.T) {
	block := make(chan struct{})
	c := ctFakeAgent(t, func(w http.ResponseWriter, r *http.Request) { <-block })
	defer close(block)
	c2, err := NewClient(c.URL(), ctToken, WithTimeout(200*time.Millisecond))
	require.NoError(t, err)
	start := time.Now()
	_, err = c2.Queue(context.Background())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 3*time.Second)

	// OpenEvents: the headers must come within the timeout too.
	_, err = c2.OpenEvents(context.Background())
	require.ErrorContains(t, err, "no answer within")
}

const ctSampleStream = ": connected\n\n" +
	"id: 1\nevent: reader\ndata: {\"seq\":1,\"time\":\"2026-11-23T08:00:00Z\",\"type\":\"reader\",\"reader\":\"R0\"}\n\n" +
	": keep-alive\n\n" +
	// multi-line data, CRLF ends, no seq in the JSON: taken from id.
	"id: 2\r\nevent: session\r\ndata: {\"type\":\"session\",\r\ndata:  \"reader\":\"R0\",\"state\":\"recorded\",\r\ndata: \"code\":\"ABCD-EFGH-JKLM\"}\r\n\r\n" +
	// CR-only ends; retry ignored; no event: field.
	"retry: 3000\rid: 3\rdata: {\"seq\":3,\"type\":\"sync\"}\r\r" +
	// a block without data is dropped
	"event: sam\n\n"

func TestSSEReader(t *testing.T) {
	for name, r := range map[string]io.Reader{
		"whole":    strings.NewReader(ctSampleStream),
		"one-byte": iotest.OneByteReader(strings.NewReader(ctSampleStream)),
	} {
		t.Run(name, func(t *testing.T) {
			p := NewSSEReader(r)
			var got []Event
			for {
				ev, err := p.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				got = append(got, ev)
			}
			require.Len(t, got, 3)
			require.Equal(t, Event{Seq: 1, Time: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), Type: EventReader, Reader: "R0"}, got[0])
			require.Equal(t, Event{Seq: 2, Type: EventSession, Reader: "R0", State: StateRecorded, Code: "ABCD-EFGH-JKLM"}, got[1])
			require.Equal(t, Event{Seq: 3, Type: EventSync}, got[2])
		})
	}
}

func TestSSEReaderGarbage(t *testing.T) {
	for name, in := range map[string]string{
		"not json":       "data: hello\n\n",
		"two values":     "data: {} {}\n\n",
		"stray brace":    "data: {\"seq\":1} }\n\n",
		"stray bracket":  "data: {\"seq\":1}]\n\n",
		"bad id":         "id: x1\ndata: {\"type\":\"sam\"}\n\n",
		"id vs seq":      "id: 4\ndata: {\"seq\":5,\"type\":\"sam\"}\n\n",
		"type mismatch":  "event: sam\ndata: {\"type\":\"sync\"}\n\n",
		"unknown field":  "bogus: 1\ndata: {}\n\n",
		"long line":      "data: " + strings.Repeat("x", sseMaxLine+10) + "\n\n",
		"binary":         "\x00\x01\x02\n\n",
		"not utf-8":      "event: \xedon\ndata: {}\n\n",
		"not utf-8 data": "data: {\"type\":\"\xff\"}\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := NewSSEReader(strings.NewReader(in))
			_, err := p.Next()
			require.ErrorIs(t, err, ErrBadStream)
			var se *StreamError
			require.ErrorAs(t, err, &se)
			// The reader stays failed.
			_, err2 := p.Next()
			require.Equal(t, err, err2)
		})
	}
	// A cut stream ends without dispatching the half event.
	p := NewSSEReader(strings.NewReader("data: {\"type\":\"sam\"}\n"))
	_, err := p.Next()
	require.ErrorIs(t, err, io.EOF)
}

func TestClientEvents(t *testing.T) {
	sent := make(chan struct{})
	c := ctFakeAgent(t, func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, PathEvents, r.URL.Path)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		f := w.(http.Flusher)
		f.Flush()
		<-sent // the client is connected before the first event
		_, _ = io.WriteString(w, ": hi\n\nid: 1\nevent: sam\ndata: {\"type\":\"sam\",\"seq\":1}\n\n")
		f.Flush()
		_, _ = io.WriteString(w, "id: 2\nevent: session\ndata: {\"type\":\"session\",\"seq\":2,\"state\":\"detected\"}\n\n")
		f.Flush()
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(ctCtx(t))
	s, err := c.OpenEvents(ctx)
	require.NoError(t, err)
	close(sent)
	ev, err := s.Next()
	require.NoError(t, err)
	require.Equal(t, EventSAM, ev.Type)
	ev, err = s.Next()
	require.NoError(t, err)
	require.Equal(t, StateDetected, ev.State)
	require.NoError(t, s.Close())
	cancel()

	// Events: the channel form ends with a nil error when ctx ends.
	ctx2, cancel2 := context.WithCancel(ctCtx(t))
	evs, errc := c.Events(ctx2)
	require.Equal(t, uint64(1), (<-evs).Seq)
	require.Equal(t, uint64(2), (<-evs).Seq)
	cancel2()
	for range evs {
	}
	require.NoError(t, <-errc)
}

func TestClientEventsRefused(t *testing.T) {
	c := ctFakeAgent(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "not a stream")
	})
	_, err := c.OpenEvents(ctCtx(t))
	require.ErrorIs(t, err, ErrBadStream)

	bad, err := NewClient(c.URL(), "")
	require.NoError(t, err)
	_, err = bad.OpenEvents(ctCtx(t))
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusUnauthorized, ae.Status)
}

// FuzzSSE: the parser never panics, returns events or io.EOF or a
// *StreamError, and what it parsed, written out again, parses the same.
func FuzzSSE(f *testing.F) {
	f.Add([]byte(ctSampleStream))
	f.Add([]byte("data: {}\n\n"))
	f.Add([]byte(": keep-alive\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		p := NewSSEReader(bytes.NewReader(in))
		var got []Event
		for i := 0; ; i++ {
			ev, err := p.Next()
			if err != nil {
				var se *StreamError
				if !errors.Is(err, io.EOF) && !errors.As(err, &se) {
					t.Fatalf("untyped error %T: %v", err, err)
				}
				break
			}
			got = append(got, ev)
			if i > len(in) {
				t.Fatalf("more events (%d) than input bytes", i)
			}
		}
		var out bytes.Buffer
		for _, ev := range got {
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&out, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Type, b)
		}
		p = NewSSEReader(&out)
		for i, want := range got {
			ev, err := p.Next()
			if err != nil {
				// An event: line cannot hold a type with a newline.
				if strings.ContainsAny(want.Type, "\r\n") {
					return
				}
				t.Fatalf("event %d: re-parse: %v", i, err)
			}
			a, _ := json.Marshal(ev)
			b, _ := json.Marshal(want)
			if !bytes.Equal(a, b) {
				t.Fatalf("event %d: %s != %s", i, a, b)
			}
		}
	})
}
