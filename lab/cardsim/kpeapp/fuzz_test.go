package kpeapp_test

import (
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
