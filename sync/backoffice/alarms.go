package backoffice

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"kpe-agent/sync/wire"
)

// Alarms: each alarm has an id, a state (open, acknowledged) and a
// history of events (raised; acknowledged by whom, when, with a comment).
// The one-alarm-per-key rules stay: a repeat of the same condition raises
// nothing and does not reopen an acknowledged alarm
// (docs/backoffice.md, "Alarms").

// AlarmQuery selects alarms for Store.Alarms.
type AlarmQuery struct {
	State wire.AlarmState // "": every state
	Limit int
}

// Limits of an acknowledgement, in characters.
const (
	MaxAckBy      = 64
	MaxAckComment = 500
)

var (
	// ErrAcknowledged: the alarm is acknowledged already.
	ErrAcknowledged = errors.New("backoffice: alarm already acknowledged")
	// ErrAck: an acknowledgement that breaks CheckAck's rules.
	ErrAck = errors.New("backoffice: acknowledgement not acceptable")
)

// CheckAck checks an acknowledgement: by (the signed-in account) is
// 1..MaxAckBy characters and comment 1..MaxAckComment, both valid UTF-8
// without control characters and not blank. The error wraps ErrAck and
// names the field.
func CheckAck(by string, a wire.AlarmAck) error {
	for _, f := range []struct {
		name, v string
		max     int
	}{{"by", by, MaxAckBy}, {"comment", a.Comment, MaxAckComment}} {
		switch n := utf8.RuneCountInString(f.v); {
		case !utf8.ValidString(f.v):
			return fmt.Errorf("%w: %s is not valid UTF-8", ErrAck, f.name)
		case strings.TrimSpace(f.v) == "":
			return fmt.Errorf("%w: %s is missing or blank", ErrAck, f.name)
		case n > f.max:
			return fmt.Errorf("%w: %s has %d characters, at most %d", ErrAck, f.name, n, f.max)
		case strings.ContainsFunc(f.v, unicode.IsControl):
			return fmt.Errorf("%w: %s contains a control character", ErrAck, f.name)
		}
	}
	return nil
}

// Alarms lists alarms (Store.Alarms).
func (s *Service) Alarms(ctx context.Context, q AlarmQuery) ([]wire.Alarm, error) {
	return s.store.Alarms(ctx, q)
}

// Alarm is one alarm with its history (ErrNotFound).
func (s *Service) Alarm(ctx context.Context, id int64) (*wire.Alarm, error) {
	return s.store.Alarm(ctx, id)
}

// AckAlarm acknowledges alarm id now, by the account by (the staff
// listener passes the session's). Errors: ErrAck (checked first),
// ErrNotFound, ErrAcknowledged.
func (s *Service) AckAlarm(ctx context.Context, id int64, by string, a wire.AlarmAck) error {
	if err := CheckAck(by, a); err != nil {
		return err
	}
	return s.store.AckAlarm(ctx, id, wire.AlarmEvent{Type: wire.AlarmEventAcknowledged, At: s.cfg.Now().UTC(), By: by, Comment: a.Comment})
}
