package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/internal/i18n"
	"kpe-agent/internal/systest"
	"kpe-agent/sync/outbox"
)

const agentToken = "kpectl-test-token"

// cannedAgent serves canned local-API answers: enough for kpectl's
// formatting (the daemon's own e2e tests drive the real agent).
type cannedAgent struct {
	t       *testing.T
	url     string
	mu      sync.Mutex
	auth    func(w http.ResponseWriter, r *http.Request)
	events  chan string // SSE text to send on /v1/events
	cancels []api.CancelRequest
	sync    func(w http.ResponseWriter)
	streams int
}

func newCannedAgent(t *testing.T) *cannedAgent {
	a := &cannedAgent{t: t, events: make(chan string, 16)}
	srv := httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

func (a *cannedAgent) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != api.PathHealth && r.Header.Get("Authorization") != "Bearer "+agentToken {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: api.Error{Code: "unauthorized", Message: "token required"}})
		return
	}
	send := func(v any) { _ = json.NewEncoder(w).Encode(v) }
	switch r.Method + " " + r.URL.Path {
	case "GET " + api.PathHealth:
		send(api.Health{Status: "degraded", Version: "1.2.3", Terminal: "PKM-TEST-01", PCSC: "ok", Readers: 2,
			Started:  time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC),
			SAM:      &api.SAM{Present: true, Reader: "Virtual PCD 00 01", Serial: "53414D0000000001", State: "active", Counter: 42},
			Problems: []api.Error{{Code: "sync-failed", Message: "Sinkronisasi gagal"}}})
	case "GET " + api.PathReaders:
		send([]api.Reader{
			{Name: "Virtual PCD 00 00", Role: "card", CardPresent: true, Kind: "kpe", State: api.StateIdentified, Busy: true},
			{Name: "Virtual PCD 00 01", Role: "sam", CardPresent: true, Kind: "sam", State: api.StateIdle}})
	case "GET " + api.PathQueue:
		send(api.QueueStatus{Pending: 3, Sending: 1, Acknowledged: 50, Dead: 1, OldestUnsynced: 7200, Used: 0.82,
			Sync: api.SyncStatus{Enabled: true, URL: "https://bo.example", Failures: 4, LastError: "dial tcp: connection refused",
				LastSuccess: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC), Accepted: 50}})
	case "POST " + api.PathAuth:
		a.auth(w, r)
	case "POST " + api.PathCancel:
		var c api.CancelRequest
		_ = json.NewDecoder(r.Body).Decode(&c)
		a.mu.Lock()
		a.cancels = append(a.cancels, c)
		a.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case "POST " + api.PathSync:
		a.sync(w)
	case "GET " + api.PathEvents:
		a.mu.Lock()
		a.streams++
		n := a.streams
		a.mu.Unlock()
		if n > 1 && r.Header.Get("X-Test-Keep") == "" {
			// monitor reconnects: refuse, so that the command ends.
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: api.Error{Code: "unauthorized", Message: "gone"}})
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		fl := w.(http.Flusher)
		_, _ = fmt.Fprint(w, ": kpe-agent events\n\n")
		fl.Flush()
		for {
			select {
			case s, ok := <-a.events:
				if !ok {
					return
				}
				_, _ = fmt.Fprint(w, s)
				fl.Flush()
			case <-r.Context().Done():
				return
			}
		}
	default:
		http.NotFound(w, r)
	}
}

func sse(ev api.Event) string {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	b, _ := json.Marshal(ev)
	return fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Type, b)
}

func tokenFile(t *testing.T, token string) string {
	p := filepath.Join(t.TempDir(), "api-token")
	require.NoError(t, os.WriteFile(p, []byte(token+"\n"), 0o600))
	return p
}

func agentArgs(t *testing.T, a *cannedAgent, args ...string) []string {
	return append([]string{"--agent", a.url, "--token-file", tokenFile(t, agentToken)}, args...)
}

func TestStatus(t *testing.T) {
	a := newCannedAgent(t)
	out, errOut, code := runCLI(t, "", agentArgs(t, a, "status")...)
	require.Equal(t, 0, code, errOut)
	for _, want := range []string{
		"Agen", "degraded, versi 1.2.3, terminal PKM-TEST-01", a.url,
		"active, serial 53414D0000000001, penghitung 42",
		`"Virtual PCD 00 00" [kartu] kartu ada: kpe, Kartu dikenali, sedang melayani`,
		`"Virtual PCD 00 01" [SAM]`,
		"menunggu 3, sedang dikirim 1, ditolak (dead) 1, terpakai 82.0 %, tertua 2 jam",
		"https://bo.example", "gagal berturut-turut: 4", "Sinkronisasi gagal [sync-failed]",
	} {
		require.Contains(t, out, want)
	}

	out, errOut, code = runCLI(t, "", agentArgs(t, a, "--lang", "en", "status", "--json")...)
	require.Equal(t, 0, code, errOut)
	var st statusJSON
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	require.Equal(t, uint32(42), st.Health.SAM.Counter)
	require.Len(t, st.Readers, 2)
	require.Equal(t, 3, st.Queue.Pending)
}

