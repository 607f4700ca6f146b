package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"kpe-agent/apdu"
	"kpe-agent/apdu/pcsc"
	"kpe-agent/internal/clikit"
)

type readerJSON struct {
	Name        string `json:"name"`
	CardPresent bool   `json:"card_present"`
	ATR         string `json:"atr,omitempty"`
	Exclusive   bool   `json:"exclusive,omitempty"`
	InUse       bool   `json:"in_use,omitempty"`
	Mute        bool   `json:"mute,omitempty"`
}

func (c *cli) readers(ctx context.Context, asJSON bool) error {
	tr := pcsc.New(pcsc.Options{})
	defer tr.Close()
	rs, err := tr.Readers(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		out := make([]readerJSON, 0, len(rs))
		for _, r := range rs {
			out = append(out, readerJSON{r.Name, r.CardPresent, hexStr(r.ATR), r.Exclusive, r.InUse, r.Mute})
		}
		return c.printJSON(out)
	}
	if len(rs) == 0 {
		fmt.Fprintln(c.out, c.msg.NoReaders)
		return nil
	}
	for i, r := range rs {
		state := c.msg.NoCard
		switch {
		case r.Mute:
			state = c.msg.Mute
		case r.CardPresent:
			state = c.msg.CardPresent + "  ATR " + spaced(r.ATR)
		}
		if r.Exclusive {
			state += "  [" + c.msg.InUseExclusive + "]"
		}
		fmt.Fprintf(c.out, "%d: %s\n   %s\n", i, r.Name, state)
	}
	return nil
}

type eventJSON struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Reader string    `json:"reader,omitempty"`
	ATR    string    `json:"atr,omitempty"`
	Error  string    `json:"error,omitempty"`
}

func (c *cli) monitor(ctx context.Context, asJSON bool) error {
	tr := pcsc.New(pcsc.Options{})
	defer tr.Close()
	if !asJSON {
		fmt.Fprintln(c.out, c.msg.Watching)
	}
	enc := json.NewEncoder(c.out)
	for ev := range tr.Watch(ctx).Events {
		if asJSON {
			e := eventJSON{Time: ev.Time, Kind: ev.Kind.String(), Reader: ev.Reader, ATR: hexStr(ev.ATR)}
			if ev.Err != nil {
				e.Error = ev.Err.Error()
			}
			if err := enc.Encode(e); err != nil {
				return err
			}
			continue
		}
		line := fmt.Sprintf("%s  %-32s %s", ev.Time.Format("15:04:05.000"), c.msg.Events[ev.Kind], ev.Reader)
		if len(ev.ATR) > 0 {
			line += "  ATR " + spaced(ev.ATR)
		}
		if ev.Err != nil {
			line += "  (" + ev.Err.Error() + ")"
		}
		fmt.Fprintln(c.out, line)
	}
	return nil
}

type apduOptions struct {
	reader  string
	auto    bool
	timeout time.Duration
	trace   string
	asJSON  bool
}

// apduJSON is apdu --json.
type apduJSON struct {
	Reader    string         `json:"reader"`
	ATR       string         `json:"atr"`
	Exchanges []exchangeJSON `json:"exchanges"`
}

// exchangeJSON is one command and its answer.
type exchangeJSON struct {
	Command  string `json:"command"`
	Response string `json:"response"`       // the whole answer, data and SW1-SW2
	Data     string `json:"data,omitempty"` // the data field
	SW       string `json:"sw"`
	Meaning  string `json:"meaning"`
}

