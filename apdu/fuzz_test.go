package apdu

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{"9000", "6A82", "01029000", "6110", "63C2", "90", ""} {
		f.Add(h(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if len(b) < 2 || len(b) > MaxExtendedNe+2 {
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("%d bytes: err %v", len(b), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("valid length %d: %v", len(b), err)
		}
		if !bytes.Equal(r.Bytes(), b) {
			t.Fatalf("round trip %X -> %X", b, r.Bytes())
		}
		e := r.Err()
		if (e == nil) != (r.SW == 0x9000) {
			t.Fatalf("SW %04X: err %v", r.SW, e)
		}
		if e != nil {
			if !errors.Is(e, ErrCardStatus) || e.Error() == "" {
				t.Fatalf("SW %04X: bad error %v", r.SW, e)
			}
			var se *StatusError
			if !errors.As(e, &se) || se.SW != r.SW {
				t.Fatalf("SW %04X: errors.As failed", r.SW)
			}
		}
	})
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"00A4000C", "00B0000000", "00B00000000101", "00A4000C023F00",
		"00A40400050102030405" + "00", "002A9E9A0000050102030405012C",
		"00DA0000000002AABBCCDD", "00B0000000FF", "00B00000000000AA",
	} {
		f.Add(h(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCommand(b)
		l, lerr := decodeLayout(b)
		if (err == nil) != (lerr == nil) {
			t.Fatalf("ParseCommand %v, layout %v", err, lerr)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("error %v does not wrap ErrInvalidCommand", err)
			}
			return
		}
		if len(c.Data) != l.dataLen || c.Ne != l.ne || 4+l.lcLen+l.dataLen+l.leLen != len(b) {
			t.Fatalf("layout %+v inconsistent with %+v for %X", l, c, b)
		}
		if !bytes.Equal(c.Data, b[l.dataOff():l.dataOff()+l.dataLen]) {
			t.Fatalf("data mismatch for %X", b)
		}
		enc, err := c.Bytes()
		if err != nil {
			t.Fatalf("re-encoding %X: %v", b, err)
		}
		extIn := l.lcLen == 3 || l.leLen >= 2
		if extIn == c.Extended() && !bytes.Equal(enc, b) {
			t.Fatalf("canonical %X re-encoded as %X", b, enc)
		}
		c2, err := ParseCommand(enc)
		if err != nil {
			t.Fatalf("parsing re-encoded %X: %v", enc, err)
		}
		if c2.CLA != c.CLA || c2.INS != c.INS || c2.P1 != c.P1 || c2.P2 != c.P2 || c2.Ne != c.Ne || !bytes.Equal(c2.Data, c.Data) {
			t.Fatalf("round trip %+v -> %+v", c, c2)
		}
		// The tracer must handle any command.
		var sb bytes.Buffer
		_, _ = Trace(echoCard("9000", nil), &Tracer{W: &sb}).Transmit(context.Background(), b)
		if sb.Len() == 0 || bytes.Count(sb.Bytes(), []byte("\n")) != 1 {
			t.Fatalf("trace %q", sb.String())
		}
	})
}

// fuzzLimits are the card limits FuzzClientDo picks from.
var fuzzLimits = []Limits{
	{},
	{MaxCommandData: 16, MaxResponseData: 16},
	{Extended: true, MaxResponseData: 4096},
	{Extended: true},
	{MaxResponseData: 3, MaxCommandData: 1},
	{Extended: true, MaxCommandData: 300, MaxResponseData: 700},
}

// fuzzCard answers every command with the next of a fixed list of raw
// responses, cycling, and checks that each command is a valid APDU within
// the client's limits. It stops the test if the client exchanges more than
// max APDUs.
type fuzzCard struct {
	t    *testing.T
	rsps [][]byte
	l    Limits
	n    int
	max  int
	last []byte // previous response
}

func (c *fuzzCard) Transmit(_ context.Context, raw []byte) ([]byte, error) {
	c.n++
	if c.n > c.max {
		c.t.Fatalf("more than %d exchanges", c.max)
	}
	cmd, err := ParseCommand(raw)
	if err != nil {
		c.t.Fatalf("client sent an invalid APDU %X: %v", raw, err)
	}
	maxNc, maxNe := c.l.effective()
	// The one exception to MaxResponseData: re-issuing after 6Cxx with
	// exactly the Ne the card asked for.
	wrongLe := len(c.last) >= 2 && c.last[len(c.last)-2] == 0x6C && cmd.Ne == retryLen(c.last[len(c.last)-1])
	if len(cmd.Data) > maxNc || (cmd.Ne > maxNe && !wrongLe) || (cmd.Extended() && !c.l.Extended) {
		c.t.Fatalf("APDU %X exceeds limits %+v", raw, c.l)
	}
	c.last = nil
	if len(c.rsps) > 0 {
		c.last = c.rsps[(c.n-1)%len(c.rsps)]
	}
	return c.last, nil
}

