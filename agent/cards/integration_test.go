package cards_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/cards"
	"kpe-agent/apdu"
	"kpe-agent/apdu/pcsc"
	"kpe-agent/apdu/sam"
	"kpe-agent/biometric"
	"kpe-agent/biometric/sensor"
	"kpe-agent/internal/leaktest"
	"kpe-agent/lab/cardsim"
	_ "kpe-agent/lab/cardsim/kpeapp"
	_ "kpe-agent/lab/cardsim/samapp"
	"kpe-agent/lab/labset"
	"kpe-agent/lab/pcsctest"
)

// lab is the committed sample set with its trust lists and a fresh SAM
// state directory.
type lab struct {
	dir string
	m   *labset.Manifest
	o   cards.Options
}

func loadLab(t *testing.T) lab {
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	dir := pcsctest.RepoPath("testdata/cards/lab")
	m, err := labset.LoadManifest(dir)
	require.NoError(t, err)
	o := labOptions(t, dir, m)
	o.Photo = true
	return lab{dir, m, o}
}

func (l lab) load(t *testing.T, file string) cardsim.Card {
	c, err := cardsim.LoadCard(filepath.Join(l.dir, "cards", file+".json"))
	require.NoError(t, err)
	return c
}

// connectSAM opens and activates the SAM in slot 1 (terminal code and the
// two KTP-el installation secrets).
func (l lab) connectSAM(t *testing.T, ctx context.Context, tr *pcsc.Transport) *sam.SAM {
	c, err := tr.Connect(ctx, pcsctest.Slot1)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return openLabSAM(t, ctx, c, l.m)
}

// Every sample card ends in its specific verdict, through real pcscd with
// the lab SAM in the second reader.
func TestIntegrationSampleVerdicts(t *testing.T) {
	pcsctest.Require(t)
	l := loadLab(t)
	require.GreaterOrEqual(t, len(l.m.Cards), 12)
	lab := pcsctest.Lab(t)
	require.NoError(t, lab.Insert(1, l.load(t, "sam")))
	pcsctest.WaitCard(t, pcsctest.Slot1, true, 15*time.Second)
	tr := pcsc.New(pcsc.Options{})
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := l.connectSAM(t, ctx, tr)

	for _, mc := range l.m.Cards {
		t.Run(filepath.Base(mc.Image), func(t *testing.T) {
			require.NoError(t, lab.Insert(0, l.load(t, trimJSON(mc.Image))))
			pcsctest.WaitCard(t, pcsctest.Slot0, true, 15*time.Second)
			defer func() {
				require.NoError(t, lab.Remove(0))
				pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
			}()
			card, err := tr.Connect(ctx, pcsctest.Slot0)
			require.NoError(t, err)
			defer card.Close()
			require.NoError(t, card.BeginTransaction(ctx))
			defer card.EndTransaction()
			r, err := cards.Read(ctx, card, s, l.o)
			require.NoError(t, err)
			require.Equal(t, mc.Expect, r.Verdict, "checks: %+v", r.Checks)
			switch mc.Expect {
			case "not-genuine":
				require.False(t, r.Checks.CardAuthentic.OK, "a clone is never reported genuine")
				require.Empty(t, r.KPE.Identity.NIP, "nothing protected is read from a clone")
			case "tampered:2":
				require.Equal(t, []int{2}, r.Checks.FailedGroups, "the tampered group is named")
				require.Contains(t, r.Checks.DataAuthentic.Reason, "[2]")
			case "identifiers-inconsistent":
				require.True(t, r.Checks.CardAuthentic.OK)
				require.True(t, r.Checks.DataAuthentic.OK)
				require.NotEmpty(t, r.Warnings)
			case "genuine":
				require.True(t, r.Checks.IdentifiersConsistent.OK, r.Checks.IdentifiersConsistent.Reason)
				if r.KPE != nil {
					require.NotEmpty(t, r.KPE.Photo)
				}
			}
		})
	}
}

