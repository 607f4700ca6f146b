package samapp_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/pcsc"
	"kpe-agent/apdu/sam"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/cardsim/samapp"
	"kpe-agent/lab/pcsctest"
)

var serial = [8]byte{0x53, 0x41, 0x4D, 0, 0, 0, 0, 1}

const code = "123456"

// TestMain doubles as the lab process of the kill -9 test.
func TestMain(m *testing.M) {
	if keyPath := os.Getenv("KPE_SAMAPP_CHILD_KEY"); keyPath != "" {
		os.Exit(runChild(keyPath, os.Getenv("KPE_SAMAPP_CHILD_STATE")))
	}
	os.Exit(m.Run())
}

func runChild(keyPath, statePath string) int {
	b, err := os.ReadFile(keyPath)
	if err != nil {
		return 2
	}
	blk, _ := pem.Decode(b)
	key, err := x509.ParseECPrivateKey(blk.Bytes)
	if err != nil {
		return 2
	}
	a, err := samapp.New(samapp.Config{Name: "sam", Serial: serial, ActivationCode: []byte(code), Key: key, StatePath: statePath})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	lab, err := cardsim.NewLab(cardsim.LabConfig{})
	if err != nil {
		return 4
	}
	if err := lab.Insert(0, a); err != nil {
		return 5
	}
	select {} // until killed
}

func newSAM(t *testing.T, statePath string) (*samapp.Applet, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	a, err := samapp.New(samapp.Config{Name: "sam", Serial: serial, ActivationCode: []byte(code), Key: key, StatePath: statePath})
	require.NoError(t, err)
	return a, key
}

func open(t *testing.T, c cardsim.Card) *sam.SAM {
	r := cardsim.NewMemReader("mem")
	r.Insert(c)
	card, err := r.Connect(context.Background())
	require.NoError(t, err)
	s, err := sam.Open(context.Background(), card)
	require.NoError(t, err)
	return s
}

func TestActivationAndSigning(t *testing.T) {
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "sam.json")
	a, key := newSAM(t, state)
	s := open(t, a)

	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, sam.Inactive, info.State)
	require.Equal(t, serial, info.Serial)

	_, err = s.SignRecord(ctx, sha256.Sum256([]byte("x")))
	require.ErrorIs(t, err, sam.ErrNotActivated)

	err = s.Activate(ctx, []byte("000000"))
	var ae *sam.ActivationError
	require.True(t, errors.As(err, &ae), "%v", err)
	require.Equal(t, 2, ae.TriesLeft)
	require.NoError(t, s.Activate(ctx, []byte(code)))

	var last uint32
	for i := range 5 {
		d := sha256.Sum256([]byte{byte(i)})
		sig, err := s.SignRecord(ctx, d)
		require.NoError(t, err)
		require.Greater(t, sig.Counter, last)
		last = sig.Counter
		require.True(t, sig.Verify(&key.PublicKey, d, serial))
		require.False(t, sig.Verify(&key.PublicKey, sha256.Sum256([]byte("other")), serial))
	}
	n, err := s.Counter(ctx)
	require.NoError(t, err)
	require.Equal(t, last, n)

	// The state survives a restart of the SAM.
	b, err := samapp.New(samapp.Config{Name: "sam", Serial: serial, ActivationCode: []byte(code), Key: key, StatePath: state})
	require.NoError(t, err)
	n, err = open(t, b).Counter(ctx)
	require.NoError(t, err)
	require.Equal(t, last, n)
}

func TestBlockedAfterWrongCodes(t *testing.T) {
	ctx := context.Background()
	a, _ := newSAM(t, filepath.Join(t.TempDir(), "sam.json"))
	s := open(t, a)
	for range 2 {
		var ae *sam.ActivationError
		require.True(t, errors.As(s.Activate(ctx, []byte("bad")), &ae))
	}
	require.ErrorIs(t, s.Activate(ctx, []byte("bad")), sam.ErrBlocked)
	require.ErrorIs(t, s.Activate(ctx, []byte(code)), sam.ErrBlocked, "the right code no longer helps")
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, sam.Blocked, info.State)
}

func TestStateFileProblems(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "sam.json")
	require.NoError(t, os.WriteFile(state, []byte(`{"active":true,"tries":3,"counter":`), 0o600))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err := samapp.New(samapp.Config{Name: "sam", Serial: serial, ActivationCode: []byte(code), Key: key, StatePath: state})
	require.Error(t, err, "a corrupt counter must never silently restart")

	// Persisting fails (the directory is gone): 6581 and no signature.
	gone := filepath.Join(dir, "gone", "sam.json")
	a, _ := newSAM(t, filepath.Join(dir, "ok.json"))
	s := open(t, a)
	require.NoError(t, s.Activate(context.Background(), []byte(code)))
	b, err := samapp.New(samapp.Config{Name: "sam", Serial: serial, ActivationCode: []byte(code), Key: key, StatePath: gone})
	require.NoError(t, err)
	s = open(t, b)
	err = s.Activate(context.Background(), []byte(code))
	require.ErrorIs(t, err, apdu.ErrCardStatus)
}

