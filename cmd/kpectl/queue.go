package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"kpe-agent/internal/clikit"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
)

const (
	defaultOutbox = "/var/lib/kpe-agent/outbox.db"
	// queueOpenTimeout: a running agent holds the outbox's lock; say so
	// soon instead of hanging.
	queueOpenTimeout = time.Second
	// listDefault is how many records queue list prints without --limit.
	listDefault = 100
)

// errOutExists: queue salvage --out names a file that exists.
var errOutExists = errors.New("kpectl queue salvage: the --out file exists")

func openQueue(path string, readOnly bool) (*outbox.Outbox, error) {
	return outbox.Open(path, outbox.Options{ReadOnly: readOnly, OpenTimeout: queueOpenTimeout})
}

type queueStatsJSON struct {
	Source                string   `json:"source"` // "file"; "agent" is queueAgentStatsJSON
	Outbox                string   `json:"outbox"`
	Pending               int      `json:"pending"`
	Sending               int      `json:"sending"`
	Acknowledged          int      `json:"acknowledged"`
	Dead                  int      `json:"dead"`
	Unsynced              int      `json:"unsynced"`
	OldestUnsyncedSeconds float64  `json:"oldest_unsynced_seconds"`
	CountUsedPercent      float64  `json:"count_used_percent"`
	AgeUsedPercent        float64  `json:"age_used_percent"`
	AlarmPercent          int      `json:"alarm_percent"` // 0, 50, 80, 95 or 100 (full: new records refused)
	Alarm                 string   `json:"alarm"`         // none, warning or full
	MaxRecords            int      `json:"max_records"`
	MaxAgeSeconds         float64  `json:"max_age_seconds"`
	MovedAside            []string `json:"moved_aside"`
	FileBytes             int64    `json:"file_bytes"`
}

// queueStatsOptions are kpectl queue stats's flags.
type queueStatsOptions struct {
	path       string
	asJSON     bool
	maxRecords int
	maxAge     time.Duration
}

func (c *cli) queueStats(ctx context.Context, o queueStatsOptions) error {
	if o.maxRecords <= 0 || o.maxAge <= 0 {
		return clikit.Usagef("--max-records and --max-age must be positive")
	}
	ob, err := outbox.Open(o.path, outbox.Options{ReadOnly: true, OpenTimeout: queueOpenTimeout, MaxRecords: o.maxRecords, MaxAge: o.maxAge})
	if errors.Is(err, outbox.ErrLocked) {
		// The running agent holds the file: ask it instead.
		return c.queueStatsFromAgent(ctx, o.path, o.asJSON, err)
	}
	if err != nil {
		return err
	}
	defer ob.Close()
	st, err := ob.Stats()
	if err != nil {
		return err
	}
	level := alarmLevel(st.Alarm)
	if o.asJSON {
		return c.printJSON(queueStatsJSON{
			Source: "file", Outbox: o.path, Pending: st.Pending, Sending: st.Sending, Acknowledged: st.Acknowledged, Dead: st.Dead,
			Unsynced: st.Unsynced, OldestUnsyncedSeconds: st.OldestUnsynced.Seconds(),
			CountUsedPercent: percent(st.CountUsed), AgeUsedPercent: percent(st.AgeUsed),
			AlarmPercent: int(st.Alarm*100 + 0.5), Alarm: level,
			MaxRecords: o.maxRecords, MaxAgeSeconds: o.maxAge.Seconds(),
			MovedAside: append([]string{}, st.MovedAside...), FileBytes: st.FileBytes,
		})
	}
	q := c.msg.Queue
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "%s %s (%s)\n", q.Outbox, o.path, byteSize(st.FileBytes))
	fmt.Fprintf(w, "  %s\t%d\n", q.Pending, st.Pending)
	fmt.Fprintf(w, "  %s\t%d\n", q.Sending, st.Sending)
	fmt.Fprintf(w, "  %s\t%d\n", q.Acknowledged, st.Acknowledged)
	fmt.Fprintf(w, "  %s\t%d\n", q.Dead, st.Dead)
	oldest := "-"
	if st.Unsynced > 0 {
		oldest = c.age(st.OldestUnsynced)
	}
	fmt.Fprintf(w, "  %s\t%s\n", q.Oldest, oldest)
	fmt.Fprintf(w, "  %s\t"+q.UseLine+"\n", q.Use, percent(st.CountUsed), percent(st.AgeUsed), o.maxRecords, c.age(o.maxAge))
	fmt.Fprintf(w, "  %s\t%s\n", q.Alarm, c.alarmText(st.Alarm))
	for _, name := range st.MovedAside {
		fmt.Fprintf(w, "  %s\t%s\n", q.MovedAside, name)
		fmt.Fprintf(w, "  \t"+q.SalvageHint+"\n", filepath.Join(filepath.Dir(o.path), name))
	}
	return w.Flush()
}

