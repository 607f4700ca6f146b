package uploader_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/pgtest"
	"kpe-agent/lab/labpki"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
	"kpe-agent/sync/uploader"
	"kpe-agent/sync/wire"
)

const terminal = "t-01"

var samSerial = [8]byte{0x53, 0x41, 0x4d, 0, 0, 0, 0, 1}

// rig is a terminal (outbox, stand-in SAM, TLS client certificate) and a
// back office (service over a store, served over mutual TLS).
type rig struct {
	t        testing.TB
	tlsCA    *labpki.CA
	samCA    *labpki.CA
	sam      *labpki.SAM
	ob       *outbox.Outbox
	store    backoffice.Store
	svc      *backoffice.Service
	srv      *httptest.Server
	client   *tls.Config
	prev     [32]byte
	wrap     func(http.Handler) http.Handler // set before start
	svcClock func() time.Time
}

func newRig(t testing.TB, pg bool) *rig {
	r := &rig{t: t}
	var err error
	r.tlsCA, err = labpki.NewCA("test TLS CA")
	require.NoError(t, err)
	r.samCA, err = labpki.NewCA("test SAM CA")
	require.NoError(t, err)
	r.sam, err = r.samCA.NewSAM(samSerial)
	require.NoError(t, err)
	r.ob, err = outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { r.ob.Close() })
	if pg {
		r.store, err = backoffice.OpenPostgres(context.Background(), pgtest.DB(t))
	} else {
		r.store, err = backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	}
	require.NoError(t, err)
	t.Cleanup(func() { r.store.Close() })
	cert, err := r.tlsCA.Terminal(terminal)
	require.NoError(t, err)
	r.client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: r.tlsCA.Pool()}
	return r
}

// start serves the back office on addr ("" for any port).
func (r *rig) start(addr string) {
	var err error
	r.svc, err = backoffice.New(r.store, backoffice.Config{CA: r.samCA.Pool(), Now: r.svcClock})
	require.NoError(r.t, err)
	h := r.svc.TerminalHandler(nil)
	if r.wrap != nil {
		h = r.wrap(h)
	}
	r.srv = httptest.NewUnstartedServer(h)
	if addr != "" {
		r.srv.Listener.Close()
		var l net.Listener
		require.Eventually(r.t, func() bool { l, err = net.Listen("tcp", addr); return err == nil }, 5*time.Second, 50*time.Millisecond)
		r.srv.Listener = l
	}
	srvCert, err := r.tlsCA.Server()
	require.NoError(r.t, err)
	r.srv.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: r.tlsCA.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	r.srv.StartTLS()
	r.t.Cleanup(r.srv.Close)
}

func (r *rig) uploader(mod func(*uploader.Config)) *uploader.Uploader {
	cfg := uploader.Config{URL: r.srv.URL, TLS: r.client, Certificates: [][]byte{r.sam.Cert},
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Timeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	u, err := uploader.New(r.ob, cfg)
	require.NoError(r.t, err)
	return u
}

func sampleRec(prev [32]byte) *record.Record {
	id, _ := record.NewID()
	return &record.Record{ID: id, TerminalID: terminal, SiteID: "pkm-a", OperatorID: "clerk", Service: "askes",
		CardType: record.CardKPE, CardSerial: []byte{1, 2, 3, 4}, SubjectKind: record.SubjectNIP, Subject: "196608011988031001",
		CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
		Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Pass},
		Time: time.Now(), Clock: record.ClockSynced, PrevHash: prev}
}

// add seals and appends n records.
func (r *rig) add(n int, signer record.Signer) {
	if signer == nil {
		signer = r.sam
	}
	for i := 0; i < n; i++ {
		rec := sampleRec(r.prev)
		require.NoError(r.t, record.Seal(context.Background(), rec, signer))
		_, err := r.ob.Append(rec)
		require.NoError(r.t, err)
		r.prev, _ = rec.Hash()
	}
}

