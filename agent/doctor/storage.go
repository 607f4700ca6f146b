package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"kpe-agent/internal/i18n"
	"kpe-agent/sync/outbox"
)

// Disk thresholds at the outbox's directory.
const (
	DiskWarnBytes   = 100 << 20
	DiskWarnPercent = 5
	DiskFailBytes   = 20 << 20
)

// existingDir is the outbox's directory, or its nearest existing parent
// (the agent creates the directory on its first start).
func existingDir(p string) string {
	d := filepath.Dir(p)
	for {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return d
		}
		d = parent
	}
}

func mb(n uint64) string { return fmt.Sprintf("%.0f MB", float64(n)/(1<<20)) }

func (r *run) checkDisk() Finding {
	f := Finding{ID: CheckDisk}
	dir := existingDir(r.cfg.Outbox.Path)
	free, total, err := diskSpace(dir)
	if err != nil {
		f.Status, f.Code, f.Detail = Skip, "unknown", fmt.Sprintf("%s: %v", dir, err)
		f.Message = i18n.Both("doctor.disk.unknown.message")
		return f
	}
	pct := 100.0
	if total > 0 {
		pct = float64(free) * 100 / float64(total)
	}
	f.Detail = fmt.Sprintf("%s: %s free of %s (%.1f %%)", dir, mb(free), mb(total), pct)
	action := i18n.Both("doctor.disk.free-up.action", dir)
	switch {
	case free < DiskFailBytes:
		f.Status, f.Code = Fail, "full"
		f.Message = i18n.Both("doctor.disk.full.message", mb(free))
		f.Action = action
	case free < DiskWarnBytes || pct < DiskWarnPercent:
		f.Status, f.Code = Warn, "low"
		f.Message = i18n.Both("doctor.disk.low.message", mb(free), pct)
		f.Action = action
	default:
		f.Status, f.Code = OK, "enough"
		f.Message = i18n.Both("doctor.disk.enough.message", mb(free))
	}
	return f
}

// usage is the outbox's state from the agent or from the file.
type usage struct {
	pending, sending, dead int
	used                   float64
	oldest                 time.Duration
	movedAside             []string
	source                 string
}

func (r *run) checkOutbox(ctx context.Context, ag *agentState) {
	path := r.cfg.Outbox.Path
	var u usage
	var skipDetail string
	switch {
	case ag.queue != nil:
		q := ag.queue
		u = usage{pending: q.Pending, sending: q.Sending, dead: q.Dead, used: q.Used,
			oldest: time.Duration(q.OldestUnsynced * float64(time.Second)), source: "from the agent"}
		u.movedAside = movedAside(path)
	case ag.running:
		skipDetail = "the running agent holds the outbox"
		if ag.queueErr != nil {
			skipDetail += "; agent: " + ag.queueErr.Error()
		}
	default:
		st, err := bounded(ctx, r.o.CheckTimeout, func(context.Context) (outbox.Stats, error) {
			ob, err := outbox.Open(path, outbox.Options{ReadOnly: true, OpenTimeout: time.Second,
				MaxRecords: r.cfg.Outbox.MaxRecords, MaxAge: r.cfg.Outbox.MaxAge})
			if err != nil {
				return outbox.Stats{}, err
			}
			defer ob.Close()
			return ob.Stats()
		})
		switch {
		case errors.Is(err, outbox.ErrNoOutbox):
			r.add(Finding{ID: CheckOutbox, Status: OK, Code: "none-yet", Detail: path + " does not exist: the agent creates it on its first start",
				Message: i18n.Both("doctor.outbox.none-yet.message")})
			return
		case errors.Is(err, outbox.ErrLocked):
			skipDetail = "the outbox is locked by another process (the agent starting?)"
		case errors.Is(err, outbox.ErrDamaged), errors.Is(err, outbox.ErrCorrupt):
			r.add(Finding{ID: CheckOutbox, Status: Fail, Code: "damaged", Detail: fmt.Sprintf("%s: %v", path, err),
				Message: i18n.Both("doctor.outbox.damaged.message"),
				Action:  i18n.Both("doctor.outbox.damaged.action", path)})
			return
		case err != nil:
			r.add(Finding{ID: CheckOutbox, Status: Warn, Code: "unreadable", Detail: fmt.Sprintf("%s: %v", path, err),
				Message: i18n.Both("doctor.outbox.unreadable.message"),
				Action:  i18n.Both("doctor.outbox.unreadable.action")})
			return
		default:
			u = usage{pending: st.Pending, sending: st.Sending, dead: st.Dead, used: st.Used(), oldest: st.OldestUnsynced,
				movedAside: st.MovedAside, source: "read-only from the file"}
		}
	}
	if skipDetail != "" {
		r.add(Finding{ID: CheckOutbox, Status: Skip, Code: "agent-holds-outbox", Detail: skipDetail,
			Message: i18n.Both("doctor.outbox.agent-holds-outbox.message"),
			Action:  i18n.Both("doctor.outbox.agent-holds-outbox.action")})
		return
	}
	pct := int(u.used*100 + 0.5)
	f := Finding{ID: CheckOutbox, Detail: fmt.Sprintf("%s (%s): pending %d, sending %d, dead %d, used %.1f %%, oldest unsynced %v",
		path, u.source, u.pending, u.sending, u.dead, u.used*100, u.oldest.Round(time.Second))}
	switch {
	case u.used >= 1:
		f.Status, f.Code = Fail, "full"
		f.Message = i18n.Both("doctor.outbox.full.message")
		f.Action = i18n.Both("doctor.outbox.full.action")
	case u.used >= 0.8:
		f.Status, f.Code = Warn, "filling"
		f.Message = i18n.Both("doctor.outbox.filling.message", pct)
		f.Action = i18n.Both("doctor.outbox.filling.action")
	default:
		f.Status, f.Code = OK, "healthy"
		f.Message = i18n.Both("doctor.outbox.healthy.message", u.pending+u.sending)
	}
	r.add(f)
	if u.dead > 0 {
		r.add(Finding{ID: CheckOutbox + "-dead", Status: Warn, Code: "dead", Detail: fmt.Sprintf("%d record(s) rejected by the back office", u.dead),
			Message: i18n.Both("doctor.outbox.dead.message", u.dead),
			Action:  i18n.Both("doctor.outbox.dead.action")})
	}
	if len(u.movedAside) > 0 {
		sort.Strings(u.movedAside)
		first := filepath.Join(filepath.Dir(path), filepath.Base(u.movedAside[0]))
		r.add(Finding{ID: CheckOutbox + "-damaged", Status: Warn, Code: "moved-aside", Detail: fmt.Sprintf("damaged outbox file(s) moved aside: %v", u.movedAside),
			Message: i18n.Both("doctor.outbox.moved-aside.message", len(u.movedAside)),
			Action:  i18n.Both("doctor.outbox.moved-aside.action", first)})
	}
}

// movedAside lists the damaged files the agent moved aside next to the
// outbox (path.corrupt-<time>).
func movedAside(path string) []string {
	m, _ := filepath.Glob(path + ".corrupt-*")
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}
