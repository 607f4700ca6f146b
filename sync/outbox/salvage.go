package outbox

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"slices"

	"kpe-agent/sync/record"
)

// Salvage recovers every decodable record from a damaged outbox file
// without trusting its structure: it scans the raw bytes for the record
// encoding's magic and decodes what follows (each record is
// self-delimiting and strictly checked). Records are returned once each
// (by hash), ordered by SAM serial and counter. It reads the file only.
func Salvage(path string) ([]*record.Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("outbox: salvage: %w", err)
	}
	return SalvageBytes(b), nil
}

// SalvageBytes is Salvage over bytes in memory. It finds records of every
// encoding version Decode reads (1 and 2), and tells them apart by
// record.Hash.
func SalvageBytes(b []byte) []*record.Record {
	magic := []byte{'K', 'P', 'R'}
	seen := map[[32]byte]bool{}
	var out []*record.Record
	for off := 0; off < len(b); {
		i := bytes.Index(b[off:], magic)
		if i < 0 {
			break
		}
		at := off + i
		r, n, err := record.DecodePrefix(b[at:])
		if err != nil {
			off = at + 1
			continue
		}
		if h, err := r.Hash(); err == nil && !seen[h] {
			seen[h] = true
			out = append(out, r)
		}
		off = at + n
	}
	slices.SortStableFunc(out, func(a, b *record.Record) int {
		if c := bytes.Compare(a.SAMSerial[:], b.SAMSerial[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.Counter, b.Counter)
	})
	return out
}