func TestStatusErrors(t *testing.T) {
	// No agent: the message says how to start it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, errOut, code := runCLI(t, "", "--agent", addr, "--token-file", tokenFile(t, "x"), "status")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "Agen tidak berjalan. Jalankan: sudo systemctl start kpe-agent")
	_, errOut, code = runCLI(t, "", "--lang", "en", "--agent", addr, "--token-file", tokenFile(t, "x"), "status")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "The agent is not running. Start it: sudo systemctl start kpe-agent")

	// A wrong token, and an unreadable one.
	a := newCannedAgent(t)
	_, errOut, code = runCLI(t, "", "--lang", "en", "--agent", a.url, "--token-file", tokenFile(t, "wrong"), "status")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "The agent refuses the API token")
	_, errOut, code = runCLI(t, "", "--lang", "en", "--agent", a.url, "--token-file", filepath.Join(t.TempDir(), "none"), "status")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "The agent's API token cannot be read")
}

func TestAuth(t *testing.T) {
	a := newCannedAgent(t)
	var got api.AuthRequest
	a.auth = func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, json.NewDecoder(r.Body).Decode(&got))
		for i, st := range []string{api.StateDetected, api.StateIdentified, api.StateAuthenticated, api.StateFingerprint, api.StateVerified, api.StateRecorded} {
			ev := api.Event{Seq: uint64(10 + i), Type: api.EventSession, Reader: "Virtual PCD 00 00", State: st}
			if st == api.StateIdentified {
				ev.CardKind = "kpe"
			}
			if st == api.StateRecorded {
				ev.Code = "ABCD-EFGH-JKLM"
			}
			a.events <- sse(ev)
		}
		_ = json.NewEncoder(w).Encode(api.AuthResult{Code: "ABCD-EFGH-JKLM", RecordID: "r1", Service: got.Service,
			Reader: "Virtual PCD 00 00", CardKind: "kpe", Counter: 43, Message: "Autentikasi berhasil."})
	}
	out, errOut, code := runCLI(t, "", agentArgs(t, a, "auth", "--service", "taspen", "--operator", "op-17", "--wait", "20s", "--confirm-last-try")...)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, api.AuthRequest{Service: "taspen", Operator: "op-17", WaitSeconds: 20, ConfirmLastTry: true, Lang: "id"}, got)
	order := []string{"Menunggu kartu (paling lama 20 detik)", "Kartu terdeteksi", "Kartu dikenali: kpe", "Kartu dan data asli",
		"Letakkan jari pada sensor", "Sidik jari cocok", "TERCATAT. Kode autentikasi: ABCD-EFGH-JKLM", "penghitung SAM 43"}
	last := -1
	for _, w := range order {
		i := strings.Index(out, w)
		require.Greater(t, i, last, "%q out of order in:\n%s", w, out)
		last = i
	}

	// -json prints the result only.
	out, errOut, code = runCLI(t, "", agentArgs(t, a, "auth", "--json", "--service", "askes", "--operator", "op-1")...)
	require.Equal(t, 0, code, errOut)
	var res api.AuthResult
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	require.Equal(t, "ABCD-EFGH-JKLM", res.Code)
}

// The answer can reach kpectl before the session's events (two
// connections): they are still printed, before the outcome.
func TestAuthEventsAfterAnswer(t *testing.T) {
	// Generous, so that only the order is tested, not the machine's speed.
	old := drainFor
	drainFor = time.Minute
	t.Cleanup(func() { drainFor = old })
	a := newCannedAgent(t)
	a.auth = func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = json.NewEncoder(w).Encode(api.AuthResult{Code: "ABCD-EFGH-JKLM", RecordID: "r1", Service: "askes",
			Reader: "Virtual PCD 00 00", CardKind: "kpe", Counter: 43})
		go func() {
			// Late, to let the answer (the handler returning) come first;
			// any lateness gives the same output.
			time.Sleep(100 * time.Millisecond)
			for i, st := range []string{api.StateDetected, api.StateVerified, api.StateRecorded} {
				a.events <- sse(api.Event{Seq: uint64(10 + i), Type: api.EventSession, Reader: "Virtual PCD 00 00", State: st})
			}
		}()
	}
	out, errOut, code := runCLI(t, "", agentArgs(t, a, "--lang", "en", "auth", "--service", "askes", "--operator", "op-1")...)
	require.Equal(t, 0, code, errOut)
	last := -1
	for _, w := range []string{"Card detected", "Fingerprint verified", "RECORDED"} {
		i := strings.Index(out, w)
		require.Greater(t, i, last, "%q out of order in:\n%s", w, out)
		last = i
	}
}

