package kpe

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"

	"kpe-agent/apdu"
	"kpe-agent/apdu/sm"
	"kpe-agent/apdu/verdict"
)

// Authenticator is the SAM's part of card authentication: it answers the
// card's challenge for a card serial, and checks the card's answer.
type Authenticator interface {
	BeginCardAuth(ctx context.Context, serial [8]byte, rndIC []byte) (ext []byte, finish func(ctx context.Context, resp []byte) (*sm.Session, error), err error)
}

// SoftwareSAM keeps the master key in memory. It exists for unit tests and
// hardware-free demos only; production uses the SAM, which never lets the
// master key out.
type SoftwareSAM struct {
	Master []byte
	// UpdateMaster is the card update master key (BeginUpdateAuth); nil:
	// none, renewal answers ErrNoUpdateKey.
	UpdateMaster []byte
	Rand         io.Reader // default crypto/rand; benchmarks replay with a fixed one
}

// BeginCardAuth implements Authenticator.
func (s SoftwareSAM) BeginCardAuth(_ context.Context, serial [8]byte, rndIC []byte) ([]byte, func(context.Context, []byte) (*sm.Session, error), error) {
	keys, err := DeriveCardKeys(s.Master, serial)
	if err != nil {
		return nil, nil, err
	}
	return s.begin(keys, rndIC)
}

// begin answers the card's challenge with keys and returns the check of
// the card's answer.
func (s SoftwareSAM) begin(keys CardKeys, rndIC []byte) ([]byte, func(context.Context, []byte) (*sm.Session, error), error) {
	rng := s.Rand
	if rng == nil {
		rng = rand.Reader
	}
	a, ext, err := StartAuth(keys, rndIC, rng)
	if err != nil {
		return nil, nil, err
	}
	return ext, func(_ context.Context, resp []byte) (*sm.Session, error) { return a.Finish(resp) }, nil
}

// ReadOptions tune Read.
type ReadOptions struct {
	AID   []byte         // default DefaultAID
	Photo bool           // read DG5 (44 KB of the card's memory; off unless asked)
	Roots *x509.CertPool // trusted BKN issuer CAs
	Now   time.Time      // time for certificate checks (default time.Now)
}

// Check and Verification are the shared verdict types.
type (
	Check        = verdict.Check
	Verification = verdict.Verification
)

// Card is what Read returns. It holds personal data: memory only.
type Card struct {
	Info         CardInfo
	Identity     Identity
	Employment   Employment
	Family       Family
	Benefits     Benefits
	Photo        []byte
	BIT          []byte
	Verification Verification
	// SOD is EF.SOD exactly as read.
	SOD []byte
	// Groups are the raw contents of the data groups read (DG1..DG4, DG6,
	// DG5 when read; none when the card is not authentic).
	Groups map[int][]byte
	// Update is the card's renewal status, read in plain before
	// authentication (Supported false on a card without it).
	Update UpdateStatus
}

// Read reads and verifies a KPE or KPE Tambahan. A card that fails
// authentication is returned with CardAuthentic false and no protected data
// (it cannot be read without SM); transport and protocol failures are
// errors. The caller owns the transaction.
func Read(ctx context.Context, t apdu.Transmitter, sam Authenticator, opts ReadOptions) (*Card, error) {
	c, _, err := ReadSession(ctx, t, sam, opts)
	return c, err
}

// ReadSession is Read that also returns the card's secure-messaging
// channel (nil when the card is not authentic), for commands after the
// read such as the biometric VERIFY. The channel is valid until the card
// session ends or a command fails.
func ReadSession(ctx context.Context, t apdu.Transmitter, sam Authenticator, opts ReadOptions) (*Card, apdu.Transmitter, error) {
	card, sess, err := read(ctx, t, sam, opts)
	if err != nil || sess == nil {
		return card, nil, err
	}
	return card, sm.Transmitter(t, sess), nil
}

