package backoffice

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// ErrRevocationList: a revocation list that cannot be used (not a CRL,
// not signed by a SAM CA given).
var ErrRevocationList = errors.New("backoffice: SAM revocation list not acceptable")

// RevocationList is the revoked SAM certificates of one or more X.509
// CRLs, each checked against the CA that signed it.
type RevocationList struct {
	revoked    map[string]map[string]time.Time // issuer key → serial number (hex) → revocation time
	nextUpdate time.Time                       // the earliest of the CRLs'
}

// ParseRevocationList reads X.509 CRLs (one DER CRL, or any number of PEM
// "X509 CRL" blocks). Each must be signed by one of issuers, the SAM CA
// certificates, under its name; an empty input is an empty list.
func ParseRevocationList(data []byte, issuers []*x509.Certificate) (*RevocationList, error) {
	var ders [][]byte
	if rest := data; len(rest) > 0 && pemLike(rest) {
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "X509 CRL" {
				return nil, fmt.Errorf("%w: a PEM block of type %q, want X509 CRL", ErrRevocationList, b.Type)
			}
			ders = append(ders, b.Bytes)
		}
		if len(ders) == 0 {
			return nil, fmt.Errorf("%w: no PEM CRL block", ErrRevocationList)
		}
	} else if len(data) > 0 {
		ders = [][]byte{data}
	}
	rl := &RevocationList{revoked: map[string]map[string]time.Time{}}
	for i, der := range ders {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("%w: CRL %d: %v", ErrRevocationList, i+1, err)
		}
		var by *x509.Certificate
		for _, ca := range issuers {
			if string(ca.RawSubject) == string(crl.RawIssuer) && crl.CheckSignatureFrom(ca) == nil {
				by = ca
				break
			}
		}
		if by == nil {
			return nil, fmt.Errorf("%w: CRL %d (issuer %s) is not signed by a SAM CA", ErrRevocationList, i+1, crl.Issuer)
		}
		key := string(issuerKey(by))
		if rl.revoked[key] == nil {
			rl.revoked[key] = map[string]time.Time{}
		}
		for _, e := range crl.RevokedCertificateEntries {
			rl.revoked[key][e.SerialNumber.Text(16)] = e.RevocationTime
		}
		if !crl.NextUpdate.IsZero() && (rl.nextUpdate.IsZero() || crl.NextUpdate.Before(rl.nextUpdate)) {
			rl.nextUpdate = crl.NextUpdate
		}
	}
	return rl, nil
}

func pemLike(b []byte) bool {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	return len(b) >= 5 && string(b[:5]) == "-----"
}

// Revoked reports how many certificates the list revokes.
func (rl *RevocationList) Revoked() int {
	n := 0
	for _, m := range rl.revoked {
		n += len(m)
	}
	return n
}

// NextUpdate is the earliest next-update time of the list's CRLs (zero
// when none says).
func (rl *RevocationList) NextUpdate() time.Time { return rl.nextUpdate }

// SetRevocationList replaces the revocation list the back office judges
// SAM certificates by (nil: none). Batches already running keep the list
// they started with.
func (s *Service) SetRevocationList(rl *RevocationList) { s.revs.Store(rl) }

// revocation says when a SAM certificate was revoked, if the current list
// says so.
func (s *Service) revocation(k *samKey) (time.Time, bool) {
	rl := s.revs.Load()
	if rl == nil || k.issuer == nil {
		return time.Time{}, false
	}
	at, ok := rl.revoked[string(k.issuer)][k.number.Text(16)]
	return at, ok
}

// CRLFile is a revocation list file the back office reloads when it
// changes (Reload, Watch).
type CRLFile struct {
	svc     *Service
	path    string
	issuers []*x509.Certificate

	mu   sync.Mutex
	mod  time.Time
	size int64
}

// LoadCRLFile reads the revocation list at path, sets it on the service,
// and returns the file to reload it from.
func (s *Service) LoadCRLFile(path string, issuers []*x509.Certificate) (*CRLFile, error) {
	f := &CRLFile{svc: s, path: path, issuers: issuers}
	if _, err := f.Reload(true); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads the file again when its modification time or size changed
// (always when force), and sets the list on the service. A file that
// cannot be read or does not verify leaves the previous list in force and
// returns the error.
func (f *CRLFile) Reload(force bool) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if err != nil {
		return false, err
	}
	if !force && fi.ModTime().Equal(f.mod) && fi.Size() == f.size {
		return false, nil
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return false, err
	}
	rl, err := ParseRevocationList(data, f.issuers)
	if err != nil {
		return false, fmt.Errorf("%s: %w", f.path, err)
	}
	f.svc.SetRevocationList(rl)
	f.mod, f.size = fi.ModTime(), fi.Size()
	return true, nil
}

// Watch reloads the file every poll when it changed, and at once on each
// value from hup (SIGHUP), until ctx ends. It logs each reload and each
// failure (the previous list stays in force), and a list past its next
// update.
func (f *CRLFile) Watch(ctx context.Context, poll time.Duration, hup <-chan os.Signal, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		force := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-hup:
			force = true
		}
		changed, err := f.Reload(force)
		switch {
		case err != nil:
			log.Error("SAM revocation list not reloaded; the previous one stays in force", "file", f.path, "err", err)
		case changed:
			rl := f.svc.revs.Load()
			log.Info("SAM revocation list loaded", "file", f.path, "revoked", rl.Revoked(), "next_update", rl.NextUpdate())
			if nu := rl.NextUpdate(); !nu.IsZero() && f.svc.cfg.Now().After(nu) {
				log.Warn("SAM revocation list is past its next update: publish a new one", "file", f.path, "next_update", nu)
			}
		}
	}
}