// splitResponses cuts b into length-prefixed responses: a length byte,
// or FF followed by a two-byte length, then that many bytes.
func splitResponses(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 && len(out) < 64 {
		n := int(b[0])
		b = b[1:]
		if n == 0xFF && len(b) >= 2 {
			n = int(b[0])<<8 | int(b[1])
			b = b[2:]
		}
		n = min(n, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func FuzzClientDo(f *testing.F) {
	seeds := []struct {
		op, lim byte
		param   uint16
		rsps    [][]byte
	}{
		{0, 0, 4, [][]byte{h("AABB6104"), h("CCDD9000")}},
		{0, 0, 300, [][]byte{h("9000")}},
		{0, 1, 40, [][]byte{h("9000"), h("6884")}},
		{0, 0, 2, [][]byte{h("6C10"), h("6C08")}},
		{0, 0, 2, [][]byte{h("6100")}},
		{1, 0, 8, [][]byte{h("63C2")}},
		{2, 0, 0, [][]byte{h("620480020200 9000"), append(pattern(256), 0x90, 0x00), append(pattern(256), 0x90, 0x00)}},
		{2, 0, 0, [][]byte{h("9000"), append(pattern(100), 0x90, 0x00)}},
		{2, 1, 0, [][]byte{h("6A86"), h("9000"), h("6B00")}},
		{3, 0, 40000, [][]byte{append(pattern(256), 0x90, 0x00), h("5381FD")}},
		{3, 2, 3000, [][]byte{append(pattern(4096), 0x62, 0x82)}},
		{4, 0, 0, [][]byte{h("9000"), h("9000"), h("4703F741E0 7F6608020205F0020205F0 9000")}},
		{5, 0, 8, [][]byte{h("0102030405060708 9000")}},
		{6, 0, 7, [][]byte{h("6F00 9000"), h("6283")}},
	}
	for _, s := range seeds {
		var b []byte
		b = append(b, s.op, s.lim, byte(s.param>>8), byte(s.param))
		for _, r := range s.rsps {
			if len(r) >= 0xFF {
				b = append(b, 0xFF, byte(len(r)>>8), byte(len(r)))
			} else {
				b = append(b, byte(len(r)))
			}
			b = append(b, r...)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 4 {
			return
		}
		op, lim, param := b[0]%7, fuzzLimits[int(b[1])%len(fuzzLimits)], int(b[2])<<8|int(b[3])
		card := &fuzzCard{t: t, rsps: splitResponses(b[4:]), l: lim, max: 200000}
		c := NewClient(card, lim)
		c.MaxGetResponse = 8
		c.MaxFileSize = 4096
		ctx := context.Background()

		var err error
		switch op {
		case 0:
			var r Response
			r, err = c.Do(ctx, Command{CLA: b[1] & 0x0F, INS: 0xCA, Data: pattern(param % 1000), Ne: param % 300})
			if err == nil && len(r.Data) > maxResponseTotal {
				t.Fatalf("response of %d bytes", len(r.Data))
			}
		case 1:
			_, err = c.Send(ctx, Command{INS: 0x20, P2: 0x81, Data: pattern(param % 64)})
		case 2:
			var data []byte
			data, err = c.ReadEF(ctx, 0x0101)
			if len(data) > c.MaxFileSize {
				t.Fatalf("ReadEF returned %d bytes", len(data))
			}
		case 3:
			var data []byte
			data, err = c.ReadBinary(ctx, param%5000)
			if len(data) > param%5000 {
				t.Fatalf("ReadBinary(%d) returned %d bytes", param%5000, len(data))
			}
		case 4:
			_, err = c.ReadLimits(ctx)
		case 5:
			var ch []byte
			ch, err = c.GetChallenge(ctx, 1+param%16)
			if err == nil && len(ch) != 1+param%16 {
				t.Fatalf("challenge of %d bytes", len(ch))
			}
		case 6:
			_, err = c.SelectAID(ctx, pattern(1+param%16))
		}
		if err != nil && !errors.Is(err, ErrMalformedResponse) && !errors.Is(err, ErrCardStatus) && !errors.Is(err, ErrInvalidCommand) {
			t.Fatalf("error %v wraps none of the documented sentinels", err)
		}
	})
}
