package main

import (
	"errors"
	"fmt"
	"net/http"

	"kpe-agent/agent/api"
	"kpe-agent/agent/doctor"
	"kpe-agent/apdu"
	"kpe-agent/internal/i18n"
)

// messages holds every operator-facing sentence, in one language; the
// texts are the catalogue's (internal/i18n, kpectl.*), see messagesIn.
type messages struct {
	UnknownCommand string
	NoReaders      string
	CardPresent    string
	NoCard         string
	InUseExclusive string
	Mute           string
	Events         map[apdu.EventKind]string
	Watching       string
	// Explanations of transport failures, with the action to take.
	Errs map[error]string
	// kpectl read.
	Verdicts                       map[string]string
	CheckCard, CheckData, CheckIDs string
	OK, Failed, Holder, PhotoSaved string
	NoSAM, PhotoKTPel              string
	// Fingerprint.
	Finger, PlaceFinger, FingerMatch, FingerNoMatch, FingerNoMatchTries string
	FingerPlaceAgain, FingerLastTry, FingerBlocked, FingerError         string
	// kpectl queue.
	Queue queueMessages
	// kpectl status, auth, sync, monitor --via-agent: the agent's local API.
	Agent agentMessages
	// kpectl doctor.
	Doctor doctorMessages
	// kpectl loket.
	Loket loketMessages
}

// loketMessages are kpectl loket's sentences, for the clerk.
type loketMessages struct {
	Link       string // seconds
	Opened     string
	OpenFailed string // error
	Root       string
}

// agentMessages are the sentences of the commands that go through the
// agent's local API.
type agentMessages struct {
	NoToken                     string // token file, cause
	TokenRejected               string // token file
	APIError                    string // code, HTTP status
	Agent, Version, Terminal    string
	Started, PCSC, SAM, Readers string
	Outbox, Sync, Problems      string
	SAMMissing                  string
	SAMLine                     string // state, serial, counter, reader
	Roles                       map[string]string
	Busy, NoReaders             string
	QueueLine                   string // pending, sending, dead, used %, oldest
	SyncOff, Never              string
	LastSuccess, LastAttempt    string
	NextAttempt, LastError      string
	Failures, ClockSkewed       string
	SyncTotals                  string // accepted, duplicates, rejected
	States                      map[string]string
	Waiting                     string // seconds
	Recorded, RecordLine        string // RecordLine: counter, reader, card kind
	Cancelled, CancelFailed     string
	LastTryHint                 string
	Failed                      string // code
	TriesLeft                   string // tries
	SendingNow                  string
	SyncResult                  string // sent, accepted, duplicates, rejected, remaining
	SyncFailed                  string
	WatchingAgent, Reconnecting string
	FromAgent                   string // outbox file
	Events                      map[string]string
}

// doctorMessages are kpectl doctor's sentences.
type doctorMessages struct {
	Title    string // when, how long
	Marks    map[doctor.Status]string
	Action   string
	Checking string // done, total
	Summary  string // ok, warnings, failures, skipped
}

// queueMessages are kpectl queue's sentences, for a technician.
type queueMessages struct {
	Outbox, Pending, Sending, Acknowledged, Dead, Oldest, Use string
	UseLine                                                   string // count %, age %, max records, max age
	Alarm, AlarmNone, AlarmFull                               string
	AlarmWarning                                              string // percent
	MovedAside, SalvageHint                                   string // SalvageHint: the file
	UnderAMinute, Days, Hours, Minutes                        string
	NoRecords, Unreadable                                     string
	ListHeader                                                []string
	More                                                      string // how many are shown
	Requeued                                                  string // how many
	Recovered                                                 string // how many, from which file
	SAMLine                                                   string // records, first and last counter
	NoneMissing                                               string
	Missing                                                   string // how many, which
	Repeated                                                  string // which
	Written                                                   string // how many, to which file
	Compacted                                                 string // file, size before, size after
	CompactTemp                                               string // the temporary file removed
}