func FuzzParseInfo(f *testing.F) {
	f.Add([]byte{0x70, 0x14, 0x80, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x81, 0x01, 0x01, 0x82, 0x01, 0x03, 0x83, 0x04, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := sam.ParseInfo(b); err != nil && !errors.Is(err, sam.ErrFormat) {
			t.Fatal(err)
		}
	})
}

func FuzzParseSignature(f *testing.F) {
	f.Add(make([]byte, 68))
	f.Fuzz(func(t *testing.T, b []byte) {
		sig, err := sam.ParseSignature(b)
		if err != nil {
			if !errors.Is(err, sam.ErrFormat) {
				t.Fatal(err)
			}
			return
		}
		_ = sig.Verify(&ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}, [32]byte{}, serial)
	})
}

// The acceptance test of issue 3: the SAM counter is strictly increasing
// across kill -9 of the lab and restart; no value is issued twice. Gaps are
// allowed (a value whose answer was lost with the process).
func TestIntegrationCounterSurvivesKill9(t *testing.T) {
	pcsctest.Require(t)
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(key)
	keyPath := filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600))
	statePath := filepath.Join(dir, "sam.json")

	var seen []uint32
	for cycle := range 5 {
		child := exec.Command(os.Args[0])
		child.Env = append(os.Environ(), "KPE_SAMAPP_CHILD_KEY="+keyPath, "KPE_SAMAPP_CHILD_STATE="+statePath)
		child.Stderr = os.Stderr
		require.NoError(t, child.Start())
		t.Cleanup(func() { _ = child.Process.Kill(); _, _ = child.Process.Wait() })
		pcsctest.WaitCard(t, pcsctest.Slot0, true, 10*time.Second)

		tr := pcsc.New(pcsc.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		card, err := tr.Connect(ctx, pcsctest.Slot0)
		require.NoError(t, err)
		s, err := sam.Open(ctx, card)
		require.NoError(t, err)
		if cycle == 0 {
			require.NoError(t, s.Activate(ctx, []byte(code)))
		}
		var mu sync.Mutex
		done := make(chan struct{})
		signed := make(chan struct{}, 1) // this cycle's 4th signature
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				d := sha256.Sum256([]byte(fmt.Sprint(cycle, i)))
				sig, err := s.SignRecord(ctx, d)
				if err != nil {
					return // the lab was killed under us
				}
				if !sig.Verify(&key.PublicKey, d, serial) {
					t.Errorf("bad signature for counter %d", sig.Counter)
				}
				mu.Lock()
				seen = append(seen, sig.Counter)
				mu.Unlock()
				if i == 3 {
					signed <- struct{}{}
				}
			}
		}()
		// the kill lands at a random point after a few signatures of this
		// cycle (timed from the child's start, a slow machine killed some
		// children before they had signed anything)
		select {
		case <-signed:
		case <-done:
			t.Fatal("the lab stopped signing before it was killed")
		case <-time.After(60 * time.Second):
			t.Fatal("the lab signed fewer than 4 records in a minute")
		}
		time.Sleep(time.Duration(mrand.IntN(500)) * time.Millisecond)
		require.NoError(t, child.Process.Signal(syscall.SIGKILL))
		_, _ = child.Process.Wait()
		<-done
		cancel()
		_ = card.Close()
		_ = tr.Close()
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 10*time.Second)
	}
	require.GreaterOrEqual(t, len(seen), 20, "the test must really sign across the kills (4 a cycle at least)")
	for i := 1; i < len(seen); i++ {
		require.Greater(t, seen[i], seen[i-1], "counter values must never repeat or go back (index %d)", i)
	}
	t.Logf("5 kill -9 cycles, %d signatures, counters %d..%d all unique and increasing", len(seen), seen[0], seen[len(seen)-1])
}

