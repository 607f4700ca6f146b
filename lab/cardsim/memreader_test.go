package cardsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"kpe-agent/apdu"
)

func TestFaultJSON(t *testing.T) {
	f := Fault{RemoveAtAPDU: 3, ReinsertAfter: time.Second, Delay: 500 * time.Millisecond, DelayCount: 2, MalformedAtAPDU: 5, AnswerLostAtAPDU: 4}
	b, err := json.Marshal(f)
	noErr(t, err)
	equal(t, string(b), `{"remove_at_apdu":3,"reinsert_after":"1s","delay":"500ms","delay_count":2,"malformed_at_apdu":5,"answer_lost_at_apdu":4}`, "JSON")
	var g Fault
	noErr(t, json.Unmarshal(b, &g))
	equal(t, g, f, "round trip")
	noErr(t, json.Unmarshal([]byte(`{}`), &g))
	equal(t, g.IsZero(), true, "empty fault")
	for _, bad := range []string{`{"delay":500}`, `{"delay":"5 parsecs"}`, `{"remove_at":1}`, `{"delay_count":-1}`, `{"reinsert_after":"-1s"}`, `{"answer_lost_at_apdu":-2}`, `[]`} {
		if json.Unmarshal([]byte(bad), &g) == nil {
			t.Fatalf("%s accepted", bad)
		}
	}
}

func TestFaultState(t *testing.T) {
	var s faultState
	equal(t, s.next(nil), faultAction{}, "unarmed")
	s.set(Fault{Delay: time.Millisecond, DelayCount: 2, MalformedAtAPDU: 2, RemoveAtAPDU: 3})
	a1, a2, a3, a4 := s.next(nil), s.next(nil), s.next(nil), s.next(nil)
	equal(t, a1, faultAction{n: 1, delay: time.Millisecond}, "apdu 1")
	equal(t, a2, faultAction{n: 2, delay: time.Millisecond, malformed: true}, "apdu 2")
	equal(t, a3, faultAction{n: 3, remove: true}, "apdu 3")
	equal(t, a4, faultAction{n: 4}, "apdu 4")
	s.set(Fault{Delay: time.Millisecond}) // re-arming restarts the count; DelayCount 0 = all
	for i := 1; i <= 5; i++ {
		equal(t, s.next(nil), faultAction{n: i, delay: time.Millisecond}, "delay all")
	}
	s.set(Fault{RemoveAtAPDU: 1, MalformedAtAPDU: 1})
	equal(t, s.next(nil), faultAction{n: 1, remove: true}, "remove wins over malformed")
	s.set(Fault{AnswerLostAtAPDU: 2, MalformedAtAPDU: 2, RemoveAtAPDU: 3, ReinsertAfter: time.Second})
	equal(t, s.next(nil), faultAction{n: 1, reinsertAfter: time.Second}, "apdu 1")
	equal(t, s.next(nil), faultAction{n: 2, answerLost: true, reinsertAfter: time.Second}, "answer lost wins over malformed")
	equal(t, s.next(nil), faultAction{n: 3, remove: true, reinsertAfter: time.Second}, "apdu 3")
	s.set(Fault{AnswerLostAtAPDU: 1, RemoveAtAPDU: 1})
	equal(t, s.next(nil), faultAction{n: 1, remove: true}, "remove wins over answer lost")
}

// countingCard counts the APDUs it processed.
type countingCard struct {
	shortCard
	n int
}

func (c *countingCard) Process([]byte) []byte { c.n++; return []byte{0x90, 0x00} }

// AnswerLostAtAPDU: the card processes the command, the answer is lost
// with the card (RemoveAtAPDU: the command never reaches it); both come
// back after ReinsertAfter.
func TestMemReaderAnswerLost(t *testing.T) {
	for _, lost := range []bool{true, false} {
		card := &countingCard{}
		r := NewMemReader("mem")
		r.Insert(card)
		c, err := r.Connect(context.Background())
		noErr(t, err)
		transmit(t, c, selAIDNo)
		f := Fault{RemoveAtAPDU: 1, ReinsertAfter: 20 * time.Millisecond}
		if lost {
			f = Fault{AnswerLostAtAPDU: 1, ReinsertAfter: 20 * time.Millisecond}
		}
		r.SetFault(f)
		if _, err := c.Transmit(context.Background(), hx(selAIDNo)); !errors.Is(err, apdu.ErrCardRemoved) {
			t.Fatalf("lost=%v: %v", lost, err)
		}
		want := 1
		if lost {
			want = 2
		}
		equal(t, card.n, want, "APDUs the card processed")
		deadline := time.Now().Add(2 * time.Second)
		for r.Card() == nil {
			if time.Now().After(deadline) {
				t.Fatal("card not reinserted")
			}
			time.Sleep(5 * time.Millisecond)
		}
		noErr(t, c.Reconnect(context.Background(), false))
		transmit(t, c, selAIDNo)
		equal(t, card.n, want+1, "after reinsertion")
	}
}

// panicCard panics on every APDU.
type panicCard struct{}

