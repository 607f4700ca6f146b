package main

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/apdu"
	"kpe-agent/apdu/sam"
	"kpe-agent/internal/clikit"
	"kpe-agent/sync/outbox"
)

// errorJSON is the error of a command run with --json, printed on
// standard output: the symbolic code (the local API's codes where the
// error is the same, docs/local-api.md), the operator's sentence and the
// technical cause.
type errorJSON struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Detail  string `json:"detail,omitempty"`
	} `json:"error"`
}

// knownErrors are the errors kpectl explains, checked in order: the
// symbolic code of each (the local API's codes where the error is the
// same, docs/local-api.md) and the catalogue key of the operator's
// sentence (messages.Errs; none for the two context errors).
var knownErrors = []struct {
	err       error
	code, key string
}{
	{apdu.ErrCardRemoved, "card-removed", "kpectl.error.card-removed"},
	{apdu.ErrCardReset, "card-removed", "kpectl.error.card-reset"},
	{apdu.ErrTimeout, "timeout", "kpectl.error.timeout"},
	{apdu.ErrNoService, "pcsc-unavailable", "kpectl.error.no-service"},
	{apdu.ErrSharingViolation, "reader-in-use", "kpectl.error.sharing-violation"},
	{apdu.ErrNoReader, "no-reader", "kpectl.error.no-reader"},
	{apdu.ErrNoCard, "no-card", "kpectl.error.no-card"},
	{apdu.ErrMalformedResponse, "card-error", "kpectl.error.malformed-response"},
	{cards.ErrNoSAM, "no-sam", ""},
	{sam.ErrBlocked, "sam-blocked", "kpectl.error.sam-blocked"},
	{sam.ErrNotActivated, "sam-not-activated", "kpectl.error.sam-not-activated"},
	{outbox.ErrLocked, "outbox-locked", "kpectl.error.outbox-locked"},
	{outbox.ErrNoOutbox, "no-outbox", "kpectl.error.no-outbox"},
	{outbox.ErrDamaged, "outbox-damaged", "kpectl.error.outbox-damaged"},
	{outbox.ErrCorrupt, "outbox-corrupt", "kpectl.error.outbox-corrupt"},
	{outbox.ErrNotDead, "not-dead", "kpectl.error.not-dead"},
	{errOutExists, "out-exists", "kpectl.error.out-exists"},
	{api.ErrNotRunning, "agent-not-running", "kpectl.error.agent-not-running"},
	{errLoketOff, "loket-disabled", "kpectl.loket.off"},
	{context.DeadlineExceeded, "timeout", ""},
	{context.Canceled, "cancelled", ""},
}

// errorCode is err's symbolic code: "usage" for a command-line error, the
// agent's code for its API errors, else the table's, else "failed".
func errorCode(err error) string {
	var ae *api.APIError
	switch {
	case clikit.IsUsage(err):
		return "usage"
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		return "unauthorized"
	case errors.As(err, &ae) && ae.Err.Code != "":
		return ae.Err.Code
	}
	for _, e := range knownErrors {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return "failed"
}

// errorBody is err for --json: the sentence of explain without its
// technical line, which goes into detail.
func (c *cli) errorBody(err error) errorJSON {
	var b errorJSON
	b.Error.Code = errorCode(err)
	msg := c.explain(err)
	if clikit.IsUsage(err) {
		var unknown *clikit.UnknownCommandError
		if errors.As(err, &unknown) {
			msg = c.msg.UnknownCommand + ": " + unknown.Name
		}
	}
	if sentence, detail, ok := strings.Cut(msg, "\n"); ok {
		msg = sentence
		b.Error.Detail = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(detail), "("), ")")
	}
	b.Error.Message = msg
	return b
}
