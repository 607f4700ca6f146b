package cards

import (
	"errors"
	"fmt"

	"kpe-agent/apdu/ktpel"
	"kpe-agent/biometric"
)

// Match-off-card (KTP-el): the two templates read from the chip through
// the SAM are compared with the live capture on the terminal. They are
// parsed and prepared in memory, compared, and wiped; nothing is kept.

// ErrNoTemplates: the chip gave no fingerprint template to compare with.
var ErrNoTemplates = errors.New("cards: the KTP-el holds no fingerprint template")

// OffCardOutcome is the result of a match-off-card. It names the finger
// that matched; it holds no template and no score that could rebuild one.
type OffCardOutcome struct {
	Match  bool
	Finger int // ISO finger position of the matching template, 0 if none
}

// MatchOffCard compares capture with the chip's templates. When the
// capture names its finger, only the template of that finger is used;
// otherwise both are tried. The chip's templates are wiped afterwards.
func MatchOffCard(card *ktpel.Card, capture *biometric.Record) (OffCardOutcome, error) {
	defer func() {
		for i := range card.Fingerprints {
			card.Fingerprints[i].Wipe()
		}
	}()
	if len(card.Fingerprints) == 0 {
		return OffCardOutcome{}, ErrNoTemplates
	}
	if err := biometric.QualityGate(capture, 12, 0); err != nil {
		return OffCardOutcome{}, err
	}
	live, err := biometric.Prepare(capture)
	if err != nil {
		return OffCardOutcome{}, err
	}
	defer live.Wipe()
	code := 0
	if len(capture.Views) > 0 {
		code = capture.Views[0].Finger
	}
	tried := 0
	for _, f := range card.Fingerprints {
		if code != 0 && f.Finger != 0 && f.Finger != code {
			continue
		}
		rec, err := biometric.Parse(f.Template)
		if err != nil {
			return OffCardOutcome{}, fmt.Errorf("cards: KTP-el template of finger %d: %w", f.Finger, err)
		}
		ref, err := biometric.Prepare(rec)
		rec.Wipe()
		if err != nil {
			return OffCardOutcome{}, fmt.Errorf("cards: KTP-el template of finger %d: %w", f.Finger, err)
		}
		res := biometric.Compare(ref, live)
		ref.Wipe()
		tried++
		if res.Match {
			return OffCardOutcome{Match: true, Finger: f.Finger}, nil
		}
	}
	if tried == 0 {
		return OffCardOutcome{}, fmt.Errorf("%w for finger %d", ErrNoTemplates, code)
	}
	return OffCardOutcome{}, nil
}
