package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"kpe-agent/sync/record"
)

// The renewal journal (docs/renewal.md): a card data renewal in progress,
// one entry per card serial, in the outbox's own database so that the
// entry and the renewal record that ends it change in one transaction.
// The agent writes the entry (bbolt commits are fsynced) before its first
// command that changes the card, updates it after COMMIT, and removes it
// in the transaction that appends the renewal record (AppendRenewal): a
// process killed at any point leaves the entry or the record, never
// neither. An entry holds no personal data: the card's serial, the update
// id and sequence, and two SOD hashes.

var bJournal = []byte("renewal-journal") // card serial (8) → journal entry

// JournalStep is how far a renewal got.
type JournalStep uint8

// Journal steps.
const (
	// JournalOffered: the offer was verified and the holder agreed;
	// nothing was sent to the card yet.
	JournalOffered JournalStep = 1
	// JournalWriting: the update is being written (BEGIN may have reached
	// the card); the card holds the old data until COMMIT.
	JournalWriting JournalStep = 2
	// JournalCommitUnknown: COMMIT was sent and its answer lost (or the
	// read-back failed): the card holds the old or the new data.
	JournalCommitUnknown JournalStep = 3
	// JournalVerified: the card was read back with the new data; only the
	// renewal record is missing.
	JournalVerified JournalStep = 4
)

func (s JournalStep) String() string {
	switch s {
	case JournalOffered:
		return "offered"
	case JournalWriting:
		return "writing"
	case JournalCommitUnknown:
		return "committed-unknown"
	case JournalVerified:
		return "verified"
	}
	return fmt.Sprintf("step-%d", uint8(s))
}

// Journal is one renewal in progress.
type Journal struct {
	Serial   [8]byte
	UpdateID [16]byte
	Sequence uint32
	OldSOD   [32]byte // SOD hash of the card before the update
	NewSOD   [32]byte // SOD hash after it
	Step     JournalStep
	Time     time.Time // of the last step, milliseconds
}

// ErrJournal: a journal entry that cannot be decoded or stored.
var ErrJournal = errors.New("outbox: bad renewal journal entry")

// journal entry: version 1 ‖ step ‖ update id (16) ‖ sequence (4) ‖ old (32) ‖ new (32) ‖ time ms (8)
const journalLen = 1 + 1 + 16 + 4 + 32 + 32 + 8

func (j Journal) encode() []byte {
	b := make([]byte, 0, journalLen)
	b = append(b, 1, byte(j.Step))
	b = append(b, j.UpdateID[:]...)
	b = binary.BigEndian.AppendUint32(b, j.Sequence)
	b = append(b, j.OldSOD[:]...)
	b = append(b, j.NewSOD[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(j.Time.UnixMilli()))
}

func decodeJournal(serial, b []byte) (Journal, error) {
	if len(serial) != 8 || len(b) != journalLen || b[0] != 1 || b[1] < byte(JournalOffered) || b[1] > byte(JournalVerified) {
		return Journal{}, fmt.Errorf("%w: %d bytes", ErrJournal, len(b))
	}
	j := Journal{Serial: [8]byte(serial), Step: JournalStep(b[1])}
	p := b[2:]
	j.UpdateID = [16]byte(p[:16])
	j.Sequence = binary.BigEndian.Uint32(p[16:20])
	j.OldSOD = [32]byte(p[20:52])
	j.NewSOD = [32]byte(p[52:84])
	j.Time = time.UnixMilli(int64(binary.BigEndian.Uint64(p[84:92])))
	return j, nil
}

// PutJournal stores (or replaces) the card's journal entry; when it
// returns nil the entry is on disk. A zero Time takes the outbox's clock.
func (ob *Outbox) PutJournal(j Journal) error {
	if j.Step < JournalOffered || j.Step > JournalVerified {
		return fmt.Errorf("%w: step %d", ErrJournal, j.Step)
	}
	if j.Time.IsZero() {
		j.Time = ob.o.Now()
	}
	return ob.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bJournal)
		if err != nil {
			return err
		}
		return b.Put(j.Serial[:], j.encode())
	})
}

// Journal returns the card's journal entry, nil when it has none.
func (ob *Outbox) Journal(serial [8]byte) (*Journal, error) {
	return getDecoded(ob.db, bJournal, serial[:], decodeJournal)
}

// Journals lists every journal entry (kpectl, tests), by serial.
func (ob *Outbox) Journals() ([]Journal, error) {
	return listDecoded(ob.db, bJournal, decodeJournal)
}

// getDecoded reads key from bucket and decodes it; nil when the bucket or
// the key is not there.
func getDecoded[T any](db *bolt.DB, bucket, key []byte, decode func(k, v []byte) (T, error)) (*T, error) {
	var out *T
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		v := b.Get(key)
		if v == nil {
			return nil
		}
		x, err := decode(key, v)
		if err != nil {
			return err
		}
		out = &x
		return nil
	})
	return out, err
}

// listDecoded decodes every entry of bucket, in key order (none when the
// bucket is not there).
func listDecoded[T any](db *bolt.DB, bucket []byte, decode func(k, v []byte) (T, error)) ([]T, error) {
	var out []T
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			x, err := decode(k, v)
			if err != nil {
				return err
			}
			out = append(out, x)
			return nil
		})
	})
	return out, err
}

// DeleteJournal removes the card's journal entry (none: no error).
func (ob *Outbox) DeleteJournal(serial [8]byte) error {
	return ob.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bJournal)
		if b == nil {
			return nil
		}
		return b.Delete(serial[:])
	})
}

// AppendRenewal is Append for the record of a renewal (service renewal):
// the same transaction removes the journal entry of the record's card, so
// that the entry goes exactly when the record is stored.
func (ob *Outbox) AppendRenewal(r *record.Record) (uint64, error) {
	if r.Service != record.ServiceRenewal || r.Renewal == nil || len(r.CardSerial) != 8 {
		return 0, fmt.Errorf("%w: not a renewal record of a KPE", ErrNotRecorded)
	}
	serial := [8]byte(r.CardSerial)
	return ob.appendWith(r, func(tx *bolt.Tx) error {
		if b := tx.Bucket(bJournal); b != nil {
			return b.Delete(serial[:])
		}
		return nil
	})
}
