package apdu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// step is one expected exchange of a script: the command the client must
// send (hex, spaces ignored; empty = anything) and the card's answer.
type step struct {
	cmd string
	rsp string
	err error
}

// script is a Transmitter that plays a fixed dialogue and fails the test on
// any deviation.
type script struct {
	t     testing.TB
	steps []step
	n     int
}

func newScript(t testing.TB, steps ...step) *script { return &script{t: t, steps: steps} }

func (s *script) Transmit(_ context.Context, cmd []byte) ([]byte, error) {
	s.t.Helper()
	if s.n >= len(s.steps) {
		s.t.Fatalf("unexpected command %X after %d steps", cmd, s.n)
	}
	st := s.steps[s.n]
	s.n++
	if want := strings.ReplaceAll(st.cmd, " ", ""); want != "" && hexUpper(cmd) != want {
		s.t.Errorf("step %d: command %X, want %s", s.n, cmd, want)
	}
	if st.err != nil {
		return nil, st.err
	}
	return h(st.rsp), nil
}

func (s *script) done() {
	s.t.Helper()
	if s.n != len(s.steps) {
		s.t.Errorf("%d of %d scripted exchanges used", s.n, len(s.steps))
	}
}

// transmitFunc adapts a function to Transmitter.
type transmitFunc func(cmd []byte) ([]byte, error)

func (f transmitFunc) Transmit(_ context.Context, cmd []byte) ([]byte, error) { return f(cmd) }

func TestGetResponseChain(t *testing.T) {
	s := newScript(t,
		step{"00CA010100", "AABB 6104", nil},
		step{"00C0000004", "CCDDEEFF 6100", nil},
		step{"00C0000000", strings.Repeat("11", 256) + "6102", nil},
		step{"00C0000002", "2233 9000", nil},
	)
	c := NewClient(s, Limits{})
	r, err := c.Do(context.Background(), Command{INS: 0xCA, P1: 0x01, P2: 0x01, Ne: 256})
	must(t, err)
	eq(t, r.SW, 0x9000)
	hexEq(t, r.Data, h("AABBCCDDEEFF"+strings.Repeat("11", 256)+"2233"))
	s.done()
}

func TestGetResponseEndsWithError(t *testing.T) {
	s := newScript(t,
		step{"00B0000000", "AABB 6102", nil},
		step{"00C0000002", "6F00", nil},
	)
	r, err := NewClient(s, Limits{}).Do(context.Background(), Command{INS: 0xB0, Ne: 256})
	must(t, err)
	eq(t, r.SW, 0x6F00)
	hexEq(t, r.Data, h("AABB"))
	s.done()
}

func TestGetResponseCLA(t *testing.T) {
	for cla, want := range map[byte]byte{0x00: 0x00, 0x01: 0x01, 0x03: 0x03, 0x0C: 0x00, 0x0D: 0x01,
		0x10: 0x00, 0x40: 0x40, 0x45: 0x45, 0x6F: 0x4F, 0x80: 0x00, 0x84: 0x00, 0xA0: 0x00} {
		s := newScript(t,
			step{fmt.Sprintf("%02XCA010100", cla), "6101", nil},
			step{fmt.Sprintf("%02XC0000001", want), "AA9000", nil},
		)
		_, err := NewClient(s, Limits{}).Do(context.Background(), Command{CLA: cla, INS: 0xCA, P1: 1, P2: 1, Ne: 256})
		must(t, err)
		s.done()
	}
}

func TestGetResponseForeverIsBounded(t *testing.T) {
	n := 0
	card := transmitFunc(func(cmd []byte) ([]byte, error) {
		n++
		return h("6110"), nil // 61xx forever, never any data
	})
	c := NewClient(card, Limits{})
	_, err := c.Do(context.Background(), Command{INS: 0xCA, Ne: 16})
	errIs(t, err, ErrMalformedResponse)
	eq(t, n, 1+DefaultMaxGetResponse)

	n = 0
	c.MaxGetResponse = 5
	_, err = c.Do(context.Background(), Command{INS: 0xCA, Ne: 16})
	errIs(t, err, ErrMalformedResponse)
	eq(t, n, 6)
}

func TestGetResponseTotalIsBounded(t *testing.T) {
	n := 0
	full := append(bytes.Repeat([]byte{0x55}, 256), 0x61, 0x00)
	card := transmitFunc(func(cmd []byte) ([]byte, error) {
		n++
		return full, nil
	})
	c := NewClient(card, Limits{})
	c.MaxGetResponse = 10000
	_, err := c.Do(context.Background(), Command{INS: 0xCA, Ne: 256})
	errIs(t, err, ErrMalformedResponse)
	eq(t, n, 65536/256+1)
}

