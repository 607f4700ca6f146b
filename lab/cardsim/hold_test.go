package cardsim

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// HoldAtAPDU holds the Nth APDU (of the instruction HoldINS when set)
// until released: WaitHold tells which command it is, ReleaseHold lets
// the card process and answer it, and a cancelled transmission (a
// removal) drops it before it reaches the card.
func TestMemReaderHold(t *testing.T) {
	ctx := context.Background()
	card := &countingCard{}
	r := NewMemReader("mem")
	r.Insert(card)
	c, err := r.Connect(ctx)
	noErr(t, err)
	if _, err := r.WaitHold(ctx); !errors.Is(err, ErrNoHold) {
		t.Fatalf("WaitHold without a hold: %v", err)
	}
	if err := r.ReleaseHold(); !errors.Is(err, ErrNoHold) {
		t.Fatalf("ReleaseHold without a hold: %v", err)
	}

	// the 2nd APDU with INS B0: the first B0 and any A4 go through
	r.SetFault(Fault{HoldAtAPDU: 2, HoldINS: 0xB0})
	transmit(t, c, "00B0000001")
	transmit(t, c, "00A4040000")
	equal(t, card.n, 2, "before the held APDU")
	done := make(chan error, 1)
	go func() {
		_, err := c.Transmit(ctx, hx("00B0000102"))
		done <- err
	}()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd, err := r.WaitHold(wctx)
	noErr(t, err)
	equal(t, string(cmd), string(hx("00B0000102")), "held command")
	select {
	case err := <-done:
		t.Fatalf("the held APDU was answered: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	equal(t, card.n, 2, "the held APDU has not reached the card")
	noErr(t, r.ReleaseHold())
	noErr(t, <-done)
	equal(t, card.n, 3, "released: processed")
	transmit(t, c, "00B0000001") // a hold holds once
	equal(t, card.n, 4, "after the hold")

	// a transmission given up while held (the card pulled) never reaches
	// the card; arming another fault lets a held APDU go
	r.SetFault(Fault{HoldAtAPDU: 1})
	tctx, tcancel := context.WithCancel(ctx)
	go func() {
		_, err := c.Transmit(tctx, hx("00B0000001"))
		done <- err
	}()
	_, err = r.WaitHold(wctx)
	noErr(t, err)
	tcancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled held APDU was answered")
	}
	equal(t, card.n, 4, "dropped")
	r.SetFault(Fault{HoldAtAPDU: 1})
	go func() {
		_, err := c.Transmit(ctx, hx("00B0000001"))
		done <- err
	}()
	_, err = r.WaitHold(wctx)
	noErr(t, err)
	r.ClearFault()
	noErr(t, <-done)
	equal(t, card.n, 5, "cleared: processed")
}

func TestFaultHoldJSON(t *testing.T) {
	f := Fault{HoldAtAPDU: 2, HoldINS: 0x40}
	b, err := json.Marshal(f)
	noErr(t, err)
	equal(t, string(b), `{"hold_at_apdu":2,"hold_ins":64}`, "JSON")
	var g Fault
	noErr(t, json.Unmarshal(b, &g))
	equal(t, g, f, "round trip")
	for _, bad := range []string{`{"hold_at_apdu":-1}`, `{"hold_at_apdu":1,"hold_ins":256}`, `{"hold_ins":64}`} {
		if json.Unmarshal([]byte(bad), &g) == nil {
			t.Fatalf("%s accepted", bad)
		}
	}
}

// StatusAtAPDU: the card processes the Nth APDU and its answer becomes
// the status word alone; the other APDUs pass. JSON carries the status
// as 4 hex digits, strictly.
func TestFaultStatusAfterProcessing(t *testing.T) {
	card := &countingCard{}
	r := NewMemReader("mem")
	r.Insert(card)
	c, err := r.Connect(context.Background())
	noErr(t, err)
	r.SetFault(Fault{StatusAtAPDU: 2, Status: 0x6985})
	equal(t, string(transmit(t, c, "00B0000001")), "\x90\x00", "1st APDU")
	equal(t, string(transmit(t, c, "00B0000001")), "\x69\x85", "2nd APDU: the status word")
	equal(t, card.n, 2, "the 2nd APDU reached the card")
	equal(t, string(transmit(t, c, "00B0000001")), "\x90\x00", "3rd APDU")

	f := Fault{StatusAtAPDU: 6, Status: 0x6C10}
	b, err := json.Marshal(f)
	noErr(t, err)
	equal(t, string(b), `{"status_at_apdu":6,"status":"6C10"}`, "JSON")
	var g Fault
	noErr(t, json.Unmarshal(b, &g))
	equal(t, g, f, "round trip")
	for _, bad := range []string{`{"status_at_apdu":1}`, `{"status":"6985"}`, `{"status_at_apdu":1,"status":"9000"}`,
		`{"status_at_apdu":1,"status":"69"}`, `{"status_at_apdu":1,"status":"69ZZ"}`, `{"status_at_apdu":-1,"status":"6985"}`} {
		if json.Unmarshal([]byte(bad), &g) == nil {
			t.Fatalf("%s accepted", bad)
		}
	}
}