// A blocked SAM cannot authenticate cards: the read fails with a clear,
// typed error rather than a verdict about the card.
func TestIntegrationBlockedSAM(t *testing.T) {
	pcsctest.Require(t)
	l := loadLab(t)
	lab := pcsctest.Lab(t)
	require.NoError(t, lab.Insert(0, l.load(t, "kpe-budi")))
	require.NoError(t, lab.Insert(1, l.load(t, "sam-blocked")))
	pcsctest.WaitCard(t, pcsctest.Slot0, true, 15*time.Second)
	pcsctest.WaitCard(t, pcsctest.Slot1, true, 15*time.Second)
	tr := pcsc.New(pcsc.Options{})
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sc, err := tr.Connect(ctx, pcsctest.Slot1)
	require.NoError(t, err)
	defer sc.Close()
	s, err := sam.Open(ctx, sc)
	require.NoError(t, err)
	require.ErrorIs(t, s.Activate(ctx, []byte(l.m.SAM.ActivationCode)), sam.ErrBlocked, "even the right code cannot unblock it")

	card, err := tr.Connect(ctx, pcsctest.Slot0)
	require.NoError(t, err)
	defer card.Close()
	_, err = cards.Read(ctx, card, s, l.o)
	require.ErrorIs(t, err, sam.ErrBlocked)
	require.ErrorIs(t, err, apdu.ErrAuthenticationBlocked)
}

func trimJSON(image string) string {
	return filepath.Base(image[:len(image)-len(".json")])
}

// Match-on-card through real pcscd with the lab KPE and the lab sensor:
// the enrolled finger verifies, an impostor gets 63Cx, a poor capture is
// never sent, and a card whose fingerprint is blocked says so.
func TestIntegrationMatchOnCard(t *testing.T) {
	pcsctest.Require(t)
	l := loadLab(t)
	lab := pcsctest.Lab(t)
	srv := httptest.NewServer(lab.Handler())
	defer srv.Close()
	require.NoError(t, lab.Insert(1, l.load(t, "sam")))
	pcsctest.WaitCard(t, pcsctest.Slot1, true, 15*time.Second)
	tr := pcsc.New(pcsc.Options{})
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := l.connectSAM(t, ctx, tr)
	finger := sensor.Lab{Control: srv.URL, Slot: 0}

	read := func(name string) (*cards.Result, apdu.Card) {
		require.NoError(t, lab.Insert(0, l.load(t, name)))
		pcsctest.WaitCard(t, pcsctest.Slot0, true, 15*time.Second)
		card, err := tr.Connect(ctx, pcsctest.Slot0)
		require.NoError(t, err)
		require.NoError(t, card.BeginTransaction(ctx))
		r, err := cards.Read(ctx, card, s, l.o)
		require.NoError(t, err)
		require.Equal(t, "genuine", r.Verdict)
		return r, card
	}
	capture := func(mode string) *biometric.Record {
		require.NoError(t, lab.PlaceFinger(0, mode))
		rec, err := finger.Capture(ctx)
		require.NoError(t, err)
		return rec
	}

	r, card := read("kpe-budi")
	out, err := cards.VerifyOnCard(ctx, r.Channel, r.KPE.BIT, capture(cardsim.FingerGenuine), cards.FingerOptions{})
	require.NoError(t, err)
	require.True(t, out.Match, "the enrolled finger verifies")
	out, err = cards.VerifyOnCard(ctx, r.Channel, r.KPE.BIT, capture(cardsim.FingerImpostor), cards.FingerOptions{})
	require.NoError(t, err)
	require.False(t, out.Match)
	require.Equal(t, 4, out.TriesLeft, "63C4")
	_, err = cards.VerifyOnCard(ctx, r.Channel, r.KPE.BIT, capture(cardsim.FingerPoor), cards.FingerOptions{})
	require.ErrorIs(t, err, biometric.ErrPlaceAgain)
	bits, err := biometric.ParseBITGroup(r.KPE.BIT)
	require.NoError(t, err)
	tries, _, err := cards.TriesLeft(ctx, r.Channel, bits[0])
	require.NoError(t, err)
	require.Equal(t, 4, tries, "the poor capture did not cost a try")
	card.EndTransaction()
	card.Close()
	require.NoError(t, lab.Remove(0))
	pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)

	r, card = read("kpe-finger-blocked")
	defer card.Close()
	_, err = cards.VerifyOnCard(ctx, r.Channel, r.KPE.BIT, capture(cardsim.FingerGenuine), cards.FingerOptions{})
	require.ErrorIs(t, err, cards.ErrFingerBlocked)
	require.ErrorContains(t, err, "issuing office")
}

