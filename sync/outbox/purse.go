package outbox

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"kpe-agent/sync/record"
)

// The purse journal and the request book (docs/ewallet.md): an e-wallet
// transaction in progress, one entry per card serial, and the outcome of
// every purse request by its request id, in the outbox's own database so
// that the entry, the outcome and the record that ends a transaction
// change in one transaction.
//
// The agent writes the journal entry (bbolt commits are fsynced) before
// the SAM's PURSE MAC and the card's DEBIT or CREDIT, and removes it in the
// transaction that appends the payment or top-up record and marks the
// request done (AppendPurse), or marks it not done (SettlePurseNotDone). A
// process killed at any point leaves the entry or the record, never
// neither; a request id is answered from the book for as long as the book
// keeps it, so a retry never debits the card a second time. Entries hold
// no personal data beyond the card serial and the merchant's reference.

var (
	bPurseJournal  = []byte("purse-journal")  // card serial (8) → PurseJournal
	bPurseRequests = []byte("purse-requests") // request id (16) → PurseOutcome
)

// PurseStep is how far a purse transaction got.
type PurseStep uint8

// Purse steps.
const (
	// PurseStarted: the request was accepted and journaled; the SAM may
	// have issued its MAC (SAMTxn is set once it did), the card has not
	// been sent the command yet.
	PurseStarted PurseStep = 1
	// PurseSent: DEBIT or CREDIT may have reached the card: done or not
	// done is known only from the card's answer or its log.
	PurseSent PurseStep = 2
	// PurseDone: the card's proof verified; only the record is missing.
	PurseDone PurseStep = 3
)

func (s PurseStep) String() string {
	switch s {
	case PurseStarted:
		return "started"
	case PurseSent:
		return "sent"
	case PurseDone:
		return "done"
	}
	return fmt.Sprintf("step-%d", uint8(s))
}

// PurseJournal is one purse transaction in progress on one card.
type PurseJournal struct {
	Serial    [8]byte
	Request   [16]byte // the request id (record.Purse.Request)
	Kind      record.PurseKind
	Step      PurseStep
	Amount    uint32
	PTC       uint32  // the card's PTC before the transaction
	Balance   uint32  // the card's balance before the transaction
	SAMSerial [8]byte // set with SAMTxn
	SAMTxn    uint32  // the SAM's purse transaction number, 0 before PURSE MAC answered
	TxnTime   int64   // the time in the SAM's MAC, Unix milliseconds
	Merchant  string
	Reference string
	Time      time.Time // of the last step, milliseconds
}

// PurseStatus is a request's outcome.
type PurseStatus uint8

// Request outcomes.
const (
	// PurseRequestPending: journaled, not settled yet (a tear: the card
	// must come back, or the back office reconciles it).
	PurseRequestPending PurseStatus = 1
	// PurseRequestDone: the card took it; RecordID names the record.
	PurseRequestDone PurseStatus = 2
	// PurseRequestNotDone: the card did not take it (refused, or not in
	// its log after a tear); Reason says why.
	PurseRequestNotDone PurseStatus = 3
)

func (s PurseStatus) String() string {
	switch s {
	case PurseRequestPending:
		return "pending"
	case PurseRequestDone:
		return "done"
	case PurseRequestNotDone:
		return "not-done"
	}
	return fmt.Sprintf("status-%d", uint8(s))
}

// PurseOutcome is what the request book says of a request id.
type PurseOutcome struct {
	Request  [16]byte
	Status   PurseStatus
	Serial   [8]byte
	Kind     record.PurseKind
	Amount   uint32
	RecordID [16]byte // PurseRequestDone: the record's id
	Code     string   // PurseRequestDone: the record's printed code
	Balance  uint32   // PurseRequestDone: the card's balance after it
	Reason   string   // PurseRequestNotDone: a reason code
	// RefHash is SHA-256 of the request's merchant reference (PurseRefHash),
	// so that a key sent again with other details is told apart; zero in
	// outcomes stored before encoding version 2 (unknown).
	RefHash [32]byte
	Time    time.Time
}

// PurseRefHash is the request book's digest of a merchant reference.
func PurseRefHash(reference string) [32]byte { return sha256.Sum256([]byte(reference)) }

// ErrPurseJournal: a purse journal entry or outcome that cannot be decoded
// or stored.
var ErrPurseJournal = errors.New("outbox: bad purse journal entry")

