// Package sam talks to the terminal SAM (docs/card-profiles.md §4): its
// identity and state, activation, and SIGN RECORD, which signs a record
// digest together with the SAM's next signature counter value.
package sam

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/ktpel"
	"kpe-agent/apdu/sm"
	"kpe-agent/internal/tlv"
)

// AID is the SAM application identifier (a profile parameter).
var AID = []byte{0xF0, 0x4B, 0x50, 0x45, 0x53, 0x41, 0x4D, 0x01}

// ATRHint is what the lab SAM's ATR carries in its historical bytes: the
// pre-issuing data object (compact-TLV tag 6, length 4) "SAM" v1 without
// its version byte. Recognition tries a card whose ATR holds it as a SAM
// first (docs/card-profiles.md §5).
var ATRHint = []byte{0x64, 0x53, 0x41, 0x4D}

// Errors.
var (
	ErrBlocked      = errors.New("sam: blocked (activation tries exhausted)")
	ErrNotActivated = errors.New("sam: not activated")
	ErrFormat       = errors.New("sam: malformed answer")
	// ErrNoPseudonym: the SAM computes no pseudonyms: it holds no
	// institution pseudonym key (6A88) or does not know PSEUDONYM (6D00).
	// ErrNoUpdateKey: the SAM holds no KPE update key (CARD AUTH INIT P1 03
	// answered 6A88; a SAM without the command, 6D00 or 6A86, maps to it
	// too). It is kpe.ErrNoUpdateKey, so either name matches.
	ErrNoUpdateKey = kpe.ErrNoUpdateKey
	ErrNoPseudonym = errors.New("sam: no pseudonym key (PSEUDONYM not available)")
)

// ActivationError is a wrong activation code; TriesLeft more are allowed.
type ActivationError struct {
	TriesLeft int
	Err       error // the card's *apdu.RetriesError
}

func (e *ActivationError) Error() string {
	return fmt.Sprintf("sam: wrong activation code, %d tries left", e.TriesLeft)
}
func (e *ActivationError) Unwrap() error { return e.Err }

// State of a SAM, as GET DATA reports it.
type State byte

const (
	Inactive State = 0
	Active   State = 1
	Blocked  State = 2
)

// String returns "inactive", "active" or "blocked" (the words of the
// local API and the logs).
func (s State) String() string {
	switch s {
	case Inactive:
		return "inactive"
	case Active:
		return "active"
	case Blocked:
		return "blocked"
	}
	return fmt.Sprintf("State(%d)", byte(s))
}

// Info is the SAM's GET DATA answer.
type Info struct {
	Serial    [8]byte
	State     State
	TriesLeft int
	Counter   uint32
}

// SAM is an opened SAM. Like a card, it belongs to one goroutine.
type SAM struct {
	c *apdu.Client
}

// Select selects the SAM application aid (nil: AID) without asking for
// its FCI (00 A4 04 0C): recognition's probe, and the first step of Open.
func Select(ctx context.Context, c *apdu.Client, aid []byte) error {
	if aid == nil {
		aid = AID
	}
	if err := c.SelectAIDNoResponse(ctx, aid); err != nil {
		return fmt.Errorf("sam: select: %w", err)
	}
	return nil
}

// Open selects the SAM application (AID).
func Open(ctx context.Context, t apdu.Transmitter) (*SAM, error) {
	return OpenAID(ctx, t, nil)
}

// OpenAID selects the SAM application aid (nil: AID), for a SAM whose
// application identifier is configured.
func OpenAID(ctx context.Context, t apdu.Transmitter, aid []byte) (*SAM, error) {
	s := &SAM{c: apdu.NewClient(t, apdu.Limits{})}
	if err := Select(ctx, s.c, aid); err != nil {
		return nil, err
	}
	return s, nil
}

// Info reads serial, state, tries left and the signature counter.
func (s *SAM) Info(ctx context.Context) (Info, error) {
	b, err := s.c.Send(ctx, getInfoCommand())
	if err != nil {
		return Info{}, fmt.Errorf("sam: get data: %w", err)
	}
	return ParseInfo(b)
}