func TestAuthFailure(t *testing.T) {
	a := newCannedAgent(t)
	a.auth = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: api.Error{Code: "finger-last-try",
			Message: "One fingerprint try left on the card. Confirm before it is used.", Retriable: true, TriesLeft: 1}})
	}
	out, _, code := runCLI(t, "", agentArgs(t, a, "--lang", "en", "auth", "--service", "askes", "--operator", "op-1", "--wait", "0s")...)
	require.Equal(t, 1, code)
	require.Contains(t, out, "FAILED (finger-last-try): One fingerprint try left on the card.")
	require.Contains(t, out, "fingerprint tries left on the card: 1")
	require.Contains(t, out, "--confirm-last-try")

	out, _, code = runCLI(t, "", agentArgs(t, a, "auth", "--json", "--service", "askes", "--operator", "op-1")...)
	require.Equal(t, 1, code)
	var eb api.ErrorBody
	require.NoError(t, json.Unmarshal([]byte(out), &eb), out)
	require.Equal(t, "finger-last-try", eb.Error.Code)

	_, errOut, code := runCLI(t, "", agentArgs(t, a, "auth", "--service", "askes")...)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `required flag(s) "operator" not set`)
}

// Ctrl-C while the agent waits for the finger cancels the session on the
// agent, for the reader the events named.
func TestAuthCancel(t *testing.T) {
	a := newCannedAgent(t)
	a.auth = func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // else the server does not see the client go
		a.events <- sse(api.Event{Seq: 1, Type: api.EventSession, Reader: "Virtual PCD 00 00", State: api.StateFingerprint})
		<-r.Context().Done()
	}
	var out, errOut systest.Buffer
	c := &cli{out: &out, errOut: &errOut, msg: messagesIn(i18n.English), lang: "en", agentURL: a.url, tokenFile: tokenFile(t, agentToken)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.auth(ctx, authOptions{service: "askes", operator: "op-1", wait: 30 * time.Second, timeout: time.Minute})
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "Place the finger on the sensor") }, 5*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, errReported)
	case <-time.After(5 * time.Second):
		t.Fatal("auth did not end after the interrupt")
	}
	require.Contains(t, out.String(), "The transaction was cancelled.")
	a.mu.Lock()
	defer a.mu.Unlock()
	require.Equal(t, []api.CancelRequest{{Reader: "Virtual PCD 00 00"}}, a.cancels)
}

// Ctrl-C before any event named the reader: the closed request ends the
// session, and no cancel goes out, least of all an empty one (which older
// agents took as "every reader", ending other counters' sessions).
func TestAuthCancelWithoutReaderSendsNoCancelAll(t *testing.T) {
	a := newCannedAgent(t)
	started := make(chan struct{})
	ended := make(chan struct{})
	a.auth = func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		close(started)
		<-r.Context().Done()
		close(ended)
	}
	var out, errOut systest.Buffer
	c := &cli{out: &out, errOut: &errOut, msg: messagesIn(i18n.English), lang: "en", agentURL: a.url, tokenFile: tokenFile(t, agentToken)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.auth(ctx, authOptions{service: "askes", operator: "op-1", wait: 30 * time.Second, timeout: time.Minute})
	}()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("auth did not reach the agent")
	}
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, errReported)
	case <-time.After(5 * time.Second):
		t.Fatal("auth did not end after the interrupt")
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the agent did not see the request closed")
	}
	require.Contains(t, out.String(), "The transaction was cancelled.")
	a.mu.Lock()
	defer a.mu.Unlock()
	require.Empty(t, a.cancels)
}

func TestSyncNow(t *testing.T) {
	a := newCannedAgent(t)
	a.sync = func(w http.ResponseWriter) {
		_ = json.NewEncoder(w).Encode(api.SyncResult{Sent: 5, Accepted: 4, Duplicates: 1, Remaining: 0})
	}
	out, errOut, code := runCLI(t, "", agentArgs(t, a, "sync", "now")...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "Terkirim 5: diterima 4, duplikat 1, ditolak 0. Sisa belum terkirim: 0.")
	require.NotContains(t, errOut, "Mengirim", "no progress line when stderr is not a terminal")

	a.sync = func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: api.Error{Code: "sync-disabled", Message: "Syncing is not configured on this terminal."}})
	}
	out, _, code = runCLI(t, "", agentArgs(t, a, "--lang", "en", "sync", "now")...)
	require.Equal(t, 1, code)
	require.Contains(t, out, "Sync failed: Syncing is not configured on this terminal. [sync-disabled, HTTP 409]")

	a.sync = func(w http.ResponseWriter) {
		_ = json.NewEncoder(w).Encode(api.SyncResult{Sent: 2, Remaining: 2, Error: &api.Error{Code: "sync-failed", Message: "Syncing failed"}})
	}
	out, _, code = runCLI(t, "", agentArgs(t, a, "sync", "now", "--json")...)
	require.Equal(t, 1, code)
	var r api.SyncResult
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	require.Equal(t, "sync-failed", r.Error.Code)

	_, _, code = runCLI(t, "", agentArgs(t, a, "sync")...)
	require.Equal(t, 2, code)
}

