package cardsim

import (
	"bytes"
	"sync"
)

// Applet is what every lab applet shares: a name, an ATR, a Frontend, a
// lock that serialises commands, and a hook that clears the applet's
// volatile state on reset and power changes. Embed it and set Handle and
// OnReset; both run with the lock held.
type Applet struct {
	Label   string
	Answer  []byte // the ATR
	FE      Frontend
	Handle  Handler
	OnReset func()
	// Intercept, when set, sees every raw command first (with the lock
	// held); handled commands bypass the Frontend. Applets use it for what
	// the Frontend cannot do for them, such as command chaining under
	// secure messaging, where every segment is protected on its own.
	Intercept func(raw []byte) (rsp []byte, handled bool)

	mu sync.Mutex
}

// Name implements Named.
func (a *Applet) Name() string { return a.Label }

// ATR implements Card.
func (a *Applet) ATR() []byte { return bytes.Clone(a.Answer) }

// PowerOn implements Card.
func (a *Applet) PowerOn() { a.Reset() }

// PowerOff implements Card.
func (a *Applet) PowerOff() { a.Reset() }

// Reset implements Card: pending chains and GET RESPONSE data are dropped
// and OnReset runs.
func (a *Applet) Reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.FE.Reset()
	if a.OnReset != nil {
		a.OnReset()
	}
}

// Process implements Card.
func (a *Applet) Process(raw []byte) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.Intercept != nil {
		if rsp, ok := a.Intercept(raw); ok {
			return rsp
		}
	}
	return a.FE.Process(raw, a.Handle)
}