// ParseInfo parses 70 { 80 serial, 81 state, 82 tries, 83 counter }.
func ParseInfo(b []byte) (Info, error) {
	t, err := tlv.ParseOne(b)
	if err != nil || t.Tag != tagInfo {
		return Info{}, fmt.Errorf("%w: info template: %v", ErrFormat, err)
	}
	var in Info
	got := 0
	for _, c := range t.Children {
		switch {
		case c.Tag == tagInfoSerial && len(c.Value) == SerialLen:
			copy(in.Serial[:], c.Value)
		case c.Tag == tagInfoState && len(c.Value) == 1 && c.Value[0] <= byte(Blocked):
			in.State = State(c.Value[0])
		case c.Tag == tagInfoTries && len(c.Value) == 1:
			in.TriesLeft = int(c.Value[0])
		case c.Tag == tagInfoCounter && len(c.Value) == CounterLen:
			in.Counter = binary.BigEndian.Uint32(c.Value)
		default:
			return Info{}, fmt.Errorf("%w: info field %s", ErrFormat, c.Tag)
		}
		got++
	}
	if got != 4 {
		return Info{}, fmt.Errorf("%w: info has %d of 4 fields", ErrFormat, got)
	}
	return in, nil
}

// Encode returns the GET DATA answer for in (the lab SAM's side).
func (in Info) Encode() []byte {
	return tlv.NewConstructed(tagInfo,
		tlv.New(tagInfoSerial, in.Serial[:]),
		tlv.New(tagInfoState, []byte{byte(in.State)}),
		tlv.New(tagInfoTries, []byte{byte(in.TriesLeft)}),
		tlv.New(tagInfoCounter, binary.BigEndian.AppendUint32(nil, in.Counter)),
	).Bytes()
}

func mapState(err error) error {
	var re *apdu.RetriesError
	switch {
	case errors.As(err, &re):
		return &ActivationError{TriesLeft: re.Retries, Err: err}
	case errors.Is(err, apdu.ErrAuthenticationBlocked):
		return fmt.Errorf("%w: %w", ErrBlocked, err)
	case errors.Is(err, apdu.ErrSecurityStatusNotSatisfied):
		return fmt.Errorf("%w: %w", ErrNotActivated, err)
	}
	return err
}

// Activate activates the SAM for this terminal with its activation code.
func (s *SAM) Activate(ctx context.Context, code []byte) error {
	if len(code) == 0 {
		return fmt.Errorf("%w: empty activation code", apdu.ErrInvalidCommand)
	}
	_, err := s.c.Send(ctx, activateCommand(ActivateTerminal, code))
	return mapState(err)
}

// Signature is the SAM's answer to SIGN RECORD.
type Signature struct {
	Counter uint32
	R, S    *big.Int
}

// SignRecord has the SAM sign digest with its next counter value.
func (s *SAM) SignRecord(ctx context.Context, digest [32]byte) (Signature, error) {
	b, err := s.c.Send(ctx, signRecordCommand(digest))
	if err != nil {
		return Signature{}, fmt.Errorf("sam: sign record: %w", mapState(err))
	}
	return ParseSignature(b)
}

// ParseSignature parses counter (4) ‖ r (32) ‖ s (32).
func ParseSignature(b []byte) (Signature, error) {
	if len(b) != SignatureLen {
		return Signature{}, fmt.Errorf("%w: signature of %d bytes, want %d", ErrFormat, len(b), SignatureLen)
	}
	return Signature{
		Counter: binary.BigEndian.Uint32(b),
		R:       new(big.Int).SetBytes(b[CounterLen : CounterLen+scalarLen]),
		S:       new(big.Int).SetBytes(b[CounterLen+scalarLen:]),
	}, nil
}

// Bytes encodes the signature as SIGN RECORD answers it: counter (4) ‖
// r (32) ‖ s (32), the scalars left-padded with zeros. It fails with an
// error wrapping ErrFormat when R or S is missing, negative or longer
// than 32 bytes.
func (sig Signature) Bytes() ([]byte, error) {
	if sig.R == nil || sig.S == nil || sig.R.Sign() < 0 || sig.S.Sign() < 0 ||
		sig.R.BitLen() > 8*scalarLen || sig.S.BitLen() > 8*scalarLen {
		return nil, fmt.Errorf("%w: signature scalars do not fit %d bytes", ErrFormat, scalarLen)
	}
	out := binary.BigEndian.AppendUint32(make([]byte, 0, SignatureLen), sig.Counter)
	out = append(out, sig.R.FillBytes(make([]byte, scalarLen))...)
	return append(out, sig.S.FillBytes(make([]byte, scalarLen))...), nil
}

// SignedMessage is what SIGN RECORD signs (ECDSA P-256 with SHA-256):
// digest ‖ counter (4, big-endian) ‖ SAM serial (8).
func SignedMessage(digest [DigestLen]byte, counter uint32, serial [SerialLen]byte) []byte {
	msg := make([]byte, 0, DigestLen+CounterLen+SerialLen)
	msg = append(msg, digest[:]...)
	msg = binary.BigEndian.AppendUint32(msg, counter)
	return append(msg, serial[:]...)
}

