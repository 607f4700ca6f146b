package labset

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"kpe-agent/lab/cardsim/samapp"
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

// purseKeysOf reads a set's purse masters file.
func purseKeysOf(t *testing.T, dir string, m *Manifest) (debit, credit []byte) {
	t.Helper()
	if m.PurseKeys == "" {
		t.Fatal("the manifest names no purse keys file")
	}
	b, err := os.ReadFile(filepath.Join(dir, m.PurseKeys))
	if err != nil {
		t.Fatal(err)
	}
	var f purseKeysFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if debit, err = hex.DecodeString(f.DebitMaster); err != nil || len(debit) != 16 {
		t.Fatalf("debit master: %v", err)
	}
	if credit, err = hex.DecodeString(f.CreditMaster); err != nil || len(credit) != 16 {
		t.Fatalf("credit master: %v", err)
	}
	return debit, credit
}

// checkPurses: every KPE the spec gives a purse has it with the spec's
// balance and maximum; a debit and a credit through the set's SAM go
// through, and the card's proofs verify under the keys the masters file
// derives (what the back office checks); the clone's purse refuses the
// SAM's MAC and keeps its balance; a card without a purse says so.
func checkPurses(t *testing.T, dir string, m *Manifest, spec *Spec) {
	ctx := context.Background()
	debitMaster, creditMaster := purseKeysOf(t, dir, m)
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
	bare, err := sam.Open(ctx, load("sam"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bare.Activate(ctx, []byte(m.SAM.ActivationCode)); err != nil {
		t.Fatal(err)
	}
	// the set's SAM trusts the set's BKN roots for top-up authorisations:
	// a document signer under the renewal root (the back office's) signs
	s := samapp.AuthorisingSAM{SAM: bare, Issuer: must(m.TopUpIssuer(dir, "Lab top-up signer"))}
	purses := 0
	for _, cs := range spec.Cards {
		if cs.Kind != KindKPE && cs.Kind != KindKPETambahan {
			continue
		}
		conn := load(cs.File)
		serial := [8]byte(must(hex.DecodeString(cs.Serial)))
		st, err := kpe.ReadPurse(ctx, conn, kpe.DefaultAID)
		if cs.Purse == nil {
			if !errors.Is(err, kpe.ErrNoPurse) {
				t.Errorf("%s: no purse in the spec, READ PURSE: %v", cs.File, err)
			}
			continue
		}
		purses++
		wantMax := cs.Purse.MaxBalance
		if wantMax == 0 {
			wantMax = kpe.DefaultMaxBalance
		}
		if err != nil || st.Balance != cs.Purse.Balance || st.MaxBalance != wantMax || st.PTC != 0 {
			t.Fatalf("%s: purse %+v, %v; want balance %d max %d", cs.File, st, err, cs.Purse.Balance, wantMax)
		}
		// without an authorisation the SAM refuses a credit, and the
		// card does not move
		if _, err := kpe.Credit(ctx, conn, bare, serial, 500, time.Now()); !errors.Is(err, sam.ErrCreditNotAuthorised) {
			t.Errorf("%s: a credit without an authorisation: %v, want sam.ErrCreditNotAuthorised", cs.File, err)
		}
		if st2, _ := kpe.ReadPurse(ctx, conn, kpe.DefaultAID); st2 != st {
			t.Errorf("%s: the refused credit moved the purse: %+v", cs.File, st2)
		}
		res, err := kpe.Debit(ctx, conn, s, serial, 1_000, time.Now())
		if cs.Variant == VariantClone {
			if !errors.Is(err, kpe.ErrPurseMAC) {
				t.Errorf("%s: a debit on the clone: %v, want the card to refuse the SAM's MAC", cs.File, err)
			}
			if st2, _ := kpe.ReadPurse(ctx, conn, kpe.DefaultAID); st2 != st {
				t.Errorf("%s: the refused debit moved the purse: %+v", cs.File, st2)
			}
			continue
		}
		if err != nil || res.Proof.Balance != cs.Purse.Balance-1_000 || res.Proof.PTC != 1 {
			t.Fatalf("%s: debit: %+v %v", cs.File, res, err)
		}
		key := must(kpe.DerivePurseKey(kpe.PurseDebit, debitMaster, serial))
		if mac := must(kpe.PurseMAC(key, res.Proof.ProofInput())); !kpe.PurseMACEqual(mac, res.Proof.MAC) {
			t.Errorf("%s: the debit proof does not verify under the masters file's key", cs.File)
		}
		res, err = kpe.Credit(ctx, conn, s, serial, 500, time.Now())
		if err != nil || res.Proof.Balance != cs.Purse.Balance-500 || res.Proof.PTC != 2 {
			t.Fatalf("%s: credit: %+v %v", cs.File, res, err)
		}
		key = must(kpe.DerivePurseKey(kpe.PurseCredit, creditMaster, serial))
		if mac := must(kpe.PurseMAC(key, res.Proof.ProofInput())); !kpe.PurseMACEqual(mac, res.Proof.MAC) {
			t.Errorf("%s: the credit proof does not verify under the masters file's key", cs.File)
		}
	}
	if purses == 0 {
		t.Fatal("no card of the set has a purse")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// The committed lab set (testdata/cards/lab).
func TestLabSetPurses(t *testing.T) {
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	dir := pcsctest.RepoPath("testdata/cards/lab")
	m, err := LoadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := LoadSpec(filepath.Join(dir, "spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	checkPurses(t, dir, m, spec)
}

// A generated set gives the spec's purses, with keys from masters that
// only its SAM images and its masters file hold.
func TestGeneratePurses(t *testing.T) {
	t.Setenv("KPE_CARDSIM_STATE_DIR", t.TempDir())
	full, err := LoadSpec(pcsctest.RepoPath("testdata/cards/lab/spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	spec := &Spec{SAM: full.SAM}
	for _, cs := range full.Cards {
		if cs.File == "sam" || strings.HasPrefix(cs.File, "kpe-budi") || cs.File == "kpe-clone" || cs.File == "kpe-tampered" || cs.File == "kpe-tambahan-putri" {
			spec.Cards = append(spec.Cards, cs)
		}
	}
	out := t.TempDir()
	m, err := Generate(spec, out, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(out, m.PurseKeys)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("purse keys file: %v %v", fi, err)
	}
	checkPurses(t, out, m, spec)
}
