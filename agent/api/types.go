// Package api is the agent's local API for frontline applications (the
// hospital information system, the Taspen counter application, the kiosk)
// and for kpectl: HTTP JSON plus a Server-Sent Events stream on loopback,
// guarded by a bearer token and strict Origin and Host checks
// (docs/local-api.md; the OpenAPI document is openapi.yaml in this
// package, served at PathOpenAPI).
//
// This file is the wire contract: paths and JSON types shared by the
// server and the Go client.
package api

import (
	"time"

	"kpe-agent/internal/i18n"
)

// Paths of the local API. Every path but PathHealth, PathOpenAPI,
// PathKiosk and PathLoket needs a credential: the bearer token
// (Authorization: Bearer <token>, scope full), or on the few paths
// scope.go lets them call, the kiosk page's credential (scope kiosk) or
// the counter screen's (scope counter). PathHealth without one answers
// only {"status": ...}.
const (
	PathHealth  = "/v1/health"          // GET  Health
	PathReaders = "/v1/readers"         // GET  []Reader
	PathCard    = "/v1/card"            // GET  ?reader=NAME → cards.View of the card in the reader (privacy rules apply)
	PathPrefill = "/v1/card/askes-form" // GET  ?reader=NAME → Prefill (KPE and KPE Tambahan only)
	PathAuth    = "/v1/auth"            // POST AuthRequest → AuthResult, or ErrorBody (409 while the reader is busy)
	PathCancel  = "/v1/cancel"          // POST CancelRequest ({"reader": NAME} or {"all": true}) → 204, 404 when nothing runs
	PathPrompt  = "/v1/prompt"          // POST PromptRequest → 204, 404 when no such prompt waits
	PathQueue   = "/v1/queue"           // GET  QueueStatus
	PathSync    = "/v1/sync"            // POST → SyncResult (send the outbox now)
	PathEvents  = "/v1/events"          // GET  text/event-stream of Event (event: <type>, id: <seq>, data: JSON)
	PathMetrics = "/metrics"            // GET  Prometheus text format
	PathOpenAPI = "/v1/openapi.yaml"    // GET  the OpenAPI document

	// The self-service kiosk (kiosk.enabled): its page, which hands out
	// the kiosk credential (scope.go), and the card holder's own view.
	PathKiosk      = "/kiosk/"         // GET  the kiosk page (text/html) and a fresh kiosk credential (cookie KioskCookie)
	PathKioskView  = "/v1/kiosk/view"  // GET  ?reader=NAME → KioskView, after a kiosk authentication of that card
	PathKioskPhoto = "/v1/kiosk/photo" // GET  ?reader=NAME → the KPE's photo (image/jpeg), same condition
	PathKioskQR    = "/v1/kiosk/qr"    // GET  ?code=CODE → PNG QR code of <kiosk.verify_url>?code=CODE

	// The counter screen (loket.enabled) for clerks without an integrated
	// system: a one-time login link (token only), its page, which turns
	// the link into the counter credential (scope.go), and today's codes.
	PathLoket      = "/loket/"         // GET  the counter screen (text/html); ?login=CODE sets the counter credential (cookie LoketCookie) and redirects here
	PathLoketLogin = "/v1/loket/login" // POST → LoketLogin: a one-time login link to the counter screen (the token only)
	PathCodesToday = "/v1/codes/today" // GET  TodayCodes: this terminal's records of today (no personal data)

	// The JavaScript client (an ES module) and its TypeScript declarations;
	// no token needed.
	PathClientJS  = "/v1/client.js"   // GET  text/javascript
	PathClientDTS = "/v1/client.d.ts" // GET  application/typescript
)

