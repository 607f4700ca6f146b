package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
	"kpe-agent/internal/sod"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/cardsim/kpeapp"
	"kpe-agent/lab/labset"
	"kpe-agent/lab/pcsctest"
	hsmsigner "kpe-agent/lab/softhsm/signer"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/wire"
)

// budiNIP is the NIP of the lab's kpe-budi.json.
const budiNIP = "197208172000031002"

// TestRenewalAgentKilledAtEveryStep kills the agent at every step of a
// card data renewal (docs/renewal.md, "Tears and interruptions"): the
// real kpe-agent binary on configs/lab.yaml (startLabTerminal), the card
// lab on pcscd/vpcd, the back office on its embedded store (bbolt, as in
// make run) with a renewal issuer whose key was generated in a SoftHSM2
// token and certified by the lab's BKN renewal root, and an update staged
// for kpe-budi (a fresh one for every step).
//
// One run per step, each on a fresh kpe-budi card: the clerk authenticates
// the holder (card + finger), asks for the offer, and applies it; the
// agent is killed (SIGKILL) exactly at the step, made deterministic by a
// lab fault that holds one APDU (the card's for the write and the
// read-back, the SAM's SIGN RECORD) or by a gate on the back office's
// records endpoint (the upload). Then the agent starts again, the card is
// presented again with the finger, the agent resumes (the card holds the
// new data: the missing renewal record is written) or reports (old data:
// interrupted, offered again), and everything is synced. Checked each
// time: the card verifies (issuer signature, every group's hash) and holds
// all the old data or all the new, with the sequence to match; the
// back office's update is applied (by the run's renewal record) iff the
// card holds the new data, and staged otherwise; every record the agent
// made reached the back office once (its count and the SAM's counter add
// up, the only gap a signature the SAM made for a record the kill lost,
// no chain break, no alarm).
func TestRenewalAgentKilledAtEveryStep(t *testing.T) {
	start := time.Now()
	labDir := pcsctest.RepoPath("testdata/cards/lab")
	gate := &uploadGate{}
	// the issuer's document signer in a SoftHSM2 token, certified by the
	// lab's BKN renewal root (docs/renewal.md, "HSM setup")
	var o labOptions
	{
		m, err := labset.LoadManifest(labDir)
		require.NoError(t, err)
		ca, err := m.RenewalIssuer(labDir)
		require.NoError(t, err)
		o.issuer = hsmsigner.New(t, ca)
		o.issuerRoots, err = m.Roots(labDir, "bkn")
		require.NoError(t, err)
	}
	o.terminalHandler = gate.wrap
	lt := startLabTerminalWith(t, o)
	k := &killRig{t: t, lt: lt, gate: gate, bkn: o.issuerRoots}
	// a first record, so that the back office knows the SAM's counter
	k.present(t, nil)
	k.auth(t)
	k.lt.synced(t)
	require.NoError(t, lt.lab.Remove(0))
	pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
	k.mark(t)

	// the steps that are no APDU
	k.step(t, "offer fetched", false, func(t *testing.T) {
		k.kill(t)
	})
	// every APDU of the write (SELECT, the update key's authentication,
	// BEGIN, each SELECT and UPDATE BINARY, COMMIT), then the first of
	// the read-back: the card processes the held command (its answer is
	// lost with the agent). The journal is on disk before the first: its
	// run (the SELECT held, which changes nothing) is the kill after the
	// journal write.
	var seen []string
	for n, committed := 1, false; ; n++ {
		require.Less(t, n, 64, "no COMMIT among the write's APDUs: %v", seen)
		name := fmt.Sprintf("card APDU %d", n)
		if n == 1 {
			name = "journal written, card APDU 1"
		}
		var ins byte
		k.step(t, name, true, func(t *testing.T) {
			require.NoError(t, k.lt.lab.SetFault(0, cardsim.Fault{HoldAtAPDU: n}))
			k.applyAsync(t)
			cmd := k.lt.waitHold(t, 0)
			ins = cmd[1]
			if n == 1 {
				require.Equal(t, byte(0xA4), ins, "the write begins with SELECT: %X", cmd)
			}
			k.kill(t)
			require.NoError(t, k.lt.lab.ReleaseHold(0))
		})
		seen = append(seen, fmt.Sprintf("%d:%s", n, insName(ins, committed)))
		if committed {
			break // the read-back's first APDU
		}
		committed = ins == kpe.InsCommitUpdate
	}
	t.Logf("card APDUs of the renewal, each held and the agent killed: %s", strings.Join(seen, " "))
	require.Contains(t, strings.Join(seen, " "), ":BEGIN ")
	require.Contains(t, strings.Join(seen, " "), ":UPDATE-BINARY ")
	require.Contains(t, strings.Join(seen, " "), ":COMMIT ")
	k.step(t, "SIGN RECORD", true, func(t *testing.T) {
		// the SAM signs the renewal record; the agent dies before the
		// outbox commit: the signature is lost, its counter a gap
		require.NoError(t, k.lt.lab.SetFault(1, cardsim.Fault{HoldAtAPDU: 1, HoldINS: sam.InsSignRecord}))
		k.applyAsync(t)
		k.lt.waitHold(t, 1)
		k.kill(t)
		require.NoError(t, k.lt.lab.ReleaseHold(1))
		k.burned++
	})
	k.step(t, "outbox commit", false, func(t *testing.T) {
		// the record is in the outbox (its upload began): the back office
		// never gets that upload
		gate.arm()
		k.applyAsync(t)
		gate.waitHeld(t)
		k.kill(t)
		gate.release(false)
	})
	k.step(t, "upload", false, func(t *testing.T) {
		// the back office stores the upload; the agent dies before the
		// answer: it sends the record again
		gate.arm()
		k.applyAsync(t)
		gate.waitHeld(t)
		k.kill(t)
		gate.release(true)
	})
	took := time.Since(start)
	t.Logf("%d kills in %s (with set-up)", k.runs, took.Round(time.Millisecond))
}

