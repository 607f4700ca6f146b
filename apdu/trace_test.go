package apdu

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fixedClock returns times 1.5 ms apart starting at a fixed instant.
func fixedClock() func() time.Time {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	n := 0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		n++
		return t0.Add(time.Duration(n-1) * 1500 * time.Microsecond)
	}
}

// echoCard answers every command with a fixed response.
func echoCard(rsp string, err error) Transmitter {
	return transmitFunc(func([]byte) ([]byte, error) {
		if err != nil {
			return nil, err
		}
		return h(rsp), nil
	})
}

func traceOne(t *testing.T, unsafe bool, cmd, rsp string, err error) string {
	t.Helper()
	var buf bytes.Buffer
	tr := Trace(echoCard(rsp, err), &Tracer{W: &buf, Unsafe: unsafe, Now: fixedClock()})
	_, _ = tr.Transmit(context.Background(), h(cmd))
	line := buf.String()
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
		t.Fatalf("want exactly one line, got %q", line)
	}
	return strings.TrimSuffix(line, "\n")
}

func TestTraceFormat(t *testing.T) {
	eq(t, traceOne(t, false, "00A4040007A000000087100200", "6F0A8407A00000008710029000", nil),
		"2026-01-02T03:04:05.000000Z -> 00A40400 07 A0000000871002 00 <- 6F0A8407A0000000871002 9000 (1.5ms)")
	eq(t, traceOne(t, false, "00B0000000", "", fmt.Errorf("pcsc: %w", ErrTimeout)),
		"2026-01-02T03:04:05.000000Z -> 00B00000 00 <- (none) (1.5ms) error: pcsc: card did not answer before the deadline")
	eq(t, traceOne(t, false, "00A4000C", "6A82", nil),
		"2026-01-02T03:04:05.000000Z -> 00A4000C <- 6A82 (1.5ms)")
	eq(t, traceOne(t, false, "00B00000000100", "9000", nil),
		"2026-01-02T03:04:05.000000Z -> 00B00000 000100 <- 9000 (1.5ms)")
	eq(t, traceOne(t, false, "00DA0000000002AABB0010", "9000", nil),
		"2026-01-02T03:04:05.000000Z -> 00DA0000 000002 <redacted 2 bytes> 0010 <- 9000 (1.5ms)")
	eq(t, traceOne(t, false, "00A4", "90", nil),
		"2026-01-02T03:04:05.000000Z -> 00A4 (invalid APDU) <- 90 (invalid response) (1.5ms)")
	eq(t, traceOne(t, false, "00CA0101", "", fmt.Errorf("multi\nline")),
		"2026-01-02T03:04:05.000000Z -> 00CA0101 <- (none) (1.5ms) error: multi\\nline")
}

