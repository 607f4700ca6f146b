package kpeapp_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/pcsctest"
)

// Card images of type kpe and ktpel are parsed strictly: anything malformed
// is an error, never a panic.
func FuzzParseImage(f *testing.F) {
	for _, name := range []string{"kpe-clone", "ktpel-siti"} {
		b, err := os.ReadFile(pcsctest.RepoPath("testdata/cards/lab/cards/" + name + ".json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"ktpel","name":"x","uid":"04112233","keys":{"enc":"00","mac":"00"},"files":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := cardsim.ParseCard(data, "")
		if err == nil && c == nil {
			t.Fatal("nil card without error")
		}
	})
}

// The applet's BEGIN UPDATE takes any data inside an update session
// without panicking, and accepts exactly what kpe.ParseBeginUpdate accepts
// with a sequence newer than the card's.
func FuzzAppletBeginUpdate(f *testing.F) {
	f.Add(kpe.BeginUpdate{Sequence: 1, EFs: []kpe.StagedEF{{FID: kpe.FIDEmployment, Size: 120}, {FID: kpe.FIDSOD, Size: 900}}}.Encode())
	f.Add(kpe.BeginUpdate{Sequence: 0, EFs: []kpe.StagedEF{{FID: kpe.FIDSOD, Size: 900}}}.Encode())
	f.Add([]byte{0x01})
	is := newIssuer(f)
	r := cardsim.NewMemReader("kpe")
	r.Insert(renewableCard(f, is))
	keys, err := kpe.DeriveUpdateKeys(updateMaster, updSerial)
	if err != nil {
		f.Fatal(err)
	}
	sc, err := session(f, connectMem(f, r), kpe.KeyRefUpdate, keys)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || len(data) > kpe.SMMaxCommandData {
			return
		}
		_, err := sc.Send(context.Background(), apdu.Command{CLA: kpe.CLAProprietary, INS: kpe.InsBeginUpdate, Data: data})
		b, perr := kpe.ParseBeginUpdate(data)
		want := perr == nil && b.Sequence > 0
		if (err == nil) != want {
			t.Fatalf("BEGIN UPDATE %X: card %v, parser %v", data, err, perr)
		}
		if err != nil && sw(err) == 0 {
			t.Fatalf("BEGIN UPDATE %X: not a status error: %v", data, err)
		}
	})
}

// The applet's DEBIT takes any data without panicking: it answers a
// status word, and it changes the purse only for a command carrying the
// genuine MAC_SAM over the current PTC, by exactly its amount.
func FuzzAppletPurseDebit(f *testing.F) {
	dk, err := kpe.DerivePurseKey(kpe.PurseDebit, debitMaster, updSerial)
	if err != nil {
		f.Fatal(err)
	}
	genuine := func(amount uint32, ptc uint32) []byte {
		o := kpe.PurseOrder{Kind: kpe.PurseDebit, CardSerial: updSerial, PTC: ptc, Amount: amount, Time: 7}
		mac, _ := kpe.PurseMAC(dk, kpe.PurseMACInput(o, samSerial, 1))
		return kpe.PurseCommand{Amount: amount, SAMSerial: samSerial, SAMTxn: 1, Time: 7, MAC: mac}.Encode()
	}
	f.Add(genuine(100, 0))
	f.Add(genuine(100_000, 0))
	f.Add(genuine(0, 0))
	f.Add([]byte{0x01})
	a, r := purseCard(f, updSerial, 10_000, 0)
	c := connectMem(f, r)
	if _, err := kpe.ReadPurse(context.Background(), c, nil); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || len(data) > 255 {
			return
		}
		before, _ := a.Purse()
		_, sw := sendPurse(t, c, kpe.InsPurseDebit, data)
		after, _ := a.Purse()
		cmd, perr := kpe.ParsePurseCommand(data)
		valid := perr == nil && bytes.Equal(data, genuineFor(t, dk, cmd, before.PTC)) && cmd.Amount <= before.Balance
		if (sw == 0x9000) != valid {
			t.Fatalf("DEBIT %X: SW %04X, valid %v", data, sw, valid)
		}
		if sw != 0x9000 && after != before {
			t.Fatalf("DEBIT %X refused with %04X but the purse changed", data, sw)
		}
		if sw == 0x9000 && (after.Balance != before.Balance-cmd.Amount || after.PTC != before.PTC+1) {
			t.Fatalf("DEBIT %X: %+v → %+v", data, before, after)
		}
	})
}

// genuineFor is the command with cmd's fields and the MAC_SAM over ptc.
func genuineFor(t *testing.T, key []byte, cmd kpe.PurseCommand, ptc uint32) []byte {
	o := kpe.PurseOrder{Kind: kpe.PurseDebit, CardSerial: updSerial, PTC: ptc, Amount: cmd.Amount, Time: cmd.Time}
	mac, err := kpe.PurseMAC(key, kpe.PurseMACInput(o, cmd.SAMSerial, cmd.SAMTxn))
	if err != nil {
		t.Fatal(err)
	}
	cmd.MAC = mac
	return cmd.Encode()
}
