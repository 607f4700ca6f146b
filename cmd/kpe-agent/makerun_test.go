package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/agent/config"
	"kpe-agent/internal/purse"
	"kpe-agent/internal/systest"
	"kpe-agent/lab/cardsim"
	_ "kpe-agent/lab/cardsim/samapp"
	"kpe-agent/lab/labpki"
	"kpe-agent/lab/labset"
	"kpe-agent/lab/pcsctest"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/issuer"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// TestMakeRunSampleCards is `make run` with every sample card: the
// kpe-agent binary with configs/lab.yaml and the per-run files that
// scripts/run-lab.sh names through KPE_* variables, the card lab on
// pcscd's vpcd readers (the lab SAM in slot 1, as the script puts it),
// the lab's fingerprint sensor and the back office on its embedded
// store. For each card of testdata/cards/lab/lab.json it puts the card in
// the card reader and the finger docs/card-lab.md names on the sensor,
// runs an ASKES authentication through the local API and checks the
// answer against the doc's "In make run" table: a code the back office
// verifies, or the API error code. A card without a row, or a row
// without a card, fails.
//
// Only the listening ports differ from make run (the agent's API, the
// card lab's control URL and the back office get free loopback ports, on
// the hosts configs/lab.yaml names), so a running lab is not disturbed.
func TestMakeRunSampleCards(t *testing.T) {
	labDir := pcsctest.RepoPath("testdata/cards/lab")
	m, err := labset.LoadManifest(labDir)
	require.NoError(t, err)
	rows := makeRunTable(t, pcsctest.RepoPath("docs/card-lab.md"))
	checkTableCoversLab(t, m, labDir, rows)
	lt := startLabTerminal(t)
	cfg, lab, bo, a := lt.cfg, lt.lab, lt.bo, lt.agent

	for _, c := range m.Cards {
		name := imageName(c.Image)
		row := rows[name]
		t.Run(name, func(t *testing.T) {
			a.swap(t, lab, c.Image)
			require.NoError(t, lab.PlaceFinger(0, row.finger))
			var res api.AuthResult
			status, e := a.call(t, "POST", api.PathAuth, api.AuthRequest{Service: "askes", Operator: "lab-test", WaitSeconds: 10}, &res)
			if row.answer != answerCode {
				require.GreaterOrEqual(t, status, 400, "docs/card-lab.md says %s answers %s; it gave a code %+v", name, row.answer, res)
				require.Equal(t, row.answer, e.Code, "docs/card-lab.md says %s answers %s (%s); the agent: %d %+v", name, row.answer, row.why, status, e)
				return
			}
			require.Equal(t, http.StatusOK, status, "docs/card-lab.md says %s gets a code (%s); the agent: %+v", name, row.why, e)
			_, err := record.ParseCode(res.Code)
			require.NoError(t, err, res.Code)
			require.Equal(t, c.Kind, res.CardKind)
			// as make run checks its code: the back office verifies it
			var v *wire.Verdict
			require.Eventually(t, func() bool {
				got, err := bo.Verify(context.Background(), res.Code)
				if err != nil || !got.Valid {
					return false
				}
				v = got
				return true
			}, 20*time.Second, 50*time.Millisecond, "the back office does not verify %s's code %s", name, res.Code)
			require.Equal(t, cfg.Terminal.ID, v.TerminalID)
			require.Equal(t, "askes", v.Service)
			// an inconsistent identifier is recorded, not refused
			identifiers := "pass"
			if c.Expect == "identifiers-inconsistent" {
				identifiers = "fail: " + c.Expect
			}
			require.Equal(t, wire.Checks{CardAuth: "pass", IssuerSig: "pass", Identifiers: identifiers, Fingerprint: "pass"}, v.Checks)
		})
	}
}

// labTerminal is the terminal `make run` starts (TestMakeRunSampleCards
// says how it differs), running: the agent's binary on configs/lab.yaml,
// the card lab with the lab SAM in slot 1 and ready, the back office.
type labTerminal struct {
	labDir   string
	manifest *labset.Manifest
	cfg      *config.Config
	lab      *cardsim.Lab
	bo       *backoffice.Service
	store    *backoffice.BoltStore
	agent    *agentProc
}

