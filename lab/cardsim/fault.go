package cardsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// Fault describes failures injected into the APDU exchanges of one vpcd
// slot or MemReader. APDUs are counted from 1 starting when the fault is
// armed (SetFault); control messages (power, reset, ATR polls) are never
// counted, delayed or altered.
//
// In JSON, durations are strings such as "500ms":
//
//	{"remove_at_apdu": 3, "reinsert_after": "1s", "delay": "200ms",
//	 "delay_count": 2, "malformed_at_apdu": 5, "answer_lost_at_apdu": 4,
//	 "hold_at_apdu": 2, "hold_ins": 64, "status_at_apdu": 6, "status": "6985"}
type Fault struct {
	// RemoveAtAPDU: instead of answering the Nth APDU the card is removed
	// (vpcd: the connection is closed; MemReader: Transmit fails with
	// apdu.ErrCardRemoved). The command does not reach the card. 0 = off.
	RemoveAtAPDU int
	// ReinsertAfter: after a RemoveAtAPDU removal the same card is
	// inserted again after this pause. 0 = it stays removed (the slot or
	// reader becomes empty).
	ReinsertAfter time.Duration
	// Delay is added before answering an APDU.
	Delay time.Duration
	// DelayCount: only the first DelayCount APDUs are delayed; 0 = every
	// APDU.
	DelayCount int
	// MalformedAtAPDU: the Nth APDU is answered with the single byte 90
	// (no SW2); the command does not reach the card. 0 = off.
	MalformedAtAPDU int
	// AnswerLostAtAPDU: the Nth APDU reaches the card and is processed,
	// then the card is removed before its answer is delivered, as
	// RemoveAtAPDU (ReinsertAfter applies). With RemoveAtAPDU the two
	// cover a tear just before and just after each APDU. 0 = off.
	AnswerLostAtAPDU int
	// HoldAtAPDU: the Nth APDU is held before it reaches the card until
	// the hold is released (Lab.ReleaseHold, MemReader.ReleaseHold, or
	// arming or clearing a fault): it is then processed and answered as
	// usual. A removal of the card meanwhile drops it (the command never
	// reaches the card). Lab.WaitHold tells when it is held, and which
	// command: a test stops the terminal exactly at one APDU of a
	// session (docs/card-lab.md, "Faults"). 0 = off.
	HoldAtAPDU int
	// HoldINS: when not 0, HoldAtAPDU counts only the APDUs whose
	// instruction byte is HoldINS (the Nth SIGN RECORD of a SAM, the Nth
	// UPDATE BINARY of a card); 0 counts every APDU.
	HoldINS byte
	// StatusAtAPDU: the Nth APDU reaches the card and is processed, and
	// its answer is replaced by the status word Status alone (a card, a
	// reader or a GET RESPONSE that fails after the command took effect).
	// 0 = off.
	StatusAtAPDU int
	// Status: the status word of StatusAtAPDU, 6200 to 6FFF (6Cxx makes
	// the terminal re-send the command, as ISO/IEC 7816-3 asks).
	Status uint16
}

// IsZero reports whether f injects nothing.
func (f Fault) IsZero() bool { return f == Fault{} }

// Validate rejects negative values.
func (f Fault) Validate() error {
	if f.RemoveAtAPDU < 0 || f.DelayCount < 0 || f.MalformedAtAPDU < 0 || f.AnswerLostAtAPDU < 0 ||
		f.Delay < 0 || f.ReinsertAfter < 0 || f.HoldAtAPDU < 0 {
		return errors.New("fault: negative values are not allowed")
	}
	if f.HoldINS != 0 && f.HoldAtAPDU == 0 {
		return errors.New("fault: hold_ins without hold_at_apdu")
	}
	if f.StatusAtAPDU < 0 || (f.StatusAtAPDU == 0) != (f.Status == 0) {
		return errors.New("fault: status_at_apdu and status go together")
	}
	if f.Status != 0 && (f.Status < 0x6200 || f.Status > 0x6FFF) {
		return fmt.Errorf("fault: status %04X: want 6200 to 6FFF", f.Status)
	}
	return nil
}