// The card data renewal (docs/renewal.md), after a KPE holder's
// fingerprint matched in the card's session: its view, the offer check
// (the kiosk runs it by itself after the authentication), apply, decline.
const (
	PathRenewal        = "/v1/renewal"             // GET  ?reader=NAME → RenewalView
	PathRenewalCheck   = "/v1/renewal/check"       // POST RenewalRequest → RenewalView: ask the back office for an offer
	PathRenewalApply   = "/v1/renewal/apply"       // POST RenewalRequest → RenewalView: write the offered update (the holder agreed)
	PathRenewalDecline = "/v1/renewal/decline"     // POST RenewalRequest → 204: not now
	PathPay            = "/v1/pay"                 // POST PayRequest → PayResult: an e-wallet payment (docs/ewallet.md)
	PathPayStatus      = "/v1/pay/status"          // POST PayStatusRequest → PayResult: a payment's outcome by its idempotency key
	PathPurse          = "/v1/purse"               // GET  ?reader=NAME → PurseView: the balance and last transactions of the card (docs/ewallet.md)
	PathTopUpCheck     = "/v1/purse/topup/check"   // POST PurseRequest → PurseView: ask the back office for a top-up and verify it
	PathTopUpApply     = "/v1/purse/topup/apply"   // POST PurseRequest → PurseView: credit the offered top-up (the holder agreed)
	PathTopUpDecline   = "/v1/purse/topup/decline" // POST PurseRequest → 204: not now
)

// ServiceKiosk is the service of a self-service kiosk session, the only
// one the kiosk credential may run.
const ServiceKiosk = "kiosk"

// DefaultListen is the API's default address (loopback only).
const DefaultListen = "127.0.0.1:7531"