func TestWrongLe(t *testing.T) {
	s := newScript(t,
		step{"00B0000000", "6C10", nil},
		step{"00B0000010", strings.Repeat("AB", 16) + "9000", nil},
	)
	r, err := NewClient(s, Limits{}).Do(context.Background(), Command{INS: 0xB0, Ne: 256})
	must(t, err)
	eq(t, len(r.Data), 16)
	s.done()

	// 6C00 means 256.
	s = newScript(t,
		step{"0084000008", "6C00", nil},
		step{"0084000000", strings.Repeat("AB", 256) + "9000", nil},
	)
	r, err = NewClient(s, Limits{}).Do(context.Background(), Command{INS: 0x84, Ne: 8})
	must(t, err)
	eq(t, len(r.Data), 256)
	s.done()

	// 6Cxx and then 61xx.
	s = newScript(t,
		step{"00B0000000", "6C08", nil},
		step{"00B0000008", "0102 6106", nil},
		step{"00C0000006", "030405060708 9000", nil},
	)
	r, err = NewClient(s, Limits{}).Do(context.Background(), Command{INS: 0xB0, Ne: 256})
	must(t, err)
	hexEq(t, r.Data, h("0102030405060708"))
	s.done()
}

func TestWrongLeTwiceIsAnError(t *testing.T) {
	s := newScript(t,
		step{"00B0000000", "6C10", nil},
		step{"00B0000010", "6C08", nil},
	)
	r, err := NewClient(s, Limits{}).Do(context.Background(), Command{INS: 0xB0, Ne: 256})
	errIs(t, err, ErrMalformedResponse)
	errIs(t, err, ErrWrongLe)
	eq(t, r.SW, 0x6C08)
	s.done()

	// Also inside GET RESPONSE.
	s = newScript(t,
		step{"00B0000000", "6110", nil},
		step{"00C0000010", "6C08", nil},
		step{"00C0000008", "6C04", nil},
	)
	_, err = NewClient(s, Limits{}).Do(context.Background(), Command{INS: 0xB0, Ne: 256})
	errIs(t, err, ErrMalformedResponse)
	s.done()
}

// chainCard records the APDUs of a chained command and answers 9000.
type chainCard struct {
	cmds []Command
	raws [][]byte
}

func (c *chainCard) Transmit(_ context.Context, raw []byte) ([]byte, error) {
	cmd, err := ParseCommand(raw)
	if err != nil {
		return nil, err
	}
	c.cmds = append(c.cmds, cmd)
	c.raws = append(c.raws, raw)
	return h("9000"), nil
}

func TestCommandChaining(t *testing.T) {
	data := make([]byte, 600)
	for i := range data {
		data[i] = byte(i)
	}
	tests := []struct {
		name     string
		limits   Limits
		cla      byte
		sizes    []int
		extended bool
	}{
		{"short default", Limits{}, 0x00, []int{255, 255, 90}, false},
		{"short 100", Limits{MaxCommandData: 100}, 0x00, []int{100, 100, 100, 100, 100, 100}, false},
		{"short caps large MaxCommandData", Limits{MaxCommandData: 1000}, 0x00, []int{255, 255, 90}, false},
		{"extended single APDU", Limits{Extended: true}, 0x00, []int{600}, true},
		{"extended 256", Limits{Extended: true, MaxCommandData: 256}, 0x00, []int{256, 256, 88}, true},
		{"secure messaging CLA", Limits{}, 0x0C, []int{255, 255, 90}, false},
		{"logical channel 5", Limits{}, 0x41, []int{255, 255, 90}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			card := &chainCard{}
			c := NewClient(card, tt.limits)
			_, err := c.Do(context.Background(), Command{CLA: tt.cla, INS: 0x2A, P1: 0x9E, P2: 0x9A, Data: data, Ne: 256})
			must(t, err)
			if !eq(t, len(card.cmds), len(tt.sizes)) {
				return
			}
			var joined []byte
			for i, cmd := range card.cmds {
				last := i == len(card.cmds)-1
				eq(t, len(cmd.Data), tt.sizes[i], "APDU %d size", i)
				wantCLA := tt.cla | 0x10
				wantNe := 0
				if last {
					wantCLA, wantNe = tt.cla, 256
				}
				eq(t, cmd.CLA, wantCLA, "APDU %d CLA", i)
				eq(t, cmd.Ne, wantNe, "APDU %d Ne", i)
				eq(t, cmd.INS, 0x2A)
				eq(t, cmd.P1, 0x9E)
				eq(t, cmd.P2, 0x9A)
				isExt := card.raws[i][4] == 0
				eq(t, isExt, tt.extended && len(cmd.Data) > 255, "APDU %d extended", i)
				joined = append(joined, cmd.Data...)
			}
			hexEq(t, joined, data)
		})
	}
}

