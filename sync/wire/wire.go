// Package wire is the JSON the uploader and the back office exchange
// (docs/backoffice-api.yaml). Both sides import it, so they cannot drift.
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Paths of the back-office API.
const (
	PathRecords  = "/v1/records"
	PathVerify   = "/v1/verify/"    // + code
	PathTerminal = "/v1/terminals/" // + terminal id
	PathReport   = "/v1/reports/semester"
	PathAlarms   = "/v1/alarms" // staff listener; + /{id}, /{id}/ack
	PathHealth   = "/v1/health"
	// PathRenewalOffer: a terminal asks whether a card data renewal is
	// staged for a card (docs/renewal.md); body RenewalQuery, answer the
	// offer (internal/renewal's JSON) or 204 when none is staged.
	PathRenewalOffer = "/v1/renewal/offer"
)

// RenewalQuery is the body of POST /v1/renewal/offer: the card as the
// terminal read it, after the holder's fingerprint matched: the NIP, the
// card's public security object and its identity group (DG1), which
// binds the two.
type RenewalQuery struct {
	CardSerial string `json:"card_serial"` // 16 hex digits
	NIP        string `json:"nip"`         // 18 digits, from DG1
	SOD        []byte `json:"sod"`         // the card's EF.SOD as read (base64 in JSON)
	// DG1 is the card's identity group as read under secure messaging
	// (base64): the back office answers only when EF.SOD covers it and
	// its NIP is NIP, so a terminal learns a holder's staged data only
	// from the holder's own card (docs/renewal.md).
	DG1      []byte `json:"dg1"`
	Sequence uint32 `json:"sequence"` // the card's last committed update sequence (0: never renewed)
}

// MaxRenewalQueryBytes bounds a RenewalQuery body.
const MaxRenewalQueryBytes = 64 << 10

// Problem codes of the renewal offer.
const (
	ProblemBadSOD             = "bad-sod"             // 422: the card's EF.SOD is malformed or does not chain to the issuer roots
	ProblemRenewalUnavailable = "renewal-unavailable" // 503: this back office has no issuer signer
)

// Limits the back office enforces on one batch.
const (
	MaxBatchRecords = 1000
	MaxBatchBytes   = 8 << 20 // after gzip decompression
)

// Batch is the body of POST /v1/records (optionally gzip-compressed with
// Content-Encoding: gzip).
type Batch struct {
	// Certificates are the SAM terminal certificates (DER) of the SAMs
	// that signed the records, so a back office that has not seen a SAM
	// yet can check it against its CA. Usually one.
	Certificates [][]byte `json:"certificates,omitempty"`
	// Records are canonical record encodings (docs/records.md), oldest
	// first.
	Records [][]byte `json:"records"`
	// SentAt is the terminal's clock when it sent the batch; the back
	// office compares it with its own.
	SentAt time.Time `json:"sent_at"`
	// Agent is the sending agent's version (optional; the staff
	// terminals page shows it).
	Agent string `json:"agent,omitempty"`
	// Backlog is how many records the terminal still holds unsent after
	// this batch (optional: nil when the sender does not say).
	Backlog *int64 `json:"backlog,omitempty"`
	// OldestQueued is when the oldest record not yet acknowledged (this
	// batch's included) was queued (optional).
	OldestQueued time.Time `json:"oldest_queued,omitzero"`
}

// Status of one record in a batch.
type Status string

// Statuses. A duplicate counts as accepted (the back office has it).
// A rejected record is not taken, ever (the terminal moves it to its
// dead letters with the reason); retry means not taken this time.
const (
	Accepted  Status = "accepted"
	Duplicate Status = "duplicate"
	Rejected  Status = "rejected"
	Retry     Status = "retry"
)

// Reasons for a rejection, and flags on a taken record.
const (
	ReasonMalformed      = "malformed"       // not a valid record encoding
	ReasonUnknownSAM     = "unknown-sam"     // no certificate chaining to the CA for this SAM
	ReasonSignature      = "bad-signature"   // the signature does not verify
	ReasonSoftwareSigner = "software-signer" // signed in software and this back office refuses that
	ReasonTerminal       = "terminal-mismatch"
	ReasonConflict       = "counter-conflict"        // same SAM and counter as a different record: an alarm
	ReasonNonCanonical   = "non-canonical-signature" // a version-2 record whose signature is not in low-s form (a malleated twin)
	// The SAM certificate was not valid when the record was signed (its
	// time outside the certificate's validity, beyond the back office's
	// clock allowance), or was revoked at or before that time.
	ReasonSAMExpired     = "sam-certificate-expired"
	ReasonSAMNotYetValid = "sam-certificate-not-yet-valid"
	ReasonRevoked        = "revoked-sam"

	FlagGapBefore   = "gap-before"   // counters are missing before this record
	FlagFillsGap    = "fills-gap"    // this record fills a counter that was missing
	FlagChainBreak  = "chain-break"  // its previous record is unknown (yet)
	FlagChainStart  = "chain-start"  // a terminal's first record, or a restarted chain
	FlagClockSkewed = "clock-skewed" // the record's time is far from the back office's receipt time
)

// Result is the back office's answer for one record.
type Result struct {
	Status Status   `json:"status"`
	Reason string   `json:"reason,omitempty"`
	Code   string   `json:"code,omitempty"`
	Flags  []string `json:"flags,omitempty"`
}

