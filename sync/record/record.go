// Package record is the signed authentication record: what the terminal
// keeps in its outbox and the back office trusts. It defines the record,
// its canonical encoding (docs/records.md), signing through a Signer (the
// SAM's SIGN RECORD in production and in the lab) and the printed
// authentication code.
//
// A record holds no fingerprint data, no photo and no KTP-el population
// data: the subject of a KTP-el record is a keyed hash of the NIK unless the
// configuration says otherwise.
package record

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"
	"unicode/utf8"

	"kpe-agent/internal/purse"
)

// CardType is the kind of card the record is about.
type CardType uint8

// Card types.
const (
	CardKPE         CardType = 1
	CardKPETambahan CardType = 2
	CardKTPel       CardType = 3
)

func (c CardType) String() string {
	switch c {
	case CardKPE:
		return "kpe"
	case CardKPETambahan:
		return "kpe-tambahan"
	case CardKTPel:
		return "ktpel"
	}
	return fmt.Sprintf("card-type(%d)", uint8(c))
}

// SubjectKind says what Record.Subject holds.
type SubjectKind uint8

// Subject kinds.
const (
	SubjectNIP     SubjectKind = 1 // the civil servant's 18-digit NIP (KPE, KPE Tambahan: the PNS's)
	SubjectNIKHash SubjectKind = 2 // HMAC-SHA-256 of the NIK under the institution's key, hex
	SubjectNIK     SubjectKind = 3 // the NIK itself: only where the configuration allows it
)

func (k SubjectKind) String() string {
	switch k {
	case SubjectNIP:
		return "nip"
	case SubjectNIKHash:
		return "nik-hmac"
	case SubjectNIK:
		return "nik"
	}
	return fmt.Sprintf("subject-kind(%d)", uint8(k))
}

// NIKHash is the subject KTP-el records carried before the pseudonym moved
// into the SAM: HMAC-SHA-256 of the NIK alone under the institution's key
// file, in hex. Those records keep it (docs/records.md); new records carry
// the SAM's pseudonym (apdu/sam PSEUDONYM, or sam.PseudonymOf with the
// explicit key-file fallback), which is of the same kind and length. Tests
// use NIKHash to make such legacy records.
func NIKHash(key []byte, nik string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(nik))
	return hex.EncodeToString(m.Sum(nil))
}

// Outcome is the result of one check.
type Outcome uint8

// Outcomes. A skipped check carries the reason it was skipped.
const (
	Pass    Outcome = 1
	Fail    Outcome = 2
	Skipped Outcome = 3
)