// Health is the agent's state in one look.
type Health struct {
	Status   string    `json:"status"` // "ok", or "degraded" with Problems
	Version  string    `json:"version,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Terminal string    `json:"terminal,omitempty"`
	PCSC     string    `json:"pcsc,omitempty"` // "ok" or "unavailable"
	Readers  int       `json:"readers"`
	SAM      *SAM      `json:"sam,omitempty"`
	Problems []Error   `json:"problems,omitempty"`
	// BackOffice is the link to the back office in one look, for a
	// status light (the kiosk's attract screen); no personal data.
	BackOffice *BackOffice `json:"back_office,omitempty"`
}

// States of BackOffice.
const (
	BackOfficeOnline   = "online"   // the last attempt to send reached it (or nothing had to be sent yet)
	BackOfficeOffline  = "offline"  // the last attempt failed: records wait in the outbox, the agent retries
	BackOfficeDisabled = "disabled" // no back office configured (sync.url empty)
)

// BackOffice is the link to the back office: whether it is reached, and
// how many records wait for it.
type BackOffice struct {
	State  string `json:"state"`  // BackOfficeOnline, BackOfficeOffline or BackOfficeDisabled
	Queued int    `json:"queued"` // records not yet acknowledged by the back office
}

// SAM is the terminal SAM's state.
type SAM struct {
	Present   bool   `json:"present"`
	Reader    string `json:"reader,omitempty"`
	Serial    string `json:"serial,omitempty"`
	State     string `json:"state,omitempty"` // active, inactive, blocked
	TriesLeft int    `json:"tries_left,omitempty"`
	Counter   uint32 `json:"signature_counter,omitempty"`
}

// Reader is one PC/SC reader as the agent sees it.
type Reader struct {
	Name        string `json:"name"`
	Role        string `json:"role"` // "card", "sam" or "ignored"
	CardPresent bool   `json:"card_present"`
	Kind        string `json:"card_kind,omitempty"` // kpe, kpe-tambahan, ktpel, sam, unknown
	State       string `json:"state"`               // session state (State* constants)
	Busy        bool   `json:"busy"`                // a workflow (authentication) runs
	Error       *Error `json:"error,omitempty"`     // why the last step failed, or why the reader is unusable
	// Prompt is the question the workflow waits on (state StatePrompt):
	// answer it with PathPrompt.
	Prompt *Prompt `json:"prompt,omitempty"`
}

// Session states, in order; StateFailed and StateIdle stand apart, and
// StatePrompt comes only within a workflow that asked for prompts.
const (
	StateIdle          = "idle"          // no card
	StateDetected      = "detected"      // a card is in the reader
	StateIdentified    = "identified"    // KPE / KPE Tambahan / KTP-el / unknown
	StateAuthenticated = "authenticated" // card and data authenticated
	StateFingerprint   = "fingerprint"   // waiting for the holder's finger
	StatePrompt        = "prompt"        // waiting for the answer to a Prompt (PathPrompt)
	StateVerified      = "verified"      // fingerprint verified
	StateRecorded      = "recorded"      // record committed, code issued
	StateRemoved       = "removed"       // the card was taken out
	StateFailed        = "failed"        // a step failed (Error says why)
)

// AuthRequest starts an authentication on a card reader.
type AuthRequest struct {
	Reader   string `json:"reader,omitempty"` // default: the only card reader, or the one holding a card
	Service  string `json:"service"`          // askes, taspen, bapertarum, kiosk (configured list)
	Operator string `json:"operator"`         // the clerk's ID, recorded with the code
	// WaitSeconds: how long to wait for a card when none is in the reader
	// (default 0: fail at once with no-card; at most 300).
	WaitSeconds int `json:"wait_seconds,omitempty"`
	// ConfirmLastTry allows the card's last fingerprint try.
	ConfirmLastTry bool `json:"confirm_last_try,omitempty"`
	// Prompts lets the workflow ask within itself instead of failing:
	// with one fingerprint try left (and no ConfirmLastTry) it publishes a
	// Prompt and waits for its answer (PathPrompt) rather than failing
	// with finger-last-try.
	Prompts bool `json:"prompts,omitempty"`
	// Lang is the messages' language: id or en (docs/i18n.md has the rule
	// when it is not given).
	Lang string `json:"lang,omitempty"`
	// Audience is who reads the messages: clerk (default), or holder at a
	// self-service kiosk.
	Audience string `json:"audience,omitempty"`
}

// Locale is how a response's messages are worded: the language, and who
// reads them (the clerk at a counter or the card holder at a kiosk).
type Locale struct {
	Lang     i18n.Lang
	Audience i18n.Audience
}

// AuthResult is a committed authentication: the record is stored and will
// be synced.
type AuthResult struct {
	Code     string    `json:"code"` // the authentication code: 16 symbols in four groups of four, the last a check symbol
	RecordID string    `json:"record_id"`
	Service  string    `json:"service"`
	Reader   string    `json:"reader"`
	CardKind string    `json:"card_kind"`
	Counter  uint32    `json:"signature_counter"`
	Time     time.Time `json:"time"`
	Message  string    `json:"message"` // what to tell the clerk (or the holder)
	// TapToCodeMS: card detected to record committed, when the request
	// waited for the card (human steps, such as placing the finger,
	// included).
	TapToCodeMS float64 `json:"tap_to_code_ms,omitempty"`
}

// CancelRequest cancels the workflow on a reader, or on every reader:
// exactly one of Reader and All. A request that names neither (or both)
// is 400 bad-request: an empty cancel cancels nothing.
type CancelRequest struct {
	Reader string `json:"reader,omitempty"`
	// All cancels the workflows on every reader (a page credential's
	// only those it started).
	All bool `json:"all,omitempty"`
}

// Prompt is a question a running workflow (started with Prompts) waits
// on: in the session event of state StatePrompt and in Reader.Prompt.
type Prompt struct {
	ID   string `json:"id"`   // random, single use: name it in the PromptRequest
	Kind string `json:"kind"` // what is asked (Prompt* kinds)
}

// Prompt kinds.
const (
	// PromptLastTry: the card has one fingerprint try left; continue uses
	// it (as ConfirmLastTry would), cancel ends the workflow.
	PromptLastTry = "last-try"
)

// PromptRequest answers the Prompt waiting on a reader.
type PromptRequest struct {
	Reader string `json:"reader,omitempty"` // the reader; empty: whichever holds the prompt ID
	ID     string `json:"id"`
	Answer string `json:"answer"` // AnswerContinue or AnswerCancel
}

// Answers to a Prompt.
const (
	AnswerContinue = "continue" // go on (PromptLastTry: use the last try)
	AnswerCancel   = "cancel"   // end the workflow as PathCancel does (499 cancelled, nothing recorded)
)

// Error is a symbolic error: Code is stable for programs, Message is for
// people (in the request's language), Retriable says whether trying again
// (after the action the message names) can succeed.
type Error struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retriable bool   `json:"retriable"`
	TriesLeft int    `json:"tries_left,omitempty"` // fingerprint tries left on the card
}

// ErrorBody is every error answer's body.
type ErrorBody struct {
	Error Error `json:"error"`
}

// Prefill is the ASKES / BPJS Kesehatan form filled from the card (seed
// 001): only what the form needs.
type Prefill struct {
	CardKind      string `json:"card_kind"`
	Name          string `json:"nama"`
	NIP           string `json:"nip,omitempty"`         // the holder's NIP (KPE)
	LinkedNIP     string `json:"nip_pegawai,omitempty"` // the civil servant's NIP (KPE Tambahan)
	Relation      string `json:"hubungan,omitempty"`    // KPE Tambahan: spouse, child
	BirthPlace    string `json:"tempat_lahir,omitempty"`
	BirthDate     string `json:"tanggal_lahir,omitempty"` // YYYY-MM-DD
	Gender        string `json:"jenis_kelamin,omitempty"`
	Address       string `json:"alamat,omitempty"`
	BPJS          string `json:"no_askes_bpjs,omitempty"`
	Agency        string `json:"instansi,omitempty"`
	GolonganRuang string `json:"golongan_ruang,omitempty"`
	Verified      bool   `json:"data_verified"` // card and data authenticated
}

// QueueStatus is the outbox and the link to the back office.
type QueueStatus struct {
	Pending        int        `json:"pending"`
	Sending        int        `json:"sending"`
	Acknowledged   int        `json:"acknowledged"`
	Dead           int        `json:"dead"`
	OldestUnsynced float64    `json:"oldest_unsynced_seconds"`
	Used           float64    `json:"used"` // share of the outbox's limit in use (1 = full)
	Sync           SyncStatus `json:"sync"`
}

// SyncStatus is the uploader's state.
type SyncStatus struct {
	Enabled     bool      `json:"enabled"`
	URL         string    `json:"url,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Failures    int       `json:"failures"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	ClockSkewed bool      `json:"clock_skewed,omitempty"`
	Accepted    uint64    `json:"accepted"`
	Duplicates  uint64    `json:"duplicates"`
	Rejected    uint64    `json:"rejected"`
}