func TestChainingIntermediateError(t *testing.T) {
	s := newScript(t,
		step{"10DA0000FF", "6884", nil},
	)
	s.steps[0].cmd = "" // any
	r, err := NewClient(s, Limits{}).Do(context.Background(), Command{INS: 0xDA, Data: make([]byte, 300)})
	errIs(t, err, ErrChainingNotSupported)
	eq(t, r.SW, 0x6884)
	s.done()

	// A warning on a non-last APDU is an error as well (ISO/IEC 7816-4
	// forbids it), and so is 61xx.
	for _, sw := range []string{"6282", "6110", "6883"} {
		s := newScript(t, step{"", "9000", nil}, step{"", sw, nil})
		_, err := NewClient(s, Limits{}).Do(context.Background(), Command{INS: 0xDA, Data: make([]byte, 600)})
		errIs(t, err, ErrCardStatus, sw)
		s.done()
	}
}

func TestDoClampsNe(t *testing.T) {
	s := newScript(t, step{"00B0000000", "9000", nil})
	_, err := NewClient(s, Limits{}).Do(context.Background(), Command{INS: 0xB0, Ne: 1000})
	must(t, err)
	s.done()

	s = newScript(t, step{"00B0000000" + "0400", "9000", nil})
	_, err = NewClient(s, Limits{Extended: true, MaxResponseData: 1024}).Do(context.Background(), Command{INS: 0xB0, Ne: 4000})
	must(t, err)
	s.done()

	_, err = NewClient(s, Limits{}).Do(context.Background(), Command{INS: 0xB0, Ne: -1})
	errIs(t, err, ErrInvalidCommand)
}

func TestSend(t *testing.T) {
	ctx := context.Background()
	s := newScript(t,
		step{"", "0102 9000", nil},
		step{"", "0102 6282", nil},
		step{"", "6A82", nil},
		step{"", "63C1", nil},
	)
	c := NewClient(s, Limits{})
	b, err := c.Send(ctx, Command{INS: 0xB0, Ne: 2})
	must(t, err)
	hexEq(t, b, h("0102"))

	b, err = c.Send(ctx, Command{INS: 0xB0, Ne: 4})
	errIs(t, err, ErrEndOfFile)
	hexEq(t, b, h("0102"), "warning keeps data")

	b, err = c.Send(ctx, Command{INS: 0xA4, Data: h("0101")})
	errIs(t, err, ErrFileNotFound)
	check(t, b == nil)
	check(t, strings.Contains(err.Error(), "SELECT: 6A82: file or application not found"), err.Error())

	_, err = c.Send(ctx, Command{INS: 0x20, P2: 0x81, Data: h("31323334")})
	var re *RetriesError
	if check(t, errors.As(err, &re)) {
		eq(t, re.Retries, 1)
	}
	s.done()
}

func TestTransportErrorsPassThrough(t *testing.T) {
	for _, e := range []error{ErrCardRemoved, ErrCardReset, ErrTimeout, ErrNoService, ErrTransport} {
		s := newScript(t, step{"", "", fmt.Errorf("pcsc: %w", e)})
		_, err := NewClient(s, Limits{}).Send(context.Background(), Command{INS: 0xB0, Ne: 2})
		errIs(t, err, e)
		errIsNot(t, err, ErrCardStatus)
	}
	// Mid-way through GET RESPONSE.
	s := newScript(t, step{"", "6110", nil}, step{"", "", ErrCardRemoved})
	_, err := NewClient(s, Limits{}).Do(context.Background(), Command{INS: 0xB0, Ne: 16})
	errIs(t, err, ErrCardRemoved)
}

func TestMalformedResponse(t *testing.T) {
	s := newScript(t, step{"", "90", nil})
	_, err := NewClient(s, Limits{}).Do(context.Background(), Command{INS: 0xB0, Ne: 2})
	errIs(t, err, ErrMalformedResponse)
}

