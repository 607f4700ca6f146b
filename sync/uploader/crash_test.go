package uploader_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/lab/labpki"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
	"kpe-agent/sync/uploader"
)

const crashChildEnv = "KPE_UPLOAD_CRASH_CHILD"

// closedTime is always ready: a kill now.
var closedTime = func() <-chan time.Time { c := make(chan time.Time); close(c); return c }()

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

// childSetup is what the parent hands the child: where the outbox and the
// back office are, and the stand-in SAM's and the terminal's keys.
type childSetup struct {
	Outbox     string `json:"outbox"`
	URL        string `json:"url"`
	SAMKey     []byte `json:"sam_key"` // PKCS#8
	SAMCert    []byte `json:"sam_cert"`
	ClientCert []byte `json:"client_cert"`
	ClientKey  []byte `json:"client_key"`
	TLSCA      []byte `json:"tls_ca"`
}

// crashChild appends records, printing "ok <counter>" once Append returned
// (the moment the clerk would see the code), while its uploader sends
// them, and "acked" once its uploader has settled a first acknowledged
// batch; the parent kills it with SIGKILL at a random moment. The stand-in
// SAM continues from the outbox's last counter (a real SAM persists its
// own; a record signed but never committed is then signed again here
// rather than left as a gap, which the back-office tests cover).
func crashChild(dir string) {
	fail := func(err error) { fmt.Println("error", err); os.Exit(2) }
	raw, err := os.ReadFile(filepath.Join(dir, "setup.json"))
	if err != nil {
		fail(err)
	}
	var s childSetup
	if err := json.Unmarshal(raw, &s); err != nil {
		fail(err)
	}
	ob, err := outbox.Open(s.Outbox, outbox.Options{})
	if err != nil {
		fail(err)
	}
	var prev [32]byte
	var counter uint32
	if last, err := ob.Last(); err != nil {
		fail(err)
	} else if last != nil {
		prev, _ = last.Hash()
		counter = last.Counter
	}
	k, err := x509.ParsePKCS8PrivateKey(s.SAMKey)
	if err != nil {
		fail(err)
	}
	sam := labpki.SAMFrom(k.(*ecdsa.PrivateKey), s.SAMCert, samSerial, counter)
	ck, err := x509.ParsePKCS8PrivateKey(s.ClientKey)
	if err != nil {
		fail(err)
	}
	roots := x509.NewCertPool()
	ca, err := x509.ParseCertificate(s.TLSCA)
	if err != nil {
		fail(err)
	}
	roots.AddCert(ca)
	u, err := uploader.New(ob, uploader.Config{URL: s.URL, Certificates: [][]byte{s.SAMCert}, MaxRecords: 20,
		TLS:        &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{s.ClientCert}, PrivateKey: ck}}, RootCAs: roots},
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		fail(err)
	}
	go u.Run(context.Background())
	w := bufio.NewWriter(os.Stdout)
	acked := false
	for {
		if st := u.Status(); !acked && st.Accepted+st.Duplicates > 0 {
			// the status counts a batch after the outbox settled it
			fmt.Fprintln(w, "acked")
			acked = true
		}
		rec := sampleRec(prev)
		if err := record.Seal(context.Background(), rec, sam); err != nil {
			fail(err)
		}
		if _, err := ob.Append(rec); err != nil {
			fail(err)
		}
		prev, _ = rec.Hash()
		fmt.Fprintln(w, "ok", rec.Counter)
		w.Flush()
		u.Kick()
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
	}
}

