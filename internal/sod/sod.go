// Package sod implements the security object used for passive
// authentication of KPE and KTP-el data (docs/card-profiles.md §2.4): the
// issuer signs the SHA-256 hashes of all data groups with ECDSA P-256, and
// ships its document-signer certificate, like the ICAO 9303 document
// security object but as plain BER-TLV instead of CMS:
//
//	77 {
//	  80 version (01)
//	  81 hash algorithm (01 = SHA-256)
//	  A0 { 30 { 02 DG number, 04 hash } ... }
//	  82 document-signer certificate (X.509 DER, ECDSA P-256)
//	  83 signature (ECDSA with SHA-256, ASN.1 DER) over the encoding of A0
//	}
//
// Verification answers three separate questions, each with its own error:
// is the signature valid, is the signer trusted (chain to a configured
// issuer CA, valid at the time of reading), and does each data group match
// its hash (the failing group is named).
package sod

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"kpe-agent/internal/tlv"
)

// Errors. Parse errors match ErrFormat; verification failures match one of
// the others.
var (
	ErrFormat       = errors.New("sod: malformed security object")
	ErrSignature    = errors.New("sod: issuer signature invalid")
	ErrUntrusted    = errors.New("sod: document signer not trusted")
	ErrHashMismatch = errors.New("sod: data group does not match its hash")
	ErrNotCovered   = errors.New("sod: data group not covered by the security object")
)

// GroupError names the data group that failed.
type GroupError struct {
	DG  int
	Err error // ErrHashMismatch or ErrNotCovered
}

func (e *GroupError) Error() string { return fmt.Sprintf("DG%d: %v", e.DG, e.Err) }
func (e *GroupError) Unwrap() error { return e.Err }

const (
	tagSOD     tlv.Tag = 0x77
	tagVersion tlv.Tag = 0x80
	tagHashAlg tlv.Tag = 0x81
	tagHashes  tlv.Tag = 0xA0
	tagEntry   tlv.Tag = 0x30
	tagInt     tlv.Tag = 0x02
	tagOctets  tlv.Tag = 0x04
	tagCert    tlv.Tag = 0x82
	tagSig     tlv.Tag = 0x83

	version1   = 1
	hashSHA256 = 1
	maxGroups  = 32
)

// Object is a parsed security object.
type Object struct {
	Version   int
	Hashes    map[int][]byte // data-group number → SHA-256 of the EF content
	Signer    *x509.Certificate
	Signature []byte
	signed    []byte // encoding of A0: what the signature covers
}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
}

// Parse parses a security object (00/FF padding after it is allowed).
func Parse(b []byte) (*Object, error) {
	list, err := tlv.ParseWith(b, tlv.Options{AllowPadding: true})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if len(list) != 1 || list[0].Tag != tagSOD {
		return nil, formatErr("want one 77 template")
	}
	o := &Object{Hashes: map[int][]byte{}}
	var seen = map[tlv.Tag]bool{}
	for _, c := range list[0].Children {
		if seen[c.Tag] {
			return nil, formatErr("duplicate %s", c.Tag)
		}
		seen[c.Tag] = true
		switch c.Tag {
		case tagVersion:
			if !bytes.Equal(c.Value, []byte{version1}) {
				return nil, formatErr("unsupported version % X", c.Value)
			}
			o.Version = version1
		case tagHashAlg:
			if !bytes.Equal(c.Value, []byte{hashSHA256}) {
				return nil, formatErr("unsupported hash algorithm % X", c.Value)
			}
		case tagHashes:
			if err := o.parseHashes(c); err != nil {
				return nil, err
			}
		case tagCert:
			cert, err := parseCert(c.Value)
			if err != nil {
				return nil, fmt.Errorf("%w: signer certificate: %w", ErrFormat, err)
			}
			o.Signer = cert
		case tagSig:
			o.Signature = append([]byte(nil), c.Value...)
		default:
			return nil, formatErr("unexpected %s", c.Tag)
		}
	}
	for _, need := range []tlv.Tag{tagVersion, tagHashAlg, tagHashes, tagCert, tagSig} {
		if !seen[need] {
			return nil, formatErr("missing %s", need)
		}
	}
	return o, nil
}

