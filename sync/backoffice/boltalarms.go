package backoffice

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"kpe-agent/sync/wire"
)

// The bbolt store keeps each alarm under its id, the alarms bucket's
// sequence (8 bytes, big-endian: newest last), as the JSON of a
// wire.Alarm with its state and history. Alarms written before alarms
// had a state carry neither: they read as open, raised at their time.

// raiseBolt stores a new, open alarm.
func raiseBolt(b *bolt.Bucket, a wire.Alarm) error {
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	a.ID, a.State, a.Acknowledged = 0, wire.AlarmOpen, nil
	a.History = []wire.AlarmEvent{{Type: wire.AlarmEventRaised, At: a.At.UTC()}}
	return putJSON(b, binary.BigEndian.AppendUint64(nil, seq), a)
}

// boltAlarmKey is the key of alarm id.
func boltAlarmKey(id int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

// storedAlarm is an alarm with its whole history, as the stores keep it.
type storedAlarm struct{ wire.Alarm }

// decodeBoltAlarm reads an alarm from its key and value.
func decodeBoltAlarm(k, v []byte) (storedAlarm, error) {
	var a wire.Alarm
	if len(k) != 8 {
		return storedAlarm{}, fmt.Errorf("backoffice: damaged alarm key %x", k)
	}
	if err := json.Unmarshal(v, &a); err != nil {
		return storedAlarm{}, fmt.Errorf("backoffice: damaged alarm %x: %w", k, err)
	}
	a.ID = int64(binary.BigEndian.Uint64(k))
	a.At = a.At.UTC()
	if a.State == "" {
		a.State = wire.AlarmOpen
	}
	if len(a.History) == 0 || a.History[0].Type != wire.AlarmEventRaised {
		a.History = append([]wire.AlarmEvent{{Type: wire.AlarmEventRaised, At: a.At}}, a.History...)
	}
	a.Acknowledged = nil
	return storedAlarm{a}, nil
}

// listed is the alarm as lists show it: its last acknowledgement, no
// history.
func (s storedAlarm) listed() wire.Alarm {
	a := s.Alarm
	a.History = nil
	for i := len(s.History) - 1; i >= 0; i-- {
		if s.History[i].Type == wire.AlarmEventAcknowledged {
			ev := s.History[i]
			a.Acknowledged = &ev
			break
		}
	}
	return a
}

// full is the alarm with its history and its last acknowledgement.
func (s storedAlarm) full() *wire.Alarm {
	a := s.listed()
	a.History = s.History
	return &a
}

// Alarms implements Store.
func (s *BoltStore) Alarms(_ context.Context, q AlarmQuery) ([]wire.Alarm, error) {
	var out []wire.Alarm
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bbAlarms).Cursor()
		for k, v := c.Last(); k != nil && len(out) < q.Limit; k, v = c.Prev() {
			a, err := decodeBoltAlarm(k, v)
			if err != nil {
				return err
			}
			if q.State == "" || a.State == q.State {
				out = append(out, a.listed())
			}
		}
		return nil
	})
	return out, err
}

// Alarm implements Store.
func (s *BoltStore) Alarm(_ context.Context, id int64) (*wire.Alarm, error) {
	var out *wire.Alarm
	err := s.db.View(func(tx *bolt.Tx) error {
		k := boltAlarmKey(id)
		v := tx.Bucket(bbAlarms).Get(k)
		if id <= 0 || v == nil {
			return ErrNotFound
		}
		a, err := decodeBoltAlarm(k, v)
		out = a.full()
		return err
	})
	return out, err
}

// AckAlarm implements Store, in one transaction.
func (s *BoltStore) AckAlarm(_ context.Context, id int64, ev wire.AlarmEvent) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, k := tx.Bucket(bbAlarms), boltAlarmKey(id)
		v := b.Get(k)
		if id <= 0 || v == nil {
			return ErrNotFound
		}
		a, err := decodeBoltAlarm(k, v)
		if err != nil {
			return err
		}
		if a.State != wire.AlarmOpen {
			return ErrAcknowledged
		}
		ev.Type = wire.AlarmEventAcknowledged
		a.State, a.History = wire.AlarmAcknowledged, append(a.History, ev)
		stored := a.Alarm
		stored.ID = 0
		return putJSON(b, k, stored)
	})
}
