package daemon

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"time"

	"kpe-agent/agent/api"
)

// Prompts inside a running workflow: a workflow started with
// AuthRequest.Prompts asks a question on the event stream (session state
// prompt, with the prompt's random ID) and waits for its answer
// (POST /v1/prompt) instead of failing. The wait ends like every human
// step: on the answer, the operator's cancel, the card's removal, the
// agent's shutdown, or fingerprint.timeout (then timeout). The SAM is not
// held meanwhile.

// waitingPrompt is the prompt a reader's workflow waits on.
type waitingPrompt struct {
	api.Prompt
	// answer takes the one answer; it is written under the reader's mu,
	// by whoever takes the prompt off the reader first
	answer chan string
}

// Errors that end a workflow at a prompt.
var (
	errPromptTimeout   = errors.New("the prompt was not answered within fingerprint.timeout")
	errPromptCancelled = errors.New("the prompt was answered cancel")
)

// newPromptID is a prompt's ID: 16 random bytes in hex.
func newPromptID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// ask puts the reader in state prompt with a new prompt of kind, tells the
// event stream (message code msg, the tries left when known), and waits up
// to timeout for its answer. It returns the answer, the context's error
// when ctx ends first, or a timeout failure. The prompt is withdrawn
// whatever the outcome: its ID answers nothing afterwards.
func (r *reader) ask(ctx context.Context, kind, msg string, triesLeft int, timeout time.Duration) (string, error) {
	id, err := newPromptID()
	if err != nil {
		return "", err
	}
	p := &waitingPrompt{Prompt: api.Prompt{ID: id, Kind: kind}, answer: make(chan string, 1)}
	pr := p.Prompt
	r.transition(api.StatePrompt, "", nil, func() { r.prompt = p }, func(ev *api.Event) {
		ev.MessageCode, ev.TriesLeft, ev.Prompt = msg, triesLeft, &pr
	})
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case a := <-p.answer:
		return a, nil
	case <-ctx.Done():
		r.withdraw(p)
		return "", ctx.Err()
	case <-t.C:
		if r.withdraw(p) {
			return "", fail(CodeTimeout, errPromptTimeout)
		}
		// answered as the time ran out: the answer, given a 204, stands
		return <-p.answer, nil
	}
}

// withdraw takes p off the reader; false when an answer took it first.
func (r *reader) withdraw(p *waitingPrompt) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.prompt != p {
		return false
	}
	r.prompt = nil
	return true
}

// answer gives answer to the reader's prompt if its ID is id, once: the
// prompt is taken off the reader. False when no such prompt waits.
func (r *reader) answer(id, answer string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.prompt
	if p == nil || subtle.ConstantTimeCompare([]byte(p.ID), []byte(id)) != 1 {
		return false
	}
	r.prompt = nil
	p.answer <- answer // buffered for one, and only the taker writes
	return true
}

// fingerprintAgain puts r back in state fingerprint after a prompt, with
// the tries left.
func (r *reader) fingerprintAgain(triesLeft int) {
	r.transition(api.StateFingerprint, "", nil, nil, func(ev *api.Event) { ev.TriesLeft = triesLeft })
}

// confirmLastTry asks whether the card's last fingerprint try is to be
// used: nil to use it, else why the workflow ends (cancelled when so
// answered, timeout, or ctx's end).
func (d *Daemon) confirmLastTry(ctx context.Context, r *reader) error {
	d.log.Info("one fingerprint try left: asking to confirm", "reader", r.name)
	a, err := r.ask(ctx, api.PromptLastTry, PromptConfirmLastTry, 1, d.cfg().Fingerprint.Timeout)
	if err != nil {
		return err
	}
	d.log.Info("last fingerprint try prompt answered", "reader", r.name, "answer", a)
	if a != api.AnswerContinue {
		// anything but continue keeps the card's last try
		return fail(CodeCancelled, errPromptCancelled)
	}
	return nil
}

// AnswerPrompt answers the prompt req.ID on req.Reader, or on whichever
// reader holds it when req.Reader is "" (API). It reports whether such a
// prompt waited.
func (d *Daemon) AnswerPrompt(ctx context.Context, req api.PromptRequest) bool {
	caller := api.Caller(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	for n, r := range d.readers {
		if (req.Reader == "" || n == req.Reader) && r.mayControl(caller) && r.answer(req.ID, req.Answer) {
			return true
		}
	}
	return false
}
