package wire

import "kpe-agent/internal/topup"

// PathTopUpOffer: a terminal asks, for a card present and its holder's
// fingerprint matched, whether a top-up is staged for the holder
// (docs/ewallet.md, part 3); body TopUpQuery, answer 200 TopUpOffers
// (possibly with no authorisation), or 503 topup-unavailable when the back
// office issues no top-ups.
const PathTopUpOffer = "/v1/topup/offer"

// TopUpQuery is the body of POST /v1/topup/offer: the card's purse as the
// terminal read it (READ PURSE), and the card's EF.SOD and DG1 as read,
// which show the back office the NIP is the card's: it answers only when
// the EF.SOD verifies against the issuer roots and covers DG1, whose NIP
// is NIP (as RenewalQuery; docs/ewallet.md). The serial is the
// terminal's word: neither EF.SOD nor DG1 carries it.
type TopUpQuery struct {
	Serial     string `json:"serial"`      // the card serial, 16 hex digits
	NIP        string `json:"nip"`         // 18 digits, from the card's DG1
	PTC        uint32 `json:"ptc"`         // the card's purse transaction counter
	Balance    uint32 `json:"balance"`     // rupiah
	MaxBalance uint32 `json:"max_balance"` // the card's own maximum balance, rupiah
	SOD        []byte `json:"sod"`         // the card's EF.SOD as read (base64 in JSON)
	DG1        []byte `json:"dg1"`         // the card's identity group as read under secure messaging (base64)
}

// MaxTopUpQueryBytes bounds a TopUpQuery body: EF.SOD and DG1 in base64
// take it, as MaxRenewalQueryBytes.
const MaxTopUpQueryBytes = MaxRenewalQueryBytes

// TopUpOffers is the 200 answer: at most one authorisation today (the
// card's PTC moves with each credit, so the terminal asks again after it
// applied one), each bound to the query's card serial and PTC.
type TopUpOffers struct {
	Authorisations []topup.Authorisation `json:"authorisations"`
}

// MaxTopUpOffersBytes bounds a TopUpOffers body a terminal reads.
const MaxTopUpOffersBytes = 8 * topup.MaxAuthorisationBytes

// ProblemTopUpUnavailable (503): this back office issues no top-ups (no
// issuer signer, or a store that keeps none).
const ProblemTopUpUnavailable = "topup-unavailable"
