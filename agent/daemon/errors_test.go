package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/agent/config"
	"kpe-agent/apdu"
	"kpe-agent/apdu/sam"
	"kpe-agent/biometric"
	"kpe-agent/biometric/sensor"
	"kpe-agent/internal/i18n"
	"kpe-agent/sync/outbox"
)

// Every code has a status and its words for the clerk and the card holder
// in the catalogue, and no clerk message is shared by two codes (a clerk
// must be able to tell them apart; a card holder is sent to staff alike
// for many of them).
func TestEveryCodeHasItsWords(t *testing.T) {
	seen := map[string]string{}
	for code, c := range codes {
		assert.GreaterOrEqual(t, c.status, 400, code)
		for _, a := range []i18n.Audience{i18n.Clerk, i18n.Holder} {
			assert.True(t, i18n.Has(a.Key(code)), "%s has no %s wording", code, a)
		}
		id := i18n.Indonesian.T(i18n.Clerk.Key(code))
		if prev, ok := seen[id]; ok {
			t.Errorf("%s and %s share a message", code, prev)
		}
		seen[id] = code
	}
	for _, code := range []string{PromptPlaceFinger, PromptConfirmLastTry, OutcomeRecorded, OutcomePaymentDone, OutcomePaymentNotDone, OutcomePaymentPending} {
		for _, a := range []i18n.Audience{i18n.Clerk, i18n.Holder} {
			assert.True(t, i18n.Has(a.Key(code)), "%s has no %s wording", code, a)
		}
	}
}

func TestClassify(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("reader x: %w", err) }
	for _, c := range []struct {
		err  error
		code string
	}{
		{context.Canceled, CodeCancelled},
		{wrap(context.DeadlineExceeded), CodeTimeout},
		{wrap(apdu.ErrTimeout), CodeTimeout},
		{wrap(apdu.ErrCardRemoved), CodeCardRemoved},
		{fmt.Errorf("%w: %w", cards.ErrSessionEnded, apdu.ErrCardReset), CodeCardRemoved},
		{fmt.Errorf("%w: %w", cards.ErrSessionEnded, apdu.ErrNoService), CodePCSCUnavailable},
		{wrap(apdu.ErrSharingViolation), CodeReaderInUse},
		{wrap(apdu.ErrNoReader), CodeNoReader},
		{wrap(cards.ErrNoSAM), CodeNoSAM},
		{wrap(sam.ErrBlocked), CodeSAMBlocked},
		{wrap(sam.ErrNotActivated), CodeSAMNotActivated},
		{wrap(cards.ErrFingerBlocked), CodeFingerBlocked},
		{wrap(biometric.ErrPlaceAgain), CodeFingerAgain},
		{wrap(sensor.ErrDevice), CodeSensor},
		{&outbox.LimitError{Limit: "count", Used: 1}, CodeOutboxFull},
		{wrap(outbox.ErrNotRecorded), CodeNotRecorded},
		{wrap(&apdu.StatusError{SW: 0x6A82}), CodeCardError},
		{wrap(apdu.ErrMalformedResponse), CodeCardError},
		{&Failure{Code: CodeFingerNoMatch, TriesLeft: 2}, CodeFingerNoMatch},
		{errors.New("something else"), CodeInternal},
	} {
		assert.Equal(t, c.code, classify(c.err).Code, "%v", c.err)
	}
	en := api.Locale{Lang: i18n.English, Audience: i18n.Clerk}
	status, e := Texts{}.APIError(&Failure{Code: CodeFingerNoMatch, TriesLeft: 2}, en)
	assert.Equal(t, http.StatusUnprocessableEntity, status)
	assert.Equal(t, 2, e.TriesLeft)
	assert.True(t, e.Retriable)
	assert.Contains(t, e.Message, "does not match")
	// the card holder is addressed, not the clerk
	_, e = Texts{}.APIError(&Failure{Code: CodeFingerNoMatch}, api.Locale{Lang: i18n.English, Audience: i18n.Holder})
	assert.Equal(t, "Your fingerprint does not match. Clean your finger, then try again.", e.Message)
	// an unknown code is worded as an internal error
	assert.Equal(t, i18n.English.T("clerk.internal"), Texts{}.Message("no-such-code", en))
	// configured wording wins, per language, for the clerk only
	id := api.Locale{Lang: i18n.Indonesian, Audience: i18n.Clerk}
	tx := Texts{ID: map[string]string{CodeNoCard: "Masukkan KPE Anda"}}
	assert.Equal(t, "Masukkan KPE Anda", tx.Message(CodeNoCard, id))
	assert.Equal(t, i18n.English.T("clerk.no-card"), tx.Message(CodeNoCard, en))
	assert.Equal(t, i18n.Indonesian.T("holder.no-card"), tx.Message(CodeNoCard, api.Locale{Lang: i18n.Indonesian, Audience: i18n.Holder}))
}

func TestSWLabel(t *testing.T) {
	assert.Equal(t, "6982", swLabel(fmt.Errorf("x: %w", &apdu.StatusError{SW: 0x6982})))
	assert.Equal(t, "removed", swLabel(apdu.ErrCardRemoved))
	assert.Equal(t, "", swLabel(errors.New("other")))
}

func TestRoleOf(t *testing.T) {
	for _, c := range []struct {
		r          config.Readers
		name, role string
	}{
		{config.Readers{}, "ACS ACR39U 00 00", roleProbe},
		{config.Readers{SAM: []string{"*SAM*"}}, "Gemalto SAM slot 01", roleSAM},
		{config.Readers{SAM: []string{"*SAM*"}}, "ACS ACR1252 PICC", roleCard},
		{config.Readers{SAM: []string{"*SAM*"}, Card: []string{"ACS*"}}, "Yubico YubiKey", roleIgnored},
		{config.Readers{Ignore: []string{"Yubico*"}}, "Yubico YubiKey", roleIgnored},
		{config.Readers{Card: []string{"ACS*"}}, "ACS ACR39U", roleCard},
	} {
		c := c
		d := &Daemon{o: Options{Config: func() *config.Config { return &config.Config{Readers: c.r} }}}
		assert.Equal(t, c.role, d.roleOf(c.name), "%+v %s", c.r, c.name)
	}
}
