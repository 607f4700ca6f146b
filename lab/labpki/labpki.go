// Package labpki makes the keys and certificates of a back-office lab: a
// TLS CA with a server certificate and terminal client certificates (for
// mutual TLS), and a SAM CA with stand-in SAMs for back-office tests and
// benchmarks. Lab keys only: never for real terminals.
package labpki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"kpe-agent/sync/record"
)

// CA is a certificate authority with its key in memory.
type CA struct {
	Key  *ecdsa.PrivateKey
	Cert *x509.Certificate
}

// LabEpoch is when lab certificates become valid unless a template says
// otherwise: early enough that records a test dates in the past (a
// semester's report) fall within their SAM certificate's validity, which
// the back office judges at each record's signing time.
var LabEpoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// NewCA makes a self-signed CA valid from LabEpoch until ten years from
// now. (A template's NotBefore and NotAfter, where set, are kept by every
// issuing function below; unset, a certificate is valid from LabEpoch
// until ten years from now.)
func NewCA(name string) (*CA, error) {
	return issue(nil, &x509.Certificate{Subject: pkix.Name{CommonName: name, Organization: []string{"kpe-agent lab (not a real CA)"}},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign})
}

func issue(parent *CA, tmpl *x509.Certificate) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = sn
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = LabEpoch
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().AddDate(10, 0, 0)
	}
	signKey, signCert := key, tmpl
	if parent != nil {
		signKey, signCert = parent.Key, parent.Cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signCert, &key.PublicKey, signKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return &CA{Key: key, Cert: cert}, err
}

// Pool is a pool holding the CA's certificate.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Cert)
	return p
}

// Server issues a TLS server certificate for localhost and 127.0.0.1 (and
// the given extra names).
func (c *CA) Server(names ...string) (tls.Certificate, error) {
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "kpe-backoffice"}, DNSNames: append([]string{"localhost"}, names...),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	return c.tlsCert(tmpl)
}

// Terminal issues a TLS client certificate whose common name is the
// terminal id.
func (c *CA) Terminal(id string) (tls.Certificate, error) {
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: id, Organization: []string{"kpe-agent lab terminal"}},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	return c.tlsCert(tmpl)
}

// ClientCert issues a TLS client certificate from a template as it is
// (for tests of odd terminal identities: no common name, two common
// names).
func (c *CA) ClientCert(tmpl *x509.Certificate) (tls.Certificate, error) { return c.tlsCert(tmpl) }

func (c *CA) tlsCert(tmpl *x509.Certificate) (tls.Certificate, error) {
	leaf, err := issue(c, tmpl)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key, Leaf: leaf.Cert}, nil
}

// SAM stands in for a terminal SAM in back-office tests and benchmarks:
// its records say SignerSAM although the key is in memory. Lab only; the
// real SAM signs over APDU (agent/signing).
type SAM struct {
	Key    *ecdsa.PrivateKey
	Cert   []byte // DER, subject "Terminal SAM <serial hex>"
	serial [8]byte

	mu      sync.Mutex
	counter uint32
}

// SAMTemplate is the certificate template of a SAM terminal certificate
// as the back office wants it (docs/backoffice.md): subject "Terminal SAM"
// and the serial in 16 upper-case hex digits, key usage digitalSignature,
// basic constraints CA:false, no extended key usage.
func SAMTemplate(serial [8]byte) *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{CommonName: fmt.Sprintf("Terminal SAM %X", serial[:])},
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: false}
}

// NewSAM issues a stand-in SAM with the given serial under c.
func (c *CA) NewSAM(serial [8]byte) (*SAM, error) { return c.NewSAMFrom(serial, SAMTemplate(serial)) }

// NewSAMFrom issues a stand-in SAM whose certificate is made from tmpl
// (for tests of the back office's certificate checks: another key usage,
// a CA, an expired certificate). Its records carry serial whatever tmpl's
// subject says.
func (c *CA) NewSAMFrom(serial [8]byte, tmpl *x509.Certificate) (*SAM, error) {
	leaf, err := issue(c, tmpl)
	if err != nil {
		return nil, err
	}
	return &SAM{Key: leaf.Key, Cert: leaf.Cert.Raw, serial: serial}, nil
}

