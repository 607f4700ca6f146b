package backoffice

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// verifyLimiter limits verifications per client address and in total
// (token buckets, golang.org/x/time/rate). It tracks at most max
// addresses: an address idle long enough for its bucket to be full again
// is forgotten (a new bucket is the same), and while max busy addresses
// are tracked, new ones share one overflow bucket.
type verifyLimiter struct {
	mu        sync.Mutex
	per       Limit
	idle      time.Duration // a bucket unused this long is full again
	total     *rate.Limiter
	totalHit  bool // the total limit refused the last request it saw
	clients   map[string]*clientBucket
	overflow  *clientBucket
	max       int
	lastSweep time.Time
	log       *slog.Logger
}

type clientBucket struct {
	lim  *rate.Limiter
	last time.Time // of the last request
	hit  bool      // the last request was refused (logged once per run of refusals)
}

func newVerifyLimiter(per, total Limit, max int, log *slog.Logger) *verifyLimiter {
	return &verifyLimiter{
		per:      per,
		idle:     time.Duration(float64(per.Burst) / per.Rate * float64(time.Second)),
		total:    rate.NewLimiter(rate.Limit(total.Rate), total.Burst),
		clients:  map[string]*clientBucket{},
		overflow: &clientBucket{lim: rate.NewLimiter(rate.Limit(per.Rate), per.Burst)},
		max:      max,
		log:      log,
	}
}

// clientKey is the address a client is limited by: its IP address, or
// for IPv6 its /64 (one host usually has a whole /64).
func clientKey(remote string) string {
	var ip netip.Addr
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		ip = ap.Addr()
	} else if a, err := netip.ParseAddr(remote); err == nil {
		ip = a
	} else {
		return remote
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// allow takes one verification for the client at remote (host:port) at
// now; when it may not, it says how long until it may.
func (v *verifyLimiter) allow(remote string, now time.Time) (time.Duration, bool) {
	key := clientKey(remote)
	v.mu.Lock()
	defer v.mu.Unlock()
	if now.Sub(v.lastSweep) >= v.idle {
		v.sweep(now)
	}
	b := v.clients[key]
	if b == nil {
		if len(v.clients) >= v.max {
			v.sweep(now)
		}
		if len(v.clients) < v.max {
			b = &clientBucket{lim: rate.NewLimiter(rate.Limit(v.per.Rate), v.per.Burst)}
			v.clients[key] = b
		} else {
			b = v.overflow
			key = "overflow"
		}
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		if !b.hit {
			v.log.Warn("staff: verification rate limit reached for a client", "client", key, "limit_per_s", v.per.Rate, "burst", v.per.Burst)
		}
		b.hit = true
		return wait, false
	}
	b.hit = false
	g := v.total.ReserveN(now, 1)
	if wait := g.DelayFrom(now); wait > 0 {
		g.CancelAt(now)
		r.CancelAt(now)
		if !v.totalHit {
			v.log.Warn("staff: total verification rate limit reached", "limit_per_s", float64(v.total.Limit()), "burst", v.total.Burst())
		}
		v.totalHit = true
		return wait, false
	}
	v.totalHit = false
	return 0, true
}

// sweep forgets the clients idle long enough for their buckets to be
// full again.
func (v *verifyLimiter) sweep(now time.Time) {
	for k, b := range v.clients {
		if now.Sub(b.last) >= v.idle {
			delete(v.clients, k)
		}
	}
	v.lastSweep = now
}

// setRetryAfter sets Retry-After to wait in whole seconds, rounded up and
// at least 1, and returns them.
func setRetryAfter(w http.ResponseWriter, wait time.Duration) int {
	secs := max(int((wait+time.Second-1)/time.Second), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return secs
}
