package kpeapp_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
	"kpe-agent/apdu/sm"
	"kpe-agent/internal/sod"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/cardsim/kpeapp"
	"kpe-agent/lab/cardsim/samapp"
)

var (
	updateMaster = bytes.Repeat([]byte{0x55}, 16)
	updSerial    = [8]byte{0, 0, 0, 0, 0, 0, 0, 1}
)

// renewableCard is sampleCard with update keys derived from updateMaster.
func renewableCard(t testing.TB, is issuer) *kpeapp.Applet {
	a := sampleCard(t, is, master, nil)
	keys, err := kpe.DeriveUpdateKeys(updateMaster, updSerial)
	require.NoError(t, err)
	files := map[uint16][]byte{}
	for _, fid := range []uint16{kpe.FIDCardInfo, kpe.FIDIdentity, kpe.FIDEmployment, kpe.FIDFamily, kpe.FIDBenefits, kpe.FIDPhoto, kpe.FIDSOD} {
		files[fid] = a.File(fid)
	}
	cardKeys, err := kpe.DeriveCardKeys(master, updSerial)
	require.NoError(t, err)
	b, err := kpeapp.New(kpeapp.Config{Name: "renewable-kpe", Keys: cardKeys, UpdateKeys: keys, Files: files})
	require.NoError(t, err)
	return b
}

// renewal builds an update of DG2 and DG3 over the card's current groups,
// with a new EF.SOD signed by the issuer.
func renewal(t testing.TB, is issuer, a *kpeapp.Applet, seq uint32, golongan string) (kpe.Update, map[int][]byte) {
	emp := kpe.Employment{Status: "PNS", GolonganRuang: golongan, WorkUnits: []kpe.WorkUnit{{Level: 1, Name: "Kantor Regional II"}}}.Encode()
	fam := kpe.Family{Members: []kpe.Member{{Spouse: true, Name: "Sri Wahyuni", Dependant: true}, {Name: "Putri Ayu", Dependant: true}}}.Encode()
	all := map[int][]byte{}
	for dg := kpe.DGIdentity; dg <= kpe.DGBIT; dg++ {
		fid, _ := kpe.GroupFID(dg)
		if b := a.File(fid); b != nil {
			all[dg] = b
		}
	}
	all[kpe.DGEmployment], all[kpe.DGFamily] = emp, fam
	so, err := sod.Sign(all, is.key, is.cert)
	require.NoError(t, err)
	id := [16]byte{0xAB, byte(seq)}
	return kpe.Update{ID: id, Sequence: seq, Groups: map[int][]byte{kpe.DGEmployment: emp, kpe.DGFamily: fam}, SOD: so}, all
}

func connectMem(t testing.TB, r *cardsim.MemReader) apdu.Card {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := r.Connect(context.Background())
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
}

// newLabSAMWithUpdate is newLabSAM that also holds updateMaster.
func newLabSAMWithUpdate(t testing.TB) *samapp.Applet {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	s, err := samapp.New(samapp.Config{Name: "lab-sam", Serial: [8]byte{0x53, 0x41, 0x4D, 0, 0, 0, 0, 1}, ActivationCode: []byte("123456"),
		Key: key, StatePath: filepath.Join(t.TempDir(), "sam.json"), KPEMaster: master, UpdateMaster: updateMaster})
	require.NoError(t, err)
	return s
}

func activeSAM(t testing.TB, cfg func(*samapp.Config)) *sam.SAM {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	c := samapp.Config{Name: "lab-sam", Serial: [8]byte{0x53, 0x41, 0x4D, 0, 0, 0, 0, 1}, ActivationCode: []byte("123456"),
		Key: key, StatePath: filepath.Join(t.TempDir(), "sam.json"), KPEMaster: master, UpdateMaster: updateMaster}
	if cfg != nil {
		cfg(&c)
	}
	app, err := samapp.New(c)
	require.NoError(t, err)
	r := cardsim.NewMemReader("sam")
	r.Insert(app)
	s, err := sam.Open(context.Background(), connectMem(t, r))
	require.NoError(t, err)
	require.NoError(t, s.Activate(context.Background(), []byte("123456")))
	return s
}