func alarmLevel(a float64) string {
	switch {
	case a >= 1:
		return "full"
	case a > 0:
		return "warning"
	}
	return "none"
}

func (c *cli) alarmText(a float64) string {
	switch {
	case a >= 1:
		return c.msg.Queue.AlarmFull
	case a > 0:
		return fmt.Sprintf(c.msg.Queue.AlarmWarning, int(a*100+0.5))
	}
	return c.msg.Queue.AlarmNone
}

// percent is a fraction in percent, to one decimal.
func percent(f float64) float64 { return float64(int64(f*1000+0.5)) / 10 }

// age prints a duration for a technician: the two largest of days, hours
// and minutes.
func (c *cli) age(d time.Duration) string {
	q := c.msg.Queue
	if d < time.Minute {
		return q.UnderAMinute
	}
	days, hours, mins := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	var parts []string
	for _, p := range []struct {
		n    int
		unit string
	}{{days, q.Days}, {hours, q.Hours}, {mins, q.Minutes}} {
		if p.n > 0 || len(parts) > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.unit))
		}
	}
	if len(parts) > 2 {
		parts = parts[:2]
	}
	if len(parts) == 2 && strings.HasPrefix(parts[1], "0 ") {
		parts = parts[:1]
	}
	return strings.Join(parts, " ")
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// queueItemJSON is one line of queue list. It never holds the record's
// subject (a NIP or a NIK hash) or the card serial: personal data.
type queueItemJSON struct {
	Seq          uint64     `json:"seq"`
	State        string     `json:"state"`
	Enqueued     *time.Time `json:"enqueued,omitempty"`
	Attempts     *uint32    `json:"attempts,omitempty"`
	Acknowledged *time.Time `json:"acknowledged,omitempty"`
	SAMSerial    string     `json:"sam_serial,omitempty"`
	Counter      uint32     `json:"counter,omitempty"`
	Service      string     `json:"service,omitempty"`
	Terminal     string     `json:"terminal,omitempty"`
	Time         *time.Time `json:"time,omitempty"`
	Code         string     `json:"code,omitempty"`
	Reason       string     `json:"reason,omitempty"` // why the back office rejected it (dead)
	Error        string     `json:"error,omitempty"`  // the record could not be decoded
}

type queueListJSON struct {
	Outbox    string          `json:"outbox"`
	Records   []queueItemJSON `json:"records"`
	Truncated bool            `json:"truncated"` // more records than --limit
}

var listStates = map[string]outbox.State{"pending": outbox.Pending, "sending": outbox.Sending, "acknowledged": outbox.Acknowledged}

// queueListOptions are kpectl queue list's flags.
type queueListOptions struct {
	path   string
	asJSON bool
	state  string
	limit  int
}