func TestContextDone(t *testing.T) {
	s := newScript(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := NewClient(s, Limits{}).Do(ctx, Command{INS: 0xB0, Ne: 2})
	errIs(t, err, context.Canceled)

	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = NewClient(s, Limits{}).Do(ctx, Command{INS: 0xB0, Ne: 2})
	errIs(t, err, ErrTimeout)
	errIs(t, err, context.DeadlineExceeded)

	_, err = (&Client{}).Do(context.Background(), Command{INS: 0xB0})
	errIs(t, err, ErrInvalidCommand)
}

func TestSelect(t *testing.T) {
	ctx := context.Background()
	s := newScript(t,
		step{"00A4040007A000000087100200", "6F07 8405 A000000087 9000", nil},
		step{"00A40004020101 00", "6203 8202 0101 9000", nil},
	)
	c := NewClient(s, Limits{})
	fci, err := c.SelectAID(ctx, h("A0000000871002"))
	must(t, err)
	hexEq(t, fci, h("6F078405A000000087"))
	fcp, err := c.SelectFID(ctx, 0x0101)
	must(t, err)
	hexEq(t, fcp, h("620382020101"))
	s.done()

	_, err = c.SelectAID(ctx, nil)
	errIs(t, err, ErrInvalidCommand)
	_, err = c.SelectAID(ctx, make([]byte, 17))
	errIs(t, err, ErrInvalidCommand)
}

func TestFileSize(t *testing.T) {
	for fcp, want := range map[string]int{
		"6204 8002 0123":                   0x123,
		"620B 8201 01 8302 0101 8002 7FFF": 0x7FFF,
		"6205 8003 000100":                 256,
		"6203 8101 10":                     16,
		"6208 8102 0200 8002 0100":         0x100, // 80 wins over 81
		"6206 8004 00010000":               65536,
		"6F06 6204 8002 0010":              16,
		"6F04 8002 0020":                   32,
		"6204 8002 0123 0000":              0x123, // padding after the template
	} {
		got, err := FileSize(h(fcp))
		must(t, err, fcp)
		eq(t, got, want, fcp)
	}
	for _, fcp := range []string{"", "6203 820101", "6206 8004 80000000", "6204 8002 01", "620080", "6202 8000"} {
		_, err := FileSize(h(fcp))
		errIs(t, err, ErrMalformedResponse, fcp)
	}
}

func TestGetChallenge(t *testing.T) {
	s := newScript(t,
		step{"0084000008", "0102030405060708 9000", nil},
		step{"0084000008", "01020304 9000", nil},
		step{"0084000008", "6D00", nil},
	)
	c := NewClient(s, Limits{})
	b, err := c.GetChallenge(context.Background(), 8)
	must(t, err)
	eq(t, len(b), 8)
	_, err = c.GetChallenge(context.Background(), 8)
	errIs(t, err, ErrMalformedResponse)
	_, err = c.GetChallenge(context.Background(), 8)
	errIs(t, err, ErrINSNotSupported)
	s.done()
	for _, n := range []int{0, -1, 257} {
		_, err = c.GetChallenge(context.Background(), n)
		errIs(t, err, ErrInvalidCommand)
	}
}

// FCP behaviours of fileCard.
const (
	fcpWithSize = iota // SELECT ... P2 04 returns 62 { 80 size }
	fcpNoSize          // returns 62 { 82 01 01 }
	fcpRefused         // answers 6A86 to P2 04 (only P2 0C works)
)

// fileCard simulates the file system part of an ISO/IEC 7816-4 card:
// SELECT by FID and READ BINARY (B0 and B1) of transparent EFs, with a
// response buffer of maxNe bytes.
type fileCard struct {
	t           testing.TB
	files       map[uint16][]byte
	fcp         int
	maxNe       int  // Ne above this is refused with 6700
	extended    bool // extended length APDUs accepted
	shortAnswer int  // > 0: at most this many content bytes per answer
	cur         []byte
	curOK       bool
	cmds        []Command
	raws        [][]byte
}

func newFileCard(t testing.TB, l Limits, content []byte) *fileCard {
	_, maxNe := l.effective()
	return &fileCard{t: t, files: map[uint16][]byte{0x0101: content}, maxNe: maxNe, extended: l.Extended,
		cur: content, curOK: true}
}

func (f *fileCard) Transmit(_ context.Context, raw []byte) ([]byte, error) {
	cmd, err := ParseCommand(raw)
	if err != nil {
		f.t.Errorf("card got invalid APDU %X: %v", raw, err)
		return h("6700"), nil
	}
	f.cmds = append(f.cmds, cmd)
	f.raws = append(f.raws, raw)
	if cmd.Extended() && !f.extended {
		f.t.Errorf("extended APDU %X sent to a short-length card", raw)
		return h("6700"), nil
	}
	if cmd.Ne > f.maxNe {
		f.t.Errorf("Ne %d above the card's %d: %X", cmd.Ne, f.maxNe, raw)
		return h("6700"), nil
	}
	switch cmd.INS {
	case 0xA4:
		return f.selectFile(cmd), nil
	case 0xB0:
		if cmd.P1&0x80 != 0 {
			return h("6A81"), nil
		}
		off := int(cmd.P1)<<8 | int(cmd.P2)
		return f.read(off, cmd.Ne, false), nil
	case 0xB1:
		if cmd.P1 != 0 || cmd.P2 != 0 || len(cmd.Data) < 3 || cmd.Data[0] != 0x54 || int(cmd.Data[1]) != len(cmd.Data)-2 || cmd.Data[1] > 4 {
			f.t.Errorf("bad B1 command %X", raw)
			return h("6A80"), nil
		}
		if cmd.Data[2] == 0 && cmd.Data[1] > 1 {
			f.t.Errorf("non-minimal B1 offset %X", raw)
		}
		off := 0
		for _, b := range cmd.Data[2:] {
			off = off<<8 | int(b)
		}
		if off <= maxB0Offset {
			f.t.Errorf("B1 used for offset %d: %X", off, raw)
		}
		return f.read(off, cmd.Ne, true), nil
	}
	return h("6D00"), nil
}

func (f *fileCard) selectFile(cmd Command) []byte {
	if cmd.P1 != 0 || len(cmd.Data) != 2 {
		return h("6A86")
	}
	fid := uint16(cmd.Data[0])<<8 | uint16(cmd.Data[1])
	var fcp []byte
	if fid == 0x3F00 {
		fcp = h("6203 8201 38")
		f.cur, f.curOK = nil, false
	} else {
		content, ok := f.files[fid]
		if !ok {
			return h("6A82")
		}
		f.cur, f.curOK = content, true
		switch f.fcp {
		case fcpWithSize:
			n := len(content)
			fcp = []byte{0x62, 0x06, 0x80, 0x04, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
		case fcpNoSize:
			fcp = h("6203 8201 01")
		}
	}
	switch {
	case cmd.P2 == 0x0C:
		return h("9000")
	case cmd.P2 == 0x04 && f.fcp == fcpRefused:
		return h("6A86")
	case cmd.P2 == 0x04:
		return append(fcp, 0x90, 0x00)
	}
	return h("6A86")
}

func (f *fileCard) read(off, ne int, odd bool) []byte {
	if !f.curOK {
		return h("6986")
	}
	if off >= len(f.cur) {
		return h("6B00")
	}
	avail := len(f.cur) - off
	want := ne // content bytes asked for
	if odd {
		want = 0
		for k := 1; k <= ne; k++ {
			if k+b1OverheadRef(k) <= ne {
				want = k
			}
		}
	}
	n := min(want, avail)
	if f.shortAnswer > 0 {
		n = min(n, f.shortAnswer)
	}
	data := f.cur[off : off+n]
	if odd {
		data = append([]byte{0x53}, append(berLength(n), data...)...)
	}
	sw := []byte{0x90, 0x00}
	if n < want && n == avail {
		sw = []byte{0x62, 0x82}
	}
	return append(append([]byte(nil), data...), sw...)
}

// berLength and b1OverheadRef are written independently of the client's
// helpers, as the reference they are tested against.
func berLength(n int) []byte {
	switch {
	case n < 0x80:
		return []byte{byte(n)}
	case n <= 0xFF:
		return []byte{0x81, byte(n)}
	case n <= 0xFFFF:
		return []byte{0x82, byte(n >> 8), byte(n)}
	}
	return []byte{0x83, byte(n >> 16), byte(n >> 8), byte(n)}
}

func b1OverheadRef(k int) int { return 1 + len(berLength(k)) }

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

var readLimits = []Limits{
	{},                     // short: 255 / 256
	{MaxResponseData: 200}, // small buffer
	{Extended: true, MaxResponseData: 4096},
	{Extended: true, MaxResponseData: 65535},
	{Extended: true}, // 65536
}

var readSizes = []int{0, 1, 255, 256, 257, 1000, 32767, 32768, 32769, 33022, 33023, 33024, 40000, 65535, 65536, 70000}

func TestReadBinaryUsesPlannedAPDUs(t *testing.T) {
	for _, l := range readLimits {
		for _, size := range readSizes {
			t.Run(fmt.Sprintf("%+v/%d", l, size), func(t *testing.T) {
				content := pattern(size)
				card := newFileCard(t, l, content)
				c := NewClient(card, l)
				got, err := c.ReadBinary(context.Background(), size)
				must(t, err)
				check(t, bytes.Equal(got, content), "content differs")
				plan := PlanReadBinary(size, l)
				eq(t, len(card.cmds), plan, "APDUs")
				for i, cmd := range card.cmds {
					if cmd.INS == 0xB0 {
						check(t, int(cmd.P1)<<8|int(cmd.P2) <= maxB0Offset, "B0 %d offset", i)
					}
				}
			})
		}
	}
}

func TestPlanReadBinaryKnownValues(t *testing.T) {
	short := Limits{}
	for size, want := range map[int]int{
		0: 0, 1: 1, 255: 1, 256: 1, 257: 2, 32767: 128, 32768: 128,
		32769: 129, // 128 full B0 + 1 B1
		33023: 129, // 127 full B0, B0 of 255 up to 32767, B0 of 256 from 32767
		40000: 157, // 128 B0 + ceil(7232/253) B1
		65536: 258, // 128 B0 + ceil(32768/253) B1
		-5:    0,
	} {
		eq(t, PlanReadBinary(size, short), want, "short %d", size)
	}
	ext := Limits{Extended: true, MaxResponseData: 65535}
	for size, want := range map[int]int{
		1: 1, 65535: 1, 65536: 2, 70000: 2, 32767 + 65535: 2, 32767 + 65536: 2, 32767 + 2*65535 + 1: 3,
	} {
		eq(t, PlanReadBinary(size, ext), want, "extended 65535, %d", size)
	}
	eq(t, PlanReadBinary(65536, Limits{Extended: true}), 1)
	eq(t, PlanReadBinary(200000, Limits{MaxResponseData: 2}), -1)
	eq(t, PlanReadBinary(32767+2, Limits{MaxResponseData: 2}), 16385) // 16383 x 2, then 1, then 2 from 32767
}

// minReadTable computes, for every size up to maxSize, the true minimum
// number of READ BINARY commands, as shortest paths over file offsets: from
// offset o a B0 reads 1..m bytes if o <= 32767, a B1 reads 1..k bytes
// anywhere (k from the 53 wrapper cost). Entries that cannot be reached
// are -1.
func minReadTable(maxSize, m int) []int {
	k := 0
	for j := 1; j <= m; j++ {
		if j+b1OverheadRef(j) <= m {
			k = j
		}
	}
	const inf = 1 << 40
	dist := make([]int, maxSize+1)
	// Sliding-window minima of dist over [x-w, x-1], one per command kind.
	type window struct {
		w int
		q []int
	}
	b0, b1 := &window{w: m}, &window{w: k}
	push := func(win *window, i int) {
		for len(win.q) > 0 && dist[win.q[len(win.q)-1]] >= dist[i] {
			win.q = win.q[:len(win.q)-1]
		}
		win.q = append(win.q, i)
	}
	best := func(win *window, x int) int {
		for len(win.q) > 0 && win.q[0] < x-win.w {
			win.q = win.q[1:]
		}
		if win.w == 0 || len(win.q) == 0 {
			return inf
		}
		return dist[win.q[0]]
	}
	for x := 1; x <= maxSize; x++ {
		o := x - 1 // the newest possible start offset
		if o <= maxB0Offset {
			push(b0, o)
		}
		push(b1, o)
		dist[x] = min(inf, 1+min(best(b0, x), best(b1, x)))
	}
	for i, d := range dist {
		if d >= inf {
			dist[i] = -1
		}
	}
	return dist
}

func TestPlanReadBinaryIsMinimal(t *testing.T) {
	const maxSize = 140000
	for _, m := range []int{3, 16, 100, 129, 200, 255, 256, 1000, 4096, 65535, 65536} {
		want := minReadTable(maxSize, m)
		l := Limits{MaxResponseData: m, Extended: m > 256}
		step := 1
		if m < 100 {
			step = 97 // the plan simulates up to 32768/m B0 commands per size
		}
		for size := 0; size <= maxSize; size += step {
			if got := PlanReadBinary(size, l); got != want[size] {
				t.Fatalf("M=%d size=%d: plan %d, minimum %d", m, size, got, want[size])
			}
		}
	}
}

func TestReadBinaryB1Encoding(t *testing.T) {
	// Short length: the first B1 reads 253 bytes at 32768 with Le 00.
	card := newFileCard(t, Limits{}, pattern(40000))
	_, err := NewClient(card, Limits{}).ReadBinary(context.Background(), 40000)
	must(t, err)
	var b1 [][]byte
	for i, cmd := range card.cmds {
		if cmd.INS == 0xB1 {
			b1 = append(b1, card.raws[i])
		}
	}
	eq(t, len(b1), 29)
	eq(t, hexUpper(b1[0]), "00B10000045402800000")
	eq(t, hexUpper(b1[1]), "00B100000454028"+"0FD00") // offset 32768+253 = 0x80FD
	// last: 40000 - 32768 - 28*253 = 148 bytes -> Ne 148+3 = 151 (0x97)
	eq(t, hexUpper(b1[28]), fmt.Sprintf("00B10000045402%04X%02X", 0x8000+28*253, 148+3))

	// Extended: offsets of three bytes and a two-byte Le.
	l := Limits{Extended: true, MaxResponseData: 4096}
	card = newFileCard(t, l, pattern(70000))
	_, err = NewClient(card, l).ReadBinary(context.Background(), 70000)
	must(t, err)
	found := false
	for i, cmd := range card.cmds {
		if cmd.INS == 0xB1 && len(cmd.Data) == 5 {
			found = true
			eq(t, cmd.Data[1], 3)
			eq(t, cmd.Data[2], 1, "offset above 65535")
			check(t, cmd.Ne <= 4096 && card.raws[i][4] == 0, "extended Ne %d", cmd.Ne)
		}
	}
	check(t, found, "no B1 with a 3-byte offset")
}

func TestReadBinaryShortAnswersContinue(t *testing.T) {
	card := newFileCard(t, Limits{}, pattern(1000))
	card.shortAnswer = 100
	got, err := NewClient(card, Limits{}).ReadBinary(context.Background(), 1000)
	must(t, err)
	check(t, bytes.Equal(got, pattern(1000)))
	eq(t, len(card.cmds), 10)
	// Each command asks for what is still missing (up to 256), from the
	// offset reached so far.
	eq(t, int(card.cmds[1].P2), 100)
	eq(t, card.cmds[9].Ne, 100)

	// Past the B0 limit too.
	card = newFileCard(t, Limits{}, pattern(34000))
	card.shortAnswer = 97
	got, err = NewClient(card, Limits{}).ReadBinary(context.Background(), 34000)
	must(t, err)
	check(t, bytes.Equal(got, pattern(34000)))
}

func TestReadBinaryEndOfFile(t *testing.T) {
	card := newFileCard(t, Limits{}, pattern(300))
	got, err := NewClient(card, Limits{}).ReadBinary(context.Background(), 500)
	errIs(t, err, ErrEndOfFile)
	check(t, bytes.Equal(got, pattern(300)), "data before the end is returned")
	eq(t, len(card.cmds), 2)
}

func TestReadBinaryBounded(t *testing.T) {
	// 9000 without data.
	n := 0
	empty := transmitFunc(func([]byte) ([]byte, error) { n++; return h("9000"), nil })
	_, err := NewClient(empty, Limits{}).ReadBinary(context.Background(), 1000)
	errIs(t, err, ErrMalformedResponse)
	eq(t, n, 1)

	// One byte per answer: bounded by 4*plan+16 commands.
	n = 0
	drip := transmitFunc(func([]byte) ([]byte, error) { n++; return h("AA9000"), nil })
	got, err := NewClient(drip, Limits{}).ReadBinary(context.Background(), 5000)
	errIs(t, err, ErrMalformedResponse)
	plan := PlanReadBinary(5000, Limits{})
	eq(t, n, 4*plan+16)
	eq(t, len(got), n)

	// More data than asked.
	n = 0
	flood := transmitFunc(func([]byte) ([]byte, error) { n++; return append(pattern(300), 0x90, 0x00), nil })
	_, err = NewClient(flood, Limits{}).ReadBinary(context.Background(), 100)
	errIs(t, err, ErrMalformedResponse)

	// Too large.
	c := NewClient(empty, Limits{})
	c.MaxFileSize = 10
	_, err = c.ReadBinary(context.Background(), 11)
	errIs(t, err, ErrInvalidCommand)
	_, err = c.ReadBinary(context.Background(), -1)
	errIs(t, err, ErrInvalidCommand)
	_, err = NewClient(empty, Limits{MaxResponseData: 2}).ReadBinary(context.Background(), 40000)
	errIs(t, err, ErrInvalidCommand)
}

func TestReadBinaryStatusErrors(t *testing.T) {
	s := newScript(t, step{"00B0000000", "6982", nil})
	_, err := NewClient(s, Limits{}).ReadBinary(context.Background(), 300)
	errIs(t, err, ErrSecurityStatusNotSatisfied)

	s = newScript(t, step{"00B0000000", strings.Repeat("AA", 256) + "9000", nil}, step{"00B001002C", "0102 6281", nil})
	got, err := NewClient(s, Limits{}).ReadBinary(context.Background(), 300)
	check(t, errors.Is(err, ErrCardStatus) && !errors.Is(err, ErrEndOfFile), "%v", err)
	eq(t, len(got), 258, "warning data kept")

	// B1 answer that is not a 53 object.
	s = newScript(t, step{"00B10000045402800000", "5402AABB9000", nil})
	_, _, err = NewClient(s, Limits{}).readChunk(context.Background(), 0x8000, 253, true)
	errIs(t, err, ErrMalformedResponse)
	s = newScript(t, step{"", "5305AABB9000", nil})
	_, _, err = NewClient(s, Limits{}).readChunk(context.Background(), 0x8000, 253, true)
	errIs(t, err, ErrMalformedResponse)
}

func TestReadEF(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		fcp   int
		size  int
		short int
		apdus int
	}{
		{"FCP size", fcpWithSize, 1000, 0, 1 + 4},
		{"FCP size 0", fcpWithSize, 0, 0, 1},
		{"FCP size large", fcpWithSize, 40000, 0, 1 + 157},
		{"no size, ends with 6B00", fcpNoSize, 512, 0, 1 + 3},
		{"no size, short answer", fcpNoSize, 300, 0, 1 + 2},
		{"no size, empty file", fcpNoSize, 0, 0, 1 + 1},
		{"no size, past 32767", fcpNoSize, 33000, 0, 1 + 128 + 1},
		{"FCP refused", fcpRefused, 700, 0, 2 + 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			content := pattern(tt.size)
			card := newFileCard(t, Limits{}, content)
			card.fcp = fcpWithSize
			card.fcp = tt.fcp
			card.cur, card.curOK = nil, false
			got, err := NewClient(card, Limits{}).ReadEF(ctx, 0x0101)
			must(t, err)
			check(t, bytes.Equal(got, content), "content: %d bytes, want %d", len(got), len(content))
			eq(t, len(card.cmds), tt.apdus)
		})
	}

	// The card ends a size-less file with 6282.
	s := newScript(t,
		step{"00A4000402010100", "9000", nil},
		step{"00B0000000", strings.Repeat("AA", 256) + "9000", nil},
		step{"00B0010000", "BBBB6282", nil},
	)
	got, err := NewClient(s, Limits{}).ReadEF(ctx, 0x0101)
	must(t, err)
	eq(t, len(got), 258)
	s.done()

	// Errors.
	card := newFileCard(t, Limits{}, pattern(10))
	_, err = NewClient(card, Limits{}).ReadEF(ctx, 0x0202)
	errIs(t, err, ErrFileNotFound)

	card = newFileCard(t, Limits{}, pattern(100))
	c := NewClient(card, Limits{})
	c.MaxFileSize = 99
	_, err = c.ReadEF(ctx, 0x0101)
	errIs(t, err, ErrMalformedResponse)
	card.fcp = fcpNoSize
	_, err = c.ReadEF(ctx, 0x0101)
	errIs(t, err, ErrMalformedResponse)

	s = newScript(t, step{"00A4000402010100", "6203 8001 9000", nil})
	_, err = NewClient(s, Limits{}).ReadEF(ctx, 0x0101)
	errIs(t, err, ErrMalformedResponse)

	// Warnings from SELECT do not stop the read.
	s = newScript(t,
		step{"00A4000402010100", "6204 8002 0002 6283", nil},
		step{"00B0000002", "6985", nil},
	)
	_, err = NewClient(s, Limits{}).ReadEF(ctx, 0x0101)
	errIs(t, err, ErrConditionsNotSatisfied)
	s.done()
}

