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
	return a.FE.Process(raw, a.Handle)
}