// Revoked is the revocation list entry of a SAM's certificate, revoked at
// at.
func Revoked(s *SAM, at time.Time) (x509.RevocationListEntry, error) {
	cert, err := x509.ParseCertificate(s.Cert)
	if err != nil {
		return x509.RevocationListEntry{}, err
	}
	return x509.RevocationListEntry{SerialNumber: cert.SerialNumber, RevocationTime: at}, nil
}

// CRL issues an X.509 revocation list (DER) signed by c, with the given
// number, valid from an hour ago for a week, listing entries.
func (c *CA) CRL(number int64, entries ...x509.RevocationListEntry) ([]byte, error) {
	now := time.Now()
	return x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(number),
		ThisUpdate: now.Add(-time.Hour), NextUpdate: now.AddDate(0, 0, 7), RevokedCertificateEntries: entries}, c.Cert, c.Key)
}

// Kind says SAM (see the type's comment).
func (s *SAM) Kind() record.SignerKind { return record.SignerSAM }

// Serial is the SAM's serial.
func (s *SAM) Serial() [8]byte { return s.serial }

// Counter is the last counter issued.
func (s *SAM) Counter() uint32 { s.mu.Lock(); defer s.mu.Unlock(); return s.counter }

// SetCounter sets the last counter issued (to make gaps in tests).
func (s *SAM) SetCounter(c uint32) { s.mu.Lock(); s.counter = c; s.mu.Unlock() }

// Sign issues the next counter and signs like SIGN RECORD.
func (s *SAM) Sign(ctx context.Context, digest [32]byte) (uint32, [64]byte, error) {
	s.mu.Lock()
	s.counter++
	c := s.counter
	s.mu.Unlock()
	sig, err := record.SignDigest(s.Key, digest, c, s.serial)
	return c, sig, err
}

// SignAt signs digest with a chosen counter (for forgery and replay
// tests). A P-256 key in memory does not fail to sign.
func (s *SAM) SignAt(digest [32]byte, counter uint32) [64]byte {
	sig, _ := record.SignDigest(s.Key, digest, counter, s.serial)
	return sig
}

// Files are the PEM files of a lab written by Write.
type Files struct {
	Dir                       string
	TLSCA                     string // CA of servers and terminal client certificates
	ServerCert, ServerKey     string
	TerminalCert, TerminalKey string
}