func (o Outcome) String() string {
	switch o {
	case Pass:
		return "pass"
	case Fail:
		return "fail"
	case Skipped:
		return "skipped"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// Check is one check's outcome with a reason code (lower-case ASCII, e.g.
// "clone", "group-2-hash", "no-sensor"); never a score or a template.
type Check struct {
	Outcome Outcome
	Reason  string
}

// ClockQuality says how far the record's time can be trusted.
type ClockQuality uint8

// Clock qualities.
const (
	ClockSynced   ClockQuality = 1 // the system clock is synchronised (NTP)
	ClockUnsynced ClockQuality = 2 // not known to be synchronised
	ClockSkewed   ClockQuality = 3 // the back office said the clock is far off
)

func (c ClockQuality) String() string {
	switch c {
	case ClockSynced:
		return "synced"
	case ClockUnsynced:
		return "unsynced"
	case ClockSkewed:
		return "skewed"
	}
	return fmt.Sprintf("clock(%d)", uint8(c))
}

// SignerKind says what signed the record.
type SignerKind uint8

// Signer kinds. A software-signed record says so, and the back office can
// refuse it.
const (
	SignerSAM      SignerKind = 1
	SignerSoftware SignerKind = 2
)

func (s SignerKind) String() string {
	switch s {
	case SignerSAM:
		return "sam"
	case SignerSoftware:
		return "software"
	}
	return fmt.Sprintf("signer(%d)", uint8(s))
}

// Record is one authentication at a terminal.
type Record struct {
	ID         [16]byte
	TerminalID string
	SiteID     string
	OperatorID string
	Service    string // askes, taspen, bapertarum, kiosk, … (configured)

	CardType   CardType
	CardSerial []byte // the card's serial (KPE) or UID (KTP-el), at most 16 bytes

	SubjectKind SubjectKind
	Subject     string

	CardAuth    Check // card authentic (SAM mutual authentication)
	IssuerSig   Check // data authentic (issuer signature)
	Identifiers Check // identifiers consistent
	Fingerprint Check // fingerprint verified

	Time  time.Time // kept to the millisecond, UTC
	Clock ClockQuality

	Signer    SignerKind
	SAMSerial [8]byte
	PrevHash  [32]byte // Hash of this terminal's previous record; zero for the first

	// Set by Seal.
	Counter   uint32   // the SAM's signature counter
	Signature [64]byte // ECDSA P-256 r ‖ s over Digest ‖ Counter ‖ SAMSerial; s low (at most n/2)

	// Renewal is what a card data renewal changed (docs/renewal.md): set
	// on a record of ServiceRenewal and on no other.
	Renewal *Renewal

	// Purse is an e-wallet transaction (docs/ewallet.md): set on a record
	// of ServicePayment (a DEBIT) or ServiceTopUp (a CREDIT) and on no
	// other.
	Purse *Purse

	// Version is the encoding version (docs/records.md). Seal sets
	// Version; Decode sets what it read. Zero encodes as Version, or as
	// VersionRenewal for a record with Renewal: only a decoded legacy
	// record is written back as version 1.
	Version uint8
}

// ServiceRenewal is the service of the record a card data renewal ends
// with; only its records carry Renewal.
const ServiceRenewal = "renewal"

// Renewal is the renewal field: which staged update was written to the
// card, and the SHA-256 of the card's EF.SOD before and after. No data
// group content: the hashes say which data the card holds without saying
// what it is.
type Renewal struct {
	UpdateID [16]byte
	OldSOD   [32]byte
	NewSOD   [32]byte
}

// Services of the e-wallet's records: only their records carry Purse.
const (
	ServicePayment = "payment" // a DEBIT at a counter
	ServiceTopUp   = "topup"   // a CREDIT ("update saldo") at a kiosk or counter
)

// PurseKind is a purse transaction's kind, as the card's log has it
// (docs/card-profiles.md §2.8; internal/purse.Kind).
type PurseKind = purse.Kind

// Purse kinds.
const (
	PurseDebit  = purse.Debit
	PurseCredit = purse.Credit
)

// Purse is the purse field: one DEBIT or CREDIT the card took, as its
// answer (or its log, after a tear) says, with the card's proof, so the
// back office can check the proof and rebuild the purse's balance by PTC.
type Purse struct {
	Kind         PurseKind
	Amount       uint32   // rupiah
	BalanceAfter uint32   // the card's balance after the transaction
	PTC          uint32   // the card's purse transaction counter after it
	SAMTxn       uint32   // the SAM's purse transaction number (the SAM serial is the record's)
	TxnTime      int64    // the time in the SAM's MAC, Unix milliseconds
	Proof        [8]byte  // MAC_card, the card's proof
	Request      [16]byte // payment: SHA-256 of the idempotency key, first 16 bytes; top-up: the authorisation id
	Merchant     string   // payment: the merchant id; top-up: empty
	Reference    string   // payment: the merchant's reference; top-up: empty
	Resolved     bool     // the card's answer was lost and the transaction was found in its log
}

// purseFixedLen is the purse field's fixed part: kind (1), flags (1),
// amount, balance after, PTC, SAM txn (4 each), time (8), proof (8),
// request (16); then merchant and reference, each as length (1) ‖ text.
const purseFixedLen = 1 + 1 + 4*4 + 8 + 8 + 16

// Limits of the purse field's texts, in bytes.
const (
	maxMerchant  = 32
	maxReference = 64
)

func (p *Purse) bytes() []byte {
	b := make([]byte, 0, purseFixedLen+2+len(p.Merchant)+len(p.Reference))
	var flags byte
	if p.Resolved {
		flags = 1
	}
	b = append(b, byte(p.Kind), flags)
	b = binary.BigEndian.AppendUint32(b, p.Amount)
	b = binary.BigEndian.AppendUint32(b, p.BalanceAfter)
	b = binary.BigEndian.AppendUint32(b, p.PTC)
	b = binary.BigEndian.AppendUint32(b, p.SAMTxn)
	b = binary.BigEndian.AppendUint64(b, uint64(p.TxnTime))
	b = append(b, p.Proof[:]...)
	b = append(b, p.Request[:]...)
	b = append(b, byte(len(p.Merchant)))
	b = append(b, p.Merchant...)
	b = append(b, byte(len(p.Reference)))
	return append(b, p.Reference...)
}

// parsePurse reads the purse field; nil when it is malformed.
func parsePurse(v []byte) *Purse {
	if len(v) < purseFixedLen+2 || v[1] > 1 {
		return nil
	}
	p := &Purse{Kind: PurseKind(v[0]), Resolved: v[1] == 1}
	q := v[2:]
	p.Amount = binary.BigEndian.Uint32(q[0:4])
	p.BalanceAfter = binary.BigEndian.Uint32(q[4:8])
	p.PTC = binary.BigEndian.Uint32(q[8:12])
	p.SAMTxn = binary.BigEndian.Uint32(q[12:16])
	p.TxnTime = int64(binary.BigEndian.Uint64(q[16:24]))
	p.Proof = [8]byte(q[24:32])
	p.Request = [16]byte(q[32:48])
	q = q[48:]
	n := int(q[0])
	if len(q) < 1+n+1 {
		return nil
	}
	p.Merchant = string(q[1 : 1+n])
	q = q[1+n:]
	m := int(q[0])
	if len(q) != 1+m {
		return nil
	}
	p.Reference = string(q[1:])
	return p
}

// renewalLen is the renewal field's length in the encoding.
const renewalLen = 16 + 32 + 32

func (n *Renewal) bytes() []byte {
	b := make([]byte, 0, renewalLen)
	b = append(b, n.UpdateID[:]...)
	b = append(b, n.OldSOD[:]...)
	return append(b, n.NewSOD[:]...)
}

func parseRenewal(v []byte) *Renewal {
	var n Renewal
	copy(n.UpdateID[:], v[:16])
	copy(n.OldSOD[:], v[16:48])
	copy(n.NewSOD[:], v[48:])
	return &n
}

// version is the encoding version r is written in.
func (r *Record) version() uint8 {
	if r.Version == 0 {
		return currentVersion(r)
	}
	return r.Version
}

// currentVersion is the version Seal writes r in.
func currentVersion(r *Record) uint8 {
	if r.Renewal != nil {
		return VersionRenewal
	}
	if r.Purse != nil {
		return VersionPurse
	}
	return Version
}

// Errors.
var (
	// ErrFormat: an encoding that is not a valid record.
	ErrFormat = errors.New("record: malformed")
	// ErrInvalid: a record whose fields break the rules (Validate).
	ErrInvalid = errors.New("record: invalid")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("record: signature does not verify")
	// ErrHighS: a version-2 record whose signature has s above n/2. The
	// other s (n - s) is the record's one signature; the high one is a
	// second encoding of the same record, so Decode refuses it (with
	// ErrFormat), and so do Verify (with ErrSignature) and Encode (with
	// ErrInvalid).
	ErrHighS = errors.New("record: signature is not in low-s form")
)

// Limits of the text fields, in bytes.
const (
	maxID      = 64
	maxService = 32
	maxReason  = 64
	maxSubject = 64
	maxSerial  = 16
)

func invalid(field, why string) error { return fmt.Errorf("%w: %s %s", ErrInvalid, field, why) }

func checkText(field, s string, max int, allowEmpty bool) error {
	if len(s) > max {
		return invalid(field, fmt.Sprintf("longer than %d bytes", max))
	}
	if s == "" && !allowEmpty {
		return invalid(field, "is empty")
	}
	if !utf8.ValidString(s) {
		return invalid(field, "is not UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return invalid(field, "holds a control character")
		}
	}
	return nil
}

func checkCode(field, s string, max int) error {
	if len(s) > max {
		return invalid(field, fmt.Sprintf("longer than %d bytes", max))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return invalid(field, "is not lower-case ASCII letters, digits, - _ .")
		}
	}
	return nil
}

func (c Check) validate(field string) error {
	switch c.Outcome {
	case Pass, Fail, Skipped:
	default:
		return invalid(field, "has no outcome")
	}
	if c.Outcome != Pass && c.Reason == "" {
		return invalid(field, "failed or was skipped without a reason")
	}
	return checkCode(field+" reason", c.Reason, maxReason)
}

// Validate checks the fields that Seal and Encode rely on.
func (r *Record) Validate() error {
	if r.ID == [16]byte{} {
		return invalid("id", "is zero")
	}
	for _, f := range []struct {
		name, v string
	}{{"terminal id", r.TerminalID}, {"site id", r.SiteID}, {"operator id", r.OperatorID}} {
		if err := checkText(f.name, f.v, maxID, false); err != nil {
			return err
		}
	}
	if r.Service == "" {
		return invalid("service", "is empty")
	}
	if err := checkCode("service", r.Service, maxService); err != nil {
		return err
	}
	switch r.CardType {
	case CardKPE, CardKPETambahan, CardKTPel:
	default:
		return invalid("card type", "is unknown")
	}
	if len(r.CardSerial) == 0 || len(r.CardSerial) > maxSerial {
		return invalid("card serial", fmt.Sprintf("has %d bytes, want 1 to %d", len(r.CardSerial), maxSerial))
	}
	switch r.SubjectKind {
	case SubjectNIP:
		if !digits(r.Subject, 18) {
			return invalid("subject", "is not an 18-digit NIP")
		}
	case SubjectNIK:
		if !digits(r.Subject, 16) {
			return invalid("subject", "is not a 16-digit NIK")
		}
	case SubjectNIKHash:
		if len(r.Subject) != 64 || !lowerHex(r.Subject) {
			return invalid("subject", "is not a 64-digit hex NIK hash")
		}
	default:
		return invalid("subject kind", "is unknown")
	}
	if r.CardType == CardKTPel && r.SubjectKind == SubjectNIP || r.CardType != CardKTPel && r.SubjectKind != SubjectNIP {
		return invalid("subject kind", fmt.Sprintf("%s does not go with card type %s", r.SubjectKind, r.CardType))
	}
	for _, c := range []struct {
		name string
		c    Check
	}{{"card authentication", r.CardAuth}, {"issuer signature", r.IssuerSig}, {"identifiers", r.Identifiers}, {"fingerprint", r.Fingerprint}} {
		if err := c.c.validate(c.name); err != nil {
			return err
		}
	}
	switch r.Version {
	case 0, VersionLegacy, Version, VersionRenewal, VersionPurse:
	default:
		return invalid("version", fmt.Sprintf("%d is unknown", r.Version))
	}
	if err := r.validateRenewal(); err != nil {
		return err
	}
	if err := r.validatePurse(); err != nil {
		return err
	}
	if ms := r.Time.UnixMilli(); ms <= 0 {
		return invalid("time", "is before 1970")
	}
	switch r.Clock {
	case ClockSynced, ClockUnsynced, ClockSkewed:
	default:
		return invalid("clock quality", "is unknown")
	}
	switch r.Signer {
	case SignerSAM, SignerSoftware:
	default:
		return invalid("signer", "is unknown")
	}
	return nil
}

// validateRenewal: the renewal field goes with ServiceRenewal, a KPE and
// version 3 (or zero, which encodes as 3 with it), and with nothing else.
func (r *Record) validateRenewal() error {
	if (r.Service == ServiceRenewal) != (r.Renewal != nil) {
		return invalid("renewal", fmt.Sprintf("is the field of service %q records and of no other", ServiceRenewal))
	}
	if r.Renewal == nil {
		if r.Version == VersionRenewal {
			return invalid("version", fmt.Sprintf("%d without the renewal field", VersionRenewal))
		}
		return nil
	}
	if r.Version != 0 && r.Version != VersionRenewal {
		return invalid("version", fmt.Sprintf("%d cannot carry the renewal field", r.Version))
	}
	if r.CardType != CardKPE {
		return invalid("renewal", "is for a KPE")
	}
	if r.Renewal.UpdateID == [16]byte{} {
		return invalid("renewal", "has no update id")
	}
	if r.Renewal.OldSOD == r.Renewal.NewSOD {
		return invalid("renewal", "changes nothing (old and new security object are the same)")
	}
	return nil
}

// validatePurse: the purse field goes with ServicePayment (a debit) or
// ServiceTopUp (a credit), a KPE or KPE Tambahan with an 8-byte serial,
// a SAM signer and version 4 (or zero), and with nothing else.
func (r *Record) validatePurse() error {
	purseService := r.Service == ServicePayment || r.Service == ServiceTopUp
	if purseService != (r.Purse != nil) {
		return invalid("purse", fmt.Sprintf("is the field of service %q and %q records and of no other", ServicePayment, ServiceTopUp))
	}
	if r.Purse == nil {
		if r.Version == VersionPurse {
			return invalid("version", fmt.Sprintf("%d without the purse field", VersionPurse))
		}
		return nil
	}
	if r.Version != 0 && r.Version != VersionPurse {
		return invalid("version", fmt.Sprintf("%d cannot carry the purse field", r.Version))
	}
	p := r.Purse
	want := PurseDebit
	if r.Service == ServiceTopUp {
		want = PurseCredit
	}
	if p.Kind != want {
		return invalid("purse", fmt.Sprintf("kind %s does not go with service %q", p.Kind, r.Service))
	}
	if r.CardType != CardKPE && r.CardType != CardKPETambahan || len(r.CardSerial) != 8 {
		return invalid("purse", "is for a KPE with an 8-byte serial")
	}
	if p.Amount == 0 {
		return invalid("purse", "has amount 0")
	}
	if p.PTC == 0 {
		return invalid("purse", "has PTC 0 (a transaction moves the counter to 1 at least)")
	}
	if p.TxnTime <= 0 {
		return invalid("purse", "has no transaction time")
	}
	if p.Request == [16]byte{} {
		return invalid("purse", "has no request id")
	}
	if err := checkText("purse merchant", p.Merchant, maxMerchant, true); err != nil {
		return err
	}
	if err := checkText("purse reference", p.Reference, maxReference, true); err != nil {
		return err
	}
	if (r.Service == ServicePayment) != (p.Merchant != "") {
		return invalid("purse", "names a merchant on a payment and on nothing else")
	}
	if r.Service == ServiceTopUp && p.Reference != "" {
		return invalid("purse", "carries a merchant reference on a top-up")
	}
	return nil
}

func digits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < n; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// digestDomain separates record digests from anything else the SAM signs.
// It is the same in both versions: the body starts with the magic and the
// version, so the digests of the two versions differ anyway.
const digestDomain = "KPE-RECORD-V1\x00"

// contentDomain separates the content hash from the digest.
const contentDomain = "KPE-RECORD-CONTENT\x00"

// Digest is what the SAM signs (with its counter and serial): SHA-256 of
// the domain string and the body (the encoding without counter and
// signature).
func (r *Record) Digest() ([32]byte, error) {
	body, err := r.encode(partBody)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(append([]byte(digestDomain), body...)), nil
}

// ContentHash is what a record says and was signed for, without the
// signature: SHA-256 of "KPE-RECORD-CONTENT" 00 and the encoding up to the
// counter (magic and version, body, counter; the SAM serial is in the
// body). Two encodings of one record, a signature and its malleated twin,
// have the same content hash. It is the Hash of a version-2 record, and
// what the back office compares to tell a duplicate from a conflict.
func (r *Record) ContentHash() ([32]byte, error) {
	b, err := r.encode(partContent)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(append([]byte(contentDomain), b...)), nil
}

// Hash identifies a sealed record: the next record on the terminal carries
// it as PrevHash, and the printed code is taken from it (CodeOf). It is the
// one rule for both; nothing else hashes an encoding for a code or a
// chain.
//
// Version 2: the ContentHash, so a signature cannot change it. Version 1
// (legacy): SHA-256 of the whole encoding, signature included, as the
// version-1 code computed it, so the codes printed for those records stay
// valid.
func (r *Record) Hash() ([32]byte, error) {
	if r.version() >= Version {
		return r.ContentHash()
	}
	b, err := r.Encode()
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// HashesOf returns the Hash and the ContentHash of a sealed record's
// canonical encoding (one Encode wrote or Decode accepted) from its bytes,
// without decoding and encoding it again: the content is the encoding
// without its last field, the signature. It checks only the frame (magic,
// version, the signature field at the end); an encoding that is not
// canonical gives ErrFormat or hashes that match no record.
func HashesOf(enc []byte) (hash, content [32]byte, err error) {
	n := len(enc)
	if n < len(magic)+1+signatureField || [3]byte(enc[:3]) != magic ||
		!knownVersion(enc[3]) ||
		enc[n-signatureField] != tagSignature || enc[n-signatureField+1] != signatureField-2 {
		return hash, content, &FormatError{Offset: 0, What: "not a sealed record's encoding"}
	}
	content = sha256.Sum256(append([]byte(contentDomain), enc[:n-signatureField]...))
	if enc[3] >= Version {
		return content, content, nil
	}
	return sha256.Sum256(enc), content, nil
}

// HashOf is the Hash of a sealed record's encoding (Decode's errors when it
// is not one).
func HashOf(enc []byte) ([32]byte, error) {
	r, err := Decode(enc)
	if err != nil {
		return [32]byte{}, err
	}
	return r.Hash()
}

// SignedMessage is what the signature covers: digest ‖ counter (4 bytes,
// big-endian) ‖ SAM serial, hashed with SHA-256 by the signer. This is the
// SAM's SIGN RECORD construction (docs/card-profiles.md).
func SignedMessage(digest [32]byte, counter uint32, serial [8]byte) []byte {
	m := append(digest[:], binary.BigEndian.AppendUint32(nil, counter)...)
	return append(m, serial[:]...)
}

// Verify checks the record's signature with the signer's public key. A
// version-2 record's signature must have the low s (ErrSignature and
// ErrHighS otherwise).
func (r *Record) Verify(pub *ecdsa.PublicKey) error {
	d, err := r.Digest()
	if err != nil {
		return err
	}
	if r.version() >= Version && !lowS(r.Signature) {
		return fmt.Errorf("%w: %w", ErrSignature, ErrHighS)
	}
	h := sha256.Sum256(SignedMessage(d, r.Counter, r.SAMSerial))
	R := new(big.Int).SetBytes(r.Signature[:32])
	S := new(big.Int).SetBytes(r.Signature[32:])
	if pub == nil || !ecdsa.Verify(pub, h[:], R, S) {
		return ErrSignature
	}
	return nil
}

// halfOrder is n/2 for P-256: a low s is at most this.
var halfOrder = new(big.Int).Rsh(elliptic.P256().Params().N, 1)

func lowS(sig [64]byte) bool { return new(big.Int).SetBytes(sig[32:]).Cmp(halfOrder) <= 0 }

// LowS returns the signature with s replaced by n - s when s is above n/2:
// the same signature in low-s form, valid for the same message and key.
// Seal applies it to whatever the signer (the SAM) answers.
func LowS(sig [64]byte) [64]byte {
	if lowS(sig) {
		return sig
	}
	s := new(big.Int).SetBytes(sig[32:])
	new(big.Int).Sub(elliptic.P256().Params().N, s).FillBytes(sig[32:])
	return sig
}
