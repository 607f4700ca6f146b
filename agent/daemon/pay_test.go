package daemon

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
	"kpe-agent/sync/outbox"
)

func TestPayRequestID(t *testing.T) {
	// the contract's construction, spelled out byte by byte
	msg := append([]byte("KPE-PAY"), 0)
	msg = append(msg, "pkm-01"...)
	msg = append(msg, 0)
	msg = append(msg, "key-1"...)
	h := sha256.Sum256(msg)
	assert.Equal(t, [16]byte(h[:16]), payRequestID("pkm-01", "key-1"))
	// the terminal and the key both count (neither holds a NUL: terminal
	// ids are validated by the configuration, keys by validKey, so the
	// separator is unambiguous)
	assert.NotEqual(t, payRequestID("pkm-01", "key-1"), payRequestID("pkm-02", "key-1"))
	assert.NotEqual(t, payRequestID("pkm-01", "key-1"), payRequestID("pkm-01", "key-2"))
	assert.False(t, validKey("b\x00c"))
}

func TestValidKey(t *testing.T) {
	long := fmt.Sprintf("%064d", 7)
	for _, k := range []string{"a", " ", "~", long, "loket-5f1c0e2a9b7d4c33", "INV 42/2026"} {
		assert.True(t, validKey(k), "%q", k)
	}
	for _, k := range []string{"", long + "x", "tab\t", "nl\n", "\x7f", "é", "\x00"} {
		assert.False(t, validKey(k), "%q", k)
	}
	assert.True(t, validReference(""))
	assert.True(t, validReference("Nota 12/IV — apotik"))
	assert.False(t, validReference("a\x01"))
	assert.False(t, validReference(string([]byte{0xff})))
	assert.False(t, validReference(fmt.Sprintf("%065d", 1)))
}

func TestPurseReason(t *testing.T) {
	sw := func(s uint16) error { return &apdu.StatusError{SW: s} }
	for err, want := range map[error]string{
		&kpe.PurseError{Err: fmt.Errorf("%w: x", kpe.ErrInsufficientFunds)}:                                        purseInsufficient,
		&kpe.PurseError{Err: fmt.Errorf("%w: x", kpe.ErrOverMaxBalance)}:                                           purseOverMax,
		&kpe.PurseError{Err: fmt.Errorf("%w: x", kpe.ErrPurseMAC)}:                                                 purseMACRefused,
		&kpe.PurseError{Err: kpe.ErrPurseExhausted}:                                                                purseExhausted,
		&kpe.PurseError{Err: kpe.ErrNoPurse}:                                                                       purseNoPurse,
		&kpe.PurseError{Err: fmt.Errorf("SAM: %w", kpe.ErrNoPurseKey)}:                                             purseNoKey,
		&kpe.PurseError{Err: fmt.Errorf("SAM: %w: %w", sam.ErrTopUpRefused, &apdu.StatusError{SW: 0x6300})}:        purseSAMRefused,
		&kpe.PurseError{Err: fmt.Errorf("SAM: %w: %w", sam.ErrCreditNotAuthorised, &apdu.StatusError{SW: 0x6984})}: purseSAMRefused,
		&kpe.PurseError{Err: fmt.Errorf("debit: %w", sw(0x6F00))}:                                                  purseRefused,
		&kpe.PurseError{Err: apdu.ErrCardRemoved}:                                                                  purseNotSent,
		errors.New("purse journal: disk full"):                                                                     purseNotSent,
	} {
		assert.Equal(t, want, purseReason(err), "%v", err)
	}
}

// A transmitted command the card's log shows it did not take: the card's
// refusal names the reason, anything else is not-in-log.
func TestNotTakenReason(t *testing.T) {
	assert.Equal(t, purseInsufficient, notTakenReason(&kpe.PurseError{Sent: true, Err: fmt.Errorf("%w: x", kpe.ErrInsufficientFunds)}))
	assert.Equal(t, purseMACRefused, notTakenReason(&kpe.PurseError{Sent: true, Err: fmt.Errorf("%w: x", kpe.ErrPurseMAC)}))
	assert.Equal(t, purseRefused, notTakenReason(&kpe.PurseError{Sent: true, Err: &apdu.StatusError{SW: 0x6F00}}))
	assert.Equal(t, purseNotInLog, notTakenReason(&kpe.PurseError{Sent: true, Err: kpe.ErrProof}))
	assert.Equal(t, purseNotInLog, notTakenReason(&kpe.PurseError{Sent: true, Err: kpe.ErrPurseFormat}))
}

func TestPayStatusWords(t *testing.T) {
	assert.Equal(t, "done", payStatus(outbox.PurseRequestDone))
	assert.Equal(t, "not-done", payStatus(outbox.PurseRequestNotDone))
	assert.Equal(t, "pending", payStatus(outbox.PurseRequestPending))
	assert.Equal(t, OutcomePaymentPending, payMessageCode(purseOutcome{status: outbox.PurseRequestPending}))
	// a pending request from the book without a reason is a pulled card
	o := outcomeOf(&outbox.PurseOutcome{Status: outbox.PurseRequestPending, Amount: 5}, false)
	assert.Equal(t, purseCardRemoved, o.reason)
	// ... unless a workflow holds its reader now: in progress
	o = outcomeOf(&outbox.PurseOutcome{Status: outbox.PurseRequestPending, Amount: 5}, true)
	assert.Equal(t, purseInProgress, o.reason)
	// a reason in the book stands
	o = outcomeOf(&outbox.PurseOutcome{Status: outbox.PurseRequestNotDone, Reason: purseNotInLog}, true)
	assert.Equal(t, purseNotInLog, o.reason)
}
