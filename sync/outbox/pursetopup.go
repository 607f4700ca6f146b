package outbox

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ErrNotNotDone: ForgetPurseNotDone was asked about a request the book
// does not hold as not done.
var ErrNotNotDone = errors.New("outbox: the purse request is not settled not done")

// ForgetPurseNotDone drops a request the book holds as not done, so that
// the same request id can be started again (StartPurse). A top-up's
// request id is its authorisation's id: a credit that never reached the
// card, or that the card's log showed it never took, may be tried again
// with the same authorisation while the card stays at its PTC. The card's
// PTC, which the SAM's MAC covers, keeps it from being credited twice.
// It refuses (ErrNotNotDone) a request that is unknown, pending or done,
// and one whose card has a journal entry for it.
func (ob *Outbox) ForgetPurseNotDone(request [16]byte) error {
	return ob.db.Update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bPurseRequests)
		if rb == nil {
			return ErrNotNotDone
		}
		v := rb.Get(request[:])
		if v == nil {
			return ErrNotNotDone
		}
		o, err := decodePurseOutcome(request[:], v)
		if err != nil {
			return err
		}
		if o.Status != PurseRequestNotDone {
			return fmt.Errorf("%w: %s", ErrNotNotDone, o.Status)
		}
		if jb := tx.Bucket(bPurseJournal); jb != nil {
			if jv := jb.Get(o.Serial[:]); jv != nil {
				j, err := decodePurseJournal(o.Serial[:], jv)
				if err != nil || j.Request == request {
					return fmt.Errorf("%w: the card's journal holds it", ErrNotNotDone)
				}
			}
		}
		return rb.Delete(request[:])
	})
}
