package daemon_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/agent/config"
	"kpe-agent/agent/daemon"
	"kpe-agent/apdu"
	"kpe-agent/apdu/pcsc"
	"kpe-agent/internal/pgtest"
	"kpe-agent/internal/purse"
	"kpe-agent/lab/cardsim"
	_ "kpe-agent/lab/cardsim/samapp"
	"kpe-agent/lab/labpki"
	"kpe-agent/lab/labset"
	"kpe-agent/lab/pcsctest"
	hsmsigner "kpe-agent/lab/softhsm/signer"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/issuer"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
	"kpe-agent/sync/uploader"
)

const (
	labDir   = "testdata/cards/lab"
	terminal = "pkm-e2e-01"
	token    = "e2e-token-0123456789abcdef"
)

// rig is the whole terminal on this machine: the card lab on pcscd's vpcd
// readers (card in slot 0, SAM in slot 1), the lab's fingerprint sensor,
// the daemon with its local API on a loopback port, and the back office
// on PostgreSQL behind mTLS.
type rig struct {
	t      testing.TB
	lab    *cardsim.Lab
	svc    *backoffice.Service
	store  backoffice.Store
	issuer issuer.IssuerSigner // the back office's renewal signer
	ob     *outbox.Outbox
	d      *daemon.Daemon
	base   string
	cfgp   atomic.Pointer[config.Config] // the daemon reads it while tests change it: setConf
	stop   func()
	stopMu sync.Mutex
	// startAgent starts the daemon and its API on addr ("127.0.0.1:0"
	// the first time); restart stops them and starts them again there
	startAgent func(addr string)
	gate       *eventGate // holds back card removals on the agent's way
	logs       logTap     // the agent's log messages
	// nikKey is the KTP-el pseudonym fallback key the agent starts with
	// (ktpel.pseudonym: file); nil: the SAM computes the pseudonyms
	nikKey []byte
}

// eventGate stands between pcscd's reader events and the agent: while it
// holds, a card removal and whatever follows it wait until release (the
// agent hears of a pulled card late, as under load).
type eventGate struct {
	mu      sync.Mutex
	holding bool
	release chan struct{}
}

func (g *eventGate) hold() {
	g.mu.Lock()
	g.holding = true
	g.mu.Unlock()
}

// open lets the held events through, in order.
func (g *eventGate) open() {
	g.mu.Lock()
	g.holding = false
	g.mu.Unlock()
	g.release <- struct{}{}
}

