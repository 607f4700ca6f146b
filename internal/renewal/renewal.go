// Package renewal is the card data renewal's offer (docs/renewal.md): what
// the back office answers a terminal that asks whether an update is staged
// for a card, and the checks the terminal runs on it before it writes
// anything to the card.
//
// An offer holds the changed data groups, the new security object (EF.SOD,
// package sod) over all groups, and an authorisation signed with the same
// issuer key that binds the update to one card in one state: its serial,
// the hash of the EF.SOD it was built on, a sequence the card must not have
// reached yet, the hash of the new EF.SOD, the holder's NIP and an expiry.
// Both sides use this package, so the back office issues exactly what the
// terminal verifies.
package renewal

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"kpe-agent/internal/kpedata"
	"kpe-agent/internal/sod"
	"kpe-agent/internal/tlv"
)

// Errors. Every refusal of Verify and Build matches one of them.
var (
	// ErrFormat: a malformed offer, security object or data group.
	ErrFormat = errors.New("renewal: malformed offer")
	// ErrIssuer: the new security object or the authorisation is not
	// signed by a trusted issuer key (a wrong key, an untrusted or
	// expired document signer, two different keys).
	ErrIssuer = errors.New("renewal: not signed by a trusted issuer key")
	// ErrMismatch: the offer does not fit together or not this card: the
	// new security object does not match the groups, another serial or
	// NIP, a group dropped or changed without its content.
	ErrMismatch = errors.New("renewal: offer does not match")
	// ErrReplayed: the offer was built on another state of the card (an
	// older update, or one the card has moved past), or its sequence is
	// not newer than the card's.
	ErrReplayed = errors.New("renewal: offer is for another state of the card")
	// ErrApplied: the card already holds the offer's new data.
	ErrApplied = errors.New("renewal: the card already holds this update")
	// ErrExpired: the offer's validity has passed.
	ErrExpired = errors.New("renewal: offer expired")
	// ErrUnchanged: the staged groups equal what the card holds; there is
	// nothing to write.
	ErrUnchanged = errors.New("renewal: nothing to change")
)

// Offer is one renewal for one card in one state.
type Offer struct {
	UpdateID [16]byte // the staged update's id
	Serial   [8]byte  // the card's serial
	NIP      string   // the holder's NIP (DG1)
	Sequence uint32   // the card's update sequence after this update
	BaseSOD  [32]byte // SODHash of the card's EF.SOD the update was built on
	NewSOD   [32]byte // SODHash of SOD
	NotAfter time.Time
	// Groups are the changed data groups' new EF contents (DG1 to DG4).
	Groups map[int][]byte
	// SOD is the new EF.SOD over every group of the card.
	SOD []byte
	// Signature is the issuer's ECDSA signature (ASN.1 DER, SHA-256) over
	// the authorisation, made with the key of SOD's document signer.
	Signature []byte
}

// SODHash identifies a card's data: SHA-256 of its EF.SOD content as read.
// Records of renewals carry it for the old and the new data.
func SODHash(ef []byte) [32]byte { return sha256.Sum256(ef) }

// Changeable data groups: the holder's identity, employment, family and
// benefits. The photo and the biometric templates are never renewed here.
const (
	minGroup = kpedata.DGIdentity
	maxGroup = kpedata.DGBenefits
)

// Changed lists the changed groups in order.
func (o *Offer) Changed() []int {
	out := make([]int, 0, len(o.Groups))
	for dg := range o.Groups {
		out = append(out, dg)
	}
	slices.Sort(out)
	return out
}

// The authorisation: 7E { 80 format, 81 update id, 82 serial, 83 sequence,
// 84 base SOD hash, 85 new SOD hash, 86 not-after (Unix seconds), 87 NIP }.
const (
	tagAuth     tlv.Tag = 0x7E
	tagFormat   tlv.Tag = 0x80
	tagUpdateID tlv.Tag = 0x81
	tagSerial   tlv.Tag = 0x82
	tagSequence tlv.Tag = 0x83
	tagBase     tlv.Tag = 0x84
	tagNew      tlv.Tag = 0x85
	tagNotAfter tlv.Tag = 0x86
	tagNIP      tlv.Tag = 0x87
	format1             = 1
)

// Authorisation is the encoding the issuer signs.
func (o *Offer) Authorisation() []byte {
	return tlv.NewConstructed(tagAuth,
		tlv.New(tagFormat, []byte{format1}),
		tlv.New(tagUpdateID, o.UpdateID[:]),
		tlv.New(tagSerial, o.Serial[:]),
		tlv.New(tagSequence, binary.BigEndian.AppendUint32(nil, o.Sequence)),
		tlv.New(tagBase, o.BaseSOD[:]),
		tlv.New(tagNew, o.NewSOD[:]),
		tlv.New(tagNotAfter, binary.BigEndian.AppendUint64(nil, uint64(o.NotAfter.Unix()))),
		tlv.New(tagNIP, []byte(o.NIP)),
	).Bytes()
}