// WriteUpdate through the lab SAM, then a full re-read: the card verifies
// with the new groups and reports the sequence and id.
func TestWriteUpdateEndToEnd(t *testing.T) {
	ctx := context.Background()
	is := newIssuer(t)
	s := activeSAM(t, nil)
	a := renewableCard(t, is)
	r := cardsim.NewMemReader("kpe")
	r.Insert(a)
	c := connectMem(t, r)

	before, err := kpe.Read(ctx, c, s, kpe.ReadOptions{Roots: is.roots, Now: now})
	require.NoError(t, err)
	require.Equal(t, kpe.UpdateStatus{Supported: true}, before.Update)
	require.Equal(t, a.File(kpe.FIDSOD), before.SOD)
	require.Equal(t, a.File(kpe.FIDEmployment), before.Groups[kpe.DGEmployment])

	u, all := renewal(t, is, a, 1, "IV/d")
	var steps []string
	err = kpe.WriteUpdate(ctx, c, s, updSerial, u, kpe.WriteOptions{OnStep: func(st kpe.WriteStep, dg int) {
		steps = append(steps, fmt.Sprintf("%s %d", st, dg))
	}})
	require.NoError(t, err)
	require.Equal(t, []string{"authenticated 0", "begun 0", "group written 2", "group written 3", "committed 0"}, steps)

	after, err := kpe.Read(ctx, c, s, kpe.ReadOptions{Roots: is.roots, Now: now})
	require.NoError(t, err)
	require.True(t, after.Verification.DataAuthentic.OK, after.Verification.DataAuthentic.Reason)
	require.Equal(t, "IV/d", after.Employment.GolonganRuang)
	require.Len(t, after.Family.Members, 2)
	require.Equal(t, kpe.UpdateStatus{Supported: true, Sequence: 1, LastID: u.ID}, after.Update)
	require.Equal(t, u.SOD, after.SOD)
	for dg, b := range all {
		if dg != kpe.DGPhoto {
			require.Equal(t, b, after.Groups[dg], "DG%d", dg)
		}
	}
	st, err := kpe.ReadUpdateStatus(ctx, c, nil)
	require.NoError(t, err)
	require.Equal(t, after.Update, st)

	// The same update again (replay), and an older sequence: refused at
	// BEGIN, the card unchanged.
	for _, seq := range []uint32{1, 0} {
		old := u
		if seq == 0 {
			old, _ = renewal(t, is, a, 1, "III/a")
		}
		err = kpe.WriteUpdate(ctx, c, s, updSerial, old, kpe.WriteOptions{})
		var ue *kpe.UpdateError
		require.ErrorAs(t, err, &ue)
		require.Equal(t, kpe.StepBegun, ue.Step)
		require.ErrorIs(t, err, kpe.ErrUpdateRefused)
		require.ErrorIs(t, err, apdu.ErrConditionsNotSatisfied)
	}
	// A newer one is accepted.
	u2, _ := renewal(t, is, a, 7, "IV/e")
	require.NoError(t, kpe.WriteUpdate(ctx, c, s, updSerial, u2, kpe.WriteOptions{}))
	again, err := kpe.Read(ctx, c, s, kpe.ReadOptions{Roots: is.roots, Now: now})
	require.NoError(t, err)
	require.True(t, again.Verification.DataAuthentic.OK)
	require.Equal(t, "IV/e", again.Employment.GolonganRuang)
	require.Equal(t, uint32(7), again.Update.Sequence)
}

// countAPDUs counts the command APDUs of a transmitter.
type countAPDUs struct {
	t apdu.Transmitter
	n int
}

func (c *countAPDUs) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	c.n++
	return c.t.Transmit(ctx, cmd)
}

