package cards

import (
	"context"
	"errors"
	"fmt"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/biometric"
)

// Match-on-card (KPE): the live minutiae go to the card in a VERIFY under
// the card's secure messaging, and the card compares them with its secret
// reference. The card's retry counter is protected: it is queried first,
// a capture that fails the quality gate or the card's BIT limits is never
// sent, and the last try is used only when the operator confirms it.

// Errors of the fingerprint check. The clerk-facing sentences are in the
// caller's catalogue; these are for programs.
var (
	ErrLastTry       = errors.New("cards: only one fingerprint try left on the card: the operator must confirm before it is used")
	ErrFingerBlocked = errors.New("cards: the card's fingerprint verification is blocked (6983): the holder must go to the issuing office")
	ErrNoBIT         = errors.New("cards: the card has no fingerprint template information (BIT)")
)

// FingerOptions tune VerifyOnCard.
type FingerOptions struct {
	ConfirmLastTry bool // the operator confirmed using the last try
	MinQuality     int  // average minutia quality the capture needs (0: not checked)
}

// FingerOutcome is the card's answer. It holds no biometric data.
type FingerOutcome struct {
	Match     bool
	TriesLeft int // after the attempt; -1 unknown
}

// verifyAnswer turns the card's answer to VERIFY (kpe.VerifyFinger) into
// the outcome: verified (9000: match, or already verified), tries left
// (63Cx; -1 when not told), and 6983 as ErrFingerBlocked.
func verifyAnswer(a kpe.FingerAnswer, err error) (tries int, ok bool, _ error) {
	switch {
	case err == nil:
		return a.TriesLeft, a.Verified, nil
	case errors.Is(err, apdu.ErrAuthenticationBlocked):
		return 0, false, ErrFingerBlocked
	}
	return -1, false, fmt.Errorf("cards: VERIFY: %w", err)
}

// TriesLeft asks the card (empty VERIFY) how many tries remain; a card
// already verified in this session answers 9000 (verified true).
func TriesLeft(ctx context.Context, sm apdu.Transmitter, bit biometric.BIT) (tries int, verified bool, err error) {
	tries, verified, err = verifyAnswer(kpe.FingerTriesLeft(ctx, sm, bit.Reference))
	if err != nil && !errors.Is(err, ErrFingerBlocked) {
		return 0, false, fmt.Errorf("%w (query)", err)
	}
	return tries, verified, err
}

// VerifyOnCard checks a capture against the card's reference.
func VerifyOnCard(ctx context.Context, sm apdu.Transmitter, bitGroup []byte, capture *biometric.Record, o FingerOptions) (FingerOutcome, error) {
	if len(bitGroup) == 0 {
		return FingerOutcome{TriesLeft: -1}, ErrNoBIT
	}
	bits, err := biometric.ParseBITGroup(bitGroup)
	if err != nil {
		return FingerOutcome{TriesLeft: -1}, err
	}
	bit := bits[0]
	// Nothing poor reaches the card: the gate and the BIT limits first.
	if err := biometric.QualityGate(capture, bit.MinMinutiae, o.MinQuality); err != nil {
		return FingerOutcome{TriesLeft: -1}, err
	}
	data, err := biometric.VerifyData(bit, capture)
	if err != nil {
		return FingerOutcome{TriesLeft: -1}, err
	}
	defer clear(data)
	tries, verified, err := TriesLeft(ctx, sm, bit)
	if err != nil {
		return FingerOutcome{TriesLeft: 0}, err
	}
	if verified {
		// The card is already verified in this session: send anyway, so the
		// answer is about this capture, not an earlier one.
		tries = -1
	}
	if tries == 1 && !o.ConfirmLastTry {
		return FingerOutcome{TriesLeft: 1}, ErrLastTry
	}
	cmdData := biometric.VerifyCommandData(data)
	defer clear(cmdData)
	tries, match, err := verifyAnswer(kpe.VerifyFinger(ctx, sm, bit.Reference, cmdData))
	return FingerOutcome{Match: match, TriesLeft: tries}, err
}