// Write makes a TLS CA, a server certificate and a client certificate for
// terminal, and writes them as PEM files into dir (keys with mode 0600).
// Existing files are kept: a lab keeps its keys across restarts.
func Write(dir, terminal string) (*Files, error) {
	f := &Files{Dir: dir, TLSCA: filepath.Join(dir, "tls-ca.pem"), ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		TerminalCert: filepath.Join(dir, "terminal.pem"), TerminalKey: filepath.Join(dir, "terminal-key.pem")}
	if _, err := os.Stat(f.TerminalKey); err == nil {
		return f, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := NewCA("kpe-backoffice lab TLS CA")
	if err != nil {
		return nil, err
	}
	srv, err := ca.Server()
	if err != nil {
		return nil, err
	}
	term, err := ca.Terminal(terminal)
	if err != nil {
		return nil, err
	}
	if err := writeCert(f.TLSCA, ca.Cert.Raw); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		c         tls.Certificate
		cert, key string
	}{{srv, f.ServerCert, f.ServerKey}, {term, f.TerminalCert, f.TerminalKey}} {
		if err := writeCert(p.cert, p.c.Certificate[0]); err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(p.c.PrivateKey)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(p.key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func writeCert(path string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// LoadPool reads PEM certificates into a pool.
func LoadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, errors.New("labpki: no PEM certificate in " + path)
	}
	return p, nil
}

// SAMFrom rebuilds a stand-in SAM from its key and certificate, its last
// counter being counter (a test's child process continues its parent's).
func SAMFrom(key *ecdsa.PrivateKey, cert []byte, serial [8]byte, counter uint32) *SAM {
	return &SAM{Key: key, Cert: cert, serial: serial, counter: counter}
}

// DocumentSignerTemplate is the certificate template of an issuer's
// document signer (the key that signs EF.SOD and renewal
// authorisations): key usage digitalSignature only, basic constraints
// CA:false, valid from a day ago for five years but within the CA's own
// validity.
func (c *CA) DocumentSignerTemplate(subject pkix.Name) *x509.Certificate {
	now := time.Now()
	from, to := now.Add(-24*time.Hour), now.AddDate(5, 0, 0)
	if from.Before(c.Cert.NotBefore) {
		from = c.Cert.NotBefore
	}
	if to.After(c.Cert.NotAfter) {
		to = c.Cert.NotAfter
	}
	return &x509.Certificate{Subject: subject, NotBefore: from, NotAfter: to,
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: false}
}

// DocumentSigner certifies pub, an ECDSA P-256 public key (the issuer's
// key in an HSM, say), as a document signer named subject under c, the lab
// issuer CA: the lab BKN root whose certificate is the terminals' issuer
// trust list (testdata/cards/lab/trust/bkn-ca.pem, made by lab/labset)
// when c holds that root's key.
func (c *CA) DocumentSigner(pub crypto.PublicKey, subject pkix.Name) (*x509.Certificate, error) {
	return c.documentSigner(pub, c.DocumentSignerTemplate(subject))
}

// DocumentSignerFor is DocumentSigner valid from notBefore to notAfter
// instead (tests that sign at fixed dates).
func (c *CA) DocumentSignerFor(pub crypto.PublicKey, subject pkix.Name, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	tmpl := c.DocumentSignerTemplate(subject)
	tmpl.NotBefore, tmpl.NotAfter = notBefore, notAfter
	return c.documentSigner(pub, tmpl)
}

func (c *CA) documentSigner(pub crypto.PublicKey, tmpl *x509.Certificate) (*x509.Certificate, error) {
	if k, ok := pub.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("labpki: document signer: want an ECDSA P-256 public key, got %T", pub)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = sn
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Cert, pub, c.Key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// DocumentSignerFromCSR checks a certificate signing request (DER or PEM
// "CERTIFICATE REQUEST": its signature, an ECDSA P-256 key) and certifies
// its key and subject as a document signer under c (DocumentSigner).
func (c *CA) DocumentSignerFromCSR(csr []byte) (*x509.Certificate, error) {
	if blk, _ := pem.Decode(csr); blk != nil {
		if blk.Type != "CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("labpki: PEM %q, want CERTIFICATE REQUEST", blk.Type)
		}
		csr = blk.Bytes
	}
	req, err := x509.ParseCertificateRequest(csr)
	if err != nil {
		return nil, fmt.Errorf("labpki: certificate request: %w", err)
	}
	if err := req.CheckSignature(); err != nil {
		return nil, fmt.Errorf("labpki: certificate request: %w", err)
	}
	return c.DocumentSigner(req.PublicKey, req.Subject)
}

// LoadCA reads a CA's certificate and its private key (PEM; PKCS#8 or
// SEC1 EC) from files, checking that they belong together.
func LoadCA(certPath, keyPath string) (*CA, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	cblk, _ := pem.Decode(cb)
	kblk, _ := pem.Decode(kb)
	if cblk == nil || cblk.Type != "CERTIFICATE" || kblk == nil {
		return nil, fmt.Errorf("labpki: %s and %s: want a PEM certificate and a PEM key", certPath, keyPath)
	}
	cert, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("labpki: %s: %w", certPath, err)
	}
	var k any
	if kblk.Type == "EC PRIVATE KEY" {
		k, err = x509.ParseECPrivateKey(kblk.Bytes)
	} else {
		k, err = x509.ParsePKCS8PrivateKey(kblk.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("labpki: %s: %w", keyPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("labpki: %s is not the key of %s", keyPath, certPath)
	}
	return &CA{Key: key, Cert: cert}, nil
}

// WriteKey writes key as a PKCS#8 PEM file readable by its owner only.
func WriteKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// WriteCert writes a certificate as a PEM file.
func WriteCert(path string, cert *x509.Certificate) error { return writeCert(path, cert.Raw) }
