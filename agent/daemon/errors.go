package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/apdu"
	"kpe-agent/apdu/sam"
	"kpe-agent/biometric"
	"kpe-agent/biometric/sensor"
	"kpe-agent/internal/i18n"
	"kpe-agent/sync/outbox"
)

// Symbolic error codes of the local API (docs/local-api.md lists them with
// what a frontline application should do).
const (
	CodeNoCard          = "no-card"
	CodeCardRemoved     = "card-removed"
	CodeUnknownCard     = "unknown-card"
	CodeNoReader        = "no-reader"
	CodeReaderBusy      = "reader-busy"
	CodeReaderInUse     = "reader-in-use"
	CodePCSCUnavailable = "pcsc-unavailable"
	CodeNoSAM           = "no-sam"
	CodeSAMBlocked      = "sam-blocked"
	CodeSAMNotActivated = "sam-not-activated"
	CodeSAMCounter      = "sam-counter-behind"
	CodeCardNotGenuine  = "card-not-genuine"
	CodeDataNotGenuine  = "data-not-authentic"
	CodeFingerNoMatch   = "finger-no-match"
	CodeFingerAgain     = "finger-place-again"
	CodeFingerLastTry   = "finger-last-try"
	CodeFingerBlocked   = "finger-blocked"
	CodeNoSensor        = "no-sensor"
	CodeSensor          = "sensor-error"
	CodeKTPelNotSetUp   = "ktpel-not-configured"
	CodeCancelled       = "cancelled"
	CodeTimeout         = "timeout"
	CodeNotRecorded     = "not-recorded"
	CodeOutboxFull      = "outbox-full"
	CodeBadRequest      = "bad-request"
	CodeUnknownService  = "unknown-service"
	CodeNotAvailable    = "not-available"
	CodeShuttingDown    = "shutting-down"
	CodeSyncDisabled    = "sync-disabled"
	CodeSyncFailed      = "sync-failed"
	CodeCardError       = "card-error"
	CodeInternal        = "internal"
)

// codeInfo is what an error code means for HTTP: its status and whether
// trying again can help. Its words are in the catalogue
// (internal/i18n: clerk.<code> and holder.<code>).
type codeInfo struct {
	status    int
	retriable bool
}

var codes = map[string]codeInfo{
	CodeNoCard:          {http.StatusConflict, true},
	CodeCardRemoved:     {http.StatusConflict, true},
	CodeUnknownCard:     {http.StatusUnprocessableEntity, false},
	CodeNoReader:        {http.StatusNotFound, true},
	CodeReaderBusy:      {http.StatusConflict, true},
	CodeReaderInUse:     {http.StatusConflict, true},
	CodePCSCUnavailable: {http.StatusServiceUnavailable, true},
	CodeNoSAM:           {http.StatusServiceUnavailable, true},
	CodeSAMBlocked:      {http.StatusServiceUnavailable, false},
	CodeSAMNotActivated: {http.StatusServiceUnavailable, false},
	CodeSAMCounter:      {http.StatusServiceUnavailable, false},
	CodeCardNotGenuine:  {http.StatusUnprocessableEntity, false},
	CodeDataNotGenuine:  {http.StatusUnprocessableEntity, false},
	CodeFingerNoMatch:   {http.StatusUnprocessableEntity, true},
	CodeFingerAgain:     {http.StatusUnprocessableEntity, true},
	CodeFingerLastTry:   {http.StatusConflict, true},
	CodeFingerBlocked:   {http.StatusUnprocessableEntity, false},
	CodeNoSensor:        {http.StatusServiceUnavailable, false},
	CodeSensor:          {http.StatusServiceUnavailable, true},
	CodeKTPelNotSetUp:   {http.StatusUnprocessableEntity, false},
	CodeCancelled:       {499, true},
	CodeTimeout:         {http.StatusGatewayTimeout, true},
	CodeNotRecorded:     {http.StatusInternalServerError, true},
	CodeOutboxFull:      {http.StatusInsufficientStorage, true},
	CodeBadRequest:      {http.StatusBadRequest, false},
	CodeUnknownService:  {http.StatusBadRequest, false},
	CodeNotAvailable:    {http.StatusNotFound, false},
	CodeShuttingDown:    {http.StatusServiceUnavailable, true},
	CodeSyncDisabled:    {http.StatusConflict, false},
	CodeSyncFailed:      {http.StatusBadGateway, true},
	CodeCardError:       {http.StatusUnprocessableEntity, true},
	CodeInternal:        {http.StatusInternalServerError, true},
	// payments (pay.go)
	CodeEWalletDisabled:   {http.StatusConflict, false},
	CodeAmountInvalid:     {http.StatusBadRequest, false},
	CodeAmountTooLarge:    {http.StatusUnprocessableEntity, false},
	CodeInsufficientFunds: {http.StatusUnprocessableEntity, false},
	CodeNoPurse:           {http.StatusUnprocessableEntity, false},
	CodePursePending:      {http.StatusConflict, false},
	CodeEarlierSettled:    {http.StatusConflict, false},
	CodeKeyReused:         {http.StatusConflict, false},
}