// messagesFor returns kpectl's sentences in the language lang names ("id",
// "en"; see i18n.Parse). An unsupported language is an error wrapping
// *i18n.ErrUnsupported.
func messagesFor(lang string) (messages, error) {
	l, err := i18n.Parse(lang)
	if err != nil {
		return messages{}, fmt.Errorf("--lang: %w", err)
	}
	return messagesIn(l), nil
}

// messagesIn builds kpectl's sentences in l from the catalogue (kpectl.*).
func messagesIn(l i18n.Lang) messages {
	m := messages{
		UnknownCommand: l.T("kpectl.unknown-command"),
		NoReaders:      l.T("kpectl.readers.none"),
		CardPresent:    l.T("kpectl.readers.card-present"),
		NoCard:         l.T("kpectl.readers.no-card"),
		InUseExclusive: l.T("kpectl.readers.in-use-exclusive"),
		Mute:           l.T("kpectl.readers.mute"),
		Watching:       l.T("kpectl.monitor.watching"),
		Events: map[apdu.EventKind]string{
			apdu.ReaderAdded:     l.T("kpectl.monitor.event.reader-added"),
			apdu.ReaderRemoved:   l.T("kpectl.monitor.event.reader-removed"),
			apdu.CardInserted:    l.T("kpectl.monitor.event.card-inserted"),
			apdu.CardRemoved:     l.T("kpectl.monitor.event.card-removed"),
			apdu.ReaderBusy:      l.T("kpectl.monitor.event.reader-busy"),
			apdu.ServiceLost:     l.T("kpectl.monitor.event.service-lost"),
			apdu.ServiceRestored: l.T("kpectl.monitor.event.service-restored"),
		},
		Verdicts: map[string]string{
			"genuine":                  l.T("kpectl.read.verdict.genuine"),
			"not-genuine":              l.T("kpectl.read.verdict.not-genuine"),
			"issuer-expired":           l.T("kpectl.read.verdict.issuer-expired"),
			"issuer-untrusted":         l.T("kpectl.read.verdict.issuer-untrusted"),
			"bad-signature":            l.T("kpectl.read.verdict.bad-signature"),
			"sod-unreadable":           l.T("kpectl.read.verdict.sod-unreadable"),
			"identifiers-inconsistent": l.T("kpectl.read.verdict.identifiers-inconsistent"),
			"unknown-card":             l.T("kpectl.read.verdict.unknown-card"),
			"sam-ready":                l.T("kpectl.read.verdict.sam-ready"),
			"sam-blocked":              l.T("kpectl.read.verdict.sam-blocked"),
			"sam-not-activated":        l.T("kpectl.read.verdict.sam-not-activated"),
			"tampered":                 l.T("kpectl.read.verdict.tampered"),
		},
		CheckCard:  l.T("kpectl.read.check.card"),
		CheckData:  l.T("kpectl.read.check.data"),
		CheckIDs:   l.T("kpectl.read.check.identifiers"),
		OK:         l.T("kpectl.read.check.yes"),
		Failed:     l.T("kpectl.read.check.no"),
		Holder:     l.T("kpectl.read.holder"),
		PhotoSaved: l.T("kpectl.read.photo-saved"),
		NoSAM:      l.T("kpectl.read.no-sam"),
		PhotoKTPel: l.T("kpectl.read.photo-ktpel"),

		Finger:             l.T("kpectl.finger.label"),
		PlaceFinger:        l.T("kpectl.finger.place"),
		FingerMatch:        l.T("kpectl.finger.match"),
		FingerNoMatch:      l.T("kpectl.finger.no-match"),
		FingerNoMatchTries: l.T("kpectl.finger.no-match-tries"),
		FingerPlaceAgain:   l.T("kpectl.finger.place-again"),
		FingerLastTry:      l.T("kpectl.finger.last-try"),
		FingerBlocked:      l.T("kpectl.finger.blocked"),
		FingerError:        l.T("kpectl.finger.error"),

		Queue: queueMessages{
			Outbox:       l.T("kpectl.queue.outbox"),
			Pending:      l.T("kpectl.queue.pending"),
			Sending:      l.T("kpectl.queue.sending"),
			Acknowledged: l.T("kpectl.queue.acknowledged"),
			Dead:         l.T("kpectl.queue.dead"),
			Oldest:       l.T("kpectl.queue.oldest"),
			Use:          l.T("kpectl.queue.use"),
			UseLine:      l.T("kpectl.queue.use-line"),
			Alarm:        l.T("kpectl.queue.alarm"),
			AlarmNone:    l.T("kpectl.queue.alarm-none"),
			AlarmFull:    l.T("kpectl.queue.alarm-full"),
			AlarmWarning: l.T("kpectl.queue.alarm-warning"),
			MovedAside:   l.T("kpectl.queue.moved-aside"),
			SalvageHint:  l.T("kpectl.queue.salvage-hint"),
			UnderAMinute: l.T("kpectl.queue.under-a-minute"),
			Days:         l.T("kpectl.queue.days"),
			Hours:        l.T("kpectl.queue.hours"),
			Minutes:      l.T("kpectl.queue.minutes"),
			NoRecords:    l.T("kpectl.queue.no-records"),
			Unreadable:   l.T("kpectl.queue.unreadable"),
			ListHeader: []string{
				l.T("kpectl.queue.column.seq"), l.T("kpectl.queue.column.state"), l.T("kpectl.queue.column.enqueued"),
				l.T("kpectl.queue.column.tries"), l.T("kpectl.queue.column.sam"), l.T("kpectl.queue.column.counter"),
				l.T("kpectl.queue.column.service"), l.T("kpectl.queue.column.terminal"), l.T("kpectl.queue.column.time"),
				l.T("kpectl.queue.column.code"), l.T("kpectl.queue.column.reason"),
			},
			More:        l.T("kpectl.queue.more"),
			Requeued:    l.T("kpectl.queue.requeued"),
			Recovered:   l.T("kpectl.queue.recovered"),
			SAMLine:     l.T("kpectl.queue.sam-line"),
			NoneMissing: l.T("kpectl.queue.none-missing"),
			Missing:     l.T("kpectl.queue.missing"),
			Repeated:    l.T("kpectl.queue.repeated"),
			Written:     l.T("kpectl.queue.written"),
			Compacted:   l.T("kpectl.queue.compacted"),
			CompactTemp: l.T("kpectl.queue.compact-temp"),
		},

		Agent: agentMessages{
			NoToken:       l.T("kpectl.agent.no-token"),
			TokenRejected: l.T("kpectl.agent.token-rejected"),
			APIError:      l.T("kpectl.agent.api-error"),
			States: map[string]string{
				api.StateIdle:          l.T("kpectl.agent.state.idle"),
				api.StateDetected:      l.T("kpectl.agent.state.detected"),
				api.StateIdentified:    l.T("kpectl.agent.state.identified"),
				api.StateAuthenticated: l.T("kpectl.agent.state.authenticated"),
				api.StateFingerprint:   l.T("kpectl.agent.state.fingerprint"),
				api.StateVerified:      l.T("kpectl.agent.state.verified"),
				api.StateRecorded:      l.T("kpectl.agent.state.recorded"),
				api.StateRemoved:       l.T("kpectl.agent.state.removed"),
				api.StateFailed:        l.T("kpectl.agent.state.failed"),
			},

			// kpectl status
			Agent:      l.T("kpectl.status.agent"),
			Version:    l.T("kpectl.status.version"),
			Terminal:   l.T("kpectl.status.terminal"),
			Started:    l.T("kpectl.status.started"),
			PCSC:       l.T("kpectl.status.pcsc"),
			SAM:        l.T("kpectl.status.sam"),
			Readers:    l.T("kpectl.status.readers"),
			Outbox:     l.T("kpectl.status.outbox"),
			Sync:       l.T("kpectl.status.sync"),
			Problems:   l.T("kpectl.status.problems"),
			SAMMissing: l.T("kpectl.status.sam-missing"),
			SAMLine:    l.T("kpectl.status.sam-line"),
			Roles: map[string]string{
				"card":    l.T("kpectl.status.role.card"),
				"sam":     l.T("kpectl.status.role.sam"),
				"ignored": l.T("kpectl.status.role.ignored"),
			},
			Busy:        l.T("kpectl.status.busy"),
			NoReaders:   l.T("kpectl.status.no-readers"),
			QueueLine:   l.T("kpectl.status.queue-line"),
			SyncOff:     l.T("kpectl.status.sync-off"),
			Never:       l.T("kpectl.status.never"),
			LastSuccess: l.T("kpectl.status.last-success"),
			LastAttempt: l.T("kpectl.status.last-attempt"),
			NextAttempt: l.T("kpectl.status.next-attempt"),
			LastError:   l.T("kpectl.status.last-error"),
			Failures:    l.T("kpectl.status.failures"),
			ClockSkewed: l.T("kpectl.status.clock-skewed"),
			SyncTotals:  l.T("kpectl.status.sync-totals"),

			// kpectl auth
			Waiting:      l.T("kpectl.auth.waiting"),
			Recorded:     l.T("kpectl.auth.recorded"),
			RecordLine:   l.T("kpectl.auth.record-line"),
			Cancelled:    l.T("kpectl.auth.cancelled"),
			CancelFailed: l.T("kpectl.auth.cancel-failed"),
			LastTryHint:  l.T("kpectl.auth.last-try-hint"),
			Failed:       l.T("kpectl.auth.failed"),
			TriesLeft:    l.T("kpectl.auth.tries-left"),

			// kpectl sync now
			SendingNow: l.T("kpectl.sync.sending"),
			SyncResult: l.T("kpectl.sync.result"),
			SyncFailed: l.T("kpectl.sync.failed"),

			// kpectl monitor --via-agent
			WatchingAgent: l.T("kpectl.monitor.agent.watching"),
			Reconnecting:  l.T("kpectl.monitor.agent.reconnecting"),
			Events: map[string]string{
				api.EventReader:  l.T("kpectl.monitor.agent.event.reader"),
				api.EventSession: l.T("kpectl.monitor.agent.event.session"),
				api.EventSAM:     l.T("kpectl.monitor.agent.event.sam"),
				api.EventSync:    l.T("kpectl.monitor.agent.event.sync"),
				api.EventService: l.T("kpectl.monitor.agent.event.service"),
			},

			// kpectl queue stats while the agent holds the outbox
			FromAgent: l.T("kpectl.queue.from-agent"),
		},

		Doctor: doctorMessages{
			Title: l.T("kpectl.doctor.title"),
			Marks: map[doctor.Status]string{
				doctor.OK:   l.T("kpectl.doctor.mark.ok"),
				doctor.Warn: l.T("kpectl.doctor.mark.warn"),
				doctor.Fail: l.T("kpectl.doctor.mark.fail"),
				doctor.Skip: l.T("kpectl.doctor.mark.skip"),
			},
			Action:   l.T("kpectl.doctor.action"),
			Checking: l.T("kpectl.doctor.checking"),
			Summary:  l.T("kpectl.doctor.summary"),
		},

		Loket: loketMessages{
			Link:       l.T("kpectl.loket.link"),
			Opened:     l.T("kpectl.loket.opened"),
			OpenFailed: l.T("kpectl.loket.open-failed"),
			Root:       l.T("kpectl.loket.root"),
		},
	}
	m.Errs = map[error]string{}
	for _, e := range knownErrors {
		if e.key != "" {
			m.Errs[e.err] = l.T(e.key)
		}
	}
	return m
}

// explain turns an error into the operator's sentence plus the technical
// detail on a second line.
func (c *cli) explain(err error) string {
	var ae *api.APIError
	if errors.As(err, &ae) {
		if ae.Status == http.StatusUnauthorized {
			if c.tokenErr != nil {
				return fmt.Sprintf(c.msg.Agent.NoToken, c.tokenPath, c.tokenErr) + "\n  (" + err.Error() + ")"
			}
			return fmt.Sprintf(c.msg.Agent.TokenRejected, c.tokenPath) + "\n  (" + err.Error() + ")"
		}
		msg := ae.Err.Message
		if msg == "" {
			msg = err.Error()
		}
		return msg + " " + fmt.Sprintf(c.msg.Agent.APIError, ae.Err.Code, ae.Status)
	}
	for kind, text := range c.msg.Errs {
		if errors.Is(err, kind) {
			return text + "\n  (" + err.Error() + ")"
		}
	}
	return err.Error()
}