// Match-off-card for the lab KTP-el through the SAM path, with a debug log
// and an APDU trace on: the templates never reach the data directory.
func TestIntegrationMatchOffCardLeavesNoTemplate(t *testing.T) {
	pcsctest.Require(t)
	l := loadLab(t)
	data := t.TempDir()
	lab := pcsctest.Lab(t)
	srv := httptest.NewServer(lab.Handler())
	defer srv.Close()
	require.NoError(t, lab.Insert(0, l.load(t, "ktpel-siti")))
	require.NoError(t, lab.Insert(1, l.load(t, "sam")))
	pcsctest.WaitCard(t, pcsctest.Slot0, true, 15*time.Second)
	pcsctest.WaitCard(t, pcsctest.Slot1, true, 15*time.Second)
	logFile, err := os.Create(filepath.Join(data, "agent.log"))
	require.NoError(t, err)
	defer logFile.Close()
	traceFile, err := os.Create(filepath.Join(data, "apdu.trace"))
	require.NoError(t, err)
	defer traceFile.Close()
	log := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tracer := &apdu.Tracer{W: traceFile}

	tr := pcsc.New(pcsc.Options{Logger: log})
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	samCard, err := tr.Connect(ctx, pcsctest.Slot1)
	require.NoError(t, err)
	defer samCard.Close()
	s := openLabSAM(t, ctx, apdu.Trace(samCard, tracer), l.m)
	card, err := tr.Connect(ctx, pcsctest.Slot0)
	require.NoError(t, err)
	defer card.Close()
	require.NoError(t, card.BeginTransaction(ctx))
	defer card.EndTransaction()

	var needles [][]byte
	for _, mode := range []string{cardsim.FingerGenuine, cardsim.FingerImpostor} {
		r, err := cards.Read(ctx, apdu.TraceCard(card, tracer), s, l.o)
		require.NoError(t, err)
		require.Equal(t, "genuine", r.Verdict)
		require.Len(t, r.KTPel.Fingerprints, 2)
		for _, f := range r.KTPel.Fingerprints {
			tmpl := append([]byte(nil), f.Template...)
			for off := 28; off+12 <= len(tmpl); off += 60 {
				needles = append(needles, leaktest.Needles(tmpl[off:off+12])...)
			}
		}
		require.NoError(t, lab.PlaceFinger(0, mode))
		capture, err := sensor.Lab{Control: srv.URL, Slot: 0}.Capture(ctx)
		require.NoError(t, err)
		out, err := cards.MatchOffCard(r.KTPel, capture)
		require.NoError(t, err)
		// What a careless log line would write: all of it must be redacted.
		log.Debug("match off card", "result", r, "ktpel", r.KTPel, "capture", capture, "outcome", out)
		if mode == cardsim.FingerGenuine {
			require.True(t, out.Match, "the holder's finger matches a chip template")
			require.Equal(t, 2, out.Finger)
		} else {
			require.False(t, out.Match, "another person's finger does not")
		}
		for _, f := range r.KTPel.Fingerprints {
			require.Empty(t, f.Template, "chip templates are wiped after the comparison")
		}
		capture.Wipe()
	}
	require.NoError(t, logFile.Sync())
	require.NoError(t, traceFile.Sync())
	files := leaktest.ScanDir(t, data, needles)
	require.Len(t, files, 2)
	for path, n := range files {
		require.NotZero(t, n, path)
	}
}