func TestCardAuthCommands(t *testing.T) {
	a, _ := newSAM(t, filepath.Join(t.TempDir(), "sam.json")) // no KPE master
	send := func(cmd []byte) uint16 {
		r := a.Process(cmd)
		return uint16(r[len(r)-2])<<8 | uint16(r[len(r)-1])
	}
	require.Equal(t, uint16(0x9000), send(append([]byte{0x00, 0xA4, 0x04, 0x0C, 0x08}, sam.AID...)))
	init := append([]byte{0x80, 0x20, 0x01, 0x00, 0x1C, 0x80, 0x08}, make([]byte, 8)...)
	init = append(append(init, 0x81, 0x10), make([]byte, 16)...)
	require.Equal(t, uint16(0x6982), send(init), "not activated")
	require.Equal(t, uint16(0x9000), send(append([]byte{0x80, 0x10, 0x01, 0x00, 0x06}, code...)))
	require.Equal(t, uint16(0x6A88), send(init), "this SAM holds no KPE master key")
	require.Equal(t, uint16(0x6985), send(append([]byte{0x80, 0x22, 0x01, 0x00, 0x38}, make([]byte, 56)...)), "complete without init")
	upd := bytes.Clone(init)
	upd[2] = sam.ProfileKPEUpdate
	require.Equal(t, uint16(0x6A88), send(upd), "this SAM holds no update master")
}

// CARD AUTH INIT/COMPLETE P1 03 use the update master: the card's update
// keys answer it, its read keys do not; an INIT of one profile is not
// completed by the other; the image keeps the update master.
func TestCardUpdateAuth(t *testing.T) {
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	kpeMaster, updMaster := bytes.Repeat([]byte{0x4B}, 16), bytes.Repeat([]byte{0x55}, 16)
	cfg := samapp.Config{Name: "sam", Serial: serial, ActivationCode: []byte(code), Key: key, StatePath: filepath.Join(t.TempDir(), "sam.json"),
		KPEMaster: kpeMaster, UpdateMaster: updMaster}
	a, err := samapp.New(cfg)
	require.NoError(t, err)
	s := open(t, a)
	require.NoError(t, s.Activate(ctx, []byte(code)))
	card := [8]byte{9}
	for _, tc := range []struct {
		master []byte
		derive func([]byte, [8]byte) (kpe.CardKeys, error)
		ok     bool
	}{{updMaster, kpe.DeriveUpdateKeys, true}, {kpeMaster, kpe.DeriveCardKeys, false}} {
		keys, err := tc.derive(tc.master, card)
		require.NoError(t, err)
		rnd := bytes.Repeat([]byte{0x11}, kpe.RndLen)
		ext, finish, err := s.BeginUpdateAuth(ctx, card, rnd)
		require.NoError(t, err)
		resp, cardSess, err := kpe.CardRespond(keys, rnd, ext, rand.Reader)
		if !tc.ok {
			require.ErrorIs(t, err, kpe.ErrAuthFailed, "the read keys do not answer the update cryptogram")
			continue
		}
		require.NoError(t, err)
		sess, err := finish(ctx, resp)
		require.NoError(t, err)
		p, err := sess.Wrap(apdu.Command{INS: 0xB0, Ne: 4})
		require.NoError(t, err)
		_, err = cardSess.UnwrapCommand(p)
		require.NoError(t, err, "the SAM's session keys are the card's")
	}
	// INIT P1 03, COMPLETE P1 01: refused.
	send := func(cmd []byte) uint16 {
		r := a.Process(cmd)
		return uint16(r[len(r)-2])<<8 | uint16(r[len(r)-1])
	}
	init := append([]byte{0x80, 0x20, sam.ProfileKPEUpdate, 0x00, 0x1C, 0x80, 0x08}, make([]byte, 8)...)
	init = append(append(init, 0x81, 0x10), make([]byte, 16)...)
	require.Equal(t, uint16(0x9000), send(append(init, 0x00)))
	require.Equal(t, uint16(0x6985), send(append([]byte{0x80, 0x22, sam.ProfileKPE, 0x00, 0x38}, make([]byte, 56)...)))

	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	cfg.CertDER, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	img, err := samapp.Image(cfg, "")
	require.NoError(t, err)
	require.Contains(t, string(img), `"kpe_update_master"`)
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	c, err := cardsim.ParseCard(img, "")
	require.NoError(t, err)
	s2 := open(t, c)
	require.NoError(t, s2.Activate(ctx, []byte(code)))
	_, _, err = s2.BeginUpdateAuth(ctx, card, bytes.Repeat([]byte{0x11}, kpe.RndLen))
	require.NoError(t, err, "the image keeps the update master")
}

// SAM card images are parsed strictly (keys, certificate, serial, state).
func FuzzParseImage(f *testing.F) {
	for _, name := range []string{"sam", "sam-blocked"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "cards", "lab", "cards", name+".json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
		c, err := cardsim.ParseCard(data, "")
		if err == nil && c == nil {
			t.Fatal("nil card without error")
		}
	})
}