// BatchResult is the body of a 200 answer to POST /v1/records: one result
// per record, in order.
type BatchResult struct {
	Results    []Result  `json:"results"`
	ServerTime time.Time `json:"server_time"`
	// ClockSkewMillis is the back office's time minus the batch's sent_at
	// (network delay included); ClockSkewed says it is beyond tolerance.
	ClockSkewMillis int64 `json:"clock_skew_ms"`
	ClockSkewed     bool  `json:"clock_skewed"`
}

// Problem is the body of an error answer.
type Problem struct {
	Error  string `json:"error"`
	Detail string `json:"detail,omitempty"`
}

// ErrResponse: a reply that does not fit the protocol.
var ErrResponse = errors.New("wire: bad response from the back office")

// DecodeBatchResult reads a batch answer and checks it covers the batch.
func DecodeBatchResult(b []byte, n int) (*BatchResult, error) {
	var br BatchResult
	if err := json.Unmarshal(b, &br); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrResponse, err)
	}
	if len(br.Results) != n {
		return nil, fmt.Errorf("%w: %d results for %d records", ErrResponse, len(br.Results), n)
	}
	for i, r := range br.Results {
		switch r.Status {
		case Accepted, Duplicate, Retry:
		case Rejected:
			if r.Reason == "" {
				return nil, fmt.Errorf("%w: record %d rejected without a reason", ErrResponse, i)
			}
		default:
			return nil, fmt.Errorf("%w: record %d has status %q", ErrResponse, i, r.Status)
		}
	}
	return &br, nil
}

// Verdict is the answer to GET /v1/verify/{code}.
type Verdict struct {
	Valid      bool      `json:"valid"`
	Code       string    `json:"code"`
	Reason     string    `json:"reason,omitempty"` // when not valid: "length", "symbol", "check-symbol" (a typo), "unknown"
	Service    string    `json:"service,omitempty"`
	Time       time.Time `json:"time,omitzero"`
	Clock      string    `json:"clock,omitempty"`
	TerminalID string    `json:"terminal_id,omitempty"`
	SiteID     string    `json:"site_id,omitempty"`
	CardType   string    `json:"card_type,omitempty"`
	Checks     Checks    `json:"checks,omitzero"`
	Signer     string    `json:"signer,omitempty"`
	SAMSerial  string    `json:"sam_serial,omitempty"`
	Counter    uint32    `json:"counter,omitempty"`
	ReceivedAt time.Time `json:"received_at,omitzero"`
	Flags      []string  `json:"flags,omitempty"`
}

// Checks are the record's check outcomes ("pass", "fail: reason",
// "skipped: reason").
type Checks struct {
	CardAuth    string `json:"card_auth,omitempty"`
	IssuerSig   string `json:"issuer_signature,omitempty"`
	Identifiers string `json:"identifiers,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// TerminalStatus is the answer to GET /v1/terminals/{id}.
type TerminalStatus struct {
	TerminalID      string    `json:"terminal_id"`
	SiteID          string    `json:"site_id"`
	Records         int64     `json:"records"`
	LastSeen        time.Time `json:"last_seen"`
	ClockSkewMillis int64     `json:"clock_skew_ms"`
	SAMs            []SAMInfo `json:"sams"`
	ChainBreaks     int64     `json:"chain_breaks"`
	Alarms          []Alarm   `json:"alarms,omitempty"`
}

// SAMInfo is one SAM's counter state.
type SAMInfo struct {
	Serial      string  `json:"serial"`
	LastCounter uint32  `json:"last_counter"`
	Gaps        []Range `json:"gaps,omitempty"` // missing counters, until filled
}

// Range is an inclusive range of counters.
type Range struct {
	From uint32 `json:"from"`
	To   uint32 `json:"to"`
}

// Alarm is something a back-office operator must look at. ID and State
// are the back office's (zero in an alarm on its way into a store); an
// alarm is open until a person acknowledges it, and stays acknowledged:
// the condition repeating raises nothing new (one alarm per key).
type Alarm struct {
	ID         int64      `json:"id,omitempty"`
	State      AlarmState `json:"state,omitempty"`
	Kind       string     `json:"kind"`
	TerminalID string     `json:"terminal_id,omitempty"`
	SAMSerial  string     `json:"sam_serial,omitempty"`
	Counter    uint32     `json:"counter,omitempty"`
	Detail     string     `json:"detail,omitempty"`
	At         time.Time  `json:"at"`
	// Acknowledged is the last acknowledgement, nil while open.
	Acknowledged *AlarmEvent `json:"acknowledged,omitempty"`
	// History is every event, oldest first (raised, acknowledged): in
	// GET /v1/alarms/{id} only.
	History []AlarmEvent `json:"history,omitempty"`
}

// AlarmState is an alarm's state.
type AlarmState string

// The alarm states.
const (
	AlarmOpen         AlarmState = "open"
	AlarmAcknowledged AlarmState = "acknowledged"
)

// AlarmEvent is one event in an alarm's history.
type AlarmEvent struct {
	Type AlarmEventType `json:"type"`
	At   time.Time      `json:"at"`
	// By is who acted: the signed-in staff account (empty for "raised":
	// the back office).
	By      string `json:"by,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// AlarmEventType is the kind of an AlarmEvent.
type AlarmEventType string

// The alarm event types.
const (
	AlarmEventRaised       AlarmEventType = "raised"
	AlarmEventAcknowledged AlarmEventType = "acknowledged"
)

// AlarmAck is the body of POST /v1/alarms/{id}/ack; who acknowledges is
// the signed-in account, not the body's say.
type AlarmAck struct {
	Comment string `json:"comment"`
}