// Staged is what the back office staged for a holder: the new contents of
// the groups the import changed.
type Staged struct {
	UpdateID [16]byte
	NIP      string
	Groups   map[int][]byte
}

// BuildInput is one request for an offer.
type BuildInput struct {
	Staged   Staged
	Serial   [8]byte
	CardSOD  []byte    // the card's EF.SOD as the terminal read it
	CardDG1  []byte    // the card's DG1 as the terminal read it: binds the EF.SOD to the NIP
	Sequence uint32    // the sequence the offer takes (greater than the card's)
	NotAfter time.Time // kept to the second
}

// CheckCard checks what a terminal says of a card before anything is
// built on it or answered about it: the EF.SOD parses and verifies
// against roots at now (ErrFormat, ErrIssuer), and it covers dg1, whose
// NIP is nip (ErrMismatch). EF.SOD is public, but DG1 is read only under
// secure messaging, so a terminal that sends a matching pair read the
// holder's card: an offer, with the holder's staged data, is built only
// on the holder's own card, and never mixes one holder's groups with
// another card's photo, templates or identity. It answers the parsed
// EF.SOD.
func CheckCard(cardSOD, dg1 []byte, nip string, roots *x509.CertPool, now time.Time) (*sod.Object, error) {
	cur, err := sod.Parse(cardSOD)
	if err != nil {
		return nil, fmt.Errorf("%w: the card's EF.SOD: %w", ErrFormat, err)
	}
	if err := cur.VerifySignature(roots, now); err != nil {
		return nil, fmt.Errorf("%w: the card's EF.SOD: %w", ErrIssuer, err)
	}
	if err := cur.CheckGroup(kpedata.DGIdentity, dg1); err != nil {
		return nil, fmt.Errorf("%w: the card's DG1 is not the one its EF.SOD covers: %w", ErrMismatch, err)
	}
	id, err := kpedata.ParseIdentity(dg1)
	if err != nil {
		return nil, fmt.Errorf("%w: the card's DG1: %w", ErrFormat, err)
	}
	if id.NIP != nip {
		return nil, fmt.Errorf("%w: the card is another holder's", ErrMismatch)
	}
	return cur, nil
}

// Build issues an offer: it checks the card (CheckCard: the EF.SOD's
// format, issuer signature and chain to roots at now, and that it covers
// the card's DG1 with the staged NIP; the back office builds on nothing
// it would not trust on a card), takes the unchanged groups' hashes from
// it, hashes the staged groups, signs the new EF.SOD and the
// authorisation with signer (the HSM), whose certificate cert the new
// EF.SOD carries. Groups the card already holds unchanged are left out;
// when none is left, ErrUnchanged.
func Build(in BuildInput, roots *x509.CertPool, now time.Time, signer crypto.Signer, cert *x509.Certificate) (*Offer, error) {
	if signer == nil || cert == nil {
		return nil, fmt.Errorf("%w: no issuer signer", ErrIssuer)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() || !pub.Equal(signer.Public()) {
		return nil, fmt.Errorf("%w: the signer's key is not the certificate's P-256 key", ErrIssuer)
	}
	if err := checkNIP(in.Staged.NIP); err != nil {
		return nil, err
	}
	cur, err := CheckCard(in.CardSOD, in.CardDG1, in.Staged.NIP, roots, now)
	if err != nil {
		return nil, err
	}
	if !in.NotAfter.After(now) {
		return nil, fmt.Errorf("%w: not-after %s is not after now", ErrExpired, in.NotAfter.UTC().Format(time.RFC3339))
	}
	hashes := make(map[int][]byte, len(cur.Hashes))
	for dg, h := range cur.Hashes {
		hashes[dg] = h
	}
	changed := map[int][]byte{}
	for dg, content := range in.Staged.Groups {
		if err := checkGroup(dg, content, in.Staged.NIP); err != nil {
			return nil, err
		}
		h := sha256.Sum256(content)
		if bytes.Equal(hashes[dg], h[:]) {
			continue // the card holds it already
		}
		hashes[dg] = h[:]
		changed[dg] = bytes.Clone(content)
	}
	if len(changed) == 0 {
		return nil, ErrUnchanged
	}
	newSOD, err := sod.SignHashes(hashes, signer, cert)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIssuer, err)
	}
	o := &Offer{
		UpdateID: in.Staged.UpdateID,
		Serial:   in.Serial,
		NIP:      in.Staged.NIP,
		Sequence: in.Sequence,
		BaseSOD:  SODHash(in.CardSOD),
		NewSOD:   SODHash(newSOD),
		NotAfter: time.Unix(in.NotAfter.Unix(), 0).UTC(),
		Groups:   changed,
		SOD:      newSOD,
	}
	digest := sha256.Sum256(o.Authorisation())
	if o.Signature, err = signer.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
		return nil, fmt.Errorf("%w: signing the authorisation: %w", ErrIssuer, err)
	}
	return o, nil
}

// CardState is the card as the terminal read and verified it.
type CardState struct {
	Serial   [8]byte
	NIP      string // from DG1
	SOD      []byte // EF.SOD as read
	Sequence uint32 // the card's last committed update sequence
}