// killRig is the state of TestRenewalAgentKilledAtEveryStep.
type killRig struct {
	t     *testing.T
	lt    *labTerminal
	gate  *uploadGate
	bkn   *x509.CertPool
	runs  int
	apply chan struct{} // closed when the apply the kill ended has returned
	// the back office's view at the last mark
	records      int64
	lastCounter  uint32
	burned       int // SAM signatures the kills lost (each a gap)
	burnedAtMark int
}

// step is one run: a fresh kpe-budi card and update, the clerk's
// authentication and offer, kill (which starts the apply and kills the
// agent at the step), the restart, the card presented again, the sync,
// and the checks.
func (k *killRig) step(t *testing.T, name string, journal bool, kill func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		k.runs++
		ctx := context.Background()
		a := k.lt.agent
		update := k.stage(t)
		card := k.present(t, nil)
		oldFiles := cardFiles(card)
		k.auth(t)
		k.lt.synced(t) // the authentication's record is in the back office
		var v api.RenewalView
		st, e := a.call(t, "POST", api.PathRenewalCheck, api.RenewalRequest{Reader: pcsctest.Slot0}, &v)
		require.Equal(t, http.StatusOK, st, "%+v", e)
		require.Equal(t, api.RenewalAvailable, v.State, "the staged update is offered: %+v", v)

		kill(t)
		if k.apply != nil {
			<-k.apply // the apply's request ended with the agent
			k.apply = nil
		}
		_ = k.lt.lab.ClearFault(0)
		_ = k.lt.lab.ClearFault(1)
		k.gate.disarm()

		// the agent again, the card presented again with the finger
		a.restart(t)
		a.waitHealth(t, func(h api.Health) bool { return h.SAM != nil && h.SAM.Present && h.SAM.State == "active" })
		if st, err := k.lt.lab.SlotStatus(0); err == nil && st.Inserted {
			require.NoError(t, k.lt.lab.Remove(0))
		}
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
		require.Eventually(t, func() bool { return !a.reader(t).CardPresent }, 10*time.Second, 20*time.Millisecond, "the agent missed the removal")
		k.present(t, card)
		k.auth(t)
		// the clerk asks for the offer at once (the kiosk does by itself);
		// the agent first looks at its journal: new data, record missing →
		// the record is written (done: nothing to offer); old data →
		// interrupted, and the offer is made again
		var after api.RenewalView
		st, e = a.call(t, "POST", api.PathRenewalCheck, api.RenewalRequest{Reader: pcsctest.Slot0}, &after)
		if st != http.StatusOK {
			require.Equal(t, "not-available", e.Code, "%d %+v", st, e)
			after = api.RenewalView{}
			st, e = a.call(t, "GET", api.PathRenewal+"?reader="+url.QueryEscape(pcsctest.Slot0), nil, &after)
			require.Equal(t, http.StatusOK, st, "%+v", e)
			require.Equal(t, api.RenewalDone, after.State, "the check is refused only after a resumed renewal: %+v", after)
		}
		k.lt.synced(t)
		require.NoError(t, k.lt.lab.Remove(0)) // the card's state is ours to read now
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)

		// the card verifies, and holds all the old data or all the new
		renewed := k.checkCard(t, card, oldFiles, update)
		// the back office: applied iff the card holds the new data
		ups, err := k.lt.bo.RenewalUpdates(ctx, backoffice.RenewalFilter{NIP: budiNIP})
		require.NoError(t, err)
		var u *backoffice.RenewalUpdate
		for i := range ups {
			if ups[i].ID == update.ID {
				u = &ups[i]
			}
		}
		require.NotNil(t, u, "the update staged for this run")
		renewals := 0
		if renewed {
			require.Equal(t, backoffice.RenewalApplied, u.Status, "the card holds the new data: the update is applied")
			v, err := k.lt.bo.Verify(ctx, u.AppliedCode)
			require.NoError(t, err)
			require.True(t, v.Valid)
			require.Equal(t, "renewal", v.Service)
			renewals = 1
			if journal {
				require.Equal(t, api.RenewalDone, after.State, "the journal's renewal resumed: %+v", after)
			} else {
				require.Equal(t, api.RenewalNone, after.State, "the renewal's record is in the outbox: nothing to do: %+v", after)
			}
		} else {
			require.Equal(t, backoffice.RenewalStaged, u.Status, "the card holds the old data: the update stays staged")
			require.Equal(t, api.RenewalAvailable, after.State, "the old card is offered the update again: %+v", after)
			require.Equal(t, journal, after.Interrupted, "the holder is told of an interrupted renewal iff one was journaled: %+v", after)
		}
		// every record once: the two authentications and the renewal's;
		// the SAM's counter counts them and the signatures kills lost
		ts, err := k.lt.store.Terminal(ctx, k.lt.cfg.Terminal.ID)
		require.NoError(t, err)
		require.Equal(t, k.records+2+int64(renewals), ts.Records, "records in the back office (renewed: %v)", renewed)
		require.Zero(t, ts.ChainBreaks, "the terminal's hash chain")
		require.Len(t, ts.SAMs, 1)
		gaps := 0
		for _, g := range ts.SAMs[0].Gaps {
			gaps += int(g.To-g.From) + 1
		}
		require.Equal(t, k.burned, gaps, "SAM counters missing: only signatures a kill lost: %+v", ts.SAMs[0])
		require.Equal(t, int(ts.SAMs[0].LastCounter), int(k.lastCounter)+int(ts.Records-k.records)+gaps-k.gapsBefore(), "the SAM's counter adds up")
		alarms, err := k.lt.store.Alarms(ctx, backoffice.AlarmQuery{Limit: 1000})
		require.NoError(t, err)
		require.Empty(t, alarms, "no alarm (renewal-unmatched, counter conflict, ...)")
		k.markAt(ts)
	})
	if k.t.Failed() {
		k.t.FailNow()
	}
}