func (r *rig) stats() outbox.Stats {
	st, err := r.ob.Stats()
	require.NoError(r.t, err)
	return st
}

// checkStored: the back office holds counters 1..n of the SAM, no gap, no
// chain break.
func (r *rig) checkStored(n int) {
	st, err := r.svc.Terminal(context.Background(), terminal)
	require.NoError(r.t, err)
	assert.Equal(r.t, int64(n), st.Records)
	require.Len(r.t, st.SAMs, 1)
	assert.Equal(r.t, uint32(n), st.SAMs[0].LastCounter)
	assert.Empty(r.t, st.SAMs[0].Gaps)
	assert.Zero(r.t, st.ChainBreaks)
}

func TestUploadToPostgres(t *testing.T) {
	r := newRig(t, true)
	r.start("")
	r.add(120, nil)
	u := r.uploader(func(c *uploader.Config) { c.MaxRecords = 50 })
	rep, err := u.Drain(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 3, rep.Batches, "batches of at most 50")
	assert.Equal(t, 120, rep.Accepted)
	st := r.stats()
	assert.Zero(t, st.Unsynced)
	assert.Equal(t, 120, st.Acknowledged)
	r.checkStored(120)
	assert.False(t, u.ClockSkewed())
	assert.Equal(t, uint64(120), u.Status().Accepted, "the status counts each record once, over all batches")

	// again: nothing to send
	rep, err = u.Drain(context.Background())
	require.NoError(t, err)
	assert.Zero(t, rep.Batches)
}

// Without a client certificate the TLS handshake fails and nothing is
// settled.
func TestMutualTLSRequired(t *testing.T) {
	r := newRig(t, false)
	r.start("")
	r.add(3, nil)
	u := r.uploader(func(c *uploader.Config) { c.TLS = &tls.Config{RootCAs: r.tlsCA.Pool()} })
	_, err := u.Drain(context.Background())
	require.Error(t, err)
	assert.Equal(t, 3, r.stats().Pending)
	// a server certificate from an unknown CA is refused by the terminal
	u = r.uploader(func(c *uploader.Config) {
		c.TLS = &tls.Config{Certificates: r.client.Certificates, RootCAs: x509.NewCertPool()}
	})
	_, err = u.Drain(context.Background())
	require.Error(t, err)
	assert.Equal(t, 3, r.stats().Pending)
}

// failing puts n failures of the given kind in front of the back office.
func failing(n int, kind string) (func(http.Handler) http.Handler, *atomic.Int32) {
	var seen atomic.Int32
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if int(seen.Add(1)) > n {
				next.ServeHTTP(w, req)
				return
			}
			switch kind {
			case "503":
				w.Header().Set("Retry-After", "1")
				http.Error(w, "maintenance", http.StatusServiceUnavailable)
			case "500":
				http.Error(w, "boom", http.StatusInternalServerError)
			case "reset":
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					if tc, ok := conn.(*tls.Conn); ok {
						if nc, ok := tc.NetConn().(*net.TCPConn); ok {
							nc.SetLinger(0) // RST
						}
					}
					conn.Close()
				}
			case "garbage":
				w.WriteHeader(http.StatusOK)
				io.WriteString(w, `{"results":[{"status":"maybe"}]}`)
			case "stored-then-slow":
				// the back office stores the batch but answers too late:
				// not before the terminal gave up (its timeout, whatever
				// the machine's load), with a cap in case it never does
				next.ServeHTTP(httptest.NewRecorder(), req)
				select {
				case <-req.Context().Done():
				case <-time.After(time.Minute):
				}
			}
		})
	}, &seen
}

