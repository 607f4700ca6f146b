package kpe

import (
	"context"
	"errors"
	"fmt"

	"kpe-agent/apdu"
	"kpe-agent/apdu/sm"
)

// The KPE profile's commands (docs/card-profiles.md §2). Every command
// APDU the terminal sends to a KPE is built here or, for the generic
// ISO/IEC 7816-4 ones (SELECT, READ BINARY, GET CHALLENGE, EXTERNAL
// AUTHENTICATE), by package apdu on this package's parameters.

// Select selects the KPE application aid (nil: DefaultAID) without asking
// for its FCI (00 A4 04 0C): recognition's probe, where only the status
// word matters. A card without the application answers with a status
// error (6A82).
func Select(ctx context.Context, c *apdu.Client, aid []byte) error {
	if aid == nil {
		aid = DefaultAID
	}
	if err := c.SelectAIDNoResponse(ctx, aid); err != nil {
		return fmt.Errorf("kpe: select application: %w", err)
	}
	return nil
}

// selectApplication selects the application for a read, asking for its
// FCI (00 A4 04 00 ... 00), as the worked example of §6.1 shows.
func selectApplication(ctx context.Context, c *apdu.Client, aid []byte) error {
	if _, err := c.SelectAID(ctx, aid); err != nil {
		return fmt.Errorf("kpe: select application: %w", err)
	}
	return nil
}

// externalAuthenticate sends the SAM's answer to the card's challenge
// (E.IFD ‖ M.IFD, AuthDataLen bytes) and returns the card's (E.IC ‖ M.IC).
func externalAuthenticate(ctx context.Context, c *apdu.Client, ext []byte) ([]byte, error) {
	return c.ExternalAuthenticate(ctx, ext, AuthDataLen)
}

// Plain data per command under the KPE's AES secure messaging with short
// APDUs (255 command bytes, 256 response bytes), once DO'87' (indicator,
// padding to 16), DO'97' or DO'99' and DO'8E' are added.
var (
	// SMMaxResponseData is the plain data per protected READ BINARY.
	SMMaxResponseData = sm.MaxPlainResponse(apdu.MaxShortNe, Suite.Cipher)
	// SMMaxCommandData is the plain data per protected command; longer
	// data (a VERIFY with many minutiae) is sent with command chaining.
	SMMaxCommandData = sm.MaxPlainCommand(apdu.MaxShortNc, Suite.Cipher)
)

// Match-on-card VERIFY (§2.6): ISO/IEC 7816-4 VERIFY with odd INS 21
// (BER-TLV data: the biometric data template 7F2E { 81 compact minutiae }
// that package biometric builds), P1 00 and P2 the reference of the
// biometric information template (BIT, EF 0107) the card compares with.
// It is sent inside the card's secure-messaging session.
const (
	// InsVerifyFinger is the VERIFY instruction of the on-card comparison.
	InsVerifyFinger = apdu.InsVerifyBERTLV
	// VerifyFingerP1 is VERIFY's P1 (no other value is defined).
	VerifyFingerP1 byte = 0x00
)

// Defaults of the on-card comparison with which the lab personalises its
// cards (§2.6). A real card's BIT tells its own reference and limits; the
// terminal always takes them from the BIT.
const (
	DefaultFingerReference byte = 0x81 // BIT tag 83, VERIFY P2
	DefaultFingerTries          = 5    // retry counter of the comparison
	DefaultMinMinutiae          = 12   // BIT limits of a probe
	DefaultMaxMinutiae          = 60
)

// FingerAnswer is the card's answer to VERIFY, with no biometric data.
type FingerAnswer struct {
	// Verified: 9000. To an empty VERIFY it means the card is already
	// verified in this session; to VERIFY with data, the capture matched.
	Verified bool
	// TriesLeft is x of 63Cx (the comparison failed, or an empty VERIFY
	// asked for the counter); -1 when the card did not say (9000).
	TriesLeft int
}

// verifyFingerCommand builds VERIFY for reference ref; data nil is the
// empty VERIFY that asks for the retry counter.
func verifyFingerCommand(ref byte, data []byte) apdu.Command {
	return apdu.Command{CLA: apdu.CLAInterindustry, INS: InsVerifyFinger, P1: VerifyFingerP1, P2: ref, Data: data}
}

// VerifyFinger sends VERIFY with data (the 7F2E template) for reference
// ref through the card's secure-messaging channel ch, with command
// chaining beyond SMMaxCommandData. The answer: 9000 → Verified; 63Cx →
// not verified with x tries left. Any other status is returned as the
// card's status error: 6983 (blocked) wraps apdu.ErrAuthenticationBlocked,
// 6A80 (malformed or outside the BIT limits) apdu.ErrWrongData. Transport
// and secure-messaging failures are returned as they are.
func VerifyFinger(ctx context.Context, ch apdu.Transmitter, ref byte, data []byte) (FingerAnswer, error) {
	if len(data) == 0 {
		return FingerAnswer{TriesLeft: -1}, fmt.Errorf("%w: VERIFY without biometric data (use FingerTriesLeft)", apdu.ErrInvalidCommand)
	}
	return verifyFinger(ctx, ch, ref, data)
}

// FingerTriesLeft sends the empty VERIFY for reference ref through the
// card's secure-messaging channel ch: 63Cx gives the tries left, 9000
// (already verified in this session) Verified. Errors as VerifyFinger.
func FingerTriesLeft(ctx context.Context, ch apdu.Transmitter, ref byte) (FingerAnswer, error) {
	return verifyFinger(ctx, ch, ref, nil)
}

func verifyFinger(ctx context.Context, ch apdu.Transmitter, ref byte, data []byte) (FingerAnswer, error) {
	c := apdu.NewClient(ch, apdu.Limits{MaxCommandData: SMMaxCommandData})
	_, err := c.Send(ctx, verifyFingerCommand(ref, data))
	var re *apdu.RetriesError
	switch {
	case err == nil:
		return FingerAnswer{Verified: true, TriesLeft: -1}, nil
	case errors.As(err, &re):
		return FingerAnswer{TriesLeft: re.Retries}, nil
	}
	return FingerAnswer{TriesLeft: -1}, err
}
