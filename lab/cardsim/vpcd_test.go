package cardsim

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// fakeVPCD plays the vpcd side of the protocol: it listens and the card
// connects to it.
type fakeVPCD struct {
	t    *testing.T
	ln   net.Listener
	port int
}

func listenVPCD(t *testing.T, port int) *fakeVPCD {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // a just-closed port may need a moment
		ln, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil || port == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	noErr(t, err)
	f := &fakeVPCD{t: t, ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
	t.Cleanup(func() { ln.Close() })
	return f
}

// listenVPCDPair returns listeners on two consecutive ports.
func listenVPCDPair(t *testing.T) (*fakeVPCD, *fakeVPCD) {
	t.Helper()
	for range 50 {
		a := listenVPCD(t, 0)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(a.port+1)))
		if err == nil {
			b := &fakeVPCD{t: t, ln: ln, port: a.port + 1}
			t.Cleanup(func() { ln.Close() })
			return a, b
		}
		a.ln.Close()
	}
	t.Fatal("no two consecutive free ports")
	return nil, nil
}

type vpcdConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func (f *fakeVPCD) accept(timeout time.Duration) (*vpcdConn, error) {
	f.ln.(*net.TCPListener).SetDeadline(time.Now().Add(timeout))
	c, err := f.ln.Accept()
	if err != nil {
		return nil, err
	}
	f.t.Cleanup(func() { c.Close() })
	return &vpcdConn{t: f.t, c: c, r: bufio.NewReader(c)}, nil
}

func (f *fakeVPCD) mustAccept() *vpcdConn {
	f.t.Helper()
	c, err := f.accept(5 * time.Second)
	noErr(f.t, err)
	return c
}

func (c *vpcdConn) send(payload []byte) {
	c.t.Helper()
	buf := binary.BigEndian.AppendUint16(nil, uint16(len(payload)))
	_, err := c.c.Write(append(buf, payload...))
	noErr(c.t, err)
}

func (c *vpcdConn) recv(timeout time.Duration) ([]byte, error) {
	c.c.SetReadDeadline(time.Now().Add(timeout))
	var hdr [2]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	_, err := io.ReadFull(c.r, buf)
	return buf, err
}

func (c *vpcdConn) mustRecv() []byte {
	c.t.Helper()
	b, err := c.recv(5 * time.Second)
	noErr(c.t, err)
	return b
}

func (c *vpcdConn) atr() []byte {
	c.t.Helper()
	c.send([]byte{vpcdGetATR})
	return c.mustRecv()
}

func (c *vpcdConn) apdu(cmd string) []byte {
	c.t.Helper()
	c.send(hx(cmd))
	return c.mustRecv()
}