// Verify checks an offer against the card before anything is written to
// it, in this order: the offer's form; the new EF.SOD's issuer signature
// and chain to roots at now; the authorisation's signature with that same
// key (ErrIssuer); the new EF.SOD's hash, serial and NIP (ErrMismatch);
// whether the card already holds the new data (ErrApplied) or is in
// another state than the offer was built on, or already at its sequence
// (ErrReplayed); the expiry (ErrExpired); and that the new EF.SOD covers
// exactly the card's groups, the changed ones with the offer's contents
// (which must parse) and the others with their current hashes
// (ErrMismatch).
func Verify(o *Offer, card CardState, roots *x509.CertPool, now time.Time) error {
	if o == nil || len(o.SOD) == 0 || len(o.Groups) == 0 || len(o.Signature) == 0 {
		return fmt.Errorf("%w: incomplete", ErrFormat)
	}
	next, err := sod.Parse(o.SOD)
	if err != nil {
		return fmt.Errorf("%w: new EF.SOD: %w", ErrFormat, err)
	}
	if err := next.VerifySignature(roots, now); err != nil {
		return fmt.Errorf("%w: new EF.SOD: %w", ErrIssuer, err)
	}
	pub, ok := next.Signer.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: document signer key is not ECDSA", ErrIssuer)
	}
	digest := sha256.Sum256(o.Authorisation())
	if !ecdsa.VerifyASN1(pub, digest[:], o.Signature) {
		return fmt.Errorf("%w: the authorisation is not signed by the new EF.SOD's document signer", ErrIssuer)
	}
	if SODHash(o.SOD) != o.NewSOD {
		return fmt.Errorf("%w: the new EF.SOD is not the one authorised", ErrMismatch)
	}
	if o.Serial != card.Serial {
		return fmt.Errorf("%w: the offer is for card %X, this is %X", ErrMismatch, o.Serial, card.Serial)
	}
	if o.NIP != card.NIP {
		return fmt.Errorf("%w: the offer is for another holder", ErrMismatch)
	}
	current := SODHash(card.SOD)
	if current == o.NewSOD {
		return ErrApplied
	}
	if current != o.BaseSOD {
		return fmt.Errorf("%w: built on another EF.SOD than the card's", ErrReplayed)
	}
	if o.Sequence <= card.Sequence {
		return fmt.Errorf("%w: sequence %d, the card is at %d", ErrReplayed, o.Sequence, card.Sequence)
	}
	if !now.Before(o.NotAfter) {
		return fmt.Errorf("%w: valid until %s", ErrExpired, o.NotAfter.UTC().Format(time.RFC3339))
	}
	old, err := sod.Parse(card.SOD)
	if err != nil {
		return fmt.Errorf("%w: the card's EF.SOD: %w", ErrFormat, err)
	}
	for dg, content := range o.Groups {
		if err := checkGroup(dg, content, o.NIP); err != nil {
			return err
		}
		if err := next.CheckGroup(dg, content); err != nil {
			return fmt.Errorf("%w: %w", ErrMismatch, err)
		}
	}
	for _, dg := range next.Groups() {
		if _, changed := o.Groups[dg]; changed {
			continue
		}
		if !bytes.Equal(next.Hashes[dg], old.Hashes[dg]) {
			return fmt.Errorf("%w: DG%d changes in the new EF.SOD without its content", ErrMismatch, dg)
		}
	}
	for _, dg := range old.Groups() {
		if _, ok := next.Hashes[dg]; !ok {
			return fmt.Errorf("%w: the new EF.SOD drops DG%d", ErrMismatch, dg)
		}
	}
	return nil
}

// checkGroup: a changeable group whose content parses; a new DG1 keeps
// the holder's NIP.
func checkGroup(dg int, content []byte, nip string) error {
	if dg < minGroup || dg > maxGroup {
		return fmt.Errorf("%w: DG%d cannot be renewed (DG%d to DG%d only)", ErrMismatch, dg, minGroup, maxGroup)
	}
	var err error
	switch dg {
	case kpedata.DGIdentity:
		var id kpedata.Identity
		if id, err = kpedata.ParseIdentity(content); err == nil && id.NIP != nip {
			return fmt.Errorf("%w: the new DG1 names another NIP", ErrMismatch)
		}
	case kpedata.DGEmployment:
		_, err = kpedata.ParseEmployment(content)
	case kpedata.DGFamily:
		_, err = kpedata.ParseFamily(content)
	case kpedata.DGBenefits:
		_, err = kpedata.ParseBenefits(content)
	}
	if err != nil {
		return fmt.Errorf("%w: DG%d: %w", ErrFormat, dg, err)
	}
	return nil
}

func checkNIP(nip string) error {
	if len(nip) != 18 {
		return fmt.Errorf("%w: the NIP is not 18 digits", ErrFormat)
	}
	for i := 0; i < len(nip); i++ {
		if nip[i] < '0' || nip[i] > '9' {
			return fmt.Errorf("%w: the NIP is not 18 digits", ErrFormat)
		}
	}
	return nil
}