func (c *cli) queueList(o queueListOptions) error {
	state, ok := listStates[o.state]
	if !ok && o.state != "all" && o.state != "dead" {
		return clikit.Usagef("--state %q: want pending, sending, acknowledged, dead or all", o.state)
	}
	if o.limit < 0 {
		return clikit.Usagef("--limit (-n) must not be negative")
	}
	ob, err := openQueue(o.path, true)
	if err != nil {
		return err
	}
	defer ob.Close()

	var items []queueItemJSON
	if o.state != "dead" {
		limit := 0
		if o.limit > 0 {
			limit = o.limit + 1 // one more than asked, to know whether there are more
		}
		recs, err := ob.List(state, limit)
		if err != nil {
			return err
		}
		for _, it := range recs {
			items = append(items, listItem(it))
		}
	}
	if o.state == "dead" || o.state == "all" {
		dead, err := ob.Dead()
		if err != nil {
			return err
		}
		for _, d := range dead {
			items = append(items, deadItem(d))
		}
		slices.SortFunc(items, func(a, b queueItemJSON) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	truncated := o.limit > 0 && len(items) > o.limit
	if truncated {
		items = items[:o.limit]
	}
	if o.asJSON {
		if items == nil {
			items = []queueItemJSON{}
		}
		return c.printJSON(queueListJSON{Outbox: o.path, Records: items, Truncated: truncated})
	}
	q := c.msg.Queue
	if len(items) == 0 {
		fmt.Fprintln(c.out, q.NoRecords)
		return nil
	}
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, strings.Join(q.ListHeader, "\t"))
	local := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	}
	for _, it := range items {
		attempts := "-"
		if it.Attempts != nil {
			attempts = strconv.FormatUint(uint64(*it.Attempts), 10)
		}
		fields := []string{strconv.FormatUint(it.Seq, 10), it.State, local(it.Enqueued), attempts}
		if it.Error != "" {
			fields = append(fields, "", "", "", "", "", q.Unreadable+": "+it.Error)
		} else {
			fields = append(fields, it.SAMSerial, strconv.FormatUint(uint64(it.Counter), 10), it.Service, it.Terminal, local(it.Time), it.Code)
		}
		if it.Reason != "" {
			fields = append(fields, oneLine(it.Reason))
		}
		fmt.Fprintln(w, strings.Join(fields, "\t"))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if truncated {
		fmt.Fprintf(c.out, q.More+"\n", o.limit)
	}
	return nil
}

func recordFields(out *queueItemJSON, enc []byte) {
	r, err := record.Decode(enc)
	if err != nil {
		out.Error = err.Error()
		return
	}
	t := r.Time
	out.SAMSerial = hex.EncodeToString(r.SAMSerial[:])
	out.Counter = r.Counter
	out.Service = r.Service
	out.Terminal = r.TerminalID
	out.Time = &t
	if h, err := r.Hash(); err == nil {
		out.Code = record.CodeOf(h).String()
	}
}

func listItem(it outbox.ListItem) queueItemJSON {
	enq, attempts := it.Enqueued.UTC(), it.Attempts
	out := queueItemJSON{Seq: it.Seq, State: it.State.String(), Enqueued: &enq, Attempts: &attempts}
	if !it.Acked.IsZero() {
		acked := it.Acked.UTC()
		out.Acknowledged = &acked
	}
	recordFields(&out, it.Encoded)
	return out
}

func deadItem(d outbox.DeadItem) queueItemJSON {
	out := queueItemJSON{Seq: d.Seq, State: "dead", Reason: d.Reason}
	recordFields(&out, d.Encoded)
	return out
}

// oneLine keeps a back-office reason on its line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

type queueRetryJSON struct {
	Outbox   string   `json:"outbox"`
	Requeued int      `json:"requeued"`
	Seqs     []uint64 `json:"seqs"`
}

// queueRetry moves dead records back to pending. It writes, so the agent
// must be stopped; the file is checked read-only first, so that a damaged
// file is reported, not moved aside.
// queueRetryOptions are kpectl queue retry's flags.
type queueRetryOptions struct {
	path        string
	asJSON, all bool
}

func (c *cli) queueRetry(o queueRetryOptions, pos []string) error {
	if o.all == (len(pos) > 0) {
		return clikit.Usagef("give the records' SEQ numbers (kpectl queue list --state dead) or --all")
	}
	seqs := []uint64{}
	for _, a := range pos {
		v, err := strconv.ParseUint(a, 10, 64)
		if err != nil || v == 0 {
			return clikit.Usagef("%q is not a record's SEQ number", a)
		}
		seqs = append(seqs, v)
	}
	ro, err := openQueue(o.path, true)
	if err != nil {
		return err
	}
	ro.Close()
	ob, err := openQueue(o.path, false)
	if err != nil {
		return err
	}
	defer ob.Close()
	if o.all {
		dead, err := ob.Dead()
		if err != nil {
			return err
		}
		for _, d := range dead {
			seqs = append(seqs, d.Seq)
		}
	}
	n, err := ob.Requeue(seqs)
	if err != nil {
		return err
	}
	if o.asJSON {
		slices.Sort(seqs)
		return c.printJSON(queueRetryJSON{Outbox: o.path, Requeued: n, Seqs: slices.Compact(seqs)})
	}
	fmt.Fprintf(c.out, c.msg.Queue.Requeued+"\n", n)
	if st, err := ob.Stats(); err == nil && st.Alarm > 0 {
		fmt.Fprintf(c.out, "%s: %s\n", c.msg.Queue.Alarm, c.alarmText(st.Alarm))
	}
	return nil
}

// samSummary is what salvage recovered of one SAM's records.
type samSummary struct {
	SAMSerial    string      `json:"sam_serial"`
	Records      int         `json:"records"`
	FirstCounter uint32      `json:"first_counter"`
	LastCounter  uint32      `json:"last_counter"`
	Missing      [][2]uint32 `json:"missing"`       // ranges of counters between first and last with no record
	MissingCount uint64      `json:"missing_count"` // counters in those ranges
	Repeated     []uint32    `json:"repeated"`      // counters with more than one (different) record
}

type queueSalvageJSON struct {
	File      string       `json:"file"`
	Recovered int          `json:"recovered"`
	SAMs      []samSummary `json:"sams"`
	Out       string       `json:"out,omitempty"`
	Written   int          `json:"written"`
}

// summarise groups records (ordered by SAM serial and counter, as Salvage
// returns them) by SAM.
func summarise(recs []*record.Record) []samSummary {
	var out []samSummary
	for i := 0; i < len(recs); {
		j := i
		for j < len(recs) && bytes.Equal(recs[j].SAMSerial[:], recs[i].SAMSerial[:]) {
			j++
		}
		group := recs[i:j]
		s := samSummary{SAMSerial: hex.EncodeToString(group[0].SAMSerial[:]), Records: len(group),
			FirstCounter: group[0].Counter, LastCounter: group[len(group)-1].Counter, Missing: [][2]uint32{}, Repeated: []uint32{}}
		for k := 1; k < len(group); k++ {
			prev, cur := group[k-1].Counter, group[k].Counter
			switch {
			case cur == prev:
				if len(s.Repeated) == 0 || s.Repeated[len(s.Repeated)-1] != cur {
					s.Repeated = append(s.Repeated, cur)
				}
			case cur > prev+1:
				s.Missing = append(s.Missing, [2]uint32{prev + 1, cur - 1})
				s.MissingCount += uint64(cur - 1 - prev)
			}
		}
		out = append(out, s)
		i = j
	}
	return out
}

// maxRanges is how many missing ranges a SAM's line shows.
const maxRanges = 20

func ranges(rs [][2]uint32) string {
	var parts []string
	for i, r := range rs {
		if i == maxRanges {
			parts = append(parts, fmt.Sprintf("… (+%d)", len(rs)-maxRanges))
			break
		}
		if r[0] == r[1] {
			parts = append(parts, strconv.FormatUint(uint64(r[0]), 10))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r[0], r[1]))
		}
	}
	return strings.Join(parts, ", ")
}

