// Package verdict is the outcome of reading a card, shared by the KPE and
// KTP-el readers: each check separately, with the reason for any failure.
package verdict

import (
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"kpe-agent/internal/sod"
)

// Check is the outcome of one verification.
type Check struct {
	OK     bool   `json:"ok"`
	Code   Code   `json:"code,omitempty"`   // why not, for programs; empty when OK
	Reason string `json:"reason,omitempty"` // why not, in words for a technician; empty when OK
}

// Code classifies a failed check.
type Code string

// Failure codes.
const (
	CodeNotGenuine      Code = "not-genuine"      // the card failed authentication (clone)
	CodeNotChecked      Code = "not-checked"      // skipped because an earlier check failed
	CodeSODUnreadable   Code = "sod-unreadable"   // the security object is malformed
	CodeBadSignature    Code = "bad-signature"    // the issuer signature does not verify
	CodeIssuerExpired   Code = "issuer-expired"   // the document signer certificate is outside its validity
	CodeIssuerUntrusted Code = "issuer-untrusted" // the document signer does not chain to the trust list
	CodeTampered        Code = "tampered"         // a data group does not match its signed hash
	CodeInconsistent    Code = "identifiers-inconsistent"
)

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
		CardAuthentic: Check{Code: CodeNotGenuine, Reason: reason},
		DataAuthentic: Check{Code: CodeNotChecked, Reason: "not checked: the card is not authentic"},
	}
}

// CheckData verifies a security object (raw EF content) against the trust
// list at time now, and every group that was read against its hash. It
// names each group that does not match.
func CheckData(raw []byte, groups map[int][]byte, roots *x509.CertPool, now time.Time) (Check, []int) {
	o, c := CheckSignature(raw, roots, now)
	if !c.OK {
		return c, nil
	}
	return CheckGroups(o, groups)
}

// CheckSignature parses a security object and verifies its issuer
// signature and signer certificate. It is the costly half of CheckData
// (public-key operations) and needs no data groups, so readers run it
// while they read the groups.
func CheckSignature(raw []byte, roots *x509.CertPool, now time.Time) (*sod.Object, Check) {
	o, err := sod.Parse(raw)
	if err != nil {
		return nil, Check{Code: CodeSODUnreadable, Reason: "security object unreadable: " + err.Error()}
	}
	if err := o.VerifySignature(roots, now); err != nil {
		var ci x509.CertificateInvalidError
		switch {
		case errors.As(err, &ci) && ci.Reason == x509.Expired:
			return nil, Check{Code: CodeIssuerExpired, Reason: "the issuer's document-signer certificate is expired or not yet valid: " + err.Error()}
		case errors.Is(err, sod.ErrUntrusted):
			return nil, Check{Code: CodeIssuerUntrusted, Reason: "the issuer is not in the trust list: " + err.Error()}
		}
		return nil, Check{Code: CodeBadSignature, Reason: err.Error()}
	}
	return o, Check{OK: true}
}

// CheckGroups compares every group read with its hash in a verified
// security object.
func CheckGroups(o *sod.Object, groups map[int][]byte) (Check, []int) {
	var failed []int
	for _, dg := range slices.Sorted(maps.Keys(groups)) {
		if err := o.CheckGroup(dg, groups[dg]); err != nil {
			failed = append(failed, dg)
		}
	}
	if len(failed) > 0 {
		return Check{Code: CodeTampered, Reason: fmt.Sprintf("data groups %v do not match the issuer's signature (altered after issue)", failed)}, failed
	}
	return Check{OK: true}, nil
}

// SignatureCheck is a CheckSignature running in the background.
type SignatureCheck struct {
	ch chan sigResult
}

type sigResult struct {
	o *sod.Object
	c Check
}

// StartSignatureCheck runs CheckSignature in its own goroutine, so the
// public-key work overlaps the card's I/O. The goroutine never blocks: a
// reader that gives up early just drops the SignatureCheck.
func StartSignatureCheck(raw []byte, roots *x509.CertPool, now time.Time) *SignatureCheck {
	s := &SignatureCheck{ch: make(chan sigResult, 1)}
	go func() {
		o, c := CheckSignature(raw, roots, now)
		s.ch <- sigResult{o, c}
	}()
	return s
}

// Finish waits for the signature check and checks the groups.
func (s *SignatureCheck) Finish(groups map[int][]byte) (Check, []int) {
	r := <-s.ch
	if !r.c.OK {
		return r.c, nil
	}
	return CheckGroups(r.o, groups)
}