// A tear at every APDU of WriteUpdate, before the card sees it
// (RemoveAtAPDU) and after it processed it (AnswerLostAtAPDU): the card,
// reinserted, always verifies and holds all the old groups or all the new
// ones; only the answer to COMMIT lost leaves the new.
func TestWriteUpdateTear(t *testing.T) {
	ctx := context.Background()
	is := newIssuer(t)
	swSAM := kpe.SoftwareSAM{Master: master, UpdateMaster: updateMaster}
	probe := renewableCard(t, is)
	u, _ := renewal(t, is, probe, 1, "IV/d")
	newGroups, old := u.Groups, map[int][]byte{}
	for dg := range newGroups {
		fid, _ := kpe.GroupFID(dg)
		old[dg] = probe.File(fid)
	}
	r := cardsim.NewMemReader("probe")
	r.Insert(probe)
	cnt := &countAPDUs{t: connectMem(t, r)}
	require.NoError(t, kpe.WriteUpdate(ctx, cnt, swSAM, updSerial, u, kpe.WriteOptions{}))
	total := cnt.n
	require.Greater(t, total, 8)
	t.Logf("WriteUpdate of DG2, DG3 and EF.SOD: %d APDUs", total)

	for _, lost := range []bool{false, true} {
		for pos := 1; pos <= total; pos++ {
			name := fmt.Sprintf("lost=%v/apdu=%d", lost, pos)
			a := renewableCard(t, is)
			r := cardsim.NewMemReader("kpe")
			r.Insert(a)
			c := connectMem(t, r)
			f := cardsim.Fault{RemoveAtAPDU: pos, ReinsertAfter: time.Millisecond}
			if lost {
				f = cardsim.Fault{AnswerLostAtAPDU: pos, ReinsertAfter: time.Millisecond}
			}
			r.SetFault(f)
			err := kpe.WriteUpdate(ctx, c, swSAM, updSerial, u, kpe.WriteOptions{})
			require.ErrorIs(t, err, apdu.ErrCardRemoved, name)
			var ue *kpe.UpdateError
			require.ErrorAs(t, err, &ue, name)
			if pos == total {
				require.Equal(t, kpe.StepCommitted, ue.Step, name)
			}
			r.ClearFault()
			c = connectMem(t, r)
			card, err := kpe.Read(ctx, c, swSAM, kpe.ReadOptions{Roots: is.roots, Now: now})
			require.NoError(t, err, name)
			require.True(t, card.Verification.DataAuthentic.OK, "%s: %s", name, card.Verification.DataAuthentic.Reason)
			wantNew := lost && pos == total
			want, seq := old, uint32(0)
			if wantNew {
				want, seq = newGroups, 1
			}
			for dg := range old {
				require.Equal(t, want[dg], card.Groups[dg], "%s: DG%d", name, dg)
			}
			require.Equal(t, seq, card.Update.Sequence, name)
		}
	}
}

// session opens a secure-messaging session on c with keyRef and keys
// (the card side's answer checked), after selecting the application.
func session(t testing.TB, c apdu.Transmitter, keyRef byte, keys kpe.CardKeys) (*apdu.Client, error) {
	ctx := context.Background()
	pc := apdu.NewClient(c, apdu.Limits{})
	_, err := pc.SelectAID(ctx, kpe.DefaultAID)
	require.NoError(t, err)
	rnd, err := pc.GetChallenge(ctx, kpe.RndLen)
	require.NoError(t, err)
	auth, ext, err := kpe.StartAuth(keys, rnd, rand.Reader)
	require.NoError(t, err)
	resp, err := pc.Send(ctx, apdu.Command{INS: apdu.InsExternalAuthenticate, P2: keyRef, Data: ext, Ne: kpe.AuthDataLen})
	if err != nil {
		return nil, err
	}
	sess, err := auth.Finish(resp)
	require.NoError(t, err)
	return apdu.NewClient(sm.Transmitter(c, sess), apdu.Limits{MaxCommandData: kpe.SMMaxCommandData}), nil
}

func begin(seq uint32, efs ...kpe.StagedEF) apdu.Command {
	return apdu.Command{CLA: kpe.CLAProprietary, INS: kpe.InsBeginUpdate, Data: kpe.BeginUpdate{Sequence: seq, EFs: efs}.Encode()}
}

var commit = apdu.Command{CLA: kpe.CLAProprietary, INS: kpe.InsCommitUpdate}

func write(off int, data []byte) apdu.Command {
	return apdu.Command{INS: kpe.InsUpdateBinary, P1: byte(off >> 8), P2: byte(off), Data: data}
}

func sw(err error) uint16 {
	var se *apdu.StatusError
	if errors.As(err, &se) {
		return se.SW
	}
	return 0
}

