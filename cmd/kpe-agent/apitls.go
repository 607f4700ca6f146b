package main

import (
	"crypto/tls"
	"fmt"
	"os"

	"kpe-agent/agent/config"
)

// apiTLS is the local API's TLS configuration (api.tls_cert_file set:
// required with api.allow_remote): the certificate and its key, the key
// read as a secret file and cleared once parsed.
func apiTLS(a config.API) (*tls.Config, error) {
	certPEM, err := os.ReadFile(a.TLSCertFile)
	if err != nil {
		return nil, fmt.Errorf("api.tls_cert_file: %w", err)
	}
	keyPEM, err := config.ReadSecret(a.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("api.tls_key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	clear(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("api.tls_cert_file / api.tls_key_file: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// apiScheme is the scheme the local API is served with.
func apiScheme(f startFiles) string {
	if f.apiTLS != nil {
		return "https"
	}
	return "http"
}