// apdu sends APDUs like pcsc-tools' scriptor: each command and its answer
// are printed; with --auto, 61xx and 6Cxx are handled by the toolkit.
func (c *cli) apdu(ctx context.Context, o apduOptions, args []string) error {
	cmds, err := c.commands(args)
	if err != nil {
		return err
	}
	tracer, closeTrace, err := openTrace(o.trace)
	if err != nil {
		return err
	}
	defer closeTrace()
	tr := pcsc.New(pcsc.Options{})
	defer tr.Close()
	name := o.reader
	if name == "" {
		if name, err = firstCard(ctx, tr); err != nil {
			return err
		}
	}
	raw, err := tr.Connect(ctx, name)
	if err != nil {
		return err
	}
	defer raw.Close()
	card := apdu.TraceCard(raw, tracer)
	out := apduJSON{Reader: name, ATR: hexStr(card.ATR()), Exchanges: []exchangeJSON{}}
	if !o.asJSON {
		fmt.Fprintf(c.out, "# %s  ATR %s\n", name, spaced(card.ATR()))
	}
	if err := card.BeginTransaction(ctx); err != nil {
		return err
	}
	defer card.EndTransaction()
	client := apdu.NewClient(card, apdu.Limits{})
	for _, cmdBytes := range cmds {
		if !o.asJSON {
			fmt.Fprintf(c.out, "> %s\n", spaced(cmdBytes))
		}
		cctx, cancel := context.WithTimeout(ctx, o.timeout)
		var rsp []byte
		if o.auto {
			var cmd apdu.Command
			if cmd, err = apdu.ParseCommand(cmdBytes); err == nil {
				var r apdu.Response
				if r, err = client.Do(cctx, cmd); err == nil {
					rsp = append(append([]byte(nil), r.Data...), byte(r.SW>>8), byte(r.SW))
				}
			}
		} else {
			rsp, err = card.Transmit(cctx, cmdBytes)
		}
		cancel()
		if err != nil {
			return err
		}
		if o.asJSON {
			out.Exchanges = append(out.Exchanges, exchange(cmdBytes, rsp))
			continue
		}
		c.printResponse(rsp)
	}
	if o.asJSON {
		return c.printJSON(out)
	}
	return nil
}

// exchange describes a command and its answer for apdu --json.
func exchange(cmd, rsp []byte) exchangeJSON {
	e := exchangeJSON{Command: hexStr(cmd), Response: hexStr(rsp)}
	r, err := apdu.ParseResponse(rsp)
	if err != nil {
		e.Meaning = err.Error()
		return e
	}
	e.Data, e.SW, e.Meaning = hexStr(r.Data), fmt.Sprintf("%04X", r.SW), swMeaning(r)
	return e
}

// swMeaning is the ISO meaning of r's status word.
func swMeaning(r apdu.Response) string {
	if e := r.Err(); e != nil {
		return e.Error()
	}
	return "normal processing"
}

func (c *cli) printResponse(rsp []byte) {
	r, err := apdu.ParseResponse(rsp)
	if err != nil {
		fmt.Fprintf(c.out, "< %s : %v\n", spaced(rsp), err)
		return
	}
	if len(r.Data) > 0 {
		fmt.Fprintf(c.out, "< %s\n", spaced(r.Data))
	}
	fmt.Fprintf(c.out, "< %02X %02X : %s\n", byte(r.SW>>8), byte(r.SW), swMeaning(r))
}

// commands parses hex APDUs from args, or from stdin when there are none.
func (c *cli) commands(args []string) ([][]byte, error) {
	var lines []string
	if len(args) > 0 {
		lines = args
	} else {
		sc := bufio.NewScanner(c.in)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	var out [][]byte
	for i, l := range lines {
		if j := strings.IndexByte(l, '#'); j >= 0 {
			l = l[:j]
		}
		l = strings.NewReplacer(" ", "", ":", "", "\t", "").Replace(l)
		if l == "" {
			continue
		}
		b, err := hex.DecodeString(l)
		if err != nil || len(b) < 4 {
			return nil, clikit.Usagef("APDU %d: %q is not a hex command of at least 4 bytes", i+1, lines[i])
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, clikit.Usagef("no APDU given")
	}
	return out, nil
}

func firstCard(ctx context.Context, tr *pcsc.Transport) (string, error) {
	rs, err := tr.Readers(ctx)
	if err != nil {
		return "", err
	}
	for _, r := range rs {
		if r.CardPresent && !r.Mute {
			return r.Name, nil
		}
	}
	return "", fmt.Errorf("kpectl apdu: %w", apdu.ErrNoCard)
}

func hexStr(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func spaced(b []byte) string {
	var sb strings.Builder
	for i, x := range b {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%02X", x)
	}
	return sb.String()
}

// openTrace opens the redacted APDU trace that --trace names (appended
// to, mode 0600); no file, no tracer. The returned function closes it.
func openTrace(path string) (*apdu.Tracer, func(), error) {
	if path == "" {
		return nil, func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, err
	}
	return &apdu.Tracer{W: f}, func() { f.Close() }, nil
}