// What the card refuses, each leaving it unchanged.
func TestUpdateRefused(t *testing.T) {
	ctx := context.Background()
	is := newIssuer(t)
	readKeys, _ := kpe.DeriveCardKeys(master, updSerial)
	updKeys, _ := kpe.DeriveUpdateKeys(updateMaster, updSerial)
	a := renewableCard(t, is)
	r := cardsim.NewMemReader("kpe")
	r.Insert(a)
	c := connectMem(t, r)
	origSOD := a.File(kpe.FIDSOD)
	emp := kpe.Employment{Status: "PNS", GolonganRuang: "IV/d"}.Encode()
	sodEF := kpe.StagedEF{FID: kpe.FIDSOD, Size: len(origSOD)}
	empEF := kpe.StagedEF{FID: kpe.FIDEmployment, Size: len(emp)}

	// Plain: 6982.
	pc := apdu.NewClient(c, apdu.Limits{})
	_, err := pc.SelectAID(ctx, kpe.DefaultAID)
	require.NoError(t, err)
	for _, cmd := range []apdu.Command{begin(1, sodEF), write(0, []byte{1}), commit} {
		_, err := pc.Send(ctx, cmd)
		require.Equal(t, uint16(0x6982), sw(err), "plain %s", cmd)
	}
	// A read session: 6982.
	sc, err := session(t, c, kpe.KeyRefRead, readKeys)
	require.NoError(t, err)
	for _, cmd := range []apdu.Command{begin(1, sodEF), write(0, []byte{1}), commit} {
		_, err := sc.Send(ctx, cmd)
		require.Equal(t, uint16(0x6982), sw(err), "read session %s", cmd)
		sc, err = session(t, c, kpe.KeyRefRead, readKeys)
		require.NoError(t, err)
	}
	// The update key reference with the read keys: 6300.
	_, err = session(t, c, kpe.KeyRefUpdate, readKeys)
	require.Equal(t, uint16(0x6300), sw(err))
	// An unknown key reference: 6A86.
	_, err = session(t, c, 0x83, updKeys)
	require.Equal(t, uint16(0x6A86), sw(err))

	upd := func() *apdu.Client {
		sc, err := session(t, c, kpe.KeyRefUpdate, updKeys)
		require.NoError(t, err)
		return sc
	}
	// COMMIT without BEGIN; UPDATE BINARY without BEGIN: 6985.
	_, err = upd().Send(ctx, commit)
	require.Equal(t, uint16(0x6985), sw(err))
	_, err = upd().Send(ctx, write(0, []byte{1}))
	require.Equal(t, uint16(0x6985), sw(err))
	// BEGIN: a group renewal may not replace (DG5) 6A82; no EF.SOD,
	// malformed data 6A80.
	_, err = upd().Send(ctx, begin(1, sodEF, kpe.StagedEF{FID: kpe.FIDPhoto, Size: 10}))
	require.Equal(t, uint16(0x6A82), sw(err))
	_, err = upd().Send(ctx, begin(1, empEF))
	require.Equal(t, uint16(0x6A80), sw(err))
	_, err = upd().Send(ctx, apdu.Command{CLA: kpe.CLAProprietary, INS: kpe.InsBeginUpdate, Data: []byte{1, 2, 3}})
	require.Equal(t, uint16(0x6A80), sw(err))
	_, err = upd().Send(ctx, begin(0, sodEF))
	require.Equal(t, uint16(0x6985), sw(err), "sequence 0 is not newer than 0")

	// An incomplete write: 6985.
	sc = upd()
	_, err = sc.Send(ctx, begin(1, sodEF, empEF))
	require.NoError(t, err)
	require.NoError(t, sc.SelectFIDNoResponse(ctx, kpe.FIDEmployment))
	_, err = sc.Send(ctx, write(0, emp[:len(emp)-1]))
	require.NoError(t, err)
	_, err = sc.Send(ctx, write(len(emp), []byte{0}))
	require.Equal(t, uint16(0x6B00), sw(err), "beyond the staged size")
	require.NoError(t, sc.SelectFIDNoResponse(ctx, kpe.FIDSOD))
	for off := 0; off < len(origSOD); off += kpe.SMMaxCommandData {
		_, err = sc.Send(ctx, write(off, origSOD[off:min(off+kpe.SMMaxCommandData, len(origSOD))]))
		require.NoError(t, err)
	}
	_, err = sc.Send(ctx, commit)
	require.Equal(t, uint16(0x6985), sw(err))

	// A staged EF.SOD that does not match the groups (the old SOD with a
	// new DG2): 6A80, through WriteUpdate as ErrUpdateRefused at COMMIT.
	err = kpe.WriteUpdate(ctx, c, kpe.SoftwareSAM{UpdateMaster: updateMaster}, updSerial,
		kpe.Update{Sequence: 1, Groups: map[int][]byte{kpe.DGEmployment: emp}, SOD: origSOD}, kpe.WriteOptions{})
	var ue *kpe.UpdateError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, kpe.StepCommitted, ue.Step)
	require.ErrorIs(t, err, kpe.ErrUpdateRefused)
	require.Equal(t, uint16(0x6A80), sw(err))
	// A staging dropped by a new SELECT of the application: COMMIT 6982
	// in no session, and a new session has no staging (6985).
	sc = upd()
	_, err = sc.Send(ctx, begin(1, sodEF))
	require.NoError(t, err)
	_, err = pc.SelectAID(ctx, kpe.DefaultAID)
	require.NoError(t, err)
	_, err = upd().Send(ctx, commit)
	require.Equal(t, uint16(0x6985), sw(err))

	// Nothing changed.
	require.Equal(t, origSOD, a.File(kpe.FIDSOD))
	require.Equal(t, kpe.UpdateStatus{Supported: true}, a.UpdateStatus())
	card, err := kpe.Read(ctx, c, kpe.SoftwareSAM{Master: master}, kpe.ReadOptions{Roots: is.roots, Now: now})
	require.NoError(t, err)
	require.True(t, card.Verification.DataAuthentic.OK)
}

