package api

import (
	"context"
	"net/http"

	"kpe-agent/internal/i18n"
)

// The e-wallet payment's routes (docs/ewallet.md, docs/local-api.md): a
// payment from the card in a reader (POST PathPay) and the outcome of a
// payment by its idempotency key (POST PathPayStatus). Scope counter may
// call them (scope.go); the kiosk may not. Every answer is no-store.

// Payment statuses (PayResult.Status).
const (
	PayDone    = "done"     // the card took it: Code is the payment record's receipt code
	PayNotDone = "not-done" // the card did not take it: Reason says why; nothing was debited
	PayPending = "pending"  // the card left while it was debited: insert the card again
)

// PayPaying is the event state while the DEBIT runs.
const PayPaying = "paying"

// PayRequest is a payment at the counter: amount rupiah from the card in
// the reader to this terminal's merchant.
type PayRequest struct {
	Reader   string `json:"reader,omitempty"`
	Operator string `json:"operator"` // the clerk's ID, recorded with the payment
	Amount   int64  `json:"amount"`   // whole rupiah, 1 to ewallet.max_payment
	// MerchantRef is the merchant's own reference (an invoice number),
	// recorded with the payment: at most 64 bytes, no control characters.
	MerchantRef string `json:"merchant_ref,omitempty"`
	// IdempotencyKey names the payment: 1 to 64 printable ASCII
	// characters, made by the caller once per payment and sent again
	// unchanged on every retry. A key already seen is answered from the
	// request book: never a second debit.
	IdempotencyKey string `json:"idempotency_key"`
	// WaitSeconds: how long to wait for a card (as AuthRequest's).
	WaitSeconds int `json:"wait_seconds,omitempty"`
	// ConfirmLastTry allows the card's last fingerprint try (a payment
	// above ewallet.fingerprint_above).
	ConfirmLastTry bool   `json:"confirm_last_try,omitempty"`
	Lang           string `json:"lang,omitempty"`
}

// PayStatusRequest asks for the outcome of the payment of
// IdempotencyKey; a pending one is resolved first when its card is in the
// reader.
type PayStatusRequest struct {
	Reader         string `json:"reader,omitempty"`
	IdempotencyKey string `json:"idempotency_key"`
}

// PayResult is a payment's outcome.
type PayResult struct {
	Status         string `json:"status"` // PayDone, PayNotDone, PayPending
	IdempotencyKey string `json:"idempotency_key"`
	Amount         int64  `json:"amount"`
	// Code and RecordID are the payment record's (done); Balance is the
	// card's balance after the payment (done).
	Code     string `json:"code,omitempty"`
	RecordID string `json:"record_id,omitempty"`
	Balance  *int64 `json:"balance,omitempty"`
	// Reason is a code saying why not done, or why pending; Message words
	// it for the clerk.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// PayBackend is the Backend's payment part; a Backend without it answers
// the routes 404.
type PayBackend interface {
	Pay(ctx context.Context, req PayRequest, loc Locale) (PayResult, error)
	// PayStatus answers from the request book; a pending payment is
	// resolved first when its card is in reader.
	PayStatus(ctx context.Context, reader, key string, loc Locale) (PayResult, error)
}

func (s *server) routePay(mux *http.ServeMux) {
	mux.HandleFunc("POST "+PathPay, s.auth(s.pay))
	mux.HandleFunc("POST "+PathPayStatus, s.auth(s.withLocale(s.payStatus)))
}

// payBackend is the Backend's payment part, or a 404 answered.
func (s *server) payBackend(w http.ResponseWriter, loc Locale) PayBackend {
	pb, ok := s.b.(PayBackend)
	if !ok {
		s.refuseIn(w, loc, http.StatusNotFound, CodeNotFound, "no e-wallet payments on this agent")
		return nil
	}
	return pb
}

func (s *server) pay(w http.ResponseWriter, r *http.Request) {
	var req PayRequest
	if err := decode(r, &req); err != nil {
		s.refuseBody(w, r, err)
		return
	}
	loc, err := s.locale(r, req.Lang, "")
	loc = loc.withAudience(i18n.Clerk)
	if err != nil {
		s.refuseIn(w, loc, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	pb := s.payBackend(w, loc)
	if pb == nil {
		return
	}
	if isKiosk(r) || loc.Audience == i18n.Holder {
		// a payment is taken by the clerk at the counter, never at a kiosk
		s.refuseIn(w, loc, http.StatusForbidden, CodeForbiddenScope, "payments are taken at the counter")
		return
	}
	res, err := pb.Pay(r.Context(), req, loc)
	if err != nil {
		s.fail(w, err, loc)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *server) payStatus(w http.ResponseWriter, r *http.Request, loc Locale) {
	var req PayStatusRequest
	if err := decode(r, &req); err != nil {
		s.refuseBody(w, r, err)
		return
	}
	pb := s.payBackend(w, loc)
	if pb == nil {
		return
	}
	res, err := pb.PayStatus(r.Context(), req.Reader, req.IdempotencyKey, loc)
	if err != nil {
		s.fail(w, err, loc)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
