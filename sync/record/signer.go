package record

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Signer signs record digests with a counter, the SAM's SIGN RECORD: it
// takes the next value of its 32-bit counter (persisted before it answers)
// and returns it with an ECDSA P-256 signature (r ‖ s) over
// SHA-256(SignedMessage(digest, counter, serial)).
type Signer interface {
	Kind() SignerKind
	Serial() [8]byte
	Sign(ctx context.Context, digest [32]byte) (counter uint32, sig [64]byte, err error)
}

// ErrSign wraps a signer's failure: the record was not sealed.
var ErrSign = errors.New("record: not signed")

// NewID returns a random record id.
func NewID() ([16]byte, error) {
	var id [16]byte
	_, err := rand.Read(id[:])
	return id, err
}

// Seal completes r with the signer's kind and serial, signs it and fills in
// Counter and Signature (in low-s form, whatever s the signer answered).
// The record is written in the current encoding version (VersionRenewal
// for a renewal's record, Version for any other). Time is cut to the
// millisecond (what the encoding keeps). r is unchanged when it fails.
func Seal(ctx context.Context, r *Record, s Signer) error {
	c := *r
	c.Version = currentVersion(&c)
	c.Time = time.UnixMilli(r.Time.UnixMilli()).UTC()
	c.Signer = s.Kind()
	c.SAMSerial = s.Serial()
	d, err := c.Digest()
	if err != nil {
		return err
	}
	c.Counter, c.Signature, err = s.Sign(ctx, d)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSign, err)
	}
	c.Signature = LowS(c.Signature)
	*r = c
	return nil
}

// SoftwareSigner signs with a key in memory and an in-memory counter. It is
// for tests and for demonstrations without a SAM only: its records say
// SignerSoftware, and its counter does not survive a restart.
type SoftwareSigner struct {
	Key      *ecdsa.PrivateKey
	SerialNo [8]byte

	mu      sync.Mutex
	counter uint32
}

// NewSoftwareSigner returns a signer whose counter continues after start.
func NewSoftwareSigner(key *ecdsa.PrivateKey, serial [8]byte, start uint32) *SoftwareSigner {
	return &SoftwareSigner{Key: key, SerialNo: serial, counter: start}
}

// Kind is SignerSoftware.
func (s *SoftwareSigner) Kind() SignerKind { return SignerSoftware }

// Serial is the configured serial.
func (s *SoftwareSigner) Serial() [8]byte { return s.SerialNo }

// Counter is the last counter value issued.
func (s *SoftwareSigner) Counter() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counter
}

// Sign issues the next counter value and signs.
func (s *SoftwareSigner) Sign(ctx context.Context, digest [32]byte) (uint32, [64]byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, [64]byte{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counter == ^uint32(0) {
		return 0, [64]byte{}, errors.New("software signer: counter exhausted")
	}
	c := s.counter + 1
	sig, err := SignDigest(s.Key, digest, c, s.SerialNo)
	if err != nil {
		return 0, [64]byte{}, err
	}
	s.counter = c
	return c, sig, nil
}

// SignDigest is what SIGN RECORD computes, with a key in memory: the ECDSA
// P-256 signature (r ‖ s, s low) over SHA-256(SignedMessage(digest,
// counter, serial)). For software signers and test stand-ins only.
func SignDigest(key *ecdsa.PrivateKey, digest [32]byte, counter uint32, serial [8]byte) ([64]byte, error) {
	var sig [64]byte
	h := sha256.Sum256(SignedMessage(digest, counter, serial))
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		return sig, err
	}
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return LowS(sig), nil
}
