package backoffice

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// Identity is who sent a batch, as the transport established it.
type Identity struct {
	// Terminal is the terminal id the sender's verified TLS client
	// certificate names: records of another terminal are refused.
	Terminal string
	// Unbound marks a sender without identity that the back office was
	// configured to take anyway (Config.PlaintextTerminals, a lab or
	// test set-up): its records are not bound to a terminal.
	Unbound bool
}

// DefaultCertificateSkew is the default Config.CertificateSkew.
const DefaultCertificateSkew = 24 * time.Hour

// AlarmSAMConflict is the kind of the alarm raised when a SAM certificate
// arrives for a serial that has another certificate pinned.
const AlarmSAMConflict = "sam-certificate-conflict"

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// commonName is the subject's one common name; false when it has none or
// more than one (crypto/x509 keeps the last of several, so an identity
// that depends on which one is read is no identity).
func commonName(c *x509.Certificate) (string, bool) {
	var cn []string
	for _, n := range c.Subject.Names {
		if n.Type.Equal(oidCommonName) {
			s, ok := n.Value.(string)
			if !ok {
				return "", false
			}
			cn = append(cn, s)
		}
	}
	if len(cn) != 1 {
		return "", false
	}
	return cn[0], true
}

// errIdentity: a client certificate that names no usable terminal id.
var errIdentity = errors.New("the client certificate names no usable terminal id")

// terminalIdentity is the terminal id a verified client certificate
// names: its one common name, a valid record terminal id.
func terminalIdentity(c *x509.Certificate) (string, error) {
	cn, ok := commonName(c)
	if !ok {
		return "", fmt.Errorf("%w: it needs exactly one common name", errIdentity)
	}
	if err := record.CheckTerminalID(cn); err != nil {
		return "", fmt.Errorf("%w: %v", errIdentity, err)
	}
	return cn, nil
}

// peer is the identity of a terminal request, or the HTTP status and
// problem code to refuse it with. Only a certificate the TLS handshake
// verified counts (r.TLS.VerifiedChains): a listener that requests client
// certificates without verifying them names nobody.
func (s *Service) peer(r *http.Request) (Identity, int, string, string) {
	switch {
	case r.TLS == nil && s.cfg.PlaintextTerminals:
		return Identity{Unbound: true}, 0, "", ""
	case r.TLS == nil:
		return Identity{}, http.StatusUnauthorized, "client-certificate", "terminals send over TLS with their client certificate"
	case len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0:
		return Identity{}, http.StatusUnauthorized, "client-certificate", "a terminal must present a client certificate of the terminal CA"
	}
	id, err := terminalIdentity(r.TLS.VerifiedChains[0][0])
	if err != nil {
		return Identity{}, http.StatusForbidden, "terminal-identity", err.Error()
	}
	return Identity{Terminal: id}, 0, "", ""
}

// samKey is a SAM's checked certificate: its key, and what the records it
// signs are judged by.
type samKey struct {
	pub  *ecdsa.PublicKey
	hash [32]byte // of the certificate (DER)
	// notBefore and notAfter bound the validity of the verified chain
	// (the latest NotBefore and the earliest NotAfter of its
	// certificates).
	notBefore, notAfter time.Time
	// issuer is the issuing CA's subject and key (raw DER, joined); a
	// revocation list of that CA applies to the certificate.
	issuer []byte
	number *big.Int // the certificate's serial number
	// revoked: the revocation time, when a loaded revocation list lists
	// the certificate (set per batch, see Ingest).
	revoked   bool
	revokedAt time.Time
}

// samCNPrefix: a SAM terminal certificate's subject common name is this
// prefix and the SAM's serial in 16 upper-case hex digits; that binds the
// certificate's key to the serial records carry.
const samCNPrefix = "Terminal SAM "

// canonicalSerial reads the serial of a SAM certificate's common name:
// exactly 16 upper-case hex digits after the prefix.
func canonicalSerial(cn string) ([8]byte, bool) {
	h, ok := strings.CutPrefix(cn, samCNPrefix)
	if !ok || len(h) != 16 || strings.IndexFunc(h, func(r rune) bool { return !(r >= '0' && r <= '9' || r >= 'A' && r <= 'F') }) >= 0 {
		return [8]byte{}, false
	}
	b, err := hex.DecodeString(h)
	return [8]byte(b), err == nil
}

// SAMCertificate checks a SAM terminal certificate and returns the SAM
// serial it names and its P-256 key. The rules (docs/backoffice.md):
//   - key usage present with digitalSignature; basic constraints absent
//     or CA:false;
//   - extended key usage absent, or listing anyExtendedKeyUsage (a
//     certificate limited to other purposes, such as TLS serverAuth or
//     clientAuth, is not a SAM's);
//   - exactly one subject common name, "Terminal SAM " and the serial in
//     16 upper-case hex digits;
//   - an ECDSA P-256 key;
//   - a chain to the CA. The chain's signatures are checked independently
//     of the present time: it is verified at the instant of the
//     certificate's validity closest to now, and each record is then
//     judged at its own signing time (Ingest).
func (s *Service) SAMCertificate(der []byte) ([8]byte, *ecdsa.PublicKey, error) {
	serial, k, err := s.samCert(der)
	if err != nil {
		return serial, nil, err
	}
	return serial, k.pub, nil
}