func read(ctx context.Context, t apdu.Transmitter, sam Authenticator, opts ReadOptions) (*Card, *sm.Session, error) {
	if opts.AID == nil {
		opts.AID = DefaultAID
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	c := apdu.NewClient(t, apdu.Limits{})
	if err := selectApplication(ctx, c, opts.AID); err != nil {
		return nil, nil, err
	}
	raw, err := c.ReadEF(ctx, FIDCardInfo)
	if err != nil {
		return nil, nil, fmt.Errorf("kpe: read card info: %w", err)
	}
	card := &Card{}
	if card.Info, err = ParseCardInfo(raw); err != nil {
		return nil, nil, err
	}

	// EF.SOD is plain: read it first and verify the issuer signature in the
	// background while the SAM and the card authenticate and the groups
	// are read (the public-key work then costs no wall time).
	sodRaw, err := c.ReadEF(ctx, FIDSOD)
	if err != nil {
		return nil, nil, fmt.Errorf("kpe: read EF.SOD: %w", err)
	}
	card.SOD = sodRaw
	if card.Update, err = readUpdateStatus(ctx, c); err != nil {
		return nil, nil, err
	}
	sig := verdict.StartSignatureCheck(sodRaw, opts.Roots, opts.Now)

	sess, err := authenticate(ctx, c, sam, card.Info.Serial)
	var authErr *authFailure
	if errors.As(err, &authErr) {
		card.Verification = verdict.NotGenuine(authErr.reason)
		return card, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	card.Verification.CardAuthentic = Check{OK: true}

	sc := apdu.NewClient(sm.Transmitter(t, sess), apdu.Limits{MaxResponseData: SMMaxResponseData})
	groups := map[int][]byte{}
	read := func(dg int) ([]byte, error) {
		fid, _ := GroupFID(dg)
		b, err := sc.ReadEF(ctx, fid)
		if errors.Is(err, apdu.ErrFileNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("kpe: read DG%d (EF %04X): %w", dg, fid, err)
		}
		groups[dg] = b
		return b, nil
	}
	if b, err := read(DGIdentity); err != nil {
		return nil, nil, err
	} else if b != nil {
		if card.Identity, err = ParseIdentity(b); err != nil {
			return nil, nil, err
		}
	}
	if b, err := read(DGEmployment); err != nil {
		return nil, nil, err
	} else if b != nil {
		if card.Employment, err = ParseEmployment(b); err != nil {
			return nil, nil, err
		}
	}
	if b, err := read(DGFamily); err != nil {
		return nil, nil, err
	} else if b != nil {
		if card.Family, err = ParseFamily(b); err != nil {
			return nil, nil, err
		}
	}
	if b, err := read(DGBenefits); err != nil {
		return nil, nil, err
	} else if b != nil {
		if card.Benefits, err = ParseBenefits(b); err != nil {
			return nil, nil, err
		}
	}
	if card.BIT, err = read(DGBIT); err != nil {
		return nil, nil, err
	}
	if opts.Photo {
		if card.Photo, err = read(DGPhoto); err != nil {
			return nil, nil, err
		}
	}
	card.Groups = groups
	card.Verification.DataAuthentic, card.Verification.FailedGroups = sig.Finish(groups)
	return card, sess, nil
}

type authFailure struct{ reason string }

func (a *authFailure) Error() string { return a.reason }

func authenticate(ctx context.Context, c *apdu.Client, sam Authenticator, serial [8]byte) (*sm.Session, error) {
	rndIC, err := c.GetChallenge(ctx, RndLen)
	if err != nil {
		return nil, fmt.Errorf("kpe: get challenge: %w", err)
	}
	ext, finish, err := sam.BeginCardAuth(ctx, serial, rndIC)
	if err != nil {
		return nil, fmt.Errorf("kpe: SAM: %w", err)
	}
	resp, err := externalAuthenticate(ctx, c, ext)
	var se *apdu.StatusError
	if errors.As(err, &se) {
		return nil, &authFailure{reason: fmt.Sprintf("the card rejected the SAM's cryptogram (%04X): it does not hold a key issued for its serial (clone?)", se.SW)}
	}
	if err != nil {
		return nil, fmt.Errorf("kpe: external authenticate: %w", err)
	}
	sess, err := finish(ctx, resp)
	if errors.Is(err, ErrAuthFailed) || errors.Is(err, ErrAuthFormat) {
		return nil, &authFailure{reason: "the card's answer does not verify with the SAM: the card is not genuine"}
	}
	return sess, err
}