func TestReadLimits(t *testing.T) {
	info := h("4301F8 4703F741E0 7F6608 020205F0 020205F0 0000")
	card := newFileCard(t, Limits{}, nil)
	card.files[0x2F01] = info
	l, err := NewClient(card, Limits{}).ReadLimits(context.Background())
	must(t, err)
	eq(t, l, Limits{MaxCommandData: 0x5F0 - 9, MaxResponseData: 0x5F0 - 2, Extended: true})
	eq(t, hexUpper(card.raws[0]), "00A40004023F0000")
	eq(t, hexUpper(card.raws[1]), "00A40004022F0100")

	// Nothing announced: a short-length card.
	card.files[0x2F01] = h("4301F8")
	l, err = NewClient(card, Limits{}).ReadLimits(context.Background())
	must(t, err)
	eq(t, l, Limits{})

	for _, bad := range []string{
		"7F6604 020205F0",                // one integer
		"7F6606 020105 020105",           // too small
		"7F6608 020205F0 020205",         // malformed
		"7F660C 020500000005F0 020205F0", // integer too long
	} {
		card.files[0x2F01] = h(bad)
		_, err := NewClient(card, Limits{}).ReadLimits(context.Background())
		errIs(t, err, ErrMalformedResponse, bad)
	}

	// Values above the extended maxima are capped.
	got, err := parseATRInfo(h("7F660A 0203010000 0203010000"))
	must(t, err)
	eq(t, got, Limits{MaxCommandData: 65536 - 9, MaxResponseData: 65536 - 2, Extended: true})
	got, err = parseATRInfo(h("7F660A 0203100000 0203100000"))
	must(t, err)
	eq(t, got, Limits{MaxCommandData: 65535, MaxResponseData: 65536, Extended: true})

	// No EF.ATR/INFO at all: also a short-length card.
	card = newFileCard(t, Limits{}, nil)
	l, err = NewClient(card, Limits{}).ReadLimits(context.Background())
	must(t, err)
	eq(t, l, Limits{})
}