// gapsBefore is the gaps counted at the last mark.
func (k *killRig) gapsBefore() int { return k.burnedAtMark }

// stage imports a fresh update for Budi (make run's promotion) and
// returns it.
func (k *killRig) stage(t *testing.T) backoffice.RenewalUpdate {
	t.Helper()
	csv, err := os.ReadFile(pcsctest.RepoPath("testdata/renewal/lab-budi.csv")) // make run's sample update
	require.NoError(t, err)
	res, err := k.lt.bo.ImportRenewals(context.Background(), "csv", bytes.NewReader(csv))
	require.NoError(t, err)
	require.Len(t, res.Updates, 1)
	return res.Updates[0]
}

// present puts card (nil: a fresh kpe-budi) into the card reader and
// waits until the agent has read it.
func (k *killRig) present(t *testing.T, card cardsim.Card) cardsim.Card {
	t.Helper()
	if card == nil {
		var err error
		card, err = cardsim.LoadCard(pcsctest.RepoPath("testdata/cards/lab/cards/kpe-budi.json"))
		require.NoError(t, err)
	}
	require.NoError(t, k.lt.lab.Insert(0, card))
	pcsctest.WaitCard(t, pcsctest.Slot0, true, 15*time.Second)
	a := k.lt.agent
	var r api.Reader
	require.Eventually(t, func() bool {
		r = a.reader(t)
		return r.CardPresent && (r.State == api.StateAuthenticated || r.State == api.StateFailed)
	}, 20*time.Second, 20*time.Millisecond, "the agent did not read the card: %+v", r)
	return card
}

// auth is the clerk's ASKES authentication of the card's holder, the
// finger on the sensor; the back office must verify its code.
func (k *killRig) auth(t *testing.T) string {
	t.Helper()
	a := k.lt.agent
	require.NoError(t, k.lt.lab.PlaceFinger(0, cardsim.FingerGenuine))
	var res api.AuthResult
	st, e := a.call(t, "POST", api.PathAuth, api.AuthRequest{Service: "askes", Operator: "kill-test", WaitSeconds: 10}, &res)
	require.Equal(t, http.StatusOK, st, "%+v", e)
	return res.Code
}

// mark notes the back office's counts.
func (k *killRig) mark(t *testing.T) {
	t.Helper()
	ts, err := k.lt.store.Terminal(context.Background(), k.lt.cfg.Terminal.ID)
	require.NoError(t, err)
	k.markAt(ts)
}