// startLabTerminal starts the terminal of make run (TestMakeRunSampleCards)
// and waits until its SAM is ready; everything stops when t ends.
func startLabTerminal(t testing.TB) *labTerminal { return startLabTerminalWith(t, labOptions{}) }

// labOptions vary the terminal of startLabTerminalWith.
type labOptions struct {
	// issuer signs renewal offers, trusted with issuerRoots (nil: the
	// back office issues none)
	issuer      issuer.IssuerSigner
	issuerRoots *x509.CertPool
	// terminalHandler wraps the back office's terminal listener
	terminalHandler func(http.Handler) http.Handler
	// purseKeys: the back office checks card proofs with them (nil: unchecked)
	purseKeys *purse.Keys
}

// startLabTerminalWith is startLabTerminal with o.
func startLabTerminalWith(t testing.TB, o labOptions) *labTerminal {
	t.Helper()
	pcsctest.Require(t)
	repo := pcsctest.RepoPath(".")
	labDir := filepath.Join(repo, "testdata/cards/lab")
	m, err := labset.LoadManifest(labDir)
	require.NoError(t, err)

	// the per-run files, where run-lab.sh's variables point them
	state := t.TempDir()
	const token = "make-run-test-token-0123456789abcdef"
	env := runLabFiles(t, filepath.Join(repo, "scripts/run-lab.sh"), state, token)
	cfgFile := filepath.Join(repo, "configs/lab.yaml")
	cfg, err := config.Load(config.Source{File: cfgFile, Environ: env})
	require.NoError(t, err, "configs/lab.yaml with run-lab.sh's variables")
	require.True(t, cfg.Terminal.Lab)
	require.Equal(t, "lab", cfg.Fingerprint.Sensor)
	require.Equal(t, config.PseudonymSAM, cfg.KTPel.Pseudonym)
	require.Empty(t, cfg.SAM.NIKKeyFile, "make run sets no pseudonym key file: the lab SAM has the key")
	require.Equal(t, []string{pcsctest.Slot1}, cfg.Readers.SAM, "run-lab.sh puts the lab SAM in slot 1")
	pki, err := labpki.Write(filepath.Join(state, "pki"), cfg.Terminal.ID)
	require.NoError(t, err)

	// the card lab: its control channel serves the fingerprint sensor
	lab := pcsctest.Lab(t)
	labSrv := serveOn(t, hostOf(t, cfg.Fingerprint.LabURL), lab.Handler(), nil)

	// the back office on its embedded store, terminals over mTLS
	samCA, err := m.Roots(labDir, "backoffice")
	require.NoError(t, err)
	store, err := backoffice.OpenBolt(filepath.Join(state, "backoffice.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	bo, err := backoffice.New(store, backoffice.Config{CA: samCA, Issuer: o.issuer, IssuerRoots: o.issuerRoots, PurseKeys: o.purseKeys})
	require.NoError(t, err)
	var terminal http.Handler = bo.TerminalHandler(nil)
	if o.terminalHandler != nil {
		terminal = o.terminalHandler(terminal)
	}
	srvCert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	require.NoError(t, err)
	clients, err := labpki.LoadPool(pki.TLSCA)
	require.NoError(t, err)
	boSrv := serveOn(t, hostOf(t, cfg.Sync.URL), terminal,
		&tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: clients, ClientAuth: tls.RequireAndVerifyClientCert})

	// the agent: the binary make run starts, on configs/lab.yaml
	apiHost, _, err := net.SplitHostPort(cfg.API.Listen)
	require.NoError(t, err)
	listen := freePort(t, apiHost)
	env = append(env, "KPE_CONFIG="+cfgFile, "KPE_FINGERPRINT_LAB_URL="+labSrv, "KPE_SYNC_URL="+boSrv, "KPE_API_LISTEN="+listen)
	a := startAgent(t, state, env, "http://"+listen, token)
	lt := &labTerminal{labDir: labDir, manifest: m, cfg: cfg, lab: lab, bo: bo, agent: a, store: store}

	pcsctest.Insert(t, lab, 1, "lab/cards/sam.json")
	a.waitHealth(t, func(h api.Health) bool { return h.SAM != nil && h.SAM.Present && h.SAM.State == "active" })
	return lt
}

// The parts of TestMakeRunSampleCards that need no pcscd, so that they
// run everywhere: docs/card-lab.md's table covers lab.json's cards, and
// configs/lab.yaml loads with run-lab.sh's variables into a lab terminal
// with the KTP-el secrets and the lab sensor; the lab SAM computes the
// KTP-el pseudonyms (no key file).
func TestMakeRunConfiguration(t *testing.T) {
	repo := pcsctest.RepoPath(".")
	labDir := filepath.Join(repo, "testdata/cards/lab")
	m, err := labset.LoadManifest(labDir)
	require.NoError(t, err)
	checkTableCoversLab(t, m, labDir, makeRunTable(t, filepath.Join(repo, "docs/card-lab.md")))

	state := t.TempDir()
	env := runLabFiles(t, filepath.Join(repo, "scripts/run-lab.sh"), state, "token")
	cfg, err := config.Load(config.Source{File: filepath.Join(repo, "configs/lab.yaml"), Environ: env})
	require.NoError(t, err)
	require.True(t, cfg.Terminal.Lab)
	require.Equal(t, "lab", cfg.Fingerprint.Sensor)
	require.Equal(t, config.PseudonymSAM, cfg.KTPel.Pseudonym)
	require.Empty(t, cfg.SAM.NIKKeyFile, "make run sets no pseudonym key file: the lab SAM has the key")
	for key, file := range map[string]string{"sam.activation_code_file": cfg.SAM.ActivationCodeFile,
		"sam.ktp_secrets_file": cfg.SAM.KTPSecretsFile, "api.token_file": cfg.API.TokenFile} {
		require.NotEmpty(t, file, "make run sets no %s", key)
		_, err := config.ReadSecret(file)
		require.NoError(t, err, key)
	}
	// the agent reads what the script wrote from lab.json: the activation
	// code and the two KTP-el installation secrets
	f, err := loadSecrets(cfg)
	require.NoError(t, err)
	defer f.wipe()
	require.Equal(t, m.SAM.ActivationCode, string(f.samCode))
	require.Equal(t, [][]byte{[]byte(m.SAM.KTPSecret1), []byte(m.SAM.KTPSecret2)}, f.ktpSecrets)
}

// answerCode is the answer column's word for an authentication code.
const answerCode = "code"

// makeRunRow is one row of docs/card-lab.md's "In make run" table.
type makeRunRow struct {
	finger string // the lab sensor's mode: genuine, impostor or poor
	answer string // answerCode or an API error code
	why    string
}

// makeRunTable parses the table under the heading "In `make run`" of
// docs/card-lab.md: | image | finger | answer | why |, by image name.
func makeRunTable(t *testing.T, doc string) map[string]makeRunRow {
	t.Helper()
	raw, err := os.ReadFile(doc)
	require.NoError(t, err)
	unquote := func(s string) string { return strings.Trim(strings.TrimSpace(s), "`") }
	var header []string
	rows := map[string]makeRunRow{}
	inSection, inTable := false, false
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if h, ok := strings.CutPrefix(line, "## "); ok {
			if inSection {
				break
			}
			inSection = strings.ReplaceAll(h, "`", "") == "In make run"
			continue
		}
		if !inSection {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		cells := strings.Split(strings.Trim(line, "|"), "|")
		switch {
		case header == nil:
			for _, c := range cells {
				header = append(header, unquote(c))
			}
			require.Equal(t, []string{"image", "finger", "answer", "why"}, header, "%s: the In make run table's columns", doc)
			continue
		case strings.Trim(line, "|-: ") == "":
			continue // the separator
		}
		require.Len(t, cells, len(header), "%s: %s", doc, line)
		r := makeRunRow{finger: unquote(cells[1]), answer: unquote(cells[2]), why: strings.TrimSpace(cells[3])}
		require.Contains(t, []string{cardsim.FingerGenuine, cardsim.FingerImpostor, cardsim.FingerPoor}, r.finger, "%s: %s", doc, line)
		require.Regexp(t, `^[a-z0-9-]+$`, r.answer, "%s: %s: the answer is code or an API error code", doc, line)
		require.NotEmpty(t, r.why, "%s: %s: say why", doc, line)
		for _, img := range strings.Split(cells[0], ",") {
			img = unquote(img)
			_, dup := rows[img]
			require.False(t, dup, "%s: %s has two rows", doc, img)
			rows[img] = r
		}
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, rows, "%s: no table under the heading \"## In `make run`\"", doc)
	return rows
}

// checkTableCoversLab: every card image of the lab is in the manifest,
// every manifest card has a row, and every row a card.
func checkTableCoversLab(t *testing.T, m *labset.Manifest, labDir string, rows map[string]makeRunRow) {
	t.Helper()
	images, err := filepath.Glob(filepath.Join(labDir, "cards", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, images)
	var listed []string
	for _, c := range m.Cards {
		listed = append(listed, imageName(c.Image))
	}
	for _, img := range images {
		name := strings.TrimSuffix(filepath.Base(img), ".json")
		require.Contains(t, listed, name, "testdata/cards/lab/cards/%s.json is not in lab.json", name)
	}
	for _, name := range listed {
		_, ok := rows[name]
		require.True(t, ok, "docs/card-lab.md's In make run table has no row for %s: say what the agent answers", name)
	}
	for name := range rows {
		require.Contains(t, listed, name, "docs/card-lab.md's In make run table has a row for %s, which lab.json does not list", name)
	}
}

func imageName(image string) string { return strings.TrimSuffix(filepath.Base(image), ".json") }

// runLabFiles makes the per-run files scripts/run-lab.sh points the
// agent (and the card lab) at with KPE_*="$STATE/..." variables, in
// state, and returns those variables. The secrets the script takes from
// lab.json are made as the script makes them: its `kpe-cardsim secrets
// --lab $LAB --out "$STATE/DIR"` line by the function that command runs
// (labset's WriteSecrets), and any line that reads $LAB/lab.json itself
// with bash; the other files as the script makes them. A variable the
// script sets and this test does not know fails: the test must learn
// what that file holds.
func runLabFiles(t testing.TB, script, state string, token string) []string {
	t.Helper()
	raw, err := os.ReadFile(script)
	require.NoError(t, err)
	repo := pcsctest.RepoPath(".")
	lab := regexp.MustCompile(`(?m)^LAB=(\S+)$`).FindStringSubmatch(string(raw))
	require.NotNil(t, lab, "%s: no LAB=... line", script)
	fromLab := map[string]bool{}
	writes := regexp.MustCompile(`>"\$STATE/([^"]+)"\s*$`)
	cardsimSecrets := regexp.MustCompile(`kpe-cardsim secrets --lab \$LAB --out "\$STATE/([^"]+)"`)
	for _, line := range strings.Split(string(raw), "\n") {
		if w := cardsimSecrets.FindStringSubmatch(line); w != nil {
			m, err := labset.LoadManifest(filepath.Join(repo, lab[1]))
			require.NoError(t, err)
			f, err := m.WriteSecrets(filepath.Join(state, filepath.FromSlash(w[1])))
			require.NoError(t, err, "%s: %s", script, line)
			for _, p := range []string{f.SAMCode, f.KTPSecrets} {
				rel, err := filepath.Rel(state, p)
				require.NoError(t, err)
				fromLab[filepath.ToSlash(rel)] = true
			}
			continue
		}
		w := writes.FindStringSubmatch(line)
		if w == nil || !strings.Contains(line, "$LAB/lab.json") {
			continue
		}
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", "umask 077; "+line)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "LAB="+lab[1], "STATE="+state)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s: %s", script, line, out)
		fromLab[w[1]] = true
	}
	nik := make([]byte, 32)
	_, err = rand.Read(nik)
	require.NoError(t, err)
	secret := func(content string) func(string) {
		return func(p string) { require.NoError(t, os.WriteFile(p, []byte(content), 0o600)) }
	}
	madeByScript := func(p string) {
		_, err := os.Stat(p)
		require.NoError(t, err, "%s does not make it from $LAB/lab.json", script)
	}
	files := map[string]func(path string){
		"api-token":           secret(token),
		"secrets/sam-code":    madeByScript, // the activation code
		"secrets/ktp-secrets": madeByScript, // the two KTP-el installation secrets
		"nik-key":             secret(hex.EncodeToString(nik)),
		"outbox.db":           func(string) {}, // the agent creates it
		// the lab SAMs' state
		"cardsim": func(p string) { require.NoError(t, os.Mkdir(p, 0o700)) },
		// kpe-cardsim pki writes these (the caller: labpki.Write)
		"pki/terminal.pem": func(string) {}, "pki/terminal-key.pem": func(string) {}, "pki/tls-ca.pem": func(string) {},
	}
	var env []string
	seen := map[string]bool{}
	for _, mt := range regexp.MustCompile(`\b(KPE_[A-Z0-9_]+)="\$STATE/([^"]+)"`).FindAllStringSubmatch(string(raw), -1) {
		name, file := mt[1], mt[2]
		if seen[name] {
			continue
		}
		seen[name] = true
		create, ok := files[file]
		require.True(t, ok, "%s sets %s=\"$STATE/%s\": teach %s what that file holds", script, name, file, t.Name())
		p := filepath.Join(state, filepath.FromSlash(file))
		if !fromLab[file] {
			create(p)
		}
		env = append(env, name+"="+p)
		if name == "KPE_CARDSIM_STATE_DIR" {
			t.Setenv(name, p) // the card lab runs in this process
		}
	}
	require.NotEmpty(t, env, "%s sets no KPE_* variable to a file of its state directory", script)
	return env
}

func hostOf(t testing.TB, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	require.NotEmpty(t, u.Hostname(), rawURL)
	return u.Hostname()
}

// freePort returns host:port with a port free at the time of the call.
func freePort(t testing.TB, host string) string {
	t.Helper()
	// Below the kernel's ephemeral range where it is known: the kill tests
	// start the agent on this port again a hundred times, and between two
	// runs an outgoing connection of another package could be given it as
	// its local port (the agent's bind then fails with EADDRINUSE).
	// (from 20000: the lab's and the defaults' fixed ports are lower)
	if low := ephemeralLow(); low > 20000 {
		for range 64 {
			p := 20000 + mrand.IntN(low-20000)
			if ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p))); err == nil {
				addr := ln.Addr().String()
				require.NoError(t, ln.Close())
				return addr
			}
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// ephemeralLow is the lowest port Linux gives outgoing connections, or 0.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return n
}

