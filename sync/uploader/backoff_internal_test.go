package uploader

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// After a Retry-After the uploader waits at least as asked plus full
// jitter over as long again, capped; after other failures full jitter over
// the exponential ceiling, capped.
func TestBackoffJitter(t *testing.T) {
	var x float64
	u := &Uploader{cfg: Config{Rand: func() float64 { return x }}}
	u.cfg.defaults()
	busy := &RetryAfterError{Status: 503, After: 4 * time.Second}
	for _, c := range []struct {
		rand float64
		want time.Duration
	}{{0, 4 * time.Second}, {0.5, 6 * time.Second}, {0.999, 7996 * time.Millisecond}} {
		x = c.rand
		assert.Equal(t, c.want, u.backoff(busy), "Retry-After 4 s, rand %v", c.rand)
	}
	x = 0.9
	assert.Equal(t, 5*time.Minute, u.backoff(&RetryAfterError{Status: 429, After: time.Hour}), "capped by MaxBackoff")
	u.cfg.MaxBackoff = 5 * time.Second
	assert.Equal(t, 5*time.Second, u.backoff(busy), "the jitter is capped too")

	// no Retry-After: full jitter over 1 s, 2 s, 4 s … capped
	u.cfg.MaxBackoff = 3 * time.Second
	x = 0.5
	for failures, want := range map[int]time.Duration{1: 500 * time.Millisecond, 2: time.Second, 3: 1500 * time.Millisecond, 9: 1500 * time.Millisecond} {
		u.st.Failures = failures
		assert.Equal(t, want, u.backoff(errors.New("connection refused")), "after %d failures", failures)
	}

	// spread: 1,000 terminals told Retry-After: 1 come back over [1 s, 2 s)
	u.cfg.Rand = nil
	u.cfg.MaxBackoff = 0
	u.cfg.defaults()
	perSecondTenth := map[time.Duration]int{}
	for range 1000 {
		d := u.backoff(&RetryAfterError{Status: 503, After: time.Second})
		assert.True(t, d >= time.Second && d < 2*time.Second, "%s", d)
		perSecondTenth[d/(100*time.Millisecond)]++
	}
	assert.Len(t, perSecondTenth, 10, "spread over every tenth of the second after the first")
	for k, n := range perSecondTenth {
		assert.Less(t, n, 250, "no herd at %s", k*100*time.Millisecond)
	}
}
