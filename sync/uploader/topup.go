package uploader

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"kpe-agent/internal/strictjson"
	"kpe-agent/internal/topup"
	"kpe-agent/sync/wire"
)

// The top-up request (docs/ewallet.md, part 3): with the holder's card
// present and the fingerprint matched, the agent asks the back office,
// over the same mTLS client as the records, for the authorisations of the
// top-ups staged for the holder. The agent verifies each (topup.Verify)
// before its SAM computes a CREDIT MAC. A back office that cannot be
// reached is no error: the balance stands, the screen says quietly that
// no top-up can be checked now. The reasons are the renewal offer's.

// TopUpAnswer is the back office's answer to a top-up request: the
// authorisations (at most one today), or (none) the reason (NoOffer*:
// none when the back office answered an empty list).
type TopUpAnswer struct {
	Authorisations []topup.Authorisation
	Reason         string
}

// TopUpOffer asks the back office for the top-ups staged for the card q
// describes, waiting at most timeout (default 10 s). An error means the
// back office answered something the agent must report: ErrBadSOD (the
// card's EF.SOD and DG1 in q do not show the NIP is the card's),
// ErrRefused (401, 403, another 4xx) or an answer that is not one
// (topup.ErrFormat, too large); everything else is an answer and, without authorisations, its
// reason.
func (u *Uploader) TopUpOffer(ctx context.Context, q wire.TopUpQuery, timeout time.Duration) (TopUpAnswer, error) {
	status, raw, reason, err := u.offerCall(ctx, wire.PathTopUpOffer, q, timeout, wire.MaxTopUpOffersBytes, "topup", wire.ProblemTopUpUnavailable)
	if err != nil || reason != "" {
		return TopUpAnswer{Reason: reason}, err
	}
	switch {
	case status == http.StatusOK:
		if len(raw) > wire.MaxTopUpOffersBytes {
			return TopUpAnswer{}, fmt.Errorf("%w: answer larger than %d bytes", topup.ErrFormat, wire.MaxTopUpOffersBytes)
		}
		var o wire.TopUpOffers
		if err := strictjson.Decode(raw, &o); err != nil {
			if errors.Is(err, topup.ErrFormat) {
				return TopUpAnswer{}, err
			}
			return TopUpAnswer{}, fmt.Errorf("%w: %w", topup.ErrFormat, err)
		}
		if o.Authorisations == nil {
			return TopUpAnswer{}, fmt.Errorf("%w: no authorisations list", topup.ErrFormat)
		}
		if len(o.Authorisations) == 0 {
			return TopUpAnswer{Reason: NoOfferNone}, nil
		}
		return TopUpAnswer{Authorisations: o.Authorisations}, nil
	case status == http.StatusUnprocessableEntity && problemCode(raw) == wire.ProblemBadSOD:
		return TopUpAnswer{}, fmt.Errorf("%w: %s", ErrBadSOD, problemText(raw))
	}
	return TopUpAnswer{}, refused(status, raw)
}