func (panicCard) ATR() []byte           { return DefaultATR }
func (panicCard) PowerOn()              {}
func (panicCard) PowerOff()             {}
func (panicCard) Reset()                {}
func (panicCard) Process([]byte) []byte { panic("boom") }

// shortCard answers with one byte.
type shortCard struct{ panicCard }

func (shortCard) Process([]byte) []byte { return []byte{0x90} }

func newMemReaderWithCard(t *testing.T) (*MemReader, *FileSystemCard, apdu.Card) {
	t.Helper()
	r := NewMemReader("Mem Reader 0")
	fs := loadFS(t, "generic-fs.json")
	r.Insert(fs)
	c, err := r.Connect(context.Background())
	noErr(t, err)
	return r, fs, c
}

func transmit(t *testing.T, c apdu.Card, cmd string) []byte {
	t.Helper()
	resp, err := c.Transmit(context.Background(), hx(cmd))
	noErr(t, err)
	return resp
}

func TestMemReaderBasics(t *testing.T) {
	r := NewMemReader("Mem Reader 0")
	equal(t, r.Name(), "Mem Reader 0", "name")
	if _, err := r.Connect(context.Background()); !errors.Is(err, apdu.ErrNoCard) {
		t.Fatalf("connect to empty reader: %v", err)
	}
	fs := loadFS(t, "generic-fs.json")
	r.Insert(fs)
	c, err := r.Connect(context.Background())
	noErr(t, err)
	equal(t, c.Reader(), "Mem Reader 0", "Reader()")
	if !bytes.Equal(c.ATR(), fs.ATR()) {
		t.Fatal("ATR")
	}
	resp := transmit(t, c, selAID)
	if !bytes.HasSuffix(resp, SWOK.Bytes()) {
		t.Fatalf("select: %X", resp)
	}
	equal(t, r.APDUs(), 1, "apdu count")

	// Removal: ErrCardRemoved, and Connect reports ErrNoCard.
	r.Remove()
	if _, err := c.Transmit(context.Background(), hx(selAID)); !errors.Is(err, apdu.ErrCardRemoved) || !apdu.Retriable(err) {
		t.Fatalf("transmit after removal: %v", err)
	}
	if err := c.Reconnect(context.Background(), false); !errors.Is(err, apdu.ErrNoCard) {
		t.Fatalf("reconnect to empty reader: %v", err)
	}
	// Reinsertion: the old connection still sees a removed card until Reconnect.
	r.Insert(fs)
	if _, err := c.Transmit(context.Background(), hx(selAID)); !errors.Is(err, apdu.ErrCardRemoved) {
		t.Fatalf("transmit on a stale connection: %v", err)
	}
	noErr(t, c.Reconnect(context.Background(), true))
	transmit(t, c, selAID)
	noErr(t, c.Close())
	noErr(t, c.Close())
	if _, err := c.Transmit(context.Background(), hx(selAID)); !errors.Is(err, apdu.ErrTransport) {
		t.Fatalf("transmit after close: %v", err)
	}
}

func TestMemReaderReset(t *testing.T) {
	r, _, c := newMemReaderWithCard(t)
	transmit(t, c, selAIDNo)
	transmit(t, c, "00A4020C025001")
	if resp := transmit(t, c, "00B0000001"); !bytes.Equal(resp, hx("019000")) {
		t.Fatalf("read: %X", resp)
	}
	// Reconnect with reset: the card's selection is gone.
	noErr(t, c.Reconnect(context.Background(), true))
	if resp := transmit(t, c, "00B0000001"); !bytes.Equal(resp, SWCommandNotAllowedNoEF.Bytes()) {
		t.Fatalf("read after reset: %X", resp)
	}
	// A reset by someone else: ErrCardReset once.
	c2, err := r.Connect(context.Background())
	noErr(t, err)
	r.ResetCard()
	for _, conn := range []apdu.Card{c, c2} {
		if _, err := conn.Transmit(context.Background(), hx(selAIDNo)); !errors.Is(err, apdu.ErrCardReset) {
			t.Fatalf("after ResetCard: %v", err)
		}
		transmit(t, conn, selAIDNo)
	}
	// c2's Reconnect(reset) is a reset for c.
	noErr(t, c2.Reconnect(context.Background(), true))
	if _, err := c.Transmit(context.Background(), hx(selAIDNo)); !errors.Is(err, apdu.ErrCardReset) {
		t.Fatalf("after the other connection's reset: %v", err)
	}
	transmit(t, c2, selAIDNo)
}

