package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"kpe-agent/agent/cards"
	"kpe-agent/agent/config"
	"kpe-agent/apdu"
	"kpe-agent/apdu/sam"
	"kpe-agent/biometric"
	"kpe-agent/biometric/sensor"
	"kpe-agent/sync/outbox"
)

// Every code has both languages, a status, and no message is shared by
// two codes (a clerk must be able to tell them apart).
func TestMessagesComplete(t *testing.T) {
	seen := map[string]string{}
	for code, m := range messages {
		assert.NotEmpty(t, m.id, code)
		assert.NotEmpty(t, m.en, code)
		assert.NotEqual(t, m.id, m.en, "%s: not translated", code)
		if prev, ok := seen[m.id]; ok {
			t.Errorf("%s and %s share a message", code, prev)
		}
		seen[m.id] = code
		if m.status != 0 {
			assert.GreaterOrEqual(t, m.status, 400, code)
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
	status, e := Texts{}.APIError(&Failure{Code: CodeFingerNoMatch, TriesLeft: 2}, "en")
	assert.Equal(t, http.StatusUnprocessableEntity, status)
	assert.Equal(t, 2, e.TriesLeft)
	assert.True(t, e.Retriable)
	assert.Contains(t, e.Message, "does not match")
	// configured wording wins, per language
	tx := Texts{ID: map[string]string{CodeNoCard: "Masukkan KPE Anda"}}
	assert.Equal(t, "Masukkan KPE Anda", tx.Message(CodeNoCard, "id"))
	assert.Equal(t, messages[CodeNoCard].en, tx.Message(CodeNoCard, "en"))
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