func (g *eventGate) pipe(ctx context.Context, in <-chan apdu.Event) <-chan apdu.Event {
	out := make(chan apdu.Event)
	go func() {
		defer close(out)
		var held []apdu.Event
		send := func(ev apdu.Event) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			select {
			case ev, ok := <-in:
				if !ok {
					return
				}
				g.mu.Lock()
				holding := g.holding
				g.mu.Unlock()
				if holding && (ev.Kind == apdu.CardRemoved || len(held) > 0) {
					held = append(held, ev)
					continue
				}
				if !send(ev) {
					return
				}
			case <-g.release:
				for _, ev := range held {
					if !send(ev) {
						return
					}
				}
				held = nil
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// logTap keeps the agent's log messages (info and up) for the test to
// wait on, and passes every record on to next (the debug log, or none).
type logTap struct {
	kept *keptLogs
	next slog.Handler
}

type keptLogs struct {
	mu   sync.Mutex
	msgs []string
}

func (l logTap) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= slog.LevelInfo || l.next.Enabled(ctx, lv)
}

func (l logTap) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelInfo {
		l.kept.mu.Lock()
		l.kept.msgs = append(l.kept.msgs, rec.Message)
		l.kept.mu.Unlock()
	}
	if l.next.Enabled(ctx, rec.Level) {
		return l.next.Handle(ctx, rec)
	}
	return nil
}

func (l logTap) WithAttrs(as []slog.Attr) slog.Handler { return logTap{l.kept, l.next.WithAttrs(as)} }
func (l logTap) WithGroup(name string) slog.Handler    { return logTap{l.kept, l.next.WithGroup(name)} }

// seen reports whether the agent has logged msg.
func (l logTap) seen(msg string) bool {
	l.kept.mu.Lock()
	defer l.kept.mu.Unlock()
	return slices.Contains(l.kept.msgs, msg)
}

// waitReader waits until the reader named name satisfies ok.
func (r *rig) waitReader(t testing.TB, name string, ok func(api.Reader) bool) {
	t.Helper()
	require.Eventually(t, func() bool {
		var rs []api.Reader
		r.call("GET", api.PathReaders, nil, &rs)
		i := slices.IndexFunc(rs, func(rd api.Reader) bool { return rd.Name == name })
		return i >= 0 && ok(rs[i])
	}, 20*time.Second, 10*time.Millisecond)
}

func newRig(t testing.TB) *rig { return newRigWith(t, rigOptions{}) }

// rigOptions vary the rig.
type rigOptions struct {
	// hsm: the back office's issuer key is generated in a SoftHSM2 token
	// (lab/softhsm), as in production; otherwise a key file (lab only).
	// Either way the lab's BKN renewal root certifies it, so the agent
	// trusts the renewals it signs.
	hsm bool
	// wrapTerminal, when set, stands in front of the back office's
	// terminal listener (a forging proxy in the renewal tests).
	wrapTerminal func(http.Handler) http.Handler
	// outbox: the agent's outbox options (its limits)
	outbox outbox.Options
}

func newRigWith(t testing.TB, o rigOptions) *rig {
	pcsctest.Require(t)
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	r := &rig{t: t, lab: pcsctest.Lab(t), gate: &eventGate{release: make(chan struct{})}, logs: logTap{&keptLogs{}, slog.DiscardHandler}}
	if l := pcsctest.DebugLog("agent"); l != nil {
		r.logs.next = l.Handler()
	}
	dir := pcsctest.RepoPath(labDir)
	m, err := labset.LoadManifest(dir)
	require.NoError(t, err)
	bkn, err := m.Roots(dir, "bkn")
	require.NoError(t, err)
	dukcapil, err := m.Roots(dir, "dukcapil")
	require.NoError(t, err)
	samCA, err := m.Roots(dir, "backoffice")
	require.NoError(t, err)

	// the lab's control API serves the fingerprint sensor
	labSrv := httptest.NewServer(r.lab.Handler())
	t.Cleanup(labSrv.Close)

	// back office on PostgreSQL, terminal listener with mTLS
	store, err := backoffice.OpenPostgres(context.Background(), pgtest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	r.store = store
	r.issuer = rigIssuer(t, m, dir, o.hsm)
	// the lab's purse masters: the back office checks card proofs
	purseKeys, err := purse.LoadLabKeys(filepath.Join(dir, "trust/purse-keys.json"))
	require.NoError(t, err)
	r.svc, err = backoffice.New(store, backoffice.Config{CA: samCA, Issuer: r.issuer, IssuerRoots: bkn, PurseKeys: purseKeys})
	require.NoError(t, err)
	tlsCA, err := labpki.NewCA("e2e TLS CA")
	require.NoError(t, err)
	terminalHandler := r.svc.TerminalHandler(nil)
	if o.wrapTerminal != nil {
		terminalHandler = o.wrapTerminal(terminalHandler)
	}
	bo := httptest.NewUnstartedServer(terminalHandler)
	srvCert, err := tlsCA.Server()
	require.NoError(t, err)
	bo.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: tlsCA.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	bo.StartTLS()
	t.Cleanup(bo.Close)
	client, err := tlsCA.Terminal(terminal)
	require.NoError(t, err)

	r.cfgp.Store(&config.Config{
		Terminal:    config.Terminal{ID: terminal, Site: "pkm-e2e", Language: "id", Lab: true},
		Readers:     config.Readers{SAM: []string{pcsctest.Slot1}},
		Fingerprint: config.Fingerprint{Sensor: "lab", LabURL: labSrv.URL, Timeout: 3 * time.Second},
		Session:     config.Session{ReadTimeout: 15 * time.Second, SignTimeout: 10 * time.Second, MaxWait: time.Minute, ShutdownGrace: 5 * time.Second},
		Services:    []string{"askes", "taspen", "bapertarum", "kiosk"},
		Sync:        config.Sync{URL: bo.URL, Interval: time.Hour},
		Kiosk:       config.Kiosk{Enabled: true, IdleTimeout: time.Minute, IdleWarning: 10 * time.Second, VerifyURL: kioskVerifyURL},
	})
	r.ob, err = outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), o.outbox)
	require.NoError(t, err)
	t.Cleanup(func() { r.ob.Close() })
	up, err := uploader.New(r.ob, uploader.Config{URL: bo.URL, TLS: &tls.Config{Certificates: []tls.Certificate{client}, RootCAs: tlsCA.Pool()},
		Interval: time.Hour, MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	require.NoError(t, err)

	tr := pcsc.New(pcsc.Options{Logger: pcsctest.DebugLog("pcsc")})
	t.Cleanup(func() { tr.Close() })
	r.startAgent = func(addr string) { r.start(t, addr, tr, up, m, bkn, dukcapil) }
	r.startAgent("127.0.0.1:0")
	t.Cleanup(func() { r.stop() })
	return r
}

// rigIssuer is the back office's document signer for renewals, certified
// by the lab's BKN renewal root: in a SoftHSM2 token (hsm) or in key
// files.
func rigIssuer(t testing.TB, m *labset.Manifest, dir string, hsm bool) issuer.IssuerSigner {
	t.Helper()
	ca, err := m.RenewalIssuer(dir)
	require.NoError(t, err)
	if hsm {
		return hsmsigner.New(t, ca)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	cert, err := ca.DocumentSigner(&key.PublicKey, pkix.Name{CommonName: "Lab BKN Renewal Signer (file)"})
	require.NoError(t, err)
	files := t.TempDir()
	keyPath, certPath := filepath.Join(files, "ds-key.pem"), filepath.Join(files, "ds.pem")
	require.NoError(t, labpki.WriteKey(keyPath, key))
	require.NoError(t, labpki.WriteCert(certPath, cert))
	s, err := issuer.OpenFile(keyPath, certPath)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// start starts the daemon and its local API on addr.
func (r *rig) start(t testing.TB, addr string, tr *pcsc.Transport, up *uploader.Uploader, m *labset.Manifest, bkn, dukcapil *x509.CertPool) {
	var err error
	r.d, err = daemon.New(daemon.Options{
		Config: r.conf, Transport: tr,
		Watch:  func(ctx context.Context) <-chan apdu.Event { return r.gate.pipe(ctx, tr.Watch(ctx).Events) },
		Outbox: r.ob, Uploader: up, Cards: cards.Options{BKNRoots: bkn, DukcapilRoots: dukcapil}, SAMCode: []byte(m.SAM.ActivationCode),
		KTPSecrets: [][]byte{[]byte(m.SAM.KTPSecret1), []byte(m.SAM.KTPSecret2)}, NIKKey: r.nikKey,
		Version: "e2e", Log: slog.New(r.logs),
	})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	srv := &http.Server{Handler: api.NewHandler(r.d, api.ServerConfig{Token: []byte(token), Port: ln.Addr().(*net.TCPAddr).Port,
		AllowedOrigins: []string{"http://his.puskesmas.local"}, Heartbeat: 200 * time.Millisecond, Metrics: r.d.Metrics().Handler(), Log: slog.New(r.logs),
		Kiosk: api.KioskConfig{Enabled: r.conf().Kiosk.Enabled, IdleTimeout: r.conf().Kiosk.IdleTimeout, IdleWarning: r.conf().Kiosk.IdleWarning,
			VerifyURL: r.conf().Kiosk.VerifyURL, CardWait: r.conf().Session.MaxWait},
		Loket: api.LoketConfig{Enabled: true}})}
	// requests run under base, cancelled at shutdown so that event
	// streams end, as in kpe-agent
	base, stopRequests := context.WithCancel(context.Background())
	srv.BaseContext = func(net.Listener) context.Context { return base }
	go srv.Serve(ln)
	r.base = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.d.Run(ctx); close(done) }()
	r.stop = func() {
		r.stopMu.Lock()
		defer r.stopMu.Unlock()
		if cancel != nil {
			cancel()
			<-done
			// as kpe-agent does: answers in flight are written first
			stopRequests()
			sctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
			srv.Shutdown(sctx)
			stop()
			cancel = nil
		}
	}
}

// restart stops the agent and starts a new one on the same address, as
// restarting the service does: a new daemon (its event seq from 1) and
// new kiosk credentials (none of the old ones counts).
func (r *rig) restart() {
	r.t.Helper()
	r.stop()
	r.startAgent(strings.TrimPrefix(r.base, "http://"))
}

func (r *rig) insert(slot int, image string) {
	pcsctest.Insert(r.t, r.lab, slot, filepath.Join("lab/cards", image))
}

// call makes an API request with the token and decodes the answer into
// out (when not nil); it returns the status and the error body, if any.
func (r *rig) call(method, path string, body, out any, hdr ...string) (int, api.Error) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(r.t, err)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, r.base+path, rd)
	require.NoError(r.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(r.t, err)
	var eb api.ErrorBody
	if resp.StatusCode >= 400 {
		require.NoError(r.t, json.Unmarshal(raw, &eb), "%s", raw)
		return resp.StatusCode, eb.Error
	}
	if out != nil && len(raw) > 0 {
		require.NoError(r.t, json.Unmarshal(raw, out), "%s", raw)
	}
	return resp.StatusCode, api.Error{}
}

// waitHealth waits until the health check satisfies ok.
// conf is the configuration the daemon reads now.
func (r *rig) conf() *config.Config { return r.cfgp.Load() }

// setConf changes the configuration the daemon reads as the agent's
// reload does: a changed copy, swapped in at once, never a field written
// under the daemon's goroutines.
func (r *rig) setConf(change func(*config.Config)) {
	c := *r.cfgp.Load()
	change(&c)
	r.cfgp.Store(&c)
}

func (r *rig) waitHealth(ok func(api.Health) bool) api.Health {
	r.t.Helper()
	var h api.Health
	require.Eventually(r.t, func() bool {
		r.call("GET", api.PathHealth, nil, &h)
		return ok(h)
	}, 20*time.Second, 50*time.Millisecond, "health never got there: %+v", h)
	return h
}

func samReady(h api.Health) bool { return h.SAM != nil && h.SAM.Present && h.SAM.State == "active" }

// events follows the SSE stream and returns the session states seen.
func (r *rig) events(ctx context.Context, query ...string) <-chan api.Event {
	req, err := http.NewRequestWithContext(ctx, "GET", r.base+api.PathEvents+strings.Join(query, ""), nil)
	require.NoError(r.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(r.t, err)
	require.Equal(r.t, 200, resp.StatusCode)
	require.Equal(r.t, "text/event-stream", resp.Header.Get("Content-Type"))
	out := make(chan api.Event, 256)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev api.Event
				if json.Unmarshal([]byte(data), &ev) == nil {
					out <- ev
				}
			}
		}
	}()
	return out
}

