package backoffice

import (
	"testing"
	"time"
)

// The webhook backoff doubles from the minimum to the maximum and stays
// there however long an institution's endpoint is down (a shift by the
// failure count overflowed after some thirty failures: a negative wait,
// and rand.N panicked).
func TestWebhookBackoffNeverOverflows(t *testing.T) {
	for _, c := range []struct{ minB, maxB time.Duration }{{time.Second, time.Hour}, {time.Hour, 24 * time.Hour}, {time.Millisecond, time.Minute}} {
		prev := time.Duration(0)
		for f := 1; f <= 10000; f++ {
			w := webhookBackoff(f, c.minB, c.maxB)
			if w < c.minB || w > c.maxB || w < prev {
				t.Fatalf("min %v max %v: failure %d waits %v (before %v)", c.minB, c.maxB, f, w, prev)
			}
			prev = w
		}
		if prev != c.maxB {
			t.Fatalf("min %v max %v: ends at %v", c.minB, c.maxB, prev)
		}
	}
	for f, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 12: 2048 * time.Second, 13: time.Hour} {
		if got := webhookBackoff(f, time.Second, time.Hour); got != want {
			t.Errorf("failure %d: %v, want %v", f, got, want)
		}
	}
}