func TestTraceRedaction(t *testing.T) {
	type rule struct {
		cmd, rsp         string
		redactC, redactR bool
	}
	pin := "0020008108 3132333435363738"
	rules := map[string]rule{
		"plain SELECT":                {"00A4040002A00000", "AABB9000", false, false},
		"VERIFY":                      {pin, "9000", true, true},
		"VERIFY retries":              {pin, "63C2", true, true},
		"VERIFY odd":                  {"0021008104 31323334", "9000", true, true},
		"CHANGE REFERENCE DATA":       {"0024008108 3132333435363738", "9000", true, true},
		"DISABLE VERIFICATION REQ":    {"0026008104 31323334", "9000", true, true},
		"ENABLE VERIFICATION REQ":     {"0028008104 31323334", "9000", true, true},
		"RESET RETRY COUNTER":         {"002C008108 3132333435363738", "9000", true, true},
		"MANAGE SECURITY ENVIRONMENT": {"0022C1A406 800100840101", "9000", true, true},
		"PSO":                         {"002A9E9A04 01020304 00", "DEADBEEF9000", true, true},
		"EXTERNAL AUTHENTICATE":       {"0082000008 0102030405060708", "9000", true, true},
		"MUTUAL AUTHENTICATE":         {"0082000010 01020304050607080102030405060708 00", "AABBCCDD9000", true, true},
		"GENERAL AUTHENTICATE":        {"0086000004 7C028000 00", "7C0281009000", true, true},
		"GENERAL AUTHENTICATE odd":    {"0087000004 7C028000 00", "7C0281009000", true, true},
		"INTERNAL AUTHENTICATE":       {"0088000004 01020304 00", "AABB9000", true, true},
		"PUT DATA":                    {"00DA010102 AABB", "9000", true, true},
		"PUT DATA odd":                {"00DB3FFF02 AABB", "9000", true, true},
		"UPDATE BINARY":               {"00D6000002 AABB", "9000", true, true},
		"ENVELOPE":                    {"00C2000002 AABB 00", "CCDD9000", true, true},
		"READ BINARY":                 {"00B0000000", "AABBCCDD9000", false, true},
		"READ BINARY odd":             {"00B1000004 54028000 00", "5302AABB9000", false, true},
		"READ RECORD":                 {"00B2010400", "AABB9000", false, true},
		"GET DATA":                    {"00CA5F1F00", "AABB9000", false, true},
		"GET CHALLENGE":               {"0084000008", "01020304050607089000", false, false},
		"GET RESPONSE alone":          {"00C0000004", "AABBCCDD9000", false, false},
		"SM CLA 0C":                   {"0CA4040002 A000 00", "AABB9000", true, true},
		"SM CLA 08":                   {"08A4040002 A000 00", "AABB9000", true, true},
		"SM CLA 04":                   {"04A4040002 A000 00", "AABB9000", true, true},
		"SM CLA 1C chained":           {"1CA4040002 A000", "9000", true, true},
		"no SM CLA 01":                {"01A4040002 A000 00", "AABB9000", false, false},
		"SM CLA 60":                   {"60A4040002 A000 00", "AABB9000", true, true},
		"SM CLA 7F":                   {"7FA4040002 A000 00", "AABB9000", true, true},
		"no SM CLA 4F":                {"4FA4040002 A000 00", "AABB9000", false, false},
		"proprietary CLA 80 no SM":    {"80CA9F7F00", "AABB9000", false, true},
		"proprietary CLA 84 A4":       {"84A4040002 A000 00", "AABB9000", true, true},
		"SAM SM UNWRAP 80 32":         {"8032020004 AABBCCDD 00", "4E494B9000", true, true},
		"PC/SC LOAD KEYS":             {"FF82000006 FFFFFFFFFFFF", "9000", true, true},
		"PC/SC GET UID":               {"FFCA000000", "04A1B2C39000", false, true},
		"invalid VERIFY":              {"0020008108 3132", "6700", true, true},
		"error response":              {pin, "6983", true, true},
	}
	for name, r := range rules {
		t.Run(name, func(t *testing.T) {
			cmd, rsp := h(r.cmd), h(r.rsp)
			safe := traceOne(t, false, r.cmd, r.rsp, nil)
			unsafe := traceOne(t, true, r.cmd, r.rsp, nil)

			cmdPart, rspPart, _ := strings.Cut(safe, " <- ")
			l, err := decodeLayout(cmd)
			switch {
			case r.redactC && err != nil:
				check(t, strings.Contains(cmdPart, redacted(len(cmd)-4)), "command not redacted: %s", safe)
			case r.redactC && l.dataLen > 0:
				check(t, strings.Contains(cmdPart, redacted(l.dataLen)), "command not redacted: %s", safe)
				data := cmd[l.dataOff() : l.dataOff()+l.dataLen]
				check(t, !strings.Contains(cmdPart, hexUpper(data)), "command data visible: %s", safe)
			default:
				check(t, !strings.Contains(cmdPart, "redacted"), "command redacted: %s", safe)
			}
			check(t, strings.Contains(cmdPart, hexUpper(cmd[:4])), "header hidden: %s", safe)

			data, sw := rsp[:len(rsp)-2], rsp[len(rsp)-2:]
			check(t, strings.Contains(rspPart, hexUpper(sw)), "SW hidden: %s", safe)
			if len(data) > 0 {
				if r.redactR {
					check(t, strings.Contains(rspPart, redacted(len(data))), "response not redacted: %s", safe)
					check(t, !strings.Contains(rspPart, hexUpper(data)), "response visible: %s", safe)
				} else {
					check(t, strings.Contains(rspPart, hexUpper(data)), "response hidden: %s", safe)
				}
			}

			check(t, !strings.Contains(unsafe, "redacted"), "unsafe trace redacted: %s", unsafe)
			check(t, strings.Contains(strings.ReplaceAll(unsafe, " ", ""), hexUpper(cmd)), "unsafe trace lacks command: %s", unsafe)
		})
	}
}