func TestMonitorAgent(t *testing.T) {
	a := newCannedAgent(t)
	a.events <- sse(api.Event{Seq: 1, Type: api.EventReader, Reader: "Virtual PCD 00 00", State: "added"})
	a.events <- sse(api.Event{Seq: 2, Type: api.EventSession, Reader: "Virtual PCD 00 00", State: api.StateFailed,
		Error: &api.Error{Code: "card-removed", Message: "Kartu dicabut"}})
	a.events <- sse(api.Event{Seq: 3, Type: api.EventSession, Reader: "Virtual PCD 00 00", State: api.StateRecorded, Code: "ABCD-EFGH-JKLM"})
	close(a.events) // the stream ends; the reconnect is refused
	out, errOut, code := runCLI(t, "", agentArgs(t, a, "monitor", "--via-agent")...)
	require.Equal(t, 1, code, errOut)
	require.Contains(t, out, "Memantau kejadian agen")
	require.Contains(t, out, `pembaca      "Virtual PCD 00 00"  added`)
	require.Contains(t, out, "Gagal  [card-removed] Kartu dicabut")
	require.Contains(t, out, "Tercatat  ABCD-EFGH-JKLM")
	require.Contains(t, errOut, "Koneksi ke agen terputus")

	b := newCannedAgent(t)
	b.events <- sse(api.Event{Seq: 7, Type: api.EventSAM, State: "active"})
	close(b.events)
	out, _, _ = runCLI(t, "", agentArgs(t, b, "monitor", "--via-agent", "--json")...)
	var ev api.Event
	require.NoError(t, json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &ev), out)
	require.Equal(t, uint64(7), ev.Seq)
}

// queue stats on an outbox the running agent holds asks the agent.
func TestQueueStatsFromAgent(t *testing.T) {
	a := newCannedAgent(t)
	path := filepath.Join(t.TempDir(), "outbox.db")
	ob, err := outbox.Open(path, outbox.Options{})
	require.NoError(t, err)
	defer ob.Close()

	out, errOut, code := runCLI(t, "", agentArgs(t, a, "queue", "stats", "--outbox", path)...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "dipakai agen yang sedang berjalan; angka berikut dari API agen")
	require.Regexp(t, `menunggu dikirim \(pending\) +3\n`, out)
	require.Contains(t, out, "82.0 %")

	out, errOut, code = runCLI(t, "", agentArgs(t, a, "queue", "stats", "--json", "--outbox", path)...)
	require.Equal(t, 0, code, errOut)
	var q queueAgentStatsJSON
	require.NoError(t, json.Unmarshal([]byte(out), &q), out)
	require.Equal(t, "agent", q.Source)
	require.Equal(t, 4, q.Unsynced)
	require.Equal(t, 80, q.AlarmPercent)
	require.Equal(t, "warning", q.Alarm)
}

// With the default configuration file, the variables of the service's
// environment files apply (under the caller's own), so doctor and status
// look where the service does.
func TestLoadConfigServiceEnvFiles(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "kpe-agent")
	require.NoError(t, os.WriteFile(envFile, []byte("KPE_API_LISTEN=127.0.0.1:7999\nKPE_LOG_LEVEL=debug\nhttps_proxy=http://proxy.example:3128\n"), 0o644))
	old := serviceEnvFiles
	serviceEnvFiles = []string{envFile}
	t.Cleanup(func() { serviceEnvFiles = old })
	t.Setenv("KPE_LOG_LEVEL", "warn")
	t.Setenv("https_proxy", "") // restored when the test ends
	c := &cli{out: io.Discard, errOut: io.Discard}
	cfg, _ := c.loadConfig("")
	assert.Equal(t, "127.0.0.1:7999", cfg.API.Listen)
	assert.Equal(t, "warn", cfg.Log.Level, "the caller's own variable wins")
	assert.Equal(t, "http://proxy.example:3128", os.Getenv("https_proxy"), "the service's proxy, for doctor")

	// a file named with -config is taken as it is
	conf := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(conf, []byte("terminal:\n  id: T1\n  site: S1\n"), 0o644))
	cfg, err := c.loadConfig(conf)
	require.NoError(t, err)
	assert.NotEqual(t, "127.0.0.1:7999", cfg.API.Listen)
}