// Verify checks the signature over digest ‖ counter ‖ serial.
func (sig Signature) Verify(pub *ecdsa.PublicKey, digest [32]byte, serial [8]byte) bool {
	if sig.R == nil || sig.S == nil {
		return false
	}
	h := sha256.Sum256(SignedMessage(digest, sig.Counter, serial))
	return ecdsa.Verify(pub, h[:], sig.R, sig.S)
}

// Certificate reads the terminal certificate (X.509 DER) whose key signs
// records. The back office checks it against its CA.
func (s *SAM) Certificate(ctx context.Context) ([]byte, error) {
	b, err := s.c.ReadEF(ctx, FIDCert)
	if err != nil {
		return nil, fmt.Errorf("sam: read certificate: %w", mapState(err))
	}
	return b, nil
}

// Counter reads the signature counter.
func (s *SAM) Counter(ctx context.Context) (uint32, error) {
	b, err := s.c.Send(ctx, getCounterCommand())
	if err != nil {
		return 0, fmt.Errorf("sam: get counter: %w", mapState(err))
	}
	if len(b) != CounterLen {
		return 0, fmt.Errorf("%w: counter of %d bytes", ErrFormat, len(b))
	}
	return binary.BigEndian.Uint32(b), nil
}

// BeginCardAuth implements kpe.Authenticator with the SAM: CARD AUTH INIT
// computes the answer to the card's challenge with a key derived inside the
// SAM, and the returned finish runs CARD AUTH COMPLETE, which checks the
// card's answer and hands out only that session's keys.
func (s *SAM) BeginCardAuth(ctx context.Context, serial [8]byte, rndIC []byte) ([]byte, func(context.Context, []byte) (*sm.Session, error), error) {
	ext, err := s.c.Send(ctx, cardAuthInitCommand(ProfileKPE, serial[:], rndIC))
	if err != nil {
		return nil, nil, fmt.Errorf("sam: card auth init: %w", mapState(err))
	}
	finish := func(ctx context.Context, resp []byte) (*sm.Session, error) {
		b, err := s.c.Send(ctx, cardAuthCompleteCommand(ProfileKPE, resp))
		if errors.Is(err, apdu.ErrVerificationFailed) {
			return nil, fmt.Errorf("%w: %w", kpe.ErrAuthFailed, err)
		}
		if err != nil {
			return nil, fmt.Errorf("sam: card auth complete: %w", mapState(err))
		}
		keys, err := kpe.ParseSessionKeys(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFormat, err)
		}
		return keys.Session()
	}
	return ext, finish, nil
}

// BeginUpdateAuth implements kpe.UpdateAuthenticator: CARD AUTH INIT and
// COMPLETE with P1 ProfileKPEUpdate, the card's update keys derived inside
// the SAM from its update master. A SAM without one gives ErrNoUpdateKey.
func (s *SAM) BeginUpdateAuth(ctx context.Context, serial [8]byte, rndIC []byte) ([]byte, func(context.Context, []byte) (*sm.Session, error), error) {
	ext, err := s.c.Send(ctx, cardAuthInitCommand(ProfileKPEUpdate, serial[:], rndIC))
	if errors.Is(err, apdu.ErrReferenceNotFound) || errors.Is(err, apdu.ErrINSNotSupported) || errors.Is(err, &apdu.StatusError{SW: 0x6A86}) {
		return nil, nil, fmt.Errorf("%w: %w", ErrNoUpdateKey, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sam: card update auth init: %w", mapState(err))
	}
	finish := func(ctx context.Context, resp []byte) (*sm.Session, error) {
		b, err := s.c.Send(ctx, cardAuthCompleteCommand(ProfileKPEUpdate, resp))
		if errors.Is(err, apdu.ErrVerificationFailed) {
			return nil, fmt.Errorf("%w: %w", kpe.ErrAuthFailed, err)
		}
		if err != nil {
			return nil, fmt.Errorf("sam: card update auth complete: %w", mapState(err))
		}
		keys, err := kpe.ParseSessionKeys(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFormat, err)
		}
		return keys.Session()
	}
	return ext, finish, nil
}

// ActivateKTP enables the KTP-el functions with the installation's two
// secrets (ACTIVATE P1 02); the terminal activation must come first.
func (s *SAM) ActivateKTP(ctx context.Context, secret1, secret2 []byte) error {
	_, err := s.c.Send(ctx, activateCommand(ActivateKTPel, EncodePair(secret1, secret2)))
	return mapState(err)
}

