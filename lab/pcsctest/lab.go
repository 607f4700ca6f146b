package pcsctest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"kpe-agent/apdu"
	"kpe-agent/apdu/pcsc"
	"kpe-agent/lab/cardsim"
)

// Readers of the lab's slots, by slot number.
var SlotReaders = []string{Slot0, Slot1}

// Lab starts a card lab on pcscd's two vpcd slots; it is closed (cards
// removed) when the test ends.
func Lab(t testing.TB) *cardsim.Lab {
	t.Helper()
	lab, err := cardsim.NewLab(cardsim.LabConfig{CardDir: RepoPath("testdata/cards"), Logger: DebugLog("lab")})
	if err != nil {
		t.Fatalf("card lab: %v", err)
	}
	t.Cleanup(func() {
		_ = lab.Close()
		// Let pcscd see the removal before the next test takes the slots.
		for _, r := range SlotReaders {
			WaitCard(t, r, false, 5*time.Second)
		}
	})
	return lab
}

// DebugLog is a debug-level logger on stderr, tagged with who, when
// KPE_TEST_LOG=debug is set (to follow a flaky lab test: card lab slot
// events, the agent's reader loop); otherwise nil, which the lab and the
// agent take as "discard".
func DebugLog(who string) *slog.Logger {
	if os.Getenv("KPE_TEST_LOG") != "debug" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("who", who)
}

// Insert loads testdata/cards/<image> into slot and waits until pcscd
// reports the card.
func Insert(t testing.TB, lab *cardsim.Lab, slot int, image string) cardsim.Card {
	t.Helper()
	c, err := cardsim.LoadCard(RepoPath(filepath.Join("testdata/cards", image)))
	if err != nil {
		t.Fatalf("load %s: %v", image, err)
	}
	if err := lab.Insert(slot, c); err != nil {
		t.Fatalf("insert %s: %v", image, err)
	}
	WaitCard(t, SlotReaders[slot], true, 5*time.Second)
	return c
}

// RepoPath returns rel resolved against the repository root (the directory
// holding go.mod), so tests work from any package directory.
func RepoPath(rel string) string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, rel)
		}
		if filepath.Dir(d) == d {
			return filepath.Join(dir, rel)
		}
	}
}

// Connect connects to the card in reader through a transport of its own
// (a PC/SC context apart from the code under test, as another program
// would be); card and transport are closed when the test ends.
func Connect(t testing.TB, reader string) apdu.Card {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr := pcsc.New(pcsc.Options{})
	t.Cleanup(func() { tr.Close() })
	card, err := tr.Connect(ctx, reader)
	if err != nil {
		t.Fatalf("connecting to the card in %q: %v", reader, err)
	}
	t.Cleanup(func() { card.Close() })
	return card
}