// serveOn serves h on a free port of host (over TLS when cfg is not nil)
// until the test ends, and returns its URL.
func serveOn(t testing.TB, host string, h http.Handler, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	if cfg != nil {
		srv.TLS = cfg
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv.URL
}

// agentProc is the kpe-agent binary running `run`.
type agentProc struct {
	base, token string
	pid         int
	log         *systest.Buffer
	bin         string
	env         []string
	done        chan error // the process's exit
	killed      bool       // by kill: its exit is no failure
	owner       testing.TB // the test the agent lives for (restart's t may be a subtest)
}

// startAgent builds kpe-agent and runs `kpe-agent run` with env added to
// this process's environment; it is stopped (SIGTERM) when the test
// ends, and its log shown if the test failed.
func startAgent(t testing.TB, dir string, env []string, base, token string) *agentProc {
	t.Helper()
	bin := filepath.Join(dir, "kpe-agent")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	a := &agentProc{base: base, token: token, log: &systest.Buffer{}, bin: bin, env: env, owner: t}
	a.run(t)
	return a
}

// kill ends the agent with SIGKILL, as a power cut or the OOM killer
// would: no cleanup of its own runs.
func (a *agentProc) kill(t testing.TB) {
	t.Helper()
	a.killed = true
	require.NoError(t, syscall.Kill(a.pid, syscall.SIGKILL))
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("kpe-agent (pid %d) does not die of SIGKILL", a.pid)
	}
}

