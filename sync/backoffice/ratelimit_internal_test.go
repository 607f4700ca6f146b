package backoffice

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The per-client table stays bounded: idle clients are forgotten (their
// buckets would be full again), and beyond the bound new clients share
// one bucket instead of growing the table.
func TestVerifyLimiterBounded(t *testing.T) {
	v := newVerifyLimiter(Limit{Rate: 1, Burst: 2}, Limit{Rate: 1000, Burst: 1000}, 2, slog.New(slog.DiscardHandler))
	assert.Equal(t, 2*time.Second, v.idle)
	t0 := time.Unix(1_800_000_000, 0)
	ok := func(remote string, at time.Time) bool {
		_, ok := v.allow(remote, at)
		return ok
	}
	assert.True(t, ok("192.0.2.1:1", t0))
	assert.True(t, ok("192.0.2.2:1", t0))
	// the table is full: the next two addresses share the overflow bucket
	assert.True(t, ok("192.0.2.3:1", t0))
	assert.True(t, ok("192.0.2.4:1", t0))
	wait, allowed := v.allow("192.0.2.5:1", t0)
	assert.False(t, allowed)
	assert.Equal(t, time.Second, wait)
	assert.Len(t, v.clients, 2)
	// tracked clients keep their own buckets
	assert.True(t, ok("192.0.2.1:2", t0))
	assert.False(t, ok("192.0.2.1:3", t0))

	// once idle for burst/rate, the clients are dropped and a new one is
	// tracked again
	later := t0.Add(2 * time.Second)
	assert.True(t, ok("192.0.2.9:1", later))
	assert.Len(t, v.clients, 1)
	assert.Contains(t, v.clients, "192.0.2.9")

	// many addresses over time never grow the table beyond the bound
	for i := range 1000 {
		ok(netAddr(i), later.Add(time.Duration(i)*time.Millisecond))
		assert.LessOrEqual(t, len(v.clients), 2)
	}
}

func netAddr(i int) string { return fmt.Sprintf("10.0.%d.%d:1", i/256, i%256) }

func TestClientKey(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.1:443":              "192.0.2.1",
		"[::ffff:192.0.2.1]:443":     "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[fe80::1%eth0]:443":         "fe80::/64",
		"192.0.2.1":                  "192.0.2.1",
		"not an address":             "not an address",
	} {
		assert.Equal(t, want, clientKey(remote), remote)
	}
}
