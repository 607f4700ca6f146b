package daemon

import (
	"slices"
	"time"

	"kpe-agent/agent/api"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
)

// maxTodayCodes bounds the answer of CodesToday: the newest are listed.
const maxTodayCodes = 1000

// todaySlack reaches back before midnight among the enqueue times: a
// record's own time is taken when the SAM signs it, just before it is
// enqueued, and the clock may be set back a little in between.
const todaySlack = time.Hour

// CodesToday lists this terminal's records of today, in the terminal's
// time zone (the PC's local time), newest first (API): the code, the
// service, the time and whether the back office has it. It never reads a
// record's subject or card serial out.
func (d *Daemon) CodesToday() (api.TodayCodes, error) {
	return codesOn(d.ob, time.Now())
}

// codesOn lists the records of now's day, in now's location.
func codesOn(ob *outbox.Outbox, now time.Time) (api.TodayCodes, error) {
	y, m, day := now.Date()
	start := time.Date(y, m, day, 0, 0, 0, 0, now.Location())
	end := start.AddDate(0, 0, 1)
	out := api.TodayCodes{Date: start.Format(time.DateOnly), Codes: []api.TodayCode{}}
	today := func(enc []byte, state string) {
		r, err := record.Decode(enc)
		if err != nil || r.Time.Before(start) || !r.Time.Before(end) {
			return // not today's (an unreadable one is kpectl queue list's to show)
		}
		h, err := r.Hash()
		if err != nil {
			return
		}
		out.Codes = append(out.Codes, api.TodayCode{Code: record.CodeOf(h).String(), Service: r.Service,
			Time: r.Time.In(now.Location()), State: state})
	}
	items, err := ob.Recent(start.Add(-todaySlack), maxTodayCodes+1)
	if err != nil {
		return api.TodayCodes{}, err
	}
	for _, it := range items {
		state := api.CodeQueued
		if it.State == outbox.Acknowledged {
			state = api.CodeSynced
		}
		today(it.Encoded, state)
	}
	dead, err := ob.Dead()
	if err != nil {
		return api.TodayCodes{}, err
	}
	for _, it := range dead {
		today(it.Encoded, api.CodeRejected)
	}
	// newest first; a record's time orders them, the dead ones among them
	slices.SortStableFunc(out.Codes, func(a, b api.TodayCode) int { return b.Time.Compare(a.Time) })
	// the walk back stopped at its limit while still in today: there may
	// be more of today (items are newest first; when the oldest one read
	// is yesterday's, today's are all there)
	if len(items) > maxTodayCodes {
		oldest, err := record.Decode(items[len(items)-1].Encoded)
		out.Truncated = err != nil || !oldest.Time.Before(start)
	}
	if len(out.Codes) > maxTodayCodes {
		out.Codes, out.Truncated = out.Codes[:maxTodayCodes], true
	}
	return out, nil
}
