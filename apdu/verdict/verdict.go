// Package verdict is the outcome of reading a card, shared by the KPE and
// KTP-el readers: each check separately, with the reason for any failure.
package verdict

import (
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"time"

	"kpe-agent/apdu/sod"
)

// Check is the outcome of one verification.
type Check struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"` // why not, in words for a technician; empty when OK
}

// Verification lists each card-side check separately (issue 3, §6).
type Verification struct {
	CardAuthentic Check `json:"card_authentic"` // the card proved its key to the SAM (not a clone)
	DataAuthentic Check `json:"data_authentic"` // the issuer signature and every group hash hold
	FailedGroups  []int `json:"failed_groups,omitempty"`
}

// NotGenuine is the verification of a card that failed authentication: its
// data was not read, so it cannot be checked either.
func NotGenuine(reason string) Verification {
	return Verification{
		CardAuthentic: Check{Reason: reason},
		DataAuthentic: Check{Reason: "not checked: the card is not authentic"},
	}
}

// CheckData verifies a security object (raw EF content) against the trust
// list at time now, and every group that was read against its hash. It
// names each group that does not match.
func CheckData(raw []byte, groups map[int][]byte, roots *x509.CertPool, now time.Time) (Check, []int) {
	o, err := sod.Parse(raw)
	if err != nil {
		return Check{Reason: "security object unreadable: " + err.Error()}, nil
	}
	if err := o.VerifySignature(roots, now); err != nil {
		return Check{Reason: err.Error()}, nil
	}
	var failed []int
	for _, dg := range slices.Sorted(maps.Keys(groups)) {
		if err := o.CheckGroup(dg, groups[dg]); err != nil {
			failed = append(failed, dg)
		}
	}
	if len(failed) > 0 {
		return Check{Reason: fmt.Sprintf("data groups %v do not match the issuer's signature (altered after issue)", failed)}, failed
	}
	return Check{OK: true}, nil
}
