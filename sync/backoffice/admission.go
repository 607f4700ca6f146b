package backoffice

import (
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"time"
)

// Admission control on the terminal API (docs/backoffice.md, "Fleet
// run"): at most MaxIngest batches are read, verified and stored at once
// on a node; a batch beyond that is answered 503 "busy" at once, before
// its body is read, with a Retry-After spread over a window so a storm of
// refused terminals does not come back in step. Without it a reconnect
// storm queues thousands of batches for the CPU and the database pool,
// and a clerk's verification waits behind them (the 10,000-terminal run:
// verify p99 27 s).

// DefaultBusyRetry is the window a busy answer's Retry-After is drawn
// from: 1 s to this many seconds, uniformly.
const DefaultBusyRetry = 4 * time.Second

// TerminalOptions configures Service.Terminals.
type TerminalOptions struct {
	// MaxIngest is the most batches taken at once (0: DefaultMaxIngest
	// of the store; below 0: no limit).
	MaxIngest int
	// BusyRetry is the Retry-After window of a busy answer (0:
	// DefaultBusyRetry; at least 1 s).
	BusyRetry time.Duration
	// Rand returns a number in [0, 1) for the Retry-After (default
	// math/rand).
	Rand func() float64
}

// DefaultMaxIngest is the admission limit for a store: as many batches as
// the store has connections for ingest (a batch holds one connection
// while it stores), and at least GOMAXPROCS (a batch spends most of its
// time verifying signatures on a core).
func DefaultMaxIngest(st Store) int {
	n := runtime.GOMAXPROCS(0)
	if p, ok := st.(poolStore); ok {
		n = max(n, int(p.poolStats().Max))
	}
	return max(n, 1)
}

// admission is the ingest slots of one terminal handler.
type admission struct {
	slots chan struct{} // nil: no limit
	retry time.Duration
	rand  func() float64
	m     *serviceMetrics
}

func newAdmission(s *Service, o TerminalOptions) *admission {
	a := &admission{retry: o.BusyRetry, rand: o.Rand, m: s.metrics}
	if a.retry < time.Second {
		a.retry = DefaultBusyRetry
	}
	if a.rand == nil {
		a.rand = rand.Float64
	}
	n := o.MaxIngest
	if n == 0 {
		n = DefaultMaxIngest(s.store)
	}
	if n > 0 {
		a.slots = make(chan struct{}, n)
		a.m.admitLimit.Set(float64(n))
	}
	return a
}

// enter takes a slot without waiting; false: the node is full.
func (a *admission) enter() bool {
	if a.slots == nil {
		a.m.admitted.Inc()
		return true
	}
	select {
	case a.slots <- struct{}{}:
		a.m.admitted.Inc()
		a.m.inflight.Inc()
		return true
	default:
		a.m.busy.Inc()
		return false
	}
}

func (a *admission) leave() {
	if a.slots != nil {
		<-a.slots
		a.m.inflight.Dec()
	}
}

// retryAfter is a busy answer's Retry-After in whole seconds, uniform
// over 1 … the window.
func (a *admission) retryAfter() int {
	w := int(a.retry / time.Second)
	return 1 + min(int(a.rand()*float64(w)), w-1)
}

// busy answers a batch the node has no slot for.
func (a *admission) busy(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(a.retryAfter()))
	w.Header().Set("Connection", "close") // the terminal may find a less busy node
	problem(w, http.StatusServiceUnavailable, "busy", "this node is taking as many batches as it can; send them again after Retry-After")
}
