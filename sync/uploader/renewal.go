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

	"kpe-agent/internal/renewal"
	"kpe-agent/sync/wire"
)

// The renewal offer request (docs/renewal.md): after a KPE holder's
// fingerprint matched, the agent asks the back office, over the same mTLS
// client as the records, whether a card data renewal is staged for the
// card. The answer is an offer the agent verifies (renewal.Verify) before
// it writes anything, or the reason there is none. A back office that
// cannot be reached is no error: the holder's authentication stands, the
// screen says quietly that no update can be checked now.

// Reasons an offer request gives no offer.
const (
	NoOfferNone        = "none"        // 204: nothing staged for this holder
	NoOfferUnavailable = "unavailable" // 503 renewal-unavailable (or 404: an older back office): the back office issues no renewals
	NoOfferOffline     = "offline"     // the back office was not reached, or answered a server error
	NoOfferTimeout     = "timeout"     // no answer within the offer timeout
)

// ErrBadSOD: the back office refused the card's EF.SOD (422 bad-sod): it
// does not chain to the issuer roots, is malformed, or does not cover the
// card's DG1 with the query's NIP. The agent reports it; the card cannot
// be renewed or topped up.
var ErrBadSOD = errors.New("uploader: the back office refused the card's security object")

// OfferAnswer is the back office's answer to an offer request: the offer,
// or (Offer nil) the reason there is none (NoOffer*).
type OfferAnswer struct {
	Offer  *renewal.Offer
	Reason string
}

// RenewalOffer asks the back office for the renewal staged for the card
// q describes, waiting at most timeout (default 10 s). An error means the
// back office answered something the agent must report: ErrBadSOD,
// ErrRefused (401, 403, another 4xx), or an offer that is not one
// (renewal.ErrFormat, too large); everything else is an answer without an
// offer and its reason.
func (u *Uploader) RenewalOffer(ctx context.Context, q wire.RenewalQuery, timeout time.Duration) (OfferAnswer, error) {
	status, raw, reason, err := u.offerCall(ctx, wire.PathRenewalOffer, q, timeout, renewal.MaxOfferBytes, "renewal", wire.ProblemRenewalUnavailable)
	if err != nil || reason != "" {
		return OfferAnswer{Reason: reason}, err
	}
	switch {
	case status == http.StatusOK:
		if len(raw) > renewal.MaxOfferBytes {
			return OfferAnswer{}, fmt.Errorf("%w: offer larger than %d bytes", renewal.ErrFormat, renewal.MaxOfferBytes)
		}
		var o renewal.Offer
		if err := o.UnmarshalJSON(raw); err != nil {
			return OfferAnswer{}, err
		}
		return OfferAnswer{Offer: &o}, nil
	case status == http.StatusNoContent:
		return OfferAnswer{Reason: NoOfferNone}, nil
	case status == http.StatusUnprocessableEntity && problemCode(raw) == wire.ProblemBadSOD:
		return OfferAnswer{}, fmt.Errorf("%w: %s", ErrBadSOD, problemText(raw))
	}
	return OfferAnswer{}, refused(status, raw)
}

// offerCall posts q as JSON to the back office's path (a renewal or
// top-up request, what names it in the log), waiting at most timeout
// (default 10 s), and reads at most limit+1 bytes of the answer. A back
// office not reached or not answering in time, answering 5xx or 429, or
// saying it offers none of these (503 with the problem code unavailable,
// or 404 from a back office that predates the path) is a reason
// (NoOfferOffline, NoOfferTimeout, NoOfferUnavailable) and no status; an
// error is the caller giving up, or q that does not marshal.
func (u *Uploader) offerCall(ctx context.Context, path string, q any, timeout time.Duration, limit int, what, unavailable string) (status int, raw []byte, reason string, err error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	body, err := json.Marshal(q)
	if err != nil {
		return 0, nil, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(u.cfg.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := u.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, nil, NoOfferTimeout, nil
		}
		if ctx.Err() != nil {
			return 0, nil, "", ctx.Err() // the caller gave up
		}
		u.cfg.Log.Info(what+": back office not reached", "err", err)
		return 0, nil, NoOfferOffline, nil
	}
	defer resp.Body.Close()
	raw, err = io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, nil, NoOfferTimeout, nil
		}
		return 0, nil, NoOfferOffline, nil
	}
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable && problemCode(raw) == unavailable,
		resp.StatusCode == http.StatusNotFound: // a back office from before the request existed
		return 0, nil, NoOfferUnavailable, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		u.cfg.Log.Info(what+": the back office could not answer", "status", resp.StatusCode)
		return 0, nil, NoOfferOffline, nil
	}
	return resp.StatusCode, raw, "", nil
}

// refused is ErrRefused for an answer no case of the caller took.
func refused(status int, raw []byte) error {
	return fmt.Errorf("%w: %d %s: %s", ErrRefused, status, http.StatusText(status), problemText(raw))
}

func problemCode(raw []byte) string {
	var p wire.Problem
	if json.Unmarshal(raw, &p) != nil {
		return ""
	}
	return p.Error
}
