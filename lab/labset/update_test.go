package labset

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/pcsctest"
)

// A generated set gives every KPE update keys derived from the set's
// update master, which its SAM holds: the SAM opens the genuine card's
// update session (the update then fails only at COMMIT, its EF.SOD being
// the old one), and not the clone's.
func TestGenerateUpdateKeys(t *testing.T) {
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	full, err := LoadSpec(pcsctest.RepoPath("testdata/cards/lab/spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	spec := &Spec{SAM: full.SAM}
	for _, cs := range full.Cards {
		if cs.File == "sam" || cs.File == "kpe-budi" || cs.File == "kpe-clone" {
			spec.Cards = append(spec.Cards, cs)
		}
	}
	if len(spec.Cards) != 3 {
		t.Fatalf("spec has %d of the 3 cards", len(spec.Cards))
	}
	out := t.TempDir()
	if _, err := Generate(spec, out, time.Now()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	load := func(name string) (*cardsim.MemReader, apdu.Card) {
		c, err := cardsim.LoadCard(filepath.Join(out, "cards", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		r := cardsim.NewMemReader(name)
		r.Insert(c)
		conn, err := r.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r, conn
	}
	_, samConn := load("sam")
	s, err := sam.Open(ctx, samConn)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Activate(ctx, []byte(spec.SAM.ActivationCode)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		step kpe.WriteStep
		want error
	}{{"kpe-budi", kpe.StepCommitted, kpe.ErrUpdateRefused}, {"kpe-clone", kpe.StepAuthenticated, kpe.ErrAuthFailed}} {
		_, conn := load(tc.name)
		card, err := kpe.Read(ctx, conn, s, kpe.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		img, err := os.ReadFile(filepath.Join(out, "cards", tc.name+".json"))
		if err != nil || !bytes.Contains(img, []byte(`"update_keys"`)) {
			t.Fatalf("%s: image without update_keys (%v)", tc.name, err)
		}
		dg2 := kpe.Employment{Status: "PNS", GolonganRuang: "IV/e"}.Encode()
		err = kpe.WriteUpdate(ctx, conn, s, card.Info.Serial, kpe.Update{Sequence: 1, Groups: map[int][]byte{kpe.DGEmployment: dg2}, SOD: card.SOD}, kpe.WriteOptions{})
		var ue *kpe.UpdateError
		if !errors.As(err, &ue) || ue.Step != tc.step || !errors.Is(err, tc.want) {
			t.Errorf("%s (serial %s): %v", tc.name, hex.EncodeToString(card.Info.Serial[:]), err)
		}
	}
}

// The committed lab set (testdata/cards/lab): its SAM holds the update
// master of its KPEs' update keys, not of the clone's.
func TestLabSetUpdateKeys(t *testing.T) {
	ctx := context.Background()
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	dir := pcsctest.RepoPath("testdata/cards/lab")
	m, err := LoadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	load := func(name string) apdu.Card {
		c, err := cardsim.LoadCard(filepath.Join(dir, "cards", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		r := cardsim.NewMemReader(name)
		r.Insert(c)
		conn, err := r.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	s, err := sam.Open(ctx, load("sam"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Activate(ctx, []byte(m.SAM.ActivationCode)); err != nil {
		t.Fatal(err)
	}
	for _, mc := range m.Cards {
		if mc.Kind != KindKPE && mc.Kind != KindKPETambahan {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(mc.Image), ".json")
		conn := load(name)
		card, err := kpe.Read(ctx, conn, s, kpe.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := kpe.StepCommitted // authenticated and begun; the old EF.SOD does not match the new DG2
		if mc.Variant == VariantClone {
			want = kpe.StepAuthenticated
		}
		dg2 := kpe.Employment{Status: "PNS", GolonganRuang: "IV/e"}.Encode()
		err = kpe.WriteUpdate(ctx, conn, s, card.Info.Serial, kpe.Update{Sequence: 1, Groups: map[int][]byte{kpe.DGEmployment: dg2}, SOD: card.SOD}, kpe.WriteOptions{})
		var ue *kpe.UpdateError
		if !errors.As(err, &ue) || ue.Step != want {
			t.Errorf("%s: %v", name, err)
		}
	}
}