type faultJSON struct {
	RemoveAtAPDU    int    `json:"remove_at_apdu,omitempty"`
	ReinsertAfter   string `json:"reinsert_after,omitempty"`
	Delay           string `json:"delay,omitempty"`
	DelayCount      int    `json:"delay_count,omitempty"`
	MalformedAtAPDU int    `json:"malformed_at_apdu,omitempty"`
	AnswerLostAt    int    `json:"answer_lost_at_apdu,omitempty"`
	HoldAtAPDU      int    `json:"hold_at_apdu,omitempty"`
	HoldINS         int    `json:"hold_ins,omitempty"`
	StatusAtAPDU    int    `json:"status_at_apdu,omitempty"`
	Status          string `json:"status,omitempty"` // hex, "6985"
}

// MarshalJSON encodes durations as strings ("500ms").
func (f Fault) MarshalJSON() ([]byte, error) {
	j := faultJSON{RemoveAtAPDU: f.RemoveAtAPDU, DelayCount: f.DelayCount, MalformedAtAPDU: f.MalformedAtAPDU, AnswerLostAt: f.AnswerLostAtAPDU,
		HoldAtAPDU: f.HoldAtAPDU, HoldINS: int(f.HoldINS), StatusAtAPDU: f.StatusAtAPDU}
	if f.Status != 0 {
		j.Status = fmt.Sprintf("%04X", f.Status)
	}
	if f.Delay != 0 {
		j.Delay = f.Delay.String()
	}
	if f.ReinsertAfter != 0 {
		j.ReinsertAfter = f.ReinsertAfter.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the format above strictly (unknown fields and
// malformed durations are errors).
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("fault: %w", err)
	}
	if j.HoldINS < 0 || j.HoldINS > 0xFF {
		return fmt.Errorf("fault: hold_ins: %d is not an instruction byte (0..255)", j.HoldINS)
	}
	var sw uint64
	if j.Status != "" {
		var err error
		if len(j.Status) != 4 {
			return fmt.Errorf("fault: status: %q is not a status word (4 hex digits)", j.Status)
		}
		if sw, err = strconv.ParseUint(j.Status, 16, 16); err != nil {
			return fmt.Errorf("fault: status: %q is not a status word (4 hex digits)", j.Status)
		}
	}
	out := Fault{RemoveAtAPDU: j.RemoveAtAPDU, DelayCount: j.DelayCount, MalformedAtAPDU: j.MalformedAtAPDU, AnswerLostAtAPDU: j.AnswerLostAt,
		HoldAtAPDU: j.HoldAtAPDU, HoldINS: byte(j.HoldINS), StatusAtAPDU: j.StatusAtAPDU, Status: uint16(sw)}
	var err error
	if out.Delay, err = parseDuration(j.Delay); err != nil {
		return fmt.Errorf("fault: delay: %w", err)
	}
	if out.ReinsertAfter, err = parseDuration(j.ReinsertAfter); err != nil {
		return fmt.Errorf("fault: reinsert_after: %w", err)
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*f = out
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

// faultAction is what the injector decided for one APDU.
type faultAction struct {
	n             int // APDU number since arming (0 when no fault is armed)
	delay         time.Duration
	remove        bool
	answerLost    bool
	malformed     bool
	status        uint16 // StatusAtAPDU: the answer's replacement
	hold          *hold  // the APDU is held until released
	reinsertAfter time.Duration
}

// hold is one armed HoldAtAPDU: held is closed once the APDU is held (cmd
// set), release when it may go on.
type hold struct {
	cmd      []byte
	held     chan struct{}
	release  chan struct{}
	released sync.Once
}

func newHold() *hold { return &hold{held: make(chan struct{}), release: make(chan struct{})} }

func (h *hold) let() { h.released.Do(func() { close(h.release) }) }

// faultState counts APDUs since arming and decides the fault actions. It is
// shared by vpcd slots and MemReader.
type faultState struct {
	mu     sync.Mutex
	fault  Fault
	count  int
	held   int   // APDUs counted towards HoldAtAPDU
	hold   *hold // nil: no HoldAtAPDU armed
	holdOn bool  // the armed hold's APDU came
}

func (s *faultState) set(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		s.hold.let() // a new fault (or none) lets a held APDU go on
	}
	s.fault, s.count, s.held, s.hold, s.holdOn = f, 0, 0, nil, false
	if f.HoldAtAPDU > 0 {
		s.hold = newHold()
	}
}

// armedHold is the armed hold (nil: none).
func (s *faultState) armedHold() *hold {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hold
}

// waitHold waits until the armed hold holds its APDU and returns the
// command.
func (s *faultState) waitHold(ctx context.Context) ([]byte, error) {
	h := s.armedHold()
	if h == nil {
		return nil, ErrNoHold
	}
	select {
	case <-h.held:
		return bytes.Clone(h.cmd), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// releaseHold lets the held APDU (or the one still to come) go on.
func (s *faultState) releaseHold() error {
	h := s.armedHold()
	if h == nil {
		return ErrNoHold
	}
	h.let()
	return nil
}

// ErrNoHold: no HoldAtAPDU fault is armed.
var ErrNoHold = errors.New("cardsim: no hold_at_apdu fault armed")

func (s *faultState) get() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault, !s.fault.IsZero()
}

func (s *faultState) next(cmd []byte) faultAction {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fault
	if f.IsZero() {
		return faultAction{}
	}
	s.count++
	n := s.count
	a := faultAction{n: n, reinsertAfter: f.ReinsertAfter}
	if f.Delay > 0 && (f.DelayCount == 0 || n <= f.DelayCount) {
		a.delay = f.Delay
	}
	a.remove = n == f.RemoveAtAPDU
	a.answerLost = !a.remove && n == f.AnswerLostAtAPDU
	a.malformed = !a.remove && !a.answerLost && n == f.MalformedAtAPDU
	if !a.remove && !a.answerLost && !a.malformed && n == f.StatusAtAPDU {
		a.status = f.Status
	}
	if s.hold != nil && !s.holdOn && (f.HoldINS == 0 || len(cmd) >= 2 && cmd[1] == f.HoldINS) {
		s.held++
		if s.held == f.HoldAtAPDU {
			s.holdOn = true
			s.hold.cmd = bytes.Clone(cmd)
			a.hold = s.hold
		}
	}
	return a
}

// errFaultRemoved: a RemoveAtAPDU or AnswerLostAtAPDU fault fired.
var errFaultRemoved = errors.New("card removed by fault injection")

// malformedResponse is the answer of a MalformedAtAPDU fault.
var malformedResponse = []byte{0x90}

// exchange passes one APDU through the fault injector and the card. It
// returns the response, or errFaultRemoved, or ctx's error when ctx ends
// during an injected delay. The action is returned for logging and for the
// caller's removal handling.
func exchange(ctx context.Context, faults *faultState, card Card, cmd []byte, log *slog.Logger) ([]byte, faultAction, error) {
	act := faults.next(cmd)
	if h := act.hold; h != nil {
		if log != nil {
			log.Info("fault: holding the APDU until released", "apdu", act.n)
		}
		close(h.held)
		select {
		case <-h.release:
		case <-ctx.Done():
			return nil, act, ctx.Err() // removed meanwhile: the command never reaches the card
		}
	}
	if act.delay > 0 {
		t := time.NewTimer(act.delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, act, ctx.Err()
		}
	}
	switch {
	case act.remove:
		if log != nil {
			log.Info("fault: removing card instead of answering", "apdu", act.n)
		}
		return nil, act, errFaultRemoved
	case act.answerLost:
		processSafely(card, cmd, log)
		if log != nil {
			log.Info("fault: removing card after processing, before its answer", "apdu", act.n)
		}
		return nil, act, errFaultRemoved
	case act.malformed:
		if log != nil {
			log.Info("fault: answering with a malformed 1-byte response", "apdu", act.n)
		}
		return bytes.Clone(malformedResponse), act, nil
	case act.status != 0:
		processSafely(card, cmd, log)
		if log != nil {
			log.Info("fault: the card processed the APDU; answering with a status word instead", "apdu", act.n, "sw", fmt.Sprintf("%04X", act.status))
		}
		return []byte{byte(act.status >> 8), byte(act.status)}, act, nil
	}
	return processSafely(card, cmd, log), act, nil
}