// restart runs the binary again (after kill), on the same files and
// address.
func (a *agentProc) restart(t testing.TB) {
	t.Helper()
	require.True(t, a.killed, "restart after kill")
	a.killed = false
	a.run(t)
}

// run starts `kpe-agent run` and waits until its API answers.
func (a *agentProc) run(t testing.TB) {
	t.Helper()
	cmd := exec.Command(a.bin, "run")
	cmd.Env = append(os.Environ(), a.env...)
	cmd.Stdout, cmd.Stderr = a.log, a.log
	require.NoError(t, cmd.Start())
	a.pid = cmd.Process.Pid
	done := make(chan error, 1)
	a.done = done
	go func() { done <- cmd.Wait() }()
	owner := a.owner
	owner.Cleanup(func() {
		t := owner
		if a.killed && a.done == done {
			return // killed, and not started again
		}
		if a.done != done {
			return // killed and started again: the next run's cleanup stops it
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("kpe-agent run: %v", err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("kpe-agent did not stop within 30 s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("kpe-agent's log:\n%s", a.log.String())
		}
	})
	base := a.base
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("kpe-agent exited: %v\n%s", err, a.log.String())
		default:
		}
		if resp, err := http.Get(base + api.PathHealth); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		require.True(t, time.Now().Before(deadline), "kpe-agent's API does not answer")
	}
}