func (o *Object) parseHashes(c tlv.TLV) error {
	o.signed = c.Bytes()
	if len(c.Children) == 0 || len(c.Children) > maxGroups {
		return formatErr("%d hash entries, want 1..%d", len(c.Children), maxGroups)
	}
	for _, e := range c.Children {
		if e.Tag != tagEntry || len(e.Children) != 2 || e.Children[0].Tag != tagInt || e.Children[1].Tag != tagOctets {
			return formatErr("hash entry must be 30 { 02 DG, 04 hash }")
		}
		n := e.Children[0].Value
		if len(n) != 1 || n[0] == 0 || n[0] > maxGroups {
			return formatErr("data-group number % X", n)
		}
		h := e.Children[1].Value
		if len(h) != sha256.Size {
			return formatErr("hash of %d bytes, want %d", len(h), sha256.Size)
		}
		if _, dup := o.Hashes[int(n[0])]; dup {
			return formatErr("DG%d listed twice", n[0])
		}
		o.Hashes[int(n[0])] = append([]byte(nil), h...)
	}
	return nil
}

// VerifySignature checks the issuer signature with the signer certificate's
// key, and that certificate against the trusted issuer CAs at time at.
func (o *Object) VerifySignature(roots *x509.CertPool, at time.Time) error {
	pub, ok := o.Signer.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return fmt.Errorf("%w: signer key is not ECDSA P-256", ErrSignature)
	}
	digest := sha256.Sum256(o.signed)
	if !ecdsa.VerifyASN1(pub, digest[:], o.Signature) {
		return ErrSignature
	}
	if roots == nil {
		return fmt.Errorf("%w: no issuer CA configured", ErrUntrusted)
	}
	if !verifiedChain(o.Signer, roots, at) {
		chains, err := o.Signer.Verify(x509.VerifyOptions{
			Roots:       roots,
			CurrentTime: at,
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUntrusted, err)
		}
		rememberChain(o.Signer, roots, chains[0])
	}
	if o.Signer.KeyUsage != 0 && o.Signer.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return fmt.Errorf("%w: certificate not for digital signatures", ErrUntrusted)
	}
	return nil
}

// CheckGroup compares the content of data group dg with its hash.
func (o *Object) CheckGroup(dg int, content []byte) error {
	want, ok := o.Hashes[dg]
	if !ok {
		return &GroupError{DG: dg, Err: ErrNotCovered}
	}
	got := sha256.Sum256(content)
	if !bytes.Equal(got[:], want) {
		return &GroupError{DG: dg, Err: ErrHashMismatch}
	}
	return nil
}

// Groups lists the covered data groups in order.
func (o *Object) Groups() []int {
	out := make([]int, 0, len(o.Hashes))
	for dg := range o.Hashes {
		out = append(out, dg)
	}
	slices.Sort(out)
	return out
}

// Sign builds a security object over the data groups (number → EF content)
// with the document signer's key and certificate. Used to personalise lab
// cards; the back office issues renewals with SignHashes and its HSM.
func Sign(groups map[int][]byte, key crypto.Signer, cert *x509.Certificate) ([]byte, error) {
	hashes := make(map[int][]byte, len(groups))
	for dg, content := range groups {
		h := sha256.Sum256(content)
		hashes[dg] = h[:]
	}
	return SignHashes(hashes, key, cert)
}

// SignHashes builds a security object over the data groups' SHA-256
// hashes (number → hash), signed by key (an HSM's crypto.Signer in
// production: only the digest of the hash list leaves the process) with
// cert as the document signer. The result is what Parse and
// VerifySignature accept: the back office issues what the reader checks
// with the same code.
func SignHashes(hashes map[int][]byte, key crypto.Signer, cert *x509.Certificate) ([]byte, error) {
	if len(hashes) == 0 || len(hashes) > maxGroups {
		return nil, fmt.Errorf("sod: %d data groups, want 1..%d", len(hashes), maxGroups)
	}
	if cert == nil {
		return nil, errors.New("sod: no document-signer certificate")
	}
	var dgs []int
	for dg, h := range hashes {
		if dg < 1 || dg > maxGroups {
			return nil, fmt.Errorf("sod: data-group number %d out of range", dg)
		}
		if len(h) != sha256.Size {
			return nil, fmt.Errorf("sod: DG%d hash of %d bytes, want %d", dg, len(h), sha256.Size)
		}
		dgs = append(dgs, dg)
	}
	slices.Sort(dgs)
	var entries []tlv.TLV
	for _, dg := range dgs {
		entries = append(entries, tlv.NewConstructed(tagEntry, tlv.New(tagInt, []byte{byte(dg)}), tlv.New(tagOctets, hashes[dg])))
	}
	hashList := tlv.NewConstructed(tagHashes, entries...)
	digest := sha256.Sum256(hashList.Bytes())
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sod: signing: %w", err)
	}
	return tlv.NewConstructed(tagSOD,
		tlv.New(tagVersion, []byte{version1}),
		tlv.New(tagHashAlg, []byte{hashSHA256}),
		hashList,
		tlv.New(tagCert, cert.Raw),
		tlv.New(tagSig, sig),
	).Bytes(), nil
}