func (k *killRig) markAt(ts *wire.TerminalStatus) {
	k.records = ts.Records
	if len(ts.SAMs) == 1 {
		k.lastCounter = ts.SAMs[0].LastCounter
	}
	k.burnedAtMark = k.burned
}

// applyAsync starts the holder's apply; the kill ends its request.
func (k *killRig) applyAsync(t *testing.T) {
	t.Helper()
	k.apply = k.lt.postAsync(t, api.PathRenewalApply, api.RenewalRequest{Reader: pcsctest.Slot0})
}

// kill kills the agent (SIGKILL).
func (k *killRig) kill(t *testing.T) { k.lt.agent.kill(t) }

// cardFiles copies the card's files (the card out of its slot, or
// before it goes in).
func cardFiles(card cardsim.Card) map[uint16][]byte {
	app := card.(*kpeapp.Applet)
	out := map[uint16][]byte{kpe.FIDSOD: app.File(kpe.FIDSOD)}
	for dg := 1; dg <= 6; dg++ {
		fid, _ := kpe.GroupFID(dg)
		if b := app.File(fid); b != nil {
			out[fid] = b
		}
	}
	return out
}

// checkCard checks the card (out of its slot): its EF.SOD verifies with
// the BKN roots and every group matches its hash; it holds the old files
// all, or the update's groups and the old others with the update's id
// and sequence. It answers whether it holds the new data.
func (k *killRig) checkCard(t *testing.T, card cardsim.Card, old map[uint16][]byte, u backoffice.RenewalUpdate) bool {
	t.Helper()
	files := cardFiles(card)
	o, err := sod.Parse(files[kpe.FIDSOD])
	require.NoError(t, err, "the card's EF.SOD")
	require.NoError(t, o.VerifySignature(k.bkn, time.Now()), "the card's EF.SOD signature")
	for _, dg := range o.Groups() {
		fid, _ := kpe.GroupFID(dg)
		require.NoError(t, o.CheckGroup(dg, files[fid]), "DG%d on the card", dg)
	}
	st := card.(*kpeapp.Applet).UpdateStatus()
	if bytes.Equal(files[kpe.FIDSOD], old[kpe.FIDSOD]) {
		require.Equal(t, old, files, "old EF.SOD: every file old")
		require.Zero(t, st.Sequence, "old data: never renewed")
		return false
	}
	for fid, b := range old {
		want := b
		for dg, nb := range u.Groups {
			if f, _ := kpe.GroupFID(dg); f == fid {
				want = nb
			}
		}
		if fid == kpe.FIDSOD {
			continue
		}
		require.Equal(t, want, files[fid], "new EF.SOD: file %04X is the update's", fid)
	}
	require.Equal(t, uint32(1), st.Sequence, "new data: sequence 1")
	require.Equal(t, u.ID, st.LastID, "new data: the update's id")
	return true
}

// uploadGate holds the terminal's next POST /v1/records at the back
// office when armed: release(true) passes it on (stored; the agent may
// be gone by then), release(false) answers 503 without storing.
type uploadGate struct {
	mu      sync.Mutex
	armed   bool
	held    chan struct{}
	decided chan bool
}

func (g *uploadGate) arm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed, g.held, g.decided = true, make(chan struct{}), make(chan bool, 1)
}

func (g *uploadGate) disarm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = false
}

func (g *uploadGate) waitHeld(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	held := g.held
	g.mu.Unlock()
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("no upload reached the back office")
	}
}

func (g *uploadGate) release(pass bool) {
	g.mu.Lock()
	d := g.decided
	g.mu.Unlock()
	d <- pass
}

func (g *uploadGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		hold := g.armed && r.Method == http.MethodPost && r.URL.Path == wire.PathRecords
		var held chan struct{}
		var decided chan bool
		if hold {
			g.armed = false
			held, decided = g.held, g.decided
		}
		g.mu.Unlock()
		if !hold {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "body", http.StatusBadRequest)
			return
		}
		close(held)
		if !<-decided {
			http.Error(w, "held by the test", http.StatusServiceUnavailable)
			return
		}
		r = r.Clone(context.WithoutCancel(r.Context()))
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// insName names a KPE card's instruction for the log; after COMMIT the
// read-back begins.
func insName(ins byte, afterCommit bool) string {
	if afterCommit {
		return "read-back"
	}
	switch ins {
	case 0xA4:
		return "SELECT"
	case 0x84:
		return "GET-CHALLENGE"
	case 0x82:
		return "EXTERNAL-AUTHENTICATE"
	case 0x88:
		return "INTERNAL-AUTHENTICATE"
	case kpe.InsBeginUpdate:
		return "BEGIN"
	case kpe.InsUpdateBinary:
		return "UPDATE-BINARY"
	case kpe.InsCommitUpdate:
		return "COMMIT"
	}
	return fmt.Sprintf("INS-%02X", ins)
}