func TestServerFailures(t *testing.T) {
	for _, kind := range []string{"503", "500", "reset", "garbage", "stored-then-slow"} {
		t.Run(kind, func(t *testing.T) {
			r := newRig(t, false)
			wrap, seen := failing(1, kind)
			r.wrap = wrap
			r.start("")
			r.add(10, nil)
			// the rig's request timeout (5 s): the failing drain only
			// meets it in "stored-then-slow", whose answer waits for it;
			// the retry below has room for a new mutual-TLS connection
			// and 10 records verified and stored under -race
			u := r.uploader(nil)
			_, err := u.Drain(context.Background())
			require.Error(t, err)
			if kind == "503" {
				var ra *uploader.RetryAfterError
				require.ErrorAs(t, err, &ra)
				assert.Equal(t, time.Second, ra.After)
			}
			st := r.stats()
			assert.Equal(t, 10, st.Pending, "nothing settled by a failed attempt")
			assert.Equal(t, 1, u.Status().Failures)

			rep, err := u.Drain(context.Background())
			require.NoError(t, err)
			if kind == "stored-then-slow" {
				assert.Equal(t, 10, rep.Duplicates, "stored on the first try: duplicates, acknowledged")
			} else {
				assert.Equal(t, 10, rep.Accepted)
			}
			assert.Zero(t, r.stats().Unsynced)
			assert.Equal(t, 0, u.Status().Failures)
			assert.Equal(t, int32(2), seen.Load())
			r.checkStored(10)
		})
	}
}

// Run backs off (capped, with Retry-After honoured) while the back office
// is away, does not spin, and drains once it is back: here it is down
// for a while, then restarted on the same address.
func TestNetworkDownThenBack(t *testing.T) {
	r := newRig(t, true)
	r.start("")
	addr := r.srv.Listener.Addr().String()
	r.srv.Close() // the back office is gone
	r.add(30, nil)
	var attempts atomic.Int32
	u := r.uploader(func(c *uploader.Config) {
		c.Proxy = func(*http.Request) (*url.URL, error) { attempts.Add(1); return nil, nil }
		c.MinBackoff, c.MaxBackoff = 20*time.Millisecond, 100*time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- u.Run(ctx) }()
	time.Sleep(1200 * time.Millisecond)
	for i := 0; i < 20; i++ {
		u.Kick() // new records while offline do not cause a burst
	}
	time.Sleep(300 * time.Millisecond)
	n := attempts.Load()
	assert.GreaterOrEqual(t, n, int32(5), "it keeps trying")
	assert.LessOrEqual(t, n, int32(100), "but not in a hot loop (backoff capped at 100 ms over 1.5 s)")
	st := u.Status()
	assert.Greater(t, st.Failures, 3)
	assert.NotEmpty(t, st.LastError)
	assert.Equal(t, 30, r.stats().Unsynced, "all kept (pending, or sending at this instant)")

	r.start(addr) // back
	require.Eventually(t, func() bool { return r.stats().Unsynced == 0 }, 10*time.Second, 20*time.Millisecond)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	r.checkStored(30)
}

// The back office goes away while a batch is in flight, and comes back.
func TestBackOfficeRestartMidBatch(t *testing.T) {
	r := newRig(t, true)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var once sync.Once
	r.wrap = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			first := false
			once.Do(func() { first = true })
			if first {
				entered <- struct{}{}
				<-release // held until the server is torn down
				return
			}
			next.ServeHTTP(w, req)
		})
	}
	r.start("")
	addr := r.srv.Listener.Addr().String()
	r.add(40, nil)
	u := r.uploader(nil)
	errc := make(chan error)
	go func() { _, err := u.Drain(context.Background()); errc <- err }()
	<-entered
	r.srv.CloseClientConnections()
	close(release)
	require.Error(t, <-errc)
	r.srv.Close()
	assert.Equal(t, 40, r.stats().Pending)

	r.wrap = nil
	r.start(addr)
	_, err := u.Drain(context.Background())
	require.NoError(t, err)
	r.checkStored(40)
}

