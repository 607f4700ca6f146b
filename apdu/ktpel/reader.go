package ktpel

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"kpe-agent/apdu"
	"kpe-agent/apdu/sm"
	"kpe-agent/apdu/verdict"
)

// Authenticator is the SAM's part of a KTP-el read: it answers the chip's
// challenge with a key derived from the UID inside the SAM, checks the
// chip's answer, and then protects every command and checks every answer
// with session keys that never leave it.
type Authenticator interface {
	BeginKTPAuth(ctx context.Context, uid, rndIC []byte) (ext []byte, finish func(ctx context.Context, resp []byte) (sm.Channel, error), err error)
}

// SoftwareSAM keeps the KTP-el master key in memory. It exists for unit
// tests and hardware-free demos only.
type SoftwareSAM struct {
	Master []byte
	Rand   io.Reader
}

// BeginKTPAuth implements Authenticator.
func (s SoftwareSAM) BeginKTPAuth(_ context.Context, uid, rndIC []byte) ([]byte, func(context.Context, []byte) (sm.Channel, error), error) {
	keys, err := DeriveCardKeys(s.Master, uid)
	if err != nil {
		return nil, nil, err
	}
	rng := s.Rand
	if rng == nil {
		rng = rand.Reader
	}
	a, ext, err := Suite.Start(keys, rndIC, rng)
	if err != nil {
		return nil, nil, err
	}
	return ext, func(_ context.Context, resp []byte) (sm.Channel, error) {
		k, err := a.Finish(resp)
		if err != nil {
			return nil, err
		}
		return k.Session()
	}, nil
}

// ReadOptions tune Read.
type ReadOptions struct {
	Photo bool           // read the photo and the signature image (off unless asked)
	Roots *x509.CertPool // trusted Dukcapil issuer CAs
	Now   time.Time      // time for certificate checks (default time.Now)
}

// Card is what Read returns: population data, memory only. It renders as
// "[redacted]" everywhere except through its fields.
type Card struct {
	UID          []byte
	Header       Header
	Biodata      Biodata
	Photo        []byte
	Signature    []byte
	Fingerprints []Fingerprint
	Verification verdict.Verification
}

// String keeps the card out of logs.
func (c *Card) String() string { return "[KTP-el card redacted]" }

// GoString keeps the card out of %#v.
func (c *Card) GoString() string { return c.String() }

// LogValue keeps the card out of log/slog.
func (c *Card) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON keeps the card out of JSON dumps; only the verdict is shown.
func (c *Card) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"ktpel":"[redacted]","verification":{"card_authentic":%t,"data_authentic":%t}}`,
		c.Verification.CardAuthentic.OK, c.Verification.DataAuthentic.OK), nil
}

// Wipe overwrites the templates, photo and signature image, and drops the
// biodata; call it when the transaction ends.
func (c *Card) Wipe() {
	for i := range c.Fingerprints {
		c.Fingerprints[i].Wipe()
	}
	clear(c.Photo)
	clear(c.Signature)
	c.Photo, c.Signature, c.Fingerprints, c.Biodata = nil, nil, nil, Biodata{}
}

// Read reads and verifies a KTP-el through the SAM: UID, DF 7F0A, the
// plain header, mutual authentication, then the protected EFs with every
// command wrapped and every answer unwrapped by the SAM. A chip that fails
// authentication is returned with CardAuthentic false and no protected
// data; transport and protocol failures are errors. The caller owns the
// transaction.
func Read(ctx context.Context, t apdu.Transmitter, sam Authenticator, opts ReadOptions) (*Card, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	c := apdu.NewClient(t, apdu.Limits{})
	uid, err := Select(ctx, c)
	if err != nil {
		return nil, err
	}
	raw, err := c.ReadEF(ctx, FIDHeader)
	if err != nil {
		return nil, fmt.Errorf("ktpel: read header: %w", err)
	}
	card := &Card{UID: uid}
	if card.Header, err = ParseHeader(raw); err != nil {
		return nil, err
	}

	rndIC, err := c.GetChallenge(ctx, RndLen)
	if err != nil {
		return nil, fmt.Errorf("ktpel: get challenge: %w", err)
	}
	ext, finish, err := sam.BeginKTPAuth(ctx, uid, rndIC)
	if err != nil {
		return nil, fmt.Errorf("ktpel: SAM: %w", err)
	}
	resp, err := externalAuthenticate(ctx, c, ext)
	var se *apdu.StatusError
	if errors.As(err, &se) {
		card.Verification = verdict.NotGenuine(fmt.Sprintf("the chip rejected the SAM's cryptogram (%04X): it does not hold a key issued for its UID (clone?)", se.SW))
		return card, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ktpel: external authenticate: %w", err)
	}
	ch, err := finish(ctx, resp)
	if errors.Is(err, sm.ErrAuthFailed) || errors.Is(err, sm.ErrAuthFormat) {
		card.Verification = verdict.NotGenuine("the chip's answer does not verify with the SAM: the chip is not genuine")
		return card, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ktpel: SAM: %w", err)
	}
	card.Verification.CardAuthentic = verdict.Check{OK: true}

	sc := apdu.NewClient(sm.Transmitter(t, ch), apdu.Limits{MaxResponseData: SMMaxResponseData})
	// The security object first: its signature is verified in the
	// background while the other EFs are read.
	sodRaw, err := sc.ReadEF(ctx, FIDSOD)
	if err != nil {
		return nil, fmt.Errorf("ktpel: read EF %04X: %w", FIDSOD, err)
	}
	sig := verdict.StartSignatureCheck(sodRaw, opts.Roots, opts.Now)
	groups := map[int][]byte{}
	read := func(dg int) ([]byte, error) {
		fid, _ := GroupFID(dg)
		b, err := sc.ReadEF(ctx, fid)
		if err != nil {
			return nil, fmt.Errorf("ktpel: read EF %04X: %w", fid, err)
		}
		groups[dg] = b
		return b, nil
	}
	b, err := read(DGBiodata)
	if err != nil {
		return nil, err
	}
	if card.Biodata, err = ParseBiodata(b); err != nil {
		return nil, err
	}
	for _, dg := range []int{DGFinger1, DGFinger2} {
		b, err := read(dg)
		if err != nil {
			return nil, err
		}
		f, err := ParseFingerprint(b)
		if err != nil {
			return nil, err
		}
		card.Fingerprints = append(card.Fingerprints, f)
	}
	if opts.Photo {
		if card.Photo, err = read(DGPhoto); err != nil {
			return nil, err
		}
		if card.Signature, err = read(DGSignature); err != nil {
			return nil, err
		}
	}
	card.Verification.DataAuthentic, card.Verification.FailedGroups = sig.Finish(groups)
	return card, nil
}