func TestMemReaderFaults(t *testing.T) {
	r, fs, c := newMemReaderWithCard(t)
	r.SetFault(Fault{MalformedAtAPDU: 2})
	transmit(t, c, selAIDNo)
	if resp := transmit(t, c, selAIDNo); !bytes.Equal(resp, []byte{0x90}) {
		t.Fatalf("malformed: %X", resp)
	}
	transmit(t, c, selAIDNo)

	// Delay beyond the deadline → ErrTimeout; within it → fine.
	// The delay is far beyond the bound so that a Transmit that waited for
	// the card instead of its deadline fails even on a loaded machine.
	r.SetFault(Fault{Delay: 3 * time.Second, DelayCount: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	start := time.Now()
	_, err := c.Transmit(ctx, hx(selAIDNo))
	cancel()
	if !errors.Is(err, apdu.ErrTimeout) {
		t.Fatalf("delayed transmit: %v", err)
	}
	if el := time.Since(start); el > 1500*time.Millisecond {
		t.Fatalf("Transmit waited %v past its deadline", el)
	}
	transmit(t, c, selAIDNo) // DelayCount 1: no more delays

	r.SetFault(Fault{Delay: 30 * time.Millisecond})
	start = time.Now()
	transmit(t, c, selAIDNo)
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Fatalf("no delay (%v)", el)
	}
	// Cancellation.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := c.Transmit(ctx, hx(selAIDNo)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled transmit: %v", err)
	}

	// Removal at the 2nd APDU; the reader becomes empty.
	r.SetFault(Fault{RemoveAtAPDU: 2})
	transmit(t, c, selAIDNo)
	if _, err := c.Transmit(context.Background(), hx(selAIDNo)); !errors.Is(err, apdu.ErrCardRemoved) {
		t.Fatalf("fault removal: %v", err)
	}
	if r.Card() != nil {
		t.Fatal("card still in the reader")
	}
	if _, err := r.Connect(context.Background()); !errors.Is(err, apdu.ErrNoCard) {
		t.Fatalf("connect after fault removal: %v", err)
	}

	// Removal with reinsertion.
	r.Insert(fs)
	noErr(t, c.Reconnect(context.Background(), false))
	r.SetFault(Fault{RemoveAtAPDU: 1, ReinsertAfter: 50 * time.Millisecond})
	if _, err := c.Transmit(context.Background(), hx(selAIDNo)); !errors.Is(err, apdu.ErrCardRemoved) {
		t.Fatalf("fault removal: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for r.Card() == nil {
		if time.Now().After(deadline) {
			t.Fatal("card not reinserted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	noErr(t, c.Reconnect(context.Background(), false))
	transmit(t, c, selAIDNo)
	r.ClearFault()
	transmit(t, c, selAIDNo)
}

func TestMemReaderCardMisbehaviour(t *testing.T) {
	for _, card := range []Card{panicCard{}, shortCard{}} {
		r := NewMemReader("r")
		r.Insert(card)
		c, err := r.Connect(context.Background())
		noErr(t, err)
		if resp := transmit(t, c, "00A40000"); !bytes.Equal(resp, SWUnknown.Bytes()) {
			t.Fatalf("%T: %X", card, resp)
		}
	}
}

func TestMemReaderTransactions(t *testing.T) {
	r, _, c1 := newMemReaderWithCard(t)
	c2, err := r.Connect(context.Background())
	noErr(t, err)
	noErr(t, c1.BeginTransaction(context.Background()))
	if err := c1.BeginTransaction(context.Background()); !errors.Is(err, apdu.ErrTransport) {
		t.Fatalf("nested begin: %v", err)
	}
	transmit(t, c1, selAIDNo) // the holder may transmit

	// c2 waits for the transaction, honouring its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	_, err = c2.Transmit(ctx, hx(selAIDNo))
	cancel()
	if !errors.Is(err, apdu.ErrTimeout) {
		t.Fatalf("transmit during another transaction: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Millisecond)
	err = c2.BeginTransaction(ctx)
	cancel()
	if !errors.Is(err, apdu.ErrTimeout) {
		t.Fatalf("begin during another transaction: %v", err)
	}

	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := c2.Transmit(context.Background(), hx(selAIDNo)); err != nil {
			t.Errorf("c2 after the transaction: %v", err)
		}
	})
	time.Sleep(10 * time.Millisecond)
	noErr(t, c1.EndTransaction())
	wg.Wait()
	if err := c1.EndTransaction(); !errors.Is(err, apdu.ErrTransport) {
		t.Fatalf("unbalanced end: %v", err)
	}
	// Close releases a held transaction.
	noErr(t, c2.BeginTransaction(context.Background()))
	noErr(t, c2.Close())
	noErr(t, c1.BeginTransaction(context.Background()))
	noErr(t, c1.EndTransaction())
}

func TestMemReaderConcurrent(t *testing.T) {
	r, _, _ := newMemReaderWithCard(t)
	r.SetFault(Fault{Delay: time.Millisecond, DelayCount: 20})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c, err := r.Connect(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for range 20 {
				err := c.BeginTransaction(context.Background())
				for errors.Is(err, apdu.ErrCardReset) { // reported once per reset, like PC/SC
					err = c.BeginTransaction(context.Background())
				}
				if err != nil {
					t.Error(err)
					return
				}
				resp, err := c.Transmit(context.Background(), hx(selAID))
				for errors.Is(err, apdu.ErrCardReset) {
					resp, err = c.Transmit(context.Background(), hx(selAID))
				}
				if err != nil || !bytes.HasSuffix(resp, SWOK.Bytes()) {
					t.Errorf("transmit: %X %v", resp, err)
				}
				_ = c.EndTransaction()
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			r.ResetCard()
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
}