// BeginKTPAuth implements ktpel.Authenticator: CARD AUTH INIT (profile 02)
// answers the chip's challenge with a key derived from its UID inside the
// SAM; finish runs CARD AUTH COMPLETE, after which the SAM holds the
// session keys and the returned channel wraps and unwraps through it.
func (s *SAM) BeginKTPAuth(ctx context.Context, uid, rndIC []byte) ([]byte, func(context.Context, []byte) (sm.Channel, error), error) {
	ext, err := s.c.Send(ctx, cardAuthInitCommand(ProfileKTPel, uid, rndIC))
	if err != nil {
		return nil, nil, fmt.Errorf("sam: KTP-el card auth init: %w", mapState(err))
	}
	if len(ext) != ktpel.AuthDataLen {
		return nil, nil, fmt.Errorf("%w: KTP-el cryptogram of %d bytes", ErrFormat, len(ext))
	}
	finish := func(ctx context.Context, resp []byte) (sm.Channel, error) {
		_, err := s.c.Send(ctx, cardAuthCompleteCommand(ProfileKTPel, resp))
		if errors.Is(err, apdu.ErrVerificationFailed) {
			return nil, fmt.Errorf("%w: %w", sm.ErrAuthFailed, err)
		}
		if err != nil {
			return nil, fmt.Errorf("sam: KTP-el card auth complete: %w", mapState(err))
		}
		return ktpChannel{s}, nil
	}
	return ext, finish, nil
}

// ktpChannel is secure messaging done by the SAM (SM WRAP / SM UNWRAP).
type ktpChannel struct{ s *SAM }

func (k ktpChannel) WrapAPDU(ctx context.Context, plain []byte) ([]byte, error) {
	b, err := k.s.c.Send(ctx, smCommand(InsSMWrap, plain))
	if err != nil {
		return nil, fmt.Errorf("sam: SM wrap: %w", mapSM(err))
	}
	return b, nil
}

func (k ktpChannel) UnwrapAPDU(ctx context.Context, protected []byte) ([]byte, error) {
	b, err := k.s.c.Send(ctx, smCommand(InsSMUnwrap, protected))
	if err != nil {
		return nil, fmt.Errorf("sam: SM unwrap: %w", mapSM(err))
	}
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: unwrapped response of %d bytes", ErrFormat, len(b))
	}
	return b, nil
}

// mapSM labels the SAM's refusal to unwrap (6988) a secure-messaging
// failure, so that the reader reports the chip's answer as not verifying.
func mapSM(err error) error {
	if errors.Is(err, apdu.ErrSMDataObjectsIncorrect) {
		return fmt.Errorf("%w: %w", sm.ErrBadMAC, err)
	}
	return mapState(err)
}

// Pseudonym has the SAM compute the pseudonym of value in domain d
// (PSEUDONYM): HMAC-SHA-256 under its institution pseudonym key, which
// never leaves the SAM, of d ‖ value (PseudonymOf). value is 1 to
// MaxPseudonymInput bytes; an unknown domain or a bad length is refused
// before anything is sent (apdu.ErrInvalidCommand). A SAM without the key
// or the command gives ErrNoPseudonym; one not activated ErrNotActivated.
func (s *SAM) Pseudonym(ctx context.Context, d Domain, value []byte) ([PseudonymLen]byte, error) {
	switch {
	case !d.Known():
		return [PseudonymLen]byte{}, fmt.Errorf("%w: pseudonym domain %s", apdu.ErrInvalidCommand, d)
	case len(value) == 0 || len(value) > MaxPseudonymInput:
		return [PseudonymLen]byte{}, fmt.Errorf("%w: pseudonym value of %d bytes (want 1..%d)", apdu.ErrInvalidCommand, len(value), MaxPseudonymInput)
	}
	b, err := s.c.Send(ctx, pseudonymCommand(d, value))
	if errors.Is(err, apdu.ErrReferenceNotFound) || errors.Is(err, apdu.ErrINSNotSupported) {
		return [PseudonymLen]byte{}, fmt.Errorf("%w: %w", ErrNoPseudonym, err)
	}
	if err != nil {
		return [PseudonymLen]byte{}, fmt.Errorf("sam: pseudonym: %w", mapState(err))
	}
	return ParsePseudonym(b)
}

// ParsePseudonym parses PSEUDONYM's answer: exactly PseudonymLen bytes.
func ParsePseudonym(b []byte) ([PseudonymLen]byte, error) {
	if len(b) != PseudonymLen {
		return [PseudonymLen]byte{}, fmt.Errorf("%w: pseudonym of %d bytes, want %d", ErrFormat, len(b), PseudonymLen)
	}
	return [PseudonymLen]byte(b), nil
}
