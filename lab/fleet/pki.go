package fleet

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"kpe-agent/lab/labpki"
)

// PKI is a fleet run's lab PKI: the TLS CA (it issues the back office's
// server certificate and the terminals' client certificates), the back
// office's server certificate, and the SAM CA the terminals' SAM
// certificates chain to. External back-office nodes are started with its
// files (PKIFiles.ServeArgs).
type PKI struct {
	TLSCA, SAMCA *labpki.CA
	Server       tls.Certificate
}

// NewPKI makes a fresh PKI.
func NewPKI() (*PKI, error) {
	tlsCA, err := labpki.NewCA("kpe fleet lab TLS CA")
	if err != nil {
		return nil, err
	}
	samCA, err := labpki.NewCA("kpe fleet lab SAM CA")
	if err != nil {
		return nil, err
	}
	srv, err := tlsCA.Server()
	if err != nil {
		return nil, err
	}
	return &PKI{TLSCA: tlsCA, SAMCA: samCA, Server: srv}, nil
}

// PKIFiles are the PEM files of a PKI directory.
type PKIFiles struct {
	Dir                   string
	TLSCA, TLSCAKey       string
	ServerCert, ServerKey string
	SAMCA, SAMCAKey       string
}

// pkiFiles names the files of dir.
func pkiFiles(dir string) PKIFiles {
	j := func(n string) string { return filepath.Join(dir, n) }
	return PKIFiles{Dir: dir, TLSCA: j("tls-ca.pem"), TLSCAKey: j("tls-ca-key.pem"), ServerCert: j("server.pem"), ServerKey: j("server-key.pem"),
		SAMCA: j("sam-ca.pem"), SAMCAKey: j("sam-ca-key.pem")}
}

// ServeArgs are the kpe-backoffice serve flags that make a node trust
// this PKI: its server certificate, the TLS CA for the terminals' client
// certificates and the SAM CA.
func (f PKIFiles) ServeArgs() []string {
	return []string{"--tls-cert", f.ServerCert, "--tls-key", f.ServerKey, "--client-ca", f.TLSCA, "--sam-ca", f.SAMCA}
}

// OpenPKI reads the PKI in dir, or when dir holds none makes one and
// writes it there (keys mode 0600): the fleet and the kpe-backoffice
// serve nodes it loads then share it.
func OpenPKI(dir string) (*PKI, PKIFiles, error) {
	f := pkiFiles(dir)
	if _, err := os.Stat(f.SAMCAKey); err == nil {
		p, err := loadPKI(f)
		return p, f, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, f, err
	}
	p, err := NewPKI()
	if err != nil {
		return nil, f, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, f, err
	}
	for _, w := range []struct {
		path string
		der  []byte
		typ  string
		mode os.FileMode
	}{
		{f.TLSCA, p.TLSCA.Cert.Raw, "CERTIFICATE", 0o644}, {f.SAMCA, p.SAMCA.Cert.Raw, "CERTIFICATE", 0o644},
		{f.ServerCert, p.Server.Certificate[0], "CERTIFICATE", 0o644},
	} {
		if err := os.WriteFile(w.path, pem.EncodeToMemory(&pem.Block{Type: w.typ, Bytes: w.der}), w.mode); err != nil {
			return nil, f, err
		}
	}
	for path, key := range map[string]any{f.TLSCAKey: p.TLSCA.Key, f.SAMCAKey: p.SAMCA.Key, f.ServerKey: p.Server.PrivateKey} {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, f, err
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, f, err
		}
	}
	return p, f, nil
}

func loadPKI(f PKIFiles) (*PKI, error) {
	ca := func(certPath, keyPath string) (*labpki.CA, error) {
		c, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return nil, fmt.Errorf("fleet: PKI %s: %w", f.Dir, err)
		}
		k, ok := c.PrivateKey.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("fleet: PKI %s: %s is not an ECDSA key", f.Dir, keyPath)
		}
		cert, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return nil, err
		}
		if !cert.IsCA {
			return nil, fmt.Errorf("fleet: PKI %s: %s is not a CA certificate", f.Dir, certPath)
		}
		return &labpki.CA{Key: k, Cert: cert}, nil
	}
	tlsCA, err := ca(f.TLSCA, f.TLSCAKey)
	if err != nil {
		return nil, err
	}
	samCA, err := ca(f.SAMCA, f.SAMCAKey)
	if err != nil {
		return nil, err
	}
	srv, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey)
	if err != nil {
		return nil, fmt.Errorf("fleet: PKI %s: %w", f.Dir, err)
	}
	return &PKI{TLSCA: tlsCA, SAMCA: samCA, Server: srv}, nil
}