// A card without update keys refuses the update key reference (6A88); a
// SAM without the update master gives ErrNoUpdateKey, as SoftwareSAM.
func TestUpdateWithoutKeys(t *testing.T) {
	ctx := context.Background()
	is := newIssuer(t)
	r := cardsim.NewMemReader("kpe")
	r.Insert(sampleCard(t, is, master, nil)) // no update keys
	c := connectMem(t, r)
	u, _ := renewal(t, is, sampleCard(t, is, master, nil), 1, "IV/d")
	err := kpe.WriteUpdate(ctx, c, kpe.SoftwareSAM{UpdateMaster: updateMaster}, updSerial, u, kpe.WriteOptions{})
	require.ErrorIs(t, err, kpe.ErrAuthFailed)
	require.ErrorIs(t, err, apdu.ErrReferenceNotFound)

	noKey := activeSAM(t, func(c *samapp.Config) { c.UpdateMaster = nil })
	_, _, err = noKey.BeginUpdateAuth(ctx, updSerial, make([]byte, kpe.RndLen))
	require.ErrorIs(t, err, sam.ErrNoUpdateKey)
	require.ErrorIs(t, err, kpe.ErrNoUpdateKey)
	r2 := cardsim.NewMemReader("kpe2")
	r2.Insert(renewableCard(t, is))
	err = kpe.WriteUpdate(ctx, connectMem(t, r2), noKey, updSerial, u, kpe.WriteOptions{})
	var ue *kpe.UpdateError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, kpe.StepAuthenticated, ue.Step)
	require.ErrorIs(t, err, kpe.ErrNoUpdateKey)
	err = kpe.WriteUpdate(ctx, connectMem(t, r2), kpe.SoftwareSAM{Master: master}, updSerial, u, kpe.WriteOptions{})
	require.ErrorIs(t, err, kpe.ErrNoUpdateKey)

	// The SAM's update authentication with the read master's keys fails on
	// the card (the SAM derives update keys, not card keys).
	wrong := activeSAM(t, func(c *samapp.Config) { c.UpdateMaster = master })
	err = kpe.WriteUpdate(ctx, connectMem(t, r2), wrong, updSerial, u, kpe.WriteOptions{})
	require.ErrorIs(t, err, kpe.ErrAuthFailed)
}

// stripStatus answers the renewal status GET DATA with sw, as a card
// older than renewal does.
type stripStatus struct {
	t  apdu.Transmitter
	sw uint16
}

func (s stripStatus) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if len(cmd) >= 2 && cmd[0] == kpe.CLAProprietary && cmd[1] == apdu.InsGetData {
		return []byte{byte(s.sw >> 8), byte(s.sw)}, nil
	}
	return s.t.Transmit(ctx, cmd)
}

func TestReadOlderCardWithoutRenewalStatus(t *testing.T) {
	ctx := context.Background()
	is := newIssuer(t)
	r := cardsim.NewMemReader("kpe")
	r.Insert(sampleCard(t, is, master, nil))
	c := connectMem(t, r)
	// the renewal status is optional: whatever status word a card answers
	// (an older card, or one that misbehaves there), the read goes on
	for _, s := range []uint16{0x6A88, 0x6D00, 0x6A86, 0x6A82, 0x6E00, 0x6F00, 0x6985, 0x6700} {
		card, err := kpe.Read(ctx, stripStatus{c, s}, kpe.SoftwareSAM{Master: master}, kpe.ReadOptions{Roots: is.roots, Now: now})
		require.NoError(t, err, "%04X", s)
		require.False(t, card.Update.Supported)
		require.True(t, card.Verification.DataAuthentic.OK)
	}
	// and so does an answer that is not a renewal status
	card, err := kpe.Read(ctx, garbledStatus{c}, kpe.SoftwareSAM{Master: master}, kpe.ReadOptions{Roots: is.roots, Now: now})
	require.NoError(t, err)
	require.False(t, card.Update.Supported)
	require.True(t, card.Verification.DataAuthentic.OK)
}

// garbledStatus answers the renewal status with 9000 and bytes that are
// not one.
type garbledStatus struct{ t apdu.Transmitter }

func (g garbledStatus) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if len(cmd) >= 2 && cmd[0] == kpe.CLAProprietary && cmd[1] == apdu.InsGetData {
		return []byte{0x71, 0x05, 0x80, 0x01, 0x00, 0x90, 0x00}, nil
	}
	return g.t.Transmit(ctx, cmd)
}