// expectClosed waits for EOF (the card closed the connection).
func (c *vpcdConn) expectClosed() {
	c.t.Helper()
	_, err := c.recv(5 * time.Second)
	if !errors.Is(err, io.EOF) {
		c.t.Fatalf("expected the card to close the connection, got %v", err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newTestLab(t *testing.T, port, slots int) *Lab {
	t.Helper()
	l, err := NewLab(LabConfig{BasePort: port, Slots: slots, Logger: testLogger(t), SwapPause: 50 * time.Millisecond})
	noErr(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestVPCDProtocol(t *testing.T) {
	v := listenVPCD(t, 0)
	lab := newTestLab(t, v.port, 1)
	card := loadFS(t, "generic-fs.json")
	noErr(t, lab.Insert(0, card))
	conn := v.mustAccept()

	if got := conn.atr(); !bytes.Equal(got, card.ATR()) {
		t.Fatalf("ATR %X", got)
	}
	conn.send([]byte{vpcdPowerOn}) // no reply
	if got := conn.apdu(selAID); !bytes.Equal(got, append(hx("6211820138830250008408"+aidHex), 0x90, 0x00)) {
		t.Fatalf("select: %X", got)
	}
	conn.send([]byte{vpcdReset})
	if got := conn.apdu("00A4020C022F00"); !bytes.Equal(got, hx("9000")) {
		t.Fatalf("select EF.DIR under the MF after reset: %X", got) // reset → MF current
	}
	conn.send([]byte{0x09}) // unknown control: ignored
	if got := conn.atr(); !bytes.Equal(got, card.ATR()) {
		t.Fatalf("ATR %X", got)
	}
	// A large R-APDU (extended frame sizes are covered by the framing code).
	conn.apdu(selAIDNo)
	conn.apdu("00A4020C025002")
	if got := conn.apdu("00B0000000"); len(got) != 258 || !bytes.Equal(got[:256], ef5002[:256]) {
		t.Fatalf("read: %d bytes", len(got))
	}

	st := lab.Status()[0]
	want := SlotStatus{Slot: 0, Port: v.port, Inserted: true, Card: "generic-fs", ATR: fmt.Sprintf("%X", card.ATR()),
		Connected: true, Active: true, Powered: true, APDUs: 5}
	equal(t, fmt.Sprint(st), fmt.Sprint(want), "status")

	conn.send([]byte{vpcdPowerOff})
	waitFor(t, "power off", func() bool { return !lab.Status()[0].Powered })

	// Remove: the connection closes and is not retried.
	noErr(t, lab.Remove(0))
	conn.expectClosed()
	if _, err := v.accept(300 * time.Millisecond); err == nil {
		t.Fatal("removed card reconnected")
	}
	equal(t, lab.Status()[0].Inserted, false, "inserted after remove")
}

func TestVPCDFaults(t *testing.T) {
	v := listenVPCD(t, 0)
	lab := newTestLab(t, v.port, 1)
	noErr(t, lab.Insert(0, loadFS(t, "generic-fs.json")))
	conn := v.mustAccept()
	conn.send([]byte{vpcdPowerOn})

	// Malformed at the 2nd APDU after arming; ATR polls are not counted.
	noErr(t, lab.SetFault(0, Fault{MalformedAtAPDU: 2}))
	conn.atr()
	if got := conn.apdu(selAIDNo); !bytes.Equal(got, SWOK.Bytes()) {
		t.Fatalf("apdu 1: %X", got)
	}
	conn.atr()
	if got := conn.apdu(selAIDNo); !bytes.Equal(got, []byte{0x90}) {
		t.Fatalf("apdu 2 should be malformed: %X", got)
	}
	if got := conn.apdu(selAIDNo); !bytes.Equal(got, SWOK.Bytes()) {
		t.Fatalf("apdu 3: %X", got)
	}

	// Delay on the first APDU only; ATR answers are never delayed. The
	// delay is wide enough that a loopback round trip on a loaded machine
	// (bounded at 1 s) cannot be mistaken for it.
	const delay = 2500 * time.Millisecond
	noErr(t, lab.SetFault(0, Fault{Delay: delay, DelayCount: 1}))
	start := time.Now()
	conn.atr()
	if el := time.Since(start); el >= time.Second {
		t.Fatalf("ATR took %v", el)
	}
	start = time.Now()
	conn.apdu(selAIDNo)
	if el := time.Since(start); el < delay {
		t.Fatalf("delayed APDU took only %v", el)
	}
	start = time.Now()
	conn.apdu(selAIDNo)
	if el := time.Since(start); el >= time.Second {
		t.Fatalf("second APDU took %v", el)
	}
	st := lab.Status()[0]
	if st.Fault == nil || st.Fault.Delay != delay {
		t.Fatalf("status fault %+v", st.Fault)
	}
	noErr(t, lab.ClearFault(0))
	if lab.Status()[0].Fault != nil {
		t.Fatal("fault not cleared")
	}

	// Removal at the 2nd APDU: the socket closes, the slot is empty.
	noErr(t, lab.SetFault(0, Fault{RemoveAtAPDU: 2}))
	conn.apdu(selAIDNo)
	conn.send(hx(selAIDNo))
	conn.expectClosed()
	waitFor(t, "empty slot", func() bool { return !lab.Status()[0].Inserted })
	if _, err := v.accept(300 * time.Millisecond); err == nil {
		t.Fatal("fault-removed card reconnected")
	}
	if err := lab.Remove(0); !errors.Is(err, ErrSlotEmpty) {
		t.Fatalf("remove after fault removal: %v", err)
	}
}

func TestVPCDFaultReinsert(t *testing.T) {
	v := listenVPCD(t, 0)
	lab := newTestLab(t, v.port, 1)
	noErr(t, lab.Insert(0, loadFS(t, "generic-fs.json")))
	noErr(t, lab.SetFault(0, Fault{RemoveAtAPDU: 1, ReinsertAfter: 100 * time.Millisecond}))
	conn := v.mustAccept()
	conn.send(hx(selAIDNo))
	conn.expectClosed()
	conn2 := v.mustAccept()
	conn2.atr()
	if got := conn2.apdu(selAIDNo); !bytes.Equal(got, SWOK.Bytes()) {
		t.Fatalf("after reinsertion: %X", got)
	}
	equal(t, lab.Status()[0].Inserted, true, "inserted")
}

func TestVPCDReconnectsAfterListenerRestart(t *testing.T) {
	v := listenVPCD(t, 0)
	port := v.port
	lab := newTestLab(t, port, 1)
	noErr(t, lab.Insert(0, loadFS(t, "generic-fs.json")))
	conn := v.mustAccept()
	conn.atr()
	waitFor(t, "active", func() bool { return lab.Status()[0].Active })

	// pcscd goes away: listener and connection close.
	v.ln.Close()
	conn.c.Close()
	waitFor(t, "disconnected", func() bool { return !lab.Status()[0].Connected })
	time.Sleep(300 * time.Millisecond) // a few failed dials (backoff grows)

	// pcscd comes back on the same port.
	v2 := listenVPCD(t, port)
	conn2 := v2.mustAccept()
	conn2.atr()
	if got := conn2.apdu(selAIDNo); !bytes.Equal(got, SWOK.Bytes()) {
		t.Fatalf("after restart: %X", got)
	}
	st := lab.Status()[0]
	equal(t, st.Connected && st.Active, true, "connected and active")
}

func TestVPCDInsertBeforeListening(t *testing.T) {
	v := listenVPCD(t, 0)
	port := v.port
	v.ln.Close()
	lab := newTestLab(t, port, 1)
	noErr(t, lab.Insert(0, loadFS(t, "generic-fs.json")))
	time.Sleep(150 * time.Millisecond)
	st := lab.Status()[0]
	equal(t, st.Inserted && !st.Connected, true, "inserted, not connected")
	v2 := listenVPCD(t, port)
	conn := v2.mustAccept()
	conn.atr()
}

func TestLabSlots(t *testing.T) {
	a, b := listenVPCDPair(t)
	lab := newTestLab(t, a.port, 2)
	c0, c1 := loadFS(t, "generic-fs.json"), loadFS(t, "generic-fs-t0.json")
	noErr(t, lab.Insert(0, c0))
	noErr(t, lab.Insert(1, c1))
	if err := lab.Insert(1, c1); !errors.Is(err, ErrSlotOccupied) {
		t.Fatalf("double insert: %v", err)
	}
	for _, n := range []int{-1, 2} {
		if err := lab.Insert(n, c0); !errors.Is(err, ErrBadSlot) {
			t.Fatalf("slot %d: %v", n, err)
		}
		if err := lab.SetFault(n, Fault{}); !errors.Is(err, ErrBadSlot) {
			t.Fatalf("slot %d: %v", n, err)
		}
	}
	if err := lab.SetFault(0, Fault{Delay: -1}); err == nil {
		t.Fatal("negative fault accepted")
	}
	conn0, conn1 := a.mustAccept(), b.mustAccept()
	if !bytes.Equal(conn0.atr(), c0.ATR()) || !bytes.Equal(conn1.atr(), c1.ATR()) {
		t.Fatal("ATRs of the two slots")
	}
	// Faults are per slot.
	noErr(t, lab.SetFault(1, Fault{MalformedAtAPDU: 1}))
	if got := conn0.apdu(selAIDNo); !bytes.Equal(got, SWOK.Bytes()) {
		t.Fatalf("slot 0: %X", got)
	}
	if got := conn1.apdu(selAIDNo); !bytes.Equal(got, []byte{0x90}) {
		t.Fatalf("slot 1: %X", got)
	}

	// Swap slot 1: the old connection closes, the new card connects.
	c2 := loadFS(t, "generic-fs-extended.json")
	noErr(t, lab.Swap(1, c2))
	conn1.expectClosed()
	conn2 := b.mustAccept()
	if !bytes.Equal(conn2.atr(), c2.ATR()) {
		t.Fatal("swapped ATR")
	}
	equal(t, lab.Status()[1].Card, "generic-fs-extended", "swapped card name")

	noErr(t, lab.Remove(1))
	if err := lab.Remove(1); !errors.Is(err, ErrSlotEmpty) {
		t.Fatalf("double remove: %v", err)
	}
	noErr(t, lab.Swap(1, c1)) // swap into an empty slot inserts
	b.mustAccept()

	noErr(t, lab.Close())
	noErr(t, lab.Close())
	conn0.expectClosed()
	if err := lab.Insert(0, c0); !errors.Is(err, ErrLabClosed) {
		t.Fatalf("insert after close: %v", err)
	}
	if err := lab.Swap(0, c0); !errors.Is(err, ErrLabClosed) {
		t.Fatalf("swap after close: %v", err)
	}
}

func TestLabCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	v := listenVPCD(t, 0)
	lab, err := NewLab(LabConfig{BasePort: v.port, Slots: 3})
	noErr(t, err)
	noErr(t, lab.Insert(0, loadFS(t, "generic-fs.json"))) // connects
	noErr(t, lab.Insert(2, loadFS(t, "generic-fs.json"))) // keeps retrying
	conn := v.mustAccept()
	conn.atr()
	noErr(t, lab.SetFault(0, Fault{Delay: time.Hour}))
	conn.send(hx(selAIDNo)) // the slot goroutine now sleeps in the delay
	time.Sleep(50 * time.Millisecond)
	done := make(chan struct{})
	go func() { lab.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close hangs")
	}
	conn.c.Close()
	v.ln.Close()
	waitFor(t, "goroutines to stop", func() bool { return runtime.NumGoroutine() <= before })
}

func TestNewLabValidation(t *testing.T) {
	for _, cfg := range []LabConfig{{Slots: 11}, {Slots: -1}, {BasePort: 65535, Slots: 2}, {BasePort: -3}} {
		if _, err := NewLab(cfg); err == nil {
			t.Fatalf("%+v accepted", cfg)
		}
	}
	l, err := NewLab(LabConfig{})
	noErr(t, err)
	cfg := l.Config()
	equal(t, cfg.VPCDHost+":"+strconv.Itoa(cfg.BasePort), "127.0.0.1:35963", "defaults")
	equal(t, len(l.Status()), 2, "default slots")
	equal(t, l.Status()[1].Port, 35964, "port of slot 1")
	noErr(t, l.Close())
}

func TestProcessSafelyAndInsertChecks(t *testing.T) {
	if got := processSafely(panicCard{}, hx("00A40000"), slog.New(slog.DiscardHandler)); !bytes.Equal(got, SWUnknown.Bytes()) {
		t.Fatalf("panic: %X", got)
	}
	if got := processSafely(shortCard{}, hx("00A40000"), nil); !bytes.Equal(got, SWUnknown.Bytes()) {
		t.Fatalf("short: %X", got)
	}
	lab, err := NewLab(LabConfig{BasePort: 1, Slots: 1})
	noErr(t, err)
	defer lab.Close()
	if err := lab.Insert(0, noATRCard{}); err == nil {
		t.Fatal("card without ATR accepted")
	}
	if err := lab.Insert(0, nil); err == nil {
		t.Fatal("nil card accepted")
	}
}

type noATRCard struct{ panicCard }

func (noATRCard) ATR() []byte { return nil }

// AnswerLostAtAPDU through a vpcd slot: the card processes the APDU, the
// connection closes before the answer, the same card comes back.
func TestVPCDAnswerLost(t *testing.T) {
	v := listenVPCD(t, 0)
	lab := newTestLab(t, v.port, 1)
	card := &countingCard{}
	noErr(t, lab.Insert(0, card))
	noErr(t, lab.SetFault(0, Fault{AnswerLostAtAPDU: 2, ReinsertAfter: 100 * time.Millisecond}))
	equal(t, lab.Status()[0].Fault.AnswerLostAtAPDU, 2, "status shows the fault")
	conn := v.mustAccept()
	if got := conn.apdu(selAIDNo); !bytes.Equal(got, SWOK.Bytes()) {
		t.Fatalf("apdu 1: %X", got)
	}
	conn.send(hx(selAIDNo))
	conn.expectClosed()
	conn2 := v.mustAccept()
	if got := conn2.apdu(selAIDNo); !bytes.Equal(got, SWOK.Bytes()) {
		t.Fatalf("after reinsertion: %X", got)
	}
	equal(t, card.n, 3, "APDUs the card processed (the lost answer's included)")
}