// ErrPurseBusy: the card already has a purse transaction in progress, or
// the request id is already known; nothing was stored.
var ErrPurseBusy = errors.New("outbox: a purse transaction is already in progress")

const purseJournalVersion = 1

// Encoding versions of a request book outcome: 1 without RefHash (still
// read), 2 with it.
const (
	purseOutcomeV1 = 1
	purseOutcomeV2 = 2
)

func putText(b []byte, s string) []byte { return append(append(b, byte(len(s))), s...) }

func (j PurseJournal) encode() []byte {
	b := make([]byte, 0, 80+len(j.Merchant)+len(j.Reference))
	b = append(b, purseJournalVersion, byte(j.Step), byte(j.Kind))
	b = append(b, j.Request[:]...)
	b = binary.BigEndian.AppendUint32(b, j.Amount)
	b = binary.BigEndian.AppendUint32(b, j.PTC)
	b = binary.BigEndian.AppendUint32(b, j.Balance)
	b = append(b, j.SAMSerial[:]...)
	b = binary.BigEndian.AppendUint32(b, j.SAMTxn)
	b = binary.BigEndian.AppendUint64(b, uint64(j.TxnTime))
	b = binary.BigEndian.AppendUint64(b, uint64(j.Time.UnixMilli()))
	b = putText(b, j.Merchant)
	return putText(b, j.Reference)
}

// reader takes fixed fields off a byte slice; short input sets bad.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || len(r.b) < n {
		r.bad = true
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u32() uint32 { return binary.BigEndian.Uint32(r.take(4)) }
func (r *reader) u64() uint64 { return binary.BigEndian.Uint64(r.take(8)) }
func (r *reader) text() string {
	n := int(r.take(1)[0])
	return string(r.take(n))
}

func decodePurseJournal(serial, b []byte) (PurseJournal, error) {
	r := &reader{b: b}
	head := r.take(3)
	j := PurseJournal{Step: PurseStep(head[1]), Kind: record.PurseKind(head[2])}
	j.Request = [16]byte(r.take(16))
	j.Amount, j.PTC, j.Balance = r.u32(), r.u32(), r.u32()
	j.SAMSerial = [8]byte(r.take(8))
	j.SAMTxn = r.u32()
	j.TxnTime = int64(r.u64())
	j.Time = time.UnixMilli(int64(r.u64()))
	j.Merchant, j.Reference = r.text(), r.text()
	if r.bad || len(r.b) != 0 || len(serial) != 8 || head[0] != purseJournalVersion || !validStep(j.Step) || !j.Kind.Valid() {
		return PurseJournal{}, fmt.Errorf("%w: %d bytes", ErrPurseJournal, len(b))
	}
	j.Serial = [8]byte(serial)
	return j, nil
}

func validStep(s PurseStep) bool { return s >= PurseStarted && s <= PurseDone }

func (o PurseOutcome) encode() []byte {
	b := make([]byte, 0, 112+len(o.Code)+len(o.Reason))
	b = append(b, purseOutcomeV2, byte(o.Status), byte(o.Kind))
	b = append(b, o.Serial[:]...)
	b = binary.BigEndian.AppendUint32(b, o.Amount)
	b = append(b, o.RecordID[:]...)
	b = binary.BigEndian.AppendUint32(b, o.Balance)
	b = binary.BigEndian.AppendUint64(b, uint64(o.Time.UnixMilli()))
	b = putText(b, o.Code)
	b = putText(b, o.Reason)
	return append(b, o.RefHash[:]...)
}

func decodePurseOutcome(id, b []byte) (PurseOutcome, error) {
	r := &reader{b: b}
	head := r.take(3)
	o := PurseOutcome{Status: PurseStatus(head[1]), Kind: record.PurseKind(head[2])}
	o.Serial = [8]byte(r.take(8))
	o.Amount = r.u32()
	o.RecordID = [16]byte(r.take(16))
	o.Balance = r.u32()
	o.Time = time.UnixMilli(int64(r.u64()))
	o.Code, o.Reason = r.text(), r.text()
	if head[0] == purseOutcomeV2 {
		o.RefHash = [32]byte(r.take(32))
	}
	if r.bad || len(r.b) != 0 || len(id) != 16 || (head[0] != purseOutcomeV1 && head[0] != purseOutcomeV2) ||
		o.Status < PurseRequestPending || o.Status > PurseRequestNotDone || !o.Kind.Valid() {
		return PurseOutcome{}, fmt.Errorf("%w: outcome of %d bytes", ErrPurseJournal, len(b))
	}
	o.Request = [16]byte(id)
	return o, nil
}

