package backoffice

import (
	"strings"
	"testing"
	"time"

	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// The one rule binding sender, SAM and record, case by case.
func TestBindRecord(t *testing.T) {
	skew := DefaultCertificateSkew
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	until := from.AddDate(3, 0, 0)
	revokedAt := from.AddDate(1, 0, 0)
	valid := &samKey{notBefore: from, notAfter: until}
	revoked := &samKey{notBefore: from, notAfter: until, revoked: true, revokedAt: revokedAt}
	mid := from.AddDate(0, 6, 0)
	t01, t02 := Identity{Terminal: "t-01"}, Identity{Terminal: "t-02"}
	for _, c := range []struct {
		name     string
		peer     Identity
		terminal string // the record's
		sam      *samKey
		at       time.Time
		want     string
	}{
		{"matching terminal", t01, "t-01", valid, mid, ""},
		{"other terminal", t02, "t-01", valid, mid, wire.ReasonTerminal},
		{"empty common name", Identity{}, "t-01", valid, mid, wire.ReasonTerminal},
		{"empty common name, empty record terminal", Identity{}, "", valid, mid, wire.ReasonTerminal},
		{"identity a record cannot carry", Identity{Terminal: "t-01\n"}, "t-01\n", valid, mid, wire.ReasonTerminal},
		{"identity too long", Identity{Terminal: strings.Repeat("t", 65)}, strings.Repeat("t", 65), valid, mid, wire.ReasonTerminal},
		{"plaintext allowed: unbound", Identity{Unbound: true}, "t-02", valid, mid, ""},
		{"plaintext allowed, unknown SAM", Identity{Unbound: true}, "t-02", nil, mid, wire.ReasonUnknownSAM},
		{"unknown SAM", t01, "t-01", nil, mid, wire.ReasonUnknownSAM},
		{"other terminal and unknown SAM: the terminal first", t02, "t-01", nil, mid, wire.ReasonTerminal},
		{"signed before validity, beyond the allowance", t01, "t-01", valid, from.Add(-skew - time.Millisecond), wire.ReasonSAMNotYetValid},
		{"signed before validity, within the allowance", t01, "t-01", valid, from.Add(-skew), ""},
		{"signed after expiry, within the allowance", t01, "t-01", valid, until.Add(skew), ""},
		{"signed after expiry, beyond the allowance", t01, "t-01", valid, until.Add(skew + time.Millisecond), wire.ReasonSAMExpired},
		{"signed before the revocation", t01, "t-01", revoked, revokedAt.Add(-time.Millisecond), ""},
		{"signed at the revocation", t01, "t-01", revoked, revokedAt, wire.ReasonRevoked},
		{"signed after the revocation", t01, "t-01", revoked, revokedAt.Add(time.Hour), wire.ReasonRevoked},
		{"revoked and expired: expired", t01, "t-01", revoked, until.AddDate(1, 0, 0), wire.ReasonSAMExpired},
		{"other terminal, revoked SAM: the terminal first", t02, "t-01", revoked, revokedAt, wire.ReasonTerminal},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &record.Record{TerminalID: c.terminal, Time: c.at}
			if got := bindRecord(c.peer, rec, c.sam, skew); got != c.want {
				t.Errorf("bindRecord = %q, want %q", got, c.want)
			}
		})
	}
}