func TestLimitsEffective(t *testing.T) {
	for _, tt := range []struct {
		l      Limits
		nc, ne int
	}{
		{Limits{}, 255, 256},
		{Limits{MaxCommandData: 100, MaxResponseData: 128}, 100, 128},
		{Limits{MaxCommandData: 1000, MaxResponseData: 1000}, 255, 256},
		{Limits{Extended: true}, 65535, 65536},
		{Limits{Extended: true, MaxCommandData: 1511, MaxResponseData: 1518}, 1511, 1518},
		{Limits{MaxCommandData: -1, MaxResponseData: -1}, 255, 256},
	} {
		nc, ne := tt.l.effective()
		eq(t, nc, tt.nc, "%+v", tt.l)
		eq(t, ne, tt.ne, "%+v", tt.l)
	}
}

func TestGetResponseRespectsMaxResponseData(t *testing.T) {
	s := newScript(t,
		step{"00CA010110", "AABB 6130", nil},
		step{"00C0000010", strings.Repeat("11", 16) + "6120", nil},
		step{"00C0000010", strings.Repeat("22", 16) + "6110", nil},
		step{"00C0000010", strings.Repeat("33", 16) + "9000", nil},
	)
	r, err := NewClient(s, Limits{MaxResponseData: 16}).Do(context.Background(), Command{INS: 0xCA, P1: 1, P2: 1, Ne: 256})
	must(t, err)
	eq(t, len(r.Data), 2+48)
	s.done()

	// 6Cxx is re-issued with the card's value even above MaxResponseData.
	s = newScript(t,
		step{"00B0000010", "6C20", nil},
		step{"00B0000020", strings.Repeat("11", 32) + "9000", nil},
	)
	r, err = NewClient(s, Limits{MaxResponseData: 16}).Do(context.Background(), Command{INS: 0xB0, Ne: 16})
	must(t, err)
	eq(t, len(r.Data), 32)
	s.done()
}
