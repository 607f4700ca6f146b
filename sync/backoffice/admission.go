package backoffice

import (
	"context"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"time"
)

// Admission control on the terminal API (docs/backoffice.md, "Fleet
// run"), in two stages. A batch's body is read first, under a larger
// bound: at most MaxBodies bodies are being read or held at once (a
// memory budget: each is at most wire.MaxBatchBytes), beyond which a
// batch is answered 503 "busy" at once. Then at most MaxIngest batches
// are verified and stored at once on a node: a batch beyond that waits
// for an ingest slot in a short queue (at most MaxQueue batches, each at
// most QueueWait: the slots stay busy between a storm's retries) and
// otherwise is answered 503 "busy", with a Retry-After spread over a
// window so a storm of refused terminals does not come back in step. A
// full queue answers at once: a node never holds a terminal longer than
// QueueWait for a slot. A slow uplink holds only a body place while it
// sends, never an ingest slot. Without admission a reconnect storm
// queues thousands of batches for the CPU and the database pool, and a
// clerk's verification waits behind them (the 10,000-terminal run:
// verify p99 27 s).

// DefaultQueueWait is how long a batch waits for a slot at most.
const DefaultQueueWait = time.Second

// DefaultBusyRetry is the window a busy answer's Retry-After is drawn
// from: 1 s to this many seconds, uniformly.
const DefaultBusyRetry = 4 * time.Second

// TerminalOptions configures Service.Terminals.
type TerminalOptions struct {
	// MaxIngest is the most batches taken at once (0: DefaultMaxIngest
	// of the store; below 0: no limit).
	MaxIngest int
	// MaxQueue is the most batches waiting for a slot (0: twice
	// MaxIngest; below 0: none, a full node refuses at once).
	MaxQueue int
	// QueueWait is how long a batch waits for a slot at most (0:
	// DefaultQueueWait).
	QueueWait time.Duration
	// MaxBodies is the most batch bodies being read or held at once
	// (0: DefaultMaxBodies of the ingest limit; below 0: no limit). Its
	// memory is at most MaxBodies × wire.MaxBatchBytes, twice that while
	// decoded.
	MaxBodies int
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

// DefaultMaxBodies is the body budget for an ingest limit of n: four
// bodies per slot, at least 32 (256 MiB of batches at most).
func DefaultMaxBodies(n int) int { return max(4*n, 32) }

// admission is the body places and ingest slots of one terminal handler.
type admission struct {
	bodies chan struct{} // nil: no limit
	slots  chan struct{} // nil: no limit
	queue  chan struct{} // places to wait for a slot; nil: none
	wait   time.Duration
	retry  time.Duration
	rand   func() float64
	m      *serviceMetrics
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
	if b := o.MaxBodies; b > 0 || b == 0 && n > 0 {
		if b == 0 {
			b = DefaultMaxBodies(n)
		}
		a.bodies = make(chan struct{}, b)
	}
	if n > 0 {
		a.slots = make(chan struct{}, n)
		a.m.admitLimit.Set(float64(n))
		q := o.MaxQueue
		if q == 0 {
			q = 2 * n
		}
		if q > 0 {
			a.queue = make(chan struct{}, q)
		}
	}
	a.wait = o.QueueWait
	if a.wait <= 0 {
		a.wait = DefaultQueueWait
	}
	return a
}

// read takes a body place, at once or not at all (false: the node holds
// as many bodies as it may); leaveBody gives it back.
func (a *admission) read() bool {
	if a.bodies == nil {
		return true
	}
	select {
	case a.bodies <- struct{}{}:
		return true
	default:
		a.m.busy.Inc()
		return false
	}
}

func (a *admission) leaveBody() {
	if a.bodies != nil {
		<-a.bodies
	}
}

// enter takes a slot, waiting in the queue for one at most the queue
// wait (or until ctx ends) when the queue has room; false: the node is
// full.
func (a *admission) enter(ctx context.Context) bool {
	if a.slots == nil {
		a.m.admitted.Inc()
		return true
	}
	select {
	case a.slots <- struct{}{}:
		return a.admit()
	default:
	}
	select {
	case a.queue <- struct{}{}: // nil queue: never
	default:
		a.m.busy.Inc()
		return false
	}
	a.m.waiting.Inc()
	defer func() { <-a.queue; a.m.waiting.Dec() }()
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return a.admit()
	case <-t.C:
	case <-ctx.Done():
	}
	a.m.busy.Inc()
	return false
}

func (a *admission) admit() bool {
	a.m.admitted.Inc()
	a.m.inflight.Inc()
	return true
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
	problem(w, http.StatusServiceUnavailable, "busy", "this node is taking as many batches as it can; send them again after Retry-After")
}