// PSEUDONYM in raw APDUs: only once activated, with the SAM's institution
// pseudonym key (6A88 without one), a known domain in P1 and P2 00 (6A86
// otherwise), a value of 1 to 64 bytes (6700 otherwise); the answer is
// HMAC-SHA-256(key, P1 ‖ value).
func TestPseudonymCommand(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	pkey := []byte("lab institution pseudonym key 32")
	mk := func(pk []byte) *samapp.Applet {
		a, err := samapp.New(samapp.Config{Name: "sam", Serial: serial, ActivationCode: []byte(code), Key: key,
			StatePath: filepath.Join(t.TempDir(), "sam.json"), PseudonymKey: pk})
		require.NoError(t, err)
		return a
	}
	send := func(a *samapp.Applet, cmd []byte) ([]byte, uint16) {
		r := a.Process(cmd)
		return r[:len(r)-2], uint16(r[len(r)-2])<<8 | uint16(r[len(r)-1])
	}
	pseudonym := func(p1, p2 byte, value []byte) []byte {
		return append(append([]byte{0x80, 0x50, p1, p2, byte(len(value))}, value...), 0x20)
	}
	nik := []byte("3174096112900001")
	a := mk(pkey)
	_, sw := send(a, append([]byte{0x00, 0xA4, 0x04, 0x0C, 0x08}, sam.AID...))
	require.Equal(t, uint16(0x9000), sw)
	_, sw = send(a, pseudonym(0x01, 0x00, nik))
	require.Equal(t, uint16(0x6982), sw, "not activated")
	_, sw = send(a, append([]byte{0x80, 0x10, 0x01, 0x00, 0x06}, code...))
	require.Equal(t, uint16(0x9000), sw)

	out, sw := send(a, pseudonym(0x01, 0x00, nik))
	require.Equal(t, uint16(0x9000), sw)
	want := sam.PseudonymOf(pkey, sam.DomainNIK, nik)
	require.Equal(t, want[:], out)
	out, sw = send(a, pseudonym(0x02, 0x00, []byte{4, 0x11, 0x22, 0x33}))
	require.Equal(t, uint16(0x9000), sw)
	want = sam.PseudonymOf(pkey, sam.DomainChipUID, []byte{4, 0x11, 0x22, 0x33})
	require.Equal(t, want[:], out)

	for name, c := range map[string]struct {
		cmd []byte
		sw  uint16
	}{
		"unknown domain": {pseudonym(0x03, 0x00, nik), 0x6A86},
		"domain 00":      {pseudonym(0x00, 0x00, nik), 0x6A86},
		"P2 not 00":      {pseudonym(0x01, 0x01, nik), 0x6A86},
		"no value":       {[]byte{0x80, 0x50, 0x01, 0x00, 0x20}, 0x6700},
		"value too long": {pseudonym(0x02, 0x00, make([]byte, 65)), 0x6700},
	} {
		out, sw := send(a, c.cmd)
		require.Equal(t, c.sw, sw, name)
		require.Empty(t, out, name)
	}

	none := mk(nil)
	send(none, append([]byte{0x00, 0xA4, 0x04, 0x0C, 0x08}, sam.AID...))
	send(none, append([]byte{0x80, 0x10, 0x01, 0x00, 0x06}, code...))
	_, sw = send(none, pseudonym(0x01, 0x00, nik))
	require.Equal(t, uint16(0x6A88), sw, "this SAM holds no pseudonym key")
}

// The lab set's SAM (testdata/cards/lab/cards/sam.json) computes
// pseudonyms through pcscd with the key of its image, which the client
// of apdu/sam reads; the blocked sample SAM computes none.
func TestIntegrationPseudonymThroughPCSC(t *testing.T) {
	pcsctest.Require(t)
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	lab := pcsctest.Lab(t)
	pcsctest.Insert(t, lab, 1, "lab/cards/sam.json")
	img, err := os.ReadFile(pcsctest.RepoPath("testdata/cards/lab/cards/sam.json"))
	require.NoError(t, err)
	pkey, err := samapp.ImagePseudonymKey(img)
	require.NoError(t, err)
	require.Len(t, pkey, 32)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := sam.Open(ctx, pcsctest.Connect(t, pcsctest.Slot1))
	require.NoError(t, err)
	_, err = s.Pseudonym(ctx, sam.DomainNIK, []byte("3174096112900001"))
	require.ErrorIs(t, err, sam.ErrNotActivated)
	require.NoError(t, s.Activate(ctx, []byte(code)))
	for _, c := range []struct {
		d sam.Domain
		v []byte
	}{{sam.DomainNIK, []byte("3174096112900001")}, {sam.DomainChipUID, []byte{0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6}}} {
		got, err := s.Pseudonym(ctx, c.d, c.v)
		require.NoError(t, err, c.d)
		require.Equal(t, sam.PseudonymOf(pkey, c.d, c.v), got, c.d)
	}
}