// call makes an API request with the token, decoding a success into out;
// it returns the status and the error of a failure.
func (a *agentProc) call(t testing.TB, method, path string, body, out any) (int, api.Error) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode >= 400 {
		var eb api.ErrorBody
		require.NoError(t, json.Unmarshal(raw, &eb), "%s", raw)
		return resp.StatusCode, eb.Error
	}
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out), "%s", raw)
	}
	return resp.StatusCode, api.Error{}
}

func (a *agentProc) waitHealth(t testing.TB, ok func(api.Health) bool) {
	t.Helper()
	var h api.Health
	require.Eventually(t, func() bool {
		h = api.Health{}
		a.call(t, "GET", api.PathHealth, nil, &h)
		return ok(h)
	}, 30*time.Second, 50*time.Millisecond, "health: %+v", h)
}

// reader returns the card reader's state as the agent sees it.
func (a *agentProc) reader(t testing.TB) api.Reader {
	t.Helper()
	var rs []api.Reader
	a.call(t, "GET", api.PathReaders, nil, &rs)
	i := slices.IndexFunc(rs, func(r api.Reader) bool { return r.Name == pcsctest.Slot0 })
	require.GreaterOrEqual(t, i, 0, "no %s among %+v", pcsctest.Slot0, rs)
	return rs[i]
}

// swap puts the lab card image (relative to testdata/cards/lab) into the
// card reader, as POST /v1/slots/0/swap does, and waits until the agent
// has heard of the removal and then read (or failed to read) the card.
func (a *agentProc) swap(t testing.TB, lab *cardsim.Lab, image string) {
	t.Helper()
	st, err := lab.SlotStatus(0)
	require.NoError(t, err)
	if st.Inserted {
		require.NoError(t, lab.Remove(0))
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
		require.Eventually(t, func() bool { return !a.reader(t).CardPresent }, 10*time.Second, 20*time.Millisecond, "the agent missed the removal")
	}
	pcsctest.Insert(t, lab, 0, filepath.Join("lab", image))
	var r api.Reader
	require.Eventually(t, func() bool {
		r = a.reader(t)
		return r.CardPresent && (r.State == api.StateAuthenticated || r.State == api.StateFailed)
	}, 20*time.Second, 20*time.Millisecond, "the agent did not read %s: %+v", image, r)
}