// waitingForFinger starts req with nothing on the sensor and returns once
// the workflow waits for the finger; its error arrives on the channel.
func (r *rig) waitingForFinger(t *testing.T, req api.AuthRequest) <-chan api.Error {
	t.Helper()
	require.NoError(t, r.lab.PlaceFinger(0, ""))
	r.setConf(func(c *config.Config) { c.Fingerprint.Timeout = 20 * time.Second })
	t.Cleanup(func() { r.setConf(func(c *config.Config) { c.Fingerprint.Timeout = 3 * time.Second }) })
	got := make(chan api.Error, 1)
	go func() {
		_, e := r.call("POST", api.PathAuth, req, nil)
		got <- e
	}()
	r.waitReader(t, pcsctest.Slot0, func(rd api.Reader) bool { return rd.State == api.StateFingerprint })
	return got
}

func TestEndToEnd(t *testing.T) {
	r := newRig(t)
	r.insert(1, "sam.json")
	r.waitHealth(samReady)

	t.Run("refusals", func(t *testing.T) {
		// no token
		resp, err := http.Get(r.base + api.PathReaders)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		status, e := r.call("GET", api.PathReaders, nil, nil, "Authorization", "Bearer wrong")
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, api.CodeUnauthorized, e.Code)
		// a page from another site: refused even with the token
		status, e = r.call("POST", api.PathAuth, api.AuthRequest{Service: "askes", Operator: "x"}, nil, "Origin", "http://evil.example")
		assert.Equal(t, http.StatusForbidden, status)
		assert.Equal(t, api.CodeForbiddenOrigin, e.Code)
		// DNS rebinding: the attacker's name in Host
		status, e = r.call("GET", api.PathHealth, nil, nil, "Host", "evil.example:"+strings.Split(r.base, ":")[2])
		assert.Equal(t, http.StatusForbidden, status)
		assert.Equal(t, api.CodeForbiddenHost, e.Code)
		// the allowed origin gets CORS headers
		req, _ := http.NewRequest("OPTIONS", r.base+api.PathAuth, nil)
		req.Header.Set("Origin", "http://his.puskesmas.local")
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusNoContent, resp.StatusCode)
		assert.Equal(t, "http://his.puskesmas.local", resp.Header.Get("Access-Control-Allow-Origin"))
		// health without the token says only up or not
		resp, err = http.Get(r.base + api.PathHealth)
		require.NoError(t, err)
		var h map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&h))
		resp.Body.Close()
		assert.Equal(t, map[string]any{"status": "ok"}, h)
	})

	// The language rule (docs/i18n.md): ?lang, then the body's lang, then
	// Accept-Language, then terminal.language (id here).
	t.Run("languages", func(t *testing.T) {
		msgOf := func(path string, body any, hdr ...string) api.Error {
			t.Helper()
			_, e := r.call("POST", path, body, nil, hdr...)
			return e
		}
		// the API's own refusal
		_, e := r.call("GET", api.PathReaders+"?lang=en", nil, nil, "Authorization", "Bearer wrong")
		assert.Equal(t, "The API token is missing or wrong.", e.Message)
		_, e = r.call("GET", api.PathReaders, nil, nil, "Authorization", "Bearer wrong", "Accept-Language", "en-GB,en;q=0.8")
		assert.Equal(t, "The API token is missing or wrong.", e.Message)
		_, e = r.call("GET", api.PathReaders, nil, nil, "Authorization", "Bearer wrong")
		assert.Equal(t, "Token API tidak ada atau salah.", e.Message)
		// a workflow's error: the query beats the body, the body beats the header
		req := api.AuthRequest{Service: "no-such-service", Operator: "x", Lang: "en"}
		assert.Equal(t, "Unknown service on this terminal.", msgOf(api.PathAuth, req, "Accept-Language", "id").Message)
		assert.Equal(t, "Layanan tidak dikenal pada terminal ini.", msgOf(api.PathAuth+"?lang=id", req).Message)
		req.Lang = ""
		assert.Equal(t, "Unknown service on this terminal.", msgOf(api.PathAuth, req, "Accept-Language", "en").Message)
		assert.Equal(t, "Layanan tidak dikenal pada terminal ini.", msgOf(api.PathAuth, req).Message)
		// the card holder at a kiosk is addressed, not the clerk
		req.Audience = "holder"
		assert.Equal(t, "Layanan ini tidak tersedia di anjungan ini.", msgOf(api.PathAuth, req).Message)
		req.Audience = "kiosk"
		e = msgOf(api.PathAuth, req)
		assert.Equal(t, api.CodeBadRequest, e.Code)
		assert.Contains(t, e.Message, "audience")
		status, e := r.call("GET", api.PathReaders+"?audience=nobody", nil, nil)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, api.CodeBadRequest, e.Code)
	})

	t.Run("askes", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		evs := r.events(ctx)
		kiosk := r.events(ctx, "?lang=en&audience=holder")
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		// the clerk starts the workflow, then the card is inserted
		type answer struct {
			res    api.AuthResult
			status int
			err    api.Error
		}
		got := make(chan answer, 1)
		go func() {
			var a answer
			a.status, a.err = r.call("POST", api.PathAuth, api.AuthRequest{Service: "askes", Operator: "clerk-01", WaitSeconds: 30}, &a.res)
			got <- a
		}()
		time.Sleep(200 * time.Millisecond)
		r.insert(0, "kpe-budi.json")
		a := <-got
		require.Equal(t, 200, a.status, "%+v", a.err)
		_, perr := record.ParseCode(a.res.Code)
		assert.NoError(t, perr, a.res.Code)
		assert.Equal(t, "kpe", a.res.CardKind)
		assert.Equal(t, pcsctest.Slot0, a.res.Reader)
		assert.Positive(t, a.res.TapToCodeMS)
		assert.NotEmpty(t, a.res.Message)

		// every state, in order
		// every state, in order, worded for each subscriber: the clerk in the
		// terminal's language, the kiosk's card holder in English
		sessionEvents := func(evs <-chan api.Event) (states []string, prompts map[string]string) {
			prompts = map[string]string{}
			timeout := time.After(5 * time.Second)
			for {
				select {
				case ev := <-evs:
					if ev.Type == api.EventSession && ev.Reader == pcsctest.Slot0 {
						states = append(states, ev.State)
						if ev.MessageCode != "" {
							prompts[ev.MessageCode] = ev.Message
						}
						if ev.State == api.StateRecorded {
							assert.Equal(t, a.res.Code, ev.Code)
							return
						}
					}
				case <-timeout:
					return
				}
			}
		}
		states, prompts := sessionEvents(evs)
		assert.Equal(t, []string{api.StateDetected, api.StateIdentified, api.StateAuthenticated, api.StateFingerprint, api.StateVerified, api.StateRecorded}, states)
		assert.Equal(t, map[string]string{
			daemon.PromptPlaceFinger: "Minta pemegang kartu meletakkan jarinya pada sensor sidik jari.",
			daemon.OutcomeRecorded:   "Autentikasi berhasil dan tercatat. Tuliskan kode autentikasi pada formulir.",
		}, prompts)
		states, prompts = sessionEvents(kiosk)
		assert.Len(t, states, 6)
		assert.Equal(t, map[string]string{
			daemon.PromptPlaceFinger: "Place your finger on the fingerprint sensor.",
			daemon.OutcomeRecorded:   "Authentication succeeded and is recorded. Keep your authentication code.",
		}, prompts)

		// synced: the back office verifies the code
		require.Eventually(t, func() bool {
			v, err := r.svc.Verify(context.Background(), a.res.Code)
			return err == nil && v.Valid
		}, 10*time.Second, 50*time.Millisecond)
		v, err := r.svc.Verify(context.Background(), a.res.Code)
		require.NoError(t, err)
		assert.Equal(t, "askes", v.Service)
		assert.Equal(t, terminal, v.TerminalID)
		assert.Equal(t, "sam", v.Signer)
		assert.Equal(t, a.res.Counter, v.Counter)
		// the back office commits before it answers, and the agent settles
		// its outbox after reading the answer: the queue follows a moment later
		var q api.QueueStatus
		require.Eventually(t, func() bool {
			r.call("GET", api.PathQueue, nil, &q)
			return q.Acknowledged == 1 && q.Pending+q.Sending == 0 && q.Sync.Accepted == 1
		}, 10*time.Second, 20*time.Millisecond, "the outbox settles the acknowledged record: %+v", q)

		// the card's data and the ASKES form, read when the card stays in
		var readers []api.Reader
		r.call("GET", api.PathReaders, nil, &readers)
		require.Len(t, readers, 2)
		assert.Equal(t, "card", readers[0].Role)
		assert.Equal(t, "sam", readers[1].Role)
		var p api.Prefill
		status, e := r.call("GET", api.PathPrefill, nil, &p)
		require.Equal(t, 200, status, "%+v", e)
		assert.True(t, p.Verified)
		assert.Len(t, p.NIP, 18)
		assert.NotEmpty(t, p.Name)
		assert.NotEmpty(t, p.BPJS)
		var view map[string]any
		status, _ = r.call("GET", api.PathCard+"?reader="+url.QueryEscape(pcsctest.Slot0), nil, &view)
		require.Equal(t, 200, status)
		assert.Equal(t, "genuine", view["verdict"])
		assert.NotContains(t, fmt.Sprint(view), "template")

		// metrics
		req, _ := http.NewRequest("GET", r.base+api.PathMetrics, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Contains(t, string(b), `kpe_card_sessions_total{outcome="recorded"} 1`)
		assert.Contains(t, string(b), "kpe_readers 2")
		assert.Contains(t, string(b), "kpe_outbox_commit_seconds_count 1")
		assert.Contains(t, string(b), "kpe_build_info{")
	})

	// sync now: nothing left after the ASKES record, and the sync event
	t.Run("sync-now", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		evs := r.events(ctx)
		var res api.SyncResult
		status, e := r.call("POST", api.PathSync, nil, &res)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Nil(t, res.Error)
		assert.Zero(t, res.Remaining)
		timeout := time.After(5 * time.Second)
		for {
			select {
			case ev := <-evs:
				if ev.Type == api.EventSync {
					assert.Equal(t, "ok", ev.State)
					return
				}
			case <-timeout:
				t.Fatal("no sync event")
			}
		}
	})

	t.Run("busy-409-and-cancel", func(t *testing.T) {
		got := r.waitingForFinger(t, api.AuthRequest{Service: "askes", Operator: "clerk-01"})
		status, e := r.call("POST", api.PathAuth, api.AuthRequest{Service: "taspen", Operator: "clerk-02"}, nil)
		assert.Equal(t, http.StatusConflict, status)
		assert.Equal(t, daemon.CodeReaderBusy, e.Code)
		assert.True(t, e.Retriable)
		assert.Contains(t, e.Message, "Pembaca sedang")
		status, _ = r.call("POST", api.PathCancel, api.CancelRequest{Reader: pcsctest.Slot0}, nil)
		assert.Equal(t, http.StatusNoContent, status)
		select {
		case e := <-got:
			assert.Equal(t, daemon.CodeCancelled, e.Code)
		case <-time.After(5 * time.Second):
			t.Fatal("the cancelled workflow did not end")
		}
	})

	t.Run("card-pulled-mid-session", func(t *testing.T) {
		got := r.waitingForFinger(t, api.AuthRequest{Service: "askes", Operator: "clerk-01", Lang: "en"})
		require.NoError(t, r.lab.Remove(0))
		select {
		case e := <-got:
			assert.Equal(t, daemon.CodeCardRemoved, e.Code)
			assert.Contains(t, e.Message, "removed")
			assert.True(t, e.Retriable)
		case <-time.After(10 * time.Second):
			t.Fatal("the workflow did not end when the card was pulled")
		}
		// nothing was recorded for it
		var q api.QueueStatus
		r.call("GET", api.PathQueue, nil, &q)
		assert.Equal(t, 1, q.Pending+q.Sending+q.Acknowledged)
	})

	// The card pulled while the SAM signs (slowed down here): the record
	// is committed, so the clerk gets its code, not "nothing recorded".
	t.Run("card-pulled-during-the-signature", func(t *testing.T) {
		r.insert(0, "kpe-budi.json")
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		evs := r.events(ctx)
		var res api.AuthResult
		status := make(chan int, 1)
		require.NoError(t, r.lab.PlaceFinger(0, ""))
		go func() {
			st, _ := r.call("POST", api.PathAuth, api.AuthRequest{Service: "taspen", Operator: "clerk-01", WaitSeconds: 10}, &res)
			status <- st
		}()
		for ev := range evs {
			if ev.Type == api.EventSession && ev.State == api.StateFingerprint {
				break
			}
		}
		require.NoError(t, r.lab.SetFault(1, cardsim.Fault{Delay: 700 * time.Millisecond}))
		defer r.lab.ClearFault(1)
		require.NoError(t, r.lab.PlaceFinger(0, "genuine"))
		for ev := range evs {
			if ev.Type == api.EventSession && ev.State == api.StateVerified {
				break
			}
		}
		require.NoError(t, r.lab.Remove(0))
		select {
		case st := <-status:
			require.Equal(t, http.StatusOK, st)
		case <-time.After(15 * time.Second):
			t.Fatal("the workflow did not end")
		}
		_, err := record.ParseCode(res.Code)
		require.NoError(t, err, res.Code)
		var q api.QueueStatus
		r.call("GET", api.PathQueue, nil, &q)
		assert.Equal(t, 2, q.Pending+q.Sending+q.Acknowledged)
	})

	// The last holder's card pulled as the next request comes in, before
	// the agent has heard of the removal (held back here): the workflow
	// finds that card gone before it could begin with it and waits for
	// the next card instead of failing with card-removed.
	t.Run("card-pulled-before-the-workflow-used-it", func(t *testing.T) {
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		r.insert(0, "kpe-budi.json")
		r.waitReader(t, pcsctest.Slot0, func(rd api.Reader) bool { return rd.CardPresent && rd.State == api.StateAuthenticated })
		r.gate.hold()
		require.NoError(t, r.lab.Remove(0))
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
		var rs []api.Reader
		r.call("GET", api.PathReaders, nil, &rs)
		require.True(t, rs[0].CardPresent, "the agent should not know yet")

		var res api.AuthResult
		got := make(chan api.Error, 1)
		go func() {
			_, e := r.call("POST", api.PathAuth, api.AuthRequest{Service: "askes", Operator: "clerk-01", WaitSeconds: 20}, &res)
			got <- e
		}()
		for deadline := time.Now().Add(10 * time.Second); !r.logs.seen("the card left before the workflow could use it; waiting for the next card"); {
			select {
			case e := <-got:
				t.Fatalf("the workflow ended on the gone card: %+v", e)
			case <-time.After(10 * time.Millisecond):
			}
			require.True(t, time.Now().Before(deadline), "the workflow never tried the gone card")
		}
		r.gate.open()
		r.waitReader(t, pcsctest.Slot0, waitingForCard)
		r.insert(0, "kpe-budi.json")
		select {
		case e := <-got:
			require.Empty(t, e.Code, "%+v", e)
		case <-time.After(15 * time.Second):
			t.Fatal("the workflow did not end")
		}
		_, err := record.ParseCode(res.Code)
		require.NoError(t, err, res.Code)
		assert.Positive(t, res.TapToCodeMS, "the code comes from the next card, which the workflow waited for")
		require.NoError(t, r.lab.Remove(0))
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
	})

	t.Run("unknown-card", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		evs := r.events(ctx, "?lang=en")
		r.insert(0, "unknown-card.json")
		status, e := r.call("POST", api.PathAuth, api.AuthRequest{Service: "askes", Operator: "clerk-01"}, nil)
		assert.Equal(t, http.StatusUnprocessableEntity, status)
		assert.Equal(t, daemon.CodeUnknownCard, e.Code)
		assert.Contains(t, e.Message, "Kartu tidak dikenal")
		// the reader's error, and its event, in English on request
		var readers []api.Reader
		r.call("GET", api.PathReaders+"?lang=en", nil, &readers)
		require.NotEmpty(t, readers)
		require.NotNil(t, readers[0].Error)
		assert.Equal(t, "Unknown card. Use a KPE, KPE Tambahan or KTP-el.", readers[0].Error.Message)
		var failed *api.Event
		timeout := time.After(5 * time.Second)
		for failed == nil {
			select {
			case ev := <-evs:
				if ev.Type == api.EventSession && ev.Error != nil && ev.Error.Code == daemon.CodeUnknownCard {
					failed = &ev
				}
			case <-timeout:
				t.Fatal("no unknown-card event on the English stream")
			}
		}
		assert.Equal(t, "Unknown card. Use a KPE, KPE Tambahan or KTP-el.", failed.Error.Message)
		assert.Equal(t, failed.Error.Message, failed.Message)
		require.NoError(t, r.lab.Remove(0))
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
	})

	t.Run("pcscd-restarted-mid-shift", func(t *testing.T) {
		require.NoError(t, pcsctest.Stop())
		t.Cleanup(func() { _ = pcsctest.Start() })
		r.waitHealth(func(h api.Health) bool { return h.PCSC == "unavailable" })
		require.NoError(t, pcsctest.Start())
		require.NoError(t, pcsctest.WaitReaders(15*time.Second))
		r.waitHealth(samReady)
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		r.insert(0, "kpe-budi.json")
		var res api.AuthResult
		status, e := r.call("POST", api.PathAuth, api.AuthRequest{Service: "askes", Operator: "clerk-01", WaitSeconds: 10}, &res)
		require.Equal(t, 200, status, "%+v", e)
		v, err := func() (bool, error) {
			var ok bool
			require.Eventually(t, func() bool {
				vv, err := r.svc.Verify(context.Background(), res.Code)
				ok = err == nil && vv.Valid
				return ok
			}, 10*time.Second, 50*time.Millisecond)
			return ok, nil
		}()
		require.NoError(t, err)
		assert.True(t, v)
		require.NoError(t, r.lab.Remove(0))
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
	})

	t.Run("ktpel", func(t *testing.T) {
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		r.insert(0, "ktpel-siti.json")
		defer func() {
			require.NoError(t, r.lab.Remove(0))
			pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
		}()
		var res api.AuthResult
		status, e := r.call("POST", api.PathAuth, api.AuthRequest{Service: "kiosk", Operator: "clerk-01", WaitSeconds: 10}, &res)
		require.Equal(t, 200, status, "%+v", e)
		assert.Equal(t, "ktpel", res.CardKind)
		// the view never holds population data; the ASKES form is for KPE only
		var view map[string]any
		r.call("GET", api.PathCard, nil, &view)
		assert.NotContains(t, fmt.Sprint(view), "Siti")
		status, e = r.call("GET", api.PathPrefill, nil, nil)
		assert.Equal(t, http.StatusNotFound, status, "%+v", e)
		require.Eventually(t, func() bool {
			v, err := r.svc.Verify(context.Background(), res.Code)
			return err == nil && v.Valid && v.CardType == "ktpel"
		}, 10*time.Second, 50*time.Millisecond)
	})

	// The last fingerprint try answered inside the workflow (prompts):
	// asked on the event stream and in GET /v1/readers, then continued,
	// cancelled, left unanswered, or cut short by the card's removal.
	// Without prompts the request still fails with finger-last-try.
	t.Run("last-try-prompt", func(t *testing.T) {
		r.setConf(func(c *config.Config) { c.Fingerprint.Timeout = 20 * time.Second })
		t.Cleanup(func() { r.setConf(func(c *config.Config) { c.Fingerprint.Timeout = 3 * time.Second }) })
		r.insert(0, "kpe-budi.json")
		r.waitReader(t, pcsctest.Slot0, func(rd api.Reader) bool { return rd.CardPresent && rd.State == api.StateAuthenticated })
		plain := api.AuthRequest{Service: "askes", Operator: "clerk-01"}
		withPrompts := plain
		withPrompts.Prompts = true
		type answer struct {
			res    api.AuthResult
			status int
			err    api.Error
		}
		auth := func(req api.AuthRequest) <-chan answer {
			got := make(chan answer, 1)
			go func() {
				var a answer
				a.status, a.err = r.call("POST", api.PathAuth, req, &a.res)
				got <- a
			}()
			return got
		}
		ended := func(got <-chan answer) answer {
			t.Helper()
			select {
			case a := <-got:
				return a
			case <-time.After(30 * time.Second):
				t.Fatal("the workflow did not end")
			}
			return answer{}
		}
		// an impostor's finger until the card has one try left
		toLastTry := func() {
			t.Helper()
			require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerImpostor))
			for want := 4; want >= 1; want-- {
				status, e := r.call("POST", api.PathAuth, plain, nil)
				require.Equal(t, http.StatusUnprocessableEntity, status, "%+v", e)
				require.Equal(t, daemon.CodeFingerNoMatch, e.Code)
				require.Equal(t, want, e.TriesLeft)
			}
			require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		}
		recorded := func() int {
			t.Helper()
			var q api.QueueStatus
			status, e := r.call("GET", api.PathQueue, nil, &q)
			require.Equal(t, http.StatusOK, status, "%+v", e)
			return q.Pending + q.Sending + q.Acknowledged
		}
		// nextSession is the reader's next session event whose state is in states
		nextSession := func(evs <-chan api.Event, states ...string) api.Event {
			t.Helper()
			timeout := time.After(20 * time.Second)
			for {
				select {
				case ev := <-evs:
					if ev.Type == api.EventSession && ev.Reader == pcsctest.Slot0 && slices.Contains(states, ev.State) {
						return ev
					}
				case <-timeout:
					t.Fatalf("no session event %v", states)
				}
			}
		}
		answerPrompt := func(id, ans string) (int, api.Error) {
			return r.call("POST", api.PathPrompt, api.PromptRequest{Reader: pcsctest.Slot0, ID: id, Answer: ans}, nil)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()

		toLastTry()
		// without prompts, as before: finger-last-try, and no try used
		status, e := r.call("POST", api.PathAuth, plain, nil)
		require.Equal(t, http.StatusConflict, status, "%+v", e)
		assert.Equal(t, daemon.CodeFingerLastTry, e.Code)
		assert.Equal(t, 1, e.TriesLeft)

		// asked, then continued: the last try is used and the code issued
		evs := r.events(ctx)
		hctx, hcancel := context.WithCancel(ctx)
		holder := r.events(hctx, "?lang=en&audience=holder")
		before := recorded()
		got := auth(withPrompts)
		ev := nextSession(evs, api.StatePrompt)
		require.NotNil(t, ev.Prompt)
		assert.Regexp(t, `^[0-9a-f]{32}$`, ev.Prompt.ID)
		assert.Equal(t, api.PromptLastTry, ev.Prompt.Kind)
		assert.Equal(t, 1, ev.TriesLeft)
		assert.Equal(t, "kpe", ev.CardKind)
		assert.Equal(t, daemon.PromptConfirmLastTry, ev.MessageCode)
		assert.Equal(t, "Tinggal satu kesempatan sidik jari pada kartu; jika gagal, verifikasi sidik jari kartu terblokir. Konfirmasikan untuk memakainya, atau batalkan.", ev.Message)
		hev := nextSession(holder, api.StatePrompt)
		hcancel()
		assert.Equal(t, ev.Prompt, hev.Prompt)
		assert.Equal(t, "Your card has one fingerprint try left. Touch Continue to try once more, or Cancel. If it fails again, your card's fingerprint check is blocked and you must visit the office that issued your card.", hev.Message)
		var rs []api.Reader
		r.call("GET", api.PathReaders, nil, &rs)
		i := slices.IndexFunc(rs, func(rd api.Reader) bool { return rd.Name == pcsctest.Slot0 })
		require.GreaterOrEqual(t, i, 0)
		assert.Equal(t, api.StatePrompt, rs[i].State)
		assert.True(t, rs[i].Busy)
		assert.Equal(t, ev.Prompt, rs[i].Prompt)
		status, e = answerPrompt("0123456789abcdef0123456789abcdef", api.AnswerContinue)
		assert.Equal(t, http.StatusNotFound, status, "a wrong id")
		assert.Equal(t, api.CodeNotFound, e.Code)
		status, e = answerPrompt(ev.Prompt.ID, "maybe")
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, api.CodeBadRequest, e.Code)
		status, e = answerPrompt(ev.Prompt.ID, api.AnswerContinue)
		require.Equal(t, http.StatusNoContent, status, "%+v", e)
		fp := nextSession(evs, api.StateFingerprint, api.StateFailed)
		require.Equal(t, api.StateFingerprint, fp.State, "%+v", fp.Error)
		assert.Equal(t, 1, fp.TriesLeft)
		assert.Equal(t, daemon.PromptPlaceFinger, fp.MessageCode)
		a := ended(got)
		require.Equal(t, http.StatusOK, a.status, "%+v", a.err)
		_, err := record.ParseCode(a.res.Code)
		require.NoError(t, err, a.res.Code)
		assert.Equal(t, a.res.Code, nextSession(evs, api.StateRecorded).Code)
		assert.Equal(t, before+1, recorded())
		status, e = answerPrompt(ev.Prompt.ID, api.AnswerContinue)
		assert.Equal(t, http.StatusNotFound, status, "a prompt takes one answer")
		assert.Equal(t, api.CodeNotFound, e.Code)

		// asked, then cancelled: 499, nothing recorded, the last try kept
		toLastTry()
		before = recorded()
		got = auth(withPrompts)
		ev = nextSession(evs, api.StatePrompt)
		status, e = answerPrompt(ev.Prompt.ID, api.AnswerCancel)
		require.Equal(t, http.StatusNoContent, status, "%+v", e)
		a = ended(got)
		assert.Equal(t, 499, a.status)
		assert.Equal(t, daemon.CodeCancelled, a.err.Code)
		assert.Equal(t, before, recorded())
		r.waitReader(t, pcsctest.Slot0, func(rd api.Reader) bool {
			return !rd.Busy && rd.State == api.StateFailed && rd.Prompt == nil && rd.Error != nil && rd.Error.Code == daemon.CodeCancelled
		})
		status, e = r.call("POST", api.PathAuth, plain, nil)
		require.Equal(t, http.StatusConflict, status, "%+v", e)
		assert.Equal(t, daemon.CodeFingerLastTry, e.Code, "the cancelled prompt used no try")

		// left unanswered: timeout after fingerprint.timeout
		r.setConf(func(c *config.Config) { c.Fingerprint.Timeout = time.Second })
		got = auth(withPrompts)
		ev = nextSession(evs, api.StatePrompt)
		a = ended(got)
		assert.Equal(t, http.StatusGatewayTimeout, a.status)
		assert.Equal(t, daemon.CodeTimeout, a.err.Code)
		status, _ = answerPrompt(ev.Prompt.ID, api.AnswerContinue)
		assert.Equal(t, http.StatusNotFound, status, "a timed-out prompt answers nothing")
		r.setConf(func(c *config.Config) { c.Fingerprint.Timeout = 20 * time.Second })

		// the card pulled while asked
		got = auth(withPrompts)
		ev = nextSession(evs, api.StatePrompt)
		require.NoError(t, r.lab.Remove(0))
		a = ended(got)
		assert.Equal(t, http.StatusConflict, a.status)
		assert.Equal(t, daemon.CodeCardRemoved, a.err.Code)
		status, _ = answerPrompt(ev.Prompt.ID, api.AnswerContinue)
		assert.Equal(t, http.StatusNotFound, status)
		assert.Equal(t, before, recorded())
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
	})

	// No fingerprint sensor configured: health says so (a kiosk shows out
	// of service from it, not from each failed session).
	t.Run("no-sensor-in-health", func(t *testing.T) {
		r.setConf(func(c *config.Config) { c.Fingerprint.Sensor = "none" })
		t.Cleanup(func() { r.setConf(func(c *config.Config) { c.Fingerprint.Sensor = "lab" }) })
		var h api.Health
		status, e := r.call("GET", api.PathHealth, nil, &h)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Equal(t, "degraded", h.Status)
		var codes []string
		for _, p := range h.Problems {
			codes = append(codes, p.Code)
		}
		assert.Contains(t, codes, daemon.CodeNoSensor)
	})

	t.Run("missing-sam", func(t *testing.T) {
		require.NoError(t, r.lab.Remove(1))
		h := r.waitHealth(func(h api.Health) bool { return h.SAM != nil && !h.SAM.Present })
		assert.Equal(t, "degraded", h.Status)
		require.NotEmpty(t, h.Problems)
		assert.Equal(t, daemon.CodeNoSAM, h.Problems[0].Code)
		r.insert(0, "kpe-budi.json")
		status, e := r.call("POST", api.PathAuth, api.AuthRequest{Service: "askes", Operator: "clerk-01"}, nil)
		assert.Equal(t, http.StatusServiceUnavailable, status)
		assert.Equal(t, daemon.CodeNoSAM, e.Code)
		assert.Contains(t, e.Message, "SAM tidak ditemukan")

		// a card that is not a SAM in the SAM reader: that reader says why
		r.insert(1, "kpe-budi.json")
		r.waitReader(t, pcsctest.Slot1, func(rd api.Reader) bool {
			return rd.CardPresent && rd.State == api.StateFailed && rd.Error != nil && rd.Error.Code == daemon.CodeNoSAM
		})
		require.NoError(t, r.lab.Remove(1))

		// the SAM arrives: the KPE whose read failed for want of it is
		// read again, without being taken out
		r.insert(1, "sam.json")
		r.waitHealth(samReady)
		r.waitReader(t, pcsctest.Slot0, func(rd api.Reader) bool { return rd.State == api.StateAuthenticated && rd.Error == nil })
	})

	t.Run("shutdown-cancels-the-workflow-after-the-grace", func(t *testing.T) {
		r.waitHealth(samReady)
		r.setConf(func(c *config.Config) { c.Session.ShutdownGrace = time.Second })
		got := r.waitingForFinger(t, api.AuthRequest{Service: "askes", Operator: "clerk-01"})
		t0 := time.Now()
		r.stop()
		took := time.Since(t0)
		// well under the finger's 20 s wait (a loaded machine needs room
		// for the teardown after the 1 s grace)
		assert.Less(t, took, 12*time.Second, "the workflow is cancelled, not left to its finger wait")
		assert.GreaterOrEqual(t, took, time.Second, "the workflow gets the grace first")
		select {
		case e := <-got:
			assert.Equal(t, daemon.CodeCancelled, e.Code)
		case <-time.After(5 * time.Second):
			t.Fatal("the workflow did not end at shutdown")
		}
	})

	// the outbox keeps the records of the agent that stopped
	r.stop()
	st, err := r.ob.Stats()
	require.NoError(t, err)
	assert.Equal(t, 6, st.Pending+st.Sending+st.Acknowledged)
}
