package uploader

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
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
// back office answered something the agent must report: ErrRefused (401,
// 403, another 4xx) or an answer that is not one (topup.ErrFormat, too
// large); everything else is an answer and, without authorisations, its
// reason.
func (u *Uploader) TopUpOffer(ctx context.Context, q wire.TopUpQuery, timeout time.Duration) (TopUpAnswer, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	body, err := json.Marshal(q)
	if err != nil {
		return TopUpAnswer{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(u.cfg.URL, "/")+wire.PathTopUpOffer, bytes.NewReader(body))
	if err != nil {
		return TopUpAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := u.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return TopUpAnswer{Reason: NoOfferTimeout}, nil
		}
		if ctx.Err() != nil {
			return TopUpAnswer{}, ctx.Err() // the caller gave up
		}
		u.cfg.Log.Info("topup: back office not reached", "err", err)
		return TopUpAnswer{Reason: NoOfferOffline}, nil
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, wire.MaxTopUpOffersBytes+1))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return TopUpAnswer{Reason: NoOfferTimeout}, nil
		}
		return TopUpAnswer{Reason: NoOfferOffline}, nil
	}
	switch {
	case resp.StatusCode == http.StatusOK:
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
	case resp.StatusCode == http.StatusServiceUnavailable && problemCode(raw) == wire.ProblemTopUpUnavailable,
		resp.StatusCode == http.StatusNotFound: // a back office from before top-ups
		return TopUpAnswer{Reason: NoOfferUnavailable}, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		u.cfg.Log.Info("topup: the back office could not answer", "status", resp.StatusCode)
		return TopUpAnswer{Reason: NoOfferOffline}, nil
	}
	return TopUpAnswer{}, fmt.Errorf("%w: %s: %s", ErrRefused, resp.Status, problemText(raw))
}