// queueSalvage recovers the records of a damaged outbox file (it only
// reads it) and, with --out, writes them into a new outbox as pending.
// queueSalvageOptions are kpectl queue salvage's flags.
type queueSalvageOptions struct {
	asJSON bool
	out    string
}

func (c *cli) queueSalvage(o queueSalvageOptions, file string) error {
	if o.out != "" {
		if _, err := os.Lstat(o.out); err == nil {
			return fmt.Errorf("%w: %s", errOutExists, o.out)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	recs, err := outbox.Salvage(file)
	if err != nil {
		return err
	}
	res := queueSalvageJSON{File: file, Recovered: len(recs), SAMs: summarise(recs), Out: o.out}
	if res.SAMs == nil {
		res.SAMs = []samSummary{}
	}
	if o.out != "" {
		ob, err := openQueue(o.out, false)
		if err != nil {
			return err
		}
		n, err := ob.Import(recs)
		if cerr := ob.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("kpectl queue salvage: writing %s: %w", o.out, err)
		}
		res.Written = n
	}
	if o.asJSON {
		return c.printJSON(res)
	}
	q := c.msg.Queue
	fmt.Fprintf(c.out, q.Recovered+"\n", res.Recovered, file)
	for _, s := range res.SAMs {
		fmt.Fprintf(c.out, "  SAM %s: "+q.SAMLine, s.SAMSerial, s.Records, s.FirstCounter, s.LastCounter)
		if len(s.Missing) == 0 {
			fmt.Fprintf(c.out, ", %s\n", q.NoneMissing)
		} else {
			fmt.Fprintf(c.out, ", "+q.Missing+"\n", s.MissingCount, ranges(s.Missing))
		}
		if len(s.Repeated) > 0 {
			fmt.Fprintf(c.out, "    "+q.Repeated+"\n", ranges(counterRanges(s.Repeated)))
		}
	}
	if o.out != "" {
		fmt.Fprintf(c.out, q.Written+"\n", res.Written, o.out)
	}
	return nil
}

func counterRanges(cs []uint32) [][2]uint32 {
	var out [][2]uint32
	for _, c := range cs {
		if n := len(out); n > 0 && out[n-1][1]+1 == c {
			out[n-1][1] = c
		} else {
			out = append(out, [2]uint32{c, c})
		}
	}
	return out
}

type queueCompactJSON struct {
	Outbox      string `json:"outbox"`
	BeforeBytes int64  `json:"before_bytes"`
	AfterBytes  int64  `json:"after_bytes"`
	// RemovedTemp names the temporary file an interrupted compaction left,
	// removed first ("" when there was none).
	RemovedTemp string `json:"removed_temp,omitempty"`
}

// queueCompactOptions are kpectl queue compact's flags.
type queueCompactOptions struct {
	path   string
	asJSON bool
}

// queueCompact copies the outbox into a new, compact file that replaces
// it (outbox.Compact): the agent must be stopped; a kill at any point
// leaves the old file or the new one.
func (c *cli) queueCompact(o queueCompactOptions) error {
	res, err := outbox.Compact(o.path, outbox.Options{OpenTimeout: queueOpenTimeout})
	if err != nil {
		return err
	}
	out := queueCompactJSON{Outbox: o.path, BeforeBytes: res.Before, AfterBytes: res.After}
	if res.RemovedTemp {
		out.RemovedTemp = o.path + outbox.CompactTempSuffix
	}
	if o.asJSON {
		return c.printJSON(out)
	}
	if out.RemovedTemp != "" {
		fmt.Fprintf(c.out, c.msg.Queue.CompactTemp+"\n", out.RemovedTemp)
	}
	fmt.Fprintf(c.out, c.msg.Queue.Compacted+"\n", o.path, byteSize(res.Before), byteSize(res.After))
	return nil
}
