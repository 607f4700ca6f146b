package daemon

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/agent/config"
	"kpe-agent/internal/i18n"
)

// promptDaemon is a daemon with one card reader and no PC/SC: enough for
// a reader's prompts and their events.
func promptDaemon(t *testing.T) (*Daemon, *reader, <-chan api.Event) {
	t.Helper()
	cfg := &config.Config{Terminal: config.Terminal{Language: "en"}, Fingerprint: config.Fingerprint{Timeout: time.Minute}}
	d := &Daemon{o: Options{Config: func() *config.Config { return cfg }}, log: slog.New(slog.DiscardHandler), events: newHub(), readers: map[string]*reader{}}
	r := newReader(d, "R0", roleCard)
	r.kind = "kpe"
	d.readers[r.name] = r
	_, evs, stop := d.events.subscribe(0)
	t.Cleanup(stop)
	return d, r, evs
}

// asked waits for the prompt event.
func asked(t *testing.T, evs <-chan api.Event) api.Event {
	t.Helper()
	select {
	case ev := <-evs:
		require.Equal(t, api.StatePrompt, ev.State)
		require.NotNil(t, ev.Prompt)
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no prompt event")
	}
	return api.Event{}
}

type askResult struct {
	answer string
	err    error
}

func askAsync(ctx context.Context, r *reader, timeout time.Duration) <-chan askResult {
	got := make(chan askResult, 1)
	go func() {
		a, err := r.ask(ctx, api.PromptLastTry, PromptConfirmLastTry, 1, timeout)
		got <- askResult{a, err}
	}()
	return got
}

var promptIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// A prompt is published with a random ID, shown on the reader while it
// waits, and takes exactly one answer with that ID.
func TestPromptAnsweredOnce(t *testing.T) {
	d, r, evs := promptDaemon(t)
	got := askAsync(context.Background(), r, time.Minute)
	ev := asked(t, evs)
	assert.Equal(t, api.EventSession, ev.Type)
	assert.Equal(t, "R0", ev.Reader)
	assert.Equal(t, "kpe", ev.CardKind)
	assert.Equal(t, PromptConfirmLastTry, ev.MessageCode)
	assert.Equal(t, i18n.English.T("clerk.confirm-last-try"), ev.Message)
	assert.Equal(t, 1, ev.TriesLeft)
	assert.Equal(t, api.PromptLastTry, ev.Prompt.Kind)
	assert.Regexp(t, promptIDRE, ev.Prompt.ID)

	rd := d.Readers(api.Locale{})[0]
	assert.Equal(t, api.StatePrompt, rd.State)
	require.NotNil(t, rd.Prompt)
	assert.Equal(t, *ev.Prompt, *rd.Prompt)

	assert.False(t, d.AnswerPrompt(context.Background(), api.PromptRequest{ID: "0123456789abcdef0123456789abcdef", Answer: api.AnswerContinue}), "a wrong id")
	assert.False(t, d.AnswerPrompt(context.Background(), api.PromptRequest{Reader: "R9", ID: ev.Prompt.ID, Answer: api.AnswerContinue}), "another reader")
	assert.True(t, d.AnswerPrompt(context.Background(), api.PromptRequest{Reader: "R0", ID: ev.Prompt.ID, Answer: api.AnswerContinue}))
	assert.False(t, d.AnswerPrompt(context.Background(), api.PromptRequest{ID: ev.Prompt.ID, Answer: api.AnswerCancel}), "single use")
	select {
	case res := <-got:
		require.NoError(t, res.err)
		assert.Equal(t, api.AnswerContinue, res.answer)
	case <-time.After(5 * time.Second):
		t.Fatal("the answer did not reach the workflow")
	}
	assert.Nil(t, d.Readers(api.Locale{})[0].Prompt)

	// the next prompt has another ID, and an empty reader finds it
	got = askAsync(context.Background(), r, time.Minute)
	ev2 := asked(t, evs)
	assert.NotEqual(t, ev.Prompt.ID, ev2.Prompt.ID)
	assert.True(t, d.AnswerPrompt(context.Background(), api.PromptRequest{ID: ev2.Prompt.ID, Answer: api.AnswerCancel}))
	assert.Equal(t, api.AnswerCancel, (<-got).answer)
}

// Unanswered, a prompt ends the wait with timeout; cut short by the
// context (cancel, card removal, shutdown), with the context's error.
// Either way its ID answers nothing afterwards.
func TestPromptTimeoutAndCancel(t *testing.T) {
	d, r, evs := promptDaemon(t)
	got := askAsync(context.Background(), r, 50*time.Millisecond)
	ev := asked(t, evs)
	res := <-got
	var f *Failure
	require.ErrorAs(t, res.err, &f)
	assert.Equal(t, CodeTimeout, f.Code)
	assert.ErrorIs(t, res.err, errPromptTimeout)
	assert.False(t, d.AnswerPrompt(context.Background(), api.PromptRequest{ID: ev.Prompt.ID, Answer: api.AnswerContinue}))

	ctx, cancel := context.WithCancelCause(context.Background())
	got = askAsync(ctx, r, time.Minute)
	ev = asked(t, evs)
	cancel(context.Canceled)
	res = <-got
	assert.True(t, errors.Is(res.err, context.Canceled), "%v", res.err)
	assert.False(t, d.AnswerPrompt(context.Background(), api.PromptRequest{ID: ev.Prompt.ID, Answer: api.AnswerContinue}))
}

// confirmLastTry: continue uses the last try; cancel (or anything else)
// ends the workflow as cancelled.
func TestConfirmLastTry(t *testing.T) {
	d, r, evs := promptDaemon(t)
	for _, c := range []struct {
		answer string
		code   string
	}{{api.AnswerContinue, ""}, {api.AnswerCancel, CodeCancelled}} {
		done := make(chan error, 1)
		go func() { done <- d.confirmLastTry(context.Background(), r) }()
		ev := asked(t, evs)
		require.True(t, d.AnswerPrompt(context.Background(), api.PromptRequest{ID: ev.Prompt.ID, Answer: c.answer}))
		err := <-done
		if c.code == "" {
			assert.NoError(t, err)
			continue
		}
		assert.Equal(t, c.code, classify(err).Code)
	}
}

// A page credential controls only the workflow it started: the token
// controls any, another page credential none.
func TestMayControlOnlyItsOwnWorkflow(t *testing.T) {
	_, r, _ := promptDaemon(t)
	assert.False(t, r.mayControl("kiosk-1"), "no workflow runs")
	assert.True(t, r.mayControl(""), "the token")
	require.NoError(t, r.begin(func(error) {}, "kiosk-1"))
	assert.True(t, r.mayControl("kiosk-1"))
	assert.False(t, r.mayControl("kiosk-2"))
	assert.False(t, r.mayControl("loket-1"))
	assert.True(t, r.mayControl(""))
	r.end()
	assert.False(t, r.mayControl("kiosk-1"), "its workflow ended")
	require.NoError(t, r.begin(func(error) {}, ""))
	assert.False(t, r.mayControl("kiosk-1"), "a workflow the token started")
	r.end()
}