// SyncResult is one "send now".
type SyncResult struct {
	Sent       int    `json:"sent"`
	Accepted   int    `json:"accepted"`
	Duplicates int    `json:"duplicates"`
	Rejected   int    `json:"rejected"`
	Remaining  int    `json:"remaining"` // unsynced records left
	Error      *Error `json:"error,omitempty"`
}

// Event types on PathEvents.
const (
	EventReader  = "reader"  // a reader appeared or went away
	EventSession = "session" // a card session changed state
	EventSAM     = "sam"     // the SAM appeared, went away, changed state
	EventSync    = "sync"    // a sync requested through PathSync ended
	EventService = "service" // PC/SC lost or restored
	EventRenewal = "renewal" // a card data renewal's view changed state (RenewalView.State)
	EventPayment = "payment" // a payment's state: PayPaying, then PayResult.Status
	EventTopUp   = "topup"   // a top-up's credit: PayPaying, then done, not-done or pending
)

// Event is one change, streamed on PathEvents.
type Event struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Type     string    `json:"type"`
	Reader   string    `json:"reader,omitempty"`
	State    string    `json:"state,omitempty"`
	CardKind string    `json:"card_kind,omitempty"`
	Code     string    `json:"code,omitempty"` // the authentication code, on StateRecorded
	Error    *Error    `json:"error,omitempty"`
	// MessageCode names a prompt or outcome for programs (place-finger,
	// recorded); Message is its text, or the error's, in the subscriber's
	// language and for its audience.
	MessageCode string `json:"message_code,omitempty"`
	Message     string `json:"message,omitempty"`
	// TriesLeft: the card's fingerprint tries left, when the workflow
	// knows it (StatePrompt of a PromptLastTry, the fingerprint state
	// after it).
	TriesLeft int `json:"tries_left,omitempty"`
	// Prompt is the question the workflow waits on (StatePrompt).
	Prompt *Prompt `json:"prompt,omitempty"`
}

// KioskView is the card holder's own data at the self-service kiosk
// (PathKioskView): what the card carries, worded by nobody (field values
// are the card's data; dates are YYYY-MM-DD). It exists only after a
// successful authentication with service kiosk of the card in the reader,
// and only until the card is removed. A KTP-el shows only Kind and
// Verified (identity confirmation; no population data).
type KioskView struct {
	Kind     string `json:"kind"`     // kpe, kpe-tambahan, ktpel
	Verified bool   `json:"verified"` // card and data proven genuine: "Data terverifikasi dari chip KPE"
	// Identity, Employment, Family, Benefits: as the card holds them;
	// each left out when the card holds none of it.
	Identity   *KioskIdentity   `json:"identity,omitempty"`
	Employment *KioskEmployment `json:"employment,omitempty"`
	Family     []KioskMember    `json:"family,omitempty"`
	Benefits   *KioskBenefits   `json:"benefits,omitempty"`
	Tambahan   *KioskTambahan   `json:"tambahan,omitempty"` // a KPE Tambahan: the civil servant it belongs to
	Photo      bool             `json:"photo,omitempty"`    // PathKioskPhoto has the card's photo
}