func (j PurseJournal) check() error {
	switch {
	case !validStep(j.Step):
		return fmt.Errorf("%w: step %d", ErrPurseJournal, j.Step)
	case !j.Kind.Valid():
		return fmt.Errorf("%w: kind %d", ErrPurseJournal, j.Kind)
	case j.Request == [16]byte{}:
		return fmt.Errorf("%w: no request id", ErrPurseJournal)
	case j.Amount == 0:
		return fmt.Errorf("%w: amount 0", ErrPurseJournal)
	case len(j.Merchant) > 255 || len(j.Reference) > 255:
		return fmt.Errorf("%w: text too long", ErrPurseJournal)
	}
	return nil
}

// StartPurse journals a new purse transaction: the card's entry and the
// request, pending, in one transaction. ErrPurseBusy when the card has an
// entry already (settle it first) or the request id is known (answer from
// PurseRequest instead). When it returns nil both are on disk.
func (ob *Outbox) StartPurse(j PurseJournal) error {
	if err := j.check(); err != nil {
		return err
	}
	if j.Time.IsZero() {
		j.Time = ob.o.Now()
	}
	return ob.db.Update(func(tx *bolt.Tx) error {
		jb, err := tx.CreateBucketIfNotExists(bPurseJournal)
		if err != nil {
			return err
		}
		rb, err := tx.CreateBucketIfNotExists(bPurseRequests)
		if err != nil {
			return err
		}
		if jb.Get(j.Serial[:]) != nil {
			return fmt.Errorf("%w: card %X", ErrPurseBusy, j.Serial)
		}
		if rb.Get(j.Request[:]) != nil {
			return fmt.Errorf("%w: request %X is known", ErrPurseBusy, j.Request)
		}
		if err := jb.Put(j.Serial[:], j.encode()); err != nil {
			return err
		}
		o := PurseOutcome{Request: j.Request, Status: PurseRequestPending, Serial: j.Serial, Kind: j.Kind, Amount: j.Amount,
			RefHash: PurseRefHash(j.Reference), Time: j.Time}
		return rb.Put(j.Request[:], o.encode())
	})
}

// UpdatePurse replaces the card's journal entry (a later step, the SAM's
// transaction number); the entry must exist with the same request id.
func (ob *Outbox) UpdatePurse(j PurseJournal) error {
	if err := j.check(); err != nil {
		return err
	}
	if j.Time.IsZero() {
		j.Time = ob.o.Now()
	}
	return ob.db.Update(func(tx *bolt.Tx) error {
		jb := tx.Bucket(bPurseJournal)
		if jb == nil {
			return fmt.Errorf("%w: card %X has no entry", ErrPurseJournal, j.Serial)
		}
		cur := jb.Get(j.Serial[:])
		if cur == nil {
			return fmt.Errorf("%w: card %X has no entry", ErrPurseJournal, j.Serial)
		}
		old, err := decodePurseJournal(j.Serial[:], cur)
		if err != nil {
			return err
		}
		if old.Request != j.Request {
			return fmt.Errorf("%w: card %X has another request in progress", ErrPurseBusy, j.Serial)
		}
		return jb.Put(j.Serial[:], j.encode())
	})
}

// PurseJournalOf returns the card's journal entry, nil when it has none.
func (ob *Outbox) PurseJournalOf(serial [8]byte) (*PurseJournal, error) {
	return getDecoded(ob.db, bPurseJournal, serial[:], decodePurseJournal)
}

// PurseJournals lists every purse journal entry (kpectl, tests), by serial.
func (ob *Outbox) PurseJournals() ([]PurseJournal, error) {
	return listDecoded(ob.db, bPurseJournal, decodePurseJournal)
}

// PurseRequest returns what the book says of a request id, nil when it
// does not know it.
func (ob *Outbox) PurseRequest(id [16]byte) (*PurseOutcome, error) {
	return getDecoded(ob.db, bPurseRequests, id[:], decodePurseOutcome)
}