func (s *Service) samCert(der []byte) ([8]byte, *samKey, error) {
	var serial [8]byte
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return serial, nil, fmt.Errorf("%w: %v", ErrCertificate, err)
	}
	bad := func(why string) ([8]byte, *samKey, error) {
		return serial, nil, fmt.Errorf("%w: %s", ErrCertificate, why)
	}
	if cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return bad("key usage lacks digitalSignature")
	}
	if cert.IsCA {
		return bad("a CA certificate (basic constraints CA:true) does not sign records")
	}
	if (len(cert.ExtKeyUsage) > 0 || len(cert.UnknownExtKeyUsage) > 0) && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return bad("extended key usage limits the certificate to other purposes than a SAM's")
	}
	cn, ok := commonName(cert)
	if ok {
		serial, ok = canonicalSerial(cn)
	}
	if !ok {
		return bad(fmt.Sprintf("subject %q does not name a SAM serial as %q and 16 upper-case hex digits", cert.Subject.CommonName, samCNPrefix))
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return bad("key is not ECDSA P-256")
	}
	at := s.cfg.Now()
	if at.Before(cert.NotBefore) {
		at = cert.NotBefore
	} else if at.After(cert.NotAfter) {
		at = cert.NotAfter
	}
	chains, err := cert.Verify(x509.VerifyOptions{Roots: s.cfg.CA, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return serial, nil, fmt.Errorf("%w: %v", ErrCertificate, err)
	}
	k := &samKey{pub: pub, hash: sha256.Sum256(der), notBefore: cert.NotBefore, notAfter: cert.NotAfter, number: cert.SerialNumber}
	for _, c := range chains[0][1:] {
		if c.NotBefore.After(k.notBefore) {
			k.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(k.notAfter) {
			k.notAfter = c.NotAfter
		}
	}
	if len(chains[0]) > 1 {
		k.issuer = issuerKey(chains[0][1])
	}
	return serial, k, nil
}

// issuerKey identifies a CA by its subject and public key: a revocation
// list signed by that key under that name speaks for its certificates.
func issuerKey(ca *x509.Certificate) []byte {
	return append(bytes.Clone(ca.RawSubject), ca.RawSubjectPublicKeyInfo...)
}

// key returns a SAM's pinned certificate, checked: from the cache, or
// from the store (checked again, as at a restart). Nil when the SAM has
// no certificate or its stored one fails the rules.
func (s *Service) key(ctx context.Context, serial [8]byte) (*samKey, error) {
	s.mu.Lock()
	k := s.keys[serial]
	s.mu.Unlock()
	if k != nil {
		return k, nil
	}
	der, err := s.store.SAMCertificate(ctx, serial)
	if err != nil || der == nil {
		return nil, err
	}
	got, k, err := s.samCert(der)
	if err != nil || got != serial {
		return nil, nil // a stored certificate that no longer passes: unknown
	}
	s.mu.Lock()
	s.keys[serial] = k
	s.mu.Unlock()
	return k, nil
}

// offer takes a certificate a batch carries. The first valid certificate
// stored for a serial is pinned (the store keeps the first, atomically);
// a different one for a pinned serial is not used, and raises the
// sam-certificate-conflict alarm once per serial and certificate (the
// store keeps that too, so a restart does not raise it again).
func (s *Service) offer(ctx context.Context, der []byte, peer Identity, now time.Time) error {
	// Terminals send their SAM's certificate with every batch: one already
	// settled (pinned, or its conflict reported) costs a hash, not a chain
	// verification. The hash fixes the certificate, so its serial too.
	h := sha256.Sum256(der)
	s.mu.Lock()
	done := s.settled[h]
	s.mu.Unlock()
	if done {
		return nil
	}
	serial, k, err := s.samCert(der)
	if err != nil {
		return nil // its records are then from an unknown SAM
	}
	s.mu.Lock()
	pinned := s.keys[serial]
	s.mu.Unlock()
	if pinned == nil || pinned.hash != k.hash {
		a := wire.Alarm{Kind: AlarmSAMConflict, TerminalID: peer.Terminal, SAMSerial: hex.EncodeToString(serial[:]), At: now.UTC(),
			Detail: fmt.Sprintf("a second valid certificate (SHA-256 %x) for a SAM serial that has another pinned: not used; a cloned or re-issued SAM, or a CA issuing twice", k.hash)}
		stored, err := s.store.PinSAMCertificate(ctx, serial, der, a)
		if err != nil {
			return err
		}
		if bytes.Equal(stored, der) {
			s.mu.Lock()
			s.keys[serial] = k
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	s.settled[h] = true
	s.mu.Unlock()
	return nil
}

// bindRecord is the one rule that binds a record to its sender and its
// SAM, before its signature is checked; it returns the rejection reason,
// "" when the record may go on:
//   - the sender must have a usable terminal identity (or be Unbound,
//     a lab set-up), and the record must name that terminal
//     (terminal-mismatch);
//   - the record's SAM must have a pinned, valid certificate
//     (unknown-sam);
//   - the record's signing time must lie within the certificate chain's
//     validity, widened by skew on both sides (sam-certificate-not-yet-
//     valid, sam-certificate-expired);
//   - it must be earlier than the certificate's revocation, if a loaded
//     revocation list has one (revoked-sam).
func bindRecord(peer Identity, rec *record.Record, sam *samKey, skew time.Duration) string {
	if !peer.Unbound && (record.CheckTerminalID(peer.Terminal) != nil || rec.TerminalID != peer.Terminal) {
		return wire.ReasonTerminal
	}
	switch {
	case sam == nil:
		return wire.ReasonUnknownSAM
	case rec.Time.Before(sam.notBefore.Add(-skew)):
		return wire.ReasonSAMNotYetValid
	case rec.Time.After(sam.notAfter.Add(skew)):
		return wire.ReasonSAMExpired
	case sam.revoked && !rec.Time.Before(sam.revokedAt):
		return wire.ReasonRevoked
	}
	return ""
}