// KioskIdentity is who the holder is.
type KioskIdentity struct {
	Name       string `json:"name"`
	NIP        string `json:"nip,omitempty"` // a KPE's holder (a KPE Tambahan's holder has none: Tambahan.NIP)
	BirthPlace string `json:"birth_place,omitempty"`
	BirthDate  string `json:"birth_date,omitempty"`
	Gender     string `json:"gender,omitempty"` // L or P
	Address    string `json:"address,omitempty"`
}

// KioskEmployment is the civil servant's employment (kepegawaian).
type KioskEmployment struct {
	Status        string          `json:"status,omitempty"` // CPNS, PNS, PENSIUN
	Pangkat       string          `json:"pangkat,omitempty"`
	GolonganRuang string          `json:"golongan_ruang,omitempty"`
	TMTPangkat    string          `json:"tmt_pangkat,omitempty"`
	Jabatan       string          `json:"jabatan,omitempty"`
	TMTJabatan    string          `json:"tmt_jabatan,omitempty"`
	ParentAgency  string          `json:"parent_agency,omitempty"`  // instansi induk
	WorkingAgency string          `json:"working_agency,omitempty"` // instansi kerja
	WorkUnits     []KioskWorkUnit `json:"work_units,omitempty"`     // unit kerja, echelon I to III in order
	WorkLocation  string          `json:"work_location,omitempty"`
}

// KioskWorkUnit is one level of the work unit.
type KioskWorkUnit struct {
	Level int    `json:"level"`
	Name  string `json:"name"`
}

// KioskMember is one family member on a KPE.
type KioskMember struct {
	Role      string `json:"role"`               // spouse or child
	Relation  string `json:"relation,omitempty"` // as the card words it (Istri, Anak Kandung)
	Name      string `json:"name"`
	BirthDate string `json:"birth_date,omitempty"`
	Dependant bool   `json:"dependant"`
	Tambahan  bool   `json:"kpe_tambahan"` // the member has a KPE Tambahan
}

// KioskBenefits are the holder's facilities as the card holds them
// (ASKES / BPJS Kesehatan, Taspen, Taperum); each omitted when the card
// lacks it.
type KioskBenefits struct {
	BPJS          string `json:"askes_bpjs,omitempty"`
	Taspen        string `json:"taspen,omitempty"`
	Taperum       string `json:"taperum,omitempty"`
	TaperumStatus string `json:"taperum_status,omitempty"`
	Bank          string `json:"bank,omitempty"`
	Account       string `json:"account_masked,omitempty"` // only the last four digits are on the card
}

// KioskTambahan links a KPE Tambahan to its civil servant.
type KioskTambahan struct {
	NIP      string `json:"nip"`      // the civil servant's NIP
	Relation string `json:"relation"` // spouse or child
}

// LoketLogin is a one-time login link to the counter screen
// (PathLoketLogin): opened within ExpiresSeconds, once, in the browser of
// the clerk at this PC, it gives that browser the counter credential.
type LoketLogin struct {
	URL            string `json:"url"` // http://127.0.0.1:7531/loket/?login=<one-time code>
	ExpiresSeconds int    `json:"expires_seconds"`
}

// TodayCodes are this terminal's records of today (PathCodesToday), in
// the terminal's time zone (the PC's local time), newest first: the code,
// the service, the time and whether the back office has it. Never a name,
// NIP, NIK hash or card serial.
type TodayCodes struct {
	Date      string      `json:"date"` // YYYY-MM-DD, the terminal's today
	Codes     []TodayCode `json:"codes"`
	Truncated bool        `json:"truncated"` // more than the answer holds: the newest are listed
}

// TodayCode is one record of today.
type TodayCode struct {
	Code    string    `json:"code"`
	Service string    `json:"service"`
	Time    time.Time `json:"time"`  // the record's time, with the terminal's UTC offset
	State   string    `json:"state"` // CodeQueued, CodeSynced or CodeRejected
}