// AppendPurse is Append for a payment or top-up record: the same
// transaction removes the card's journal entry and marks the record's
// request done with the record's id and code, so that the entry goes and
// the request is answered exactly when the record is stored. The record
// is stored past the outbox's count and age limits (docs/outbox.md): the
// money already moved on the card, and its record is what the back office
// settles it by; callers refuse a new transaction beforehand (Room).
func (ob *Outbox) AppendPurse(r *record.Record, code string) (uint64, error) {
	if r.Purse == nil || len(r.CardSerial) != 8 {
		return 0, fmt.Errorf("%w: not a purse record of a KPE", ErrNotRecorded)
	}
	serial := [8]byte(r.CardSerial)
	o := PurseOutcome{Request: r.Purse.Request, Status: PurseRequestDone, Serial: serial, Kind: r.Purse.Kind,
		Amount: r.Purse.Amount, RecordID: r.ID, Code: code, Balance: r.Purse.BalanceAfter, RefHash: PurseRefHash(r.Purse.Reference), Time: ob.o.Now()}
	return ob.appendRecord(r, func(tx *bolt.Tx) error {
		if b := tx.Bucket(bPurseJournal); b != nil {
			if v := b.Get(serial[:]); v != nil {
				if j, err := decodePurseJournal(serial[:], v); err == nil && j.Request == r.Purse.Request {
					if err := b.Delete(serial[:]); err != nil {
						return err
					}
				}
			}
		}
		rb, err := tx.CreateBucketIfNotExists(bPurseRequests)
		if err != nil {
			return err
		}
		return rb.Put(o.Request[:], o.encode())
	}, false)
}

// SettlePurseNotDone ends the card's journal entry as not done (the card
// refused the command, or its log shows it never took it): the entry goes
// and its request is marked not done with reason, in one transaction.
func (ob *Outbox) SettlePurseNotDone(serial [8]byte, request [16]byte, reason string) error {
	if len(reason) > 255 {
		return fmt.Errorf("%w: reason too long", ErrPurseJournal)
	}
	return ob.db.Update(func(tx *bolt.Tx) error {
		var j PurseJournal
		if b := tx.Bucket(bPurseJournal); b != nil {
			if v := b.Get(serial[:]); v != nil {
				var err error
				if j, err = decodePurseJournal(serial[:], v); err != nil {
					return err
				}
				if j.Request != request {
					return fmt.Errorf("%w: card %X has another request in progress", ErrPurseBusy, serial)
				}
				if err := b.Delete(serial[:]); err != nil {
					return err
				}
			}
		}
		rb, err := tx.CreateBucketIfNotExists(bPurseRequests)
		if err != nil {
			return err
		}
		o := PurseOutcome{Request: request, Status: PurseRequestNotDone, Serial: serial, Kind: j.Kind, Amount: j.Amount, Reason: reason, Time: ob.o.Now()}
		if j.Request == request {
			o.RefHash = PurseRefHash(j.Reference)
		}
		if v := rb.Get(request[:]); v != nil {
			prev, err := decodePurseOutcome(request[:], v)
			if err != nil {
				return err
			}
			if prev.Status == PurseRequestDone {
				return fmt.Errorf("%w: request %X is done", ErrPurseBusy, request)
			}
			o.Kind, o.Amount = prev.Kind, prev.Amount
			if o.RefHash == ([32]byte{}) {
				o.RefHash = prev.RefHash
			}
		}
		if !o.Kind.Valid() {
			return fmt.Errorf("%w: request %X is unknown", ErrPurseJournal, request)
		}
		return rb.Put(request[:], o.encode())
	})
}

// PrunePurseBook forgets the settled request outcomes older than the
// outbox's retention (Options.Retention: outbox.retention, the horizon of
// acknowledged records too), by the outbox's clock; the agent runs it in
// its retention sweep. A key older than that is no longer known: sent
// again, it is a new payment (docs/ewallet.md).
func (ob *Outbox) PrunePurseBook() (int, error) {
	return ob.PrunePurseRequests(ob.o.Now().Add(-ob.o.Retention))
}

// PrunePurseRequests forgets the outcomes of settled requests older than
// before; pending ones stay. It returns how many went.
func (ob *Outbox) PrunePurseRequests(before time.Time) (int, error) {
	n := 0
	err := ob.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bPurseRequests)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			o, err := decodePurseOutcome(k, v)
			if err != nil || o.Status == PurseRequestPending || !o.Time.Before(before) {
				continue
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