// Prompts and outcomes that are not errors, with words in the catalogue
// too (clerk.<code>, holder.<code>); events carry them as message_code.
const (
	PromptPlaceFinger    = "place-finger"
	PromptConfirmLastTry = "confirm-last-try" // one fingerprint try left: continue or cancel (api.PromptLastTry)
	OutcomeRecorded      = "recorded"
)

// Failure is an error with its symbolic code; the daemon returns it for
// every failed workflow step.
type Failure struct {
	Code      string
	TriesLeft int
	Err       error // the cause, for logs (no personal data)
}

func (f *Failure) Error() string {
	if f.Err != nil {
		return f.Code + ": " + f.Err.Error()
	}
	return f.Code
}

func (f *Failure) Unwrap() error { return f.Err }

func fail(code string, err error) *Failure { return &Failure{Code: code, Err: err} }

// Texts words the frontline messages: the terminal's own wording of a
// clerk message where its configuration gives one (messages.id.<code>,
// messages.en.<code>), else the catalogue's. A card holder's messages
// always come from the catalogue.
type Texts struct {
	ID, EN map[string]string
}

// Message returns the text of code (an error code, a prompt or an
// outcome) for loc. An unknown code is worded as an internal error.
func (t Texts) Message(code string, loc api.Locale) string {
	if loc.Audience != i18n.Holder {
		over := t.ID
		if loc.Lang == i18n.English {
			over = t.EN
		}
		if s, ok := over[code]; ok {
			return s
		}
	}
	key := loc.Audience.Key(code)
	if !i18n.Has(key) {
		key = loc.Audience.Key(CodeInternal)
	}
	return loc.Lang.T(key)
}

// APIError makes err the API's error: its status and body.
func (t Texts) APIError(err error, loc api.Locale) (int, api.Error) {
	f := classify(err)
	c, ok := codes[f.Code]
	if !ok {
		c = codes[CodeInternal]
	}
	return c.status, api.Error{Code: f.Code, Message: t.Message(f.Code, loc), Retriable: c.retriable, TriesLeft: f.TriesLeft}
}

// classify finds the symbolic code of err.
func classify(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	code := CodeInternal
	switch {
	case err == nil:
		return &Failure{Code: CodeInternal, Err: errors.New("no error")}
	case errors.Is(err, context.Canceled):
		code = CodeCancelled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, apdu.ErrTimeout):
		code = CodeTimeout
	case errors.Is(err, apdu.ErrCardRemoved), errors.Is(err, apdu.ErrCardReset), errors.Is(err, cards.ErrSessionEnded) && !errors.Is(err, apdu.ErrNoService):
		code = CodeCardRemoved
	case errors.Is(err, apdu.ErrNoService):
		code = CodePCSCUnavailable
	case errors.Is(err, apdu.ErrSharingViolation):
		code = CodeReaderInUse
	case errors.Is(err, apdu.ErrNoReader):
		code = CodeNoReader
	case errors.Is(err, apdu.ErrNoCard):
		code = CodeNoCard
	case errors.Is(err, cards.ErrNoSAM):
		code = CodeNoSAM
	case errors.Is(err, sam.ErrBlocked):
		code = CodeSAMBlocked
	case errors.Is(err, sam.ErrNotActivated):
		code = CodeSAMNotActivated
	case errors.Is(err, cards.ErrFingerBlocked):
		code = CodeFingerBlocked
	case errors.Is(err, cards.ErrLastTry):
		code = CodeFingerLastTry
	case errors.Is(err, biometric.ErrPlaceAgain), errors.Is(err, sensor.ErrNoFinger), errors.Is(err, sensor.ErrTimeout):
		code = CodeFingerAgain
	case errors.Is(err, sensor.ErrSensor):
		code = CodeSensor
	case errors.Is(err, outbox.ErrFull):
		code = CodeOutboxFull
	case errors.Is(err, outbox.ErrNotRecorded), errors.Is(err, syscall.ENOSPC):
		code = CodeNotRecorded
	case isCardProtocol(err):
		code = CodeCardError
	}
	return &Failure{Code: code, Err: err}
}

func isCardProtocol(err error) bool {
	var se *apdu.StatusError
	return errors.As(err, &se) || errors.Is(err, apdu.ErrMalformedResponse) || errors.Is(err, apdu.ErrTransport)
}

// swLabel is the metrics label of an APDU failure: the status word, or
// the transport error's kind.
func swLabel(err error) string {
	var se *apdu.StatusError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%04X", se.SW)
	case errors.Is(err, apdu.ErrMalformedResponse):
		return "malformed"
	case errors.Is(err, apdu.ErrTimeout):
		return "timeout"
	case errors.Is(err, apdu.ErrCardRemoved), errors.Is(err, apdu.ErrCardReset):
		return "removed"
	case errors.Is(err, apdu.ErrTransport), errors.Is(err, apdu.ErrNoService):
		return "transport"
	}
	return ""
}