// States of a TodayCode.
const (
	CodeQueued   = "queued"   // stored on the terminal, not yet taken by the back office
	CodeSynced   = "synced"   // the back office has it: the code verifies there
	CodeRejected = "rejected" // the back office refused the record: the code does not verify
)

// Renewal states (RenewalView.State).
const (
	RenewalNone        = "none"        // no update for this card (Reason says why: none staged, back office offline, declined, ...)
	RenewalChecking    = "checking"    // the back office is being asked
	RenewalAvailable   = "available"   // a verified offer waits for the holder's agreement (Card and New)
	RenewalWriting     = "writing"     // the update is being written: the card must stay in the reader
	RenewalDone        = "done"        // written, read back, recorded: Code is the renewal record's code
	RenewalFailed      = "failed"      // Reason says why; the card holds its old data
	RenewalInterrupted = "interrupted" // the card left during the writing: insert it again
)

// RenewalRequest names the reader of a renewal ("" : the only card reader
// holding a card).
type RenewalRequest struct {
	Reader string `json:"reader,omitempty"`
}

// RenewalView is the card data renewal of the card in a reader, for the
// credential that authenticated its holder: the data on the card and the
// new data side by side, the changed fields marked.
type RenewalView struct {
	Reader string `json:"reader"`
	State  string `json:"state"`
	// Reason is a code saying why there is no offer, or why the renewal
	// failed; Message words it for the caller.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Interrupted: an earlier renewal of this card was interrupted and
	// the card still holds its old data (the offer is made again).
	Interrupted bool `json:"interrupted,omitempty"`
	// Card and New are the fields of the data groups the update changes,
	// as on the card and as they will be (available, writing, done).
	Card []RenewalField `json:"card,omitempty"`
	New  []RenewalField `json:"new,omitempty"`
	// Code and RecordID are the renewal record's (done).
	Code     string `json:"code,omitempty"`
	RecordID string `json:"record_id,omitempty"`
}

// Top-up states (TopUpView.State).
const (
	TopUpNone      = "none"      // no top-up offered (Reason says why: none staged, back office offline, refused, declined, ...)
	TopUpAvailable = "available" // a verified authorisation waits for the holder's agreement (Amount)
	TopUpDone      = "done"      // credited and recorded: Code is the top-up record's code, Balance the card's balance after it
	TopUpNotDone   = "not-done"  // the card was not credited (Reason)
	TopUpPending   = "pending"   // the card left while it was sent the credit: the next authentication of the card settles it
)

// PurseRequest names the reader of a purse view or top-up ("": the only
// card reader holding a card).
type PurseRequest struct {
	Reader string `json:"reader,omitempty"`
}

// PurseView is the e-wallet of the card in a reader as read in the card
// session in which its holder authenticated (memory only, gone with the
// card), for the credential that ran that authentication.
type PurseView struct {
	Reader     string `json:"reader"`
	Balance    int64  `json:"balance"`     // rupiah
	MaxBalance int64  `json:"max_balance"` // the card's own maximum balance
	PTC        int64  `json:"ptc"`         // the purse transaction counter
	// Transactions are the card's logged transactions, newest first.
	Transactions []PurseTransaction `json:"transactions"`
	TopUp        TopUpView          `json:"topup"`
}

// PurseTransaction is one entry of the card's purse log.
type PurseTransaction struct {
	Kind         string    `json:"kind"` // "debit" (a payment) or "credit" (a top-up)
	Amount       int64     `json:"amount"`
	BalanceAfter int64     `json:"balance_after"`
	Time         time.Time `json:"time"`
}

// TopUpView is the "update saldo" of the card session.
type TopUpView struct {
	State string `json:"state"`
	// Reason is a code saying why no top-up is offered, or why one was
	// not done or is pending; Message words it for the caller.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Amount  int64  `json:"amount,omitempty"` // available, done, not done, pending: rupiah
	// Code and RecordID are the top-up record's (done).
	Code     string `json:"code,omitempty"`
	RecordID string `json:"record_id,omitempty"`
}

// RenewalField is one field of a data group.
type RenewalField struct {
	Group   int    `json:"group"`   // data group: 1 identity, 2 employment, 3 family, 4 benefits
	Key     string `json:"key"`     // employment.pangkat, family.member.1, ...
	Label   string `json:"label"`   // worded for the caller
	Value   string `json:"value"`   // "" when the other side has the field and this one not
	Changed bool   `json:"changed"` // differs between the card and the new data
}
