package cardsim

import (
	"errors"
	"fmt"
	"net/http"
	"sync"

	"kpe-agent/lab/synth"
)

// The lab's fingerprint sensor: the trainer (or a test) places a virtual
// finger on the sensor of a slot through the control channel, either the
// enrolled finger of the card in that slot (genuine), another person's
// (impostor) or a poor capture (too few minutiae); each capture is a new
// synthetic impression of that finger as an ISO/IEC 19794-2 record.
//
//	PUT /v1/slots/{n}/finger   {"mode": "genuine" | "impostor" | "poor"}
//	GET /v1/slots/{n}/capture  → application/octet-stream, the record

// FingerHolder is a card that knows its holder's synthetic finger.
type FingerHolder interface {
	SyntheticFinger() (seed uint64, id, code int, ok bool)
}

// Finger modes.
const (
	FingerGenuine  = "genuine"
	FingerImpostor = "impostor"
	FingerPoor     = "poor"
)

// ErrNoFinger: nothing is on the sensor, or the card has no finger.
var ErrNoFinger = errors.New("no finger on the sensor")

type sensorState struct {
	mu     sync.Mutex
	mode   map[int]string
	counts map[int]int
}

var sensors = struct {
	sync.Mutex
	m map[*Lab]*sensorState
}{m: map[*Lab]*sensorState{}}

func (l *Lab) sensor() *sensorState {
	sensors.Lock()
	defer sensors.Unlock()
	s, ok := sensors.m[l]
	if !ok {
		s = &sensorState{mode: map[int]string{}, counts: map[int]int{}}
		sensors.m[l] = s
	}
	return s
}

// PlaceFinger puts a virtual finger on slot n's sensor ("" lifts it).
func (l *Lab) PlaceFinger(n int, mode string) error {
	if _, err := l.slot(n); err != nil {
		return err
	}
	switch mode {
	case FingerGenuine, FingerImpostor, FingerPoor, "":
	default:
		return badRequest{fmt.Errorf("finger mode %q: want genuine, impostor or poor", mode)}
	}
	s := l.sensor()
	s.mu.Lock()
	s.mode[n] = mode
	s.mu.Unlock()
	return nil
}

// Capture returns a new impression of the finger on slot n's sensor.
func (l *Lab) Capture(n int) ([]byte, error) {
	sl, err := l.slot(n)
	if err != nil {
		return nil, err
	}
	s := l.sensor()
	s.mu.Lock()
	mode := s.mode[n]
	s.counts[n]++
	k := s.counts[n]
	s.mu.Unlock()
	if mode == "" {
		return nil, ErrNoFinger
	}
	sl.mu.Lock()
	var card Card
	if sl.ins != nil {
		card = sl.ins.card
	}
	sl.mu.Unlock()
	fh, ok := card.(FingerHolder)
	if !ok {
		return nil, fmt.Errorf("%w: the card in slot %d has no enrolled finger", ErrNoFinger, n)
	}
	seed, id, code, ok := fh.SyntheticFinger()
	if !ok {
		return nil, fmt.Errorf("%w: the card in slot %d has no enrolled finger", ErrNoFinger, n)
	}
	if mode == FingerImpostor {
		id += 100000
	}
	rec := synth.NewFinger(seed, id).Impression(synth.ParamsFor(synth.Easy), seed, k, code)
	if mode == FingerPoor {
		rec.Views[0].Minutiae = rec.Views[0].Minutiae[:min(6, len(rec.Views[0].Minutiae))]
	}
	defer rec.Wipe()
	return rec.Encode()
}

func (l *Lab) sensorHandlers(mux *http.ServeMux) {
	mux.HandleFunc("/v1/slots/{n}/finger", l.slotHandler(http.MethodPut, func(r *http.Request, n int) error {
		var req struct {
			Mode string `json:"mode"`
		}
		if err := readJSON(r, &req); err != nil {
			return err
		}
		return l.PlaceFinger(n, req.Mode)
	}))
	mux.HandleFunc("/v1/slots/{n}/capture", func(w http.ResponseWriter, r *http.Request) {
		if !allowMethod(w, r, http.MethodGet) {
			return
		}
		var n int
		if _, err := fmt.Sscanf(r.PathValue("n"), "%d", &n); err != nil {
			writeError(w, http.StatusNotFound, fmt.Errorf("slot %q: %w", r.PathValue("n"), ErrBadSlot))
			return
		}
		b, err := l.Capture(n)
		if errors.Is(err, ErrNoFinger) {
			writeError(w, http.StatusConflict, err)
			return
		}
		if err != nil {
			writeError(w, statusFor(err), err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(b)
	})
}
