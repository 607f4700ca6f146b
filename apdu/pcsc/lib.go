package pcsc

import (
	"sync"

	"github.com/ebfe/scard"
)

// libMu orders the PC/SC calls that change libpcsclite's client-side
// tables against SCardDisconnect.
//
// pcsc-lite's client library (1.9.9 here) looks a handle up in the table
// of every context when it disconnects, and part of that walk runs
// without the library's own lock; a context released, established or
// connected in another thread at that moment can be freed or moved under
// it. It crashed our tests twice in many runs (SIGSEGV in SCardDisconnect
// while other cards' workers released their contexts). So Disconnect is
// exclusive, and the calls that change the tables share the lock among
// themselves. Transmit and the other card calls do not take it.
var libMu sync.RWMutex

func establish() (*scard.Context, error) {
	libMu.RLock()
	defer libMu.RUnlock()
	return scard.EstablishContext()
}

func release(c *scard.Context) error {
	libMu.RLock()
	defer libMu.RUnlock()
	return c.Release()
}

func connect(c *scard.Context, reader string) (*scard.Card, error) {
	libMu.RLock()
	defer libMu.RUnlock()
	return c.Connect(reader, scard.ShareShared, scard.ProtocolAny)
}

func disconnect(sc *scard.Card) error {
	libMu.Lock()
	defer libMu.Unlock()
	return sc.Disconnect(scard.LeaveCard)
}