func TestRejectedGoToDeadLetters(t *testing.T) {
	r := newRig(t, false)
	r.start("")
	r.add(2, nil)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	soft := record.NewSoftwareSigner(key, [8]byte{7}, 0)
	r.add(1, soft)
	u := r.uploader(nil)
	rep, err := u.Drain(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Accepted)
	assert.Equal(t, 1, rep.Rejected)
	dead, err := r.ob.Dead()
	require.NoError(t, err)
	require.Len(t, dead, 1)
	assert.Equal(t, wire.ReasonSoftwareSigner, dead[0].Reason)
	assert.Zero(t, r.stats().Unsynced)
}

// A back office that says 413 gets smaller batches.
func TestBatchTooLargeShrinks(t *testing.T) {
	r := newRig(t, false)
	r.wrap = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			req.Body = io.NopCloser(&byteReader{b: body})
			if len(body) > 1800 {
				http.Error(w, "too large", http.StatusRequestEntityTooLarge)
				return
			}
			next.ServeHTTP(w, req)
		})
	}
	r.start("")
	r.add(16, nil)
	u := r.uploader(func(c *uploader.Config) { c.MaxRecords = 16 })
	rep, err := u.Drain(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 16, rep.Accepted)
	assert.Greater(t, rep.Batches, 1)
}

type byteReader struct {
	b []byte
	i int
}

func (r *byteReader) Read(p []byte) (int, error) {
	if r.i >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.i:])
	r.i += n
	return n, nil
}

// The terminal's clock is an hour behind: the answer says so.
func TestClockSkewReported(t *testing.T) {
	r := newRig(t, false)
	r.svcClock = func() time.Time { return time.Now().Add(time.Hour) }
	r.start("")
	r.add(1, nil)
	u := r.uploader(nil)
	_, err := u.Drain(context.Background())
	require.NoError(t, err)
	assert.True(t, u.ClockSkewed())
	assert.InDelta(t, time.Hour.Seconds(), u.Status().ClockSkew.Seconds(), 60)
}

// Requests go through the configured proxy (HTTPS_PROXY by default) with
// CONNECT; mutual TLS runs end to end through the tunnel.
func TestThroughProxy(t *testing.T) {
	r := newRig(t, false)
	r.start("")
	var connects atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		connects.Add(1)
		up, err := net.Dial("tcp", req.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		// take the connection first, then answer on it: no header left in
		// net/http's buffers, and bytes the client sent early are in brw
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			up.Close()
			return
		}
		if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			up.Close()
			conn.Close()
			return
		}
		go func() { io.Copy(up, brw); up.Close() }()
		io.Copy(conn, up)
		conn.Close()
	}))
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	r.add(5, nil)
	u := r.uploader(func(c *uploader.Config) { c.Proxy = http.ProxyURL(pu) })
	rep, err := u.Drain(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 5, rep.Accepted)
	assert.GreaterOrEqual(t, connects.Load(), int32(1))
}

func TestBadURL(t *testing.T) {
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "o.db"), outbox.Options{})
	require.NoError(t, err)
	defer ob.Close()
	for _, u := range []string{"", "ftp://x", "https://", "::"} {
		_, err := uploader.New(ob, uploader.Config{URL: u})
		assert.Error(t, err, u)
	}
}

// A Drain waiting behind another one (a slow "sync now") gives up when its
// own context ends: the agent's last attempt at shutdown is bounded.
func TestDrainWaitIsBounded(t *testing.T) {
	r := newRig(t, false)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	r.wrap = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
			h.ServeHTTP(w, req)
		})
	}
	r.start("")
	r.add(3, nil)
	u := r.uploader(nil)
	first := make(chan error, 1)
	go func() { _, err := u.Drain(context.Background()); first <- err }()
	<-entered // the first Drain is in its batch
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err := u.Drain(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(t0), 3*time.Second)
	close(release)
	require.NoError(t, <-first)
	r.checkStored(3)
}