func TestTraceRedactsGetResponseContinuation(t *testing.T) {
	var buf bytes.Buffer
	steps := []step{
		{"00B0000000", "AABB6104", nil},
		{"00C0000004", "CCDDEEFF6102", nil},
		{"00C0000002", "11229000", nil},
		{"00C0000002", "33449000", nil}, // no longer a continuation
	}
	s := newScript(t, steps...)
	tr := Trace(s, &Tracer{W: &buf, Now: fixedClock()})
	c := NewClient(tr, Limits{})
	_, err := c.Do(context.Background(), Command{INS: 0xB0, Ne: 256})
	must(t, err)
	_, err = tr.Transmit(context.Background(), h("00C0000002"))
	must(t, err)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	eq(t, len(lines), 4)
	check(t, strings.Contains(lines[0], "<- <redacted 2 bytes> 6104"), lines[0])
	check(t, strings.Contains(lines[1], "<- <redacted 4 bytes> 6102"), lines[1])
	check(t, strings.Contains(lines[2], "<- <redacted 2 bytes> 9000"), lines[2])
	check(t, strings.Contains(lines[3], "<- 3344 9000"), lines[3])
	check(t, !strings.Contains(buf.String(), "AABB") && !strings.Contains(buf.String(), "CCDD"), buf.String())
}

func TestTraceNilAndConcurrent(t *testing.T) {
	card := &chainCard{}
	eq(t, Trace(card, nil), Transmitter(card))
	eq(t, Trace(card, &Tracer{}), Transmitter(card))

	echo := echoCard("9000", nil)
	var buf bytes.Buffer
	tr := &Tracer{W: &buf}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := Trace(echo, tr)
			for j := 0; j < 50; j++ {
				_, _ = x.Transmit(context.Background(), h("00B0000000"))
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	eq(t, len(lines), 400)
	for _, l := range lines {
		check(t, strings.HasSuffix(l, ")") && strings.Contains(l, " -> 00B00000 00 <- 9000 ("), l)
	}
}

func TestTracePassesThrough(t *testing.T) {
	var buf bytes.Buffer
	tr := Trace(echoCard("", ErrCardRemoved), &Tracer{W: &buf})
	_, err := tr.Transmit(context.Background(), h("00B0000000"))
	errIs(t, err, ErrCardRemoved)
	tr = Trace(echoCard("0102 9000", nil), &Tracer{W: &buf})
	rsp, err := tr.Transmit(context.Background(), h("00B0000000"))
	must(t, err)
	hexEq(t, rsp, h("01029000"))
}

// fakeCard is a Card whose exchanges answer 9000 and whose other methods
// record that they were called.
type fakeCard struct {
	Transmitter
	began, ended, closed bool
}

func (c *fakeCard) Reader() string                         { return "reader 0" }
func (c *fakeCard) ATR() []byte                            { return h("3B00") }
func (c *fakeCard) BeginTransaction(context.Context) error { c.began = true; return nil }
func (c *fakeCard) EndTransaction() error                  { c.ended = true; return nil }
func (c *fakeCard) Reconnect(context.Context, bool) error  { return nil }
func (c *fakeCard) Close() error                           { c.closed = true; return nil }

// TraceCard traces the exchanges and leaves the rest of the card alone.
func TestTraceCard(t *testing.T) {
	card := &fakeCard{Transmitter: echoCard("9000", nil)}
	eq(t, TraceCard(card, nil), Card(card))
	var buf bytes.Buffer
	tc := TraceCard(card, &Tracer{W: &buf})
	eq(t, tc.Reader(), "reader 0")
	hexEq(t, tc.ATR(), h("3B00"))
	must(t, tc.BeginTransaction(context.Background()))
	rsp, err := tc.Transmit(context.Background(), h("00B0000000"))
	must(t, err)
	hexEq(t, rsp, h("9000"))
	must(t, tc.EndTransaction())
	must(t, tc.Close())
	check(t, card.began && card.ended && card.closed, "card methods reach the card")
	check(t, strings.Contains(buf.String(), " -> 00B00000 00 <- 9000 ("), buf.String())
}