// Kill -9 the terminal while it appends and uploads, again and again;
// afterwards every record it reported saved is in PostgreSQL exactly once
// and the counters run without a gap. 20 kills in make test,
// KPE_SOAK_ITERATIONS (500) in make soak.
func TestKill9DuringUpload(t *testing.T) {
	iterations := 20
	if s := os.Getenv("KPE_SOAK_ITERATIONS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		iterations = n
	}
	r := newRig(t, true)
	r.start("")
	dir := t.TempDir()
	samKey, err := x509.MarshalPKCS8PrivateKey(r.sam.Key)
	require.NoError(t, err)
	clientKey, err := x509.MarshalPKCS8PrivateKey(r.client.Certificates[0].PrivateKey)
	require.NoError(t, err)
	obPath := filepath.Join(dir, "outbox.db")
	setup := childSetup{Outbox: obPath, URL: r.srv.URL, SAMKey: samKey, SAMCert: r.sam.Cert,
		ClientCert: r.client.Certificates[0].Certificate[0], ClientKey: clientKey, TLSCA: r.tlsCA.Cert.Raw}
	raw, err := json.Marshal(setup)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "setup.json"), raw, 0o600))

	reported := map[uint32]bool{}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for i := 0; i < iterations; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// The timer starts at the first record saved, not at the start: a
		// loaded machine can spend the whole window starting the process.
		// Every other child is killed only after its first acknowledged
		// batch (still at a random point of its uploads): on a loaded
		// machine a child can otherwise die before any upload came back,
		// every time, and the run proves nothing about kills mid-upload.
		afterAck := i%2 == 1
		var kill, noAck <-chan time.Time
		started, killed := false, false
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				if c, ok := strings.CutPrefix(l, "ok "); ok {
					n, err := strconv.ParseUint(c, 10, 32)
					require.NoError(t, err)
					reported[uint32(n)] = true
					if !started {
						started = true
						if afterAck {
							noAck = time.After(time.Minute)
						} else {
							kill = time.After(time.Duration(30+rng.IntN(250)) * time.Millisecond)
						}
					}
				} else if l == "acked" {
					if afterAck && !killed && kill == nil {
						noAck = nil
						kill = time.After(time.Duration(rng.IntN(250)) * time.Millisecond)
					}
				} else {
					t.Fatalf("child: %s", l)
				}
			case <-noAck:
				t.Errorf("child %d: no batch acknowledged within a minute of its first record", i)
				noAck, kill = nil, closedTime
			case <-kill:
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
				kill, killed = nil, true
			}
		}
		cmd.Wait()
	}

	// what is left goes up now
	ob, err := outbox.Open(obPath, outbox.Options{})
	require.NoError(t, err)
	defer ob.Close()
	before, err := ob.Stats()
	require.NoError(t, err)
	assert.NotZero(t, before.Acknowledged, "the children uploaded while they ran (kills landed during uploads)")
	u, err := uploader.New(ob, uploader.Config{URL: r.srv.URL, TLS: r.client, Certificates: [][]byte{r.sam.Cert}})
	require.NoError(t, err)
	_, err = u.Drain(context.Background())
	require.NoError(t, err)
	st, err := ob.Stats()
	require.NoError(t, err)
	assert.Zero(t, st.Unsynced)
	assert.Zero(t, st.Dead)

	pg := r.store.(*backoffice.PGStore).Pool()
	var n, distinct, maxC int64
	require.NoError(t, pg.QueryRow(context.Background(),
		"SELECT count(*), count(DISTINCT counter), coalesce(max(counter), 0) FROM records WHERE sam_serial = $1", samSerial[:]).Scan(&n, &distinct, &maxC))
	assert.Equal(t, n, distinct, "no record twice")
	assert.Equal(t, maxC, n, "counters 1..N without a gap")
	for c := range reported {
		var one int
		require.NoError(t, pg.QueryRow(context.Background(), "SELECT count(*) FROM records WHERE sam_serial = $1 AND counter = $2", samSerial[:], int64(c)).Scan(&one))
		require.Equal(t, 1, one, "record %d was reported saved", c)
	}
	r.checkStored(int(n))
	t.Logf("%d kills: %d records reported saved, %d uploaded by the children, %d in PostgreSQL in the end, none lost or doubled, no gap",
		iterations, len(reported), before.Acknowledged, n)
	require.NotEmpty(t, reported)
}
